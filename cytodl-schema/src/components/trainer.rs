//! Lightning's trainer, callbacks and loggers, as far as they mean something here.

use crate::component::Component;
use crate::field::{ConfigPath, Map, Raw};
use crate::values::{Devices, Number, Precision};
use crate::{choice, component, kind};

choice! {
    /// Lightning's `strategy`: every DDP flavour is burn-collective's data parallelism here
    /// (one process per node, one thread per device).
    pub enum Strategy {
        /// DDP when several devices or nodes train, else one device
        Auto = "auto",
        /// distributed data parallel
        Ddp = "ddp",
        /// DDP (cyto_dl's `trainer/ddp.yaml`); no processes are spawned here
        DdpSpawn = "ddp_spawn",
        /// DDP; every parameter gets a gradient here
        DdpFindUnusedParametersTrue = "ddp_find_unused_parameters_true",
        /// DDP
        DdpFindUnusedParametersFalse = "ddp_find_unused_parameters_false",
        /// one device
        SingleDevice = "single_device",
    }
}

choice! {
    /// Lightning's `accelerator`: which backend an experiment binary runs on when the command
    /// line gives no `--device` (`--device` always wins).
    pub enum Accelerator {
        /// a GPU when the binary has CUDA and the machine a CUDA driver, else the CPU
        Auto = "auto",
        /// the CPU
        Cpu = "cpu",
        /// the binary's GPU backend (CUDA, else LibTorch on CUDA, else wgpu); an error without one
        Gpu = "gpu",
        /// CUDA (burn's CubeCL backend, else LibTorch on CUDA); an error without one
        Cuda = "cuda",
        /// Apple's GPU, through wgpu (Metal); an error without the wgpu backend
        Mps = "mps",
    }
}

choice! {
    /// How gradients are clipped.
    pub enum ClipAlgorithm {
        /// the global L2 norm (Lightning's default)
        Norm = "norm",
        /// each value
        Value = "value",
    }
}

component! {
    /// Lightning's trainer arguments.
    #[kind(Trainer)]
    #[names("lightning.Trainer", "lightning.pytorch.Trainer", "pytorch_lightning.Trainer")]
    pub struct Trainer {
        /// epochs to train
        pub max_epochs: i64 = 1000,
        /// epochs before early stopping may stop
        pub min_epochs: i64 = 1,
        /// validation frequency
        pub check_val_every_n_epoch: i64 = 1,
        /// batches per epoch (int) or 1.0
        pub limit_train_batches: Option<Number> = None,
        /// validation batches (int) or 1.0
        pub limit_val_batches: Option<Number> = None,
        /// gradient accumulation
        pub accumulate_grad_batches: i64 = 1,
        /// gradient clipping threshold
        pub gradient_clip_val: Option<f64> = None,
        /// clip the global L2 norm, or each value
        pub gradient_clip_algorithm: ClipAlgorithm = ClipAlgorithm::Norm,
        /// 32; 16-mixed (fp16, loss-scaled) / bf16-mixed on the GPU backends (32 on the CPU, with a warning)
        pub precision: Precision = Precision("32".to_string()),
        /// the device when no `--device` is given: auto, cpu, gpu, cuda or mps
        pub accelerator: Accelerator = Accelerator::Auto,
        /// devices training one model (data parallel): a count, -1 / auto (all), or indices
        pub devices: Devices = Devices::Count(1),
        /// processes (machines) training one model; see README, "Several GPUs and machines"
        pub num_nodes: i64 = 1,
        /// auto or a DDP flavour (all run as burn-collective data parallelism)
        pub strategy: Strategy = Strategy::Auto,
    }
    ignored {
        /// (Lightning) the output folder
        default_root_dir: Option<Raw> = None => "outputs go to the run folder",
        /// (Lightning) deterministic algorithms
        deterministic: Option<Raw> = None => "cytodl runs are deterministic on the CPU for a given seed",
        /// (Lightning) anomaly detection
        detect_anomaly: Option<Raw> = None => "non-finite losses always stop training with a message",
        /// (Lightning) a time limit
        max_time: Option<Raw> = None => "not supported; use max_epochs",
        /// (Lightning) synchronised batch norm
        sync_batchnorm: Option<Raw> = None => "each device normalises its own batch (instance norm, DynUNet's default, is per sample anyway)",
        /// (Lightning) the progress bar
        enable_progress_bar: Option<Raw> = None => "the progress bar follows whether stdout is a terminal",
        /// (Lightning) the model summary
        enable_model_summary: Option<Raw> = None => "no model summary is printed",
        /// (Lightning) logging frequency
        log_every_n_steps: Option<Raw> = None => "metrics are logged once per epoch",
        /// (Lightning) cuDNN benchmark
        benchmark: Option<Raw> = None => "no cuDNN autotuning in burn",
        /// (Lightning) profiler
        profiler: Option<Raw> = None => "not supported",
        /// (Lightning) a quick run
        fast_dev_run: Option<Raw> = None => "use trainer.limit_train_batches=1 trainer.max_epochs=1",
        /// (Lightning) overfit a few batches
        overfit_batches: Option<Raw> = None => "not supported",
        /// (Lightning) sanity validation
        num_sanity_val_steps: Option<Raw> = None => "no sanity validation is run",
        /// (Lightning) inference mode
        inference_mode: Option<Raw> = None => "inference never records gradients",
    }
}

choice! {
    /// Whether a monitored metric is better lower or higher.
    pub enum Mode {
        Min = "min",
        Max = "max",
    }
}

component! {
    /// Lightning's ModelCheckpoint.
    #[kind(Callback)]
    #[names("lightning.pytorch.callbacks.ModelCheckpoint", "pytorch_lightning.callbacks.ModelCheckpoint")]
    pub struct ModelCheckpoint {
        /// checkpoint folder
        pub dirpath: Option<ConfigPath> = None,
        /// e.g. epoch_{epoch:03d}
        pub filename: Option<String> = None,
        /// metric to rank checkpoints
        pub monitor: Option<String> = None,
        /// better is lower or higher
        pub mode: Mode = Mode::Min,
        /// best checkpoints kept; -1 all
        pub save_top_k: i64 = 1,
        /// also write last.ckpt
        pub save_last: Option<bool> = None,
        /// frequency
        pub every_n_epochs: Option<i64> = None,
        /// metric names in file names
        pub auto_insert_metric_name: bool = true,
    }
    ignored {
        /// (Lightning) no effect
        verbose: bool = false => "no effect",
        /// (Lightning) checkpoints always hold optimizer state
        save_weights_only: bool = false => "checkpoints always hold the optimizer state (resume needs it)",
        /// (Lightning) checkpoints are written at epoch end
        save_on_train_epoch_end: Option<bool> = None => "checkpoints are written at the end of each epoch, after validation",
    }
    unsupported {
        /// (Lightning) not supported
        every_n_train_steps: Option<i64> = None,
        /// (Lightning) not supported
        train_time_interval: Option<Raw> = None,
    }
}

component! {
    /// Lightning's EarlyStopping.
    #[kind(Callback)]
    #[names("lightning.pytorch.callbacks.EarlyStopping", "pytorch_lightning.callbacks.EarlyStopping")]
    pub struct EarlyStopping {
        /// metric to watch
        pub monitor: String,
        /// smallest improvement
        pub min_delta: f64 = 0.0,
        /// checks without improvement before stopping
        pub patience: i64 = 3,
        /// better is lower or higher
        pub mode: Mode = Mode::Min,
        /// stop on NaN/inf
        pub check_finite: bool = true,
    }
    ignored {
        /// (Lightning) no effect
        verbose: bool = false => "no effect",
        /// (Lightning) no effect
        strict: bool = true => "a missing monitor never stops training",
        /// (Lightning) checked after validation
        check_on_train_epoch_end: Option<bool> = None => "checked after each validation",
    }
    unsupported {
        /// (Lightning) not supported
        stopping_threshold: Option<f64> = None,
        /// (Lightning) not supported
        divergence_threshold: Option<f64> = None,
    }
}

component! {
    /// cyto_dl's ImageSaver.
    #[kind(Callback)]
    #[names("cyto_dl.callbacks.ImageSaver", "cyto_dl.callbacks.image_saver.ImageSaver")]
    pub struct ImageSaver {
        /// where `<stage>_images/` go
        pub save_dir: ConfigPath,
        /// frequency
        pub save_every_n_epochs: i64 = 1,
        /// train, val, test, predict
        pub stages: Vec<String> = vec!["train".to_string(), "val".to_string(), "test".to_string()],
        /// also save input and target
        pub save_input: bool = false,
    }
}

component! {
    /// Accepted; no summary is printed.
    #[kind(Callback)]
    #[names("lightning.pytorch.callbacks.RichModelSummary", "lightning.pytorch.callbacks.ModelSummary")]
    pub struct ModelSummary {}
    ignored {
        /// (Lightning) no effect
        max_depth: i64 = 1 => "no model summary is printed",
    }
}

component! {
    /// Accepted; cytodl always shows its own progress bar.
    #[kind(Callback)]
    #[names("lightning.pytorch.callbacks.RichProgressBar", "lightning.pytorch.callbacks.TQDMProgressBar")]
    pub struct ProgressBar {}
    ignored {
        /// (Lightning) no effect
        refresh_rate: i64 = 1 => "the bar refreshes itself",
        /// (Lightning) no effect
        leave: bool = false => "no effect",
    }
}

kind! {
    /// A callback (`callbacks.<name>`).
    pub enum CallbackConfig: Callback {
        ModelCheckpoint,
        EarlyStopping,
        ImageSaver,
        ModelSummary,
        ProgressBar,
    }
}

component! {
    /// Lightning's CSV layout: <save_dir>/<name>/version_N/metrics.csv.
    #[kind(Logger)]
    #[names("lightning.pytorch.loggers.csv_logs.CSVLogger", "lightning.pytorch.loggers.CSVLogger")]
    pub struct CSVLogger {
        /// the log folder
        pub save_dir: ConfigPath,
        /// sub-folder
        pub name: String = "lightning_logs".to_string(),
    }
    ignored {
        /// (Lightning) version_N is chosen automatically
        version: Option<Raw> = None => "the next free version_N is used",
    }
    unsupported {
        /// (Lightning) metric prefix: not supported
        prefix: String = String::new(),
    }
}

component! {
    /// cyto_dl's MLflow logger: metrics per epoch, the flattened config as params, the resolved
    /// config, checkpoints and pictures as artifacts, the run's status; queued on disk while the
    /// server is away.
    #[kind(Logger)]
    #[names("cyto_dl.loggers.MLFlowLogger", "lightning.pytorch.loggers.MLFlowLogger", "lightning.pytorch.loggers.mlflow.MLFlowLogger")]
    pub struct MLFlowLogger {
        /// the tracking server (http:// or https://) or a folder (file:); unset: $MLFLOW_TRACKING_URI, else save_dir
        pub tracking_uri: Option<String> = None,
        /// the MLflow experiment (made if missing)
        pub experiment_name: String = "lightning_logs".to_string(),
        /// the run's name
        pub run_name: Option<String> = None,
        /// tags of the run
        pub tags: Option<Map<String>> = None,
        /// MLflow's file store when there is no tracking_uri
        pub save_dir: ConfigPath = ConfigPath::Fixed("./mlruns".to_string()),
        /// the server being away is a warning (records wait on disk), not an error
        pub fault_tolerant: bool = true,
        /// (cytodl) seconds the end of a run waits for the server to take what is queued
        pub flush_timeout: f64 = 30.0,
    }
    ignored {
        /// (Lightning) checkpoints are uploaded as cyto_dl's logger does
        log_model: Option<Raw> = None => "checkpoints are uploaded as cyto_dl's MLFlowLogger does",
    }
    unsupported {
        /// (Lightning) metric prefix: not supported
        prefix: String = String::new(),
        /// (Lightning) the experiment's artifact location: set it on the server
        artifact_location: Option<String> = None,
        /// (Lightning) continue a given run id: resume the run folder instead (its journal knows the run)
        run_id: Option<String> = None,
    }
}

kind! {
    /// A logger (`logger.<name>`).
    pub enum LoggerConfig: Logger {
        CSVLogger,
        MLFlowLogger,
    }
}

/// Lightning's defaults (every trainer argument has one).
impl Default for Trainer {
    fn default() -> Self {
        Trainer::from_args(&crate::Args::default()).expect("every Trainer argument has a default")
    }
}

impl Trainer {
    /// `limit_train_batches` as a count; `None` runs every batch (`1.0`, or unset).
    pub fn train_batches(&self) -> Option<usize> {
        batch_count(self.limit_train_batches)
    }

    /// `limit_val_batches` as a count; `None` runs every batch.
    pub fn val_batches(&self) -> Option<usize> {
        batch_count(self.limit_val_batches)
    }
}

/// A checked batch limit: an int counts batches; the only fraction `check` lets through is 1.0.
fn batch_count(n: Option<Number>) -> Option<usize> {
    match n {
        Some(Number::Int(i)) => usize::try_from(i).ok(),
        _ => None,
    }
}

impl Mode {
    /// Whether `value` improves on `best` by more than `min_delta` (Lightning's comparison).
    pub fn improves(self, value: f64, best: f64, min_delta: f64) -> bool {
        match self {
            Mode::Min => value < best - min_delta,
            Mode::Max => value > best + min_delta,
        }
    }

    /// The score every value improves on.
    pub fn worst(self) -> f64 {
        match self {
            Mode::Min => f64::INFINITY,
            Mode::Max => f64::NEG_INFINITY,
        }
    }
}

/// Lightning's defaults.
impl Default for ModelCheckpoint {
    fn default() -> Self {
        ModelCheckpoint::from_args(&crate::Args::default()).expect("every ModelCheckpoint argument has a default")
    }
}

impl ModelCheckpoint {
    /// Where checkpoints go when `dirpath` is unset: `checkpoints/` in the run folder.
    pub const DEFAULT_DIR: &'static str = "checkpoints";

    /// Whether `last.ckpt` is written (Lightning: `save_last: null` is no).
    pub fn writes_last(&self) -> bool {
        self.save_last.unwrap_or(false)
    }

    /// Epochs between checkpoints (Lightning: 1 when no other trigger is set).
    pub fn period(&self) -> i64 {
        self.every_n_epochs.unwrap_or(1)
    }
}
