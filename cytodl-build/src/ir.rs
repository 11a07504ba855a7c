//! The validated, typed experiment: what the checker produces and the code generator consumes.
//! Every value is final (defaults filled, interpolations resolved); paths inside the run folder
//! are kept relative to it so the binary makes a new run folder each time.

use indexmap::IndexMap;

/// A literal value of a component's parameter, as the generator writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Lit>),
    Map(IndexMap<String, Lit>),
}

impl Lit {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Lit::Int(i) => Some(*i as f64),
            Lit::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Lit::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Lit::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Lit::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Lit::Null)
    }

    /// A scalar or list as a list (MONAI's "int or sequence").
    pub fn as_list(&self) -> Vec<Lit> {
        match self {
            Lit::List(v) => v.clone(),
            Lit::Null => vec![],
            other => vec![other.clone()],
        }
    }

    pub fn floats(&self) -> Vec<f64> {
        self.as_list().iter().filter_map(Lit::as_f64).collect()
    }

    pub fn ints(&self) -> Vec<i64> {
        self.as_list().iter().filter_map(Lit::as_i64).collect()
    }

    pub fn strings(&self) -> Vec<String> {
        self.as_list().iter().filter_map(|l| l.as_str().map(str::to_string)).collect()
    }
}

/// A component with every parameter set (defaults filled).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The runtime component (`schema::Component::native`).
    pub native: &'static str,
    /// The `_target_` as written.
    pub target: String,
    pub args: IndexMap<String, Lit>,
    /// Nested components (a head's `loss`, a postprocess `activation`), by parameter name.
    pub children: IndexMap<String, Call>,
}

impl Call {
    pub fn arg(&self, name: &str) -> &Lit {
        static NULL: Lit = Lit::Null;
        self.args.get(name).unwrap_or(&NULL)
    }
}

/// A path from the config: inside the run folder (relative to it) or fixed.
#[derive(Debug, Clone, PartialEq)]
pub enum PathIr {
    InRun(String),
    Fixed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub name: String,
    /// `Head::base` or `ResBlocksHeadConfig`.
    pub head: Call,
    pub loss: Call,
    /// (input, prediction) postprocessing: `ActThreshLabel` or `rescale` calls.
    pub postprocess: (Option<Call>, Option<Call>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// The Rust-safe name (file stem).
    pub name: String,
    pub spatial_dims: usize,
    pub x_key: String,
    pub in_channels: usize,
    pub columns: Vec<String>,
    /// `data` arguments (path, batch size...).
    pub data: Call,
    /// Transform pipelines per split (`train`, `val`, `test`, `predict`), flattened from Compose.
    pub transforms: IndexMap<String, Vec<Call>>,
    pub backbone: Call,
    pub heads: Vec<Head>,
    pub optimizer: Call,
    pub lr: f64,
    pub scheduler: Option<Call>,
    /// Sliding-window arguments (roi_size, sw_batch_size, overlap, mode, sigma_scale...).
    pub inference: IndexMap<String, Lit>,
    pub trainer: Call,
    pub checkpoint: Option<Call>,
    pub early_stopping: Option<Call>,
    pub image_saver: Option<Call>,
    pub csv_logger: Option<Call>,
    /// `seed`; `None` (`seed: null`) draws one at run time and records it in the run folder.
    pub seed: Option<u64>,
    pub experiment_name: String,
    pub run_name: String,
    pub log_dir: String,
    pub save_dir: PathIr,
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
    /// `paths.output_dir` as resolved at compile time: strings under it are run-folder paths.
    pub output_dir: String,
}

impl Experiment {
    /// A configured path as a run-folder path when it lies under `paths.output_dir`.
    pub fn path(&self, p: &str) -> PathIr {
        let base = self.output_dir.trim_end_matches('/');
        if !base.is_empty() {
            if p == base || p == format!("{base}/") {
                return PathIr::InRun(String::new());
            }
            if let Some(rest) = p.strip_prefix(&format!("{base}/")) {
                return PathIr::InRun(rest.trim_start_matches('/').to_string());
            }
        }
        PathIr::Fixed(p.to_string())
    }
}
