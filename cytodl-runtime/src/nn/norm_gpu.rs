//! Instance normalisation on the GPU backends (CUDA, wgpu), with its closed-form backward pass.
//!
//! Under autodiff, the tensor-op formula's backward pass differentiates each op of the forward
//! one: ~40 kernel launches and ~9 reductions per normalisation, a third of a small DynUNet train
//! step's launches (CubeCL profile on wgpu, BENCHMARKS.md). The closed form, as PyTorch's
//! instance-norm backward computes it, needs two statistics of the incoming gradient:
//! ```text
//! x̂ = (x − mean) · rstd          y = x̂ · w + b
//! dx = w · rstd · (dy − mean(dy) − x̂ · mean(dy · x̂))
//! dw = Σ_{n, voxels} dy · x̂      db = Σ_{n, voxels} dy
//! ```
//! On CUDA and wgpu without burn's fusion, both passes run as hand-written CubeCL kernels
//! ([`super::norm_cubecl`]: two launches each way instead of ~12). With fusion, and on the CPU
//! backend in this module's tests, they run as burn's tensor ops: statistics reduce in two
//! stages (rows of each instance, then the rows) as `norm_cpu::with_tensor_ops` does, for the
//! same reason: one reduction row per instance leaves most of a GPU idle. Routing is by type
//! identity (`flex_kernel::is`), like the convolutions.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive};

use super::flex_kernel::{cast, is, tracked_output_on};
use super::norm_cpu::rows_per_instance;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
use super::norm_cubecl as cubecl_kernels;

/// The normalisation on a compiled-in GPU backend (training or inference), or `None` when `B`
/// is none of them.
pub(super) fn instance_norm<B: Backend>(x: &Tensor<B, 5>, affine: Option<&(Tensor<B, 1>, Tensor<B, 1>)>, eps: f64) -> Option<Tensor<B, 5>> {
    #[cfg(feature = "cuda")]
    if let Some(y) = on::<B, crate::backend::Cuda>(x, affine, eps) {
        return Some(y);
    }
    #[cfg(feature = "wgpu")]
    if let Some(y) = on::<B, crate::backend::Wgpu>(x, affine, eps) {
        return Some(y);
    }
    let _ = (x, affine, eps);
    None
}

/// The normalisation when `B` is `I` (inference) or `Autodiff<I>` (training, with
/// [`InstanceNormBackward`]); `None` for any other `B`.
pub fn on<B: Backend, I: Backend>(x: &Tensor<B, 5>, affine: Option<&(Tensor<B, 1>, Tensor<B, 1>)>, eps: f64) -> Option<Tensor<B, 5>> {
    if is::<B, I>() {
        let affine = match affine {
            Some((w, b)) => Some((cast::<_, Tensor<I, 1>>(w.clone())?, cast::<_, Tensor<I, 1>>(b.clone())?)),
            None => None,
        };
        let (y, _, _) = forward(cast::<_, Tensor<I, 5>>(x.clone())?, affine.as_ref(), eps);
        return cast(y);
    }
    if !is::<B, Autodiff<I>>() {
        return None;
    }
    let tracked = |t: &Tensor<B, 5>| cast::<_, Tensor<Autodiff<I>, 5>>(t.clone()).map(|t| t.into_primitive().tensor());
    let tracked_1d = |t: &Tensor<B, 1>| cast::<_, Tensor<Autodiff<I>, 1>>(t.clone()).map(|t| t.into_primitive().tensor());
    let inner = |t: &FloatTensor<Autodiff<I>>| Tensor::<I, 1>::from_primitive(TensorPrimitive::Float(t.primitive.clone()));
    let x = tracked(x)?;
    let xi = Tensor::<I, 5>::from_primitive(TensorPrimitive::Float(x.primitive.clone()));
    match affine {
        Some((w, b)) => {
            let (w, b) = (tracked_1d(w)?, tracked_1d(b)?);
            let (y, mean, rstd) = forward(xi, Some(&(inner(&w), inner(&b))), eps);
            let state = NormState {
                x: x.primitive.clone(),
                mean: mean.into_primitive().tensor(),
                rstd: rstd.into_primitive().tensor(),
                weight: Some(w.primitive.clone()),
            };
            tracked_output_on::<B, I, _, 3, 5>(InstanceNormBackward, [&x, &w, &b], state, y.into_primitive().tensor())
        }
        None => {
            let (y, mean, rstd) = forward(xi, None, eps);
            let state = NormState { x: x.primitive.clone(), mean: mean.into_primitive().tensor(), rstd: rstd.into_primitive().tensor(), weight: None };
            tracked_output_on::<B, I, _, 1, 5>(InstanceNormBackward, [&x], state, y.into_primitive().tensor())
        }
    }
}

/// `(y, mean, rstd)`: the output `[N, C, Z, Y, X]`, and each instance's mean and
/// `1 / sqrt(var + eps)` as `[N, C, 1, 1]` (what the backward pass needs with `x`). CubeCL
/// backends without fusion run [`super::norm_cubecl`]'s kernels, the others burn's tensor ops.
fn forward<I: Backend>(x: Tensor<I, 5>, affine: Option<&(Tensor<I, 1>, Tensor<I, 1>)>, eps: f64) -> (Tensor<I, 5>, Tensor<I, 4>, Tensor<I, 4>) {
    if let Some(out) = cubecl_kernels::forward(&x, affine, eps) {
        return out;
    }
    let shape = x.dims();
    let x = x.reshape(rows_shape(&shape));
    let mean = per_instance(x.clone(), Tensor::mean_dim);
    let xc = x - mean.clone();
    let var = per_instance(xc.clone().square(), Tensor::mean_dim);
    let rstd = var.add_scalar(eps).sqrt().recip();
    let xhat = xc * rstd.clone();
    let y = match affine {
        Some((w, b)) => xhat * per_channel(w.clone()) + per_channel(b.clone()),
        None => xhat,
    };
    (y.reshape(shape), mean, rstd)
}

/// `[N, C, Z, Y, X]` viewed as `[N, C, rows, len]` for two-stage reductions.
fn rows_shape(shape: &[usize; 5]) -> [usize; 4] {
    let volume = shape[2] * shape[3] * shape[4];
    let rows = rows_per_instance(volume);
    [shape[0], shape[1], rows, volume / rows]
}

/// Each instance's statistic, `[N, C, rows, len]` -> `[N, C, 1, 1]`: `reduce` (`sum_dim` or
/// `mean_dim`) over `len`, then over the rows, with no second kernel when there is one row. Means
/// go through `mean_dim` because the reduction kernel divides (a sum and a division is a launch
/// more); rows are of equal length, so the mean of the row means is the mean.
fn per_instance<I: Backend>(t: Tensor<I, 4>, reduce: fn(Tensor<I, 4>, usize) -> Tensor<I, 4>) -> Tensor<I, 4> {
    let rows = t.dims()[2];
    let t = reduce(t, 3);
    if rows == 1 {
        t
    } else {
        reduce(t, 2)
    }
}

/// A `[C]` parameter broadcast over `[N, C, rows, len]`.
fn per_channel<I: Backend>(t: Tensor<I, 1>) -> Tensor<I, 4> {
    let c = t.dims()[0];
    t.reshape([1, c, 1, 1])
}

/// What [`InstanceNormBackward`] keeps from the forward pass: the input and its statistics
/// (`x̂` is recomputed from them rather than held).
#[derive(Debug, Clone)]
struct NormState<I: Backend> {
    /// The input, `[N, C, Z, Y, X]`.
    x: FloatTensor<I>,
    /// Each instance's mean and `1 / sqrt(var + eps)`, `[N, C, 1, 1]`.
    mean: FloatTensor<I>,
    rstd: FloatTensor<I>,
    weight: Option<FloatTensor<I>>,
}

/// The closed-form backward step (module docs): parents `[x]` or `[x, weight, bias]`.
#[derive(Debug)]
struct InstanceNormBackward;

impl<I: Backend, const N: usize> Backward<I, N> for InstanceNormBackward {
    type State = NormState<I>;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let NormState { x, mean, rstd, weight } = ops.state;
        let x = Tensor::<I, 5>::from_primitive(TensorPrimitive::Float(x));
        let [mean, rstd] = [mean, rstd].map(|t| Tensor::<I, 4>::from_primitive(TensorPrimitive::Float(t)));
        let weight = weight.map(|w| Tensor::<I, 1>::from_primitive(TensorPrimitive::Float(w)));
        let dy = Tensor::<I, 5>::from_primitive(TensorPrimitive::Float(grads.consume::<I>(&ops.node)));
        let channels = x.dims()[1];
        let mut parents = ops.parents.into_iter();
        let x_node = parents.next().flatten();
        let (dx, sum_dy, sum_dy_xhat) = match cubecl_kernels::backward(&x, &dy, &mean, &rstd, weight.as_ref(), x_node.is_some()) {
            Some(out) => out,
            None => backward_with_tensor_ops(x, dy, mean, rstd, weight, x_node.is_some()),
        };
        if let (Some(node), Some(dx)) = (x_node, dx) {
            grads.register::<I>(node.id, dx.into_primitive().tensor());
        }
        if let Some(Some(node)) = parents.next() {
            grads.register::<I>(node.id, over_batch(sum_dy_xhat, channels).into_primitive().tensor());
        }
        if let Some(Some(node)) = parents.next() {
            grads.register::<I>(node.id, over_batch(sum_dy, channels).into_primitive().tensor());
        }
    }
}

/// `(dx, Σ dy, Σ dy · x̂)` (the sums per instance, `[N, C, 1, 1]`; `dx` when `input_grad`)
/// through burn's tensor ops.
fn backward_with_tensor_ops<I: Backend>(
    x: Tensor<I, 5>,
    dy: Tensor<I, 5>,
    mean: Tensor<I, 4>,
    rstd: Tensor<I, 4>,
    weight: Option<Tensor<I, 1>>,
    input_grad: bool,
) -> (Option<Tensor<I, 5>>, Tensor<I, 4>, Tensor<I, 4>) {
    let shape = x.dims();
    let rows = rows_shape(&shape);
    let xhat = (x.reshape(rows) - mean) * rstd.clone();
    let dy = dy.reshape(rows);
    let len = (shape[2] * shape[3] * shape[4]) as f64;
    let sum_dy = per_instance(dy.clone(), Tensor::sum_dim);
    let sum_dy_xhat = per_instance(dy.clone() * xhat.clone(), Tensor::sum_dim);
    let dx = input_grad.then(|| {
        let scale = match weight {
            Some(w) => rstd * per_channel(w),
            None => rstd,
        };
        let centred = dy - sum_dy.clone().div_scalar(len) - xhat * sum_dy_xhat.clone().div_scalar(len);
        (centred * scale).reshape(shape)
    });
    (dx, sum_dy, sum_dy_xhat)
}

/// Per-instance sums `[N, C, 1, 1]` summed over the batch, as `[C]` (a batch of one needs no
/// kernel).
fn over_batch<I: Backend>(sums: Tensor<I, 4>, channels: usize) -> Tensor<I, 1> {
    let sums = if sums.dims()[0] == 1 { sums } else { sums.sum_dim(0) };
    sums.reshape([channels])
}

/// Without a GPU feature there are no CubeCL kernels: every backend takes the tensor ops.
#[cfg(not(any(feature = "cuda", feature = "wgpu")))]
mod cubecl_kernels {
    use burn::tensor::backend::Backend;
    use burn::tensor::Tensor;

    #[allow(clippy::type_complexity)]
    pub(super) fn forward<I: Backend>(
        _: &Tensor<I, 5>,
        _: Option<&(Tensor<I, 1>, Tensor<I, 1>)>,
        _: f64,
    ) -> Option<(Tensor<I, 5>, Tensor<I, 4>, Tensor<I, 4>)> {
        None
    }

    #[allow(clippy::type_complexity)]
    pub(super) fn backward<I: Backend>(
        _: &Tensor<I, 5>,
        _: &Tensor<I, 5>,
        _: &Tensor<I, 4>,
        _: &Tensor<I, 4>,
        _: Option<&Tensor<I, 1>>,
        _: bool,
    ) -> Option<(Option<Tensor<I, 5>>, Tensor<I, 4>, Tensor<I, 4>)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;
    use crate::backend::{Cpu, CpuTrain};
    use crate::nn::norm_cpu::with_tensor_ops;
    use crate::nn::Init;

    /// The largest difference relative to the largest magnitude of `want`.
    fn max_rel(got: TensorData, want: TensorData) -> f32 {
        let (a, b) = (got.to_vec::<f32>().expect("f32"), want.to_vec::<f32>().expect("f32"));
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(f32::MIN_POSITIVE, |m, v| m.max(v.abs()));
        a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
    }

    /// The closed form (here on the CPU backend as the inner backend) gives the output and the
    /// three gradients that autodiff through the tensor-op formula gives, for volumes reduced in
    /// one and in several rows, with and without affine parameters.
    #[test]
    fn closed_form_backward_matches_autodiff_of_the_formula() {
        let device = Default::default();
        for (shape, affine) in [([2, 3, 4, 8, 8], true), ([1, 2, 16, 32, 32], true), ([2, 2, 1, 5, 7], false), ([1, 4, 1, 9, 9], true)] {
            let x = Init::new(1).normal::<CpuTrain, 5>(shape, 0.5, 2.0, &device).require_grad();
            let w = Init::new(2).normal::<CpuTrain, 1>([shape[1]], 1.0, 0.3, &device).require_grad();
            let b = Init::new(3).normal::<CpuTrain, 1>([shape[1]], 0.0, 0.3, &device).require_grad();
            // A non-uniform upstream gradient: the loss weighs every output differently.
            let r = Init::new(4).normal::<CpuTrain, 5>(shape, 0.0, 1.0, &device);
            let params = affine.then(|| (w.clone(), b.clone()));
            let y = on::<CpuTrain, Cpu>(&x, params.as_ref(), 1e-5).expect("CpuTrain is Autodiff<Cpu>");
            let want = with_tensor_ops(x.clone(), params.clone(), 1e-5);
            assert!(max_rel(y.to_data(), want.to_data()) < 1e-5, "{shape:?}: output");
            let g = (y * r.clone()).sum().backward();
            let gw = (want * r).sum().backward();
            let (got, want) = (x.grad(&g).expect("tracked"), x.grad(&gw).expect("tracked"));
            assert!(max_rel(got.to_data(), want.to_data()) < 1e-4, "{shape:?}: dx");
            if affine {
                for (p, what) in [(&w, "weight"), (&b, "bias")] {
                    let (got, want) = (p.grad(&g).expect("tracked"), p.grad(&gw).expect("tracked"));
                    assert!(max_rel(got.to_data(), want.to_data()) < 1e-4, "{shape:?}: d{what}");
                }
            }
        }
    }

    /// Without autodiff the same forward formula runs.
    #[test]
    fn inference_matches_the_formula() {
        let x = Init::new(5).normal::<Cpu, 5>([2, 3, 2, 16, 16], 0.0, 1.0, &Default::default());
        let y = on::<Cpu, Cpu>(&x, None, 1e-5).expect("Cpu is Cpu");
        assert!(max_rel(y.to_data(), with_tensor_ops(x, None, 1e-5).to_data()) < 1e-5);
    }
}
