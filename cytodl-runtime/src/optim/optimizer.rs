//! Adam, AdamW and SGD with torch 2.5's single-tensor formulas (`torch/optim/{adam,adamw,sgd}.py`).
//!
//! Every parameter is updated as a flat 1-D tensor: the updates are elementwise, and flat state
//! lets one map hold parameters of every rank.

use std::collections::HashMap;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, Tensor, TensorData};

use super::clip::{apply_clip, GradClip};
use super::record::{OptimizerRecord, ParamRecord};
use super::state_store::StateStore;
use super::{invalid, OptimError};

/// `torch.optim.Adam`: `weight_decay` is L2 added to the gradient.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamConfig {
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    /// torch's defaults as `cytodl-schema` declares them (eps 1e-8, not burn's 1e-5).
    fn default() -> Self {
        Self::try_from(&cytodl_schema::component::declared_defaults::<cytodl_schema::Adam>()).expect("the declared defaults are valid")
    }
}

/// `torch.optim.AdamW`: decoupled decay `p *= 1 - lr * weight_decay` before the Adam step.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamWConfig {
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    pub amsgrad: bool,
}

impl Default for AdamWConfig {
    /// torch's defaults as `cytodl-schema` declares them (weight_decay 1e-2, not burn's 1e-4).
    fn default() -> Self {
        Self::try_from(&cytodl_schema::component::declared_defaults::<cytodl_schema::AdamW>()).expect("the declared defaults are valid")
    }
}

/// torch's `betas`: exactly two.
fn betas(b: &[f64]) -> Result<(f64, f64), OptimError> {
    match b {
        [b1, b2] => Ok((*b1, *b2)),
        other => Err(invalid("betas", format!("needs two values, got {}", other.len()))),
    }
}

impl TryFrom<&cytodl_schema::Adam> for AdamConfig {
    type Error = OptimError;
    fn try_from(o: &cytodl_schema::Adam) -> Result<Self, OptimError> {
        Ok(AdamConfig { betas: betas(&o.betas)?, eps: o.eps, weight_decay: o.weight_decay, amsgrad: o.amsgrad })
    }
}

impl TryFrom<&cytodl_schema::AdamW> for AdamWConfig {
    type Error = OptimError;
    fn try_from(o: &cytodl_schema::AdamW) -> Result<Self, OptimError> {
        Ok(AdamWConfig { betas: betas(&o.betas)?, eps: o.eps, weight_decay: o.weight_decay, amsgrad: o.amsgrad })
    }
}

/// `torch.optim.SGD`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SgdConfig {
    pub momentum: f64,
    /// torch's default 0 (burn's is 0.1).
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

/// Which optimizer; the learning rate is not part of it (it comes from the schedule each step).
#[derive(Debug, Clone, PartialEq)]
pub enum OptimizerConfig {
    Adam(AdamConfig),
    AdamW(AdamWConfig),
    Sgd(SgdConfig),
}

/// The optimizer family, recorded with its state so that a state is not loaded into another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    Adam,
    AdamW,
    Sgd,
}

impl OptimizerKind {
    pub(crate) fn tag(self) -> u8 {
        match self {
            Self::Adam => 0,
            Self::AdamW => 1,
            Self::Sgd => 2,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            0 => Some(Self::Adam),
            1 => Some(Self::AdamW),
            2 => Some(Self::Sgd),
            _ => None,
        }
    }
}

fn check_adam(betas: (f64, f64), eps: f64, weight_decay: f64) -> Result<(), OptimError> {
    if !(0.0..1.0).contains(&betas.0) {
        return Err(invalid("betas", format!("beta1 must be in [0, 1), got {}", betas.0)));
    }
    if !(0.0..1.0).contains(&betas.1) {
        return Err(invalid("betas", format!("beta2 must be in [0, 1), got {}", betas.1)));
    }
    if !(eps >= 0.0 && eps.is_finite()) {
        return Err(invalid("eps", format!("must be finite and >= 0, got {eps}")));
    }
    check_weight_decay(weight_decay)
}

fn check_weight_decay(wd: f64) -> Result<(), OptimError> {
    if !(wd >= 0.0 && wd.is_finite()) {
        return Err(invalid("weight_decay", format!("must be finite and >= 0, got {wd}")));
    }
    Ok(())
}

impl OptimizerConfig {
    /// The update of one flattened parameter (or several concatenated) and its state.
    fn update<B: Backend>(&self, lr: f64, p: Tensor<B, 1>, g: Tensor<B, 1>, state: Option<ParamState<B>>) -> (Tensor<B, 1>, ParamState<B>) {
        let adam =
            |betas: (f64, f64), eps, weight_decay, amsgrad, decoupled| AdamHyper { beta1: betas.0, beta2: betas.1, eps, weight_decay, amsgrad, decoupled };
        match self {
            Self::Adam(c) => adam_update(&adam(c.betas, c.eps, c.weight_decay, c.amsgrad, false), lr, p, g, state),
            Self::AdamW(c) => adam_update(&adam(c.betas, c.eps, c.weight_decay, c.amsgrad, true), lr, p, g, state),
            Self::Sgd(c) => sgd_update(c, lr, p, g, state),
        }
    }

    /// Whether this update runs as one hand-written kernel per parameter on backend `I` (Adam
    /// and AdamW without AMSGrad on CUDA and wgpu without fusion, [`super::adam_gpu`]); the
    /// optimizer then updates parameters one by one instead of concatenating them.
    pub fn has_gpu_kernel<I: Backend>(&self) -> bool {
        #[cfg(any(feature = "cuda", feature = "wgpu"))]
        if let Self::Adam(AdamConfig { amsgrad: false, .. }) | Self::AdamW(AdamWConfig { amsgrad: false, .. }) = self {
            return super::adam_gpu::available::<I>();
        }
        false
    }

    /// torch's constructor checks, with the parameter named.
    pub fn validate(&self) -> Result<(), OptimError> {
        match self {
            Self::Adam(c) => check_adam(c.betas, c.eps, c.weight_decay),
            Self::AdamW(c) => check_adam(c.betas, c.eps, c.weight_decay),
            Self::Sgd(c) => {
                if !(c.momentum >= 0.0 && c.momentum.is_finite()) {
                    return Err(invalid("momentum", format!("must be finite and >= 0, got {}", c.momentum)));
                }
                if !c.dampening.is_finite() {
                    return Err(invalid("dampening", format!("must be finite, got {}", c.dampening)));
                }
                check_weight_decay(c.weight_decay)?;
                if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
                    return Err(invalid("nesterov", "Nesterov momentum requires a momentum and zero dampening"));
                }
                Ok(())
            }
        }
    }

    pub fn kind(&self) -> OptimizerKind {
        match self {
            Self::Adam(_) => OptimizerKind::Adam,
            Self::AdamW(_) => OptimizerKind::AdamW,
            Self::Sgd(_) => OptimizerKind::Sgd,
        }
    }
}

/// Per-parameter state, flat (`[numel]`).
#[derive(Clone)]
pub(crate) enum ParamState<B: Backend> {
    Adam { step: u64, exp_avg: Tensor<B, 1>, exp_avg_sq: Tensor<B, 1>, max_exp_avg_sq: Option<Tensor<B, 1>> },
    Sgd { momentum_buffer: Option<Tensor<B, 1>> },
}

impl<B: Backend> ParamState<B> {
    /// The states of parameters updated together, concatenated (`None` if they start afresh;
    /// all members share a [`GroupKey`]).
    pub(super) fn cat(states: Vec<Option<Self>>) -> Option<Self> {
        let states: Vec<Self> = states.into_iter().collect::<Option<_>>()?;
        let cat = |ts: Vec<Tensor<B, 1>>| match ts.len() {
            0 => None,
            1 => ts.into_iter().next(),
            _ => Some(Tensor::cat(ts, 0)),
        };
        match states.first()? {
            Self::Adam { step, .. } => {
                let step = *step;
                let (mut avg, mut sq, mut max) = (Vec::new(), Vec::new(), Vec::new());
                for state in states {
                    if let Self::Adam { exp_avg, exp_avg_sq, max_exp_avg_sq, .. } = state {
                        avg.push(exp_avg);
                        sq.push(exp_avg_sq);
                        max.extend(max_exp_avg_sq);
                    }
                }
                Some(Self::Adam { step, exp_avg: cat(avg)?, exp_avg_sq: cat(sq)?, max_exp_avg_sq: cat(max) })
            }
            Self::Sgd { .. } => {
                let buffers: Vec<_> = states.into_iter().filter_map(|s| if let Self::Sgd { momentum_buffer } = s { momentum_buffer } else { None }).collect();
                Some(Self::Sgd { momentum_buffer: cat(buffers) })
            }
        }
    }

    /// This state of concatenated parameters, split back into one per parameter.
    pub(super) fn split(self, sizes: &[usize]) -> Vec<Self> {
        let split = |t: Tensor<B, 1>| if sizes.len() == 1 { vec![t] } else { t.split_with_sizes(sizes.to_vec(), 0) };
        let split_optional = |t: Option<Tensor<B, 1>>| match t {
            Some(t) => split(t).into_iter().map(Some).collect(),
            None => vec![None; sizes.len()],
        };
        match self {
            Self::Adam { step, exp_avg, exp_avg_sq, max_exp_avg_sq } => split(exp_avg)
                .into_iter()
                .zip(split(exp_avg_sq))
                .zip(split_optional(max_exp_avg_sq))
                .map(|((exp_avg, exp_avg_sq), max_exp_avg_sq)| Self::Adam { step, exp_avg, exp_avg_sq, max_exp_avg_sq })
                .collect(),
            Self::Sgd { momentum_buffer } => split_optional(momentum_buffer).into_iter().map(|momentum_buffer| Self::Sgd { momentum_buffer }).collect(),
        }
    }

    fn numel(&self) -> Option<usize> {
        match self {
            Self::Adam { exp_avg, .. } => Some(exp_avg.dims()[0]),
            Self::Sgd { momentum_buffer } => momentum_buffer.as_ref().map(|t| t.dims()[0]),
        }
    }
}

struct AdamHyper {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    decoupled: bool,
}

/// torch `_single_tensor_adam` / `_single_tensor_adamw` for one parameter:
/// ```text
/// AdamW: p *= 1 - lr*wd            Adam: g += wd*p
/// t += 1
/// m = lerp(m, g, 1 - b1)          = m + (1 - b1)(g - m)
/// v = b2 v + (1 - b2) g²
/// denom = sqrt(v) / sqrt(1 - b2^t) + eps     (v -> max(v_max, v) with amsgrad)
/// p -= lr / (1 - b1^t) * m / denom
/// ```
/// The bias corrections are f64 like Python floats; tensor math is in the parameter dtype.
fn adam_update<B: Backend>(h: &AdamHyper, lr: f64, mut p: Tensor<B, 1>, mut g: Tensor<B, 1>, state: Option<ParamState<B>>) -> (Tensor<B, 1>, ParamState<B>) {
    let n = p.dims()[0];
    let (step, exp_avg, exp_avg_sq, max_sq) = match state {
        Some(ParamState::Adam { step, exp_avg, exp_avg_sq, max_exp_avg_sq }) if exp_avg.dims()[0] == n => (step, exp_avg, exp_avg_sq, max_exp_avg_sq),
        _ => {
            let z = Tensor::<B, 1>::zeros([n], &p.device());
            (0, z.clone(), z.clone(), h.amsgrad.then_some(z))
        }
    };
    let step = step + 1;
    let t = step as f64;
    let bias_correction1 = 1.0 - h.beta1.powf(t);
    let bias_correction2 = 1.0 - h.beta2.powf(t);
    let step_size = lr / bias_correction1;
    let bias_correction2_sqrt = bias_correction2.sqrt();
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    if !h.amsgrad {
        let c = super::adam_gpu::AdamCoefficients {
            decay: if h.decoupled { (1.0 - lr * h.weight_decay) as f32 } else { 1.0 },
            l2: (!h.decoupled && h.weight_decay != 0.0).then_some(h.weight_decay as f32),
            one_minus_beta1: (1.0 - h.beta1) as f32,
            beta2: h.beta2 as f32,
            one_minus_beta2: (1.0 - h.beta2) as f32,
            bias_correction2_sqrt: bias_correction2_sqrt as f32,
            eps: h.eps as f32,
            step_size: step_size as f32,
        };
        if let Some([p, exp_avg, exp_avg_sq]) = super::adam_gpu::update(&p, &g, &exp_avg, &exp_avg_sq, &c) {
            return (p, ParamState::Adam { step, exp_avg, exp_avg_sq, max_exp_avg_sq: None });
        }
    }
    if h.decoupled {
        p = p.mul_scalar(1.0 - lr * h.weight_decay);
    } else if h.weight_decay != 0.0 {
        g = g + p.clone().mul_scalar(h.weight_decay);
    }
    let exp_avg = exp_avg.clone() + (g.clone() - exp_avg).mul_scalar(1.0 - h.beta1);
    let exp_avg_sq = exp_avg_sq.mul_scalar(h.beta2) + g.square().mul_scalar(1.0 - h.beta2);
    let (v, max_exp_avg_sq) = if h.amsgrad {
        let m = match max_sq {
            Some(m) => m.max_pair(exp_avg_sq.clone()),
            None => exp_avg_sq.clone(),
        };
        (m.clone(), Some(m))
    } else {
        (exp_avg_sq.clone(), None)
    };
    let denom = v.sqrt().div_scalar(bias_correction2_sqrt).add_scalar(h.eps);
    let p = p - (exp_avg.clone() / denom).mul_scalar(step_size);
    (p, ParamState::Adam { step, exp_avg, exp_avg_sq, max_exp_avg_sq })
}

/// torch `_single_tensor_sgd` for one parameter:
/// ```text
/// g += wd*p
/// buf = g (first step) | momentum*buf + (1 - dampening) g
/// g = g + momentum*buf (nesterov) | buf
/// p -= lr*g
/// ```
fn sgd_update<B: Backend>(c: &SgdConfig, lr: f64, p: Tensor<B, 1>, mut g: Tensor<B, 1>, state: Option<ParamState<B>>) -> (Tensor<B, 1>, ParamState<B>) {
    let n = p.dims()[0];
    if c.weight_decay != 0.0 {
        g = g + p.clone().mul_scalar(c.weight_decay);
    }
    let mut momentum_buffer = None;
    if c.momentum != 0.0 {
        let buf = match state {
            Some(ParamState::Sgd { momentum_buffer: Some(b) }) if b.dims()[0] == n => b.mul_scalar(c.momentum) + g.clone().mul_scalar(1.0 - c.dampening),
            _ => g.clone(),
        };
        g = if c.nesterov { g + buf.clone().mul_scalar(c.momentum) } else { buf.clone() };
        momentum_buffer = Some(buf);
    }
    (p - g.mul_scalar(lr), ParamState::Sgd { momentum_buffer })
}

/// Adam / AdamW / SGD with torch semantics over any burn module, plus optional gradient
/// clipping applied to the (possibly accumulated) gradients before each step, as Lightning does.
pub struct Optimizer<B: AutodiffBackend> {
    config: OptimizerConfig,
    clip: Option<GradClip>,
    states: StateStore<B::InnerBackend>,
}

impl<B: AutodiffBackend> std::fmt::Debug for Optimizer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Optimizer").field("config", &self.config).field("clip", &self.clip).field("params_with_state", &self.states.len()).finish()
    }
}

impl<B: AutodiffBackend> Optimizer<B> {
    /// An optimizer with no state yet (torch creates state lazily on the first step too).
    pub fn new(config: OptimizerConfig) -> Result<Self, OptimError> {
        config.validate()?;
        Ok(Self { config, clip: None, states: StateStore::default() })
    }

    /// Clips the gradients inside every [`Optimizer::step`].
    pub fn with_grad_clip(mut self, clip: GradClip) -> Result<Self, OptimError> {
        clip.validate()?;
        self.clip = Some(clip);
        Ok(self)
    }

    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    pub fn grad_clip(&self) -> Option<GradClip> {
        self.clip
    }

    /// Sets Adam/AdamW `beta1` or SGD `momentum`, as `OneCycleLR(cycle_momentum=True)` does each
    /// step (see [`super::Scheduler::momentum_at`]).
    pub fn set_momentum(&mut self, momentum: f64) -> Result<(), OptimError> {
        let mut config = self.config.clone();
        match &mut config {
            OptimizerConfig::Adam(c) => c.betas.0 = momentum,
            OptimizerConfig::AdamW(c) => c.betas.0 = momentum,
            OptimizerConfig::Sgd(c) => c.momentum = momentum,
        }
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// One optimizer step at learning rate `lr` (the schedule's value for this epoch).
    /// Parameters without a gradient (frozen, unused) are left alone and keep their state, as in
    /// torch. Gradients are consumed.
    ///
    /// Parameters whose states agree (same step count, same buffers, same dtype) are updated
    /// together, as torch's multi-tensor (`foreach`) optimizers do on GPUs: their values,
    /// gradients and buffers are concatenated, the update runs once on the long vectors, and the
    /// new values are split back; the new state stays concatenated for the next step
    /// ([`StateStore`]). The update is elementwise, so every value is the one the per-parameter
    /// update gives, bit for bit; a GPU backend launches ~15 kernels per group instead of ~15 per
    /// parameter (~700 for a DynUNet).
    ///
    /// Where one parameter's update is one kernel — a backend with burn's operation fusion
    /// (`gpu-fusion`), or Adam/AdamW on CUDA and wgpu, which have a hand-written kernel
    /// ([`super::adam_gpu`]) — concatenating costs more launches than it saves, so every
    /// parameter is updated on its own, and a group of one is never concatenated (per small
    /// DynUNet step: 546 -> 446 launches on wgpu with fusion, 821 -> 721 on wgpu with the Adam
    /// kernel; BENCHMARKS.md).
    pub fn step<M: AutodiffModule<B>>(&mut self, lr: f64, model: M, grads: GradientsParams) -> M {
        self.step_grouped(lr, model, grads, None)
    }

    /// [`Optimizer::step`], with `per_parameter` forcing either grouping (tests compare them);
    /// `None` decides by the backend.
    fn step_grouped<M: AutodiffModule<B>>(&mut self, lr: f64, model: M, grads: GradientsParams, per_parameter: Option<bool>) -> M {
        let mut grads = grads;
        if let Some(clip) = self.clip {
            grads = apply_clip(&model, grads, clip);
        }
        let mut collect = CollectParams::<B> { grads: &grads, path: Vec::new(), params: Vec::new() };
        model.visit(&mut collect);
        let params = collect.params;
        let per_parameter =
            per_parameter.unwrap_or_else(|| params.first().is_some_and(|p| updates_each_in_one_kernel::<B::InnerBackend>(&self.config, &p.value.device())));
        let mut groups: Vec<(GroupKey, Vec<ParamToStep<B>>)> = Vec::new();
        for param in params {
            // A state of another size (the architecture changed) is not used: the update starts afresh.
            let state = self.states.get(&param.key).filter(|(_, numel)| *numel == param.numel).map(|(s, _)| s);
            let key = GroupKey::of(&param, state);
            let joined = if per_parameter { None } else { groups.iter_mut().find(|(k, _)| *k == key) };
            match joined {
                Some((_, members)) => members.push(param),
                None => groups.push((key, vec![param])),
            }
        }
        let mut updated = HashMap::new();
        for (key, params) in groups {
            let keys: Vec<String> = params.iter().map(|p| p.key.clone()).collect();
            let sizes: Vec<usize> = params.iter().map(|p| p.numel).collect();
            let state = if key.fresh {
                self.states.discard(&keys);
                None
            } else {
                self.states.take_group(&keys)
            };
            // A group of one is used as it is: burn's `cat` copies even a single tensor.
            let (p, g) = match params.as_slice() {
                [one] => (one.value.clone(), one.grad.clone()),
                _ => (Tensor::cat(params.iter().map(|m| m.value.clone()).collect(), 0), Tensor::cat(params.iter().map(|m| m.grad.clone()).collect(), 0)),
            };
            let (p, state) = self.config.update(lr, p, g, state);
            let values = if sizes.len() == 1 { vec![p] } else { p.split_with_sizes(sizes.clone(), 0) };
            for (param, value) in params.into_iter().zip(values) {
                updated.insert(param.id, value);
            }
            self.states.insert(keys, sizes, state);
        }
        model.map(&mut WriteBack::<B> { updated })
    }

    /// Forgets all state (a fresh optimizer with the same configuration).
    pub fn reset(&mut self) {
        self.states.clear();
    }

    /// The state, copied to the host, for a checkpoint.
    pub fn to_record(&self) -> OptimizerRecord {
        let mut rec = OptimizerRecord::new(self.config.kind());
        let to_vec = |t: &Tensor<B::InnerBackend, 1>| -> Vec<f32> { t.to_data().convert::<f32>().to_vec::<f32>().unwrap_or_default() };
        for (keys, sizes, state) in self.states.groups() {
            // One host copy per buffer of the group, cut into its members' shares.
            let (step, buffers): (u64, Vec<(&str, Vec<f32>)>) = match state {
                ParamState::Adam { step, exp_avg, exp_avg_sq, max_exp_avg_sq } => {
                    let mut buffers = vec![("exp_avg", to_vec(exp_avg)), ("exp_avg_sq", to_vec(exp_avg_sq))];
                    buffers.extend(max_exp_avg_sq.as_ref().map(|m| ("max_exp_avg_sq", to_vec(m))));
                    (*step, buffers)
                }
                ParamState::Sgd { momentum_buffer } => (0, momentum_buffer.iter().map(|b| ("momentum_buffer", to_vec(b))).collect()),
            };
            let mut start = 0;
            for (key, &size) in keys.iter().zip(sizes) {
                let mut pr = ParamRecord { step, ..ParamRecord::default() };
                for (name, values) in &buffers {
                    pr.buffers.insert((*name).into(), values.get(start..start + size).map(<[f32]>::to_vec).unwrap_or_default());
                }
                rec.params.insert(key.clone(), pr);
                start += size;
            }
        }
        rec
    }

    /// Restores a state saved by [`Optimizer::to_record`], checked against `model` (every entry
    /// must name one of its parameters with the same element count); tensors go to that
    /// parameter's device. On error the current state is kept.
    pub fn load_record<M: AutodiffModule<B>>(&mut self, record: &OptimizerRecord, model: &M) -> Result<(), OptimError> {
        let kind = self.config.kind();
        if record.kind != kind {
            return Err(OptimError::Record(format!("saved for {:?}, loading into {:?}", record.kind, kind)));
        }
        let mut visitor = ParamInfo::<B> { path: Vec::new(), params: HashMap::new() };
        model.visit(&mut visitor);
        let mut states = StateStore::default();
        for (key, pr) in &record.params {
            let Some((numel, device)) = visitor.params.get(key) else {
                return Err(OptimError::Record(format!("no parameter `{key}` in the model")));
            };
            let take = |name: &str, required: bool| -> Result<Option<Tensor<B::InnerBackend, 1>>, OptimError> {
                match pr.buffers.get(name) {
                    None if required => Err(OptimError::Record(format!("`{key}` has no `{name}` buffer"))),
                    None => Ok(None),
                    Some(v) if v.len() != *numel => Err(OptimError::Record(format!("`{key}.{name}` has {} values, the parameter has {numel}", v.len()))),
                    Some(v) => Ok(Some(Tensor::from_data(TensorData::new(v.clone(), [*numel]), device))),
                }
            };
            let state = match kind {
                OptimizerKind::Adam | OptimizerKind::AdamW => {
                    let exp_avg = take("exp_avg", true)?;
                    let exp_avg_sq = take("exp_avg_sq", true)?;
                    let max_exp_avg_sq = take("max_exp_avg_sq", false)?;
                    match (exp_avg, exp_avg_sq) {
                        (Some(exp_avg), Some(exp_avg_sq)) => ParamState::Adam { step: pr.step, exp_avg, exp_avg_sq, max_exp_avg_sq },
                        _ => return Err(OptimError::Record(format!("`{key}` lacks Adam moments"))),
                    }
                }
                OptimizerKind::Sgd => ParamState::Sgd { momentum_buffer: take("momentum_buffer", false)? },
            };
            if let Some(unknown) = pr.buffers.keys().find(|k| {
                !matches!(
                    (kind, k.as_str()),
                    (OptimizerKind::Adam | OptimizerKind::AdamW, "exp_avg" | "exp_avg_sq" | "max_exp_avg_sq") | (OptimizerKind::Sgd, "momentum_buffer")
                )
            }) {
                return Err(OptimError::Record(format!("`{key}` has an unknown buffer `{unknown}`")));
            }
            debug_assert_eq!(state.numel().unwrap_or(*numel), *numel);
            states.insert(vec![key.clone()], vec![*numel], state);
        }
        self.states = states;
        Ok(())
    }
}

/// Whether one parameter's update is a single kernel launch on `device` — burn's fusion, or
/// Adam's GPU kernel ([`super::adam_gpu`]) — so that grouping parameters would only add copies.
fn updates_each_in_one_kernel<I: Backend>(config: &OptimizerConfig, device: &I::Device) -> bool {
    fuses_elementwise::<I>(device) || config.has_gpu_kernel::<I>()
}

/// Whether `I` fuses element-wise operations into one kernel (burn's `Fusion` backend, which
/// names itself `fusion<...>`).
fn fuses_elementwise<I: Backend>(device: &I::Device) -> bool {
    I::name(device).starts_with("fusion")
}

/// Joins the module path the mapper/visitor is in, e.g. `backbone.conv.weight`.
fn join_path(path: &[String]) -> String {
    if path.is_empty() {
        "param".to_string()
    } else {
        path.join(".")
    }
}

/// A parameter the step updates: its path, flattened value and gradient.
struct ParamToStep<B: AutodiffBackend> {
    id: ParamId,
    key: String,
    numel: usize,
    value: Tensor<B::InnerBackend, 1>,
    grad: Tensor<B::InnerBackend, 1>,
}

/// What parameters must share to be updated together.
#[derive(Debug, Clone, PartialEq)]
struct GroupKey {
    dtype: DType,
    /// No usable state (first step, or a state of another size): the update starts afresh.
    fresh: bool,
    /// Adam's step count (bias corrections depend on it).
    step: u64,
    /// Which optional buffers the state holds (amsgrad's maximum, SGD's momentum).
    buffers: (bool, bool),
}

impl GroupKey {
    fn of<B: AutodiffBackend>(param: &ParamToStep<B>, state: Option<&ParamState<B::InnerBackend>>) -> Self {
        let dtype = param.value.dtype();
        match state {
            Some(ParamState::Adam { step, max_exp_avg_sq, .. }) => GroupKey { dtype, fresh: false, step: *step, buffers: (max_exp_avg_sq.is_some(), false) },
            Some(ParamState::Sgd { momentum_buffer: Some(_) }) => GroupKey { dtype, fresh: false, step: 0, buffers: (false, true) },
            Some(ParamState::Sgd { momentum_buffer: None }) | None => GroupKey { dtype, fresh: true, step: 0, buffers: (false, false) },
        }
    }
}

/// Collects, in module order, every float parameter that has a gradient.
struct CollectParams<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    path: Vec<String>,
    params: Vec<ParamToStep<B>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for CollectParams<'_, B> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) else {
            return;
        };
        let value = param.val().inner();
        let numel: usize = value.dims().iter().product();
        self.params.push(ParamToStep { id: param.id, key: join_path(&self.path), numel, value: value.reshape([numel]), grad: grad.reshape([numel]) });
    }
}

/// Puts the updated values back into the module (parameters without one are left alone).
struct WriteBack<B: AutodiffBackend> {
    updated: HashMap<ParamId, Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleMapper<B> for WriteBack<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(value) = self.updated.remove(&id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let mut tensor = Tensor::<B, D>::from_inner(value.reshape(tensor.dims()));
        if require_grad {
            tensor = tensor.require_grad();
        }
        Param::from_mapped_value(id, tensor, mapper)
    }
}

/// Collects `path -> (numel, device)` of every float parameter.
struct ParamInfo<B: AutodiffBackend> {
    path: Vec<String>,
    params: HashMap<String, (usize, B::Device)>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ParamInfo<B> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val();
        let numel = t.dims().iter().product();
        self.params.insert(join_path(&self.path), (numel, t.device()));
    }
}

/// The optimizer a config names (`cytodl-schema`); the learning rate is the run's setting.
impl TryFrom<&cytodl_schema::OptimizerConfig> for OptimizerConfig {
    type Error = OptimError;
    fn try_from(c: &cytodl_schema::OptimizerConfig) -> Result<Self, OptimError> {
        use cytodl_schema::OptimizerConfig as C;
        Ok(match c {
            C::Adam(o) => OptimizerConfig::Adam(o.try_into()?),
            C::AdamW(o) => OptimizerConfig::AdamW(o.try_into()?),
            C::SGD(o) => OptimizerConfig::Sgd(SgdConfig { momentum: o.momentum, dampening: o.dampening, nesterov: o.nesterov, weight_decay: o.weight_decay }),
        })
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    use super::*;
    use crate::backend::Cpu;

    fn vector(seed: u64, n: usize) -> Tensor<Cpu, 1> {
        let values: Vec<f32> = (0..n).map(|i| (((i as u64 + 1) * (seed * 7919 + 13)) % 1000) as f32 / 250.0 - 2.0).collect();
        Tensor::from_data(TensorData::new(values, [n]), &Default::default())
    }

    fn bits(t: &Tensor<Cpu, 1>) -> Vec<u32> {
        t.to_data().to_vec::<f32>().expect("f32").into_iter().map(f32::to_bits).collect()
    }

    #[derive(burn::module::Module, Debug)]
    // The generic must be called `B`: burn's derive recognises parameter fields by it.
    struct Three<B: Backend> {
        a: Param<Tensor<B, 1>>,
        b: Param<Tensor<B, 1>>,
        c: Param<Tensor<B, 1>>,
    }

    /// The optimizer keeps each group's state concatenated between steps; when the grouping
    /// changes (a parameter without a gradient for a step, then back) and across a saved and
    /// restored state, every parameter still gets exactly the per-parameter update with its own
    /// step count, as torch does.
    #[test]
    fn states_kept_by_group_follow_each_parameter_when_groups_change() {
        use crate::backend::CpuTrain;
        let sizes = [3usize, 1, 4];
        let param = |i: usize| Param::from_tensor(Tensor::<CpuTrain, 1>::from_inner(vector(i as u64, sizes[i])).require_grad());
        let config = OptimizerConfig::Adam(AdamConfig { weight_decay: 0.01, ..Default::default() });
        for per_parameter in [false, true] {
            let mut model = Three::<CpuTrain> { a: param(0), b: param(1), c: param(2) };
            let ids = [model.a.id, model.b.id, model.c.id];
            let mut opt = Optimizer::<CpuTrain>::new(config.clone()).expect("valid");
            let mut expected: Vec<(Tensor<Cpu, 1>, Option<ParamState<Cpu>>)> = (0..3).map(|i| (vector(i as u64, sizes[i]), None)).collect();
            // Which parameters have a gradient at each step: b is frozen at steps 2 and 3.
            let with_grad = [[true, true, true], [true, true, true], [true, false, true], [true, false, true], [true, true, true], [true, true, true]];
            for (step, has) in with_grad.iter().enumerate() {
                let mut grads = GradientsParams::new();
                for i in (0..3).filter(|&i| has[i]) {
                    let g = vector(100 + 10 * step as u64 + i as u64, sizes[i]);
                    grads.register::<Cpu, 1>(ids[i], g.clone());
                    let (p, state) = expected[i].clone();
                    let (p, state) = config.update(1e-2, p, g, state);
                    expected[i] = (p, Some(state));
                }
                model = opt.step_grouped(1e-2, model, grads, Some(per_parameter));
                if step == 3 {
                    // A checkpoint between steps: the restored optimizer goes on identically.
                    let record = opt.to_record();
                    assert_eq!(record.params["b"].step, 2, "b stepped twice before it was frozen");
                    assert_eq!(record.params["a"].step, 4);
                    let mut restored = Optimizer::<CpuTrain>::new(config.clone()).expect("valid");
                    restored.load_record(&record, &model).expect("fits the model");
                    assert_eq!(restored.to_record(), record);
                    opt = restored;
                }
                let got = [model.a.val().inner(), model.b.val().inner(), model.c.val().inner()];
                for (i, (value, (want, _))) in got.iter().zip(&expected).enumerate() {
                    assert_eq!(bits(value), bits(want), "parameter {i} after step {step}, per parameter: {per_parameter}");
                }
            }
        }
        assert!(!fuses_elementwise::<Cpu>(&Default::default()));
    }

    /// Parameters updated together (concatenated, one update, split) get exactly the values and
    /// states the per-parameter update gives: Adam with amsgrad and weight decay, AdamW, SGD with
    /// Nesterov momentum, from a state at step 4.
    #[test]
    fn grouped_update_equals_per_parameter_update_bit_for_bit() {
        let configs = [
            OptimizerConfig::Adam(AdamConfig { amsgrad: true, weight_decay: 0.01, ..Default::default() }),
            OptimizerConfig::AdamW(AdamWConfig::default()),
            OptimizerConfig::Sgd(SgdConfig { momentum: 0.9, nesterov: true, ..Default::default() }),
        ];
        let sizes = [5usize, 1, 12];
        for config in configs {
            let state = |i: u64, n| match config {
                OptimizerConfig::Sgd(_) => ParamState::Sgd { momentum_buffer: Some(vector(40 + i, n)) },
                _ => {
                    ParamState::Adam { step: 4, exp_avg: vector(10 + i, n), exp_avg_sq: vector(20 + i, n).abs(), max_exp_avg_sq: Some(vector(30 + i, n).abs()) }
                }
            };
            let mut separate = Vec::new();
            for (i, &n) in sizes.iter().enumerate() {
                separate.push(config.update(1e-3, vector(i as u64, n), vector(50 + i as u64, n), Some(state(i as u64, n))));
            }
            let p = Tensor::cat(sizes.iter().enumerate().map(|(i, &n)| vector(i as u64, n)).collect(), 0);
            let g = Tensor::cat(sizes.iter().enumerate().map(|(i, &n)| vector(50 + i as u64, n)).collect(), 0);
            let merged = ParamState::cat(sizes.iter().enumerate().map(|(i, &n)| Some(state(i as u64, n))).collect());
            let (p, merged) = config.update(1e-3, p, g, merged);
            let values = p.split_with_sizes(sizes.to_vec(), 0);
            for (((value, state), (expected_value, expected_state)), n) in values.iter().zip(merged.split(&sizes)).zip(&separate).zip(sizes) {
                assert_eq!(bits(value), bits(expected_value), "{config:?}: values of a parameter of {n}");
                match (state, expected_state) {
                    (
                        ParamState::Adam { step, exp_avg, exp_avg_sq, max_exp_avg_sq },
                        ParamState::Adam { step: s, exp_avg: a, exp_avg_sq: q, max_exp_avg_sq: m },
                    ) => {
                        assert_eq!(step, *s);
                        assert_eq!(bits(&exp_avg), bits(a));
                        assert_eq!(bits(&exp_avg_sq), bits(q));
                        assert_eq!(max_exp_avg_sq.map(|t| bits(&t)), m.as_ref().map(bits));
                    }
                    (ParamState::Sgd { momentum_buffer }, ParamState::Sgd { momentum_buffer: b }) => {
                        assert_eq!(momentum_buffer.map(|t| bits(&t)), b.as_ref().map(bits));
                    }
                    _ => panic!("{config:?}: the state changed kind"),
                }
            }
        }
    }
}
