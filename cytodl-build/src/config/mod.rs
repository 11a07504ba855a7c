//! Loading and composing configs the way Hydra 1.3 does.

pub mod node;
pub mod yaml;
