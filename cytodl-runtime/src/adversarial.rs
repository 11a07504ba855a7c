//! What a GAN head learns (cyto_dl's `GANHead._calculate_loss` with `Pix2PixHD` / `GANLoss`):
//! the discriminator is trained to tell the real target from the generated one, given the
//! source; the generator to fool it (plus feature matching) and to reconstruct the target.
//!
//! - discriminator: `0.5 · (adv(D(x, y), real) + adv(D(x, ŷ.detach()), fake))`;
//! - generator: `w_GAN · adv(D(x, ŷ), real) + w_FM · FM + w_rec · reconstruction(y, ŷ)`, FM being
//!   the L1 distance of every discriminator layer's activations for ŷ to those (detached) for y.
//!
//! `adv` averages a criterion (vanilla BCE-with-logits, least squares, or Wasserstein's ±mean)
//! of each scale's last output over the first `scales` scales.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::loss::{bce_with_logits_loss, l1_loss, mse_loss, Loss, LossError, Reduction};
use crate::nn::discriminator::{Features, MultiScaleDiscriminator};

/// cyto_dl's `GANLoss` criterion on a discriminator output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Criterion {
    /// `BCEWithLogitsLoss` against a constant label.
    Vanilla { real_label: f64, fake_label: f64 },
    /// `MSELoss` against a constant label.
    LeastSquares { real_label: f64, fake_label: f64 },
    /// `-mean` for real, `+mean` for fake (cyto_dl's `wgangp` has no gradient penalty).
    Wasserstein,
}

impl Criterion {
    fn forward<B: Backend>(self, output: Tensor<B, 5>, real: bool) -> Result<Tensor<B, 1>, LossError> {
        let label = |r: f64, f: f64| output.zeros_like().add_scalar(if real { r } else { f });
        match self {
            Criterion::Vanilla { real_label, fake_label } => bce_with_logits_loss(output.clone(), label(real_label, fake_label), Reduction::Mean, None),
            Criterion::LeastSquares { real_label, fake_label } => mse_loss(output.clone(), label(real_label, fake_label), Reduction::Mean),
            Criterion::Wasserstein => {
                let m = output.mean();
                Ok(if real { m.neg() } else { m })
            }
        }
    }
}

/// The adversarial part of a GAN head's objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GanObjective {
    pub criterion: Criterion,
    /// How many of the discriminator's scales count (Pix2PixHD's `scales`); `None`: all.
    pub scales: Option<usize>,
    /// Weight of the adversarial term of the generator's loss.
    pub gan_weight: f64,
    /// Weight of feature matching (0: none, as for a bare `GANLoss`).
    pub feature_matching_weight: f64,
}

/// A GAN head's whole objective.
#[derive(Debug, Clone, PartialEq)]
pub struct Adversarial {
    /// The head (and target column) it trains.
    pub head: String,
    pub objective: GanObjective,
    /// `reconstruction_loss` and its weight.
    pub reconstruction: Loss,
    pub reconstruction_weight: f64,
    /// cyto_dl's `GANHead_resize` crops target and prediction to their common size first.
    pub crop_to_common: bool,
}

/// Why a GAN objective could not be built or computed.
#[derive(Debug, thiserror::Error)]
pub enum AdversarialError {
    #[error("{0}")]
    Loss(#[from] LossError),
    #[error("Pix2PixHD averages over {scales} scales, the discriminator has {available}")]
    Scales { scales: usize, available: usize },
    #[error("Pix2PixHD loss_weights: unknown weight `{0}` (GAN, FM)")]
    Weight(String),
    #[error("head `{0}` is not a GAN head")]
    NotAGanHead(String),
}

/// Both networks' losses for one batch.
pub struct GanLosses<B: Backend> {
    /// The generator's total (adversarial, feature matching, weighted reconstruction).
    pub generator: Tensor<B, 1>,
    pub discriminator: Tensor<B, 1>,
}

impl GanObjective {
    /// The objective a head config names.
    pub fn from_config(c: &cytodl_schema::GanLossConfig) -> Result<Self, AdversarialError> {
        use cytodl_schema::{GanLossConfig as C, GanMode};
        Ok(match c {
            C::Pix2PixHD(p) => {
                let (mut gan_weight, mut feature_matching_weight) = (1.0, 10.0);
                for (k, v) in p.loss_weights.iter().flat_map(|w| w.0.iter()) {
                    match k.as_str() {
                        "GAN" => gan_weight = *v,
                        "FM" => feature_matching_weight = *v,
                        other => return Err(AdversarialError::Weight(other.to_string())),
                    }
                }
                let scales = usize::try_from(p.scales).ok().filter(|s| *s > 0).ok_or(AdversarialError::Scales { scales: 0, available: 0 })?;
                GanObjective { criterion: Criterion::Vanilla { real_label: 1.0, fake_label: 0.0 }, scales: Some(scales), gan_weight, feature_matching_weight }
            }
            C::GANLoss(g) => {
                let (real_label, fake_label) = (g.target_real_label, g.target_fake_label);
                let criterion = match g.gan_mode {
                    GanMode::Vanilla => Criterion::Vanilla { real_label, fake_label },
                    GanMode::LsGan => Criterion::LeastSquares { real_label, fake_label },
                    GanMode::WganGp => Criterion::Wasserstein,
                };
                GanObjective { criterion, scales: None, gan_weight: 1.0, feature_matching_weight: 0.0 }
            }
        })
    }

    fn scales<B: Backend>(&self, features: &Features<B>) -> Result<usize, AdversarialError> {
        let available = features.len();
        match self.scales {
            Some(s) if s > available || s == 0 => Err(AdversarialError::Scales { scales: s, available }),
            Some(s) => Ok(s),
            None => Ok(available),
        }
    }

    /// The criterion on each counted scale's last output, averaged.
    fn adversarial<B: Backend>(&self, features: &Features<B>, real: bool) -> Result<Tensor<B, 1>, AdversarialError> {
        let n = self.scales(features)?;
        let mut total: Option<Tensor<B, 1>> = None;
        for scale in &features[..n] {
            let Some(last) = scale.last() else { continue };
            let l = self.criterion.forward(last.clone(), real)?;
            total = Some(match total {
                Some(t) => t + l,
                None => l,
            });
        }
        total.map(|t| t.div_scalar(n as f64)).ok_or(AdversarialError::Scales { scales: n, available: features.len() })
    }

    /// The discriminator's loss: real called real, generated called fake.
    pub fn discriminator_loss<B: Backend>(&self, real: &Features<B>, fake: &Features<B>) -> Result<Tensor<B, 1>, AdversarialError> {
        Ok((self.adversarial(real, true)? + self.adversarial(fake, false)?).mul_scalar(0.5))
    }

    /// The generator's adversarial loss: generated called real, plus feature matching against
    /// the real activations (taken as constants).
    pub fn generator_loss<B: Backend>(&self, real: &Features<B>, fake: &Features<B>) -> Result<Tensor<B, 1>, AdversarialError> {
        let adversarial = self.adversarial(fake, true)?.mul_scalar(self.gan_weight);
        if self.feature_matching_weight == 0.0 {
            return Ok(adversarial);
        }
        let n = self.scales(fake)?;
        let mut fm: Option<Tensor<B, 1>> = None;
        for (r, f) in real[..n].iter().zip(&fake[..n]) {
            for (r, f) in r.iter().zip(f) {
                let l = l1_loss(f.clone(), r.clone().detach(), Reduction::Mean)?;
                fm = Some(match fm {
                    Some(t) => t + l,
                    None => l,
                });
            }
        }
        Ok(match fm {
            Some(fm) => adversarial + fm.div_scalar(n as f64).mul_scalar(self.feature_matching_weight),
            None => adversarial,
        })
    }
}

/// `a` and `b` cut to their common spatial size (cyto_dl's `_ensure_same_shape`).
fn crop_common<B: Backend>(a: Tensor<B, 5>, b: Tensor<B, 5>) -> (Tensor<B, 5>, Tensor<B, 5>) {
    let (da, db) = (a.dims(), b.dims());
    let common: Vec<usize> = (2..5).map(|i| da[i].min(db[i])).collect();
    let cut = |t: Tensor<B, 5>| {
        let d = t.dims();
        t.slice([0..d[0], 0..d[1], 0..common[0], 0..common[1], 0..common[2]])
    };
    (cut(a), cut(b))
}

impl Adversarial {
    /// The objective of a GAN head `name`.
    pub fn from_config(name: &str, head: &cytodl_schema::HeadConfig) -> Result<Self, AdversarialError> {
        let (gan_loss, weight) = head.adversarial().ok_or_else(|| AdversarialError::NotAGanHead(name.to_string()))?;
        Ok(Adversarial {
            head: name.to_string(),
            objective: GanObjective::from_config(gan_loss)?,
            reconstruction: Loss::try_from(head.loss())?,
            reconstruction_weight: weight,
            crop_to_common: matches!(head, cytodl_schema::HeadConfig::GANHeadResize(_)),
        })
    }

    /// Target and prediction as the losses compare them.
    pub fn align<B: Backend>(&self, target: Tensor<B, 5>, pred: Tensor<B, 5>) -> (Tensor<B, 5>, Tensor<B, 5>) {
        if self.crop_to_common {
            crop_common(target, pred)
        } else {
            (target, pred)
        }
    }

    /// The generator's loss for `pred` (its gradient reaches the generator through `pred`).
    pub fn generator_loss<B: Backend>(
        &self,
        discriminator: &MultiScaleDiscriminator<B>,
        source: Tensor<B, 5>,
        target: Tensor<B, 5>,
        pred: Tensor<B, 5>,
    ) -> Result<Tensor<B, 1>, AdversarialError> {
        let (target, pred) = self.align(target, pred);
        let real = discriminator.features(source.clone(), target.clone());
        let fake = discriminator.features(source, pred.clone());
        let adversarial = self.objective.generator_loss(&real, &fake)?;
        let reconstruction = self.reconstruction.forward(pred, target)?;
        Ok(adversarial + reconstruction.mul_scalar(self.reconstruction_weight))
    }

    /// The discriminator's loss (`pred` is detached: no gradient reaches the generator).
    pub fn discriminator_loss<B: Backend>(
        &self,
        discriminator: &MultiScaleDiscriminator<B>,
        source: Tensor<B, 5>,
        target: Tensor<B, 5>,
        pred: Tensor<B, 5>,
    ) -> Result<Tensor<B, 1>, AdversarialError> {
        let (target, pred) = self.align(target, pred.detach());
        let real = discriminator.features(source.clone(), target);
        let fake = discriminator.features(source, pred);
        self.objective.discriminator_loss(&real, &fake)
    }

    /// Both losses, for evaluation (no optimizer steps between them, no gradients): the
    /// discriminator sees the real and the generated target once for both.
    pub fn losses<B: Backend>(
        &self,
        discriminator: &MultiScaleDiscriminator<B>,
        source: Tensor<B, 5>,
        target: Tensor<B, 5>,
        pred: Tensor<B, 5>,
    ) -> Result<GanLosses<B>, AdversarialError> {
        let (target, pred) = self.align(target, pred);
        let real = discriminator.features(source.clone(), target.clone());
        let fake = discriminator.features(source, pred.clone());
        let reconstruction = self.reconstruction.forward(pred, target)?;
        let generator = self.objective.generator_loss(&real, &fake)? + reconstruction.mul_scalar(self.reconstruction_weight);
        let discriminator = self.objective.discriminator_loss(&real, &fake)?;
        Ok(GanLosses { generator, discriminator })
    }
}
