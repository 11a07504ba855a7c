//! Instance normalisation (`torch.nn.InstanceNorm3d`, biased variance, optional affine) as one
//! fused kernel on the CPU, forward and backward.
//!
//! Written with tensor ops, a normalisation is five full passes over the activation forward
//! (mean, centre, square, scale, shift) and as many again backward, each allocating a tensor
//! the size of the activation. Here a row `(n, c)` is read twice and written once forward, and
//! read twice and written once backward; rows run in parallel. The GPU backends have their own
//! closed-form backward (`norm_gpu`); other backends and dtypes use the tensor-op formula, which
//! computes the same thing.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::flex_kernel::{flex_tensor as tensor_from, inference_input, inference_output, is, tracked_input, tracked_output};
use crate::backend::{Cpu, CpuTrain};

/// `(x - mean) / sqrt(var + eps) * weight + bias` over each `(n, c)` of `x: [N, C, Z, Y, X]`;
/// `affine` is `(weight, bias)`, both `[C]`.
pub fn instance_norm<B: Backend>(x: Tensor<B, 5>, affine: Option<(Tensor<B, 1>, Tensor<B, 1>)>, eps: f64) -> Tensor<B, 5> {
    if is::<B, CpuTrain>() {
        if let Some(y) = fused_autodiff::<B>(&x, affine.as_ref(), eps) {
            return y;
        }
    } else if is::<B, Cpu>() {
        if let Some(y) = fused_inference::<B>(&x, affine.as_ref(), eps) {
            return y;
        }
    }
    if let Some(y) = super::norm_gpu::instance_norm(&x, affine.as_ref(), eps) {
        return y;
    }
    #[cfg(feature = "libtorch")]
    if let Some((weight, bias)) = &affine {
        if let Some(y) = super::torch_autograd::instance_norm(&x, weight, bias, eps) {
            return y;
        }
    }
    with_tensor_ops(x, affine, eps)
}

/// The same normalisation from tensor ops, for every backend. The affine weight is folded into
/// the per-channel scale so only four full-size passes touch the activation.
///
/// Each instance's `Z·Y·X` values are viewed as `rows × len` and reduced in two steps (over
/// `len`, then over `rows`): a GPU reduction kernel parallelises over rows, and one row per
/// instance (32 rows of 131072 values in the medium DynUNet) left most of an H200 idle — 2.8 ms
/// per statistic, a third of a train step (BENCHMARKS.md). The broadcast gradients of the
/// backward pass reduce the same two ways.
pub(crate) fn with_tensor_ops<B: Backend>(x: Tensor<B, 5>, affine: Option<(Tensor<B, 1>, Tensor<B, 1>)>, eps: f64) -> Tensor<B, 5> {
    let shape = x.dims();
    let [n, c, ..] = shape;
    let volume = shape[2] * shape[3] * shape[4];
    let rows = rows_per_instance(volume);
    let x = x.reshape([n, c, rows, volume / rows]);
    let mean = x.clone().mean_dim(3).mean_dim(2);
    let xc = x - mean;
    let var = xc.clone().square().mean_dim(3).mean_dim(2);
    let rstd = var.add_scalar(eps).sqrt().recip();
    let y = match affine {
        Some((weight, bias)) => {
            let scale = rstd * weight.reshape([1, c, 1, 1]);
            // shift as [N, C, 1, 1] too: Flex's SIMD broadcast kernels take per-row scalars, while
            // a [1, C, 1, 1] operand on a batch > 1 falls back to a scalar strided walk.
            let shift = scale.zeros_like() + bias.reshape([1, c, 1, 1]);
            xc * scale + shift
        }
        None => xc * rstd,
    };
    y.reshape(shape)
}

/// How many equal rows one instance of `volume` values is reduced as: the largest divisor of
/// `volume` up to 256 that leaves rows of at least 256 values (1 for small volumes).
pub(super) fn rows_per_instance(volume: usize) -> usize {
    (1..=256).rev().find(|r| volume.is_multiple_of(*r) && volume / r >= 256).unwrap_or(1)
}

/// Per-row statistics of a normalisation: rows are `(n, c)`, `len` values each.
#[derive(Debug, Clone)]
struct Stats {
    channels: usize,
    len: usize,
    mean: Vec<f32>,
    rstd: Vec<f32>,
}

fn forward(x: &[f32], shape: &[usize], affine: Option<(&[f32], &[f32])>, eps: f64) -> (Vec<f32>, Stats) {
    let channels = shape[1];
    let len: usize = shape[2..].iter().product();
    let rows = shape[0] * channels;
    let mut y = vec![0.0f32; x.len()];
    let mut mean = vec![0.0f32; rows];
    let mut rstd = vec![0.0f32; rows];
    if len > 0 {
        y.par_chunks_mut(len).zip(x.par_chunks(len)).zip(mean.par_iter_mut().zip(rstd.par_iter_mut())).enumerate().for_each(|(row, ((y, x), (m, r)))| {
            let mu = sum8(x, |v| v as f64) / len as f64;
            let var = sum8(x, |v| (v as f64 - mu).powi(2)) / len as f64;
            let rs = 1.0 / (var + eps).sqrt();
            let (w, b) = affine.map_or((1.0, 0.0), |(w, b)| (w[row % channels] as f64, b[row % channels] as f64));
            let (mu32, scale, b) = (mu as f32, (rs * w) as f32, b as f32);
            y.iter_mut().zip(x).for_each(|(y, &x)| *y = (x - mu32) * scale + b);
            (*m, *r) = (mu as f32, rs as f32);
        });
    }
    (y, Stats { channels, len, mean, rstd })
}

/// Gradients for `x`, and for the affine weight and bias: with `x̂ = (x - mean) * rstd`,
/// `dx = w * rstd * (dy - mean(dy) - x̂ * mean(dy * x̂))`, `dw = Σ dy * x̂`, `db = Σ dy`.
fn backward(x: &[f32], dy: &[f32], weight: Option<&[f32]>, s: &Stats) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let len = s.len;
    let mut dx = vec![0.0f32; x.len()];
    let mut sums = vec![(0.0f64, 0.0f64); s.mean.len()];
    if len > 0 {
        dx.par_chunks_mut(len).zip(x.par_chunks(len).zip(dy.par_chunks(len))).zip(sums.par_iter_mut()).enumerate().for_each(|(row, ((dx, (x, dy)), sum))| {
            let (mu, rs) = (s.mean[row], s.rstd[row]);
            let sdy = sum8(dy, |v| v as f64);
            let sdyx = sum8_zip(x, dy, |x, dy| (dy * (x - mu) * rs) as f64);
            *sum = (sdy, sdyx);
            let w = weight.map_or(1.0, |w| w[row % s.channels]);
            let k = w * rs;
            let (a, b) = ((sdy / len as f64) as f32, (sdyx / len as f64) as f32);
            for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
                *dx = k * (dy - a - (x - mu) * rs * b);
            }
        });
    }
    let mut dw = vec![0.0f64; s.channels];
    let mut db = vec![0.0f64; s.channels];
    for (row, (sdy, sdyx)) in sums.into_iter().enumerate() {
        db[row % s.channels] += sdy;
        dw[row % s.channels] += sdyx;
    }
    let f = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
    (dx, f(dw), f(db))
}

/// `Σ f(v)` over `xs` with eight independent accumulators: the compiler vectorises them, where
/// one running f64 sum is bound by the latency of each add.
#[inline(always)]
fn sum8(xs: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    sum8_zip(xs, xs, |v, _| f(v))
}

/// `Σ f(a[i], b[i])`, as [`sum8`].
#[inline(always)]
fn sum8_zip(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let rest: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(&x, &y)| f(x, y)).sum();
    for (ca, cb) in ca.zip(cb) {
        for ((acc, &x), &y) in acc.iter_mut().zip(ca).zip(cb) {
            *acc += f(x, y);
        }
    }
    acc.iter().sum::<f64>() + rest
}

fn fused_inference<B: Backend>(x: &Tensor<B, 5>, affine: Option<&(Tensor<B, 1>, Tensor<B, 1>)>, eps: f64) -> Option<Tensor<B, 5>> {
    let xp = inference_input(x)?;
    let params = match affine {
        Some((w, b)) => Some((inference_input(w)?, inference_input(b)?)),
        None => None,
    };
    let shape = xp.layout().shape().clone();
    let affine = match &params {
        Some((w, b)) => Some((w.as_slice()?, b.as_slice()?)),
        None => None,
    };
    let (y, _) = forward(xp.as_slice()?, &shape, affine, eps);
    inference_output(tensor_from(y, shape))
}

/// The backward step of [`fused_autodiff`]: parents are `[x]` or `[x, weight, bias]`.
#[derive(Debug)]
struct InstanceNormBackward;

impl<const N: usize> Backward<Cpu, N> for InstanceNormBackward {
    type State = (FlexTensor, Option<FlexTensor>, Stats);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, weight, stats) = ops.state;
        let dy = grads.consume::<Cpu>(&ops.node);
        let shape = x.layout().shape().clone();
        let dy = if dy.is_contiguous() { dy } else { dy.to_contiguous() };
        let (Some(xs), Some(dys)) = (x.as_slice::<f32>(), dy.as_slice::<f32>()) else {
            // Unreachable: both were checked f32 and made contiguous.
            return;
        };
        let (dx, dw, db) = backward(xs, dys, weight.as_ref().and_then(|w| w.as_slice::<f32>()), &stats);
        let mut parents = ops.parents.into_iter();
        if let Some(Some(node)) = parents.next() {
            grads.register::<Cpu>(node.id, tensor_from(dx, shape));
        }
        if let Some(Some(node)) = parents.next() {
            grads.register::<Cpu>(node.id, tensor_from(dw, [stats.channels]));
        }
        if let Some(Some(node)) = parents.next() {
            grads.register::<Cpu>(node.id, tensor_from(db, [stats.channels]));
        }
    }
}

fn fused_autodiff<B: Backend>(x: &Tensor<B, 5>, affine: Option<&(Tensor<B, 1>, Tensor<B, 1>)>, eps: f64) -> Option<Tensor<B, 5>> {
    let (x, xp) = tracked_input(x)?;
    let shape = xp.layout().shape().clone();
    match affine {
        Some((w, b)) => {
            let ((w, wp), (b, bp)) = (tracked_input(w)?, tracked_input(b)?);
            let (y, stats) = forward(xp.as_slice()?, &shape, Some((wp.as_slice()?, bp.as_slice()?)), eps);
            tracked_output(InstanceNormBackward, [&x, &w, &b], (xp, Some(wp), stats), tensor_from(y, shape))
        }
        None => {
            let (y, stats) = forward(xp.as_slice()?, &shape, None, eps);
            tracked_output(InstanceNormBackward, [&x], (xp, None, stats), tensor_from(y, shape))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Init;
    use burn::tensor::TensorData;

    fn max_rel(a: TensorData, b: TensorData) -> f64 {
        assert_eq!(a.shape, b.shape);
        let (a, b) = (a.to_vec::<f32>().expect("f32"), b.to_vec::<f32>().expect("f32"));
        cytodl_testkit::max_abs_diff(&a, &b) / cytodl_testkit::max_abs(&b).max(1e-6)
    }

    /// The fused kernel against the tensor-op formula: output and the gradients of x, weight
    /// and bias, with and without the affine part, batch 1 and 3.
    #[test]
    fn fused_matches_tensor_ops() {
        let device = Default::default();
        for (shape, affine) in [([1, 3, 4, 5, 6], true), ([3, 2, 1, 7, 5], false), ([2, 4, 3, 3, 3], true), ([2, 3, 8, 16, 16], true)] {
            let x = Init::new(1).normal::<CpuTrain, 5>(shape, 1.5, 2.0, &device);
            let w = Init::new(2).normal::<CpuTrain, 1>([shape[1]], 1.0, 0.5, &device);
            let b = Init::new(3).normal::<CpuTrain, 1>([shape[1]], 0.0, 0.5, &device);
            let count: usize = shape.iter().product();
            let ramp: Vec<f32> = (0..count).map(|i| ((i * 7919) % 23) as f32 / 11.0 - 1.0).collect();
            let upstream = Tensor::<CpuTrain, 5>::from_data(TensorData::new(ramp, shape), &device);
            let run = |fused: bool| {
                let (x, w, b) = (x.clone().require_grad(), w.clone().require_grad(), b.clone().require_grad());
                let params = affine.then(|| (w.clone(), b.clone()));
                let y = if fused { instance_norm(x.clone(), params, 1e-5) } else { with_tensor_ops(x.clone(), params, 1e-5) };
                let grads = (y.clone() * upstream.clone()).sum().backward();
                let g = |t: &Tensor<CpuTrain, 1>| t.grad(&grads).map(|g| g.into_data());
                (y.inner().into_data(), x.grad(&grads).map(|g| g.into_data()), g(&w), g(&b))
            };
            let (ours, theirs) = (run(true), run(false));
            assert!(max_rel(ours.0, theirs.0) < 1e-5, "output {shape:?}");
            assert!(max_rel(ours.1.unwrap(), theirs.1.unwrap()) < 1e-4, "x gradient {shape:?}");
            if affine {
                assert!(max_rel(ours.2.unwrap(), theirs.2.unwrap()) < 1e-4, "weight gradient {shape:?}");
                assert!(max_rel(ours.3.unwrap(), theirs.3.unwrap()) < 1e-4, "bias gradient {shape:?}");
            }
        }
    }

    /// Instances are reduced as rows of at least 256 values (the last shape above takes 8).
    #[test]
    fn instances_split_into_rows_of_at_least_256() {
        assert_eq!(rows_per_instance(32 * 64 * 64), 256);
        assert_eq!(rows_per_instance(8 * 16 * 16), 8);
        assert_eq!(rows_per_instance(512), 2);
        assert_eq!(rows_per_instance(300), 1);
        assert_eq!(rows_per_instance(7), 1);
    }

    #[test]
    fn inference_path_matches_tensor_ops() {
        let device = Default::default();
        let x = Init::new(4).normal::<Cpu, 5>([2, 3, 2, 4, 4], 0.0, 3.0, &device);
        let w = Init::new(5).normal::<Cpu, 1>([3], 1.0, 0.5, &device);
        let b = Init::new(6).normal::<Cpu, 1>([3], 0.0, 0.5, &device);
        let ours = instance_norm(x.clone(), Some((w.clone(), b.clone())), 1e-5);
        let theirs = with_tensor_ops(x, Some((w, b)), 1e-5);
        assert!(max_rel(ours.into_data(), theirs.into_data()) < 1e-5);
    }
}
