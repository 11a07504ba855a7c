//! Arrays and burn tensors: the one place an `[N, C, (Z,) Y, X]` [`Array`] becomes a 5-D tensor
//! (2D images get Z = 1) and a tensor becomes an array again. It sits below the model and task
//! types, which both convert, so neither has to reach into the other.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::array::Array;

/// The 5-D shape of an `[N, C, Y, X]` or `[N, C, Z, Y, X]` array, `None` for any other rank.
pub fn volume_shape(shape: &[usize]) -> Option<[usize; 5]> {
    match shape {
        [n, c, y, x] => Some([*n, *c, 1, *y, *x]),
        [n, c, z, y, x] => Some([*n, *c, *z, *y, *x]),
        _ => None,
    }
}

/// An array as a 5-D tensor on `device` (copies the values), `None` for a rank other than 4 or 5.
pub fn to_tensor<B: Backend>(a: &Array, device: &B::Device) -> Option<Tensor<B, 5>> {
    let shape = volume_shape(a.shape())?;
    Some(Tensor::from_data(TensorData::new(a.data().to_vec(), shape), device))
}

/// [`to_tensor`] without the copy; the array comes back when its rank is not 4 or 5.
pub fn into_tensor<B: Backend>(a: Array, device: &B::Device) -> Result<Tensor<B, 5>, Array> {
    match volume_shape(a.shape()) {
        Some(shape) => Ok(Tensor::from_data(TensorData::new(a.into_data(), shape), device)),
        None => Err(a),
    }
}

/// A 5-D tensor back as an array of the same shape.
pub fn to_array<B: Backend>(t: Tensor<B, 5>) -> Array {
    let shape = t.dims().to_vec();
    let data = t.into_data().convert::<f32>().into_vec::<f32>().unwrap_or_default();
    Array::new(shape, data).unwrap_or_else(|_| Array::zeros(vec![0]))
}
