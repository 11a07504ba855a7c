//! A dense n-dimensional `f32` array in row-major (C) order: the unit images are stored in
//! between reading and batching. Channel-first after `EnsureChannelFirstd`: `[C, Z, Y, X]` or `[C, Y, X]`.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum ShapeError {
    #[error("shape {shape:?} holds {expected} values, got {got}")]
    Length { shape: Vec<usize>, expected: usize, got: usize },
}

#[derive(Clone, PartialEq)]
pub struct Array {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl std::fmt::Debug for Array {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Array{:?}", self.shape)
    }
}

impl Array {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, ShapeError> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(ShapeError::Length { shape, expected, got: data.len() });
        }
        Ok(Array { shape, data })
    }

    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Array { shape, data: vec![0.0; n] }
    }

    pub fn filled(shape: Vec<usize>, value: f32) -> Self {
        let n = shape.iter().product();
        Array { shape, data: vec![value; n] }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Row-major strides in elements.
    pub fn strides(&self) -> Vec<usize> {
        strides_of(&self.shape)
    }

    /// The same data under another shape with as many elements.
    pub fn reshape(self, shape: Vec<usize>) -> Result<Self, ShapeError> {
        Array::new(shape, self.data)
    }

    /// Adds a leading axis of length 1 (MONAI's `EnsureChannelFirstd(channel_dim="no_channel")`).
    pub fn with_leading_axis(mut self) -> Self {
        self.shape.insert(0, 1);
        self
    }

    /// The sub-array at index `i` of the first axis (a channel of a channel-first image).
    pub fn slab(&self, i: usize) -> &[f32] {
        let n: usize = self.shape[1..].iter().product();
        &self.data[i * n..(i + 1) * n]
    }

    pub fn slab_mut(&mut self, i: usize) -> &mut [f32] {
        let n: usize = self.shape[1..].iter().product();
        &mut self.data[i * n..(i + 1) * n]
    }

    /// Copies the box `start..start+size` (one entry per axis) into a new array.
    /// The box must lie inside the array.
    pub fn crop(&self, start: &[usize], size: &[usize]) -> Array {
        debug_assert_eq!(start.len(), self.ndim());
        let mut out = Vec::with_capacity(size.iter().product());
        let strides = self.strides();
        copy_box(&self.data, &strides, start, size, 0, 0, &mut out);
        Array { shape: size.to_vec(), data: out }
    }

    pub fn sum(&self) -> f64 {
        self.data.iter().map(|&v| v as f64).sum()
    }

    pub fn min(&self) -> f32 {
        self.data.iter().copied().fold(f32::INFINITY, f32::min)
    }

    pub fn max(&self) -> f32 {
        self.data.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }

    /// Element at a multi-index (tests and examples).
    pub fn at(&self, index: &[usize]) -> f32 {
        let off: usize = index.iter().zip(self.strides()).map(|(i, s)| i * s).sum();
        self.data[off]
    }
}

pub fn strides_of(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

fn copy_box(src: &[f32], strides: &[usize], start: &[usize], size: &[usize], axis: usize, base: usize, out: &mut Vec<f32>) {
    if axis + 1 == strides.len() {
        let from = base + start[axis];
        out.extend_from_slice(&src[from..from + size[axis]]);
        return;
    }
    for i in 0..size[axis] {
        copy_box(src, strides, start, size, axis + 1, base + (start[axis] + i) * strides[axis], out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_copies_the_box() {
        let a = Array::new(vec![2, 3, 4], (0..24).map(|v| v as f32).collect()).unwrap();
        let c = a.crop(&[1, 1, 2], &[1, 2, 2]);
        assert_eq!(c.shape(), &[1, 2, 2]);
        assert_eq!(c.data(), &[18.0, 19.0, 22.0, 23.0]);
        assert_eq!(a.at(&[1, 2, 3]), 23.0);
        assert!(Array::new(vec![2, 2], vec![0.0; 3]).is_err());
    }
}
