//! From an experiment's configs (`cytodl-schema`, as generated code holds them) to the runtime
//! pieces a command runs: each split's transform pipeline, the manifest spec, the reader
//! selections `data-check` verifies, the loss task, the inference window, the optimizer and its
//! schedule. The command line ([`crate::cli`]) only sequences these.

use std::path::PathBuf;

use cytodl_schema::{DataframeDatamodule, MultiTaskIm2Im, TransformConfig};
use indexmap::IndexMap;
use thiserror::Error;

use crate::data::manifest::{ManifestSpec, Split};
use crate::infer::SlidingWindow;
use crate::io::Selection;
use crate::optim::{LrSchedule, OptimError, OptimizerConfig, ScheduleError};
use crate::transforms::{from_config, Pipeline, TransformError};

/// A config the compiler accepted that the runtime still cannot build (each names its key).
#[derive(Debug, Error)]
pub enum AssembleError {
    #[error("data.transforms: no `{0}` transforms, and none to fall back to (train)")]
    NoTransforms(&'static str),
    #[error("data.transforms.{split}: {source}")]
    Transform { split: String, source: TransformError },
    #[error("model.optimizer: no `{0}` optimizer")]
    NoOptimizer(&'static str),
    #[error("model.optimizer.{role}: {source}")]
    Optimizer { role: &'static str, source: OptimError },
    #[error("model.lr_scheduler.{role}: {source}")]
    Schedule { role: &'static str, source: ScheduleError },
    #[error("model.inference_args: the sliding window needs roi_size")]
    NoWindow,
    #[error("data.{key}: {value} is negative")]
    Negative { key: &'static str, value: i64 },
}

/// The role of the model's one optimizer in a supervised experiment (cyto_dl's
/// `model.optimizer.generator`; a GAN adds `discriminator`).
pub const GENERATOR: &str = "generator";

/// The role of a GAN's second optimizer.
pub const DISCRIMINATOR: &str = "discriminator";

/// The names a split's transforms go by in `data.transforms`, in the order cyto_dl looks.
fn split_keys(split: Split) -> &'static [&'static str] {
    match split {
        Split::Train => &["train"],
        Split::Val => &["valid", "val", "validation"],
        Split::Test => &["test"],
        Split::Predict => &["predict"],
    }
}

/// The splits whose transforms stand in for a missing one, as cyto_dl's datamodule falls back:
/// val uses train's; test val's, else train's; predict test's, else train's.
fn fallbacks(split: Split) -> &'static [Split] {
    match split {
        Split::Train => &[Split::Train],
        Split::Val => &[Split::Val, Split::Train],
        Split::Test => &[Split::Test, Split::Val, Split::Train],
        Split::Predict => &[Split::Predict, Split::Test, Split::Train],
    }
}

/// The `Compose` of `split`, with its key in `data.transforms`.
fn compose(data: &DataframeDatamodule, split: Split) -> Option<(&str, &cytodl_schema::Compose)> {
    fallbacks(split).iter().find_map(|s| split_keys(*s).iter().find_map(|k| data.transforms.0.get_key_value(*k)).map(|(k, c)| (k.as_str(), c)))
}

/// The transform pipeline of `split`.
pub fn pipeline(data: &DataframeDatamodule, split: Split) -> Result<Pipeline, AssembleError> {
    let (key, c) = compose(data, split).ok_or(AssembleError::NoTransforms(split.name()))?;
    Pipeline::from_config(c).map_err(|source| AssembleError::Transform { split: key.to_string(), source })
}

/// Every column a pipeline loads, with its reader's selection (what `data-check` verifies):
/// the first `LoadImaged` of a column decides.
pub fn loads(data: &DataframeDatamodule) -> Result<Vec<(String, Selection)>, AssembleError> {
    let mut out: Vec<(String, Selection)> = Vec::new();
    for (split, compose) in data.transforms.iter() {
        for t in &compose.transforms.0 {
            let TransformConfig::LoadImaged(load) = t else { continue };
            let selection =
                from_config::selection(load.reader.as_ref().map(|r| &r.0)).map_err(|source| AssembleError::Transform { split: split.clone(), source })?;
            for key in load.keys.iter() {
                if !out.iter().any(|(k, _)| k == key) {
                    out.push((key.clone(), selection.clone()));
                }
            }
        }
    }
    Ok(out)
}

fn non_negative(key: &'static str, value: i64) -> Result<usize, AssembleError> {
    usize::try_from(value).map_err(|_| AssembleError::Negative { key, value })
}

/// The manifest `data` names; subsampling draws with `data.seed`, else the run's seed.
pub fn manifest_spec(data: &DataframeDatamodule, run_seed: u64) -> Result<ManifestSpec, AssembleError> {
    let mut subsample = IndexMap::new();
    for (split, n) in data.subsample.iter().flat_map(|m| m.iter()) {
        if let (Some(split), Some(n)) = (Split::parse(split), n) {
            subsample.insert(split, non_negative("subsample", *n)?);
        }
    }
    Ok(ManifestSpec {
        path: PathBuf::from(&data.path),
        split_column: data.split_column.clone(),
        columns: data.columns.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
        subsample,
        seed: data.seed.and_then(|s| u64::try_from(s).ok()).unwrap_or(run_seed),
    })
}

/// Samples per training batch.
pub fn batch_size(data: &DataframeDatamodule) -> Result<usize, AssembleError> {
    non_negative("batch_size", data.batch_size).map(|b| b.max(1))
}

/// Data-loading threads.
pub fn num_workers(data: &DataframeDatamodule) -> Result<usize, AssembleError> {
    non_negative("num_workers", data.num_workers)
}

/// Whole-image inference (`model.inference_args`; the compiler fills in the training patch as
/// the default window).
pub fn sliding_window(model: &MultiTaskIm2Im) -> Result<SlidingWindow, AssembleError> {
    match &model.inference_args {
        Some(a) if a.0.roi_size.is_some() => Ok(SlidingWindow::from(&a.0)),
        _ => Err(AssembleError::NoWindow),
    }
}

/// The generator's optimizer, and its learning rate: the run's `lr=` when given, else the
/// config's.
pub fn optimizer(model: &MultiTaskIm2Im, lr: Option<f64>) -> Result<(OptimizerConfig, f64), AssembleError> {
    optimizer_of(model.optimizer(GENERATOR), GENERATOR, lr)
}

/// The optimizer playing `role`, and its learning rate (`lr` when given, else the config's).
pub fn optimizer_of(config: Option<&cytodl_schema::OptimizerConfig>, role: &'static str, lr: Option<f64>) -> Result<(OptimizerConfig, f64), AssembleError> {
    let o = config.ok_or(AssembleError::NoOptimizer(role))?;
    let config = OptimizerConfig::try_from(o).map_err(|source| AssembleError::Optimizer { role, source })?;
    Ok((config, lr.unwrap_or_else(|| o.lr())))
}

/// The generator's learning-rate schedule (constant without one).
pub fn lr_schedule(model: &MultiTaskIm2Im) -> Result<LrSchedule, AssembleError> {
    lr_schedule_of(model.scheduler(GENERATOR), GENERATOR)
}

/// The learning-rate schedule of `role` (constant without one).
pub fn lr_schedule_of(config: Option<&cytodl_schema::SchedulerConfig>, role: &'static str) -> Result<LrSchedule, AssembleError> {
    LrSchedule::from_config(config).map_err(|source| AssembleError::Schedule { role, source })
}
