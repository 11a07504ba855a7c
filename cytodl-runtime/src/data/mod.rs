//! From manifests to batches: CSV manifests, the persistent cache, the deterministic threaded
//! loader, and manifest checks that report every bad row.

pub mod manifest;
pub mod cache;
pub mod loader;
pub mod check;
