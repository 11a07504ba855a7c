//! cytodl-runtime: what an experiment binary runs.
//!
//! - [`array`]: the n-dimensional `f32` arrays images live in on the CPU until batching.
//! - [`io`]: TIFF / OME-TIFF / ImageJ reading with cyto_dl's channel and slice selection, OME-TIFF writing.
//! - [`transforms`]: MONAI- and cyto_dl-compatible dictionary transforms on named keys.
//! - [`data`]: CSV manifests, the persistent cache, the threaded deterministic loader, manifest checks.
//! - [`experiment`], [`cli`]: what a generated experiment implements, and its binary's command line.
//! - [`rng`]: the seeded per-sample random streams that make loading deterministic.
//! - [`device_fault`]: a GPU task that failed on its device thread, made an error.
//! - [`backend`], [`nn`], [`loss`], [`adversarial`], [`optim`], [`train`], [`infer`], [`postprocess`]: the model
//!   side (burn), generic over the backend.

pub mod adversarial;
pub mod array;
pub mod assemble;
pub mod backend;
pub mod cli;
pub mod data;
pub mod device_fault;
pub mod experiment;
pub mod family;
pub mod infer;
pub mod instance_seg;
pub mod io;
pub mod loss;
pub mod metric;
pub mod model;
pub mod nn;
pub mod optim;
pub mod postprocess;
pub mod reduce;
pub mod rng;
pub mod sample;
pub mod task;
pub mod tensor;
pub mod train;
pub mod transforms;

// Re-exported so that generated crates need only `cytodl-runtime` as a dependency.
pub use burn;
/// Every component's config (`cytodl-schema`): what generated code holds.
pub use cytodl_schema as config;
pub use indexmap;
/// The allocator experiment binaries install (`#[global_allocator]` in their `main.rs`).
pub use mimalloc::MiMalloc as Allocator;

/// Tells mimalloc to keep freed memory mapped instead of returning it to the kernel after 10 ms
/// (`purge_delay = -1`). A training step frees and reallocates the same activation-sized blocks
/// (tens of MiB) every step; returned pages come back as page faults the kernel must zero
/// (41 k faults and ~12% of the CPU time of a medium DynUNet benchmark; 0.6 k after this). The
/// process keeps its peak footprint, which a training run reaches in its first step anyway.
pub fn keep_freed_memory_mapped() {
    extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    /// `mi_option_purge_delay` in mimalloc 2 and 3's `mi_option_t`.
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
    // SAFETY: mimalloc's documented option setter, linked in through the `mimalloc` crate; it
    // may be called at any time from any thread.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

pub use array::Array;
pub use rng::Rng;
pub use sample::{Field, Sample};
