//! The trainer: fit / validate / test / predict, checkpoints, resume, early stopping, logs.

pub mod csv_logger;
pub mod error;
pub mod logger;
pub mod early_stopping;
pub mod checkpoint_policy;
pub mod progress;
pub mod checkpoint;
pub mod step;
pub mod trainer;
pub mod predict;
pub mod evaluate;
