//! cyto_dl's GAN family (`cyto_dl/models/im2im/gan.py`): the model, its PatchGAN discriminator,
//! its heads (a generator output with an adversarial and a reconstruction loss) and the
//! adversarial objectives.

use crate::components::loss::{LossConfig, MSELoss};
use crate::components::metric::MetricConfig;
use crate::components::model::{BackboneConfig, HeadConfig, HeadPostprocess, InferenceArgs, MultiTaskIm2Im, PerRole, Resolution, UpsampleMethod};
use crate::components::optim::{OptimizerConfig, SchedulerConfig};
use crate::components::postprocess::ActivationConfig;
use crate::field::{Column, ConfigPath, Map, Raw};
use crate::{choice, component, kind};

component! {
    /// A generator (backbone + one GAN head) trained against a discriminator: each batch a
    /// generator step, then a discriminator step, each with its own optimizer.
    #[kind(Model)]
    #[names("cyto_dl.models.im2im.GAN", "cyto_dl.models.im2im.gan.GAN")]
    pub struct GAN {
        /// the generator's network, whose output feeds the head
        pub backbone: BackboneConfig,
        /// exactly one head (a column) -> a GAN head
        pub task_heads: Map<HeadConfig>,
        /// the network telling real from generated targets, given the source image
        pub discriminator: DiscriminatorConfig,
        /// the input (source) column
        pub x_key: Column,
        /// `{generator: <optimizer>, discriminator: <optimizer>}`
        pub optimizer: PerRole<OptimizerConfig>,
        /// `{generator: <scheduler>, discriminator: <scheduler>}`
        pub lr_scheduler: Option<PerRole<SchedulerConfig>> = None,
        /// sliding-window inference: roi_size, sw_batch_size, overlap, mode, sigma_scale, padding_mode, cval
        pub inference_args: Option<InferenceArgs> = None,
        /// ImageSaver frequency
        pub save_images_every_n_epochs: i64 = 1,
        /// where predict writes `<head>/<input name>`
        pub save_dir: Option<ConfigPath> = None,
        /// `{"<split>/<type>/<head>": <torchmetrics metric>}` logged besides the losses
        pub metrics: Option<Map<MetricConfig>> = None,
    }
    ignored {
        /// (torch.compile) no effect here
        compile: Option<bool> = Some(false) => "the binary is compiled ahead of time",
        /// (Lightning) cyto_dl's GAN always optimizes manually
        automatic_optimization: Option<bool> = Some(false) => "a GAN always takes its generator step, then its discriminator step",
    }
}

impl GAN {
    /// The optimizer of `role` (`generator` or `discriminator`).
    pub fn optimizer(&self, role: &str) -> Option<&OptimizerConfig> {
        self.optimizer.0.get(role)
    }

    /// The scheduler of `role`, when there is one.
    pub fn scheduler(&self, role: &str) -> Option<&SchedulerConfig> {
        self.lr_scheduler.as_ref().and_then(|s| s.0.get(role))
    }

    /// The generator alone, as a supervised model: what predicts, and what its optimizer and
    /// schedule are (cyto_dl's `GAN` is a `MultiTaskIm2Im` with a discriminator added).
    pub fn generator(&self) -> MultiTaskIm2Im {
        MultiTaskIm2Im {
            backbone: self.backbone.clone(),
            task_heads: self.task_heads.clone(),
            x_key: self.x_key.clone(),
            optimizer: generator_only(Some(&self.optimizer)).unwrap_or_default(),
            lr_scheduler: generator_only(self.lr_scheduler.as_ref()),
            inference_args: self.inference_args.clone(),
            save_images_every_n_epochs: self.save_images_every_n_epochs,
            save_dir: self.save_dir.clone(),
            postprocessing: None,
            metrics: self.metrics.clone(),
        }
    }
}

/// The `generator` entry of a per-role mapping, alone.
fn generator_only<T: Clone>(roles: Option<&PerRole<T>>) -> Option<PerRole<T>> {
    roles.and_then(|r| r.0.get("generator").cloned()).map(|g| PerRole(Map::of([("generator", g)])))
}

component! {
    /// Pix2PixHD's multi-scale discriminator: one PatchGAN per scale, the images average-pooled
    /// by 2 between scales; it returns every layer's activations (for feature matching).
    #[kind(Discriminator)]
    #[names("cyto_dl.nn.discriminators.MultiScaleDiscriminator", "cyto_dl.nn.discriminators.multi_scale_discriminator.MultiScaleDiscriminator")]
    pub struct MultiScaleDiscriminator {
        /// how many scales (PatchGANs)
        pub n_scales: i64 = 2,
        /// 2 or 3 (the experiment's spatial_dims)
        pub dim: i64 = 3,
        /// channels in: the source image's plus the target's
        pub input_nc: i64 = 2,
        /// filters of the first layer (later layers multiply it, up to 8x)
        pub ndf: i64 = 64,
        /// strided layers
        pub n_layers: i64 = 3,
    }
    unsupported {
        /// (cyto_dl) instance normalisation is used
        norm_layer: Option<Raw> = None,
        /// (cyto_dl) noise on the discriminator's input: not supported
        noise_annealer: Option<Raw> = None,
    }
}

kind! {
    /// A GAN's discriminator.
    pub enum DiscriminatorConfig: Discriminator {
        MultiScaleDiscriminator,
    }
}

choice! {
    /// The adversarial criterion on the discriminator's output.
    pub enum GanMode {
        /// binary cross-entropy on logits
        Vanilla = "vanilla",
        /// least squares
        LsGan = "lsgan",
        /// Wasserstein: -mean for real, +mean for fake (cyto_dl adds no gradient penalty)
        WganGp = "wgangp",
    }
}

component! {
    /// Pix2PixHD's objective: the adversarial loss (vanilla GAN) on each scale's last output,
    /// and for the generator L1 feature matching of every discriminator layer.
    #[kind(GanLoss)]
    #[names("cyto_dl.nn.losses.Pix2PixHD", "cyto_dl.nn.losses.gan_loss.Pix2PixHD")]
    pub struct Pix2PixHD {
        /// how many of the discriminator's scales are used
        pub scales: i64,
        /// `{GAN: weight, FM: weight}` (default GAN 1, FM 10)
        pub loss_weights: Option<Map<f64>> = None,
    }
}

component! {
    /// The adversarial criterion alone, on each scale's last output, averaged over scales
    /// (no feature matching).
    #[kind(GanLoss)]
    #[names("cyto_dl.nn.losses.GANLoss", "cyto_dl.nn.losses.gan_loss.GANLoss")]
    pub struct GANLoss {
        /// vanilla, lsgan or wgangp
        pub gan_mode: GanMode = GanMode::Vanilla,
        /// the label of real images
        pub target_real_label: f64 = 1.0,
        /// the label of generated images
        pub target_fake_label: f64 = 0.0,
    }
}

kind! {
    /// A GAN head's adversarial objective.
    pub enum GanLossConfig: GanLoss {
        Pix2PixHD,
        GANLoss,
    }
}

/// cyto_dl's default `Pix2PixHD(scales=1)`.
fn pix2pixhd() -> GanLossConfig {
    GanLossConfig::Pix2PixHD(Pix2PixHD { scales: 1, loss_weights: None })
}

/// torch's `MSELoss()`.
fn mse() -> LossConfig {
    LossConfig::MSELoss(MSELoss { reduction: crate::components::loss::Reduction::Mean })
}

component! {
    /// A GAN's output: tanh of the backbone's output, trained by the adversarial objective plus
    /// a weighted reconstruction loss against the target column.
    #[kind(Head)]
    #[names("cyto_dl.nn.GANHead", "cyto_dl.nn.head.GANHead", "cyto_dl.nn.head.gan_head.GANHead")]
    pub struct GANHead {
        /// the adversarial objective
        pub gan_loss: GanLossConfig = pix2pixhd(),
        /// the reconstruction loss against the target
        pub reconstruction_loss: LossConfig = mse(),
        /// the reconstruction loss's weight
        pub reconstruction_loss_weight: f64 = 100.0,
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
    /// A GAN's output through ResBlocksHead's layers (optionally upsampling: GAN
    /// super-resolution), trained like [`GANHead`].
    #[kind(Head)]
    #[names("cyto_dl.nn.GANHead_resize", "cyto_dl.nn.head.GANHead_resize", "cyto_dl.nn.head.gan_head_superres.GANHead_resize")]
    pub struct GANHeadResize {
        /// channels from the backbone
        pub in_channels: i64,
        /// channels out
        pub out_channels: i64,
        /// the adversarial objective
        pub gan_loss: GanLossConfig = pix2pixhd(),
        /// the reconstruction loss against the target
        pub reconstruction_loss: LossConfig = mse(),
        /// the reconstruction loss's weight
        pub reconstruction_loss_weight: f64 = 100.0,
        /// {input: fn, prediction: fn} for saved images
        pub postprocess: Option<HeadPostprocess> = None,
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

impl GANHeadResize {
    /// The same layers as a `ResBlocksHead` (cyto_dl's GANHead_resize inherits them).
    pub fn layers(&self) -> crate::components::model::ResBlocksHead {
        crate::components::model::ResBlocksHead {
            loss: self.reconstruction_loss.clone(),
            postprocess: self.postprocess.clone(),
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            final_act: self.final_act.clone(),
            resolution: self.resolution,
            spatial_dims: self.spatial_dims,
            n_convs: self.n_convs,
            dropout: self.dropout,
            upsample_method: self.upsample_method,
            upsample_ratio: self.upsample_ratio.clone(),
            dense: self.dense,
        }
    }
}
