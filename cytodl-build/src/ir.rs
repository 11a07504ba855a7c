//! The validated, typed experiment: what the checker produces and the code generator consumes.
//! Every component is its typed config from `cytodl-schema` (defaults filled by its declaration);
//! paths inside the run folder are [`ConfigPath::InRun`], so that the binary makes a new run
//! folder each time.

use cytodl_schema::{CallbackConfig, DataframeDatamodule, LoggerConfig, ModelConfig, Trainer};

#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// The experiment's file stem (nested experiments keep their folder: `im2im_segmentation`).
    pub name: String,
    pub spatial_dims: usize,
    /// `data.columns`: the manifest columns the experiment reads.
    pub columns: Vec<String>,
    /// The data module, each split's transforms flattened into one `Compose`.
    pub data: DataframeDatamodule,
    /// The model: backbone, heads (losses and postprocessing), optimizers, schedulers, inference.
    pub model: ModelConfig,
    pub trainer: Trainer,
    /// `callbacks.<name>`, in the config's order.
    pub callbacks: Vec<(String, CallbackConfig)>,
    /// `logger.<name>`, in the config's order.
    pub loggers: Vec<(String, LoggerConfig)>,
    /// `seed`; `None` (`seed: null`) draws one at run time and records it in the run folder.
    pub seed: Option<u64>,
    pub experiment_name: String,
    pub run_name: String,
    pub log_dir: String,
    pub train: bool,
    pub test: bool,
    /// train.yaml's `checkpoint: {ckpt_path, weights_only, strict}`.
    pub ckpt_path: Option<String>,
    pub weights_only: bool,
    pub strict: bool,
    /// The resolved config as YAML (provenance).
    pub resolved_yaml: String,
    /// The composed YAML files (absolute), for the `@generated` header and rebuild tracking.
    pub sources: Vec<std::path::PathBuf>,
}

pub use cytodl_schema::ConfigPath;

impl Experiment {
    /// The input column (`model.x_key`).
    pub fn x_key(&self) -> &str {
        self.model.x_key()
    }
}
