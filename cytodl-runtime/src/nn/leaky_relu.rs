//! Leaky ReLU, with one CubeCL kernel each way on CUDA and wgpu without burn's fusion.
//!
//! burn 0.21 writes `leaky_relu` as a comparison, a scaled copy and a masked select (three
//! launches), and autodiff differentiates each of them (zero-filled branches, two masked
//! selects, a scaling and an add): ~8 launches per activation, ~90 of a small DynUNet train
//! step's. Here the forward pass is `x < 0 ? x · slope : x` and the backward pass
//! `dx = x < 0 ? dy · slope : dy`, one kernel each — the values burn's formula gives, bit for bit
//! (one multiply or none per element). Other backends (the CPU, fusion) run burn's op.

use burn::tensor::activation;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `leaky_relu(x, negative_slope)` with the GPU kernels where they apply (module docs).
pub fn leaky_relu<B: Backend, const D: usize>(x: Tensor<B, D>, negative_slope: f64) -> Tensor<B, D> {
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    if let Some(y) = gpu::leaky_relu(&x, negative_slope) {
        return y;
    }
    activation::leaky_relu(x, negative_slope)
}

#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod gpu {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops};
    use burn::backend::Autodiff;
    use burn::tensor::backend::Backend;
    use burn::tensor::{DType, Tensor, TensorPrimitive};
    use burn_cubecl::kernel::{cast as cast_dtype, into_contiguous};
    use burn_cubecl::ops::numeric::empty_device_dtype;
    use burn_cubecl::tensor::CubeTensor;
    use burn_cubecl::{BoolElement, CubeRuntime};

    use super::super::flex_kernel::tracked_output_on;
    use crate::backend::{cast, elementwise_launch, is, on_cube_runtimes, Cube};

    mod kernel {
        use burn_cubecl::cubecl;
        use cubecl::prelude::*;

        #[cube(launch)]
        pub(in super::super) fn forward<F: Float>(x: &Tensor<F>, y: &mut Tensor<F>, negative_slope: f32, #[define(F)] _dtype: StorageType) {
            let pos = ABSOLUTE_POS;
            if pos >= y.len() {
                terminate!();
            }
            let v = x[pos];
            y[pos] = select(v < F::new(0.0), v * F::cast_from(negative_slope), v);
        }

        #[cube(launch)]
        pub(in super::super) fn backward<F: Float>(x: &Tensor<F>, dy: &Tensor<F>, dx: &mut Tensor<F>, negative_slope: f32, #[define(F)] _dtype: StorageType) {
            let pos = ABSOLUTE_POS;
            if pos >= dx.len() {
                terminate!();
            }
            let g = dy[pos];
            dx[pos] = select(x[pos] < F::new(0.0), g * F::cast_from(negative_slope), g);
        }
    }

    /// The activation when `B` is a CubeCL backend without fusion (or its autodiff) and `x` is
    /// f32; `None` otherwise.
    pub(super) fn leaky_relu<B: Backend, const D: usize>(x: &Tensor<B, D>, negative_slope: f64) -> Option<Tensor<B, D>> {
        on_cube_runtimes!(|R, BT| on_runtime::<B, R, BT, D>(x, negative_slope))
    }

    fn on_runtime<B: Backend, R: CubeRuntime, BT: BoolElement, const D: usize>(x: &Tensor<B, D>, negative_slope: f64) -> Option<Tensor<B, D>> {
        if is::<B, Cube<R, BT>>() {
            let xc = cast::<_, Tensor<Cube<R, BT>, D>>(x.clone())?.into_primitive().tensor();
            let y = (xc.dtype == DType::F32).then(|| forward(xc, negative_slope))?;
            return cast(Tensor::<Cube<R, BT>, D>::from_primitive(TensorPrimitive::Float(y)));
        }
        if !is::<B, Autodiff<Cube<R, BT>>>() {
            return None;
        }
        let x = cast::<_, Tensor<Autodiff<Cube<R, BT>>, D>>(x.clone())?.into_primitive().tensor();
        if x.primitive.dtype != DType::F32 {
            return None;
        }
        let y = forward(x.primitive.clone(), negative_slope);
        tracked_output_on::<B, Cube<R, BT>, _, 1, D>(LeakyReluBackward, [&x], (x.primitive.clone(), negative_slope), y)
    }

    fn forward<R: CubeRuntime>(x: CubeTensor<R>, negative_slope: f64) -> CubeTensor<R> {
        let x = into_contiguous(x);
        let y = empty_device_dtype(x.client.clone(), x.device.clone(), x.meta.shape().clone(), x.dtype);
        let (count, dim) = elementwise_launch(&y);
        kernel::forward::launch::<R>(&x.client, count, dim, x.clone().into_tensor_arg(), y.clone().into_tensor_arg(), negative_slope as f32, x.dtype.into());
        y
    }

    /// `dx` for the upstream gradient `dy` (parent `[x]`).
    #[derive(Debug)]
    struct LeakyReluBackward;

    impl<R: CubeRuntime, BT: BoolElement> Backward<Cube<R, BT>, 1> for LeakyReluBackward {
        type State = (CubeTensor<R>, f64);

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let (x, negative_slope) = ops.state;
            let dy = grads.consume::<Cube<R, BT>>(&ops.node);
            let [Some(node)] = ops.parents else { return };
            // The gradient has the output's dtype; a backend that delivered another would
            // otherwise be read as the wrong type.
            let dy = if dy.dtype == x.dtype { dy } else { cast_dtype(dy, x.dtype) };
            let (x, dy) = (into_contiguous(x), into_contiguous(dy));
            let dx = empty_device_dtype(x.client.clone(), x.device.clone(), x.meta.shape().clone(), x.dtype);
            let (count, dim) = elementwise_launch(&dx);
            kernel::backward::launch::<R>(
                &x.client,
                count,
                dim,
                x.clone().into_tensor_arg(),
                dy.into_tensor_arg(),
                dx.clone().into_tensor_arg(),
                negative_slope as f32,
                x.dtype.into(),
            );
            grads.register::<Cube<R, BT>>(node.id, dx);
        }
    }
}
