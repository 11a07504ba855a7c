//! MLflow tracking for experiment binaries.
//!
//! A training run must never stop or slow down because a tracking server is away, and a user
//! must never lose what a run logged. So nothing here talks to the server on the training
//! thread: [`TrackedRun`] appends every record (run start, metrics, params, tags, artifacts, the
//! final status) to a journal in the run folder ([`journal`]), and a background thread sends the
//! journal, in order, to the tracking store ([`store`]): MLflow's REST API ([`rest`]) or, for a
//! `file:` URI, MLflow's own file layout ([`file_store`]). A record the server could not take is
//! retried with backoff; what is still unsent when the run ends stays in the journal and is
//! reported, and [`sync`] pushes it later (the binary's `mlflow-sync RUN_DIR`).

pub mod file_store;
pub mod journal;
pub mod params;
pub mod rest;
pub mod run;
pub mod store;
pub mod uri;

pub use journal::{Journal, Record};
pub use params::flatten_config;
pub use run::{sync, Delivery, RunOptions, TrackedRun};
pub use store::{Metric, RunInfo, RunStatus, Store, StoreError};
pub use uri::{open_store, TrackingUri, UriError};
