//! MONAI's `DynUNet` (monai 1.5.2, `monai/networks/nets/dynunet.py` and
//! `monai/networks/blocks/dynunet_block.py`), rebuilt on burn.
//!
//! Everything is 5-D `[N, C, Z, Y, X]`: a 2-D network runs with `Z = 1` and kernels / strides
//! `[1, k, k]`, which computes exactly what the 2-D network computes (a kernel of depth 1 with
//! padding 0 over a depth-1 axis).
//!
//! Module and field names mirror MONAI's `state_dict` (`input_block.conv1.conv.weight`,
//! `downsamples.0.norm1.weight`, `upsamples.2.transp_conv.conv.weight`,
//! `output_block.conv.conv.bias`, ...) so that [`crate::nn::weights`] can load a MONAI / cyto_dl
//! checkpoint by walking the module's parameter paths.
//!
//! Train vs eval follows burn's convention: dropout and deep-supervision heads are active only
//! when the backend records gradients (an `Autodiff` backend); call `model.valid()` for eval.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::module::conv_transpose3d;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Int, Tensor};

use super::init::Init;
use super::leaky_relu::leaky_relu;

/// Errors in a DynUNet configuration (what MONAI raises as `ValueError` / `AssertionError`).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum DynUNetConfigError {
    #[error("spatial_dims must be 2 or 3, got {0}")]
    SpatialDims(usize),
    #[error("length of kernel_size ({kernels}) and strides ({strides}) should be the same, and no less than 3")]
    KernelStrideLength { kernels: usize, strides: usize },
    #[error("upsample_kernel_size needs {expected} entries (len(strides) - 1), got {got}")]
    UpsampleLength { expected: usize, got: usize },
    #[error("{what} of block {index} has {got} values, expected 1 or spatial_dims = {spatial_dims}")]
    PerLevelLength { what: &'static str, index: usize, got: usize, spatial_dims: usize },
    #[error("{what} of block {index} contains 0")]
    Zero { what: &'static str, index: usize },
    #[error("{what} of block {index} is not an int or a list of ints: {value}")]
    NotIntOrList { what: &'static str, index: usize, value: String },
    #[error("{what} must be a list, got {value}")]
    NotList { what: &'static str, value: String },
    #[error("length of filters ({filters}) should be no less than the length of strides ({strides})")]
    FiltersLength { filters: usize, strides: usize },
    #[error("block {index}: kernel {kernel:?} smaller than stride {stride:?} minus 1 gives negative padding")]
    NegativePadding { index: usize, kernel: [usize; 3], stride: [usize; 3] },
    #[error("deep_supr_num ({0}) should be larger than 0 and less than the number of up sample layers ({1})")]
    DeepSuprNum(usize, usize),
    #[error("dropout must be in [0, 1), got {0}")]
    Dropout(f64),
    #[error("in_channels, out_channels and filters must be positive")]
    ZeroChannels,
}

/// One per-level kernel / stride as MONAI accepts it: an int (same on every axis) or a list with
/// one value per spatial axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PerLevel {
    Int(usize),
    List(Vec<usize>),
}

impl From<usize> for PerLevel {
    fn from(v: usize) -> Self {
        PerLevel::Int(v)
    }
}
impl From<Vec<usize>> for PerLevel {
    fn from(v: Vec<usize>) -> Self {
        PerLevel::List(v)
    }
}

impl PerLevel {
    /// To `[z, y, x]`; a 2-D value `[y, x]` (or an int k) becomes `[1, y, x]` (`[1, k, k]`).
    fn expand(&self, spatial_dims: usize, what: &'static str, index: usize) -> Result<[usize; 3], DynUNetConfigError> {
        let v = match self {
            PerLevel::Int(k) if spatial_dims == 3 => [*k, *k, *k],
            PerLevel::Int(k) => [1, *k, *k],
            PerLevel::List(l) if l.len() == spatial_dims && spatial_dims == 3 => [l[0], l[1], l[2]],
            PerLevel::List(l) if l.len() == spatial_dims => [1, l[0], l[1]],
            PerLevel::List(l) => return Err(DynUNetConfigError::PerLevelLength { what, index, got: l.len(), spatial_dims }),
        };
        if v.contains(&0) {
            return Err(DynUNetConfigError::Zero { what, index });
        }
        Ok(v)
    }

    /// Parses a JSON / YAML-as-JSON list such as `[3, [1, 3, 3], 3]` into per-level values.
    pub fn list_from_json(value: &serde_json::Value, what: &'static str) -> Result<Vec<PerLevel>, DynUNetConfigError> {
        let arr = value.as_array().ok_or_else(|| DynUNetConfigError::NotList { what, value: value.to_string() })?;
        arr.iter()
            .enumerate()
            .map(|(index, v)| {
                let bad = || DynUNetConfigError::NotIntOrList { what, index, value: v.to_string() };
                if let Some(k) = v.as_u64() {
                    Ok(PerLevel::Int(k as usize))
                } else if let Some(l) = v.as_array() {
                    l.iter().map(|x| x.as_u64().map(|x| x as usize).ok_or_else(bad)).collect::<Result<Vec<_>, _>>().map(PerLevel::List)
                } else {
                    Err(bad())
                }
            })
            .collect()
    }
}

/// DynUNet hyper-parameters, with per-level kernels / strides already expanded to 3-D
/// (`[1, k, k]` for 2-D networks). Normalisation is MONAI's default `("INSTANCE", {affine: True})`
/// (eps `norm_eps`), activation `LeakyReLU(negative_slope)`.
#[derive(Debug, Clone, PartialEq)]
pub struct DynUNetConfig {
    pub spatial_dims: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel_size: Vec<[usize; 3]>,
    pub strides: Vec<[usize; 3]>,
    /// One per upsampling level (`len(strides) - 1`), in MONAI's order (shallow to deep).
    pub upsample_kernel_size: Vec<[usize; 3]>,
    /// Exactly `len(strides)` values (MONAI truncates longer lists; the constructors do too).
    pub filters: Vec<usize>,
    /// `nn.Dropout` probability applied after every convolution in training mode.
    pub dropout: f64,
    pub res_block: bool,
    pub deep_supervision: bool,
    pub deep_supr_num: usize,
    /// Bias on the transposed convolutions (MONAI `trans_bias`, default false).
    pub trans_bias: bool,
    pub norm_eps: f64,
    pub negative_slope: f64,
}

impl DynUNetConfig {
    /// Builds a config from MONAI-style arguments (ints or per-axis lists per level, filters
    /// `None` for MONAI's default `min(2**(5+i), 320 (3D) / 512 (2D))`), with MONAI's defaults
    /// for the rest (no dropout, basic blocks, no deep supervision) and MONAI's checks.
    pub fn from_monai(
        spatial_dims: usize,
        in_channels: usize,
        out_channels: usize,
        kernel_size: &[PerLevel],
        strides: &[PerLevel],
        upsample_kernel_size: &[PerLevel],
        filters: Option<&[usize]>,
    ) -> Result<Self, DynUNetConfigError> {
        if spatial_dims != 2 && spatial_dims != 3 {
            return Err(DynUNetConfigError::SpatialDims(spatial_dims));
        }
        let expand = |l: &[PerLevel], what| l.iter().enumerate().map(|(i, p)| p.expand(spatial_dims, what, i)).collect::<Result<Vec<_>, _>>();
        let n = strides.len();
        let filters = match filters {
            Some(f) if f.len() < n => return Err(DynUNetConfigError::FiltersLength { filters: f.len(), strides: n }),
            Some(f) => f[..n].to_vec(),
            None => (0..n).map(|i| (1usize << (5 + i)).min(if spatial_dims == 3 { 320 } else { 512 })).collect(),
        };
        let cfg = DynUNetConfig {
            spatial_dims,
            in_channels,
            out_channels,
            kernel_size: expand(kernel_size, "kernel_size")?,
            strides: expand(strides, "strides")?,
            upsample_kernel_size: expand(upsample_kernel_size, "upsample_kernel_size")?,
            filters,
            dropout: 0.0,
            res_block: false,
            deep_supervision: false,
            deep_supr_num: 1,
            trans_bias: false,
            norm_eps: 1e-5,
            negative_slope: 0.01,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn with_res_block(mut self, res_block: bool) -> Self {
        self.res_block = res_block;
        self
    }
    pub fn with_dropout(mut self, dropout: f64) -> Self {
        self.dropout = dropout;
        self
    }
    pub fn with_deep_supervision(mut self, deep_supervision: bool, deep_supr_num: usize) -> Self {
        self.deep_supervision = deep_supervision;
        self.deep_supr_num = deep_supr_num;
        self
    }

    /// MONAI's constructor checks, plus the padding checks MONAI does per block.
    pub fn validate(&self) -> Result<(), DynUNetConfigError> {
        if self.spatial_dims != 2 && self.spatial_dims != 3 {
            return Err(DynUNetConfigError::SpatialDims(self.spatial_dims));
        }
        let n = self.strides.len();
        if self.kernel_size.len() != n || n < 3 {
            return Err(DynUNetConfigError::KernelStrideLength { kernels: self.kernel_size.len(), strides: n });
        }
        if self.upsample_kernel_size.len() != n - 1 {
            return Err(DynUNetConfigError::UpsampleLength { expected: n - 1, got: self.upsample_kernel_size.len() });
        }
        if self.filters.len() != n {
            return Err(DynUNetConfigError::FiltersLength { filters: self.filters.len(), strides: n });
        }
        if self.in_channels == 0 || self.out_channels == 0 || self.filters.contains(&0) {
            return Err(DynUNetConfigError::ZeroChannels);
        }
        for (what, l) in [("kernel_size", &self.kernel_size), ("strides", &self.strides), ("upsample_kernel_size", &self.upsample_kernel_size)] {
            for (index, v) in l.iter().enumerate() {
                if v.contains(&0) {
                    return Err(DynUNetConfigError::Zero { what, index });
                }
            }
        }
        for (i, (k, s)) in self.kernel_size.iter().zip(&self.strides).enumerate() {
            // main conv (k, s) and the residual 1x1 conv (1, s) both need k - s + 1 >= 0
            if (0..3).any(|d| k[d] + 1 < s[d]) || (self.res_block && (0..3).any(|d| 2 < s[d])) {
                return Err(DynUNetConfigError::NegativePadding { index: i, kernel: *k, stride: *s });
            }
        }
        if self.deep_supervision && (self.deep_supr_num < 1 || self.deep_supr_num >= n - 1) {
            return Err(DynUNetConfigError::DeepSuprNum(self.deep_supr_num, n - 1));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(DynUNetConfigError::Dropout(self.dropout));
        }
        Ok(())
    }

    /// Builds the network with MONAI's initialisation (Kaiming-normal, a = 0.01, on every
    /// convolution weight; zero biases; norm weight 1 / bias 0), the weights drawn from `init`
    /// (one stream per parameter path).
    pub fn init<B: Backend>(&self, device: &B::Device, init: &Init) -> Result<DynUNet<B>, DynUNetConfigError> {
        self.validate()?;
        let c = self;
        let f = &c.filters;
        let n = c.strides.len();
        let block = |i: usize, cin: usize, cout: usize, init: Init| UnetBlock::new(c, cin, cout, c.kernel_size[i], c.strides[i], c.res_block, device, &init);
        let input_block = block(0, c.in_channels, f[0], init.at("input_block"));
        let downsamples = (1..n - 1).map(|i| block(i, f[i - 1], f[i], init.at("downsamples").at((i - 1).to_string()))).collect();
        let bottleneck = block(n - 1, f[n - 2], f[n - 1], init.at("bottleneck"));
        // MONAI: upsamples[j] for level i = n-1-j maps filters[i] -> filters[i-1] with
        // kernel_size[i] and upsample_kernel_size[i-1] (kernel = stride of the transposed conv).
        let upsamples = (1..n)
            .rev()
            .enumerate()
            .map(|(j, i)| UnetUpBlock::new(c, f[i], f[i - 1], c.kernel_size[i], c.upsample_kernel_size[i - 1], device, &init.at("upsamples").at(j.to_string())))
            .collect();
        let output_block = UnetOutBlock::new(c, f[0], device, &init.at("output_block"));
        let deep_supervision_heads = if c.deep_supervision {
            (0..c.deep_supr_num).map(|i| UnetOutBlock::new(c, f[i + 1], device, &init.at("deep_supervision_heads").at(i.to_string()))).collect()
        } else {
            Vec::new()
        };
        Ok(DynUNet { input_block, downsamples, bottleneck, upsamples, output_block, deep_supervision_heads, deep_supervision: c.deep_supervision })
    }
}

/// MONAI `get_padding`: `(k - s + 1) // 2` per axis (callers checked it is not negative).
pub fn get_padding(kernel: [usize; 3], stride: [usize; 3]) -> [usize; 3] {
    std::array::from_fn(|d| (kernel[d] + 1).saturating_sub(stride[d]) / 2)
}

/// MONAI `get_output_padding`: `2p + s - k` per axis (0 for DynUNet's kernel == stride).
pub fn get_output_padding(kernel: [usize; 3], stride: [usize; 3], padding: [usize; 3]) -> [usize; 3] {
    std::array::from_fn(|d| (2 * padding[d] + stride[d]).saturating_sub(kernel[d]))
}

/// A torch `ConvNd` / `ConvTransposeNd`: `weight` is `[out, in, kz, ky, kx]` for a convolution and
/// `[in, out, kz, ky, kx]` for a transposed one (torch's layouts, so weights load unchanged).
#[derive(Module, Debug)]
pub struct Conv<B: Backend> {
    pub weight: Param<Tensor<B, 5>>,
    pub bias: Option<Param<Tensor<B, 1>>>,
    pub stride: [usize; 3],
    pub padding: [usize; 3],
    pub transposed: bool,
}

impl<B: Backend> Conv<B> {
    // MONAI's `get_conv_layer` arguments, one for one.
    #[allow(clippy::too_many_arguments)]
    fn new(cin: usize, cout: usize, kernel: [usize; 3], stride: [usize; 3], bias: bool, transposed: bool, device: &B::Device, init: &Init) -> Self {
        let shape = if transposed { [cin, cout, kernel[0], kernel[1], kernel[2]] } else { [cout, cin, kernel[0], kernel[1], kernel[2]] };
        // torch's kaiming_normal_(a=0.01, mode="fan_in") takes fan_in from weight dim 1 (for a
        // transposed conv that is out_channels) times the kernel volume.
        let fan_in = shape[1] * kernel.iter().product::<usize>();
        let gain = (2.0 / (1.0 + 0.01f64 * 0.01)).sqrt();
        let std = gain / (fan_in as f64).sqrt();
        let weight = init.at("weight").normal_param(shape, 0.0, std, device);
        let bias = bias.then(|| init.at("bias").param(Tensor::zeros([cout], device)));
        let padding = if transposed { [0; 3] } else { get_padding(kernel, stride) };
        Conv { weight, bias, stride, padding, transposed }
    }

    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let bias = self.bias.as_ref().map(|b| b.val());
        let (transposed, stride, padding) = (self.transposed, self.stride, self.padding);
        super::autocast::conv(x, self.weight.val(), bias, |x, weight, bias| {
            #[cfg(feature = "libtorch")]
            if transposed {
                if let Some(y) = super::torch_autograd::conv_transpose3d(&x, &weight, bias.as_ref(), stride) {
                    return y;
                }
            }
            #[cfg(any(feature = "cuda", feature = "wgpu"))]
            if transposed && !transposed_as_gemm::<B>() {
                if let Some(y) = super::conv_transpose_gpu::conv_transpose3d(&x, &weight, bias.as_ref(), stride) {
                    return y;
                }
            }
            if transposed && !transposed_as_gemm::<B>() {
                // On GPU backends burn's matmul may round f32 to TF32 on tensor cores; its direct
                // transposed-convolution kernel computes in f32.
                conv_transpose3d(x, weight, bias, ConvTransposeOptions::new(stride, [0; 3], [0; 3], [1; 3], 1))
            } else if transposed {
                transposed_conv_kernel_eq_stride(x, weight, bias)
            } else {
                super::conv::conv3d(x, weight, bias, ConvOptions::new(stride, padding, [1, 1, 1], 1))
            }
        })
    }
}

/// Whether transposed convolutions run as one `matmul`: on the CPU backends (exact f32), and on
/// the GPU backends when convolutions already use tensor cores (`CYTODL_GPU_CONV=implicit-gemm`:
/// CubeCL's CUDA matmul rounds f32 operands to TF32 as those convolutions do).
fn transposed_as_gemm<B: Backend>() -> bool {
    use crate::backend::{Cpu, CpuTrain};
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    if super::conv_gpu::GpuConv::current() == super::conv_gpu::GpuConv::ImplicitGemm {
        return true;
    }
    super::flex_kernel::is::<B, Cpu>() || super::flex_kernel::is::<B, CpuTrain>()
}

/// A transposed convolution whose kernel equals its stride (always so in DynUNet: MONAI sets
/// the stride to `upsample_kernel_size`, padding 0, output padding 0). The output blocks do not
/// overlap, so it is one GEMM followed by a depth-to-space shuffle: exact, differentiable
/// through plain tensor ops, and much faster than burn's direct `conv_transpose3d`.
pub fn transposed_conv_kernel_eq_stride<B: Backend>(x: Tensor<B, 5>, weight: Tensor<B, 5>, bias: Option<Tensor<B, 1>>) -> Tensor<B, 5> {
    let [n, cin, d, h, w] = x.dims();
    let [_, cout, kz, ky, kx] = weight.dims();
    let kvol = cout * kz * ky * kx;
    // [Cin, Cout*k] -> [1, Cout*k, Cin] @ [N, Cin, DHW] = [N, Cout*k, DHW]
    let wt = weight.reshape([cin, kvol]).transpose().unsqueeze_dim::<3>(0);
    let y = wt.matmul(x.reshape([n, cin, d * h * w]));
    let y = y.reshape([n, cout, kz, ky, kx, d, h, w]).permute([0, 1, 5, 2, 6, 3, 7, 4]).reshape([n, cout, d * kz, h * ky, w * kx]);
    match bias {
        Some(b) => y + b.reshape([1, cout, 1, 1, 1]),
        None => y,
    }
}

/// MONAI's `Convolution` wrapper as DynUNet uses it: the torch conv (key `conv`) followed, in
/// training mode, by `nn.Dropout` (MONAI adds it whenever `dropout` is not None).
#[derive(Module, Debug)]
pub struct ConvLayer<B: Backend> {
    pub conv: Conv<B>,
    pub dropout: f64,
}

impl<B: Backend> ConvLayer<B> {
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let y = self.conv.forward(x);
        super::noise::dropout(y, self.dropout)
    }
}

/// `InstanceNorm3d(affine=True)`: per-sample, per-channel normalisation with biased variance.
/// Keys `weight` / `bias` as in torch (burn-store would call them gamma / beta).
#[derive(Module, Debug)]
pub struct InstanceNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub bias: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: Backend> InstanceNorm<B> {
    fn new(channels: usize, eps: f64, device: &B::Device, init: &Init) -> Self {
        InstanceNorm { weight: init.at("weight").param(Tensor::ones([channels], device)), bias: init.at("bias").param(Tensor::zeros([channels], device)), eps }
    }

    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        super::norm_cpu::instance_norm(x, Some((self.weight.val(), self.bias.val())), self.eps)
    }
}

/// `UnetResBlock` (when `conv3` / `norm3` are present or `residual` is set) or `UnetBasicBlock`.
#[derive(Module, Debug)]
pub struct UnetBlock<B: Backend> {
    pub conv1: ConvLayer<B>,
    pub conv2: ConvLayer<B>,
    /// Residual projection: 1x1 conv with the block's stride, used when in != out or stride != 1.
    pub conv3: Option<ConvLayer<B>>,
    pub norm1: InstanceNorm<B>,
    pub norm2: InstanceNorm<B>,
    pub norm3: Option<InstanceNorm<B>>,
    pub residual: bool,
    pub negative_slope: f64,
}

impl<B: Backend> UnetBlock<B> {
    // MONAI's `UnetBasicBlock` / `UnetResBlock` arguments, one for one.
    #[allow(clippy::too_many_arguments)]
    fn new(c: &DynUNetConfig, cin: usize, cout: usize, kernel: [usize; 3], stride: [usize; 3], residual: bool, device: &B::Device, init: &Init) -> Self {
        let layer = |name: &str, cin, k, s| ConvLayer { conv: Conv::new(cin, cout, k, s, false, false, device, &init.at(name).at("conv")), dropout: c.dropout };
        let project = residual && (cin != cout || stride != [1, 1, 1]);
        UnetBlock {
            conv1: layer("conv1", cin, kernel, stride),
            conv2: layer("conv2", cout, kernel, [1, 1, 1]),
            conv3: project.then(|| layer("conv3", cin, [1, 1, 1], stride)),
            norm1: InstanceNorm::new(cout, c.norm_eps, device, &init.at("norm1")),
            norm2: InstanceNorm::new(cout, c.norm_eps, device, &init.at("norm2")),
            norm3: project.then(|| InstanceNorm::new(cout, c.norm_eps, device, &init.at("norm3"))),
            residual,
            negative_slope: c.negative_slope,
        }
    }

    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let out = self.conv1.forward(x.clone());
        let out = leaky_relu(self.norm1.forward(out), self.negative_slope);
        let out = self.norm2.forward(self.conv2.forward(out));
        let out = if self.residual {
            let mut res = x;
            if let Some(c3) = &self.conv3 {
                res = c3.forward(res);
            }
            if let Some(n3) = &self.norm3 {
                res = n3.forward(res);
            }
            out + res
        } else {
            out
        };
        leaky_relu(out, self.negative_slope)
    }
}

/// `UnetUpBlock`: transposed conv (kernel = stride = upsample kernel), concat the skip on the
/// channel axis (upsampled first), then a basic block.
#[derive(Module, Debug)]
pub struct UnetUpBlock<B: Backend> {
    pub transp_conv: ConvLayer<B>,
    pub conv_block: UnetBlock<B>,
}

impl<B: Backend> UnetUpBlock<B> {
    fn new(c: &DynUNetConfig, cin: usize, cout: usize, kernel: [usize; 3], up_kernel: [usize; 3], device: &B::Device, init: &Init) -> Self {
        UnetUpBlock {
            transp_conv: ConvLayer {
                conv: Conv::new(cin, cout, up_kernel, up_kernel, c.trans_bias, true, device, &init.at("transp_conv").at("conv")),
                dropout: c.dropout,
            },
            conv_block: UnetBlock::new(c, 2 * cout, cout, kernel, [1, 1, 1], false, device, &init.at("conv_block")),
        }
    }

    pub fn forward(&self, x: Tensor<B, 5>, skip: Tensor<B, 5>) -> Tensor<B, 5> {
        let up = self.transp_conv.forward(x);
        self.conv_block.forward(Tensor::cat(vec![up, skip], 1))
    }
}

/// `UnetOutBlock`: 1x1 conv with bias.
#[derive(Module, Debug)]
pub struct UnetOutBlock<B: Backend> {
    pub conv: ConvLayer<B>,
}

impl<B: Backend> UnetOutBlock<B> {
    fn new(c: &DynUNetConfig, cin: usize, device: &B::Device, init: &Init) -> Self {
        UnetOutBlock {
            conv: ConvLayer {
                conv: Conv::new(cin, c.out_channels, [1, 1, 1], [1, 1, 1], true, false, device, &init.at("conv").at("conv")),
                dropout: c.dropout,
            },
        }
    }
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        self.conv.forward(x)
    }
}

/// MONAI's DynUNet. Build it with [`DynUNetConfig::init`]; load weights with
/// [`crate::nn::weights`].
#[derive(Module, Debug)]
pub struct DynUNet<B: Backend> {
    pub input_block: UnetBlock<B>,
    pub downsamples: Vec<UnetBlock<B>>,
    pub bottleneck: UnetBlock<B>,
    /// Deepest first, as in MONAI.
    pub upsamples: Vec<UnetUpBlock<B>>,
    pub output_block: UnetOutBlock<B>,
    pub deep_supervision_heads: Vec<UnetOutBlock<B>>,
    pub deep_supervision: bool,
}

impl<B: Backend> DynUNet<B> {
    /// The segmentation output `[N, out_channels, Z', Y', X']` (spatial size = input / strides[0]).
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        self.forward_impl(x, false).0
    }

    /// The output plus, in training mode with deep supervision, the supervision heads
    /// (`heads[j]` from the upsample output at level `j + 1`) resized to the output size with
    /// torch's default `nearest` interpolation: MONAI's `torch.stack(out_all, dim=1)` unstacked.
    /// Empty heads in eval mode or without deep supervision (MONAI then returns `out` alone).
    pub fn forward_with_heads(&self, x: Tensor<B, 5>) -> (Tensor<B, 5>, Vec<Tensor<B, 5>>) {
        let want = self.deep_supervision && B::ad_enabled(&x.device());
        self.forward_impl(x, want)
    }

    /// MONAI's training-mode return value: `[N, 1 + deep_supr_num, C, Z, Y, X]`
    /// (`[N, 1, C, ...]` without deep supervision or in eval mode).
    pub fn forward_stacked(&self, x: Tensor<B, 5>) -> Tensor<B, 6> {
        let (out, heads) = self.forward_with_heads(x);
        let all: Vec<Tensor<B, 6>> = std::iter::once(out).chain(heads).map(|t| t.unsqueeze_dim(1)).collect();
        Tensor::cat(all, 1)
    }

    fn forward_impl(&self, x: Tensor<B, 5>, want_heads: bool) -> (Tensor<B, 5>, Vec<Tensor<B, 5>>) {
        let mut skips = Vec::with_capacity(self.downsamples.len() + 1);
        let mut h = self.input_block.forward(x);
        for down in &self.downsamples {
            skips.push(h.clone());
            h = down.forward(h);
        }
        skips.push(h.clone());
        h = self.bottleneck.forward(h);
        let levels = self.upsamples.len();
        let mut level_outputs: Vec<Option<Tensor<B, 5>>> = vec![None; levels];
        for (j, up) in self.upsamples.iter().enumerate() {
            let level = levels - 1 - j;
            h = up.forward(h, skips[level].clone());
            if want_heads && level >= 1 && level <= self.deep_supervision_heads.len() {
                level_outputs[level] = Some(h.clone());
            }
        }
        let out = self.output_block.forward(h);
        let mut heads = Vec::new();
        if want_heads {
            let size = out.dims();
            for (i, head) in self.deep_supervision_heads.iter().enumerate() {
                if let Some(feat) = level_outputs[i + 1].take() {
                    heads.push(interpolate_nearest(head.forward(feat), [size[2], size[3], size[4]]));
                }
            }
        }
        (out, heads)
    }
}

/// torch `F.interpolate(mode="nearest")` on the three spatial axes: source index
/// `floor(dst * in / out)`, done with index selects so it stays differentiable.
pub fn interpolate_nearest<B: Backend>(x: Tensor<B, 5>, size: [usize; 3]) -> Tensor<B, 5> {
    let mut x = x;
    for (axis, &out) in size.iter().enumerate() {
        let dim = axis + 2;
        let inp = x.dims()[dim];
        if inp == out {
            continue;
        }
        let scale = inp as f32 / out as f32;
        let idx: Vec<i64> = (0..out).map(|o| ((o as f32 * scale).floor() as i64).min(inp as i64 - 1)).collect();
        let idx = Tensor::<B, 1, Int>::from_data(burn::tensor::TensorData::new(idx, [out]), &x.device());
        x = x.select(dim, idx);
    }
    x
}
/// A DynUNet config (`cytodl-schema`, MONAI's arguments) with MONAI's checks.
impl TryFrom<&cytodl_schema::DynUNet> for DynUNetConfig {
    type Error = DynUNetConfigError;

    fn try_from(b: &cytodl_schema::DynUNet) -> Result<Self, DynUNetConfigError> {
        let level = |l: &cytodl_schema::IntOrInts| match l {
            cytodl_schema::IntOrInts::One(v) => PerLevel::Int((*v).max(0) as usize),
            cytodl_schema::IntOrInts::Many(v) => PerLevel::List(v.iter().map(|x| (*x).max(0) as usize).collect()),
        };
        let levels = |l: &cytodl_schema::Levels| l.0.iter().map(level).collect::<Vec<_>>();
        let filters: Option<Vec<usize>> = b.filters.as_ref().map(|f| f.iter().map(|v| (*v).max(0) as usize).collect());
        let mut cfg = DynUNetConfig::from_monai(
            b.spatial_dims.max(0) as usize,
            b.in_channels.max(0) as usize,
            b.out_channels.max(0) as usize,
            &levels(&b.kernel_size),
            &levels(&b.strides),
            &levels(&b.upsample_kernel_size),
            filters.as_deref(),
        )?
        .with_res_block(b.res_block)
        .with_dropout(b.dropout.unwrap_or(0.0))
        .with_deep_supervision(b.deep_supervision, b.deep_supr_num.max(0) as usize);
        cfg.trans_bias = b.trans_bias;
        cfg.validate()?;
        Ok(cfg)
    }
}
