//! Checking a resolved config against the registry, and building the typed [`ir::Experiment`].
//!
//! Like serde_derive's context, the checker collects every independent error before reporting:
//! an unknown target, a misspelt parameter, a wrong type, a transform key that is not a column,
//! a patch of the wrong rank and a channel mismatch all come out of one run, each pointing at
//! the YAML node that caused it (and, through an interpolation, at the definition too).

use indexmap::IndexMap;

use crate::config::node::{Node, Value};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics, Span};
use crate::frontend::Resolved;
use crate::ir::{Call, Experiment, Head, Lit, PathIr};
use crate::schema::{self, Kind, Ty};

/// Keys Hydra's `instantiate` reads itself.
const HYDRA_KEYS: &[&str] = &["_target_", "_partial_", "_convert_", "_recursive_", "_args_"];

/// The splits of cyto_dl's `transforms` mapping (`valid` is cyto_dl's name for validation).
const SPLITS: &[&str] = &["train", "valid", "val", "test", "predict"];

const INFERENCE_KEYS: &[&str] = &["roi_size", "sw_batch_size", "overlap", "mode", "sigma_scale", "padding_mode", "cval", "progress", "sw_device", "device"];

struct Checker<'a> {
    resolved: &'a Resolved,
    diags: Diagnostics,
    /// Where errors about something absent point: the experiment file's first line.
    anchor: Span,
}

/// Checks `resolved` and returns the experiment with the warnings, or every error. Errors about
/// a section that is absent altogether point at `anchor` (the experiment file).
pub fn check(resolved: &Resolved, name: &str, anchor: Span) -> Result<(Experiment, Diagnostics), Diagnostics> {
    let anchor = if anchor.is_known() { anchor } else { resolved.config.span };
    let mut c = Checker { resolved, diags: Diagnostics::new(), anchor };
    c.diags.extend(crate::frontend::missing_diagnostics(&resolved.missing, true));
    let experiment = c.experiment(name);
    if c.diags.has_errors() {
        return Err(c.diags);
    }
    match experiment {
        Some(e) => Ok((e, c.diags)),
        None => {
            c.diags.push(Diagnostic::error("the experiment could not be checked", c.anchor));
            Err(c.diags)
        }
    }
}

fn lit(node: &Node) -> Lit {
    match &node.value {
        Value::Null | Value::Missing => Lit::Null,
        Value::Bool(b) => Lit::Bool(*b),
        Value::Int(i) => Lit::Int(*i),
        Value::Float(f) => Lit::Float(*f),
        Value::Str(s) => Lit::Str(s.clone()),
        Value::List(items) => Lit::List(items.iter().map(lit).collect()),
        Value::Map(m) => Lit::Map(m.iter().map(|(k, v)| (k.clone(), lit(v))).collect()),
    }
}

fn default_lit(text: &str) -> Lit {
    match crate::config::yaml::load_any(text, crate::diag::FileId(0)) {
        Ok(Some(node)) => lit(&node),
        _ => Lit::Null,
    }
}

/// Ignored keys whose value asks for nothing cytodl would not do anyway (no note needed):
/// null, false, and settings that every cyto_dl template carries.
fn benign(key: &str, value: &Node) -> bool {
    const ALWAYS: &[&str] = &["pin_memory", "default_root_dir", "persistent_workers", "max_depth", "verbose", "strict", "image_only", "track_meta", "log_every_n_steps", "enable_progress_bar", "enable_model_summary"];
    matches!(value.value, Value::Null | Value::Bool(false)) || ALWAYS.contains(&key) || (key == "devices" && matches!(value.value, Value::Int(1)))
        || (key == "accelerator" && matches!(value.as_str(), Some("cpu" | "auto")))
}

fn fits(ty: Ty, node: &Node) -> bool {
    let int = |n: &Node| matches!(n.value, Value::Int(_));
    let num = |n: &Node| matches!(n.value, Value::Int(_) | Value::Float(_));
    let list_of = |n: &Node, f: &dyn Fn(&Node) -> bool| match &n.value {
        Value::List(items) => items.iter().all(f),
        _ => false,
    };
    match ty {
        Ty::Bool => matches!(node.value, Value::Bool(_)),
        Ty::Int => int(node),
        Ty::Float => num(node),
        Ty::Str => matches!(node.value, Value::Str(_)),
        Ty::Ints => int(node) || list_of(node, &int),
        Ty::Floats => num(node) || list_of(node, &num),
        Ty::Keys => matches!(node.value, Value::Str(_)) || list_of(node, &|n| matches!(n.value, Value::Str(_))),
        Ty::Enum(_) => matches!(node.value, Value::Str(_)),
        Ty::Target(_) => matches!(node.value, Value::Map(_)),
        Ty::Targets(_) => matches!(node.value, Value::List(_)),
        Ty::Map => matches!(node.value, Value::Map(_)),
        Ty::Any => true,
    }
}

fn show(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => format!("\"{s}\""),
        Value::Map(_) => "a mapping".into(),
        Value::List(_) => format!("the list {}", crate::config::emit::to_yaml(node).trim().replace('\n', " ")),
        _ => crate::config::emit::to_yaml(node).trim().to_string(),
    }
}

impl<'a> Checker<'a> {
    fn cfg(&self, path: &str) -> Option<&'a Node> {
        self.resolved.config.get_path(path)
    }

    /// Adds a note pointing at the definition when the value at `path` came through `${...}`.
    fn error(&mut self, mut d: Diagnostic, path: &str) {
        if let Some(src) = self.resolved.composed.get_path(path).and_then(|n| n.as_str()) {
            let t = src.trim();
            if let Some(inner) = t.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
                if !inner.contains(['$', ':', '{']) {
                    if let Some(def) = self.resolved.composed.get_path(inner.trim_start_matches('.')) {
                        if def.span != d.span {
                            d = d.with_note(def.span, format!("the value comes from `{inner}`, defined here"));
                        }
                    }
                }
            }
        }
        self.diags.push(d);
    }

    fn err(&mut self, message: impl Into<String>, node: &Node, path: &str, help: Option<String>) {
        let mut d = Diagnostic::error(message, node.span).with_key(path.to_string());
        if let Some(h) = help {
            d = d.with_help(h);
        }
        self.error(d, path);
    }

    fn warn(&mut self, message: impl Into<String>, node: &Node, path: &str) {
        self.diags.push(Diagnostic::warning(message, node.span).with_key(path.to_string()));
    }

    /// A `_target_` node of `kind`, type-checked, with defaults filled.
    fn component(&mut self, node: &Node, path: &str, kind: Kind) -> Option<Call> {
        let Some(map) = node.as_map() else {
            self.err(format!("expected {} (a mapping with `_target_`), found {}", kind.with_article(), show(node)), node, path, None);
            return None;
        };
        let Some(target_node) = map.get("_target_") else {
            let names: Vec<&str> = schema::names_of(kind).take(3).collect();
            self.err(format!("this {} has no `_target_`", kind.describe()), node, path, Some(format!("add `_target_: {}`", names.first().copied().unwrap_or("..."))));
            return None;
        };
        let tpath = format!("{path}._target_");
        let Some(target) = target_node.as_str() else {
            self.err(format!("`_target_` must be a string, found {}", show(target_node)), target_node, &tpath, None);
            return None;
        };
        let component = match schema::lookup(target) {
            Some(c) if c.kind == kind => c,
            Some(c) => {
                self.err(format!("`{target}` is {}, but {} is expected here", c.kind.with_article(), kind.with_article()), target_node, &tpath, did_you_mean(target, schema::names_of(kind)));
                return None;
            }
            None => {
                if let Some(what) = schema::not_implemented(target) {
                    self.err(format!("`{target}` ({what}) is not implemented in cytodl yet"), target_node, &tpath, Some(format!("supported {}s: {}", kind.describe(), schema::COMPONENTS.iter().filter(|c| c.kind == kind).map(|c| c.names[0]).collect::<Vec<_>>().join(", "))));
                } else {
                    self.err(format!("unknown {} `{target}`", kind.describe()), target_node, &tpath, did_you_mean(target, schema::names_of(kind)));
                }
                return None;
            }
        };
        let mut args = IndexMap::new();
        let mut children = IndexMap::new();
        let mut ok = true;
        for (key, value) in map {
            if HYDRA_KEYS.contains(&key.as_str()) {
                continue;
            }
            let kpath = format!("{path}.{key}");
            let Some(param) = component.param(key) else {
                if let Some(why) = component.ignored_note(key) {
                    if !benign(key, value) {
                        self.warn(format!("`{key}` has no effect in cytodl: {why}"), value, &kpath);
                    }
                    continue;
                }
                self.err(
                    format!("`{}` has no parameter `{key}`", component.names[0]),
                    value,
                    &kpath,
                    did_you_mean(key, component.params.iter().map(|p| p.name)).or_else(|| Some(format!("its parameters: {}", component.params.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")))),
                );
                ok = false;
                continue;
            };
            if let Some(why) = component.ignored_note(key) {
                if !benign(key, value) && Some(crate::config::emit::to_yaml(value).trim()) != param.default {
                    self.warn(format!("`{key}` has no effect in cytodl: {why}"), value, &kpath);
                }
            }
            if matches!(value.value, Value::Missing) {
                ok = false;
                continue;
            }
            if matches!(value.value, Value::Null) {
                if param.nullable || param.default == Some("null") {
                    args.insert(key.clone(), Lit::Null);
                } else {
                    self.err(format!("`{key}` of `{}` cannot be null; it must be {}", component.names[0], param.ty.describe()), value, &kpath, param.default.map(|d| format!("remove it to use the default {d}")));
                    ok = false;
                }
                continue;
            }
            if !fits(param.ty, value) {
                self.err(format!("`{key}` of `{}` must be {}, found {}", component.names[0], param.ty.describe(), show(value)), value, &kpath, None);
                ok = false;
                continue;
            }
            if param.doc.ends_with("not supported") && !matches!(value.value, Value::Null | Value::Bool(false)) && !matches!(&value.value, Value::Str(t) if t.is_empty()) {
                self.err(format!("`{key}` of `{}` is not supported by cytodl", component.names[0]), value, &kpath, Some("remove it (cytodl has no equivalent yet)".into()));
                ok = false;
                continue;
            }
            if let Ty::Enum(options) = param.ty {
                let s = value.as_str().unwrap_or_default();
                if !options.contains(&s) {
                    self.err(format!("`{key}` of `{}` must be {}, found \"{s}\"", component.names[0], param.ty.describe()), value, &kpath, did_you_mean(s, options.iter().copied()));
                    ok = false;
                    continue;
                }
            }
            if let Ty::Target(k) = param.ty {
                match self.component(value, &kpath, k) {
                    Some(child) => {
                        children.insert(key.clone(), child);
                    }
                    None => ok = false,
                }
            }
            args.insert(key.clone(), lit(value));
        }
        for param in component.params {
            if args.contains_key(param.name) || map.contains_key(param.name) {
                continue;
            }
            match param.default {
                Some(d) => {
                    args.insert(param.name.to_string(), default_lit(d));
                }
                None => {
                    self.err(format!("`{}` needs `{}` ({})", component.names[0], param.name, param.doc), node, path, Some(format!("add `{}: <{}>`", param.name, param.ty.describe())));
                    ok = false;
                }
            }
        }
        ok.then(|| Call { native: component.native, target: target.to_string(), args, children })
    }

    fn experiment(&mut self, name: &str) -> Option<Experiment> {
        let Some(data_node) = self.cfg("data") else {
            self.diags.push(Diagnostic::error("the config has no `data` section", self.anchor).with_help("select one: `override /data: <name>` in the experiment's defaults"));
            return None;
        };
        let data = self.component(data_node, "data", Kind::Datamodule);
        let columns: Vec<String> = self.cfg("data.columns").map(lit).map(|l| l.strings()).unwrap_or_default();
        let model_node = self.cfg("model");
        let model = match model_node {
            Some(n) => self.component(n, "model", Kind::Model),
            None => {
                self.diags.push(Diagnostic::error("the config has no `model` section", self.anchor).with_help("select one: `override /model: <name>` in the experiment's defaults"));
                None
            }
        };
        let backbone = model.as_ref().and_then(|m| m.children.get("backbone").cloned());
        let spatial_dims = backbone.as_ref().and_then(|b| b.arg("spatial_dims").as_i64()).unwrap_or(3);
        if let (Some(b), Some(node)) = (&backbone, self.cfg("model.backbone")) {
            self.check_dynunet(b, node);
        }
        let transforms = self.transforms(&columns, spatial_dims);
        let x_key = self.cfg("model.x_key").and_then(|n| n.as_str()).unwrap_or_default().to_string();
        if !columns.is_empty() && !x_key.is_empty() && !columns.contains(&x_key) {
            if let Some(n) = self.cfg("model.x_key") {
                self.err(format!("model.x_key `{x_key}` is not one of data.columns [{}]", columns.join(", ")), n, "model.x_key", did_you_mean(&x_key, columns.iter().map(String::as_str)));
            }
        }
        let out_channels = backbone.as_ref().and_then(|b| b.arg("out_channels").as_i64()).unwrap_or(1);
        let heads = self.heads(&columns, out_channels);
        let (optimizer, lr) = self.optimizer();
        let scheduler = self.scheduler();
        let inference = self.inference(spatial_dims);
        let trainer = self.trainer();
        let head_names: Vec<String> = heads.iter().flatten().map(|h| h.name.clone()).collect();
        let callbacks = self.callbacks(&head_names);
        let csv_logger = self.loggers();

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
        for (key, min) in [("batch_size", 1), ("num_workers", 0)] {
            let path = format!("data.{key}");
            if let Some(n) = self.cfg(&path) {
                if let Value::Int(v) = n.value {
                    if v < min {
                        self.err(format!("data.{key} must be at least {min}, found {v}"), n, &path, None);
                    }
                }
            }
        }
        if let Some(sub) = self.cfg("data.subsample").and_then(|n| n.as_map()) {
            for (split, n) in sub {
                let path = format!("data.subsample.{split}");
                match n.value {
                    Value::Int(v) if v >= 1 => {}
                    Value::Null => {}
                    _ => self.err(format!("data.subsample.{split} must be a number of rows (at least 1), found {}", show(n)), n, &path, None),
                }
                if !SPLITS.contains(&split.as_str()) {
                    self.err(format!("unknown split `{split}` in data.subsample"), n, &path, did_you_mean(split, SPLITS.iter().copied()));
                }
            }
        }
        let text = |c: &Self, p: &str, d: &str| c.cfg(p).and_then(|n| n.as_str()).unwrap_or(d).to_string();
        let output_dir = text(self, "paths.output_dir", "");
        let flag = |c: &Self, p: &str| c.cfg(p).map(|n| !matches!(n.value, Value::Bool(false))).unwrap_or(true);
        let mut e = Experiment {
            name: name.to_string(),
            spatial_dims: spatial_dims as usize,
            x_key,
            in_channels: backbone.as_ref().and_then(|b| b.arg("in_channels").as_i64()).unwrap_or(1).max(1) as usize,
            columns,
            data: data?,
            transforms: transforms?,
            backbone: backbone?,
            heads: heads?,
            optimizer: optimizer?,
            lr,
            scheduler,
            inference: inference?,
            trainer: trainer?,
            checkpoint: callbacks.0,
            early_stopping: callbacks.1,
            image_saver: callbacks.2,
            csv_logger,
            seed,
            experiment_name: text(self, "experiment_name", name),
            run_name: text(self, "run_name", "run"),
            log_dir: text(self, "paths.log_dir", "logs"),
            save_dir: PathIr::InRun(String::new()),
            train: flag(self, "train"),
            test: flag(self, "test"),
            ckpt_path: self.cfg("checkpoint.ckpt_path").and_then(|n| n.as_str()).map(str::to_string),
            weights_only: self.cfg("checkpoint.weights_only").is_some_and(|n| matches!(n.value, Value::Bool(true))),
            strict: flag(self, "checkpoint.strict"),
            resolved_yaml: crate::config::emit::to_yaml(&self.resolved.config),
            sources: Vec::new(),
            output_dir,
        };
        model?;
        if let Some(save) = self.cfg("model.save_dir").and_then(|n| n.as_str()) {
            e.save_dir = e.path(save);
        }
        Some(e)
    }

    /// MONAI's DynUNet checks, each at the list that breaks it.
    fn check_dynunet(&mut self, b: &Call, node: &Node) {
        let dims = b.arg("spatial_dims").as_i64().unwrap_or(3);
        let at = |k: &str| node.child(k).unwrap_or(node);
        if !(2..=3).contains(&dims) {
            self.err(format!("spatial_dims must be 2 or 3, found {dims}"), at("spatial_dims"), "model.backbone.spatial_dims", None);
            return;
        }
        for k in ["in_channels", "out_channels"] {
            if b.arg(k).as_i64().is_some_and(|v| v < 1) {
                self.err(format!("{k} must be at least 1"), at(k), &format!("model.backbone.{k}"), None);
            }
        }
        let per_level = |l: &Lit| -> Option<Vec<Vec<i64>>> {
            l.as_list()
                .iter()
                .map(|v| match v {
                    Lit::Int(i) => Some(vec![*i; dims as usize]),
                    Lit::List(items) => items.iter().map(Lit::as_i64).collect(),
                    _ => None,
                })
                .collect()
        };
        let mut levels = None;
        for k in ["kernel_size", "strides", "upsample_kernel_size"] {
            let path = format!("model.backbone.{k}");
            match per_level(b.arg(k)) {
                None => self.err(format!("{k} must be a list with an int or a list of {dims} ints per level"), at(k), &path, None),
                Some(v) => {
                    if let Some(bad) = v.iter().find(|l| l.len() != dims as usize) {
                        self.err(format!("{k} has a level with {} values; spatial_dims is {dims}", bad.len()), at(k), &path, Some(format!("give {dims} values per level, or one int")));
                    } else if v.iter().flatten().any(|x| *x < 1) {
                        self.err(format!("{k} values must be at least 1"), at(k), &path, None);
                    }
                    match k {
                        "kernel_size" => levels = Some(v.len()),
                        "strides" => {
                            if let Some(n) = levels.filter(|n| *n != v.len()) {
                                self.err(format!("strides has {} levels but kernel_size has {n}", v.len()), at(k), &path, Some("give one kernel size and one stride per level".into()));
                            }
                            levels = Some(v.len());
                        }
                        _ => {
                            if let Some(n) = levels.filter(|n| *n != v.len() + 1) {
                                self.err(format!("upsample_kernel_size has {} levels; it needs len(strides) - 1 = {}", v.len(), n.saturating_sub(1)), at(k), &path, None);
                            }
                        }
                    }
                }
            }
        }
        if let (Some(n), false) = (levels, b.arg("filters").is_null()) {
            let f = b.arg("filters").ints();
            if f.len() < n {
                self.err(format!("filters has {} values for {n} levels", f.len()), at("filters"), "model.backbone.filters", Some(format!("give {n} filter counts, one per level")));
            }
        }
        // MONAI's defaults are the only normalisation and activation implemented.
        let name_of = |l: &Lit| match l {
            Lit::Str(s) => Some(s.to_ascii_lowercase()),
            Lit::List(items) => items.first().and_then(Lit::as_str).map(str::to_ascii_lowercase),
            _ => None,
        };
        let options_of = |l: &Lit| match l {
            Lit::List(items) => match items.get(1) {
                Some(Lit::Map(m)) => m.clone(),
                _ => Default::default(),
            },
            _ => Default::default(),
        };
        let norm = b.arg("norm_name");
        if name_of(norm).as_deref() != Some("instance") || options_of(norm).get("affine").is_some_and(|a| a.as_bool() == Some(false)) {
            self.err("only affine instance normalisation (MONAI's default `[\"INSTANCE\", {\"affine\": true}]`) is implemented", at("norm_name"), "model.backbone.norm_name", Some("remove norm_name to use the default".into()));
        }
        let act = b.arg("act_name");
        let slope = options_of(act).get("negative_slope").and_then(Lit::as_f64).unwrap_or(0.01);
        if name_of(act).as_deref() != Some("leakyrelu") || (slope - 0.01).abs() > 1e-12 {
            self.err("only LeakyReLU(0.01) (MONAI's default act_name) is implemented", at("act_name"), "model.backbone.act_name", Some("remove act_name to use the default".into()));
        }
        if let Some(d) = b.arg("dropout").as_f64() {
            if !(0.0..1.0).contains(&d) {
                self.err(format!("dropout must be in [0, 1), found {d}"), at("dropout"), "model.backbone.dropout", None);
            }
        }
    }

    /// The split pipelines, flattened from `Compose`, with keys checked against the columns.
    fn transforms(&mut self, columns: &[String], spatial_dims: i64) -> Option<IndexMap<String, Vec<Call>>> {
        let node = self.cfg("data.transforms")?;
        let map = node.as_map()?;
        let mut out = IndexMap::new();
        let mut ok = true;
        for (split, compose) in map {
            let path = format!("data.transforms.{split}");
            if !SPLITS.contains(&split.as_str()) {
                self.err(format!("unknown split `{split}` in data.transforms"), compose, &path, did_you_mean(split, SPLITS.iter().copied()).or_else(|| Some("splits: train, valid, test, predict".into())));
                ok = false;
                continue;
            }
            let list: Vec<(String, &Node)> = match &compose.value {
                Value::Map(m) if m.contains_key("_target_") => {
                    if self.component(compose, &path, Kind::Transform).map(|c| c.native) != Some("Compose") {
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
            let mut calls = Vec::new();
            for (tpath, tnode) in list {
                let Some(mut call) = self.component(tnode, &tpath, Kind::Transform) else {
                    ok = false;
                    continue;
                };
                if call.native == "Compose" {
                    self.err("nested Compose is not supported; list the transforms directly", tnode, &tpath, None);
                    ok = false;
                    continue;
                }
                if !self.transform_details(&mut call, tnode, &tpath, columns, spatial_dims) {
                    ok = false;
                }
                calls.push(call);
            }
            let key = if split == "valid" { "val".to_string() } else { split.clone() };
            out.insert(key, calls);
        }
        if !out.contains_key("train") {
            self.err("data.transforms has no `train` pipeline", node, "data.transforms", None);
            ok = false;
        }
        ok.then_some(out)
    }

    fn transform_details(&mut self, call: &mut Call, node: &Node, path: &str, columns: &[String], spatial_dims: i64) -> bool {
        let mut ok = true;
        let keys = call.arg("keys").strings();
        if !columns.is_empty() {
            for k in &keys {
                if !columns.contains(k) {
                    let at = node.child("keys").unwrap_or(node);
                    self.err(
                        format!("`{}` uses key `{k}`, which is not one of data.columns [{}]", call.target, columns.join(", ")),
                        at,
                        &format!("{path}.keys"),
                        did_you_mean(k, columns.iter().map(String::as_str)).or_else(|| Some(format!("add `{k}` to data.columns, or fix the key"))),
                    );
                    ok = false;
                }
            }
        }
        match call.native {
            "LoadImaged" => {
                let reader = node.child("reader");
                let reader_node = match reader.map(|r| &r.value) {
                    Some(Value::List(items)) if items.len() == 1 => Some(&items[0]),
                    Some(Value::List(items)) if items.len() > 1 => {
                        self.err("only one reader is supported", reader.unwrap_or(node), &format!("{path}.reader"), None);
                        ok = false;
                        None
                    }
                    Some(Value::Map(_)) => reader,
                    Some(Value::Null) | None => None,
                    Some(_) => {
                        let at = reader.unwrap_or(node);
                        self.err(format!("`reader` must be a cyto_dl.image.io.MonaiBioReader (or a list holding one), found {}", show(at)), at, &format!("{path}.reader"), None);
                        ok = false;
                        None
                    }
                };
                if let Some(r) = reader_node {
                    match self.component(r, &format!("{path}.reader"), Kind::Reader) {
                        Some(sel) => {
                            call.children.insert("reader".into(), sel);
                        }
                        None => ok = false,
                    }
                }
            }
            "Zoomd" => {
                let modes = call.arg("mode").strings();
                let all = call.arg("mode").as_list();
                if modes.len() != all.len() || modes.iter().any(|m| !schema::INTERP_MODES.contains(&m.as_str())) || (modes.len() > 1 && modes.len() != keys.len()) {
                    let bad = modes.iter().find(|m| !schema::INTERP_MODES.contains(&m.as_str())).cloned().unwrap_or_default();
                    self.err(
                        format!("`mode` of `{}` must be one of {} (or one per key: {} keys)", call.target, schema::INTERP_MODES.join(", "), keys.len()),
                        node.child("mode").unwrap_or(node),
                        &format!("{path}.mode"),
                        did_you_mean(&bad, schema::INTERP_MODES.iter().copied()),
                    );
                    ok = false;
                }
            }
            "RandomMultiScaleCropd" => {
                let shape = call.arg("patch_shape").ints();
                if shape.len() as i64 != spatial_dims {
                    let at = node.child("patch_shape").unwrap_or(node);
                    self.err(
                        format!("patch_shape {shape:?} has {} values but the backbone's spatial_dims is {spatial_dims}", shape.len()),
                        at,
                        &format!("{path}.patch_shape"),
                        Some(format!("give {spatial_dims} values (for 2D: `spatial_dims=2 data._aux.patch_shape=[64,64]`)")),
                    );
                    ok = false;
                }
                if shape.iter().any(|s| *s < 1) {
                    self.err("patch_shape values must be at least 1", node.child("patch_shape").unwrap_or(node), &format!("{path}.patch_shape"), None);
                    ok = false;
                }
                if let Lit::Map(scales) = call.arg("scales_dict") {
                    for k in scales.keys() {
                        if !keys.contains(k) {
                            self.err(format!("scales_dict names `{k}`, which is not one of this transform's keys [{}]", keys.join(", ")), node.child("scales_dict").unwrap_or(node), &format!("{path}.scales_dict"), did_you_mean(k, keys.iter().map(String::as_str)));
                            ok = false;
                        }
                    }
                }
                if call.arg("patch_per_image").as_i64().is_some_and(|n| n < 1) {
                    self.err("patch_per_image must be at least 1", node.child("patch_per_image").unwrap_or(node), &format!("{path}.patch_per_image"), None);
                    ok = false;
                }
                if !call.arg("selection_fn").is_null() {
                    self.err("selection_fn is not supported", node.child("selection_fn").unwrap_or(node), &format!("{path}.selection_fn"), None);
                    ok = false;
                }
            }
            _ => {}
        }
        if let Some(p) = call.args.get("prob").and_then(Lit::as_f64) {
            if !(0.0..=1.0).contains(&p) {
                self.err(format!("prob must be in [0, 1], found {p}"), node.child("prob").unwrap_or(node), &format!("{path}.prob"), None);
                ok = false;
            }
        }
        ok
    }

    fn heads(&mut self, columns: &[String], out_channels: i64) -> Option<Vec<Head>> {
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
        let mut heads = Vec::new();
        let mut ok = true;
        for (name, hnode) in map {
            let path = format!("model.task_heads.{name}");
            if !columns.is_empty() && !columns.contains(name) {
                self.err(
                    format!("head `{name}` has no target column: it is not one of data.columns [{}]", columns.join(", ")),
                    hnode,
                    &path,
                    did_you_mean(name, columns.iter().map(String::as_str)).or_else(|| Some(format!("name the head after its target column, or add `{name}` to data.columns"))),
                );
                ok = false;
            }
            let Some(mut head) = self.component(hnode, &path, Kind::Head) else {
                ok = false;
                continue;
            };
            let Some(loss) = head.children.shift_remove("loss") else {
                ok = false;
                continue;
            };
            self.check_loss(&loss, hnode, &format!("{path}.loss"), if head.native == "ResBlocksHeadConfig" { head.arg("out_channels").as_i64().unwrap_or(1) } else { out_channels });
            if head.native == "ResBlocksHeadConfig" {
                if let Some(inc) = head.arg("in_channels").as_i64() {
                    if inc != out_channels {
                        self.err(
                            format!("head `{name}` takes in_channels = {inc}, but the backbone gives out_channels = {out_channels}"),
                            hnode.child("in_channels").unwrap_or(hnode),
                            &format!("{path}.in_channels"),
                            Some(format!("set in_channels: {out_channels} (or the backbone's out_channels to {inc})")),
                        );
                        ok = false;
                    }
                }
            }
            let mut post = (None, None);
            if let Some(p) = hnode.child("postprocess").filter(|p| !matches!(p.value, Value::Null)) {
                for (i, which) in ["input", "prediction"].into_iter().enumerate() {
                    let ppath = format!("{path}.postprocess.{which}");
                    if let Some(fnode) = p.child(which).filter(|n| !matches!(n.value, Value::Null)) {
                        match self.component(fnode, &ppath, Kind::Postprocess) {
                            Some(c) if i == 0 => post.0 = Some(c),
                            Some(c) => post.1 = Some(c),
                            None => ok = false,
                        }
                    }
                }
                if let Some(m) = p.as_map() {
                    for k in m.keys().filter(|k| *k != "input" && *k != "prediction") {
                        self.err(format!("unknown postprocess entry `{k}`"), &m[k], &format!("{path}.postprocess.{k}"), did_you_mean(k, ["input", "prediction"]));
                        ok = false;
                    }
                }
            }
            // The seed document's model-level shape: postprocessing.{input.<column>, prediction.<head>}.
            if let Some(l) = legacy {
                for (i, (which, key)) in [("input", self.cfg("model.x_key").and_then(|n| n.as_str()).unwrap_or_default().to_string()), ("prediction", name.clone())].into_iter().enumerate() {
                    let lpath = format!("model.postprocessing.{which}.{key}");
                    if let Some(fnode) = l.child(which).and_then(|w| w.child(&key)) {
                        if let Some(c) = self.component(fnode, &lpath, Kind::Postprocess) {
                            if i == 0 && post.0.is_none() {
                                post.0 = Some(c);
                            } else if i == 1 && post.1.is_none() {
                                post.1 = Some(c);
                            }
                        } else {
                            ok = false;
                        }
                    }
                }
            }
            head.args.shift_remove("postprocess");
            head.args.shift_remove("loss");
            heads.push(Head { name: name.clone(), head, loss, postprocess: post });
        }
        ok.then_some(heads)
    }

    /// Loss / activation / channel compatibility.
    fn check_loss(&mut self, loss: &Call, head: &Node, path: &str, channels: i64) {
        let at = head.child("loss").unwrap_or(head);
        let flag = |k: &str| loss.arg(k).as_bool().unwrap_or(false);
        if matches!(loss.native, "Loss::DiceCe" | "Loss::Dice") {
            if flag("sigmoid") && flag("softmax") {
                self.err(format!("`{}` has both sigmoid and softmax set", loss.target), at, path, Some("choose one: sigmoid for independent channels, softmax for classes".into()));
            }
            if flag("softmax") && channels < 2 {
                self.err(format!("softmax over {channels} output channel is constant, so `{}` cannot learn", loss.target), at, path, Some("use `sigmoid: True` for a binary target, or give the network one channel per class".into()));
            }
            if !flag("sigmoid") && !flag("softmax") {
                self.warn(format!("`{}` without sigmoid or softmax treats the raw network output as probabilities", loss.target), at, path);
            }
        }
    }

    /// `{generator: <component>}` (or the component itself). An absent entry that is required
    /// is reported by the model's own parameter check; an empty one here, when `required`.
    fn generator(&mut self, path: &str, kind: Kind, required: bool) -> Option<Call> {
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
            return self.component(node, path, kind);
        }
        if let Some(other) = map.keys().find(|k| *k != "generator") {
            self.err(format!("`{path}.{other}`: only a `generator` entry is supported (GAN discriminators are not implemented yet)"), &map[other], &format!("{path}.{other}"), did_you_mean(other, ["generator"]));
            return None;
        }
        let g = map.get("generator")?;
        self.component(g, &format!("{path}.generator"), kind)
    }

    fn optimizer(&mut self) -> (Option<Call>, f64) {
        let opt = self.generator("model.optimizer", Kind::Optimizer, true);
        let mut lr = 1e-3;
        if let Some(o) = &opt {
            let base = if self.cfg("model.optimizer.generator").is_some() { "model.optimizer.generator" } else { "model.optimizer" };
            lr = o.arg("lr").as_f64().unwrap_or(1e-3);
            let node = self.cfg(base).cloned();
            let at = |k: &str| node.as_ref().and_then(|n| n.child(k).cloned()).or_else(|| node.clone());
            if !(lr.is_finite() && lr >= 0.0) {
                if let Some(n) = at("lr") {
                    self.err(format!("learning rate must be a non-negative number, found {lr}"), &n, &format!("{base}.lr"), Some("typical values: 1e-4 .. 1e-2".into()));
                }
            }
            if o.arg("weight_decay").as_f64().is_some_and(|w| w < 0.0) {
                if let Some(n) = at("weight_decay") {
                    self.err("weight_decay must be >= 0", &n, &format!("{base}.weight_decay"), None);
                }
            }
            let betas = o.arg("betas").floats();
            if betas.iter().any(|b| !(0.0..1.0).contains(b)) || (!o.arg("betas").is_null() && o.native != "SgdConfig" && betas.len() != 2) {
                if let Some(n) = at("betas") {
                    self.err(format!("betas must be two values in [0, 1), found {betas:?}"), &n, &format!("{base}.betas"), None);
                }
            }
        }
        (opt, lr)
    }

    fn scheduler(&mut self) -> Option<Call> {
        let s = self.generator("model.lr_scheduler", Kind::Scheduler, false)?;
        let base = if self.cfg("model.lr_scheduler.generator").is_some() { "model.lr_scheduler.generator" } else { "model.lr_scheduler" };
        if s.arg("gamma").as_f64().is_some_and(|g| g <= 0.0) {
            if let Some(n) = self.cfg(&format!("{base}.gamma")) {
                self.err("gamma must be > 0", n, &format!("{base}.gamma"), None);
            }
        }
        if s.arg("step_size").as_i64().is_some_and(|g| g < 1) {
            if let Some(n) = self.cfg(&format!("{base}.step_size")) {
                self.err("step_size must be at least 1", n, &format!("{base}.step_size"), None);
            }
        }
        Some(s)
    }

    fn inference(&mut self, spatial_dims: i64) -> Option<IndexMap<String, Lit>> {
        let mut out: IndexMap<String, Lit> = IndexMap::new();
        let Some(node) = self.cfg("model.inference_args").filter(|n| !matches!(n.value, Value::Null)) else {
            return Some(out);
        };
        let Some(map) = node.as_map() else {
            self.err("model.inference_args must be a mapping", node, "model.inference_args", None);
            return None;
        };
        let mut ok = true;
        for (k, v) in map {
            let path = format!("model.inference_args.{k}");
            if !INFERENCE_KEYS.contains(&k.as_str()) {
                self.err(format!("unknown sliding-window argument `{k}`"), v, &path, did_you_mean(k, INFERENCE_KEYS.iter().copied()));
                ok = false;
                continue;
            }
            let good = match k.as_str() {
                "roi_size" => fits(Ty::Ints, v),
                "sw_batch_size" => fits(Ty::Int, v),
                "overlap" | "sigma_scale" => fits(Ty::Floats, v),
                "mode" => matches!(v.as_str(), Some("constant" | "gaussian")),
                "padding_mode" => matches!(v.as_str(), Some("constant" | "reflect" | "replicate" | "circular")),
                "cval" => fits(Ty::Float, v),
                _ => true,
            };
            if !good {
                let want = match k.as_str() {
                    "roi_size" => "a list of ints",
                    "sw_batch_size" => "an integer",
                    "mode" => "`constant` or `gaussian`",
                    "padding_mode" => "`constant`, `reflect`, `replicate` or `circular`",
                    _ => "a number or a list of numbers",
                };
                let hint = v.as_str().and_then(|s| did_you_mean(s, ["constant", "gaussian", "reflect", "replicate", "circular"]));
                self.err(format!("inference_args.{k} must be {want}, found {}", show(v)), v, &path, hint);
                ok = false;
                continue;
            }
            out.insert(k.clone(), lit(v));
        }
        if let Some(roi) = out.get("roi_size") {
            let r = roi.ints();
            let n = map.get("roi_size").unwrap_or(node);
            if r.len() as i64 != spatial_dims {
                self.err(format!("roi_size {r:?} has {} values but spatial_dims is {spatial_dims}", r.len()), n, "model.inference_args.roi_size", Some(format!("give {spatial_dims} values")));
                ok = false;
            }
        }
        if let Some(o) = out.get("overlap") {
            if o.floats().iter().any(|x| !(0.0..1.0).contains(x)) {
                self.err("overlap must be in [0, 1)", map.get("overlap").unwrap_or(node), "model.inference_args.overlap", None);
                ok = false;
            }
        }
        if out.get("sw_batch_size").and_then(Lit::as_i64).is_some_and(|b| b < 1) {
            self.err("sw_batch_size must be at least 1", map.get("sw_batch_size").unwrap_or(node), "model.inference_args.sw_batch_size", None);
            ok = false;
        }
        ok.then_some(out)
    }

    fn trainer(&mut self) -> Option<Call> {
        let Some(node) = self.cfg("trainer") else {
            return Some(Call { native: "TrainerConfig", target: "lightning.Trainer".into(), args: IndexMap::new(), children: IndexMap::new() });
        };
        let mut call = self.component(node, "trainer", Kind::Trainer)?;
        for k in ["max_epochs", "min_epochs", "check_val_every_n_epoch", "accumulate_grad_batches"] {
            let v = call.arg(k).as_i64();
            let min = if k == "max_epochs" || k == "min_epochs" { 0 } else { 1 };
            if v.is_some_and(|v| v < min) {
                if let Some(n) = node.child(k) {
                    self.err(format!("trainer.{k} must be at least {min}"), n, &format!("trainer.{k}"), None);
                }
                return None;
            }
        }
        for k in ["limit_train_batches", "limit_val_batches"] {
            match call.arg(k) {
                Lit::Float(f) if *f == 1.0 => {
                    call.args.insert(k.into(), Lit::Null);
                }
                Lit::Float(f) => {
                    if let Some(n) = node.child(k) {
                        self.err(format!("trainer.{k} = {f}: fractions of an epoch are not supported; give a number of batches"), n, &format!("trainer.{k}"), None);
                    }
                    return None;
                }
                Lit::Int(i) if *i < 1 => {
                    if let Some(n) = node.child(k) {
                        self.err(format!("trainer.{k} must be at least 1"), n, &format!("trainer.{k}"), None);
                    }
                    return None;
                }
                _ => {}
            }
        }
        let precision = match call.arg("precision") {
            Lit::Int(i) => i.to_string(),
            Lit::Str(s) => s.clone(),
            _ => "32".into(),
        };
        const PRECISIONS: &[&str] = &["32", "32-true", "16", "16-mixed", "bf16", "bf16-mixed", "16-true", "bf16-true", "64"];
        if !PRECISIONS.contains(&precision.as_str()) {
            if let Some(n) = node.child("precision") {
                self.err(format!("unknown precision `{precision}`"), n, "trainer.precision", did_you_mean(&precision, PRECISIONS.iter().copied()));
            }
            return None;
        }
        call.args.insert("precision".into(), Lit::Str(precision));
        Some(call)
    }

    /// (ModelCheckpoint, EarlyStopping, ImageSaver); other callbacks are accepted.
    fn callbacks(&mut self, heads: &[String]) -> (Option<Call>, Option<Call>, Option<Call>) {
        let mut out = (None, None, None);
        let Some(node) = self.cfg("callbacks").filter(|n| !matches!(n.value, Value::Null)) else { return out };
        let Some(map) = node.as_map() else {
            self.err(format!("`callbacks` must map names to callbacks, found {}", show(node)), node, "callbacks", None);
            return out;
        };
        let mut metrics = vec!["train/loss".to_string(), "val/loss".to_string()];
        for h in heads {
            metrics.push(format!("train/loss/{h}"));
            metrics.push(format!("val/loss/{h}"));
        }
        for (name, node) in map {
            if matches!(node.value, Value::Null) {
                continue;
            }
            let path = format!("callbacks.{name}");
            let Some(call) = self.component(node, &path, Kind::Callback) else { continue };
            for k in ["monitor"] {
                if let Some(m) = call.arg(k).as_str() {
                    if !metrics.iter().any(|x| x == m) {
                        self.err(format!("`{m}` is not a metric this experiment logs ({})", metrics.join(", ")), node.child(k).unwrap_or(node), &format!("{path}.{k}"), did_you_mean(m, metrics.iter().map(String::as_str)));
                    }
                }
            }
            match call.native {
                "CheckpointSettings" => {
                    if call.arg("save_top_k").as_i64().is_some_and(|k| k < -1) {
                        self.err("save_top_k must be -1 (all), 0 or more", node.child("save_top_k").unwrap_or(node), &format!("{path}.save_top_k"), None);
                    }
                    out.0 = Some(call);
                }
                "EarlyStoppingSettings" => {
                    if call.arg("patience").as_i64().is_some_and(|p| p < 1) {
                        self.err(
                            format!("patience must be at least 1, found {}", call.arg("patience").as_i64().unwrap_or(0)),
                            node.child("patience").unwrap_or(node),
                            &format!("{path}.patience"),
                            Some("patience counts validation checks without improvement; remove the callback to never stop early".into()),
                        );
                    }
                    if call.arg("min_delta").as_f64().is_some_and(|d| d < 0.0) {
                        self.err("min_delta must be >= 0", node.child("min_delta").unwrap_or(node), &format!("{path}.min_delta"), None);
                    }
                    out.1 = Some(call);
                }
                "ImageSaverSettings" => {
                    const STAGES: &[&str] = &["train", "val", "test", "predict"];
                    for s in call.arg("stages").strings() {
                        if !STAGES.contains(&s.as_str()) {
                            self.err(format!("unknown stage `{s}`"), node.child("stages").unwrap_or(node), &format!("{path}.stages"), did_you_mean(&s, STAGES.iter().copied()));
                        }
                    }
                    out.2 = Some(call);
                }
                _ => {}
            }
        }
        out
    }

    fn loggers(&mut self) -> Option<Call> {
        let node = self.cfg("logger").filter(|n| !matches!(n.value, Value::Null))?;
        let Some(map) = node.as_map() else {
            self.err(format!("`logger` must map names to loggers, found {}", show(node)), node, "logger", None);
            return None;
        };
        let mut csv = None;
        for (name, node) in map {
            if matches!(node.value, Value::Null) {
                continue;
            }
            if let Some(call) = self.component(node, &format!("logger.{name}"), Kind::Logger) {
                csv = Some(call);
            }
        }
        csv
    }
}
