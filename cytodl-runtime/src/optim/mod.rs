//! Optimizers and learning-rate schedules with PyTorch's semantics and defaults.
