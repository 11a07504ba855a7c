//! Optimizers and learning-rate schedules with PyTorch's semantics and defaults.
//!
//! - [`Optimizer`]: Adam, AdamW and SGD written over burn's [`GradientsParams`] with torch 2.5's
//!   single-tensor update formulas (burn's own optimizers differ in defaults — Adam eps 1e-5,
//!   AdamW weight decay 1e-4, SGD dampening 0.1 — and clip per parameter instead of globally).
//!   Their state is keyed by the parameter's module path (`backbone.conv1.weight`), not by burn's
//!   random `ParamId`, so a state saved with [`Optimizer::to_record`] fits the same architecture
//!   rebuilt from a checkpoint on resume.
//! - [`clip`]: global-norm (`clip_grad_norm_`) and value (`clip_grad_value_`) clipping, and
//!   gradient accumulation over micro-batches.
//! - [`loss_scale`]: fp16 mixed precision's dynamic loss scaling (PyTorch's GradScaler).
//! - [`schedule`]: ExponentialLR, StepLR, MultiStepLR, CosineAnnealingLR and OneCycleLR as pure
//!   functions of the epoch that reproduce torch's recurrences value for value.
//!
//! [`GradientsParams`]: burn::optim::GradientsParams

#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod adam_gpu;
pub mod clip;
pub mod loss_scale;
mod optimizer;
mod record;
pub mod schedule;
mod state_store;

pub use clip::{clip_grad_norm, clip_grad_value, grad_norm, scale_grads, GradAccumulator, GradClip};
pub use loss_scale::LossScaler;
pub use optimizer::{AdamConfig, AdamWConfig, Optimizer, OptimizerConfig, OptimizerKind, SgdConfig};
pub use record::{OptimizerRecord, ParamRecord};
pub use schedule::{Anneal, LrSchedule, OneCycleConfig, ScheduleError, Scheduler, SchedulerState};

/// An optimizer parameter, gradient-clipping value or saved state that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimError {
    /// A configuration value is out of range; `param` names it as torch does (`lr`, `betas`,
    /// `eps`, `weight_decay`, `momentum`, `dampening`, `nesterov`, `max_norm`, `clip_value`).
    #[error("invalid optimizer parameter `{param}`: {reason}")]
    InvalidParameter { param: &'static str, reason: String },
    /// A saved optimizer state is malformed or does not fit this optimizer / model.
    #[error("optimizer state: {0}")]
    Record(String),
}

pub(crate) fn invalid(param: &'static str, reason: impl Into<String>) -> OptimError {
    OptimError::InvalidParameter { param, reason: reason.into() }
}
