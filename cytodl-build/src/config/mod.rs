//! Loading and composing configs the way Hydra 1.3 does.

pub mod node;
pub mod emit;
pub mod merge;
pub mod compose;
pub mod defaults;
pub mod override_parser;
pub mod repo;
pub mod yaml;
