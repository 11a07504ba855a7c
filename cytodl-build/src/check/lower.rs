//! The typed experiment: each section checked (its components, then the domain rules), then
//! built by its declaration in `cytodl-schema` — defaults come from there, never from here.
//! Shapes cyto_dl accepts in several spellings are normalised on the way: a split's transforms
//! become one `Compose`, a bare optimizer plays the `generator` role, the model-level legacy
//! `postprocessing` moves to each head, paths under `paths.output_dir` become run-folder paths.

use cytodl_schema::{
    Args, BackboneConfig, CallbackConfig, Component, Compose, DataframeDatamodule, Field, HeadConfig, HeadPostprocess, InferenceArgs, Kind, Lit, LoggerConfig,
    Map, ModelConfig, OptimizerConfig, PerRole, PostprocessConfig, SchedulerConfig, SlidingWindowArgs, Targets, Trainer, TransformConfig,
};
use indexmap::IndexMap;

use super::rules::train_patch;
use super::{lit, show, Checker, SPLITS};
use crate::config::node::{Node, Value};
use crate::diag::{did_you_mean, Diagnostic};
use crate::ir::Experiment;

/// `node` as a mapping value with some entries replaced.
fn with_entries(node: &Node, replace: Vec<(&str, Lit)>) -> Lit {
    let mut m: IndexMap<String, Lit> = match lit(node) {
        Lit::Map(m) => m,
        _ => IndexMap::new(),
    };
    for (k, v) in replace {
        m.insert(k.to_string(), v);
    }
    Lit::Map(m)
}

impl Checker<'_> {
    pub(super) fn experiment(&mut self, name: &str) -> Option<Experiment> {
        let Some(data_node) = self.cfg("data") else {
            self.diags.push(
                Diagnostic::error("the config has no `data` section", self.anchor)
                    .with_help("select one: `override /data: <name>` in the experiment's defaults"),
            );
            return None;
        };
        let data_ok = self.component(data_node, "data", Kind::Datamodule).is_some();
        let columns: Vec<String> = self.cfg("data.columns").map(lit).map(|l| l.strings()).unwrap_or_default();
        let model_node = self.cfg("model");
        let model_spec = model_node.and_then(|n| self.component(n, "model", Kind::Model));
        // cyto_dl's GAN: a discriminator with its own optimizer, one GAN head, manual optimization.
        let gan = model_spec.is_some_and(|s| s.native == <cytodl_schema::GAN as Component>::SPEC.native);
        let model_ok = match model_node {
            Some(_) => model_spec.is_some(),
            None => {
                self.diags.push(
                    Diagnostic::error("the config has no `model` section", self.anchor)
                        .with_help("select one: `override /model: <name>` in the experiment's defaults"),
                );
                false
            }
        };
        let backbone_node = self.cfg("model.backbone");
        let backbone = match (model_ok, backbone_node) {
            (true, Some(n)) => self.typed_component(&lit(n), n, "model.backbone", BackboneConfig::from_args),
            _ => None,
        };
        let spatial_dims = match &backbone {
            Some(BackboneConfig::DynUNet(b)) => b.spatial_dims,
            None => 3,
        };
        if let (Some(BackboneConfig::DynUNet(b)), Some(n)) = (&backbone, backbone_node) {
            self.check_dynunet(b, n);
        }
        let transforms = self.transforms(&columns, spatial_dims);
        let x_key = self.cfg("model.x_key").and_then(|n| n.as_str()).unwrap_or_default().to_string();
        if !columns.is_empty() && !x_key.is_empty() && !columns.contains(&x_key) {
            if let Some(n) = self.cfg("model.x_key") {
                self.err(
                    format!("model.x_key `{x_key}` is not one of data.columns [{}]", columns.join(", ")),
                    n,
                    "model.x_key",
                    did_you_mean(&x_key, columns.iter().map(String::as_str)),
                );
            }
        }
        let out_channels = match &backbone {
            Some(BackboneConfig::DynUNet(b)) => b.out_channels,
            None => 1,
        };
        // A head's target is a column, or a key a transform makes (cyto_dl's Merged output).
        // Read from the config itself, so that one broken transform elsewhere does not hide it.
        let mut head_columns = columns.clone();
        if let Some(splits) = self.cfg("data.transforms").and_then(|n| n.as_map()) {
            let merged = <cytodl_schema::Merged as Component>::SPEC;
            for compose in splits.values() {
                let items = match compose.child("transforms").map(|t| &t.value) {
                    Some(Value::List(items)) => items.iter().collect::<Vec<_>>(),
                    _ => match &compose.value {
                        Value::List(items) => items.iter().collect(),
                        _ => Vec::new(),
                    },
                };
                for t in items {
                    let is_merged = t.child("_target_").and_then(|n| n.as_str()).is_some_and(|target| merged.answers(target));
                    if let Some(out) = t.child("output_name").and_then(|n| n.as_str()).filter(|_| is_merged) {
                        if !head_columns.iter().any(|c| c == out) {
                            head_columns.push(out.to_string());
                        }
                    }
                }
            }
        }
        let heads = self.heads(&head_columns, out_channels, spatial_dims);
        let roles: &[&str] = if gan { super::gan::ROLES } else { &["generator"] };
        let optimizer = self.roles::<OptimizerConfig>("model.optimizer", Kind::Optimizer, true, roles);
        if let Some(o) = &optimizer {
            self.check_optimizer(o);
        }
        let scheduler = self.roles::<SchedulerConfig>("model.lr_scheduler", Kind::Scheduler, false, roles);
        if let Some(s) = &scheduler {
            self.check_scheduler(s);
        }
        let patch = transforms.as_ref().and_then(|t| t.get("train")).and_then(train_patch);
        if gan {
            self.check_gan(heads.as_ref(), optimizer.as_ref(), scheduler.as_ref(), &backbone, patch.as_deref());
        } else if let Some(h) = &heads {
            self.check_no_gan_heads(h);
        }
        let inference = self.inference(spatial_dims, patch);
        let trainer = self.trainer();
        let head_names: Vec<String> = heads.iter().flat_map(|h| h.0.keys().cloned()).collect();
        let loss_parts: Vec<String> = if gan { vec!["generator_loss".into(), "discriminator_loss".into()] } else { head_names.clone() };
        let (metrics, metric_names) = self.metrics(&head_names, &loss_parts);
        let callbacks = self.callbacks(&head_names, gan, &metric_names);
        let loggers = self.loggers();

        let seed = match self.cfg("seed").map(|n| &n.value) {
            Some(Value::Int(i)) if *i >= 0 => Some(*i as u64),
            Some(Value::Null) | None => None,
            Some(_) => {
                if let Some(n) = self.cfg("seed") {
                    self.err(format!("`seed` must be a non-negative integer or null, found {}", show(n)), n, "seed", None);
                }
                None
            }
        };
        for key in ["experiment_name", "run_name", "paths.log_dir", "paths.output_dir"] {
            if let Some(n) = self.cfg(key).filter(|n| !matches!(n.value, Value::Str(_) | Value::Null)) {
                self.err(format!("`{key}` must be a string, found {}", show(n)), n, key, None);
            }
        }
        self.check_data_ranges();

        // The typed sections, when every part checked.
        let output_dir = self.text("paths.output_dir", "");
        let data = match (data_ok, &transforms) {
            (true, Some(t)) => {
                let value = with_entries(data_node, vec![("transforms", t.to_lit())]);
                self.typed_component(&value, data_node, "data", |_, args| Some(DataframeDatamodule::from_args(args)))
            }
            _ => None,
        };
        let model = match (model_ok, model_node, &heads, &optimizer, &inference) {
            (true, Some(node), Some(heads), Some(optimizer), Some(inference)) => {
                let value = with_entries(
                    node,
                    vec![
                        ("task_heads", heads.to_lit()),
                        ("optimizer", optimizer.to_lit()),
                        ("lr_scheduler", scheduler.as_ref().map_or(Lit::Null, Field::to_lit)),
                        ("inference_args", inference.to_lit()),
                        ("postprocessing", Lit::Null),
                        ("metrics", metrics.as_ref().map_or(Lit::Null, Field::to_lit)),
                    ],
                );
                self.typed_component(&value, node, "model", ModelConfig::from_args)
            }
            _ => None,
        };
        let mut model = model?;
        if let Some(p) = model.save_dir_mut().take() {
            *model.save_dir_mut() = Some(p.relative_to_run(&output_dir));
        }
        let mut callbacks = callbacks;
        for (_, c) in &mut callbacks {
            match c {
                CallbackConfig::ModelCheckpoint(m) => m.dirpath = m.dirpath.take().map(|p| p.relative_to_run(&output_dir)),
                CallbackConfig::ImageSaver(s) => s.save_dir = s.save_dir.clone().relative_to_run(&output_dir),
                CallbackConfig::EarlyStopping(_) | CallbackConfig::ModelSummary(_) | CallbackConfig::ProgressBar(_) => {}
            }
        }
        let mut loggers = loggers;
        for (_, l) in &mut loggers {
            match l {
                LoggerConfig::CSVLogger(c) => c.save_dir = c.save_dir.clone().relative_to_run(&output_dir),
                LoggerConfig::MLFlowLogger(m) => m.save_dir = m.save_dir.clone().relative_to_run(&output_dir),
            }
        }
        let flag = |c: &Self, p: &str| c.cfg(p).map(|n| !matches!(n.value, Value::Bool(false))).unwrap_or(true);
        Some(Experiment {
            name: name.to_string(),
            spatial_dims: spatial_dims.max(0) as usize,
            columns,
            data: data?,
            model,
            trainer: trainer?,
            callbacks,
            loggers,
            seed,
            experiment_name: self.text("experiment_name", name),
            run_name: self.text("run_name", "run"),
            log_dir: self.text("paths.log_dir", "logs"),
            train: flag(self, "train"),
            test: flag(self, "test"),
            ckpt_path: self.cfg("checkpoint.ckpt_path").and_then(|n| n.as_str()).map(str::to_string),
            weights_only: self.cfg("checkpoint.weights_only").is_some_and(|n| matches!(n.value, Value::Bool(true))),
            strict: flag(self, "checkpoint.strict"),
            resolved_yaml: crate::config::emit::to_yaml(&self.resolved.config),
            sources: Vec::new(),
        })
    }

    fn text(&self, path: &str, default: &str) -> String {
        self.cfg(path).and_then(|n| n.as_str()).unwrap_or(default).to_string()
    }

    /// Each split's pipeline as one `Compose`, every transform checked and typed.
    fn transforms(&mut self, columns: &[String], spatial_dims: i64) -> Option<Map<Compose>> {
        let node = self.cfg("data.transforms")?;
        let map = node.as_map()?;
        let mut out = IndexMap::new();
        let mut ok = true;
        for (split, compose) in map {
            let path = format!("data.transforms.{split}");
            if !SPLITS.contains(&split.as_str()) {
                self.err(
                    format!("unknown split `{split}` in data.transforms"),
                    compose,
                    &path,
                    did_you_mean(split, SPLITS.iter().copied()).or_else(|| Some("splits: train, valid, test, predict".into())),
                );
                ok = false;
                continue;
            }
            let list: Vec<(String, &Node)> = match &compose.value {
                Value::Map(m) if m.contains_key("_target_") => {
                    if self.component(compose, &path, Kind::Transform).map(|c| c.native) != Some(<Compose as Component>::SPEC.native) {
                        ok = false;
                        continue;
                    }
                    match m.get("transforms").map(|t| &t.value) {
                        Some(Value::List(items)) => items.iter().enumerate().map(|(i, n)| (format!("{path}.transforms.{i}"), n)).collect(),
                        _ => continue,
                    }
                }
                Value::List(items) => items.iter().enumerate().map(|(i, n)| (format!("{path}.{i}"), n)).collect(),
                Value::Null => continue,
                _ => {
                    self.err("expected a monai.transforms.Compose or a list of transforms", compose, &path, None);
                    ok = false;
                    continue;
                }
            };
            let mut typed = Vec::new();
            // The keys a transform may name: the columns, and what earlier transforms created
            // (Merged's output) or kept (SelectItemsd).
            let mut known: Vec<String> = columns.to_vec();
            for (tpath, tnode) in list {
                let Some(spec) = self.component(tnode, &tpath, Kind::Transform) else {
                    ok = false;
                    continue;
                };
                if spec.native == <Compose as Component>::SPEC.native {
                    self.err("nested Compose is not supported; list the transforms directly", tnode, &tpath, None);
                    ok = false;
                    continue;
                }
                if !self.check_reader(tnode, &tpath) {
                    ok = false;
                    continue;
                }
                let Some(t) = self.typed_component(&lit(tnode), tnode, &tpath, TransformConfig::from_args) else {
                    ok = false;
                    continue;
                };
                if !self.check_transform(&t, tnode, &tpath, &known, spatial_dims) {
                    ok = false;
                }
                match &t {
                    TransformConfig::Merged(m) if !known.contains(&m.output_name) => known.push(m.output_name.clone()),
                    TransformConfig::SelectItemsd(sel) if !known.is_empty() => known.retain(|k| sel.keys.0.contains(k)),
                    _ => {}
                }
                typed.push(t);
            }
            out.insert(split.clone(), Compose { transforms: Targets(typed) });
        }
        if !out.contains_key("train") {
            self.err("data.transforms has no `train` pipeline", node, "data.transforms", None);
            ok = false;
        }
        ok.then_some(Map(out))
    }

    /// A `LoadImaged`'s `reader`: one `MonaiBioReader` (or a list holding one), checked.
    fn check_reader(&mut self, node: &Node, path: &str) -> bool {
        let Some(reader) = node.child("reader") else { return true };
        let rpath = format!("{path}.reader");
        let one = match &reader.value {
            Value::List(items) if items.len() == 1 => &items[0],
            Value::List(items) if items.len() > 1 => {
                self.err("only one reader is supported", reader, &rpath, None);
                return false;
            }
            Value::Map(_) => reader,
            Value::Null | Value::List(_) => return true,
            _ => {
                self.err(format!("`reader` must be a cyto_dl.image.io.MonaiBioReader (or a list holding one), found {}", show(reader)), reader, &rpath, None);
                return false;
            }
        };
        self.component(one, &rpath, Kind::Reader).is_some()
    }

    /// `model.task_heads`: each head checked against its column and the backbone, its loss
    /// against the head, and its postprocessing (its own, else the model-level legacy entry).
    fn heads(&mut self, columns: &[String], out_channels: i64, spatial_dims: i64) -> Option<Map<HeadConfig>> {
        let node = self.cfg("model.task_heads")?;
        let Some(map) = node.as_map() else {
            self.err(format!("model.task_heads must map head names to heads, found {}", show(node)), node, "model.task_heads", None);
            return None;
        };
        if map.is_empty() {
            self.err("model.task_heads is empty: the model needs at least one head", node, "model.task_heads", None);
            return None;
        }
        let legacy = self.cfg("model.postprocessing").filter(|n| !matches!(n.value, Value::Null));
        if let Some(l) = legacy {
            for (k, v) in l.as_map().into_iter().flatten() {
                let p = format!("model.postprocessing.{k}");
                if k != "input" && k != "prediction" {
                    self.err(format!("unknown postprocessing entry `{k}`"), v, &p, did_you_mean(k, ["input", "prediction"]));
                } else if !matches!(v.value, Value::Map(_) | Value::Null) {
                    self.err(format!("`{p}` must map {} to functions, found {}", if k == "input" { "columns" } else { "heads" }, show(v)), v, &p, None);
                }
            }
        }
        let x_key = self.cfg("model.x_key").and_then(|n| n.as_str()).unwrap_or_default().to_string();
        let mut heads = IndexMap::new();
        let mut ok = true;
        for (name, hnode) in map {
            let path = format!("model.task_heads.{name}");
            if !columns.is_empty() && !columns.contains(name) {
                self.err(
                    format!("head `{name}` has no target column: it is not one of data.columns [{}]", columns.join(", ")),
                    hnode,
                    &path,
                    did_you_mean(name, columns.iter().map(String::as_str))
                        .or_else(|| Some(format!("name the head after its target column, or add `{name}` to data.columns"))),
                );
                ok = false;
            }
            if self.component(hnode, &path, Kind::Head).is_none() {
                ok = false;
                continue;
            }
            let mut post_ok = true;
            if let Some(p) = hnode.child("postprocess").filter(|p| !matches!(p.value, Value::Null)) {
                for which in ["input", "prediction"] {
                    if let Some(fnode) = p.child(which).filter(|n| !matches!(n.value, Value::Null)) {
                        post_ok &= self.check_postprocess_entry(fnode, &format!("{path}.postprocess.{which}"));
                    }
                }
                if let Some(m) = p.as_map() {
                    for k in m.keys().filter(|k| *k != "input" && *k != "prediction") {
                        self.err(
                            format!("unknown postprocess entry `{k}`"),
                            &m[k],
                            &format!("{path}.postprocess.{k}"),
                            did_you_mean(k, ["input", "prediction"]),
                        );
                        post_ok = false;
                    }
                }
            }
            if !post_ok {
                ok = false;
                continue;
            }
            let Some(mut head) = self.typed_component(&lit(hnode), hnode, &path, HeadConfig::from_args) else {
                ok = false;
                continue;
            };
            let channels = match &head {
                HeadConfig::ResBlocksHead(h) => h.out_channels,
                HeadConfig::GANHeadResize(h) => h.out_channels,
                HeadConfig::BaseHead(_) | HeadConfig::MaskHead(_) | HeadConfig::GANHead(_) => out_channels,
            };
            let loss = head.loss().clone();
            let loss_key = if head.adversarial().is_some() { "reconstruction_loss" } else { "loss" };
            self.check_loss(&loss, &head, hnode, &format!("{path}.{loss_key}"), channels, spatial_dims);
            if let HeadConfig::MaskHead(h) = &head {
                // cyto_dl reads `batch[mask_key]`: a column the data loads.
                if !columns.is_empty() && !columns.contains(&h.mask_key) {
                    let at = hnode.child("mask_key").unwrap_or(hnode);
                    self.err(
                        format!("head `{name}` takes its mask from `{}`, which is not one of data.columns [{}]", h.mask_key, columns.join(", ")),
                        at,
                        &format!("{path}.mask_key"),
                        did_you_mean(&h.mask_key, columns.iter().map(String::as_str)),
                    );
                    ok = false;
                }
            }
            let resblocks = match &head {
                HeadConfig::ResBlocksHead(h) => Some(h.clone()),
                HeadConfig::GANHeadResize(h) => Some(h.layers()),
                _ => None,
            };
            if let Some(h) = &resblocks {
                if h.in_channels != out_channels {
                    self.err(
                        format!("head `{name}` takes in_channels = {}, but the backbone gives out_channels = {out_channels}", h.in_channels),
                        hnode.child("in_channels").unwrap_or(hnode),
                        &format!("{path}.in_channels"),
                        Some(format!("set in_channels: {out_channels} (or the backbone's out_channels to {})", h.in_channels)),
                    );
                    ok = false;
                }
                if h.spatial_dims != spatial_dims {
                    self.err(
                        format!("head `{name}` has spatial_dims = {} (the default is 3), the backbone {spatial_dims}", h.spatial_dims),
                        hnode.child("spatial_dims").unwrap_or(hnode),
                        &format!("{path}.spatial_dims"),
                        Some(format!(
                            "set the head's spatial_dims: {spatial_dims} (cyto_dl would build {}-D convolutions for a {spatial_dims}-D image)",
                            h.spatial_dims
                        )),
                    );
                    ok = false;
                }
            }
            // The seed document's model-level shape: postprocessing.{input.<column>, prediction.<head>}.
            if let Some(l) = legacy {
                let mut post = head.postprocess().cloned().unwrap_or_default();
                for (which, key) in [("input", x_key.clone()), ("prediction", name.clone())] {
                    let lpath = format!("model.postprocessing.{which}.{key}");
                    if let Some(fnode) = l.child(which).and_then(|w| w.child(&key)) {
                        if !self.check_postprocess_entry(fnode, &lpath) {
                            ok = false;
                            continue;
                        }
                        let Some(c) = self.typed_component(&lit(fnode), fnode, &lpath, PostprocessConfig::from_args) else {
                            ok = false;
                            continue;
                        };
                        let slot = if which == "input" { &mut post.input } else { &mut post.prediction };
                        slot.get_or_insert(c);
                    }
                }
                if post != HeadPostprocess::default() {
                    *head.postprocess_mut() = Some(post);
                }
            }
            // InstanceSegCluster reads skeleton, semantic and `dim` embedding channels.
            if let Some(cytodl_schema::PostprocessConfig::InstanceSegCluster(c)) = head.postprocess().and_then(|p| p.prediction.as_ref()) {
                let at = hnode.child("postprocess").and_then(|p| p.child("prediction")).unwrap_or(hnode);
                let (at, ppath) = match legacy.and_then(|l| l.child("prediction")).and_then(|p| p.child(name)) {
                    Some(n) if hnode.child("postprocess").is_none() => (n, format!("model.postprocessing.prediction.{name}")),
                    _ => (at, format!("{path}.postprocess.prediction")),
                };
                if c.dim != spatial_dims {
                    self.err(
                        format!("InstanceSegCluster has dim = {}, the backbone spatial_dims = {spatial_dims}", c.dim),
                        at.child("dim").unwrap_or(at),
                        &format!("{ppath}.dim"),
                        Some("set dim: ${spatial_dims}".into()),
                    );
                    ok = false;
                } else if channels < c.dim + 2 {
                    self.err(
                        format!("InstanceSegCluster reads {} channels (skeleton, semantic, {} embedding), head `{name}` predicts {channels}", c.dim + 2, c.dim),
                        at,
                        &ppath,
                        Some("it clusters an instance-segmentation prediction (InstanceSegLoss, spatial_dims + 3 channels)".into()),
                    );
                    ok = false;
                }
            }
            heads.insert(name.clone(), head);
        }
        ok.then_some(Map(heads))
    }

    /// `{generator: <component>}` (or the component itself) of `kind` at `path`. An absent entry
    /// that is required is reported by the model's own parameter check; an empty one here, when
    /// `required`.
    fn roles<T: Field>(&mut self, path: &str, kind: Kind, required: bool, roles: &[&str]) -> Option<PerRole<T>> {
        let node = self.cfg(path)?;
        if matches!(node.value, Value::Null) || node.as_map().is_some_and(|m| m.is_empty()) {
            if required {
                self.err(format!("`{path}` is empty"), node, path, Some("give `generator: {_target_: torch.optim.Adam, _partial_: True, lr: 0.0001}`".into()));
            }
            return None;
        }
        let Some(map) = node.as_map() else {
            self.err(format!("`{path}` must be a mapping"), node, path, None);
            return None;
        };
        if map.contains_key("_target_") {
            self.component(node, path, kind)?;
            let value = Lit::Map([("generator".to_string(), lit(node))].into_iter().collect());
            return self.typed_lit(&value, node, path);
        }
        let mut ok = true;
        if !map.contains_key("generator") {
            self.err(format!("`{path}` has no `generator` entry"), node, path, Some(format!("roles: {}", roles.join(", "))));
            ok = false;
        }
        for (role, rnode) in map {
            let rpath = format!("{path}.{role}");
            if !roles.contains(&role.as_str()) {
                let why = if roles.len() == 1 {
                    "only a `generator` entry (a `discriminator` belongs to cyto_dl.models.im2im.GAN models)".to_string()
                } else {
                    format!("only {}", roles.join(" and "))
                };
                self.err(format!("`{rpath}`: this model takes {why}"), rnode, &rpath, did_you_mean(role, roles.iter().copied()));
                ok = false;
            } else if self.component(rnode, &rpath, kind).is_none() {
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let value = Lit::Map(map.iter().map(|(role, rnode)| (role.clone(), lit(rnode))).collect());
        self.typed_lit(&value, node, path)
    }

    /// `model.inference_args`, checked; the training patch is the default window.
    fn inference(&mut self, spatial_dims: i64, patch: Option<Vec<i64>>) -> Option<InferenceArgs> {
        let node = self.cfg("model.inference_args").filter(|n| !matches!(n.value, Value::Null));
        let mut value = match node {
            Some(n) => {
                if !self.check_inference(n, spatial_dims) {
                    return None;
                }
                lit(n)
            }
            None => Lit::Map(IndexMap::new()),
        };
        if let Lit::Map(m) = &mut value {
            if !m.contains_key("roi_size") {
                match &patch {
                    Some(p) => {
                        m.insert("roi_size".into(), Lit::List(p.iter().map(|v| Lit::Int(*v)).collect()));
                    }
                    None => {
                        let at = node.or_else(|| self.cfg("model")).unwrap_or(&self.resolved.config);
                        self.err(
                            "sliding-window inference needs `roi_size` (there is no training patch to default to)",
                            at,
                            "model.inference_args.roi_size",
                            Some(format!("give model.inference_args.roi_size, {spatial_dims} values")),
                        );
                        return None;
                    }
                }
            }
        }
        let at = node.unwrap_or(&self.resolved.config);
        let args: SlidingWindowArgs = self.typed_component(&value, at, "model.inference_args", |_, a: &Args| Some(SlidingWindowArgs::from_args(a)))?;
        Some(InferenceArgs(args))
    }

    fn trainer(&mut self) -> Option<Trainer> {
        let Some(node) = self.cfg("trainer") else {
            return Trainer::from_args(&Args::default()).ok();
        };
        if node.as_map().is_some_and(|m| m.contains_key("_target_")) {
            self.component(node, "trainer", Kind::Trainer)?;
        } else if !matches!(node.value, Value::Map(_)) {
            self.err(format!("`trainer` must be a mapping, found {}", show(node)), node, "trainer", None);
            return None;
        }
        let t = self.typed_component(&lit(node), node, "trainer", |_, args| Some(Trainer::from_args(args)))?;
        self.check_trainer(&t, node).then_some(t)
    }

    /// `callbacks.<name>`: each checked and typed; its monitored metric must be logged.
    fn callbacks(&mut self, heads: &[String], gan: bool, model_metrics: &[String]) -> Vec<(String, CallbackConfig)> {
        let mut out = Vec::new();
        let Some(node) = self.cfg("callbacks").filter(|n| !matches!(n.value, Value::Null)) else { return out };
        let Some(map) = node.as_map() else {
            self.err(format!("`callbacks` must map names to callbacks, found {}", show(node)), node, "callbacks", None);
            return out;
        };
        let mut metrics = vec!["train/loss".to_string(), "val/loss".to_string()];
        if gan {
            metrics = super::gan::metrics();
        } else {
            for h in heads {
                metrics.push(format!("train/loss/{h}"));
                metrics.push(format!("val/loss/{h}"));
            }
        }
        // what model.metrics adds in the stages a callback sees (train and val)
        for name in model_metrics {
            let stage = cytodl_schema::MetricKey::parse(name).and_then(|k| k.stage());
            if matches!(stage, Some("train" | "val")) && !metrics.contains(name) {
                metrics.push(name.clone());
            }
        }
        for (name, node) in map {
            if matches!(node.value, Value::Null) {
                continue;
            }
            let path = format!("callbacks.{name}");
            if self.component(node, &path, Kind::Callback).is_none() {
                continue;
            }
            let Some(c) = self.typed_component(&lit(node), node, &path, CallbackConfig::from_args) else { continue };
            self.check_callback(&c, node, &path, &metrics);
            out.push((name.clone(), c));
        }
        out
    }

    fn loggers(&mut self) -> Vec<(String, LoggerConfig)> {
        let mut out = Vec::new();
        let Some(node) = self.cfg("logger").filter(|n| !matches!(n.value, Value::Null)) else { return out };
        let Some(map) = node.as_map() else {
            self.err(format!("`logger` must map names to loggers, found {}", show(node)), node, "logger", None);
            return out;
        };
        for (name, node) in map {
            if matches!(node.value, Value::Null) {
                continue;
            }
            let path = format!("logger.{name}");
            if self.component(node, &path, Kind::Logger).is_none() {
                continue;
            }
            if let Some(l) = self.typed_component(&lit(node), node, &path, LoggerConfig::from_args) {
                out.push((name.clone(), l));
            }
        }
        out
    }
}
