//! The model: cyto_dl's multi-task model, its DynUNet backbone, its heads, the optimizers and
//! schedulers it names by role, and sliding-window inference.

use crate::components::gan::{GANHead, GANHeadResize, GAN};
use crate::components::loss::LossConfig;
use crate::components::metric::MetricConfig;
use crate::components::optim::{OptimizerConfig, SchedulerConfig};
use crate::components::postprocess::{ActivationConfig, PostprocessConfig};
use crate::field::{Column, ConfigPath, Field, Map, Raw};
use crate::lit::Lit;
use crate::spec::Ty;
use crate::values::Levels;
use crate::{choice, component, kind, Args, Component};

#[cfg(feature = "codegen")]
use crate::field::Context;
#[cfg(feature = "codegen")]
use proc_macro2::TokenStream;
#[cfg(feature = "codegen")]
use quote::quote;

component! {
    /// One backbone whose output feeds named heads; total loss = sum of the heads' losses.
    #[kind(Model)]
    #[names("cyto_dl.models.im2im.MultiTaskIm2Im", "cyto_dl.models.im2im.multitask.MultiTaskIm2Im")]
    pub struct MultiTaskIm2Im {
        /// the network whose output feeds every head
        pub backbone: BackboneConfig,
        /// head name (a column) -> head
        pub task_heads: Map<HeadConfig>,
        /// the input column
        pub x_key: Column,
        /// `{generator: <optimizer, _partial_: True>}`
        pub optimizer: PerRole<OptimizerConfig>,
        /// `{generator: <scheduler, _partial_: True>}`
        pub lr_scheduler: Option<PerRole<SchedulerConfig>> = None,
        /// sliding-window inference: roi_size, sw_batch_size, overlap, mode, sigma_scale, padding_mode, cval
        pub inference_args: Option<InferenceArgs> = None,
        /// ImageSaver frequency
        pub save_images_every_n_epochs: i64 = 1,
        /// where predict writes `<head>/<input name>`
        pub save_dir: Option<ConfigPath> = None,
        /// (legacy) {input: {column: fn}, prediction: {head: fn}}
        pub postprocessing: Option<LegacyPostprocessing> = None,
        /// `{"<split>/<type>/<head>": <torchmetrics metric>}` logged besides the losses
        pub metrics: Option<Map<MetricConfig>> = None,
    }
    ignored {
        /// (torch.compile) no effect here
        compile: Option<bool> = Some(false) => "the binary is compiled ahead of time",
    }
    unsupported {
        /// (cyto_dl) not supported
        hr_skip: Option<Raw> = None,
    }
}

kind! {
    /// What `model:` builds: a supervised multi-task model or a GAN.
    pub enum ModelConfig: Model {
        MultiTaskIm2Im,
        GAN,
    }
}

impl ModelConfig {
    /// The input column.
    pub fn x_key(&self) -> &str {
        match self {
            ModelConfig::MultiTaskIm2Im(m) => &m.x_key.0,
            ModelConfig::GAN(m) => &m.x_key.0,
        }
    }

    /// Where predict writes, when set.
    pub fn save_dir_mut(&mut self) -> &mut Option<ConfigPath> {
        match self {
            ModelConfig::MultiTaskIm2Im(m) => &mut m.save_dir,
            ModelConfig::GAN(m) => &mut m.save_dir,
        }
    }

    /// `model.metrics`: the metrics logged besides the losses (none when unset).
    pub fn metrics(&self) -> Option<&Map<MetricConfig>> {
        match self {
            ModelConfig::MultiTaskIm2Im(m) => m.metrics.as_ref(),
            ModelConfig::GAN(m) => m.metrics.as_ref(),
        }
    }

    /// The heads.
    pub fn task_heads(&self) -> &Map<HeadConfig> {
        match self {
            ModelConfig::MultiTaskIm2Im(m) => &m.task_heads,
            ModelConfig::GAN(m) => &m.task_heads,
        }
    }
}

impl MultiTaskIm2Im {
    /// The optimizer of `role` (`generator` for a supervised model).
    pub fn optimizer(&self, role: &str) -> Option<&OptimizerConfig> {
        self.optimizer.0.get(role)
    }

    /// The scheduler of `role`, when there is one.
    pub fn scheduler(&self, role: &str) -> Option<&SchedulerConfig> {
        self.lr_scheduler.as_ref().and_then(|s| s.0.get(role))
    }
}

/// MONAI's default `norm_name`, `["INSTANCE", {"affine": true}]`.
fn instance_norm() -> Raw {
    Raw(Lit::List(vec![Lit::Str("INSTANCE".into()), Lit::Map([("affine".to_string(), Lit::Bool(true))].into_iter().collect())]))
}

/// MONAI's default `act_name`, `["leakyrelu", {"inplace": true, "negative_slope": 0.01}]`.
fn leaky_relu() -> Raw {
    Raw(Lit::List(vec![
        Lit::Str("leakyrelu".into()),
        Lit::Map([("inplace".to_string(), Lit::Bool(true)), ("negative_slope".to_string(), Lit::Float(0.01))].into_iter().collect()),
    ]))
}

component! {
    /// MONAI's DynUNet, exactly as MONAI builds it.
    #[kind(Backbone)]
    #[names("monai.networks.nets.DynUNet", "monai.networks.nets.dynunet.DynUNet")]
    pub struct DynUNet {
        /// 2 or 3
        pub spatial_dims: i64,
        /// input channels
        pub in_channels: i64,
        /// output channels (fed to the heads)
        pub out_channels: i64,
        /// per level: an int or one int per axis
        pub kernel_size: Levels,
        /// per level: an int or one int per axis; the first is usually 1
        pub strides: Levels,
        /// per upsampling level (len(strides) - 1)
        pub upsample_kernel_size: Levels,
        /// channels per level; null: MONAI's default
        pub filters: Option<Vec<i64>> = None,
        /// dropout after each convolution
        pub dropout: Option<f64> = None,
        /// extra outputs from deeper levels
        pub deep_supervision: bool = false,
        /// how many deep-supervision outputs
        pub deep_supr_num: i64 = 1,
        /// residual blocks
        pub res_block: bool = false,
        /// bias on transposed convolutions
        pub trans_bias: bool = false,
    }
    ignored {
        /// (MONAI) instance norm is used
        norm_name: Raw = instance_norm() => "affine instance normalisation, MONAI's default, is the one implemented",
        /// (MONAI) LeakyReLU(0.01) is used
        act_name: Raw = leaky_relu() => "LeakyReLU(0.01), MONAI's default, is the one implemented",
    }
}

kind! {
    /// The network under the heads.
    pub enum BackboneConfig: Backbone {
        DynUNet,
    }
}

component! {
    /// The identity: the backbone's output is the prediction.
    #[kind(Head)]
    #[names("cyto_dl.nn.BaseHead", "cyto_dl.nn.head.BaseHead", "cyto_dl.nn.head.base_head.BaseHead")]
    pub struct BaseHead {
        /// the head's loss
        pub loss: LossConfig,
        /// {input: fn, prediction: fn} for saved images
        pub postprocess: Option<HeadPostprocess> = None,
    }
    unsupported {
        /// (cyto_dl) per-head metrics: not supported
        calculate_metric: bool = false,
        /// (cyto_dl) raw outputs: not supported
        save_raw: bool = false,
    }
}

component! {
    /// The identity, with a loss that also takes a mask: the column `mask_key` of each batch
    /// (cyto_dl's `MaskHead`, for partially annotated images with `MaskedDiceLoss`).
    #[kind(Head)]
    #[names("cyto_dl.nn.head.MaskHead", "cyto_dl.nn.MaskHead", "cyto_dl.nn.head.mask_head.MaskHead")]
    pub struct MaskHead {
        /// the head's loss, called with the mask
        pub loss: LossConfig,
        /// the data column holding the mask (1 = counted, 0 = ignored)
        pub mask_key: String = "mask".to_string(),
        /// {input: fn, prediction: fn} for saved images
        pub postprocess: Option<HeadPostprocess> = None,
    }
    unsupported {
        /// (cyto_dl) per-head metrics: not supported
        calculate_metric: bool = false,
    }
}

choice! {
    /// Whether a ResBlocksHead upsamples (`hr`) or keeps the backbone's resolution (`lr`).
    pub enum Resolution {
        Lr = "lr",
        Hr = "hr",
    }
}

choice! {
    /// How a ResBlocksHead upsamples.
    pub enum UpsampleMethod {
        PixelShuffle = "pixelshuffle",
        NonTrainable = "nontrainable",
        Deconv = "deconv",
    }
}

component! {
    /// Convolutional residual blocks, optionally upsampling.
    #[kind(Head)]
    #[names("cyto_dl.nn.ResBlocksHead", "cyto_dl.nn.head.ResBlocksHead", "cyto_dl.nn.head.res_blocks_head.ResBlocksHead")]
    pub struct ResBlocksHead {
        /// the head's loss
        pub loss: LossConfig,
        /// {input: fn, prediction: fn}
        pub postprocess: Option<HeadPostprocess> = None,
        /// channels from the backbone
        pub in_channels: i64,
        /// channels out
        pub out_channels: i64,
        /// activation on the output
        pub final_act: Option<ActivationConfig> = None,
        /// hr: upsample by upsample_ratio
        pub resolution: Resolution = Resolution::Lr,
        /// 2 or 3
        pub spatial_dims: i64 = 3,
        /// residual blocks
        pub n_convs: i64 = 1,
        /// dropout
        pub dropout: f64 = 0.0,
        /// how hr upsamples
        pub upsample_method: UpsampleMethod = UpsampleMethod::PixelShuffle,
        /// per-axis upsampling
        pub upsample_ratio: Option<Vec<i64>> = None,
        /// dense connections
        pub dense: bool = false,
    }
    unsupported {
        /// (cyto_dl) per-head metrics: not supported
        calculate_metric: bool = false,
        /// (cyto_dl) raw outputs: not supported
        save_raw: bool = false,
    }
}

kind! {
    /// A task head.
    pub enum HeadConfig: Head {
        BaseHead,
        ResBlocksHead,
        MaskHead,
        GANHead,
        GANHeadResize,
    }
}

impl HeadConfig {
    /// The head's loss.
    /// The head's loss (a GAN head's reconstruction loss: its adversarial objective is the
    /// model's business, [`crate::GAN`]).
    pub fn loss(&self) -> &LossConfig {
        match self {
            HeadConfig::BaseHead(h) => &h.loss,
            HeadConfig::ResBlocksHead(h) => &h.loss,
            HeadConfig::MaskHead(h) => &h.loss,
            HeadConfig::GANHead(h) => &h.reconstruction_loss,
            HeadConfig::GANHeadResize(h) => &h.reconstruction_loss,
        }
    }

    /// A GAN head's adversarial objective and reconstruction weight; `None` for other heads.
    pub fn adversarial(&self) -> Option<(&crate::GanLossConfig, f64)> {
        match self {
            HeadConfig::GANHead(h) => Some((&h.gan_loss, h.reconstruction_loss_weight)),
            HeadConfig::GANHeadResize(h) => Some((&h.gan_loss, h.reconstruction_loss_weight)),
            HeadConfig::BaseHead(_) | HeadConfig::ResBlocksHead(_) | HeadConfig::MaskHead(_) => None,
        }
    }

    /// How the head's saved images are postprocessed.
    pub fn postprocess(&self) -> Option<&HeadPostprocess> {
        match self {
            HeadConfig::BaseHead(h) => h.postprocess.as_ref(),
            HeadConfig::ResBlocksHead(h) => h.postprocess.as_ref(),
            HeadConfig::MaskHead(h) => h.postprocess.as_ref(),
            HeadConfig::GANHead(h) => h.postprocess.as_ref(),
            HeadConfig::GANHeadResize(h) => h.postprocess.as_ref(),
        }
    }

    pub fn postprocess_mut(&mut self) -> &mut Option<HeadPostprocess> {
        match self {
            HeadConfig::BaseHead(h) => &mut h.postprocess,
            HeadConfig::ResBlocksHead(h) => &mut h.postprocess,
            HeadConfig::MaskHead(h) => &mut h.postprocess,
            HeadConfig::GANHead(h) => &mut h.postprocess,
            HeadConfig::GANHeadResize(h) => &mut h.postprocess,
        }
    }
}

/// A head's `postprocess: {input: fn, prediction: fn}`: how its saved input and prediction are
/// turned into images.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeadPostprocess {
    pub input: Option<PostprocessConfig>,
    pub prediction: Option<PostprocessConfig>,
}

/// `{input: ..., prediction: ...}` read from a mapping, each entry through `read`; other keys are
/// an error.
fn input_prediction<T>(lit: &Lit, read: impl Fn(&Lit) -> Result<T, String>) -> Result<(Option<T>, Option<T>), String> {
    let map = lit.as_map().ok_or_else(|| format!("must be a mapping of `input` and `prediction`, found {}", lit.to_yaml()))?;
    if let Some(other) = map.keys().find(|k| *k != "input" && *k != "prediction") {
        return Err(format!("has an unknown entry `{other}` (only `input` and `prediction`)"));
    }
    let get = |k: &str| match map.get(k) {
        None | Some(Lit::Null) => Ok(None),
        Some(v) => read(v).map(Some).map_err(|e| format!("`{k}` {e}")),
    };
    Ok((get("input")?, get("prediction")?))
}

impl Field for HeadPostprocess {
    const TY: Ty = Ty::Map;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        let (input, prediction) = input_prediction(lit, PostprocessConfig::from_lit)?;
        Ok(HeadPostprocess { input, prediction })
    }
    fn to_lit(&self) -> Lit {
        Lit::Map([("input".to_string(), self.input.to_lit()), ("prediction".to_string(), self.prediction.to_lit())].into_iter().collect())
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream {
        let (i, p) = (self.input.literal(cx), self.prediction.literal(cx));
        quote!(HeadPostprocess { input: #i, prediction: #p })
    }
}

/// The seed document's model-level `postprocessing: {input: {<column>: fn}, prediction: {<head>: fn}}`
/// (the compiler moves each entry to its head's `postprocess`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LegacyPostprocessing {
    pub input: Map<PostprocessConfig>,
    pub prediction: Map<PostprocessConfig>,
}

impl Field for LegacyPostprocessing {
    const TY: Ty = Ty::Map;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        let (input, prediction) = input_prediction(lit, Map::<PostprocessConfig>::from_lit)?;
        Ok(LegacyPostprocessing { input: input.unwrap_or_default(), prediction: prediction.unwrap_or_default() })
    }
    fn to_lit(&self) -> Lit {
        Lit::Map([("input".to_string(), self.input.to_lit()), ("prediction".to_string(), self.prediction.to_lit())].into_iter().collect())
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream {
        let (i, p) = (self.input.literal(cx), self.prediction.literal(cx));
        quote!(LegacyPostprocessing { input: #i, prediction: #p })
    }
}

/// Components named by the role they play (`optimizer: {generator: ...}`; a GAN adds
/// `discriminator`). A component given directly plays the `generator` role.
#[derive(Debug, Clone, PartialEq)]
pub struct PerRole<T>(pub Map<T>);

impl<T> Default for PerRole<T> {
    fn default() -> Self {
        PerRole(Map(Default::default()))
    }
}

impl<T: Field> Field for PerRole<T> {
    const TY: Ty = Ty::Map;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        match lit.as_map() {
            Some(m) if m.contains_key("_target_") => T::from_lit(lit).map(|t| PerRole(Map::of([("generator", t)]))),
            Some(_) => Map::<T>::from_lit(lit).map(PerRole),
            None => Err(format!("must be a mapping of roles (`generator`) to components, found {}", lit.to_yaml())),
        }
    }
    fn to_lit(&self) -> Lit {
        self.0.to_lit()
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream {
        let m = self.0.literal(cx);
        quote!(PerRole(#m))
    }
}

choice! {
    /// How overlapping windows are blended.
    pub enum BlendMode {
        Constant = "constant",
        Gaussian = "gaussian",
    }
}

choice! {
    /// How sliding-window inference pads an image smaller than a window.
    pub enum WindowPadMode {
        Constant = "constant",
        Reflect = "reflect",
        Replicate = "replicate",
        Circular = "circular",
    }
}

component! {
    /// MONAI's sliding-window inference (`model.inference_args`).
    #[kind(Inference)]
    #[names("monai.inferers.sliding_window_inference")]
    pub struct SlidingWindowArgs {
        /// the window size, one value per spatial axis (default: the training patch)
        pub roi_size: Option<Vec<i64>> = None,
        /// windows per forward pass
        pub sw_batch_size: i64 = 1,
        /// overlap of neighbouring windows, overall or per axis
        pub overlap: Vec<f64> = vec![0.25],
        /// how overlapping windows are blended
        pub mode: BlendMode = BlendMode::Constant,
        /// the Gaussian's sigma relative to the window, overall or per axis
        pub sigma_scale: Vec<f64> = vec![0.125],
        /// padding of images smaller than a window
        pub padding_mode: WindowPadMode = WindowPadMode::Constant,
        /// the value of constant padding
        pub cval: f64 = 0.0,
    }
    ignored {
        /// (MONAI) a progress bar
        progress: Option<Raw> = None => "no progress bar for inference",
        /// (MONAI) where windows are stitched
        sw_device: Option<Raw> = None => "windows are stitched on the CPU",
        /// (MONAI) where the output goes
        device: Option<Raw> = None => "the output is an image in memory",
    }
}

/// `model.inference_args`: the arguments of [`SlidingWindowArgs`] as a plain mapping (no
/// `_target_`).
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceArgs(pub SlidingWindowArgs);

impl Field for InferenceArgs {
    const TY: Ty = Ty::Map;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        let map = lit.as_map().ok_or_else(|| format!("must be a mapping, found {}", lit.to_yaml()))?;
        SlidingWindowArgs::from_args(&Args::of_map(map)).map(InferenceArgs).map_err(|e| e.to_string())
    }
    fn to_lit(&self) -> Lit {
        Lit::Map(self.0.to_args())
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream {
        let inner = Component::literal(&self.0, cx);
        quote!(InferenceArgs(#inner))
    }
}
