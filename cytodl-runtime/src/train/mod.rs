//! The trainer: fit / validate / test / predict, checkpoints, resume, early stopping, logs.
