//! The rules of cyto_dl's GAN (`cyto_dl.models.im2im.GAN`): one GAN head; a discriminator that
//! takes the source and the target channels and whose last layer still has voxels at the
//! training patch; an optimizer (and a scheduler, when the generator has one) for each role; and
//! what Lightning refuses for manual optimization (gradient clipping, accumulation).

use cytodl_schema::{
    BackboneConfig, Component, DiscriminatorConfig, GanLossConfig, HeadConfig, Map, MultiScaleDiscriminator, OptimizerConfig, PerRole, Resolution,
    SchedulerConfig,
};

use super::{lit, Checker};
use crate::config::node::Value;

/// The generator and discriminator roles of a GAN's optimizers and schedulers.
pub(super) const ROLES: &[&str] = &["generator", "discriminator"];

/// What a GAN logs per split (cyto_dl's `_DEFAULT_METRICS` of `gan.py`).
pub(super) fn metrics() -> Vec<String> {
    ["train", "val"].iter().flat_map(|s| [format!("{s}/loss"), format!("{s}/loss/generator_loss"), format!("{s}/loss/discriminator_loss")]).collect()
}

/// The spatial size after one PatchGAN of `n_layers` (each strided layer: k4 s2 p1 halves,
/// rounding down; the last two k4 s1 p1 layers take one voxel each), or `None` when a layer
/// would be empty. A 2-D axis of size 1 (Z) is not convolved.
fn patchgan_output(size: i64, n_layers: i64) -> Option<i64> {
    let mut s = size;
    for _ in 0..n_layers {
        s = (s + 2 - 4).div_euclid(2) + 1;
        if s < 1 {
            return None;
        }
    }
    for _ in 0..2 {
        s -= 1;
        if s < 1 {
            return None;
        }
    }
    Some(s)
}

impl Checker<'_> {
    /// The rules of a `GAN` model (see the module docs). `patch` is the training patch of the
    /// source image.
    pub(super) fn check_gan(
        &mut self,
        heads: Option<&Map<HeadConfig>>,
        optimizer: Option<&PerRole<OptimizerConfig>>,
        scheduler: Option<&PerRole<SchedulerConfig>>,
        backbone: &Option<BackboneConfig>,
        patch: Option<&[i64]>,
    ) {
        let Some(model) = self.cfg("model") else { return };
        let head = heads.and_then(|h| {
            let at = self.cfg("model.task_heads").unwrap_or(model);
            if h.0.len() != 1 {
                self.err(
                    format!("a GAN has exactly one head, this one has {}", h.0.len()),
                    at,
                    "model.task_heads",
                    Some("cyto_dl asserts \"Only single-head GANs are supported currently\"".into()),
                );
                return None;
            }
            let (name, head) = h.0.iter().next()?;
            if head.adversarial().is_none() {
                let hnode = at.child(name).unwrap_or(at);
                self.err(
                    format!("head `{name}` of a GAN must be a GAN head, found `{}`", head.spec().native),
                    hnode,
                    &format!("model.task_heads.{name}"),
                    Some("use cyto_dl.nn.GANHead (or cyto_dl.nn.GANHead_resize to change the resolution)".into()),
                );
                return None;
            }
            Some((name.clone(), head.clone()))
        });

        if let Some(o) = optimizer {
            if !o.0 .0.contains_key("discriminator") {
                let at = self.cfg("model.optimizer").unwrap_or(model);
                self.err(
                    "a GAN needs an optimizer for its discriminator: `model.optimizer.discriminator`",
                    at,
                    "model.optimizer",
                    Some("add `discriminator: {_partial_: True, _target_: torch.optim.Adam, lr: 0.0001, betas: [0.5, 0.999]}`".into()),
                );
            }
        }
        if let Some(s) = scheduler {
            let (g, d) = (s.0 .0.contains_key("generator"), s.0 .0.contains_key("discriminator"));
            let at = self.cfg("model.lr_scheduler").unwrap_or(model);
            if g != d {
                let (has, lacks) = if g { ("generator", "discriminator") } else { ("discriminator", "generator") };
                self.err(
                    format!("the {has} has a learning-rate scheduler and the {lacks} has none: `model.lr_scheduler.{lacks}`"),
                    at,
                    &format!("model.lr_scheduler.{lacks}"),
                    Some("cyto_dl builds one scheduler per optimizer: give both roles one".into()),
                );
            } else if g {
                self.warn(
                    "cyto_dl's GAN optimizes manually, so Lightning never steps its schedulers (its learning rates stay constant); cytodl steps both once per epoch, as configured",
                    at,
                    "model.lr_scheduler",
                );
            }
        }
        for (key, refuses) in [("gradient_clip_val", "gradient clipping"), ("accumulate_grad_batches", "gradient accumulation")] {
            let Some(n) = self.cfg(&format!("trainer.{key}")) else { continue };
            let set = match &n.value {
                Value::Int(i) => (key == "gradient_clip_val" && *i > 0) || (key == "accumulate_grad_batches" && *i != 1),
                Value::Float(f) => key == "gradient_clip_val" && *f > 0.0,
                _ => false,
            };
            if set {
                self.err(
                    format!("a GAN optimizes manually, and Lightning refuses {refuses} for manual optimization (`trainer.{key}`)"),
                    n,
                    &format!("trainer.{key}"),
                    Some(format!("remove trainer.{key}")),
                );
            }
        }

        let Some(dnode) = self.cfg("model.discriminator") else { return };
        let Some(DiscriminatorConfig::MultiScaleDiscriminator(d)) =
            self.typed_component(&lit(dnode), dnode, "model.discriminator", DiscriminatorConfig::from_args)
        else {
            return;
        };
        let at = |k: &str| dnode.child(k).unwrap_or(dnode);
        for (k, v) in [("n_scales", d.n_scales), ("n_layers", d.n_layers), ("ndf", d.ndf), ("input_nc", d.input_nc)] {
            if v < 1 {
                self.err(format!("{k} must be at least 1, found {v}"), at(k), &format!("model.discriminator.{k}"), None);
            }
        }
        let Some(BackboneConfig::DynUNet(b)) = backbone else { return };
        if d.dim != b.spatial_dims {
            self.err(
                format!("the discriminator has dim = {}, the backbone spatial_dims = {}", d.dim, b.spatial_dims),
                at("dim"),
                "model.discriminator.dim",
                Some(format!("set dim: {}", b.spatial_dims)),
            );
        }
        let Some((name, head)) = head else { return };
        let (head_channels, ratio) = match &head {
            HeadConfig::GANHeadResize(h) => (h.out_channels, (h.resolution == Resolution::Hr).then(|| h.upsample_ratio.clone()).flatten()),
            _ => (b.out_channels, None),
        };
        let wanted = b.in_channels + head_channels;
        if d.input_nc != wanted {
            self.err(
                format!(
                    "the discriminator takes input_nc = {} channels, but it is given the source ({} channels) and head `{name}`'s target ({head_channels}): {wanted}",
                    d.input_nc, b.in_channels
                ),
                at("input_nc"),
                "model.discriminator.input_nc",
                Some(format!("set input_nc: {wanted}")),
            );
        }
        if let Some((gan_loss, _)) = head.adversarial() {
            self.check_gan_loss(gan_loss, &name, &d);
        }
        self.check_patch_fits_discriminator(&d, patch, ratio.as_deref());
    }

    /// Pix2PixHD reads `scales` of the discriminator's scales and weights `GAN` and `FM`.
    fn check_gan_loss(&mut self, loss: &GanLossConfig, head: &str, d: &MultiScaleDiscriminator) {
        let path = format!("model.task_heads.{head}.gan_loss");
        let Some(node) = self.cfg(&path).or_else(|| self.cfg(&format!("model.task_heads.{head}"))) else { return };
        if let GanLossConfig::Pix2PixHD(p) = loss {
            if p.scales < 1 || p.scales > d.n_scales {
                self.err(
                    format!("Pix2PixHD averages over scales = {}, the discriminator has n_scales = {}", p.scales, d.n_scales),
                    node.child("scales").unwrap_or(node),
                    &format!("{path}.scales"),
                    Some(format!("scales must be in 1..={}", d.n_scales)),
                );
            }
            if let Some(w) = &p.loss_weights {
                for k in w.0.keys().filter(|k| *k != "GAN" && *k != "FM") {
                    let at = node.child("loss_weights").unwrap_or(node);
                    self.err(
                        format!("unknown Pix2PixHD loss weight `{k}`"),
                        at,
                        &format!("{path}.loss_weights.{k}"),
                        crate::diag::did_you_mean(k, ["GAN", "FM"]).or_else(|| Some("weights: GAN (adversarial), FM (feature matching)".into())),
                    );
                }
            }
        }
    }

    /// Every scale's last PatchGAN layer must keep at least one voxel of a training patch
    /// (PyTorch fails with "output size is too small" otherwise).
    fn check_patch_fits_discriminator(&mut self, d: &MultiScaleDiscriminator, patch: Option<&[i64]>, ratio: Option<&[i64]>) {
        let Some(patch) = patch else { return };
        let Some(dnode) = self.cfg("model.discriminator") else { return };
        let scaled: Vec<i64> = patch
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let r = match ratio {
                    Some([one]) => *one,
                    Some(r) => r.get(i).copied().unwrap_or(1),
                    None => 1,
                };
                p * r
            })
            .collect();
        let mut sizes = scaled.clone();
        for scale in 0..d.n_scales.max(0) {
            if sizes.iter().any(|s| patchgan_output(*s, d.n_layers).is_none()) {
                self.err(
                    format!(
                        "a training patch of {scaled:?} is too small for the discriminator: at scale {scale} ({sizes:?}) its {} strided layers and two 4-wide layers leave no output",
                        d.n_layers
                    ),
                    dnode.child("n_layers").unwrap_or(dnode),
                    "model.discriminator.n_layers",
                    Some("use fewer n_layers or n_scales, or a larger patch".into()),
                );
                return;
            }
            // AvgPool(3, stride 2, padding 1) between scales: ceil(size / 2).
            sizes = sizes.iter().map(|s| (s + 1) / 2).collect();
        }
    }

    /// GAN heads outside a GAN have no discriminator to train against.
    pub(super) fn check_no_gan_heads(&mut self, heads: &Map<HeadConfig>) {
        for (name, head) in &heads.0 {
            if head.adversarial().is_some() {
                let path = format!("model.task_heads.{name}");
                if let Some(n) = self.cfg(&path) {
                    self.err(
                        format!(
                            "`{}` trains against a discriminator: it needs model `{}`",
                            head.spec().names[0],
                            <cytodl_schema::GAN as Component>::SPEC.names[0]
                        ),
                        n,
                        &path,
                        Some("use a BaseHead or ResBlocksHead here, or make the model a GAN".into()),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::patchgan_output;

    /// torch: Conv(k4, s2, p1) on 16 -> 8; Conv(k4, s1, p1) on 8 -> 7 -> 6 (gan.yaml's Z).
    #[test]
    fn patchgan_sizes_follow_torch_conv_arithmetic() {
        assert_eq!(patchgan_output(16, 1), Some(6));
        assert_eq!(patchgan_output(32, 3), Some(2));
        assert_eq!(patchgan_output(4, 1), None);
        assert_eq!(patchgan_output(1, 1), None);
    }
}
