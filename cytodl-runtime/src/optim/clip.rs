//! Gradient clipping with torch semantics and gradient accumulation.
//!
//! burn's own `GradientClipping::Norm` clips each parameter tensor separately; torch's
//! `clip_grad_norm_` (what Lightning's `gradient_clip_val` calls) scales *all* gradients by one
//! factor computed from the norm over every parameter, which is what [`clip_grad_norm`] does.
//! Everything stays on the device: no host synchronisation per step.

use std::marker::PhantomData;

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;

use super::{invalid, OptimError};

/// Lightning's `gradient_clip_algorithm` with its `gradient_clip_val`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GradClip {
    /// `clip_grad_norm_(params, max_norm, norm_type=2)`.
    Norm(f64),
    /// `clip_grad_value_(params, clip_value)`.
    Value(f64),
}

impl GradClip {
    pub fn validate(&self) -> Result<(), OptimError> {
        match *self {
            Self::Norm(v) if !(v >= 0.0 && v.is_finite()) => Err(invalid("max_norm", format!("must be finite and >= 0, got {v}"))),
            Self::Value(v) if !(v >= 0.0 && v.is_finite()) => Err(invalid("clip_value", format!("must be finite and >= 0, got {v}"))),
            _ => Ok(()),
        }
    }
}

pub(crate) fn apply_clip<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M, grads: GradientsParams, clip: GradClip) -> GradientsParams {
    match clip {
        GradClip::Norm(max_norm) => clip_norm_unchecked(model, grads, max_norm).0,
        GradClip::Value(v) => clip_value_unchecked(model, grads, v),
    }
}

/// Per-parameter L2 norms of the gradients present.
struct NormVisitor<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    norms: Vec<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for NormVisitor<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            self.norms.push(crate::reduce::sum_all(g.square()).sqrt());
        }
    }
}

/// The global L2 norm of all gradients, as torch computes it: the norm of the per-parameter
/// norms. `None` when no parameter has a gradient.
pub fn grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M, grads: &GradientsParams) -> Option<Tensor<B::InnerBackend, 1>> {
    let mut v = NormVisitor::<B> { grads, norms: Vec::new() };
    model.visit(&mut v);
    if v.norms.is_empty() {
        return None;
    }
    Some(Tensor::cat(v.norms, 0).square().sum().sqrt())
}

/// Multiplies every gradient by a `[1]` factor tensor (already on the device).
struct ScaleVisitor<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    factor: Tensor<B::InnerBackend, 1>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ScaleVisitor<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            let dims = g.dims();
            let f = self.factor.clone().reshape([1; D]).expand(dims);
            self.grads.register::<B::InnerBackend, D>(param.id, g * f);
        }
    }
}

fn clip_norm_unchecked<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    mut grads: GradientsParams,
    max_norm: f64,
) -> (GradientsParams, Option<Tensor<B::InnerBackend, 1>>) {
    let Some(total) = grad_norm::<B, M>(model, &grads) else {
        return (grads, None);
    };
    // torch: clip_coef = max_norm / (total_norm + 1e-6), clamped to at most 1, and always applied.
    let factor = total.clone().add_scalar(1e-6).recip().mul_scalar(max_norm).clamp_max(1.0);
    let mut v = ScaleVisitor::<B> { grads: &mut grads, factor };
    model.visit(&mut v);
    (grads, Some(total))
}

/// `torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)` (L2): scales all gradients by
/// `min(1, max_norm / (total_norm + 1e-6))`. Returns the clipped gradients and the total norm
/// before clipping (`None` when there were no gradients), a `[1]` device tensor.
#[allow(clippy::type_complexity)]
pub fn clip_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: GradientsParams,
    max_norm: f64,
) -> Result<(GradientsParams, Option<Tensor<B::InnerBackend, 1>>), OptimError> {
    GradClip::Norm(max_norm).validate()?;
    Ok(clip_norm_unchecked(model, grads, max_norm))
}

struct ClampVisitor<'a> {
    grads: &'a mut GradientsParams,
    value: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ClampVisitor<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            let g = g.clamp(-self.value, self.value);
            self.grads.register::<B::InnerBackend, D>(param.id, g);
        }
    }
}

fn clip_value_unchecked<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M, mut grads: GradientsParams, value: f64) -> GradientsParams {
    let mut v = ClampVisitor { grads: &mut grads, value };
    ModuleVisitorFor::<B>::visit(model, &mut v);
    grads
}

/// `torch.nn.utils.clip_grad_value_(model.parameters(), clip_value)`: clamps every gradient
/// element to `[-clip_value, clip_value]`.
pub fn clip_grad_value<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M, grads: GradientsParams, clip_value: f64) -> Result<GradientsParams, OptimError> {
    GradClip::Value(clip_value).validate()?;
    Ok(clip_value_unchecked(model, grads, clip_value))
}

/// Multiplies every gradient by `factor` (e.g. `1/k` to average accumulated gradients).
pub fn scale_grads<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M, mut grads: GradientsParams, factor: f64) -> GradientsParams {
    let Some(device) = first_device::<B, M>(model) else {
        return grads;
    };
    let factor = Tensor::<B::InnerBackend, 1>::from_floats([factor as f32], &device);
    let mut v = ScaleVisitor::<B> { grads: &mut grads, factor };
    model.visit(&mut v);
    grads
}

struct DeviceVisitor<B: AutodiffBackend> {
    device: Option<B::Device>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for DeviceVisitor<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if self.device.is_none() {
            self.device = Some(param.val().device());
        }
    }
}

fn first_device<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M) -> Option<B::Device> {
    let mut v = DeviceVisitor::<B> { device: None };
    model.visit(&mut v);
    v.device
}

/// Adds new gradients into the running sum, parameter by parameter.
struct AccumVisitor<'a> {
    sum: &'a mut GradientsParams,
    new: GradientsParams,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for AccumVisitor<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let id = param.id;
        let merged = match (self.sum.remove::<B::InnerBackend, D>(id), self.new.remove::<B::InnerBackend, D>(id)) {
            (Some(a), Some(b)) => a + b,
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => return,
        };
        self.sum.register::<B::InnerBackend, D>(id, merged);
    }
}

/// Gradient accumulation (Lightning's `accumulate_grad_batches = k`): add the gradients of each
/// micro-batch, then step on [`GradAccumulator::take_mean`] once [`GradAccumulator::count`]
/// reaches `k`. Lightning divides each micro-batch loss by `k`, so its step sees the *mean* of the
/// micro-batch gradients; [`GradAccumulator::take_sum`] gives the plain sum. Clipping (if any)
/// belongs after accumulation, which [`super::Optimizer::step`] does.
///
/// `B` is the training backend; the methods take it again (`accumulate::<B, _>`) because a burn
/// module type does not name its backend.
pub struct GradAccumulator<B: AutodiffBackend> {
    sum: GradientsParams,
    count: usize,
    backend: PhantomData<B>,
}

impl<B: AutodiffBackend> Default for GradAccumulator<B> {
    fn default() -> Self {
        Self { sum: GradientsParams::new(), count: 0, backend: PhantomData }
    }
}

impl<B: AutodiffBackend> std::fmt::Debug for GradAccumulator<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GradAccumulator").field("count", &self.count).finish()
    }
}

impl<Bk: AutodiffBackend> GradAccumulator<Bk> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one micro-batch's gradients (call as `accumulate::<B, _>` when `B` is not inferred).
    pub fn accumulate<B: AutodiffBackend, M: AutodiffModule<B>>(&mut self, model: &M, grads: GradientsParams) {
        let mut v = AccumVisitor { sum: &mut self.sum, new: grads };
        ModuleVisitorFor::<B>::visit(model, &mut v);
        self.count += 1;
    }

    /// Micro-batches accumulated since the last take.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The summed gradients; resets the accumulator.
    pub fn take_sum(&mut self) -> GradientsParams {
        self.count = 0;
        std::mem::take(&mut self.sum)
    }

    /// The mean of the accumulated gradients (sum / count); resets the accumulator.
    pub fn take_mean<B: AutodiffBackend, M: AutodiffModule<B>>(&mut self, model: &M) -> GradientsParams {
        let n = self.count;
        let sum = self.take_sum();
        if n <= 1 {
            return sum;
        }
        scale_grads::<B, M>(model, sum, 1.0 / n as f64)
    }
}

/// Pins the backend of a visit whose visitor is generic over it.
struct ModuleVisitorFor<B>(PhantomData<B>);

impl<B: AutodiffBackend> ModuleVisitorFor<B> {
    fn visit<M: AutodiffModule<B>, V: ModuleVisitor<B>>(model: &M, v: &mut V) {
        model.visit(v);
    }
}
