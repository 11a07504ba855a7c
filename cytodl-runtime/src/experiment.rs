//! What a generated experiment crate implements, and the run-time settings its binary may change.
//!
//! `cytodl-build` turns a resolved config into an `impl Experiment` of literal Rust values (the
//! transform pipelines, the model, the losses, the optimizer): nothing is parsed at run time.
//! The few scalars a user changes between runs without rebuilding (data paths, epochs, batch
//! size, learning rate, seed) live in [`Settings`]; `key=value` on the binary's command line
//! edits them through [`Settings::set`], which refuses every other key.

use std::path::PathBuf;

use burn::tensor::backend::Backend;

use crate::data::manifest::Split;
use crate::infer::SlidingWindow;
use crate::io::Selection;
use crate::loss::Loss;
use crate::model::MultiTask;
use crate::nn::Init;
use crate::optim::{LrSchedule, OptimizerConfig};
use crate::postprocess::HeadPostprocess;
use crate::train::early_stopping::Mode;
use crate::transforms::{Pipeline, TransformError};

/// One experiment, as generated code describes it.
pub trait Experiment {
    /// The experiment's name (its file stem), used for run folders.
    const NAME: &'static str;
    /// The resolved config (interpolations resolved, `_aux` dropped), saved with every run.
    const RESOLVED_YAML: &'static str;
    /// The input column (`model.x_key`).
    const X_KEY: &'static str;
    /// Channels of the input image (the backbone's `in_channels`).
    const IN_CHANNELS: usize;

    /// The run-time settings as the config set them.
    fn settings() -> Settings;
    /// The transform pipeline of one split.
    fn transforms(split: Split) -> Result<Pipeline, TransformError>;
    /// What `data-check` verifies: each loaded key with its reader selection.
    fn loads() -> Vec<(String, Selection)>;
    /// A freshly initialised model, its weights drawn from `init` (the run's seed).
    fn model<B: Backend>(device: &B::Device, init: &Init) -> Result<MultiTask<B>, String>;
    /// The input column and each head's loss.
    fn heads() -> Vec<(String, Loss)>;
    fn optimizer() -> OptimizerConfig;
    fn lr_schedule() -> LrSchedule;
    /// Whole-image inference for test and predict.
    fn inference() -> SlidingWindow;
    /// Each head's (input, prediction) postprocessing.
    fn postprocess() -> HeadPostprocess;
}

/// Where a configured path points: a fixed place, or a place inside the run folder that is made
/// at run time (`${paths.output_dir}/checkpoints` becomes `RunPath::InRun("checkpoints")`).
#[derive(Debug, Clone, PartialEq)]
pub enum RunPath {
    Fixed(PathBuf),
    InRun(PathBuf),
}

impl RunPath {
    pub fn in_run(rel: &str) -> Self {
        RunPath::InRun(PathBuf::from(rel))
    }

    pub fn fixed(path: &str) -> Self {
        RunPath::Fixed(PathBuf::from(path))
    }

    /// The path for a run whose folder is `run_dir`.
    pub fn under(&self, run_dir: &std::path::Path) -> PathBuf {
        match self {
            RunPath::Fixed(p) => p.clone(),
            RunPath::InRun(rel) if rel.as_os_str().is_empty() => run_dir.to_path_buf(),
            RunPath::InRun(rel) => run_dir.join(rel),
        }
    }
}

/// The data module's run-time arguments (cyto_dl's `DataframeDatamodule`).
#[derive(Debug, Clone, PartialEq)]
pub struct DataSettings {
    pub path: PathBuf,
    pub cache_dir: Option<PathBuf>,
    pub split_column: Option<String>,
    pub columns: Vec<String>,
    pub batch_size: usize,
    pub num_workers: usize,
    /// Rows drawn per split (`subsample: {train: 10}`), with `data.seed` (else the run's seed).
    pub subsample: Vec<(Split, usize)>,
    pub subsample_seed: Option<u64>,
    /// Shuffle training rows each epoch; drop a last incomplete training batch.
    pub shuffle: bool,
    pub drop_last: bool,
}

/// Lightning trainer arguments that a run may change.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerSettings {
    pub max_epochs: u64,
    pub min_epochs: u64,
    pub check_val_every_n_epoch: u64,
    pub limit_train_batches: Option<usize>,
    pub limit_val_batches: Option<usize>,
    pub accumulate_grad_batches: usize,
    pub gradient_clip_val: Option<f64>,
    /// `norm` (Lightning's default: clip the global L2 norm) or `value`.
    pub gradient_clip_algorithm: String,
    /// Lightning's `precision` (`32`, `16`, `16-mixed`, `bf16-mixed`...).
    pub precision: String,
}

/// `ModelCheckpoint`'s arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointSettings {
    pub dirpath: RunPath,
    pub filename: Option<String>,
    pub monitor: Option<String>,
    pub mode: Mode,
    pub save_top_k: i64,
    pub save_last: bool,
    pub every_n_epochs: u64,
    pub auto_insert_metric_name: bool,
}

/// `EarlyStopping`'s arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStoppingSettings {
    pub monitor: String,
    pub patience: u32,
    pub mode: Mode,
    pub min_delta: f64,
    pub check_finite: bool,
}

/// cyto_dl's `ImageSaver` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSaverSettings {
    pub save_dir: RunPath,
    pub stages: Vec<String>,
    pub save_input: bool,
    pub every_n_epochs: u64,
}

/// Everything a run may change without rebuilding, with the config's values as defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub experiment_name: String,
    pub run_name: String,
    /// The run's seed: initial weights, data order, augmentation, dropout. `None` (`seed:
    /// null`) draws one when the run starts and records it in the run folder (`.hydra/run.yaml`).
    pub seed: Option<u64>,
    /// `paths.log_dir`: run folders are `<log_dir>/<task>/runs/<experiment_name>/<run_name>/<time>`.
    pub log_dir: PathBuf,
    /// The base learning rate (the optimizer's `lr`).
    pub lr: f64,
    pub data: DataSettings,
    pub trainer: TrainerSettings,
    pub checkpoint: Option<CheckpointSettings>,
    pub early_stopping: Option<EarlyStoppingSettings>,
    pub image_saver: Option<ImageSaverSettings>,
    /// The CSV logger's `(save_dir, name)`.
    pub csv_logger: Option<(RunPath, String)>,
    /// `train` / `test` flags of train.yaml.
    pub train: bool,
    pub test: bool,
    /// `checkpoint.ckpt_path` / `weights_only` / `strict` of train.yaml / eval.yaml: a checkpoint
    /// to start from, whether to take only its weights, and whether every weight must match.
    pub ckpt_path: Option<PathBuf>,
    pub weights_only: bool,
    pub strict: bool,
    /// Predict output folder (`model.save_dir`).
    pub save_dir: RunPath,
}

/// A `key=value` the binary cannot apply.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OverrideError {
    #[error("`{0}` is not of the form key=value")]
    Syntax(String),
    #[error("`{key}` changes the compiled experiment (its structure, not a run-time setting): rebuild with cytodl-build {key}={value}")]
    Structural { key: String, value: String },
    #[error("`{key}`: `{value}` is not {expected}")]
    Value { key: String, value: String, expected: &'static str },
    #[error("unknown key `{key}`{suggestion}. Run-time keys: {keys}")]
    Unknown { key: String, suggestion: String, keys: String },
}

/// The keys [`Settings::set`] accepts, with the aliases users type.
pub const RUNTIME_KEYS: &[&str] = &[
    "seed",
    "experiment_name",
    "run_name",
    "paths.log_dir",
    "data.path",
    "data.cache_dir",
    "data.batch_size",
    "data.num_workers",
    "trainer.max_epochs",
    "trainer.min_epochs",
    "trainer.check_val_every_n_epoch",
    "trainer.limit_train_batches",
    "trainer.limit_val_batches",
    "trainer.accumulate_grad_batches",
    "trainer.gradient_clip_val",
    "trainer.precision",
    "lr",
    "model.optimizer.generator.lr",
    "callbacks.early_stopping.patience",
    "checkpoint.ckpt_path",
    "checkpoint.weights_only",
    "checkpoint.strict",
    "model.save_dir",
];

fn parse<T: std::str::FromStr>(key: &str, value: &str, expected: &'static str) -> Result<T, OverrideError> {
    value.trim().parse().map_err(|_| OverrideError::Value { key: key.into(), value: value.into(), expected })
}

fn parse_bool(key: &str, value: &str) -> Result<bool, OverrideError> {
    match value.trim() {
        "true" | "True" => Ok(true),
        "false" | "False" => Ok(false),
        _ => Err(OverrideError::Value { key: key.into(), value: value.into(), expected: "true or false" }),
    }
}

fn optional<T: std::str::FromStr>(key: &str, value: &str, expected: &'static str) -> Result<Option<T>, OverrideError> {
    match value.trim() {
        "null" | "None" | "" => Ok(None),
        v => parse(key, v, expected).map(Some),
    }
}

/// Lightning's `limit_*_batches`: an int counts batches; a float in (0, 1] is a fraction, which
/// only 1.0 (all) is supported as at compile time.
fn batches(key: &str, value: &str) -> Result<Option<usize>, OverrideError> {
    match value.trim() {
        "1.0" | "null" | "None" => Ok(None),
        v => parse(key, v, "a whole number of batches").map(Some),
    }
}

impl Settings {
    /// Applies one `key=value`; `structural` is every other key of the resolved config (refused
    /// with "rebuild"), anything else is unknown.
    pub fn set(&mut self, assignment: &str, is_config_key: impl Fn(&str) -> bool) -> Result<(), OverrideError> {
        let (key, value) = assignment.split_once('=').ok_or_else(|| OverrideError::Syntax(assignment.into()))?;
        let (key, value) = (key.trim().trim_start_matches('+'), value.trim());
        let text = |v: &str| v.trim_matches(|c| c == '"' || c == '\'').to_string();
        match key {
            "seed" => self.seed = optional(key, value, "a non-negative integer or null")?,
            "experiment_name" => self.experiment_name = text(value),
            "run_name" => self.run_name = text(value),
            "paths.log_dir" => self.log_dir = PathBuf::from(text(value)),
            "data.path" => self.data.path = PathBuf::from(text(value)),
            "data.cache_dir" => self.data.cache_dir = optional::<String>(key, value, "a path")?.map(PathBuf::from),
            "data.batch_size" => self.data.batch_size = positive(key, parse(key, value, "a positive integer")?)?,
            "data.num_workers" => self.data.num_workers = parse(key, value, "a non-negative integer")?,
            "trainer.max_epochs" => self.trainer.max_epochs = parse(key, value, "a non-negative integer")?,
            "trainer.min_epochs" => self.trainer.min_epochs = parse(key, value, "a non-negative integer")?,
            "trainer.check_val_every_n_epoch" => self.trainer.check_val_every_n_epoch = positive(key, parse(key, value, "a positive integer")?)?,
            "trainer.limit_train_batches" => self.trainer.limit_train_batches = batches(key, value)?,
            "trainer.limit_val_batches" => self.trainer.limit_val_batches = batches(key, value)?,
            "trainer.accumulate_grad_batches" => self.trainer.accumulate_grad_batches = positive(key, parse(key, value, "a positive integer")?)?,
            "trainer.gradient_clip_val" => self.trainer.gradient_clip_val = optional(key, value, "a number")?,
            "trainer.precision" => self.trainer.precision = text(value),
            "lr" | "model.optimizer.generator.lr" => {
                let lr: f64 = parse(key, value, "a number")?;
                if !(lr.is_finite() && lr >= 0.0) {
                    return Err(OverrideError::Value { key: key.into(), value: value.into(), expected: "a non-negative learning rate" });
                }
                self.lr = lr;
            }
            "callbacks.early_stopping.patience" => match self.early_stopping.as_mut() {
                Some(es) => es.patience = parse(key, value, "a non-negative integer")?,
                None => return Err(OverrideError::Structural { key: key.into(), value: value.into() }),
            },
            "checkpoint.ckpt_path" => self.ckpt_path = optional::<String>(key, value, "a path")?.map(PathBuf::from),
            "checkpoint.weights_only" => self.weights_only = parse_bool(key, value)?,
            "checkpoint.strict" => self.strict = parse_bool(key, value)?,
            "model.save_dir" => self.save_dir = RunPath::Fixed(PathBuf::from(text(value))),
            _ if is_config_key(key) => return Err(OverrideError::Structural { key: key.into(), value: value.into() }),
            _ => {
                let suggestion = nearest(key, RUNTIME_KEYS).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
                return Err(OverrideError::Unknown { key: key.into(), suggestion, keys: RUNTIME_KEYS.join(", ") });
            }
        }
        Ok(())
    }
}

fn positive<T: PartialOrd + Default + ToString>(key: &str, v: T) -> Result<T, OverrideError> {
    if v > T::default() {
        Ok(v)
    } else {
        Err(OverrideError::Value { key: key.into(), value: v.to_string(), expected: "a positive integer" })
    }
}

/// The closest of `candidates` to `name` by edit distance, when close enough to be a typo.
pub fn nearest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let distance = |a: &str, b: &str| {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    };
    candidates
        .iter()
        .map(|c| (distance(name, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            experiment_name: "e".into(),
            run_name: "r".into(),
            seed: Some(1),
            log_dir: "logs".into(),
            lr: 1e-4,
            data: DataSettings { path: "d".into(), cache_dir: None, split_column: None, columns: vec![], batch_size: 1, num_workers: 0, subsample: vec![], subsample_seed: None, shuffle: true, drop_last: false },
            trainer: TrainerSettings {
                max_epochs: 1,
                min_epochs: 1,
                check_val_every_n_epoch: 1,
                limit_train_batches: None,
                limit_val_batches: None,
                accumulate_grad_batches: 1,
                gradient_clip_val: None,
                gradient_clip_algorithm: "norm".into(),
                precision: "32".into(),
            },
            checkpoint: None,
            early_stopping: None,
            image_saver: None,
            csv_logger: None,
            train: true,
            test: true,
            ckpt_path: None,
            weights_only: false,
            strict: true,
            save_dir: RunPath::in_run(""),
        }
    }

    #[test]
    fn runtime_keys_change_settings() {
        let mut s = settings();
        s.set("trainer.max_epochs=7", |_| false).unwrap();
        s.set("data.batch_size=4", |_| false).unwrap();
        s.set("model.optimizer.generator.lr=0.01", |_| false).unwrap();
        s.set("data.path=/x/y", |_| false).unwrap();
        assert_eq!((s.trainer.max_epochs, s.data.batch_size, s.lr, s.data.path.clone()), (7, 4, 0.01, PathBuf::from("/x/y")));
    }

    #[test]
    fn structural_and_unknown_keys_are_refused() {
        let mut s = settings();
        let e = s.set("model.backbone.filters=[8,16]", |k| k.starts_with("model.")).unwrap_err();
        assert!(e.to_string().contains("rebuild with cytodl-build"), "{e}");
        let e = s.set("trainer.max_epoch=3", |_| false).unwrap_err();
        assert!(e.to_string().contains("did you mean `trainer.max_epochs`"), "{e}");
        let e = s.set("data.batch_size=0", |_| false).unwrap_err();
        assert!(e.to_string().contains("positive"), "{e}");
        assert!(s.set("nonsense", |_| false).is_err());
    }
}
