//! Loading MONAI / cyto_dl weights into burn modules by PyTorch key name.
//!
//! Sources: a safetensors file, a `torch.save`d state_dict, or a Lightning checkpoint (tensors
//! nested under `state_dict`, keys prefixed `backbone.` as cyto_dl writes them). Our modules name
//! their fields like MONAI's, so a parameter's module path *is* its state_dict key; norms keep
//! torch's `weight` / `bias` names (burn-store's PyTorch adapter does not remap InstanceNorm, so
//! we do not use its adapters at all). MONAI's `skip_layers.*` keys are aliases of the same
//! tensors and are ignored. 2-D convolution weights `[o, i, k, k]` load into the 5-D
//! `[o, i, 1, k, k]` parameters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use burn_store::ModuleStore;

/// Errors while reading or applying weights; each names the file or key involved.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read weights file {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("tensor '{key}' in {path} cannot be read as f32: {message}")]
    Tensor { path: PathBuf, key: String, message: String },
    #[error("weights do not match the model (strict load): {0}")]
    Strict(LoadReport),
}

/// A flat `key -> f32 tensor` map, as a PyTorch `state_dict`.
#[derive(Debug, Clone, Default)]
pub struct StateDict {
    pub tensors: BTreeMap<String, TensorData>,
    /// Where it came from, for messages.
    pub source: PathBuf,
}

/// Keys MONAI's DynUNet exposes twice (`skip_layers.*` are aliases of the real blocks).
fn is_alias(key: &str) -> bool {
    key.starts_with("skip_layers.") || key.contains(".skip_layers.")
}

impl StateDict {
    /// Reads every floating-point tensor of a safetensors file (converted to f32).
    pub fn from_safetensors(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(WeightsError::Read { path: path.into(), message: "no such file".into() });
        }
        let mut store = burn_store::SafetensorsStore::from_file(path);
        let snaps = store.get_all_snapshots().map_err(|e| WeightsError::Read { path: path.into(), message: e.to_string() })?;
        let mut tensors = BTreeMap::new();
        for (key, snap) in snaps.iter() {
            if !snap.dtype.is_float() {
                continue;
            }
            let data = snap.to_data().map_err(|e| WeightsError::Tensor { path: path.into(), key: key.clone(), message: e.to_string() })?;
            tensors.insert(key.clone(), data.convert::<f32>());
        }
        Ok(StateDict { tensors, source: path.into() })
    }

    /// Reads a PyTorch file: a Lightning checkpoint (tensors under `state_dict`) or a plain
    /// state_dict. Non-float entries (step counters, ...) are skipped.
    pub fn from_pytorch(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        use burn_store::pytorch::PytorchReader;
        let path = path.as_ref();
        if !path.is_file() {
            return Err(WeightsError::Read { path: path.into(), message: "no such file".into() });
        }
        let reader = match PytorchReader::with_top_level_key(path, "state_dict") {
            Ok(r) if !r.is_empty() => r,
            _ => PytorchReader::new(path).map_err(|e| WeightsError::Read { path: path.into(), message: e.to_string() })?,
        };
        let mut tensors = BTreeMap::new();
        for (key, snap) in reader.into_tensors() {
            if !snap.dtype.is_float() {
                continue;
            }
            let data = snap.to_data().map_err(|e| WeightsError::Tensor { path: path.into(), key: key.clone(), message: e.to_string() })?;
            tensors.insert(key, data.convert::<f32>());
        }
        Ok(StateDict { tensors, source: path.into() })
    }

    /// Safetensors by extension (`.safetensors`), PyTorch otherwise (`.pt`, `.pth`, `.ckpt`).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        let path = path.as_ref();
        if path.extension().is_some_and(|e| e == "safetensors") {
            Self::from_safetensors(path)
        } else {
            Self::from_pytorch(path)
        }
    }

    /// Keeps only keys under `prefix` (e.g. `"backbone."`), with the prefix removed.
    pub fn strip_prefix(self, prefix: &str) -> Self {
        let tensors = self.tensors.into_iter().filter_map(|(k, v)| k.strip_prefix(prefix).map(|s| (s.to_string(), v))).collect();
        StateDict { tensors, source: self.source }
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.tensors.keys()
    }
}

/// How to match a state_dict to a module.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Fail (and change nothing) on any missing key, unexpected key or shape mismatch.
    pub strict: bool,
    /// Key prefix to strip. `None`: strip `backbone.` when no key matches the module directly
    /// but some do after removing it (cyto_dl's Lightning checkpoints).
    pub prefix: Option<String>,
}

/// What a load did, with the names involved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    pub loaded: Vec<String>,
    /// Module parameters with no tensor in the state_dict (left as initialised).
    pub missing: Vec<String>,
    /// state_dict keys (after prefix stripping, aliases excluded) no parameter asked for.
    pub unexpected: Vec<String>,
    /// `(key, module shape, file shape)`; the parameter is left as initialised.
    pub shape_mismatches: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// The prefix that was stripped, if any.
    pub prefix: Option<String>,
}

impl LoadReport {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.shape_mismatches.is_empty()
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} loaded", self.loaded.len())?;
        if !self.missing.is_empty() {
            write!(f, "; missing: {}", self.missing.join(", "))?;
        }
        if !self.unexpected.is_empty() {
            write!(f, "; unexpected: {}", self.unexpected.join(", "))?;
        }
        for (k, m, s) in &self.shape_mismatches {
            write!(f, "; shape mismatch for {k}: model {m:?}, file {s:?}")?;
        }
        Ok(())
    }
}

/// The dotted parameter paths of a module, in visiting order, with their shapes.
pub fn param_names<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, Vec<usize>)> {
    struct Names {
        path: Vec<String>,
        out: Vec<(String, Vec<usize>)>,
    }
    impl<B: Backend> ModuleVisitor<B> for Names {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.out.push((self.path.join("."), param.lazy_shape().to_vec()));
        }
    }
    let mut v = Names { path: Vec::new(), out: Vec::new() };
    module.visit(&mut v);
    v.out
}

/// The module's float parameters as a state_dict (`[o, i, 1, k, k]` stays 5-D).
pub fn state_dict<B: Backend, M: Module<B>>(module: &M) -> BTreeMap<String, TensorData> {
    struct Collect {
        path: Vec<String>,
        out: BTreeMap<String, TensorData>,
    }
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.out.insert(self.path.join("."), param.val().into_data());
        }
    }
    let mut v = Collect { path: Vec::new(), out: BTreeMap::new() };
    module.visit(&mut v);
    v.out
}

/// Each parameter's gradient after `loss.backward()`, by dotted path (parameters without a
/// gradient are left out).
pub fn named_grads<B: AutodiffBackend, M: Module<B>>(module: &M, grads: &B::Gradients) -> BTreeMap<String, TensorData> {
    struct Grads<'a, B: AutodiffBackend> {
        path: Vec<String>,
        grads: &'a B::Gradients,
        out: BTreeMap<String, TensorData>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Grads<'_, B> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = param.val().grad(self.grads) {
                self.out.insert(self.path.join("."), g.into_data());
            }
        }
    }
    let mut v = Grads { path: Vec::new(), grads, out: BTreeMap::new() };
    module.visit(&mut v);
    v.out
}

/// A file shape that fits a module shape: equal, or a 2-D conv weight `[o, i, a, b]` for a
/// 5-D `[o, i, 1, a, b]` parameter.
fn shape_fits(model: &[usize], file: &[usize]) -> bool {
    model == file || (model.len() == 5 && file.len() == 4 && model[2] == 1 && model[..2] == file[..2] && model[3..] == file[2..])
}

struct LoadMapper<'a> {
    path: Vec<String>,
    dict: &'a BTreeMap<String, TensorData>,
    report: LoadReport,
    /// Dry run: only fill the report.
    apply: bool,
}

impl<B: Backend> ModuleMapper<B> for LoadMapper<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let key = self.path.join(".");
        let expected = param.lazy_shape().to_vec();
        let Some(data) = self.dict.get(&key) else {
            self.report.missing.push(key);
            return param;
        };
        if !shape_fits(&expected, &data.shape) {
            self.report.shape_mismatches.push((key, expected, data.shape.to_vec()));
            return param;
        }
        self.report.loaded.push(key);
        if !self.apply {
            return param;
        }
        let device = param.lazy_device();
        let values = TensorData::new(data.as_slice::<f32>().map(|s| s.to_vec()).unwrap_or_default(), expected);
        let id = param.id;
        param.transform_for_load(Tensor::from_data(values, &device), id)
    }
}

/// Loads a state_dict into any module whose parameter paths are PyTorch keys (e.g.
/// [`crate::nn::dynunet::DynUNet`]). Strict: nothing is changed unless everything matches.
pub fn load_state_dict<B: Backend, M: Module<B>>(module: M, dict: &StateDict, options: &LoadOptions) -> Result<(M, LoadReport), WeightsError> {
    let names = param_names::<B, M>(&module);
    let prefix = match &options.prefix {
        Some(p) => Some(p.clone()),
        None => {
            let direct = names.iter().any(|(n, _)| dict.tensors.contains_key(n));
            let prefixed = names.iter().any(|(n, _)| dict.tensors.contains_key(&format!("backbone.{n}")));
            (!direct && prefixed).then(|| "backbone.".to_string())
        }
    };
    let owned;
    let tensors = match &prefix {
        Some(p) => {
            owned = dict.clone().strip_prefix(p).tensors;
            &owned
        }
        None => &dict.tensors,
    };
    let mut mapper = LoadMapper { path: Vec::new(), dict: tensors, report: LoadReport::default(), apply: false };
    let module = module.map(&mut mapper);
    let mut report = mapper.report;
    report.prefix = prefix;
    let known: std::collections::HashSet<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    report.unexpected = tensors.keys().filter(|k| !is_alias(k) && !known.contains(k.as_str())).cloned().collect();
    if options.strict && !report.is_clean() {
        return Err(WeightsError::Strict(report));
    }
    let mut mapper = LoadMapper { path: Vec::new(), dict: tensors, report: LoadReport::default(), apply: true };
    let module = module.map(&mut mapper);
    Ok((module, report))
}

/// Reads `path` (safetensors or PyTorch / Lightning) and loads it into `module`.
pub fn load_file<B: Backend, M: Module<B>>(module: M, path: impl AsRef<Path>, options: &LoadOptions) -> Result<(M, LoadReport), WeightsError> {
    let dict = StateDict::from_file(path)?;
    load_state_dict(module, &dict, options)
}
