//! cytodl-runtime: what an experiment binary runs.
//!
//! - [`array`]: the n-dimensional `f32` arrays images live in on the CPU until batching.
//! - [`io`]: TIFF / OME-TIFF / ImageJ reading with cyto_dl's channel and slice selection, OME-TIFF writing.
//! - [`transforms`]: MONAI- and cyto_dl-compatible dictionary transforms on named keys.
//! - [`data`]: CSV manifests, the persistent cache, the threaded deterministic loader, manifest checks.
//! - [`experiment`], [`cli`]: what a generated experiment implements, and its binary's command line.
//! - [`rng`]: the seeded per-sample random streams that make loading deterministic.
//! - [`backend`], [`nn`], [`loss`], [`optim`], [`train`], [`infer`], [`postprocess`]: the model
//!   side (burn), generic over the backend.

pub mod array;
pub mod backend;
pub mod cli;
pub mod data;
pub mod experiment;
pub mod infer;
pub mod io;
pub mod loss;
pub mod model;
pub mod nn;
pub mod optim;
pub mod postprocess;
pub mod rng;
pub mod sample;
pub mod train;
pub mod transforms;

// Re-exported so that generated crates need only `cytodl-runtime` as a dependency.
pub use burn;
pub use indexmap;
/// The allocator experiment binaries install (`#[global_allocator]` in their `main.rs`).
pub use mimalloc::MiMalloc as Allocator;

pub use array::Array;
pub use rng::Rng;
pub use sample::{Field, Sample};
