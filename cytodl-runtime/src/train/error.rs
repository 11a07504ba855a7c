//! Why training stopped: typed, each with what the user needs to act on it.

use std::path::PathBuf;

use thiserror::Error;

use super::checkpoint::{CheckpointError, ModelRecordError};
use crate::data::loader::LoadError;
use crate::metric::MetricError;
use crate::optim::{OptimError, ScheduleError};
use crate::task::TaskError;

#[derive(Debug, Error)]
pub enum TrainError {
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error(transparent)]
    Data(#[from] LoadError),
    #[error(transparent)]
    Optim(#[from] OptimError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("cannot write logs: {0}")]
    Log(#[from] std::io::Error),
    /// A batch's loss was NaN or infinite; nothing was applied to the model. The trainer turns it
    /// into [`TrainError::NotFinite`] with where it happened.
    #[error("the loss became {0}")]
    NonFiniteLoss(f64),
    #[error("the loss became {value} at epoch {epoch}, step {step}; training stopped. The last good checkpoint is kept{checkpoint}")]
    NotFinite { value: f64, epoch: u64, step: u64, checkpoint: String },
    /// A GPU task failed on its device thread ([`crate::device_fault`]); `context` says where
    /// the run was and what was kept.
    #[error("{fault}. {context}")]
    Device { fault: crate::device_fault::DeviceFault, context: String },
    #[error("cannot write {path}: {message}")]
    WriteImage { path: PathBuf, message: String },
    #[error("postprocessing head `{head}`: {message}")]
    Postprocess { head: String, message: String },
    #[error("whole-image inference: {0}")]
    Inference(String),
    #[error("checkpoint {path}: {message}")]
    Resume { path: PathBuf, message: String },
    #[error("checkpoint {path}: {source}")]
    Model { path: PathBuf, source: ModelRecordError },
    #[error("{0}")]
    Optimizers(String),
    #[error("interrupted at epoch {epoch}, step {step}; resume from the last checkpoint with --ckpt")]
    Interrupted { epoch: u64, step: u64 },
    #[error("metric `{name}`: {source}")]
    Metric { name: String, source: MetricError },
    #[error(transparent)]
    Parallel(#[from] super::parallel::ParallelError),
}

impl From<(String, MetricError)> for TrainError {
    fn from((name, source): (String, MetricError)) -> Self {
        TrainError::Metric { name, source }
    }
}
