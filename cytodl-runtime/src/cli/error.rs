//! Why a command failed: one variant per cause, each printed as what the user can act on.

use std::path::PathBuf;

use thiserror::Error;

use crate::assemble::AssembleError;
use crate::data::manifest::ManifestError;
use crate::experiment::OverrideError;
use crate::family::{ConfigBufferError, FamilyError};
use crate::nn::WeightsError;
use crate::train::checkpoint::{CheckpointError, ModelRecordError};
use crate::train::error::TrainError;
use crate::train::evaluate::UnknownPrecision;
use crate::train::predict::PredictError;

#[derive(Debug, Error)]
pub enum CliError {
    /// A command line clap cannot parse (its message names the argument).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Override(#[from] OverrideError),
    #[error(transparent)]
    Device(#[from] crate::backend::DeviceError),
    #[error("trainer.precision: {0}")]
    Precision(#[from] UnknownPrecision),
    #[error(transparent)]
    Assemble(#[from] AssembleError),
    /// Boxed, as are the other large causes: a `Result<_, CliError>` stays small on the happy path.
    #[error(transparent)]
    Family(Box<FamilyError>),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Train(Box<TrainError>),
    #[error(transparent)]
    Predict(#[from] PredictError),
    #[error("{command} needs --ckpt (or checkpoint.ckpt_path=...)")]
    NoCheckpoint { command: &'static str },
    #[error("checkpoint {0}: no such file")]
    MissingCheckpoint(PathBuf),
    #[error("cannot resume: {source}. Resume from another checkpoint in {folder} with --ckpt, or start afresh without it")]
    CannotResume { source: CheckpointError, folder: String },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{path}: {source}")]
    ConfigBuffers { path: PathBuf, source: ConfigBufferError },
    #[error("{path}: {source}")]
    Model { path: PathBuf, source: ModelRecordError },
    #[error("{path}: {source}")]
    StateDict { path: PathBuf, source: Box<WeightsError> },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("data-check: {problems} problems in {rows} rows")]
    DataProblems { problems: usize, rows: usize },
    #[error("bench: {0}")]
    Bench(String),
    #[error("{0}")]
    Mlflow(String),
    #[error("{0}: no MLflow journal here (a run folder has one in mlflow/journal.jsonl when its config has logger.mlflow)")]
    NoJournal(PathBuf),
    #[error(transparent)]
    Launch(#[from] super::parallel::LaunchError),
    #[error("a training peer's thread panicked (a bug: please report it with the output above)")]
    PeerPanicked,
    #[error("{pending} MLflow records are still not delivered; they stay in {journal}: run mlflow-sync again when the server answers")]
    NotDelivered { pending: usize, journal: PathBuf },
}

impl From<FamilyError> for CliError {
    fn from(e: FamilyError) -> Self {
        CliError::Family(Box::new(e))
    }
}

impl From<TrainError> for CliError {
    fn from(e: TrainError) -> Self {
        CliError::Train(Box::new(e))
    }
}

impl CliError {
    /// An IO error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CliError {
        let path = path.into();
        move |source| CliError::Io { path, source }
    }
}
