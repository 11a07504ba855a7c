//! Losses with PyTorch / MONAI semantics.
