//! Losses with PyTorch / MONAI semantics.
//!
//! Every loss takes `(pred, target)` as 5-D `[N, C, Z, Y, X]` tensors (2-D runs have `Z = 1`) and
//! returns a rank-1 tensor: `[1]` for `mean`/`sum` reductions, the flattened unreduced values for
//! `none` (MONAI's `[N, C, 1, 1, 1]` Dice output becomes `[N * C]`, or `[C]` with `batch`).
//!
//! The formulas follow torch 2.5 (`MSELoss`, `L1Loss`, `BCEWithLogitsLoss`, `CrossEntropyLoss`)
//! and MONAI 1.5 (`DiceLoss`, `DiceCELoss`, `MaskedDiceLoss`, `TverskyLoss`, `FocalLoss`), including MONAI's
//! quirks, which are what a cyto_dl checkpoint was trained with:
//! - single-channel predictions silently ignore `softmax`, `to_onehot_y` and
//!   `include_background = false` (MONAI only warns);
//! - `DiceCELoss` picks BCE-with-logits when the prediction has one channel and cross-entropy
//!   otherwise, whatever the activation flags say (those only feed the Dice term);
//! - `MaskedDiceLoss` multiplies the *raw* prediction by the mask before the activation, so a
//!   masked-out voxel enters the Dice term as `sigmoid(0) = 0.5` (the target there is 0).
//!
//! Not supported (unused by cyto_dl configs): class weights, label smoothing, `ignore_index`,
//! MONAI `soft_label`, arbitrary `other_act` callables.

use burn::tensor::{activation, backend::Backend, Tensor};

/// A loss parameter or input that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LossError {
    /// A configuration value is out of range; `param` names it as in the PyTorch/MONAI API.
    #[error("invalid loss parameter `{param}`: {reason}")]
    InvalidParameter { param: &'static str, reason: String },
    /// Prediction, target or mask shapes do not fit together.
    #[error("{loss}: {detail}")]
    Shape { loss: &'static str, detail: String },
}

fn invalid(param: &'static str, reason: impl Into<String>) -> LossError {
    LossError::InvalidParameter { param, reason: reason.into() }
}

fn shape_err(loss: &'static str, detail: impl Into<String>) -> LossError {
    LossError::Shape { loss, detail: detail.into() }
}

fn check_finite(param: &'static str, v: f64) -> Result<(), LossError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(invalid(param, format!("must be finite, got {v}")))
    }
}

/// torch / MONAI `reduction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    #[default]
    Mean,
    Sum,
    /// No reduction: the per-element (or per-`[N, C]` for Dice/Tversky) values, flattened.
    None,
}

impl Reduction {
    /// Parses the config spelling (`"mean"`, `"sum"`, `"none"`).
    pub fn parse(s: &str) -> Result<Self, LossError> {
        match s {
            "mean" => Ok(Self::Mean),
            "sum" => Ok(Self::Sum),
            "none" => Ok(Self::None),
            other => Err(invalid("reduction", format!("expected mean, sum or none, got {other:?}"))),
        }
    }

    fn apply<B: Backend, const D: usize>(self, t: Tensor<B, D>) -> Tensor<B, 1> {
        match self {
            Self::Mean => crate::reduce::mean_all(t),
            Self::Sum => crate::reduce::sum_all(t),
            Self::None => t.flatten(0, D - 1),
        }
    }
}

/// The activation MONAI applies to the prediction before Dice/Tversky (`sigmoid`, `softmax`,
/// neither). `other_act` callables are not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    #[default]
    None,
    Sigmoid,
    Softmax,
}

impl Activation {
    /// From MONAI's two flags; both set is MONAI's "Incompatible values" error.
    pub fn from_flags(sigmoid: bool, softmax: bool) -> Result<Self, LossError> {
        match (sigmoid, softmax) {
            (true, true) => Err(invalid("sigmoid", "sigmoid and softmax are mutually exclusive")),
            (true, false) => Ok(Self::Sigmoid),
            (false, true) => Ok(Self::Softmax),
            (false, false) => Ok(Self::None),
        }
    }
}

/// `torch.nn.BCEWithLogitsLoss`. `pos_weight` is per channel (length 1 or C), i.e. torch's
/// `pos_weight` of shape `[C, 1, 1, 1]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BceWithLogitsConfig {
    pub reduction: Reduction,
    pub pos_weight: Option<Vec<f32>>,
}

/// `monai.losses.DiceLoss` (also the parameters of `MaskedDiceLoss`).
#[derive(Debug, Clone, PartialEq)]
pub struct DiceLossConfig {
    pub include_background: bool,
    pub to_onehot_y: bool,
    pub activation: Activation,
    pub squared_pred: bool,
    pub jaccard: bool,
    pub reduction: Reduction,
    pub smooth_nr: f64,
    pub smooth_dr: f64,
    pub batch: bool,
}

impl Default for DiceLossConfig {
    /// MONAI's defaults, as `cytodl-schema` declares them.
    fn default() -> Self {
        Self::try_from(&cytodl_schema::component::declared_defaults::<cytodl_schema::DiceLoss>()).expect("the declared defaults are valid")
    }
}

impl DiceLossConfig {
    pub fn validate(&self) -> Result<(), LossError> {
        check_finite("smooth_nr", self.smooth_nr)?;
        check_finite("smooth_dr", self.smooth_dr)
    }
}

/// `monai.losses.DiceCELoss`: `lambda_dice * Dice + lambda_ce * (BCE or CE)`. `dice.reduction` is
/// used for both terms and must be `mean` or `sum` (MONAI's `DiceCEReduction`).
#[derive(Debug, Clone, PartialEq)]
pub struct DiceCeLossConfig {
    pub dice: DiceLossConfig,
    pub lambda_dice: f64,
    pub lambda_ce: f64,
}

impl Default for DiceCeLossConfig {
    /// MONAI's defaults, as `cytodl-schema` declares them.
    fn default() -> Self {
        Self::try_from(&cytodl_schema::component::declared_defaults::<cytodl_schema::DiceCELoss>()).expect("the declared defaults are valid")
    }
}

impl DiceCeLossConfig {
    pub fn validate(&self) -> Result<(), LossError> {
        self.dice.validate()?;
        if self.dice.reduction == Reduction::None {
            return Err(invalid("reduction", "DiceCELoss supports only mean or sum"));
        }
        for (name, v) in [("lambda_dice", self.lambda_dice), ("lambda_ce", self.lambda_ce)] {
            check_finite(name, v)?;
            if v < 0.0 {
                return Err(invalid(name, format!("should be no less than 0.0, got {v}")));
            }
        }
        Ok(())
    }
}

/// `monai.losses.TverskyLoss`.
#[derive(Debug, Clone, PartialEq)]
pub struct TverskyLossConfig {
    pub include_background: bool,
    pub to_onehot_y: bool,
    pub activation: Activation,
    /// Weight of false positives.
    pub alpha: f64,
    /// Weight of false negatives.
    pub beta: f64,
    pub reduction: Reduction,
    pub smooth_nr: f64,
    pub smooth_dr: f64,
    pub batch: bool,
}

impl Default for TverskyLossConfig {
    /// MONAI's defaults, as `cytodl-schema` declares them.
    fn default() -> Self {
        Self::try_from(&cytodl_schema::component::declared_defaults::<cytodl_schema::TverskyLoss>()).expect("the declared defaults are valid")
    }
}

impl TverskyLossConfig {
    pub fn validate(&self) -> Result<(), LossError> {
        check_finite("alpha", self.alpha)?;
        check_finite("beta", self.beta)?;
        check_finite("smooth_nr", self.smooth_nr)?;
        check_finite("smooth_dr", self.smooth_dr)
    }
}

/// A configured loss. Build one from a config and call [`Loss::forward`] (or
/// [`Loss::forward_masked`] for `MaskedDice`).
#[derive(Debug, Clone, PartialEq)]
pub enum Loss {
    /// `torch.nn.MSELoss`.
    Mse { reduction: Reduction },
    /// `torch.nn.L1Loss`.
    L1 { reduction: Reduction },
    /// `torch.nn.BCEWithLogitsLoss` (float targets).
    BceWithLogits(BceWithLogitsConfig),
    /// `monai.losses.DiceLoss`.
    Dice(DiceLossConfig),
    /// `monai.losses.DiceCELoss`.
    DiceCe(DiceCeLossConfig),
    /// `monai.losses.MaskedDiceLoss`.
    MaskedDice(DiceLossConfig),
    /// `monai.losses.TverskyLoss`.
    Tversky(TverskyLossConfig),
    /// `monai.losses.FocalLoss`, configured by its declaration as it stands.
    Focal(cytodl_schema::FocalLoss),
    /// cyto_dl's `InstanceSegLoss`.
    InstanceSeg(InstanceSegLossConfig),
}

/// cyto_dl's `InstanceSegLoss`: the spatial dimensions and each term's weight.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSegLossConfig {
    pub dim: usize,
    pub skeleton: f64,
    pub semantic: f64,
    pub boundary: f64,
    pub vector: f64,
}

impl Default for InstanceSegLossConfig {
    fn default() -> Self {
        InstanceSegLossConfig { dim: 3, skeleton: 1.0, semantic: 40.0, boundary: 1.0, vector: 10.0 }
    }
}

impl TryFrom<&cytodl_schema::InstanceSegLoss> for InstanceSegLossConfig {
    type Error = LossError;
    fn try_from(l: &cytodl_schema::InstanceSegLoss) -> Result<Self, LossError> {
        let mut c = InstanceSegLossConfig { dim: if l.dim == 2 { 2 } else { 3 }, ..Default::default() };
        if l.dim != 2 && l.dim != 3 {
            return Err(invalid("dim", format!("must be 2 or 3, got {}", l.dim)));
        }
        for (k, v) in l.weights.iter().flat_map(|w| w.0.iter()) {
            match k.as_str() {
                "skeleton" => c.skeleton = *v,
                "semantic" => c.semantic = *v,
                "boundary" => c.boundary = *v,
                "vector" => c.vector = *v,
                _ => return Err(invalid("weights", format!("unknown term `{k}` (skeleton, semantic, boundary, vector)"))),
            }
        }
        Ok(c)
    }
}

/// The target rounded to float16, as cyto_dl's `CMAP_loss` compares against `y.half()`.
fn as_half<B: Backend>(t: Tensor<B, 5>) -> Tensor<B, 5> {
    let device = t.device();
    let dims = t.dims();
    let values: Vec<f32> = t.into_data().convert::<f32>().into_vec::<f32>().unwrap_or_default().into_iter().map(|v| half::f16::from_f32(v).to_f32()).collect();
    Tensor::from_data(burn::tensor::TensorData::new(values, dims), &device)
}

/// cyto_dl's `InstanceSegLoss`: `pred` has `dim + 3` channels (skeleton, semantic, embedding,
/// boundary), `target` InstanceSegPreprocessd's `dim + 4` (skeleton, semantic, embedding,
/// boundary, cost map). Skeleton and embedding: MSE, boundary: BCE with logits, each weighted
/// voxel-wise by the cost map and averaged; semantic: Tversky (sigmoid).
pub fn instance_seg_loss<B: Backend>(pred: Tensor<B, 5>, target: Tensor<B, 5>, cfg: &InstanceSegLossConfig) -> Result<Tensor<B, 1>, LossError> {
    let (p, t) = (pred.dims(), target.dims());
    let d = cfg.dim;
    if p[1] != d + 3 || t[1] != d + 4 || p[0] != t[0] || p[2..] != t[2..] {
        return Err(shape_err(
            "InstanceSegLoss",
            format!("needs a prediction of {} channels and a target of {} (InstanceSegPreprocessd's) of the same size, got {p:?} and {t:?}", d + 3, d + 4),
        ));
    }
    let cmap = target.clone().narrow(1, d + 3, 1);
    let weighted = |per_voxel: Tensor<B, 5>| (per_voxel * cmap.clone()).mean();
    let skeleton = weighted((pred.clone().narrow(1, 0, 1) - as_half(target.clone().narrow(1, 0, 1))).square());
    let tversky = TverskyLossConfig { activation: Activation::Sigmoid, ..TverskyLossConfig::default() };
    let semantic = tversky_loss(pred.clone().narrow(1, 1, 1), target.clone().narrow(1, 1, 1), &tversky)?;
    let logits = pred.clone().narrow(1, d + 2, 1);
    let bound = as_half(target.clone().narrow(1, d + 2, 1));
    let boundary = weighted(bound.neg().add_scalar(1.0) * logits.clone() + softplus_neg(logits));
    let vector = weighted((pred.narrow(1, 2, d) - as_half(target.narrow(1, 2, d))).square());
    Ok(vector.mul_scalar(cfg.vector) + skeleton.mul_scalar(cfg.skeleton) + semantic.mul_scalar(cfg.semantic) + boundary.mul_scalar(cfg.boundary))
}

impl Loss {
    /// Checks the parameters (called by every forward too, so an unchecked value never runs).
    pub fn validate(&self) -> Result<(), LossError> {
        match self {
            Self::Mse { .. } | Self::L1 { .. } => Ok(()),
            Self::BceWithLogits(c) => {
                if let Some(pw) = &c.pos_weight {
                    if pw.is_empty() {
                        return Err(invalid("pos_weight", "must not be empty"));
                    }
                    if let Some(v) = pw.iter().find(|v| !v.is_finite()) {
                        return Err(invalid("pos_weight", format!("must be finite, got {v}")));
                    }
                }
                Ok(())
            }
            Self::Dice(c) | Self::MaskedDice(c) => c.validate(),
            Self::DiceCe(c) => c.validate(),
            Self::Tversky(c) => c.validate(),
            Self::Focal(c) => validate_focal(c),
            Self::InstanceSeg(_) => Ok(()),
        }
    }

    /// Whether the loss takes a mask ([`Loss::forward_masked`]).
    pub fn uses_mask(&self) -> bool {
        matches!(self, Self::MaskedDice(_))
    }

    /// The loss of `pred` against `target`. `MaskedDice` without a mask is plain Dice (MONAI
    /// warns and does the same).
    pub fn forward<B: Backend>(&self, pred: Tensor<B, 5>, target: Tensor<B, 5>) -> Result<Tensor<B, 1>, LossError> {
        self.forward_masked(pred, target, None)
    }

    /// As [`Loss::forward`], with the `[N or 1, 1, Z, Y, X]` mask that `MaskedDice` applies; other
    /// losses ignore the mask.
    pub fn forward_masked<B: Backend>(&self, pred: Tensor<B, 5>, target: Tensor<B, 5>, mask: Option<Tensor<B, 5>>) -> Result<Tensor<B, 1>, LossError> {
        self.validate()?;
        match self {
            Self::Mse { reduction } => mse_loss(pred, target, *reduction),
            Self::L1 { reduction } => l1_loss(pred, target, *reduction),
            Self::BceWithLogits(c) => bce_with_logits_loss(pred, target, c.reduction, c.pos_weight.as_deref()),
            Self::Dice(c) => dice_loss(pred, target, c),
            Self::DiceCe(c) => dice_ce_loss(pred, target, c),
            Self::MaskedDice(c) => match mask {
                Some(mask) => masked_dice_loss(pred, target, mask, c),
                None => dice_loss(pred, target, c),
            },
            Self::Tversky(c) => tversky_loss(pred, target, c),
            Self::Focal(c) => focal_loss(pred, target, c),
            Self::InstanceSeg(c) => instance_seg_loss(pred, target, c),
        }
    }
}

fn same_shape<B: Backend>(loss: &'static str, pred: &Tensor<B, 5>, target: &Tensor<B, 5>) -> Result<(), LossError> {
    let (p, t) = (pred.dims(), target.dims());
    if p != t {
        return Err(shape_err(loss, format!("target shape {t:?} differs from prediction {p:?}")));
    }
    Ok(())
}

/// `torch.nn.MSELoss`: `(pred - target)^2`, reduced.
pub fn mse_loss<B: Backend>(pred: Tensor<B, 5>, target: Tensor<B, 5>, reduction: Reduction) -> Result<Tensor<B, 1>, LossError> {
    same_shape("MSELoss", &pred, &target)?;
    Ok(reduction.apply((pred - target).square()))
}

/// `torch.nn.L1Loss`: `|pred - target|`, reduced.
pub fn l1_loss<B: Backend>(pred: Tensor<B, 5>, target: Tensor<B, 5>, reduction: Reduction) -> Result<Tensor<B, 1>, LossError> {
    same_shape("L1Loss", &pred, &target)?;
    Ok(reduction.apply((pred - target).abs()))
}

/// `softplus(-x) = log(1 + exp(-x)) = -log_sigmoid(x)`: burn's `log_sigmoid` uses torch's
/// overflow-safe `max(-x, 0) + log(exp(-max) + exp(-x - max))` and has an analytic backward, so the
/// gradient at `x = 0` is torch's `sigmoid(x) - 1` (composing `max`/`abs` would give a wrong
/// subgradient there).
fn softplus_neg<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    activation::log_sigmoid(x).neg()
}

/// `torch.nn.BCEWithLogitsLoss`:
/// `l = (1 - t) x + (1 + (pw - 1) t) softplus(-x)` (with `pw = 1`: `(1 - t) x + softplus(-x)`).
pub fn bce_with_logits_loss<B: Backend>(
    pred: Tensor<B, 5>,
    target: Tensor<B, 5>,
    reduction: Reduction,
    pos_weight: Option<&[f32]>,
) -> Result<Tensor<B, 1>, LossError> {
    same_shape("BCEWithLogitsLoss", &pred, &target)?;
    let dims = pred.dims();
    let sp = softplus_neg(pred.clone());
    let lin = target.clone().neg().add_scalar(1.0) * pred.clone();
    let loss = match pos_weight {
        None => lin + sp,
        Some(pw) => {
            let c = dims[1];
            if pw.len() != 1 && pw.len() != c {
                return Err(invalid("pos_weight", format!("needs 1 or {c} (channel count) values, got {}", pw.len())));
            }
            let values: Vec<f32> = if pw.len() == 1 { vec![pw[0]; c] } else { pw.to_vec() };
            let pw = Tensor::<B, 1>::from_floats(values.as_slice(), &pred.device()).reshape([1, c, 1, 1, 1]).expand(dims);
            let log_weight = (pw.sub_scalar(1.0) * target).add_scalar(1.0);
            lin + log_weight * sp
        }
    };
    Ok(reduction.apply(loss))
}

/// MONAI `one_hot(target, C)` for a `[N, 1, ...]` class-index target (values truncated to
/// integers like torch's `.long()`).
fn one_hot<B: Backend>(target: Tensor<B, 5>, num_classes: usize) -> Tensor<B, 5> {
    let idx = target.int();
    let chans = (0..num_classes).map(|k| idx.clone().equal_elem(k as i64).float()).collect::<Vec<_>>();
    Tensor::cat(chans, 1)
}

/// The activation, one-hot and background steps shared by MONAI's Dice and Tversky losses.
fn monai_prepare<B: Backend>(
    loss: &'static str,
    mut input: Tensor<B, 5>,
    mut target: Tensor<B, 5>,
    activation: Activation,
    to_onehot_y: bool,
    include_background: bool,
) -> Result<(Tensor<B, 5>, Tensor<B, 5>), LossError> {
    let n_pred_ch = input.dims()[1];
    match activation {
        Activation::Sigmoid => input = activation::sigmoid(input),
        // MONAI ignores softmax on a single channel (with a warning).
        Activation::Softmax if n_pred_ch > 1 => input = activation::softmax(input, 1),
        _ => {}
    }
    if to_onehot_y && n_pred_ch > 1 {
        if target.dims()[1] != 1 {
            return Err(shape_err(loss, format!("to_onehot_y needs a 1-channel target, got {:?}", target.dims())));
        }
        target = one_hot(target, n_pred_ch);
    }
    if !include_background && n_pred_ch > 1 {
        input = input.narrow(1, 1, n_pred_ch - 1);
        let tc = target.dims()[1];
        if tc < 2 {
            return Err(shape_err(loss, format!("target shape {:?} has no background channel to drop", target.dims())));
        }
        target = target.narrow(1, 1, tc - 1);
    }
    same_shape(loss, &input, &target)?;
    Ok((input, target))
}

/// The axes MONAI reduces: spatial, plus batch with `batch = true`.
fn reduce_sum<B: Backend>(t: Tensor<B, 5>, batch: bool) -> Tensor<B, 5> {
    if batch {
        t.sum_dims(&[0, 2, 3, 4])
    } else {
        t.sum_dims(&[2, 3, 4])
    }
}

/// `monai.losses.DiceLoss`, per `[N, C]` (or `[C]` with `batch`):
/// `f = 1 - (2 tp + smooth_nr) / (den + smooth_dr)` with `tp = Σ p g`,
/// `den = Σ p + Σ g` (`Σ p² + Σ g²` with `squared_pred`), and for `jaccard`
/// `den = 2 (Σ p + Σ g - tp)` (squared sums likewise).
pub fn dice_loss<B: Backend>(pred: Tensor<B, 5>, target: Tensor<B, 5>, cfg: &DiceLossConfig) -> Result<Tensor<B, 1>, LossError> {
    cfg.validate()?;
    let (input, target) = monai_prepare("DiceLoss", pred, target, cfg.activation, cfg.to_onehot_y, cfg.include_background)?;
    let tp = reduce_sum(input.clone() * target.clone(), cfg.batch);
    let (pred_o, ground_o) = if cfg.squared_pred {
        (reduce_sum(input.square(), cfg.batch), reduce_sum(target.square(), cfg.batch))
    } else {
        (reduce_sum(input, cfg.batch), reduce_sum(target, cfg.batch))
    };
    let mut denominator = pred_o + ground_o;
    if cfg.jaccard {
        denominator = (denominator - tp.clone()).mul_scalar(2.0);
    }
    let f = (tp.mul_scalar(2.0).add_scalar(cfg.smooth_nr) / denominator.add_scalar(cfg.smooth_dr)).neg().add_scalar(1.0);
    Ok(cfg.reduction.apply(f))
}

/// `torch.nn.CrossEntropyLoss` over the channel axis of logits `[N, C, ...]`, as MONAI's
/// `DiceCELoss.ce` calls it: a 1-channel target holds class indices, a C-channel target holds
/// class probabilities. `mean` divides by `N * Z * Y * X`.
pub fn cross_entropy_loss<B: Backend>(logits: Tensor<B, 5>, target: Tensor<B, 5>, reduction: Reduction) -> Result<Tensor<B, 1>, LossError> {
    let (p, t) = (logits.dims(), target.dims());
    let c = p[1];
    if p[0] != t[0] || p[2..] != t[2..] || (t[1] != 1 && t[1] != c) {
        return Err(shape_err("CrossEntropyLoss", format!("target shape {t:?} fits neither class indices nor probabilities for {p:?}")));
    }
    let target = if t[1] == c && c != 1 { target } else { one_hot(target, c) };
    let logp = activation::log_softmax(logits, 1);
    // -Σ_c t_c log p_c per voxel: [N, 1, Z, Y, X].
    let per_voxel = (logp * target).sum_dim(1).neg();
    Ok(reduction.apply(per_voxel))
}

/// `monai.losses.DiceCELoss`: `lambda_dice * Dice + lambda_ce * CE`, where CE is
/// BCE-with-logits for a 1-channel prediction and cross-entropy otherwise (MONAI's rule).
pub fn dice_ce_loss<B: Backend>(pred: Tensor<B, 5>, target: Tensor<B, 5>, cfg: &DiceCeLossConfig) -> Result<Tensor<B, 1>, LossError> {
    cfg.validate()?;
    let (p, t) = (pred.dims(), target.dims());
    if t[1] != 1 && t[1] != p[1] {
        return Err(shape_err("DiceCELoss", format!("number of channels for target is neither 1 nor the same as input: {p:?} vs {t:?}")));
    }
    let reduction = cfg.dice.reduction;
    let dice = dice_loss(pred.clone(), target.clone(), &cfg.dice)?;
    let ce = if p[1] == 1 { bce_with_logits_loss(pred, target, reduction, None)? } else { cross_entropy_loss(pred, target, reduction)? };
    Ok(dice.mul_scalar(cfg.lambda_dice) + ce.mul_scalar(cfg.lambda_ce))
}

/// `monai.losses.MaskedDiceLoss`: Dice of `(pred * mask, target * mask)`. The mask is
/// `[N or 1, 1, Z, Y, X]` and multiplies the raw prediction, before the activation (MONAI).
pub fn masked_dice_loss<B: Backend>(pred: Tensor<B, 5>, target: Tensor<B, 5>, mask: Tensor<B, 5>, cfg: &DiceLossConfig) -> Result<Tensor<B, 1>, LossError> {
    let (p, t, m) = (pred.dims(), target.dims(), mask.dims());
    if m[0] != p[0] && m[0] != 1 {
        return Err(shape_err("MaskedDiceLoss", format!("batch size of mask {m:?} must be one or equal to input {p:?}")));
    }
    if m[1] != 1 {
        return Err(shape_err("MaskedDiceLoss", format!("mask {m:?} must have only one channel")));
    }
    if m[2..] != p[2..] || t[0] != p[0] || t[2..] != p[2..] {
        return Err(shape_err("MaskedDiceLoss", format!("spatial sizes of input {p:?}, target {t:?} and mask {m:?} differ")));
    }
    let pred = pred * mask.clone().expand(p);
    let target = target * mask.expand(t);
    dice_loss(pred, target, cfg)
}

/// `monai.losses.TverskyLoss`, per `[N, C]` (or `[C]` with `batch`):
/// `1 - (tp + smooth_nr) / (tp + α fp + β fn + smooth_dr)` with `tp = Σ p g`,
/// `fp = Σ p (1 - g)`, `fn = Σ (1 - p) g`.
pub fn tversky_loss<B: Backend>(pred: Tensor<B, 5>, target: Tensor<B, 5>, cfg: &TverskyLossConfig) -> Result<Tensor<B, 1>, LossError> {
    cfg.validate()?;
    let (p0, g0) = monai_prepare("TverskyLoss", pred, target, cfg.activation, cfg.to_onehot_y, cfg.include_background)?;
    let p1 = p0.clone().neg().add_scalar(1.0);
    let g1 = g0.clone().neg().add_scalar(1.0);
    let tp = reduce_sum(p0.clone() * g0.clone(), cfg.batch);
    let fp = reduce_sum(p0 * g1, cfg.batch).mul_scalar(cfg.alpha);
    let fn_ = reduce_sum(p1 * g0, cfg.batch).mul_scalar(cfg.beta);
    let numerator = tp.clone().add_scalar(cfg.smooth_nr);
    let denominator = (tp + fp + fn_).add_scalar(cfg.smooth_dr);
    let score = (numerator / denominator).neg().add_scalar(1.0);
    Ok(cfg.reduction.apply(score))
}

fn validate_focal(c: &cytodl_schema::FocalLoss) -> Result<(), LossError> {
    check_finite("gamma", c.gamma)?;
    if let Some(alpha) = c.alpha {
        if !(0.0..=1.0).contains(&alpha) {
            return Err(invalid("alpha", format!("must be in [0, 1], got {alpha}")));
        }
    }
    if let Some(w) = &c.weight {
        if w.is_empty() {
            return Err(invalid("weight", "must not be empty"));
        }
        if let Some(v) = w.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Err(invalid("weight", format!("values must be finite and no less than 0, got {v}")));
        }
    }
    Ok(())
}

/// `monai.losses.FocalLoss`. Per voxel and channel, with `p = sigmoid(x)`:
/// `(1 - p_t)^γ · BCE(x, t)`, where `(1 - p_t)^γ = exp(γ · log_sigmoid(-x (2t - 1)))` (MONAI's
/// overflow-safe form) and `α_t = α t + (1 - α)(1 - t)` multiplies it when `alpha` is set; with
/// `use_softmax`, `-(1 - q)^γ · log q · t` where `log q = log_softmax(x)` over channels, and
/// `alpha` weighs channel 0 by `1 - α`, the others by `α`. `weight` scales each class (not on a
/// 1-channel prediction, as in MONAI). `mean` averages every value; `sum` sums the per-`[N, C]`
/// spatial means (MONAI's choice). A 1-element `weight` applies to every class (MONAI's scalar).
pub fn focal_loss<B: Backend>(pred: Tensor<B, 5>, target: Tensor<B, 5>, cfg: &cytodl_schema::FocalLoss) -> Result<Tensor<B, 1>, LossError> {
    validate_focal(cfg)?;
    let (input, target) = monai_prepare("FocalLoss", pred, target, Activation::None, cfg.to_onehot_y, cfg.include_background)?;
    let [_, classes, ..] = input.dims();
    let mut loss = if cfg.use_softmax {
        let log_q = activation::log_softmax(input, 1);
        let focus = log_q.clone().exp().neg().add_scalar(1.0).powf_scalar(cfg.gamma);
        let mut loss = (focus * log_q * target).neg();
        // MONAI drops alpha (with a warning) when the background channel is left out.
        if let (Some(alpha), true) = (cfg.alpha, cfg.include_background) {
            let factors: Vec<f32> = (0..classes).map(|c| if c == 0 { 1.0 - alpha } else { alpha } as f32).collect();
            let device = loss.device();
            loss = loss * channel_vector(&factors, &device);
        }
        loss
    } else {
        let bce = input.clone() - input.clone() * target.clone() - activation::log_sigmoid(input.clone());
        let inv_probs = activation::log_sigmoid(input.neg() * target.clone().mul_scalar(2.0).sub_scalar(1.0));
        let mut loss = inv_probs.mul_scalar(cfg.gamma).exp() * bce;
        if let Some(alpha) = cfg.alpha {
            let factor = target.clone().mul_scalar(alpha) + target.neg().add_scalar(1.0).mul_scalar(1.0 - alpha);
            loss = factor * loss;
        }
        loss
    };
    if let (Some(w), true) = (&cfg.weight, classes != 1) {
        let weights: Vec<f32> = match w.len() {
            1 => vec![w[0] as f32; classes],
            n if n == classes => w.iter().map(|v| *v as f32).collect(),
            n => return Err(invalid("weight", format!("needs one value or one per class ({classes}), got {n}"))),
        };
        let device = loss.device();
        loss = loss * channel_vector(&weights, &device);
    }
    Ok(match cfg.reduction {
        cytodl_schema::Reduction::Mean => crate::reduce::mean_all(loss),
        cytodl_schema::Reduction::Sum => crate::reduce::sum_all(loss.mean_dim(2).mean_dim(3).mean_dim(4)),
    })
}

/// `values` as a `[1, C, 1, 1, 1]` tensor that broadcasts over batch and space.
fn channel_vector<B: Backend>(values: &[f32], device: &B::Device) -> Tensor<B, 5> {
    Tensor::<B, 1>::from_floats(values, device).reshape([1, values.len(), 1, 1, 1])
}
impl From<cytodl_schema::Reduction> for Reduction {
    fn from(r: cytodl_schema::Reduction) -> Self {
        match r {
            cytodl_schema::Reduction::Mean => Reduction::Mean,
            cytodl_schema::Reduction::Sum => Reduction::Sum,
        }
    }
}

/// The Dice parameters the Dice-family declarations share, read the same way for each.
macro_rules! dice_config_of {
    ($($decl:ty),+) => {$(
        impl TryFrom<&$decl> for DiceLossConfig {
            type Error = LossError;
            fn try_from(l: &$decl) -> Result<Self, LossError> {
                Ok(DiceLossConfig {
                    include_background: l.include_background,
                    to_onehot_y: l.to_onehot_y,
                    activation: Activation::from_flags(l.sigmoid, l.softmax)?,
                    squared_pred: l.squared_pred,
                    jaccard: l.jaccard,
                    reduction: l.reduction.into(),
                    smooth_nr: l.smooth_nr,
                    smooth_dr: l.smooth_dr,
                    batch: l.batch,
                })
            }
        }
    )+};
}
dice_config_of!(cytodl_schema::DiceLoss, cytodl_schema::MaskedDiceLoss, cytodl_schema::DiceCELoss);

impl TryFrom<&cytodl_schema::DiceCELoss> for DiceCeLossConfig {
    type Error = LossError;
    fn try_from(l: &cytodl_schema::DiceCELoss) -> Result<Self, LossError> {
        Ok(DiceCeLossConfig { dice: l.try_into()?, lambda_dice: l.lambda_dice, lambda_ce: l.lambda_ce })
    }
}

impl TryFrom<&cytodl_schema::TverskyLoss> for TverskyLossConfig {
    type Error = LossError;
    fn try_from(l: &cytodl_schema::TverskyLoss) -> Result<Self, LossError> {
        Ok(TverskyLossConfig {
            include_background: l.include_background,
            to_onehot_y: l.to_onehot_y,
            activation: Activation::from_flags(l.sigmoid, l.softmax)?,
            alpha: l.alpha,
            beta: l.beta,
            reduction: l.reduction.into(),
            smooth_nr: l.smooth_nr,
            smooth_dr: l.smooth_dr,
            batch: l.batch,
        })
    }
}

/// The loss a head's config names (`cytodl-schema`); its parameters are checked here too.
impl TryFrom<&cytodl_schema::LossConfig> for Loss {
    type Error = LossError;

    fn try_from(c: &cytodl_schema::LossConfig) -> Result<Self, LossError> {
        use cytodl_schema::LossConfig as C;
        let loss = match c {
            C::DiceCELoss(l) => Loss::DiceCe(l.try_into()?),
            C::DiceLoss(l) => Loss::Dice(l.try_into()?),
            C::MaskedDiceLoss(l) => Loss::MaskedDice(l.try_into()?),
            C::TverskyLoss(l) => Loss::Tversky(l.try_into()?),
            C::FocalLoss(l) => Loss::Focal(l.clone()),
            C::InstanceSegLoss(l) => Loss::InstanceSeg(l.try_into()?),
            C::MSELoss(l) => Loss::Mse { reduction: l.reduction.into() },
            C::L1Loss(l) => Loss::L1 { reduction: l.reduction.into() },
            C::BCEWithLogitsLoss(l) => {
                Loss::BceWithLogits(BceWithLogitsConfig { reduction: l.reduction.into(), pos_weight: l.pos_weight.map(|w| vec![w as f32]) })
            }
        };
        loss.validate()?;
        Ok(loss)
    }
}
