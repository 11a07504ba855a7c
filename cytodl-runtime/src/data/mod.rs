//! From manifests to batches: CSV manifests, the persistent cache, the deterministic threaded
//! loader, and manifest checks that report every bad row.

pub mod cache;
pub mod check;
pub mod loader;
pub mod manifest;
