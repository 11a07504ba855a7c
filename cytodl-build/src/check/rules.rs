//! The domain rules: what a config must satisfy beyond each component's own parameters —
//! DynUNet's per-level lists, transform keys against the columns and patch ranks against the
//! network, losses against their heads, optimizer and scheduler ranges, sliding-window
//! arguments, the trainer's limits, monitored metrics. Each error is at the node that breaks
//! the rule. Rules run on typed configs; they never pick a component by name.

use cytodl_schema::{
    CallbackConfig, Compose, DynUNet, HeadConfig, IntOrInts, Kind, Lit, LossConfig, Number, OptimizerConfig, PerRole, SchedulerConfig, TransformConfig,
};
use indexmap::IndexMap;

use super::{lit, show, Checker, SPLITS};
use crate::config::node::{Node, Value};
use crate::diag::did_you_mean;

/// Lightning's precisions that the runtime trains with (`16-true` / `bf16-true` run as the mixed
/// variants; Lightning's `64` / `64-true` have no float64 kernels here).
const PRECISIONS: &[&str] = &["32", "32-true", "16", "16-mixed", "bf16", "bf16-mixed", "16-true", "bf16-true"];

/// The image-saver stages.
const STAGES: &[&str] = &["train", "val", "test", "predict"];

/// The list names of a DynUNet `norm_name` / `act_name` (`"INSTANCE"` or `["INSTANCE", {...}]`).
fn layer_name(l: &Lit) -> Option<String> {
    match l {
        Lit::Str(s) => Some(s.to_ascii_lowercase()),
        Lit::List(items) => items.first().and_then(Lit::as_str).map(str::to_ascii_lowercase),
        _ => None,
    }
}

/// The options of a DynUNet `norm_name` / `act_name` (`["INSTANCE", {"affine": true}]`).
fn layer_options(l: &Lit) -> IndexMap<String, Lit> {
    match l {
        Lit::List(items) => match items.get(1) {
            Some(Lit::Map(m)) => m.clone(),
            _ => Default::default(),
        },
        _ => Default::default(),
    }
}

impl Checker<'_> {
    /// MONAI's DynUNet checks, each at the list that breaks it.
    pub(super) fn check_dynunet(&mut self, b: &DynUNet, node: &Node) {
        let dims = b.spatial_dims;
        let at = |k: &str| node.child(k).unwrap_or(node);
        if !(2..=3).contains(&dims) {
            self.err(format!("spatial_dims must be 2 or 3, found {dims}"), at("spatial_dims"), "model.backbone.spatial_dims", None);
            return;
        }
        for (k, v) in [("in_channels", b.in_channels), ("out_channels", b.out_channels)] {
            if v < 1 {
                self.err(format!("{k} must be at least 1"), at(k), &format!("model.backbone.{k}"), None);
            }
        }
        let per_level = |levels: &[IntOrInts]| -> Vec<Vec<i64>> {
            levels
                .iter()
                .map(|l| match l {
                    IntOrInts::One(i) => vec![*i; dims as usize],
                    IntOrInts::Many(v) => v.clone(),
                })
                .collect()
        };
        let mut levels = None;
        for (k, list) in [("kernel_size", &b.kernel_size), ("strides", &b.strides), ("upsample_kernel_size", &b.upsample_kernel_size)] {
            let path = format!("model.backbone.{k}");
            let v = per_level(&list.0);
            if let Some(bad) = v.iter().find(|l| l.len() != dims as usize) {
                self.err(
                    format!("{k} has a level with {} values; spatial_dims is {dims}", bad.len()),
                    at(k),
                    &path,
                    Some(format!("give {dims} values per level, or one int")),
                );
            } else if v.iter().flatten().any(|x| *x < 1) {
                self.err(format!("{k} values must be at least 1"), at(k), &path, None);
            }
            match k {
                "kernel_size" => levels = Some(v.len()),
                "strides" => {
                    if let Some(n) = levels.filter(|n| *n != v.len()) {
                        self.err(
                            format!("strides has {} levels but kernel_size has {n}", v.len()),
                            at(k),
                            &path,
                            Some("give one kernel size and one stride per level".into()),
                        );
                    }
                    levels = Some(v.len());
                }
                _ => {
                    if let Some(n) = levels.filter(|n| *n != v.len() + 1) {
                        self.err(
                            format!("upsample_kernel_size has {} levels; it needs len(strides) - 1 = {}", v.len(), n.saturating_sub(1)),
                            at(k),
                            &path,
                            None,
                        );
                    }
                }
            }
        }
        if let (Some(n), Some(f)) = (levels, &b.filters) {
            if f.len() < n {
                self.err(
                    format!("filters has {} values for {n} levels", f.len()),
                    at("filters"),
                    "model.backbone.filters",
                    Some(format!("give {n} filter counts, one per level")),
                );
            }
        }
        // MONAI's defaults are the only normalisation and activation implemented.
        if let Some(norm) = node.child("norm_name").map(lit) {
            if layer_name(&norm).as_deref() != Some("instance") || layer_options(&norm).get("affine").is_some_and(|a| a.as_bool() == Some(false)) {
                self.err(
                    "only affine instance normalisation (MONAI's default `[\"INSTANCE\", {\"affine\": true}]`) is implemented",
                    at("norm_name"),
                    "model.backbone.norm_name",
                    Some("remove norm_name to use the default".into()),
                );
            }
        }
        if let Some(act) = node.child("act_name").map(lit) {
            let slope = layer_options(&act).get("negative_slope").and_then(Lit::as_f64).unwrap_or(0.01);
            if layer_name(&act).as_deref() != Some("leakyrelu") || (slope - 0.01).abs() > 1e-12 {
                self.err(
                    "only LeakyReLU(0.01) (MONAI's default act_name) is implemented",
                    at("act_name"),
                    "model.backbone.act_name",
                    Some("remove act_name to use the default".into()),
                );
            }
        }
        if let Some(d) = b.dropout {
            if !(0.0..1.0).contains(&d) {
                self.err(format!("dropout must be in [0, 1), found {d}"), at("dropout"), "model.backbone.dropout", None);
            }
        }
    }

    /// A transform's keys against the columns, and its own rules; whether it passes.
    pub(super) fn check_transform(&mut self, t: &TransformConfig, node: &Node, path: &str, columns: &[String], spatial_dims: i64) -> bool {
        let target = node.child("_target_").and_then(|n| n.as_str()).unwrap_or_default().to_string();
        let mut ok = true;
        let keys = transform_keys(t);
        if !columns.is_empty() {
            for k in &keys {
                if !columns.contains(k) {
                    let at = node.child("keys").unwrap_or(node);
                    self.err(
                        format!("`{target}` uses key `{k}`, which is not one of data.columns [{}]", columns.join(", ")),
                        at,
                        &format!("{path}.keys"),
                        did_you_mean(k, columns.iter().map(String::as_str)).or_else(|| Some(format!("add `{k}` to data.columns, or fix the key"))),
                    );
                    ok = false;
                }
            }
        }
        let at = |k: &str| node.child(k).unwrap_or(node);
        match t {
            TransformConfig::Zoomd(z) if z.mode.0.len() > 1 && z.mode.0.len() != keys.len() => {
                self.err(
                    format!("`mode` of `{target}` has {} values for {} keys: give one, or one per key", z.mode.0.len(), keys.len()),
                    at("mode"),
                    &format!("{path}.mode"),
                    None,
                );
                ok = false;
            }
            TransformConfig::RandomMultiScaleCropd(c) => {
                let shape = &c.patch_shape;
                if shape.len() as i64 != spatial_dims {
                    self.err(
                        format!("patch_shape {shape:?} has {} values but the backbone's spatial_dims is {spatial_dims}", shape.len()),
                        at("patch_shape"),
                        &format!("{path}.patch_shape"),
                        Some(format!("give {spatial_dims} values (for 2D: `spatial_dims=2 data._aux.patch_shape=[64,64]`)")),
                    );
                    ok = false;
                }
                if shape.iter().any(|s| *s < 1) {
                    self.err("patch_shape values must be at least 1", at("patch_shape"), &format!("{path}.patch_shape"), None);
                    ok = false;
                }
                for k in c.scales_dict.iter().flat_map(|m| m.0.keys()) {
                    if !c.keys.contains(k) {
                        self.err(
                            format!("scales_dict names `{k}`, which is not one of this transform's keys [{}]", keys.join(", ")),
                            at("scales_dict"),
                            &format!("{path}.scales_dict"),
                            did_you_mean(k, keys.iter().map(String::as_str)),
                        );
                        ok = false;
                    }
                }
                if c.patch_per_image < 1 {
                    self.err("patch_per_image must be at least 1", at("patch_per_image"), &format!("{path}.patch_per_image"), None);
                    ok = false;
                }
            }
            TransformConfig::RandSpatialCropSamplesd(c) => {
                for (k, v) in [("roi_size", Some(&c.roi_size)), ("max_roi_size", c.max_roi_size.as_ref())] {
                    if let Some(v) = v.filter(|v| v.len() as i64 != spatial_dims) {
                        self.err(
                            format!("{k} {v:?} has {} values but the backbone's spatial_dims is {spatial_dims}", v.len()),
                            at(k),
                            &format!("{path}.{k}"),
                            None,
                        );
                        ok = false;
                    }
                }
                if c.num_samples < 1 {
                    self.err("num_samples must be at least 1", at("num_samples"), &format!("{path}.num_samples"), None);
                    ok = false;
                }
            }
            TransformConfig::CenterSpatialCropd(c) if c.roi_size.len() as i64 != spatial_dims => {
                self.err(
                    format!("roi_size {:?} has {} values but the backbone's spatial_dims is {spatial_dims}", c.roi_size, c.roi_size.len()),
                    at("roi_size"),
                    &format!("{path}.roi_size"),
                    None,
                );
                ok = false;
            }
            TransformConfig::Merged(m) => {
                if m.image_keys.len() != 2 {
                    self.err(
                        format!("`{target}` merges two images: image_keys has {}", m.image_keys.len()),
                        at("image_keys"),
                        &format!("{path}.image_keys"),
                        None,
                    );
                    ok = false;
                }
                let named = m.image_keys.iter().map(|k| ("image_keys", k)).chain([("mask_key", &m.mask_key), ("base_image_key", &m.base_image_key)]);
                for (param, k) in named {
                    if !columns.is_empty() && !columns.contains(k) {
                        self.err(
                            format!("`{target}` {param} names `{k}`, which is not one of data.columns [{}]", columns.join(", ")),
                            at(param),
                            &format!("{path}.{param}"),
                            did_you_mean(k, columns.iter().map(String::as_str)),
                        );
                        ok = false;
                    }
                }
            }
            TransformConfig::InstanceSegPreprocessd(c) if c.dim != spatial_dims => {
                self.err(
                    format!("`{target}` has dim = {}, the backbone spatial_dims = {spatial_dims}", c.dim),
                    at("dim"),
                    &format!("{path}.dim"),
                    Some("set dim: ${spatial_dims}".into()),
                );
                ok = false;
            }
            TransformConfig::SpatialPadd(c) if c.spatial_size.len() as i64 != spatial_dims => {
                self.err(
                    format!("spatial_size {:?} has {} values but the backbone's spatial_dims is {spatial_dims}", c.spatial_size, c.spatial_size.len()),
                    at("spatial_size"),
                    &format!("{path}.spatial_size"),
                    None,
                );
                ok = false;
            }
            _ => {}
        }
        if let Some(p) = transform_prob(t) {
            if !(0.0..=1.0).contains(&p) {
                self.err(format!("prob must be in [0, 1], found {p}"), at("prob"), &format!("{path}.prob"), None);
                ok = false;
            }
        }
        ok
    }

    /// Loss / activation / channel compatibility, and losses a head cannot give their input.
    pub(super) fn check_loss(&mut self, loss: &LossConfig, head: &HeadConfig, head_node: &Node, path: &str, channels: i64, spatial_dims: i64) {
        let at = head_node.child(path.rsplit('.').next().unwrap_or("loss")).unwrap_or(head_node);
        let target = at.child("_target_").and_then(|n| n.as_str()).unwrap_or_default().to_string();
        let (sigmoid, softmax) = loss.activation_flags();
        let dice_family = matches!(loss, LossConfig::DiceCELoss(_) | LossConfig::DiceLoss(_) | LossConfig::MaskedDiceLoss(_) | LossConfig::TverskyLoss(_));
        if dice_family {
            if sigmoid && softmax {
                self.err(
                    format!("`{target}` has both sigmoid and softmax set"),
                    at,
                    path,
                    Some("choose one: sigmoid for independent channels, softmax for classes".into()),
                );
            }
            if softmax && channels < 2 {
                self.err(
                    format!("softmax over {channels} output channel is constant, so `{target}` cannot learn"),
                    at,
                    path,
                    Some("use `sigmoid: True` for a binary target, or give the network one channel per class".into()),
                );
            }
            if !sigmoid && !softmax {
                self.warn(format!("`{target}` without sigmoid or softmax treats the raw network output as probabilities"), at, path);
            }
        }
        if let (LossConfig::MaskedDiceLoss(_), HeadConfig::BaseHead(_) | HeadConfig::ResBlocksHead(_)) = (loss, head) {
            self.warn(format!("`{target}` gets no mask from this head (a cyto_dl MaskHead gives one): it computes plain Dice, as MONAI does"), at, path);
        }
        if matches!(head, HeadConfig::MaskHead(_)) && !matches!(loss, LossConfig::MaskedDiceLoss(_)) {
            self.err(
                format!("a MaskHead calls its loss with (prediction, target, mask), which `{target}` does not take (cyto_dl fails with a TypeError)"),
                at,
                path,
                Some("use monai.losses.MaskedDiceLoss, or a BaseHead for an unmasked loss".into()),
            );
        }
        if let LossConfig::FocalLoss(l) = loss {
            if l.use_softmax && channels < 2 {
                self.err(
                    format!("softmax over {channels} output channel is constant, so `{target}` cannot learn"),
                    at.child("use_softmax").unwrap_or(at),
                    &format!("{path}.use_softmax"),
                    Some("leave `use_softmax` false for a binary target (a sigmoid per channel), or give the network one channel per class".into()),
                );
            }
            if let Some(alpha) = l.alpha.filter(|a| !(0.0..=1.0).contains(a)) {
                self.err(format!("alpha must be in [0, 1], found {alpha}"), at.child("alpha").unwrap_or(at), &format!("{path}.alpha"), None);
            }
            let classes = if l.include_background || channels < 2 { channels } else { channels - 1 };
            if let Some(w) = &l.weight {
                let at_w = at.child("weight").unwrap_or(at);
                if w.iter().any(|v| *v < 0.0) {
                    self.err(format!("weight values must be >= 0, found {w:?}"), at_w, &format!("{path}.weight"), None);
                } else if w.len() != 1 && w.len() as i64 != classes && channels > 1 {
                    self.err(
                        format!("weight has {} values for {classes} classes", w.len()),
                        at_w,
                        &format!("{path}.weight"),
                        Some("give one value for all classes or one per class (without channel 0 when include_background is false)".into()),
                    );
                }
            }
        }
        if let LossConfig::InstanceSegLoss(l) = loss {
            if l.dim != spatial_dims {
                self.err(
                    format!("InstanceSegLoss has dim = {}, the backbone spatial_dims = {spatial_dims}", l.dim),
                    at.child("dim").unwrap_or(at),
                    &format!("{path}.dim"),
                    Some("set dim: ${spatial_dims}".into()),
                );
            } else if channels != l.dim + 3 {
                self.err(
                    format!(
                        "InstanceSegLoss needs {} prediction channels (skeleton, semantic, {} embedding, boundary), the head gives {channels}",
                        l.dim + 3,
                        l.dim
                    ),
                    at,
                    path,
                    Some(format!("set the backbone's out_channels to {} (cyto_dl: `${{eval:${{spatial_dims}}+3}}`)", l.dim + 3)),
                );
            }
            for k in l.weights.iter().flat_map(|w| w.0.keys()).filter(|k| !["skeleton", "semantic", "boundary", "vector"].contains(&k.as_str())) {
                self.err(
                    format!("unknown InstanceSegLoss weight `{k}`"),
                    at.child("weights").unwrap_or(at),
                    &format!("{path}.weights.{k}"),
                    crate::diag::did_you_mean(k, ["skeleton", "semantic", "boundary", "vector"]),
                );
            }
        }
        let weights = match loss {
            LossConfig::DiceCELoss(l) => vec![("lambda_dice", l.lambda_dice), ("lambda_ce", l.lambda_ce)],
            _ => vec![],
        };
        for (k, v) in weights {
            if v < 0.0 {
                self.err(format!("{k} must be >= 0, found {v}"), at.child(k).unwrap_or(at), &format!("{path}.{k}"), None);
            }
        }
    }

    /// Learning rate, weight decay and betas of every role's optimizer.
    pub(super) fn check_optimizer(&mut self, optimizers: &PerRole<OptimizerConfig>) {
        for (role, o) in &optimizers.0 .0 {
            let nested = format!("model.optimizer.{role}");
            let base = if self.cfg(&nested).is_some() { nested } else { "model.optimizer".to_string() };
            self.check_one_optimizer(o, &base);
        }
    }

    fn check_one_optimizer(&mut self, o: &OptimizerConfig, base: &str) {
        let node = self.cfg(base).cloned();
        let at = |k: &str| node.as_ref().and_then(|n| n.child(k).cloned()).or_else(|| node.clone());
        let lr = o.lr();
        if !(lr.is_finite() && lr >= 0.0) {
            if let Some(n) = at("lr") {
                self.err(
                    format!("learning rate must be a non-negative number, found {lr}"),
                    &n,
                    &format!("{base}.lr"),
                    Some("typical values: 1e-4 .. 1e-2".into()),
                );
            }
        }
        let (weight_decay, betas) = match o {
            OptimizerConfig::Adam(a) => (a.weight_decay, Some(&a.betas)),
            OptimizerConfig::AdamW(a) => (a.weight_decay, Some(&a.betas)),
            OptimizerConfig::SGD(s) => (s.weight_decay, None),
        };
        if weight_decay < 0.0 {
            if let Some(n) = at("weight_decay") {
                self.err("weight_decay must be >= 0", &n, &format!("{base}.weight_decay"), None);
            }
        }
        if let Some(betas) = betas {
            if betas.iter().any(|b| !(0.0..1.0).contains(b)) || betas.len() != 2 {
                if let Some(n) = at("betas") {
                    self.err(format!("betas must be two values in [0, 1), found {betas:?}"), &n, &format!("{base}.betas"), None);
                }
            }
        }
    }

    /// Every role's scheduler's ranges.
    pub(super) fn check_scheduler(&mut self, schedulers: &PerRole<SchedulerConfig>) {
        for (role, s) in &schedulers.0 .0 {
            let nested = format!("model.lr_scheduler.{role}");
            let base = if self.cfg(&nested).is_some() { nested } else { "model.lr_scheduler".to_string() };
            self.check_one_scheduler(s, &base);
        }
    }

    fn check_one_scheduler(&mut self, s: &SchedulerConfig, base: &str) {
        let at = |c: &Self, k: &str| c.cfg(&format!("{base}.{k}")).or_else(|| c.cfg(base));
        let gamma = match s {
            SchedulerConfig::ExponentialLR(e) => Some(e.gamma),
            SchedulerConfig::StepLR(e) => Some(e.gamma),
            SchedulerConfig::MultiStepLR(e) => Some(e.gamma),
            SchedulerConfig::CosineAnnealingLR(_) | SchedulerConfig::OneCycleLR(_) => None,
        };
        if gamma.is_some_and(|g| g <= 0.0) {
            if let Some(n) = at(self, "gamma") {
                self.err("gamma must be > 0", n, &format!("{base}.gamma"), None);
            }
        }
        match s {
            SchedulerConfig::StepLR(e) if e.step_size < 1 => {
                if let Some(n) = at(self, "step_size") {
                    self.err("step_size must be at least 1", n, &format!("{base}.step_size"), None);
                }
            }
            SchedulerConfig::CosineAnnealingLR(c) if c.t_max < 1 => {
                if let Some(n) = at(self, "T_max") {
                    self.err("T_max must be at least 1", n, &format!("{base}.T_max"), None);
                }
            }
            SchedulerConfig::OneCycleLR(c) => {
                let steps = c.total_steps.or_else(|| Some(c.epochs? * c.steps_per_epoch?));
                if steps.is_none_or(|s| s < 1) {
                    if let Some(n) = self.cfg(base) {
                        self.err(
                            "OneCycleLR needs total_steps, or epochs and steps_per_epoch (at least 1)",
                            n,
                            base,
                            Some("cyto_dl's configs give `epochs: ${trainer.max_epochs}` and `steps_per_epoch: 1`".into()),
                        );
                    }
                }
                if !(0.0..=1.0).contains(&c.pct_start) {
                    if let Some(n) = at(self, "pct_start") {
                        self.err(format!("pct_start must be in [0, 1], found {}", c.pct_start), n, &format!("{base}.pct_start"), None);
                    }
                }
            }
            _ => {}
        }
    }

    /// `model.inference_args`: known keys with values of the right shape; whether they pass.
    pub(super) fn check_inference(&mut self, node: &Node, spatial_dims: i64) -> bool {
        let spec = <cytodl_schema::SlidingWindowArgs as cytodl_schema::Component>::SPEC;
        let Some(map) = node.as_map() else {
            self.err("model.inference_args must be a mapping", node, "model.inference_args", None);
            return false;
        };
        let names: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
        let mut ok = true;
        for (k, v) in map {
            let path = format!("model.inference_args.{k}");
            let Some(param) = spec.param(k) else {
                self.err(format!("unknown sliding-window argument `{k}`"), v, &path, did_you_mean(k, names.iter().copied()));
                ok = false;
                continue;
            };
            if !super::fits(param.ty, v) {
                let hint = v.as_str().and_then(|s| did_you_mean(s, ["constant", "gaussian", "reflect", "replicate", "circular"]));
                let want = match param.ty {
                    cytodl_schema::Ty::Enum(options) => options.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", "),
                    ty => ty.describe(),
                };
                self.err(format!("inference_args.{k} must be {want}, found {}", show(v)), v, &path, hint);
                ok = false;
                continue;
            }
            if let cytodl_schema::Ty::Enum(options) = param.ty {
                let s = v.as_str().unwrap_or_default();
                if !options.contains(&s) {
                    let want = options.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>();
                    self.err(
                        format!("inference_args.{k} must be {}, found {}", want.join(" or "), show(v)),
                        v,
                        &path,
                        did_you_mean(s, options.iter().copied()),
                    );
                    ok = false;
                }
            }
        }
        if let Some(roi) = map.get("roi_size").map(lit) {
            let r = roi.ints();
            if r.len() as i64 != spatial_dims {
                self.err(
                    format!("roi_size {r:?} has {} values but spatial_dims is {spatial_dims}", r.len()),
                    &map["roi_size"],
                    "model.inference_args.roi_size",
                    Some(format!("give {spatial_dims} values")),
                );
                ok = false;
            }
        }
        if let Some(o) = map.get("overlap") {
            if lit(o).floats().iter().any(|x| !(0.0..1.0).contains(x)) {
                self.err("overlap must be in [0, 1)", o, "model.inference_args.overlap", None);
                ok = false;
            }
        }
        if let Some(b) = map.get("sw_batch_size") {
            if lit(b).as_i64().is_some_and(|b| b < 1) {
                self.err("sw_batch_size must be at least 1", b, "model.inference_args.sw_batch_size", None);
                ok = false;
            }
        }
        ok
    }

    /// The trainer's limits and precision; whether they pass.
    pub(super) fn check_trainer(&mut self, t: &cytodl_schema::Trainer, node: &Node) -> bool {
        for (k, v) in [
            ("max_epochs", t.max_epochs),
            ("min_epochs", t.min_epochs),
            ("check_val_every_n_epoch", t.check_val_every_n_epoch),
            ("accumulate_grad_batches", t.accumulate_grad_batches),
        ] {
            let min = if k == "max_epochs" || k == "min_epochs" { 0 } else { 1 };
            if v < min {
                if let Some(n) = node.child(k) {
                    self.err(format!("trainer.{k} must be at least {min}"), n, &format!("trainer.{k}"), None);
                }
                return false;
            }
        }
        for (k, v) in [("limit_train_batches", t.limit_train_batches), ("limit_val_batches", t.limit_val_batches)] {
            match v {
                Some(Number::Float(f)) if f != 1.0 => {
                    if let Some(n) = node.child(k) {
                        self.err(
                            format!("trainer.{k} = {f}: fractions of an epoch are not supported; give a number of batches"),
                            n,
                            &format!("trainer.{k}"),
                            None,
                        );
                    }
                    return false;
                }
                Some(Number::Int(i)) if i < 1 => {
                    if let Some(n) = node.child(k) {
                        self.err(format!("trainer.{k} must be at least 1"), n, &format!("trainer.{k}"), None);
                    }
                    return false;
                }
                _ => {}
            }
        }
        let precision = t.precision.0.as_str();
        if matches!(precision, "64" | "64-true" | "double") {
            if let Some(n) = node.child("precision") {
                self.err(
                    format!("precision `{precision}` (float64) is not supported: the GPU and CPU kernels are 32- and 16-bit"),
                    n,
                    "trainer.precision",
                    Some("use 32, 16-mixed or bf16-mixed".into()),
                );
            }
            return false;
        }
        if !PRECISIONS.contains(&precision) {
            if let Some(n) = node.child("precision") {
                self.err(format!("unknown precision `{precision}`"), n, "trainer.precision", did_you_mean(precision, PRECISIONS.iter().copied()));
            }
            return false;
        }
        true
    }

    /// A callback's monitored metric and its own ranges.
    pub(super) fn check_callback(&mut self, c: &CallbackConfig, node: &Node, path: &str, metrics: &[String]) {
        let at = |k: &str| node.child(k).unwrap_or(node);
        let monitor = match c {
            CallbackConfig::ModelCheckpoint(m) => m.monitor.as_deref(),
            CallbackConfig::EarlyStopping(e) => Some(e.monitor.as_str()),
            CallbackConfig::ImageSaver(_) | CallbackConfig::ModelSummary(_) | CallbackConfig::ProgressBar(_) => None,
        };
        if let Some(m) = monitor {
            if !metrics.iter().any(|x| x == m) {
                self.err(
                    format!("`{m}` is not a metric this experiment logs ({})", metrics.join(", ")),
                    at("monitor"),
                    &format!("{path}.monitor"),
                    did_you_mean(m, metrics.iter().map(String::as_str)),
                );
            }
        }
        match c {
            CallbackConfig::ModelCheckpoint(m) => {
                if m.save_top_k < -1 {
                    self.err("save_top_k must be -1 (all), 0 or more", at("save_top_k"), &format!("{path}.save_top_k"), None);
                }
                if m.every_n_epochs.is_some_and(|n| n < 1) {
                    self.err("every_n_epochs must be at least 1", at("every_n_epochs"), &format!("{path}.every_n_epochs"), None);
                }
            }
            CallbackConfig::EarlyStopping(e) => {
                if e.patience < 1 {
                    self.err(
                        format!("patience must be at least 1, found {}", e.patience),
                        at("patience"),
                        &format!("{path}.patience"),
                        Some("patience counts validation checks without improvement; remove the callback to never stop early".into()),
                    );
                }
                if e.min_delta < 0.0 {
                    self.err("min_delta must be >= 0", at("min_delta"), &format!("{path}.min_delta"), None);
                }
            }
            CallbackConfig::ImageSaver(s) => {
                for stage in &s.stages {
                    if !STAGES.contains(&stage.as_str()) {
                        self.err(format!("unknown stage `{stage}`"), at("stages"), &format!("{path}.stages"), did_you_mean(stage, STAGES.iter().copied()));
                    }
                }
                if s.save_every_n_epochs < 1 {
                    self.err("save_every_n_epochs must be at least 1", at("save_every_n_epochs"), &format!("{path}.save_every_n_epochs"), None);
                }
            }
            CallbackConfig::ModelSummary(_) | CallbackConfig::ProgressBar(_) => {}
        }
    }

    /// `data.batch_size`, `data.num_workers`, `data.subsample` ranges and split names.
    pub(super) fn check_data_ranges(&mut self) {
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
    }

    /// Whether the node of a postprocessing entry is a valid component.
    pub(super) fn check_postprocess_entry(&mut self, node: &Node, path: &str) -> bool {
        self.component(node, path, Kind::Postprocess).is_some()
    }
}

/// The columns a transform applies to.
pub(super) fn transform_keys(t: &TransformConfig) -> Vec<String> {
    let keys = match t {
        TransformConfig::LoadImaged(x) => &x.keys,
        TransformConfig::EnsureChannelFirstd(x) => &x.keys,
        TransformConfig::ToTensord(x) => &x.keys,
        TransformConfig::NormalizeIntensityd(x) => &x.keys,
        TransformConfig::ThresholdIntensityd(x) => &x.keys,
        TransformConfig::InstanceSegPreprocessd(x) => &x.keys,
        TransformConfig::SelectItemsd(x) => &x.keys,
        TransformConfig::RemoveNaNKeysd(_) => return Vec::new(),
        // Its keys are checked by its own rule (two images, a mask and a name column).
        TransformConfig::Merged(_) => return Vec::new(),
        TransformConfig::ScaleIntensityRanged(x) => &x.keys,
        TransformConfig::ScaleIntensityRangePercentilesd(x) => &x.keys,
        TransformConfig::Clipd(x) => &x.keys,
        TransformConfig::Zoomd(x) => &x.keys,
        TransformConfig::RandomMultiScaleCropd(x) => &x.keys,
        TransformConfig::RandSpatialCropSamplesd(x) => &x.keys,
        TransformConfig::CenterSpatialCropd(x) => &x.keys,
        TransformConfig::SpatialPadd(x) => &x.keys,
        TransformConfig::RandFlipd(x) => &x.keys,
        TransformConfig::RandRotate90d(x) => &x.keys,
        TransformConfig::RandHistogramShiftd(x) => &x.keys,
        TransformConfig::RandStdShiftIntensityd(x) => &x.keys,
        TransformConfig::RandAdjustContrastd(x) => &x.keys,
        TransformConfig::RandGaussianNoised(x) => &x.keys,
    };
    keys.0.clone()
}

/// What the checks need to know of a transform, from one match over every transform (no
/// fallback arm): a new transform must say here whether it is a random crop or draws with a
/// probability.
enum TransformRole {
    /// A random crop and its patch (the training patch, the default inference window).
    RandomCrop(Vec<i64>),
    /// A random transform applied with this probability.
    Random(f64),
    Other,
}

fn transform_role(t: &TransformConfig) -> TransformRole {
    use TransformRole::{Other, Random, RandomCrop};
    match t {
        TransformConfig::RandomMultiScaleCropd(c) => RandomCrop(c.patch_shape.clone()),
        TransformConfig::RandSpatialCropSamplesd(c) => RandomCrop(c.roi_size.clone()),
        TransformConfig::RandFlipd(x) => Random(x.prob),
        TransformConfig::RandRotate90d(x) => Random(x.prob),
        TransformConfig::RandHistogramShiftd(x) => Random(x.prob),
        TransformConfig::RandStdShiftIntensityd(x) => Random(x.prob),
        TransformConfig::RandAdjustContrastd(x) => Random(x.prob),
        TransformConfig::RandGaussianNoised(x) => Random(x.prob),
        TransformConfig::LoadImaged(_)
        | TransformConfig::InstanceSegPreprocessd(_)
        | TransformConfig::RemoveNaNKeysd(_)
        | TransformConfig::SelectItemsd(_)
        | TransformConfig::Merged(_)
        | TransformConfig::EnsureChannelFirstd(_)
        | TransformConfig::ToTensord(_)
        | TransformConfig::NormalizeIntensityd(_)
        | TransformConfig::ThresholdIntensityd(_)
        | TransformConfig::ScaleIntensityRanged(_)
        | TransformConfig::ScaleIntensityRangePercentilesd(_)
        | TransformConfig::Clipd(_)
        | TransformConfig::Zoomd(_)
        | TransformConfig::CenterSpatialCropd(_)
        | TransformConfig::SpatialPadd(_) => Other,
    }
}

/// A random transform's probability.
fn transform_prob(t: &TransformConfig) -> Option<f64> {
    match transform_role(t) {
        TransformRole::Random(p) => Some(p),
        TransformRole::RandomCrop(_) | TransformRole::Other => None,
    }
}

/// The training patch of a train pipeline (the first random crop's), the default window of
/// sliding-window inference.
pub(super) fn train_patch(train: &Compose) -> Option<Vec<i64>> {
    train.transforms.0.iter().find_map(|t| match transform_role(t) {
        TransformRole::RandomCrop(patch) => Some(patch),
        TransformRole::Random(_) | TransformRole::Other => None,
    })
}
