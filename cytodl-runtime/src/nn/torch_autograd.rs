//! Layers on the LibTorch backend differentiated by PyTorch's own autograd.
//!
//! burn's generic backward formulas are written for backends without a native weight gradient:
//! a convolution's weight gradient becomes a convolution whose *kernel* is the output gradient
//! (the whole volume), which cuDNN runs with its slowest algorithms — a medium DynUNet train
//! step took 310 ms on an H200 against PyTorch's 16 (BENCHMARKS.md, 2026-12-04). LibTorch has
//! the kernels PyTorch's autograd calls (cuDNN's data and weight gradients, the fused instance
//! norm backward), so for `Autodiff<LibTorch>` a layer runs as a small torch graph: its inputs
//! become torch leaves, the forward is recorded by torch, and burn's backward step asks torch
//! for the leaves' gradients. The numerics are then PyTorch's, op for op.
//!
//! Routing is by type identity at run time, as for the CPU and CubeCL kernels, so model code
//! stays generic over `B: Backend`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::libtorch::TchTensor;
use burn::backend::{Autodiff, LibTorch};
use burn::tensor::backend::Backend;
use burn::tensor::ops::{ConvOptions, FloatTensor};
use burn::tensor::Tensor;

use super::flex_kernel::{cast, is, tracked_output_on};

type Train = Autodiff<LibTorch>;

/// `conv3d` through torch's autograd when `B` is `Autodiff<LibTorch>` (else `None`: the caller
/// runs burn's op, which on `LibTorch` without autodiff is torch's convolution already).
pub fn conv3d<B: Backend>(x: &Tensor<B, 5>, weight: &Tensor<B, 5>, bias: Option<&Tensor<B, 1>>, options: &ConvOptions<3>) -> Option<Tensor<B, 5>> {
    let options = options.clone();
    let conv = move |leaves: &[tch::Tensor]| {
        tch::Tensor::f_conv3d(
            &leaves[0],
            &leaves[1],
            leaves.get(2),
            options.stride.map(|v| v as i64),
            options.padding.map(|v| v as i64),
            options.dilation.map(|v| v as i64),
            options.groups as i64,
        )
    };
    with_optional_bias::<B, 5>(x, weight, bias, conv)
}

/// A transposed convolution (`weight: [Cin, Cout, kz, ky, kx]`, no padding, no output padding)
/// through torch's autograd when `B` is `Autodiff<LibTorch>`.
pub fn conv_transpose3d<B: Backend>(x: &Tensor<B, 5>, weight: &Tensor<B, 5>, bias: Option<&Tensor<B, 1>>, stride: [usize; 3]) -> Option<Tensor<B, 5>> {
    let conv = move |leaves: &[tch::Tensor]| {
        tch::Tensor::f_conv_transpose3d(&leaves[0], &leaves[1], leaves.get(2), stride.map(|v| v as i64), [0i64; 3], [0i64; 3], 1, [1i64; 3])
    };
    with_optional_bias::<B, 5>(x, weight, bias, conv)
}

/// `InstanceNorm3d(affine=True)` with biased variance: torch's fused `instance_norm`.
pub fn instance_norm<B: Backend>(x: &Tensor<B, 5>, weight: &Tensor<B, 1>, bias: &Tensor<B, 1>, epsilon: f64) -> Option<Tensor<B, 5>> {
    let norm = move |leaves: &[tch::Tensor]| tch::Tensor::f_instance_norm(&leaves[0], Some(&leaves[1]), Some(&leaves[2]), None, None, true, 0.1, epsilon, true);
    if !is::<B, Train>() {
        return None;
    }
    let parents = [primitive(x)?, primitive(weight)?, primitive(bias)?];
    through_torch::<B, 3, 5>(parents, norm)
}

/// Layers with an optional bias: two or three parents.
fn with_optional_bias<B: Backend, const D: usize>(
    x: &Tensor<B, 5>,
    weight: &Tensor<B, 5>,
    bias: Option<&Tensor<B, 1>>,
    f: impl FnOnce(&[tch::Tensor]) -> Result<tch::Tensor, tch::TchError>,
) -> Option<Tensor<B, D>> {
    if !is::<B, Train>() {
        return None;
    }
    match bias {
        Some(b) => through_torch::<B, 3, D>([primitive(x)?, primitive(weight)?, primitive(b)?], f),
        None => through_torch::<B, 2, D>([primitive(x)?, primitive(weight)?], f),
    }
}

/// `t`'s autodiff primitive when `B` is `Autodiff<LibTorch>`.
fn primitive<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Option<FloatTensor<Train>> {
    Some(cast::<_, Tensor<Train, D>>(t.clone())?.into_primitive().tensor())
}

/// Runs `f` on torch leaves holding the parents' values, records it in burn's graph with
/// [`TorchBackward`], and returns its value.
fn through_torch<B: Backend, const N: usize, const D: usize>(
    parents: [FloatTensor<Train>; N],
    f: impl FnOnce(&[tch::Tensor]) -> Result<tch::Tensor, tch::TchError>,
) -> Option<Tensor<B, D>> {
    let leaves: Vec<TchTensor> = parents.iter().map(|p| TchTensor::new(p.primitive.tensor.detach().set_requires_grad(true))).collect();
    let inputs: Vec<tch::Tensor> = leaves.iter().map(|l| l.tensor.shallow_clone()).collect();
    let output = match tch::with_grad(|| f(&inputs)) {
        Ok(output) => output,
        Err(e) => {
            note_refusal(&e);
            return None;
        }
    };
    let value = TchTensor::new(output.detach());
    let state = TorchGraph { output: TchTensor::new(output), leaves };
    let refs: [&FloatTensor<Train>; N] = std::array::from_fn(|i| &parents[i]);
    tracked_output_on::<B, LibTorch, _, N, D>(TorchBackward, refs, state, value)
}

/// Says once that torch refused a layer (burn's formulas then run it: same values, slower).
fn note_refusal(error: &tch::TchError) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| eprintln!("note: LibTorch refused a layer ({error}); running burn's formulas for it"));
}

/// A torch graph recorded in the forward pass: its output (holding torch's backward nodes) and
/// the leaves standing for burn's parents, in order.
#[derive(Debug, Clone)]
struct TorchGraph {
    output: TchTensor,
    leaves: Vec<TchTensor>,
}

/// The backward step: torch's gradients of the leaves for the output gradient burn passes in.
#[derive(Debug)]
struct TorchBackward;

impl<const N: usize> Backward<LibTorch, N> for TorchBackward {
    type State = TorchGraph;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let graph = ops.state;
        let dy = grads.consume::<LibTorch>(&ops.node);
        let wanted: Vec<(usize, burn::backend::autodiff::NodeId)> =
            ops.parents.iter().enumerate().filter_map(|(i, p)| p.as_ref().map(|node| (i, node.id))).collect();
        if wanted.is_empty() {
            return;
        }
        // The vector-Jacobian product as the gradient of <output, dy>: torch's `grad` takes
        // scalar outputs.
        let inner = (&graph.output.tensor * dy.tensor.to_kind(graph.output.tensor.kind())).sum(None);
        let inputs: Vec<&tch::Tensor> = wanted.iter().map(|(i, _)| &graph.leaves[*i].tensor).collect();
        // Only fails if the graph recorded in the forward pass is gone, which burn's graph rules out.
        let gradients = tch::Tensor::run_backward(&[inner], &inputs, false, false);
        for ((_, id), g) in wanted.into_iter().zip(gradients) {
            grads.register::<LibTorch>(id, TchTensor::new(g));
        }
    }
}
