//! Loading and composing configs the way Hydra 1.3 does.

pub mod compose;
pub mod defaults;
pub mod emit;
pub mod merge;
pub mod node;
pub mod override_parser;
pub mod repo;
pub mod yaml;
