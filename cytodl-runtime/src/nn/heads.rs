//! cyto_dl's task heads (`cyto_dl/nn/head/`), rebuilt on burn: [`ResBlocksHead`] (MONAI
//! `UpSample` → `UnetResBlock` ×n → `UnetOutBlock` → activation), a 3D→2D [`ProjectionHead`]
//! (max / mean over Z or a learned `[Z, 1, 1]` convolution), and [`Head`], the per-head model a
//! multi-task network holds (`Base` = cyto_dl's identity `BaseHead`).
//!
//! As in [`crate::nn::dynunet`], tensors are 5-D `[N, C, Z, Y, X]`; a 2-D head runs with Z = 1,
//! kernels `[1, k, k]` and upsampling on Y / X only.
//!
//! Weights: cyto_dl stores a head as `task_heads.<name>.model.{upsample,model}.*` (the head's
//! `model` is a `ModuleDict` of the upsampler and an `nn.Sequential` of first layer, res blocks,
//! out block and activation). Those positional keys are remapped onto our named fields by
//! [`ResBlocksHead::cyto_dl_key`] / [`ResBlocksHead::load_cyto_dl`].

use std::collections::BTreeMap;
use std::marker::PhantomData;

use burn::module::Module;
use burn::tensor::activation::{relu, sigmoid, softmax, tanh};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::init::Init;
use super::leaky_relu::leaky_relu;

use crate::nn::dynunet::{get_padding, Conv, ConvLayer, UnetOutBlock};
use crate::nn::weights::{load_state_dict, LoadOptions, LoadReport, StateDict, WeightsError};

/// Invalid head arguments (what cyto_dl / MONAI reject with an assertion or an exception).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum HeadConfigError {
    #[error("final_act torch.nn.Softmax(dim={dim}) names no axis of the {rank}-D output")]
    SoftmaxDim { dim: i64, rank: i64 },
    #[error("spatial_dims must be 2 or 3, got {0}")]
    SpatialDims(usize),
    #[error("resolution \"hr\" needs upsample_ratio")]
    MissingUpsampleRatio,
    #[error("upsample_ratio needs 1 or spatial_dims = {spatial_dims} values, got {got}")]
    UpsampleRatioLength { spatial_dims: usize, got: usize },
    #[error("upsample_ratio values must be positive")]
    ZeroRatio,
    #[error("pixelshuffle divides in_channels ({in_channels}) by 2^spatial_dims = {divisor}, which leaves no channels")]
    PixelShuffleChannels { in_channels: usize, divisor: usize },
    #[error("in_channels and out_channels must be positive")]
    ZeroChannels,
    #[error("dropout must be in [0, 1), got {0}")]
    Dropout(f64),
    #[error("a learned projection needs a positive depth (the Z size it reduces)")]
    ZeroDepth,
    #[error("first_layer must keep the channel count ({expected}), got {in_channels} -> {out_channels}")]
    FirstLayerChannels { expected: usize, in_channels: usize, out_channels: usize },
}

/// A tensor the head cannot take (checked by the `try_forward` methods).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum HeadInputError {
    #[error("head expects {expected} input channels, got {got}")]
    Channels { expected: usize, got: usize },
    #[error("learned projection reduces Z = {expected}, got an input with Z = {got}")]
    Depth { expected: usize, got: usize },
}

/// The activation cyto_dl applies to the logits (`final_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FinalAct {
    #[default]
    Identity,
    Sigmoid,
    Tanh,
    ReLU,
    /// Softmax over this axis of the `[N, C, Z, Y, X]` output.
    Softmax(usize),
}

impl FinalAct {
    pub fn apply<B: Backend>(self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        match self {
            FinalAct::Identity => x,
            FinalAct::Sigmoid => sigmoid(x),
            FinalAct::Tanh => tanh(x),
            FinalAct::ReLU => relu(x),
            FinalAct::Softmax(dim) => softmax(x, dim.min(4)),
        }
    }
}

/// `resolution`: `Lr` keeps the backbone's size, `Hr` upsamples first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolution {
    #[default]
    Lr,
    Hr,
}

/// MONAI `UpSample` modes cyto_dl's configs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpsampleMethod {
    /// `SubpixelUpsample`: 3x3 conv to `out * r^d` channels, pixel shuffle, then MONAI's
    /// pad-and-average-pool (Aitken et al.) that removes checkerboard artefacts.
    #[default]
    PixelShuffle,
    /// `nn.Upsample` with MONAI's defaults: (bi/tri)linear, `align_corners=True`.
    NonTrainable,
    /// `ConvTranspose` with kernel = stride = ratio, bias.
    Deconv,
}

/// How [`ProjectionHead`] collapses Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProjectionMode {
    /// Max over Z (cyto_dl's old `PoolProjectionLayer`).
    #[default]
    Max,
    Mean,
    /// A convolution with kernel `[Z, 1, 1]`, no padding (a learned weighting of the planes).
    Learned,
}

/// torch's default `ConvNd` init (kaiming-uniform, a = √5): weight and bias uniform in
/// ±1/√fan_in, fan_in from weight dim 1 (out_channels for a transposed conv) × kernel volume.
fn torch_conv<B: Backend>(cin: usize, cout: usize, kernel: [usize; 3], bias: bool, transposed: bool, device: &B::Device, init: &Init) -> Conv<B> {
    let shape = if transposed { [cin, cout, kernel[0], kernel[1], kernel[2]] } else { [cout, cin, kernel[0], kernel[1], kernel[2]] };
    let fan_in = (shape[1] * kernel.iter().product::<usize>()).max(1);
    let bound = 1.0 / (fan_in as f64).sqrt();
    Conv {
        weight: init.at("weight").uniform_param(shape, -bound, bound, device),
        bias: bias.then(|| init.at("bias").uniform_param([cout], -bound, bound, device)),
        stride: [1, 1, 1],
        padding: if transposed { [0; 3] } else { get_padding(kernel, [1, 1, 1]) },
        transposed,
    }
}

/// `InstanceNorm{2,3}d` with MONAI's `"INSTANCE"` defaults (no affine, eps 1e-5): the heads'
/// norms have no parameters, unlike DynUNet's `("INSTANCE", {affine: True})`.
fn instance_norm<B: Backend>(x: Tensor<B, 5>, eps: f64) -> Tensor<B, 5> {
    crate::nn::norm_cpu::instance_norm(x, None, eps)
}

/// MONAI `UnetResBlock(kernel 3, stride 1, norm "INSTANCE", LeakyReLU 0.01, dropout)`. The 1x1
/// projection `conv3` (+ `norm3`) exists only when in != out (dense heads).
#[derive(Module, Debug)]
pub struct UnetResBlock<B: Backend> {
    pub conv1: ConvLayer<B>,
    pub conv2: ConvLayer<B>,
    pub conv3: Option<ConvLayer<B>>,
    pub eps: f64,
    pub negative_slope: f64,
}

impl<B: Backend> UnetResBlock<B> {
    fn new(cin: usize, cout: usize, kernel: [usize; 3], dropout: f64, device: &B::Device, init: &Init) -> Self {
        let layer = |name: &str, cin, k| ConvLayer { conv: torch_conv(cin, cout, k, false, false, device, &init.at(name).at("conv")), dropout };
        UnetResBlock {
            conv1: layer("conv1", cin, kernel),
            conv2: layer("conv2", cout, kernel),
            conv3: (cin != cout).then(|| layer("conv3", cin, [1, 1, 1])),
            eps: 1e-5,
            negative_slope: 0.01,
        }
    }

    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let out = instance_norm(self.conv1.forward(x.clone()), self.eps);
        let out = leaky_relu(out, self.negative_slope);
        let out = instance_norm(self.conv2.forward(out), self.eps);
        let res = match &self.conv3 {
            Some(c3) => instance_norm(c3.forward(x), self.eps),
            None => x,
        };
        leaky_relu(out + res, self.negative_slope)
    }
}

/// MONAI `UpSample` as cyto_dl builds it (`kernel_size=None`, `pre_conv="default"`,
/// `interp_mode="linear"`, `align_corners=True`, `bias=True`, `apply_pad_pool=True`).
#[derive(Module, Debug)]
pub struct Upsample<B: Backend> {
    /// PixelShuffle: the 3x3 `conv_block`; Deconv: the transposed conv; NonTrainable: none
    /// (cyto_dl keeps the channel count, so MONAI adds no `preconv`).
    pub conv: Option<Conv<B>>,
    #[module(skip)]
    pub method: UpsampleMethod,
    /// Per-axis factor `[z, y, x]` (z = 1 for 2-D heads).
    pub scale: [usize; 3],
}

impl<B: Backend> Upsample<B> {
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        match self.method {
            UpsampleMethod::NonTrainable => {
                let [_, _, d, h, w] = x.dims();
                let s = self.scale;
                interpolate_linear_align_corners(x, [d * s[0], h * s[1], w * s[2]])
            }
            UpsampleMethod::Deconv | UpsampleMethod::PixelShuffle => {
                let y = match &self.conv {
                    Some(c) => c.forward(x),
                    None => x,
                };
                if self.method == UpsampleMethod::Deconv {
                    y
                } else {
                    avg_pool_after_left_pad(pixel_shuffle(y, self.scale), self.scale)
                }
            }
        }
    }
}

/// MONAI `pixelshuffle` generalised to per-axis factors: channel `c * fz*fy*fx + (iz*fy + iy)*fx
/// + ix` moves to offset `(iz, iy, ix)` of its output block. With `[1, r, r]` this is the 2-D
/// shuffle, with `[r, r, r]` the 3-D one.
pub fn pixel_shuffle<B: Backend>(x: Tensor<B, 5>, factor: [usize; 3]) -> Tensor<B, 5> {
    let [n, c, d, h, w] = x.dims();
    let [fz, fy, fx] = factor;
    let org = c / (fz * fy * fx).max(1);
    x.reshape([n, org, fz, fy, fx, d, h, w]).permute([0, 1, 5, 2, 6, 3, 7, 4]).reshape([n, org, d * fz, h * fy, w * fx])
}

/// `ConstantPad(r-1 before, 0 after)` then `AvgPool(kernel r, stride 1)` on every upsampled axis:
/// each output is the mean of itself and the r-1 values before it (zeros off the edge), done
/// axis by axis (the pool's box kernel is separable).
fn avg_pool_after_left_pad<B: Backend>(x: Tensor<B, 5>, factor: [usize; 3]) -> Tensor<B, 5> {
    let mut x = x;
    for (axis, &f) in factor.iter().enumerate() {
        if f <= 1 {
            continue;
        }
        let dim = axis + 2;
        let dims = x.dims();
        let len = dims[dim];
        let mut pad_shape = dims;
        pad_shape[dim] = f - 1;
        let padded = Tensor::cat(vec![Tensor::zeros(pad_shape, &x.device()), x], dim);
        let mut acc = padded.clone().narrow(dim, 0, len);
        for k in 1..f {
            acc = acc + padded.clone().narrow(dim, k, len);
        }
        x = acc.div_scalar(f as f64);
    }
    x
}

/// torch `F.interpolate(mode="(bi/tri)linear", align_corners=True)` to `size` on the three
/// spatial axes, one axis at a time (trilinear weights are a product of 1-D ones): source
/// coordinate `dst * (in-1)/(out-1)`, the two neighbours blended by the fractional part. Index
/// selects keep it differentiable.
pub fn interpolate_linear_align_corners<B: Backend>(x: Tensor<B, 5>, size: [usize; 3]) -> Tensor<B, 5> {
    let mut x = x;
    for (axis, &out) in size.iter().enumerate() {
        let dim = axis + 2;
        let inp = x.dims()[dim];
        if inp == out || inp == 0 || out == 0 {
            continue;
        }
        let scale = if out > 1 { (inp - 1) as f32 / (out - 1) as f32 } else { 0.0 };
        let mut i0 = Vec::with_capacity(out);
        let mut i1 = Vec::with_capacity(out);
        let mut l0 = Vec::with_capacity(out);
        let mut l1 = Vec::with_capacity(out);
        for o in 0..out {
            let src = scale * o as f32;
            let lo = (src.floor() as usize).min(inp - 1);
            let lambda = (src - lo as f32).clamp(0.0, 1.0);
            i0.push(lo as i64);
            i1.push((lo + usize::from(lo < inp - 1)) as i64);
            l0.push(1.0 - lambda);
            l1.push(lambda);
        }
        let device = x.device();
        let idx = |v: Vec<i64>| Tensor::<B, 1, Int>::from_data(TensorData::new(v, [out]), &device);
        let mut wshape = [1usize; 5];
        wshape[dim] = out;
        let wt = |v: Vec<f32>| Tensor::<B, 1>::from_data(TensorData::new(v, [out]), &device).reshape(wshape);
        let a = x.clone().select(dim, idx(i0)) * wt(l0);
        let b = x.select(dim, idx(i1)) * wt(l1);
        x = a + b;
    }
    x
}

/// Arguments of cyto_dl's `ResBlocksHead` (its defaults in [`ResBlocksHeadConfig::new`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ResBlocksHeadConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub final_act: FinalAct,
    pub resolution: Resolution,
    pub spatial_dims: usize,
    pub n_convs: usize,
    pub dropout: f64,
    pub upsample_method: UpsampleMethod,
    /// An int in cyto_dl is one value here (repeated per axis); otherwise one per spatial axis.
    pub upsample_ratio: Option<Vec<usize>>,
    /// `None` is cyto_dl's default `Identity`; a projection must keep the channel count.
    pub first_layer: Option<ProjectionConfig>,
    pub dense: bool,
}

impl ResBlocksHeadConfig {
    /// cyto_dl's defaults: identity activation, "lr", 3-D, one conv, no dropout, pixelshuffle.
    pub fn new(in_channels: usize, out_channels: usize) -> Self {
        ResBlocksHeadConfig {
            in_channels,
            out_channels,
            final_act: FinalAct::Identity,
            resolution: Resolution::Lr,
            spatial_dims: 3,
            n_convs: 1,
            dropout: 0.0,
            upsample_method: UpsampleMethod::PixelShuffle,
            upsample_ratio: None,
            first_layer: None,
            dense: false,
        }
    }

    /// Channels the res blocks work with: cyto_dl divides by 2^spatial_dims for pixelshuffle
    /// (whatever the ratio), otherwise keeps `in_channels`.
    pub fn conv_channels(&self) -> usize {
        if self.resolution == Resolution::Hr && self.upsample_method == UpsampleMethod::PixelShuffle {
            self.in_channels >> self.spatial_dims
        } else {
            self.in_channels
        }
    }

    /// The per-axis `[z, y, x]` upsampling factor, or `None` for "lr". PixelShuffle uses
    /// `ratio[0]` on every axis, as MONAI's `UpSample` passes `scale_factor_[0]` to
    /// `SubpixelUpsample`.
    pub fn scale(&self) -> Result<Option<[usize; 3]>, HeadConfigError> {
        if self.resolution == Resolution::Lr {
            return Ok(None);
        }
        let r = self.upsample_ratio.as_ref().ok_or(HeadConfigError::MissingUpsampleRatio)?;
        let d = self.spatial_dims;
        let per_axis: Vec<usize> = match r.len() {
            1 => vec![r[0]; d],
            n if n == d => r.clone(),
            got => return Err(HeadConfigError::UpsampleRatioLength { spatial_dims: d, got }),
        };
        if per_axis.contains(&0) {
            return Err(HeadConfigError::ZeroRatio);
        }
        let per_axis = if self.upsample_method == UpsampleMethod::PixelShuffle { vec![per_axis[0]; d] } else { per_axis };
        Ok(Some(if d == 3 { [per_axis[0], per_axis[1], per_axis[2]] } else { [1, per_axis[0], per_axis[1]] }))
    }

    pub fn validate(&self) -> Result<(), HeadConfigError> {
        if self.spatial_dims != 2 && self.spatial_dims != 3 {
            return Err(HeadConfigError::SpatialDims(self.spatial_dims));
        }
        if self.in_channels == 0 || self.out_channels == 0 {
            return Err(HeadConfigError::ZeroChannels);
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(HeadConfigError::Dropout(self.dropout));
        }
        self.scale()?;
        let c = self.conv_channels();
        if c == 0 {
            return Err(HeadConfigError::PixelShuffleChannels { in_channels: self.in_channels, divisor: 1 << self.spatial_dims });
        }
        if let Some(p) = &self.first_layer {
            p.validate()?;
            if p.mode == ProjectionMode::Learned && (p.in_channels != c || p.out_channels != c) {
                return Err(HeadConfigError::FirstLayerChannels { expected: c, in_channels: p.in_channels, out_channels: p.out_channels });
            }
        }
        Ok(())
    }

    /// Builds the head with torch's default init (ICNR for the pixelshuffle conv, as MONAI),
    /// the weights drawn from `init`.
    pub fn init<B: Backend>(&self, device: &B::Device, init: &Init) -> Result<ResBlocksHead<B>, HeadConfigError> {
        self.validate()?;
        let c = self.conv_channels();
        let k3 = if self.spatial_dims == 3 { [3, 3, 3] } else { [1, 3, 3] };
        let upsample = match self.scale()? {
            None => None,
            Some(scale) => {
                let conv = match self.upsample_method {
                    UpsampleMethod::NonTrainable => None,
                    UpsampleMethod::Deconv => {
                        let mut conv = torch_conv(self.in_channels, c, scale, true, true, device, &init.at("upsample").at("conv"));
                        conv.stride = scale;
                        Some(conv)
                    }
                    UpsampleMethod::PixelShuffle => {
                        let factor = scale.iter().product::<usize>();
                        Some(icnr_conv(self.in_channels, c, factor, k3, device, &init.at("upsample").at("conv")))
                    }
                };
                Some(Upsample { conv, method: self.upsample_method, scale })
            }
        };
        let first_layer = match &self.first_layer {
            Some(p) => Some(p.init(device, &init.at("first_layer"))?),
            None => None,
        };
        let res_blocks = (0..self.n_convs)
            .map(|i| {
                let cin = if self.dense { (i + 1) * c } else { c };
                UnetResBlock::new(cin, c, k3, self.dropout, device, &init.at("res_blocks").at(i.to_string()))
            })
            .collect();
        let out_in = if self.dense { c * (self.n_convs + 1) } else { c };
        let out = UnetOutBlock {
            conv: ConvLayer {
                conv: torch_conv(out_in, self.out_channels, [1, 1, 1], true, false, device, &init.at("out").at("conv").at("conv")),
                dropout: self.dropout,
            },
        };
        Ok(ResBlocksHead { upsample, first_layer, res_blocks, out, final_act: self.final_act, dense: self.dense, in_channels: self.in_channels })
    }
}

/// MONAI's `icnr_init` for the sub-pixel conv: every group of `factor` consecutive output
/// channels (the sub-pixel positions of one output channel) starts from the same
/// kaiming-normal kernel, so the initial upsampling is a nearest-neighbour resize (no
/// checkerboard). Bias: torch's default.
fn icnr_conv<B: Backend>(cin: usize, c: usize, factor: usize, kernel: [usize; 3], device: &B::Device, init: &Init) -> Conv<B> {
    let kvol: usize = kernel.iter().product();
    let fan_in = (cin * kvol).max(1) as f64;
    let base: Tensor<B, 3> = init.at("weight").normal([c, cin, kvol], 0.0, (2.0 / fan_in).sqrt(), device);
    let weight = base.unsqueeze_dim::<4>(1).repeat_dim(1, factor).reshape([c * factor, cin, kernel[0], kernel[1], kernel[2]]);
    let bound = 1.0 / fan_in.sqrt();
    Conv {
        weight: init.at("weight").param(weight),
        bias: Some(init.at("bias").uniform_param([c * factor], -bound, bound, device)),
        stride: [1, 1, 1],
        padding: get_padding(kernel, [1, 1, 1]),
        transposed: false,
    }
}

/// cyto_dl's `ResBlocksHead`. Build with [`ResBlocksHeadConfig::init`], load a cyto_dl
/// checkpoint with [`ResBlocksHead::load_cyto_dl`].
#[derive(Module, Debug)]
pub struct ResBlocksHead<B: Backend> {
    /// Present for "hr" (cyto_dl key `model.upsample.*`).
    pub upsample: Option<Upsample<B>>,
    /// cyto_dl `model.model.0` (Identity by default).
    pub first_layer: Option<ProjectionHead<B>>,
    /// cyto_dl `model.model.1..=n` (dense: `model.model.1.layers{i}`).
    pub res_blocks: Vec<UnetResBlock<B>>,
    /// cyto_dl `model.model.{n+1}` (dense: `model.model.2`).
    pub out: UnetOutBlock<B>,
    #[module(skip)]
    pub final_act: FinalAct,
    /// DenseBlock: each res block's output is concatenated to its input on channels.
    pub dense: bool,
    pub in_channels: usize,
}

impl<B: Backend> ResBlocksHead<B> {
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let mut x = match &self.upsample {
            Some(u) => u.forward(x),
            None => x,
        };
        if let Some(p) = &self.first_layer {
            x = p.forward(x);
        }
        for block in &self.res_blocks {
            x = if self.dense {
                let y = block.forward(x.clone());
                Tensor::cat(vec![x, y], 1)
            } else {
                block.forward(x)
            };
        }
        self.final_act.apply(self.out.forward(x))
    }

    /// [`Self::forward`] after checking the channel count (and a learned first layer's depth).
    pub fn try_forward(&self, x: Tensor<B, 5>) -> Result<Tensor<B, 5>, HeadInputError> {
        let [_, c, ..] = x.dims();
        if c != self.in_channels {
            return Err(HeadInputError::Channels { expected: self.in_channels, got: c });
        }
        if let Some(p) = &self.first_layer {
            let scaled = self.upsample.as_ref().map_or(x.dims()[2], |u| x.dims()[2] * u.scale[0]);
            p.check_depth(scaled)?;
        }
        Ok(self.forward(x))
    }

    /// Our parameter path for a cyto_dl key relative to the head (`model.model.1.conv1.conv.weight`
    /// → `res_blocks.0.conv1.conv.weight`); `None` for keys that are not this head's.
    pub fn cyto_dl_key(&self, key: &str) -> Option<String> {
        resblocks_cyto_dl_key(key, self.res_blocks.len(), self.dense)
    }

    /// Loads the head from a cyto_dl / Lightning state_dict: keys `{prefix}model.*`, where
    /// `prefix` is `task_heads.<head name>.` for a whole checkpoint or `""` for a head's own
    /// state_dict. Keys under the prefix that map to nothing are reported as unexpected (under
    /// their original names). Strict: an error (the head is consumed) unless every parameter
    /// loads and no key is left over.
    pub fn load_cyto_dl(self, dict: &StateDict, prefix: &str, strict: bool) -> Result<(Self, LoadReport), WeightsError> {
        let mut tensors = BTreeMap::new();
        let mut unknown = Vec::new();
        for (key, v) in &dict.tensors {
            let Some(rel) = key.strip_prefix(prefix) else {
                continue;
            };
            match self.cyto_dl_key(rel) {
                Some(ours) => {
                    tensors.insert(ours, v.clone());
                }
                None if rel.starts_with("model.") => unknown.push(key.clone()),
                None => {}
            }
        }
        let mapped = StateDict { tensors, source: dict.source.clone() };
        let options = LoadOptions { strict: false, prefix: Some(String::new()) };
        let (head, mut report) = load_state_dict(self, &mapped, &options)?;
        report.unexpected.extend(unknown);
        report.prefix = Some(prefix.to_string());
        if strict && !report.is_clean() {
            return Err(WeightsError::Strict(report));
        }
        Ok((head, report))
    }
}

/// Arguments of [`ProjectionHead`]: `depth` is the Z size a learned projection reduces.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionConfig {
    pub mode: ProjectionMode,
    pub in_channels: usize,
    pub out_channels: usize,
    pub depth: usize,
}

impl ProjectionConfig {
    pub fn validate(&self) -> Result<(), HeadConfigError> {
        if self.mode == ProjectionMode::Learned {
            if self.in_channels == 0 || self.out_channels == 0 {
                return Err(HeadConfigError::ZeroChannels);
            }
            if self.depth == 0 {
                return Err(HeadConfigError::ZeroDepth);
            }
        }
        Ok(())
    }

    /// Max / Mean have no parameters; Learned gets a torch-default-initialised conv with bias.
    pub fn init<B: Backend>(&self, device: &B::Device, init: &Init) -> Result<ProjectionHead<B>, HeadConfigError> {
        self.validate()?;
        // no padding: the [Z, 1, 1] kernel sees the whole stack once and leaves Z = 1
        let conv = (self.mode == ProjectionMode::Learned)
            .then(|| Conv { padding: [0, 0, 0], ..torch_conv(self.in_channels, self.out_channels, [self.depth, 1, 1], true, false, device, &init.at("conv")) });
        Ok(ProjectionHead { conv, mode: self.mode })
    }
}

/// 3D→2D projection: `[N, C, Z, Y, X]` → `[N, C', 1, Y, X]` (the 2-D layout of this crate).
/// cyto_dl's own `ConvProjectionLayer` (removed Feb 2024) stacked stride-2 `[2,1,1]` MONAI
/// Convolutions with norm and PReLU; Learned is the single-conv equivalent.
#[derive(Module, Debug)]
pub struct ProjectionHead<B: Backend> {
    /// Learned only: weight `[C', C, Z, 1, 1]`, bias `[C']` (keys `conv.weight`, `conv.bias`).
    pub conv: Option<Conv<B>>,
    #[module(skip)]
    pub mode: ProjectionMode,
}

impl<B: Backend> ProjectionHead<B> {
    /// Learned needs Z equal to its depth (see [`Self::try_forward`]); Max / Mean take any Z.
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        match (self.mode, &self.conv) {
            (ProjectionMode::Max, _) => x.max_dim(2),
            (ProjectionMode::Mean, _) => x.mean_dim(2),
            (ProjectionMode::Learned, Some(c)) => c.forward(x),
            // a Learned head always has its conv (ProjectionConfig::init); fall back to max
            (ProjectionMode::Learned, None) => x.max_dim(2),
        }
    }

    /// The Z size a learned projection needs, `None` for max / mean.
    pub fn depth(&self) -> Option<usize> {
        self.conv.as_ref().map(|c| c.weight.dims()[2])
    }

    fn check_depth(&self, z: usize) -> Result<(), HeadInputError> {
        match self.depth() {
            Some(d) if d != z => Err(HeadInputError::Depth { expected: d, got: z }),
            _ => Ok(()),
        }
    }

    /// [`Self::forward`] after checking channels and depth for a learned projection.
    pub fn try_forward(&self, x: Tensor<B, 5>) -> Result<Tensor<B, 5>, HeadInputError> {
        let [_, c, z, ..] = x.dims();
        if let Some(conv) = &self.conv {
            let expected = conv.weight.dims()[1];
            if c != expected {
                return Err(HeadInputError::Channels { expected, got: c });
            }
        }
        self.check_depth(z)?;
        Ok(self.forward(x))
    }
}

/// One task head of a multi-task model. `Base` is cyto_dl's `BaseHead` (identity: the
/// backbone's output is the prediction); the `PhantomData` is only there because burn's
/// `Module` derive takes one-field tuple variants.
// One value per task head, moved rarely: boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Head<B: Backend> {
    Base(PhantomData<B>),
    /// cyto_dl's `GANHead`: tanh of the backbone's output.
    Tanh(PhantomData<B>),
    ResBlocks(ResBlocksHead<B>),
    Projection(ProjectionHead<B>),
}

impl<B: Backend> Head<B> {
    pub fn base() -> Self {
        Head::Base(PhantomData)
    }

    pub fn forward(&self, z: Tensor<B, 5>) -> Tensor<B, 5> {
        match self {
            Head::Base(_) => z,
            Head::Tanh(_) => tanh(z),
            Head::ResBlocks(h) => h.forward(z),
            Head::Projection(h) => h.forward(z),
        }
    }

    pub fn try_forward(&self, z: Tensor<B, 5>) -> Result<Tensor<B, 5>, HeadInputError> {
        match self {
            Head::Base(_) => Ok(z),
            Head::Tanh(_) => Ok(tanh(z)),
            Head::ResBlocks(h) => h.try_forward(z),
            Head::Projection(h) => h.try_forward(z),
        }
    }

    /// Loads this head's weights from a cyto_dl checkpoint's `task_heads.<name>.*` keys
    /// (a projection reads `task_heads.<name>.model.conv.*`). `Base` has nothing to load.
    pub fn load_cyto_dl(self, dict: &StateDict, name: &str, strict: bool) -> Result<(Self, LoadReport), WeightsError> {
        let prefix = format!("task_heads.{name}.");
        match self {
            Head::Base(p) => Ok((Head::Base(p), LoadReport::default())),
            Head::Tanh(p) => Ok((Head::Tanh(p), LoadReport::default())),
            Head::ResBlocks(h) => {
                let (h, r) = h.load_cyto_dl(dict, &prefix, strict)?;
                Ok((Head::ResBlocks(h), r))
            }
            Head::Projection(h) => {
                let options = LoadOptions { strict, prefix: Some(format!("{prefix}model.")) };
                let (h, r) = load_state_dict(h, dict, &options)?;
                Ok((Head::Projection(h), r))
            }
        }
    }
}

/// cyto_dl's `ResBlocksHead` keeps its layers positionally (`model.upsample.*`, and
/// `model.model.<i>.*` for first layer, residual blocks, out block); ours are named.
fn resblocks_cyto_dl_key(key: &str, n_convs: usize, dense: bool) -> Option<String> {
    if let Some(rest) = key.strip_prefix("model.upsample.") {
        let rest = rest.strip_prefix("pixelshuffle.conv_block.").or_else(|| rest.strip_prefix("deconv."))?;
        return Some(format!("upsample.conv.{rest}"));
    }
    let rest = key.strip_prefix("model.model.")?;
    let (idx, rest) = rest.split_once('.')?;
    let idx: usize = idx.parse().ok()?;
    if idx == 0 {
        return Some(format!("first_layer.{rest}"));
    }
    if dense {
        if idx == 1 {
            let (layer, rest) = rest.split_once('.')?;
            let i: usize = layer.strip_prefix("layers")?.parse().ok()?;
            return Some(format!("res_blocks.{i}.{rest}"));
        }
        return (idx == 2).then(|| format!("out.{rest}"));
    }
    if idx <= n_convs {
        Some(format!("res_blocks.{}.{rest}", idx - 1))
    } else if idx == n_convs + 1 {
        Some(format!("out.{rest}"))
    } else {
        None
    }
}

/// Where a key of a cyto_dl head (relative to `task_heads.<name>.`) lands in the [`Head`] the
/// config builds, relative to the head: a whole checkpoint's keys are mapped before loading.
/// `None`: the head has no such parameter (reported as unexpected by the loader).
pub fn cyto_dl_head_key(config: &cytodl_schema::HeadConfig, key: &str) -> Option<String> {
    match config {
        cytodl_schema::HeadConfig::BaseHead(_) | cytodl_schema::HeadConfig::MaskHead(_) | cytodl_schema::HeadConfig::GANHead(_) => None,
        cytodl_schema::HeadConfig::ResBlocksHead(h) => {
            let n_convs = usize::try_from(h.n_convs).ok()?;
            resblocks_cyto_dl_key(key, n_convs, h.dense).map(|k| format!("ResBlocks.{k}"))
        }
        cytodl_schema::HeadConfig::GANHeadResize(h) => {
            let n_convs = usize::try_from(h.n_convs).ok()?;
            resblocks_cyto_dl_key(key, n_convs, h.dense).map(|k| format!("ResBlocks.{k}"))
        }
    }
}

impl FinalAct {
    /// The activation a head config names, for a network of `spatial_dims` (torch's axis of
    /// `torch.nn.Softmax(dim)` counts the `[N, C, (Z,) Y, X]` tensor: a 2-D network's axis 2 is
    /// this crate's axis 3).
    pub fn from_config(c: &cytodl_schema::ActivationConfig, spatial_dims: usize) -> Result<Self, HeadConfigError> {
        use cytodl_schema::ActivationConfig as C;
        Ok(match c {
            C::Identity(_) => FinalAct::Identity,
            C::Sigmoid(_) => FinalAct::Sigmoid,
            C::Tanh(_) => FinalAct::Tanh,
            C::ReLU(_) => FinalAct::ReLU,
            C::Softmax(s) => {
                let rank = spatial_dims as i64 + 2;
                let dim = if s.dim < 0 { s.dim + rank } else { s.dim };
                if !(0..rank).contains(&dim) {
                    return Err(HeadConfigError::SoftmaxDim { dim: s.dim, rank });
                }
                FinalAct::Softmax(if spatial_dims == 2 && dim >= 2 { dim as usize + 1 } else { dim as usize })
            }
        })
    }
}

impl ResBlocksHeadConfig {
    /// The arguments of a `ResBlocksHead` config (`cytodl-schema`).
    pub fn from_config(c: &cytodl_schema::ResBlocksHead) -> Result<Self, HeadConfigError> {
        let count = |v: i64| usize::try_from(v).map_err(|_| HeadConfigError::ZeroChannels);
        let spatial_dims = c.spatial_dims.max(0) as usize;
        Ok(ResBlocksHeadConfig {
            in_channels: count(c.in_channels)?,
            out_channels: count(c.out_channels)?,
            final_act: match &c.final_act {
                Some(a) => FinalAct::from_config(a, spatial_dims)?,
                None => FinalAct::Identity,
            },
            resolution: match c.resolution {
                cytodl_schema::Resolution::Lr => Resolution::Lr,
                cytodl_schema::Resolution::Hr => Resolution::Hr,
            },
            spatial_dims,
            n_convs: count(c.n_convs)?,
            dropout: c.dropout,
            upsample_method: match c.upsample_method {
                cytodl_schema::UpsampleMethod::PixelShuffle => UpsampleMethod::PixelShuffle,
                cytodl_schema::UpsampleMethod::NonTrainable => UpsampleMethod::NonTrainable,
                cytodl_schema::UpsampleMethod::Deconv => UpsampleMethod::Deconv,
            },
            upsample_ratio: c.upsample_ratio.as_ref().map(|r| r.iter().map(|v| (*v).max(0) as usize).collect()),
            first_layer: None,
            dense: c.dense,
        })
    }
}

impl<B: Backend> Head<B> {
    /// The head a config names, its weights drawn from `init`.
    pub fn from_config(c: &cytodl_schema::HeadConfig, device: &B::Device, init: &Init) -> Result<Self, HeadConfigError> {
        Ok(match c {
            // A MaskHead is the identity too; its mask reaches the loss through the task.
            cytodl_schema::HeadConfig::BaseHead(_) | cytodl_schema::HeadConfig::MaskHead(_) => Head::base(),
            cytodl_schema::HeadConfig::ResBlocksHead(h) => Head::ResBlocks(ResBlocksHeadConfig::from_config(h)?.init(device, init)?),
            cytodl_schema::HeadConfig::GANHead(_) => Head::Tanh(PhantomData),
            // cyto_dl's GANHead_resize is a ResBlocksHead's layers with a GAN's losses.
            cytodl_schema::HeadConfig::GANHeadResize(h) => Head::ResBlocks(ResBlocksHeadConfig::from_config(&h.layers())?.init(device, init)?),
        })
    }
}
