//! cyto_dl's GAN discriminators (`cyto_dl/nn/discriminators/`), rebuilt on burn:
//! [`PatchGan`] (its `NLayerDiscriminator`) and [`MultiScaleDiscriminator`] (Pix2PixHD's: one
//! PatchGAN per scale, the images average-pooled by 2 between scales). Both return every
//! layer's activations, which Pix2PixHD's feature-matching loss compares.
//!
//! As elsewhere, tensors are 5-D `[N, C, Z, Y, X]` and a 2-D network runs with Z = 1 and
//! kernels `[1, k, k]`. One quirk of cyto_dl is kept on purpose: its PatchGAN always normalises
//! with `InstanceNorm3d`, which takes a 2-D batch `[N, C, Y, X]` for one unbatched volume whose
//! "channels" are the samples, so in 2-D each sample is normalised over all its channels and
//! pixels together ([`Norm::PerSample`]). A model trained by cyto_dl behaves the same here.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Int, Tensor, TensorData};

use super::dynunet::Conv;
use super::init::Init;
use super::leaky_relu::leaky_relu;

/// Invalid discriminator arguments (what cyto_dl's constructors reject).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DiscriminatorConfigError {
    #[error("dim must be 2 or 3, got {0}")]
    Dim(i64),
    #[error("{name} must be at least 1, got {value}")]
    NotPositive { name: &'static str, value: i64 },
}

/// How a PatchGAN layer's activations are normalised (torch's `InstanceNorm3d`, no affine,
/// eps 1e-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Norm {
    /// Per sample and channel over the voxels (a 3-D network).
    #[default]
    PerChannel,
    /// Per sample over its channels and pixels together (a 2-D network; see the module docs).
    PerSample,
}

impl Norm {
    fn apply<B: Backend>(self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        const EPS: f64 = 1e-5;
        match self {
            Norm::PerChannel => super::norm_cpu::instance_norm(x, None, EPS),
            Norm::PerSample => {
                let [n, c, z, y, w] = x.dims();
                let as_channels = x.reshape([1, n, c, z * y, w]);
                super::norm_cpu::instance_norm(as_channels, None, EPS).reshape([n, c, z, y, w])
            }
        }
    }
}

/// One PatchGAN layer: convolution, then (optionally) normalisation, then LeakyReLU(0.2)
/// (the last layer has neither).
#[derive(Module, Debug)]
pub struct PatchGanBlock<B: Backend> {
    pub conv: Conv<B>,
    #[module(skip)]
    pub norm: Option<Norm>,
    #[module(skip)]
    pub activation: bool,
}

impl<B: Backend> PatchGanBlock<B> {
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let mut y = self.conv.forward(x);
        if let Some(norm) = self.norm {
            y = norm.apply(y);
        }
        if self.activation {
            y = leaky_relu(y, 0.2);
        }
        y
    }
}

/// The arguments of cyto_dl's `NLayerDiscriminator` (and of each scale of a
/// `MultiScaleDiscriminator`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatchGanConfig {
    /// Source channels + target channels.
    pub input_nc: usize,
    /// Filters of the first layer.
    pub ndf: usize,
    /// Strided layers.
    pub n_layers: usize,
    /// 2 or 3.
    pub dim: usize,
}

/// A convolution with torch's default init (weight and bias uniform in ±1/√fan_in), kernel 4 and
/// padding 1 along each convolved axis (Y, X; and Z in 3-D).
fn patch_conv<B: Backend>(cin: usize, cout: usize, stride: usize, dim: usize, device: &B::Device, init: &Init) -> Conv<B> {
    let (k, s, p) = if dim == 3 { ([4; 3], [stride; 3], [1; 3]) } else { ([1, 4, 4], [1, stride, stride], [0, 1, 1]) };
    let fan_in = cin * k.iter().product::<usize>();
    let bound = 1.0 / (fan_in as f64).sqrt();
    Conv {
        weight: init.at("weight").uniform_param([cout, cin, k[0], k[1], k[2]], -bound, bound, device),
        bias: Some(init.at("bias").uniform_param([cout], -bound, bound, device)),
        stride: s,
        padding: p,
        transposed: false,
    }
}

impl PatchGanConfig {
    pub fn validate(&self) -> Result<(), DiscriminatorConfigError> {
        if self.dim != 2 && self.dim != 3 {
            return Err(DiscriminatorConfigError::Dim(self.dim as i64));
        }
        for (name, value) in [("input_nc", self.input_nc), ("ndf", self.ndf), ("n_layers", self.n_layers)] {
            if value == 0 {
                return Err(DiscriminatorConfigError::NotPositive { name, value: 0 });
            }
        }
        Ok(())
    }

    /// cyto_dl's layers: conv(s2) + LReLU; `n_layers - 1` × conv(s2) + norm + LReLU with
    /// filters `ndf · min(2^n, 8)`; conv(s1) + norm + LReLU; conv(s1) to one channel.
    pub fn init<B: Backend>(&self, device: &B::Device, init: &Init) -> Result<PatchGan<B>, DiscriminatorConfigError> {
        self.validate()?;
        let norm = if self.dim == 3 { Norm::PerChannel } else { Norm::PerSample };
        let mult = |n: usize| 1usize << n.min(3);
        let block = |i: usize, cin: usize, cout: usize, stride: usize, norm: Option<Norm>, activation: bool| PatchGanBlock {
            conv: patch_conv(cin, cout, stride, self.dim, device, &init.at("blocks").at(i.to_string()).at("conv")),
            norm,
            activation,
        };
        let mut blocks = vec![block(0, self.input_nc, self.ndf, 2, None, true)];
        for n in 1..self.n_layers {
            blocks.push(block(n, self.ndf * mult(n - 1), self.ndf * mult(n), 2, Some(norm), true));
        }
        let n = self.n_layers;
        blocks.push(block(n, self.ndf * mult(n - 1), self.ndf * mult(n), 1, Some(norm), true));
        blocks.push(block(n + 1, self.ndf * mult(n), 1, 1, None, false));
        Ok(PatchGan { blocks })
    }
}

/// cyto_dl's `NLayerDiscriminator`: a fully convolutional critic whose output says, patch by
/// patch, whether the target is real, given the source.
#[derive(Module, Debug)]
pub struct PatchGan<B: Backend> {
    pub blocks: Vec<PatchGanBlock<B>>,
}

impl<B: Backend> PatchGan<B> {
    /// Every block's output for `image` conditioned on `source` (resized to the image's size
    /// by nearest neighbour when they differ, as cyto_dl does for super-resolution).
    pub fn features(&self, image: Tensor<B, 5>, source: Tensor<B, 5>) -> Vec<Tensor<B, 5>> {
        let size = image.dims();
        let source = if source.dims()[2..] != size[2..] { resize_nearest(source, [size[2], size[3], size[4]]) } else { source };
        let mut out: Vec<Tensor<B, 5>> = Vec::with_capacity(self.blocks.len());
        let mut x = Tensor::cat(vec![source, image], 1);
        for block in &self.blocks {
            x = block.forward(x);
            out.push(x.clone());
        }
        out
    }
}

/// Every layer's activations at every scale: `[scale][layer]`.
pub type Features<B> = Vec<Vec<Tensor<B, 5>>>;

/// cyto_dl's `MultiScaleDiscriminator`: a PatchGAN per scale; between scales the image and the
/// (detached) source are average-pooled (kernel 3, stride 2, padding 1, padding not counted).
#[derive(Module, Debug)]
pub struct MultiScaleDiscriminator<B: Backend> {
    pub scales: Vec<PatchGan<B>>,
    /// 2 or 3: which axes pooling halves.
    #[module(skip)]
    pub dim: usize,
}

impl<B: Backend> MultiScaleDiscriminator<B> {
    /// `n_scales` PatchGANs, each drawn from its own stream (`scales.<i>`).
    pub fn new(config: PatchGanConfig, n_scales: usize, device: &B::Device, init: &Init) -> Result<Self, DiscriminatorConfigError> {
        if n_scales == 0 {
            return Err(DiscriminatorConfigError::NotPositive { name: "n_scales", value: 0 });
        }
        let scales = (0..n_scales).map(|s| config.init(device, &init.at("scales").at(s.to_string()))).collect::<Result<_, _>>()?;
        Ok(MultiScaleDiscriminator { scales, dim: config.dim })
    }

    /// The discriminator a config names.
    pub fn from_config(c: &cytodl_schema::DiscriminatorConfig, device: &B::Device, init: &Init) -> Result<Self, DiscriminatorConfigError> {
        let cytodl_schema::DiscriminatorConfig::MultiScaleDiscriminator(d) = c;
        if d.dim != 2 && d.dim != 3 {
            return Err(DiscriminatorConfigError::Dim(d.dim));
        }
        let count =
            |name: &'static str, value: i64| usize::try_from(value).ok().filter(|v| *v > 0).ok_or(DiscriminatorConfigError::NotPositive { name, value });
        let config = PatchGanConfig {
            input_nc: count("input_nc", d.input_nc)?,
            ndf: count("ndf", d.ndf)?,
            n_layers: count("n_layers", d.n_layers)?,
            dim: d.dim as usize,
        };
        Self::new(config, count("n_scales", d.n_scales)?, device, init)
    }

    /// Every scale's layer activations for `image` (a real or a generated target) given
    /// `source` (the generator's input). The source never carries a gradient.
    pub fn features(&self, source: Tensor<B, 5>, image: Tensor<B, 5>) -> Features<B> {
        let mut source = source.detach();
        let mut image = image;
        let mut out = Vec::with_capacity(self.scales.len());
        for (i, scale) in self.scales.iter().enumerate() {
            out.push(scale.features(image.clone(), source.clone()));
            if i + 1 < self.scales.len() {
                source = avg_pool_half(source, self.dim);
                image = avg_pool_half(image, self.dim);
            }
        }
        out
    }
}

/// Where a cyto_dl discriminator key (relative to the discriminator) lands in
/// [`MultiScaleDiscriminator`]: `scales.<s>.blocks.<b>.conv.<p>` is `discriminators.<s>.model.block_<b>.0.<p>`.
pub fn cyto_dl_key(key: &str) -> Option<String> {
    let rest = key.strip_prefix("discriminators.")?;
    let (scale, rest) = rest.split_once('.')?;
    let rest = rest.strip_prefix("model.block_")?;
    let (block, rest) = rest.split_once('.')?;
    let param = rest.strip_prefix("0.")?;
    Some(format!("scales.{scale}.blocks.{block}.conv.{param}"))
}

/// torch's `AvgPool{2,3}d(kernel_size=3, stride=2, padding=1, count_include_pad=False)` over
/// the spatial axes of a `dim`-D network: a box sum by convolution, divided by how many voxels
/// of the image each window covers.
pub fn avg_pool_half<B: Backend>(x: Tensor<B, 5>, dim: usize) -> Tensor<B, 5> {
    let [n, c, z, y, w] = x.dims();
    let device = x.device();
    let (k, s, p) = if dim == 3 { ([3; 3], [2; 3], [1; 3]) } else { ([1, 3, 3], [1, 2, 2], [0, 1, 1]) };
    let ones_kernel = Tensor::<B, 5>::ones([1, 1, k[0], k[1], k[2]], &device);
    let options = || ConvOptions::new(s, p, [1, 1, 1], 1);
    let sums = super::conv::conv3d(x.reshape([n * c, 1, z, y, w]), ones_kernel.clone(), None, options());
    let counts = super::conv::conv3d(Tensor::<B, 5>::ones([1, 1, z, y, w], &device), ones_kernel, None, options());
    let [_, _, oz, oy, ox] = sums.dims();
    (sums / counts).reshape([n, c, oz, oy, ox])
}

/// torch's `F.interpolate(x, size)` (mode `nearest`): output voxel `i` reads input voxel
/// `floor(i · in / out)` along each axis.
pub fn resize_nearest<B: Backend>(x: Tensor<B, 5>, size: [usize; 3]) -> Tensor<B, 5> {
    let device = x.device();
    let mut x = x;
    for (axis, out) in size.into_iter().enumerate() {
        let inp = x.dims()[axis + 2];
        if inp == out {
            continue;
        }
        let scale = inp as f32 / out as f32;
        let idx: Vec<i64> = (0..out).map(|i| ((i as f32 * scale).floor() as i64).min(inp as i64 - 1)).collect();
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [out]), &device);
        x = x.select(axis + 2, idx);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;

    /// cyto_dl's gan.yaml discriminator (n_layers 1, ndf 16) on a [16, 32, 32] patch: torch's
    /// conv arithmetic gives 8x16x16, then 7x15x15, then 6x14x14 outputs.
    #[test]
    fn patchgan_layers_follow_torch_shapes() {
        let device = Default::default();
        let d = MultiScaleDiscriminator::<Cpu>::new(PatchGanConfig { input_nc: 2, ndf: 16, n_layers: 1, dim: 3 }, 2, &device, &Init::new(0)).unwrap();
        let x = Tensor::<Cpu, 5>::zeros([1, 1, 16, 32, 32], &device);
        let f = d.features(x.clone(), x);
        let shapes: Vec<Vec<[usize; 5]>> = f.iter().map(|s| s.iter().map(|t| t.dims()).collect()).collect();
        assert_eq!(shapes[0], vec![[1, 16, 8, 16, 16], [1, 32, 7, 15, 15], [1, 1, 6, 14, 14]]);
        // The second scale sees the pooled image: ceil(n / 2).
        assert_eq!(shapes[1][0], [1, 16, 4, 8, 8]);
    }

    /// Average pooling without counting padding: a constant image stays constant.
    #[test]
    fn pooling_ignores_padding() {
        let device = Default::default();
        let x = Tensor::<Cpu, 5>::ones([2, 3, 1, 5, 6], &device).mul_scalar(4.0);
        let p = avg_pool_half(x, 2);
        assert_eq!(p.dims(), [2, 3, 1, 3, 3]);
        let v = p.into_data().to_vec::<f32>().unwrap();
        assert!(v.iter().all(|v| (v - 4.0).abs() < 1e-6), "{v:?}");
    }

    #[test]
    fn nearest_resize_repeats_voxels() {
        let device = Default::default();
        let x = Tensor::<Cpu, 5>::from_data(TensorData::new(vec![1.0f32, 2.0], [1, 1, 1, 1, 2]), &device);
        let y = resize_nearest(x, [1, 2, 4]);
        assert_eq!(y.into_data().to_vec::<f32>().unwrap(), vec![1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
    }
}
