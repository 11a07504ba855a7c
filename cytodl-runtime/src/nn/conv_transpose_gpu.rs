//! DynUNet's upsampling — a transposed convolution, padding 0 — on the GPU backends, in exact
//! f32 on the kernels the convolutions use (with burn's fusion, recorded in its stream by
//! [`super::conv_gpu_fusion`]).
//!
//! burn 0.21 runs a transposed convolution's forward pass with its own direct kernel and its
//! backward pass with its channels-last direct convolution, which copies both operands first
//! (4 convolutions and 10 layout copies for the two upsamplings of a small DynUNet train step on
//! wgpu). A transposed convolution is the input gradient of the convolution with the same weight
//! (`[Cin, Cout, k]` read as `[O, C, k]`), so:
//! - forward: [`super::conv_gather`]'s gather as for an input gradient, `x` as the output gradient;
//! - input gradient: the convolution of `dy` with `w` (the exact forward kernel);
//! - weight gradient: [`super::conv_weight_grad`]'s kernel with `dy` as the input and `x` as the
//!   output gradient;
//! - bias gradient: `dy` summed over all but its channels.
//!
//! Routing is by type identity at run time, as for the convolutions ([`super::conv_gpu`]).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorPrimitive};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeRuntime};

use super::conv_gpu::{bias_grad, exact_forward, exact_weight_grad, Cube};
use super::flex_kernel::layer_on;
use crate::backend::on_cube_runtimes;

/// `conv_transpose3d` of `x: [N, Cin, Z, Y, X]` with `weight: [Cin, Cout, kz, ky, kx]`, stride
/// `stride`, no padding, one group, on a GPU backend; `None` for any other backend or where
/// the gather kernel does not take the shape (the caller runs burn's op).
pub fn conv_transpose3d<B: Backend>(x: &Tensor<B, 5>, weight: &Tensor<B, 5>, bias: Option<&Tensor<B, 1>>, stride: [usize; 3]) -> Option<Tensor<B, 5>> {
    let options = ConvOptions::new(stride, [0; 3], [1; 3], 1);
    on_cube_runtimes!(|R, BT| on_runtime::<B, R, BT>(x, weight, bias, &options))
}

/// The unfused GPU backends' route; with burn's fusion (`gpu-fusion`) the fused backends'
/// route records the same kernels in the fusion stream.
fn on_runtime<B: Backend, R: CubeRuntime, BT: BoolElement>(
    x: &Tensor<B, 5>,
    weight: &Tensor<B, 5>,
    bias: Option<&Tensor<B, 1>>,
    options: &ConvOptions<3>,
) -> Option<Tensor<B, 5>> {
    let y = layer_on::<B, Cube<R, BT>, _>(
        (x, weight, bias),
        |x, w, b| super::conv_gather::transposed(x, w, b, options),
        TransposedBackward,
        |x, w| (x.clone(), w.clone(), options.clone()),
    );
    #[cfg(feature = "gpu-fusion")]
    let y = y.or_else(|| super::conv_gpu_fusion::transposed_on_runtime::<B, R, BT>(x, weight, bias, options));
    y
}

/// The backward step of the transposed convolution: parents `[x, weight]` or
/// `[x, weight, bias]` (see the module docs).
#[derive(Debug)]
struct TransposedBackward;

impl<R: CubeRuntime, BT: BoolElement, const N: usize> Backward<Cube<R, BT>, N> for TransposedBackward {
    type State = (CubeTensor<R>, CubeTensor<R>, ConvOptions<3>);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, w, options) = ops.state;
        let dy = grads.consume::<Cube<R, BT>>(&ops.node);
        let mut parents = ops.parents.into_iter();
        if let Some(Some(node)) = parents.next() {
            grads.register::<Cube<R, BT>>(node.id, exact_forward::<R>(dy.clone(), w.clone(), None, &options));
        }
        if let Some(Some(node)) = parents.next() {
            let w_shape = w.meta.shape().clone();
            grads.register::<Cube<R, BT>>(node.id, exact_weight_grad::<R>(dy.clone(), x, w_shape, &options));
        }
        if let Some(Some(node)) = parents.next() {
            let dy = Tensor::<Cube<R, BT>, 5>::from_primitive(TensorPrimitive::Float(dy));
            grads.register::<Cube<R, BT>>(node.id, bias_grad(dy).into_primitive().tensor());
        }
    }
}
