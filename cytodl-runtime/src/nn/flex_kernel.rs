//! What the CPU kernels (`conv_cpu`, `norm_cpu`) share: routing a model's generic `B: Backend`
//! to the Flex backend by type identity, so that model code stays generic while the CPU gets
//! hand-written kernels, and f32 views of Flex tensors; the GPU kernels route and record their
//! backward steps through the same helpers.

use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::ops::{Backward, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape, Tensor, TensorData, TensorPrimitive};
use burn_flex::FlexTensor;

use crate::backend::{Cpu, CpuTrain};

/// The autodiff tensor of [`CpuTrain`] (an input's primitive and its graph node).
pub(crate) type TrackedTensor = FloatTensor<CpuTrain>;

pub(crate) use crate::backend::{cast, is};

/// An f32, contiguous Flex tensor (copied to contiguous when it is a view), or `None` for
/// other dtypes.
pub(crate) fn f32_contiguous(t: FlexTensor) -> Option<FlexTensor> {
    if t.dtype() != DType::F32 {
        return None;
    }
    Some(if t.is_contiguous() { t } else { t.to_contiguous() })
}

/// `t` as an f32, contiguous Flex tensor when `B` is [`Cpu`].
pub(crate) fn inference_input<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Option<FlexTensor> {
    f32_contiguous(cast::<_, Tensor<Cpu, D>>(t.clone())?.into_primitive().tensor())
}

/// `t` as a tracked tensor and its f32, contiguous value when `B` is [`CpuTrain`].
pub(crate) fn tracked_input<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Option<(TrackedTensor, FlexTensor)> {
    let tracked = cast::<_, Tensor<CpuTrain, D>>(t.clone())?.into_primitive().tensor();
    let value = f32_contiguous(tracked.primitive.clone())?;
    Some((tracked, value))
}

/// A Flex tensor of `shape` holding `values`.
pub(crate) fn flex_tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}

/// A kernel's result as `Tensor<B, D>` (`B` is [`Cpu`]).
pub(crate) fn inference_output<B: Backend, const D: usize>(y: FlexTensor) -> Option<Tensor<B, D>> {
    cast(Tensor::<Cpu, D>::from_primitive(TensorPrimitive::Float(y)))
}

/// Records `y`, computed from `parents`, in the autodiff graph with `op` as its backward step
/// (holding `state` when any parent needs a gradient), and returns it as `Tensor<B, D>` (`B` is
/// [`CpuTrain`]).
pub(crate) fn tracked_output<B: Backend, O, const N: usize, const D: usize>(
    op: O,
    parents: [&TrackedTensor; N],
    state: O::State,
    y: FlexTensor,
) -> Option<Tensor<B, D>>
where
    O: Backward<Cpu, N>,
{
    tracked_output_on::<B, Cpu, O, N, D>(op, parents, state, y)
}

/// [`tracked_output`] for any inner backend `I` (`B` is `Autodiff<I>`): the GPU kernels record
/// their own backward steps the same way.
pub(crate) fn tracked_output_on<B: Backend, I: Backend, O, const N: usize, const D: usize>(
    op: O,
    parents: [&FloatTensor<Autodiff<I>>; N],
    state: O::State,
    y: I::FloatTensorPrimitive,
) -> Option<Tensor<B, D>>
where
    O: Backward<I, N>,
{
    let out = match op.prepare::<NoCheckpointing>(parents.map(|p| p.node.clone())).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    cast(Tensor::<Autodiff<I>, D>::from_primitive(TensorPrimitive::Float(out)))
}

/// A layer's operands `(x, weight, bias)` as primitives of backend `I` when `B` is `I` (checked
/// at run time): what a kernel routed to by type identity computes on.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
#[allow(clippy::type_complexity)]
fn layer_operands<B: Backend, I: Backend>(
    x: &Tensor<B, 5>,
    weight: &Tensor<B, 5>,
    bias: Option<&Tensor<B, 1>>,
) -> Option<(FloatTensor<I>, FloatTensor<I>, Option<FloatTensor<I>>)> {
    let inner = |t: &Tensor<B, 5>| cast::<_, Tensor<I, 5>>(t.clone()).map(|t| t.into_primitive().tensor());
    let bias = match bias {
        Some(b) => Some(cast::<_, Tensor<I, 1>>(b.clone())?.into_primitive().tensor()),
        None => None,
    };
    Some((inner(x)?, inner(weight)?, bias))
}

/// A layer's kernel on backend `I` with or without autodiff: when `B` is `Autodiff<I>`,
/// `forward` runs on the operands' values and its result is recorded with `op` as its backward
/// step, holding `state(x, weight)`; when `B` is `I`, `forward` alone. `None` for any other
/// backend or where `forward` declines (the caller then runs burn's op).
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub(crate) fn layer_on<B: Backend, I: Backend, O>(
    (x, weight, bias): (&Tensor<B, 5>, &Tensor<B, 5>, Option<&Tensor<B, 1>>),
    forward: impl Fn(&FloatTensor<I>, &FloatTensor<I>, Option<&FloatTensor<I>>) -> Option<FloatTensor<I>>,
    op: O,
    state: impl FnOnce(&FloatTensor<I>, &FloatTensor<I>) -> <O as Backward<I, 2>>::State,
) -> Option<Tensor<B, 5>>
where
    O: Backward<I, 2> + Backward<I, 3, State = <O as Backward<I, 2>>::State>,
{
    if is::<B, Autodiff<I>>() {
        let (x, w, b) = layer_operands::<B, Autodiff<I>>(x, weight, bias)?;
        let y = forward(&x.primitive, &w.primitive, b.as_ref().map(|b| &b.primitive))?;
        let state = state(&x.primitive, &w.primitive);
        // The parents, in the order the backward step reads them.
        match &b {
            Some(b) => tracked_output_on::<B, I, O, 3, 5>(op, [&x, &w, b], state, y),
            None => tracked_output_on::<B, I, O, 2, 5>(op, [&x, &w], state, y),
        }
    } else if is::<B, I>() {
        let (x, w, b) = layer_operands::<B, I>(x, weight, bias)?;
        let y = forward(&x, &w, b.as_ref())?;
        cast(Tensor::<I, 5>::from_primitive(TensorPrimitive::Float(y)))
    } else {
        None
    }
}
