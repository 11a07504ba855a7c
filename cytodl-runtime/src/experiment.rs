//! What a generated experiment crate implements, and the run-time settings its binary may change.
//!
//! `cytodl-build` turns a resolved config into an `impl Experiment` of literal Rust values (the
//! transform pipelines, the model, the losses, the optimizer): nothing is parsed at run time.
//! The few scalars a user changes between runs without rebuilding (data paths, epochs, batch
//! size, learning rate, seed) live in [`Settings`]; `key=value` on the binary's command line
//! edits them through [`Settings::set`], which refuses every other key.

use std::path::PathBuf;

use cytodl_schema::{
    CSVLogger, CallbackConfig, ConfigPath, DataframeDatamodule, EarlyStopping, ImageSaver, LoggerConfig, MLFlowLogger, ModelCheckpoint, Number, Trainer,
};

use crate::family::ModelFamily;

/// One experiment, as generated code describes it: its typed configs (`cytodl-schema`), which the
/// runtime builds its components from.
pub trait Experiment {
    /// The experiment's name (its file stem), used for run folders.
    const NAME: &'static str;
    /// The resolved config (interpolations resolved, `_aux` dropped), saved with every run.
    const RESOLVED_YAML: &'static str;

    /// The model config's type: its family builds the network and the step that trains it
    /// (`MultiTaskIm2Im` for cyto_dl's supervised models).
    type Model: ModelFamily;

    /// The run-time settings as the config set them.
    fn settings() -> Settings;
    /// The model: for `MultiTaskIm2Im`, the backbone, heads with their losses and
    /// postprocessing, optimizers and schedulers by role, sliding-window inference.
    fn model() -> Self::Model;
}

/// Everything a run may change without rebuilding, as the config set it. The datamodule,
/// trainer, callbacks and loggers are their configs (`cytodl-schema`): one type per setting
/// from the YAML to the trainer, one default each (its declaration's).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub experiment_name: String,
    pub run_name: String,
    /// The run's seed: initial weights, data order, augmentation, dropout. `None` (`seed:
    /// null`) draws one when the run starts and records it in the run folder (`.hydra/run.yaml`).
    pub seed: Option<u64>,
    /// `paths.log_dir`: run folders are `<log_dir>/<task>/runs/<experiment_name>/<run_name>/<time>`.
    pub log_dir: PathBuf,
    /// The `generator` optimizer's learning rate when a run changes it (`lr=`); else the config's.
    pub lr: Option<f64>,
    /// The data module: manifest, loader and each split's transforms.
    pub data: DataframeDatamodule,
    pub trainer: Trainer,
    /// `callbacks.<name>`.
    pub callbacks: Vec<(String, CallbackConfig)>,
    /// `logger.<name>`.
    pub loggers: Vec<(String, LoggerConfig)>,
    /// `train` / `test` flags of train.yaml.
    pub train: bool,
    pub test: bool,
    /// `checkpoint.ckpt_path` / `weights_only` / `strict` of train.yaml / eval.yaml: a checkpoint
    /// to start from, whether to take only its weights, and whether every weight must match.
    pub ckpt_path: Option<PathBuf>,
    pub weights_only: bool,
    pub strict: bool,
    /// Where predict writes, when a run changes `model.save_dir`; else the model's.
    pub save_dir: Option<ConfigPath>,
}

impl Settings {
    /// The `ModelCheckpoint` callback, when there is one.
    pub fn checkpoint(&self) -> Option<&ModelCheckpoint> {
        self.callbacks.iter().find_map(|(_, c)| match c {
            CallbackConfig::ModelCheckpoint(m) => Some(m),
            _ => None,
        })
    }

    /// The `EarlyStopping` callback, when there is one.
    pub fn early_stopping(&self) -> Option<&EarlyStopping> {
        self.callbacks.iter().find_map(|(_, c)| match c {
            CallbackConfig::EarlyStopping(e) => Some(e),
            _ => None,
        })
    }

    fn early_stopping_mut(&mut self) -> Option<&mut EarlyStopping> {
        self.callbacks.iter_mut().find_map(|(_, c)| match c {
            CallbackConfig::EarlyStopping(e) => Some(e),
            _ => None,
        })
    }

    /// cyto_dl's `ImageSaver` callback, when there is one.
    pub fn image_saver(&self) -> Option<&ImageSaver> {
        self.callbacks.iter().find_map(|(_, c)| match c {
            CallbackConfig::ImageSaver(s) => Some(s),
            _ => None,
        })
    }

    /// The CSV logger, when there is one.
    pub fn csv_logger(&self) -> Option<&CSVLogger> {
        self.loggers.iter().map(|(_, l)| l).find_map(|l| match l {
            LoggerConfig::CSVLogger(c) => Some(c),
            LoggerConfig::MLFlowLogger(_) => None,
        })
    }

    /// The MLflow loggers (`logger.mlflow`; one per tracking server a config names).
    pub fn mlflow_loggers(&self) -> impl Iterator<Item = &MLFlowLogger> {
        self.loggers.iter().filter_map(|(_, l)| match l {
            LoggerConfig::MLFlowLogger(m) => Some(m),
            LoggerConfig::CSVLogger(_) => None,
        })
    }
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
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "lr",
    "model.optimizer.generator.lr",
    "callbacks.early_stopping.patience",
    "checkpoint.ckpt_path",
    "checkpoint.weights_only",
    "checkpoint.strict",
    "model.save_dir",
    "logger.mlflow.tracking_uri",
    "logger.mlflow.experiment_name",
    "logger.mlflow.run_name",
    "logger.mlflow.fault_tolerant",
    "logger.mlflow.flush_timeout",
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
fn batches(key: &str, value: &str) -> Result<Option<Number>, OverrideError> {
    match value.trim() {
        "1.0" | "null" | "None" => Ok(None),
        v => positive(key, parse::<i64>(key, v, "a whole number of batches")?).map(|n| Some(Number::Int(n))),
    }
}

fn at_least_zero(key: &str, v: i64) -> Result<i64, OverrideError> {
    if v >= 0 {
        Ok(v)
    } else {
        Err(OverrideError::Value { key: key.into(), value: v.to_string(), expected: "a non-negative integer" })
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
            "data.path" => self.data.path = text(value),
            "data.cache_dir" => self.data.cache_dir = optional::<String>(key, value, "a path")?,
            "data.batch_size" => self.data.batch_size = positive(key, parse::<i64>(key, value, "a positive integer")?)?,
            "data.num_workers" => self.data.num_workers = at_least_zero(key, parse(key, value, "a non-negative integer")?)?,
            "trainer.max_epochs" => self.trainer.max_epochs = at_least_zero(key, parse(key, value, "a non-negative integer")?)?,
            "trainer.min_epochs" => self.trainer.min_epochs = at_least_zero(key, parse(key, value, "a non-negative integer")?)?,
            "trainer.check_val_every_n_epoch" => self.trainer.check_val_every_n_epoch = positive(key, parse(key, value, "a positive integer")?)?,
            "trainer.limit_train_batches" => self.trainer.limit_train_batches = batches(key, value)?,
            "trainer.limit_val_batches" => self.trainer.limit_val_batches = batches(key, value)?,
            "trainer.accumulate_grad_batches" => self.trainer.accumulate_grad_batches = positive(key, parse(key, value, "a positive integer")?)?,
            "trainer.gradient_clip_val" => self.trainer.gradient_clip_val = optional(key, value, "a number")?,
            "trainer.precision" => self.trainer.precision = cytodl_schema::Precision(text(value)),
            "trainer.accelerator" => {
                self.trainer.accelerator = cytodl_schema::Accelerator::parse(&text(value)).ok_or_else(|| OverrideError::Value {
                    key: key.into(),
                    value: value.into(),
                    expected: "auto, cpu, gpu, cuda or mps",
                })?
            }
            "trainer.devices" => {
                self.trainer.devices = text(value).parse().map_err(|_| OverrideError::Value {
                    key: key.into(),
                    value: value.into(),
                    expected: "a device count, -1, auto, or device indices such as [0,1]",
                })?
            }
            "trainer.num_nodes" => self.trainer.num_nodes = positive(key, parse(key, value, "a positive integer")?)?,
            "trainer.strategy" => {
                self.trainer.strategy = cytodl_schema::Strategy::parse(&text(value)).ok_or_else(|| OverrideError::Value {
                    key: key.into(),
                    value: value.into(),
                    expected: "auto, ddp, ddp_spawn, ddp_find_unused_parameters_true/false or single_device",
                })?
            }
            "lr" | "model.optimizer.generator.lr" => {
                let lr: f64 = parse(key, value, "a number")?;
                if !(lr.is_finite() && lr >= 0.0) {
                    return Err(OverrideError::Value { key: key.into(), value: value.into(), expected: "a non-negative learning rate" });
                }
                self.lr = Some(lr);
            }
            "callbacks.early_stopping.patience" => match self.early_stopping_mut() {
                Some(es) => es.patience = positive(key, parse(key, value, "a positive integer")?)?,
                None => return Err(OverrideError::Structural { key: key.into(), value: value.into() }),
            },
            "checkpoint.ckpt_path" => self.ckpt_path = optional::<String>(key, value, "a path")?.map(PathBuf::from),
            "checkpoint.weights_only" => self.weights_only = parse_bool(key, value)?,
            "checkpoint.strict" => self.strict = parse_bool(key, value)?,
            "model.save_dir" => self.save_dir = Some(ConfigPath::fixed(&text(value))),
            _ if self.set_mlflow(key, value).transpose()?.is_some() => {}
            _ if is_config_key(key) => return Err(OverrideError::Structural { key: key.into(), value: value.into() }),
            _ => {
                let suggestion = nearest(key, RUNTIME_KEYS).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
                return Err(OverrideError::Unknown { key: key.into(), suggestion, keys: RUNTIME_KEYS.join(", ") });
            }
        }
        Ok(())
    }
}

impl Settings {
    /// The seed to seed with: the run's once it is settled (train, test and predict settle a
    /// `seed: null` by drawing one first); 0 where nothing settles it (`bench`).
    pub fn seed_or_zero(&self) -> u64 {
        self.seed.unwrap_or(0)
    }

    /// `logger.<name>.<field>` of an MLflow logger (where a run is tracked is a run-time
    /// choice); `None` when `key` is not one.
    fn set_mlflow(&mut self, key: &str, value: &str) -> Option<Result<(), OverrideError>> {
        let (name, field) = key.strip_prefix("logger.")?.split_once('.')?;
        let logger = self.loggers.iter_mut().find_map(|(n, l)| match l {
            LoggerConfig::MLFlowLogger(m) if n == name => Some(m),
            _ => None,
        })?;
        let text = value.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
        let mut set = || -> Result<(), OverrideError> {
            match field {
                "tracking_uri" => logger.tracking_uri = optional::<String>(key, value, "a URI")?,
                "experiment_name" => logger.experiment_name = text.clone(),
                "run_name" => logger.run_name = optional::<String>(key, value, "a name")?,
                "fault_tolerant" => logger.fault_tolerant = parse_bool(key, value)?,
                "flush_timeout" => {
                    let seconds: f64 = parse(key, value, "seconds")?;
                    if !(seconds.is_finite() && seconds >= 0.0) {
                        return Err(OverrideError::Value { key: key.into(), value: value.into(), expected: "seconds (0 or more)" });
                    }
                    logger.flush_timeout = seconds;
                }
                _ => return Err(OverrideError::Structural { key: key.into(), value: value.into() }),
            }
            Ok(())
        };
        Some(set())
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
    candidates.iter().map(|c| (distance(name, c), *c)).filter(|(d, c)| *d <= (c.len() / 3).max(2)).min_by_key(|(d, _)| *d).map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        use cytodl_schema::{Args, Component, Lit};
        let data_args = Args::new([("path".to_string(), Lit::Str("d".into())), ("transforms".to_string(), Lit::Map(Default::default()))].into_iter().collect());
        Settings {
            experiment_name: "e".into(),
            run_name: "r".into(),
            seed: Some(1),
            log_dir: "logs".into(),
            lr: None,
            data: DataframeDatamodule::from_args(&data_args).unwrap(),
            trainer: Trainer::from_args(&Args::default()).unwrap(),
            callbacks: Vec::new(),
            loggers: Vec::new(),
            train: true,
            test: true,
            ckpt_path: None,
            weights_only: false,
            strict: true,
            save_dir: None,
        }
    }

    #[test]
    fn runtime_keys_change_settings() {
        let mut s = settings();
        s.set("trainer.max_epochs=7", |_| false).unwrap();
        s.set("data.batch_size=4", |_| false).unwrap();
        s.set("model.optimizer.generator.lr=0.01", |_| false).unwrap();
        s.set("data.path=/x/y", |_| false).unwrap();
        assert_eq!((s.trainer.max_epochs, s.data.batch_size, s.lr, s.data.path.clone()), (7, 4, Some(0.01), "/x/y".to_string()));
        assert_eq!(Settings { ..settings() }.trainer.max_epochs, 1000, "Lightning's default, from the Trainer's declaration");
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
