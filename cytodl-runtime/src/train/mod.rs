//! The trainer: fit / validate / test / predict, checkpoints, resume, early stopping, logs.

pub mod checkpoint;
pub mod checkpoint_policy;
pub mod csv_logger;
pub mod early_stopping;
pub mod error;
pub mod evaluate;
pub mod gan_step;
pub mod logger;
pub mod loss_plot;
pub mod mlflow_logger;
pub mod montage;
pub mod parallel;
pub mod predict;
pub mod progress;
pub mod stage_totals;
pub mod step;
pub mod trainer;
