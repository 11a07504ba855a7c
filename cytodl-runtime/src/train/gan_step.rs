//! cyto_dl's GAN step (`GAN.model_step` with Lightning's manual optimization): per batch one
//! generator forward, then
//! 1. the generator step: its loss (adversarial + feature matching + weighted reconstruction)
//!    backward, the `generator` optimizer steps the backbone and head;
//! 2. the discriminator step: its loss on the real target and the (detached) generated one
//!    backward, the `discriminator` optimizer steps the discriminator.
//!
//! cyto_dl computes both losses before either step; the discriminator's loss reads only the
//! discriminator's weights (which step 1 does not change) and the detached prediction, so
//! computing it after step 1 gives the same value and gradients. Lightning counts two optimizer
//! steps per batch. It never steps a manual model's schedulers; here each role's schedule sets its
//! learning rate per epoch, as configured (the checker warns).

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use indexmap::IndexMap;

use super::error::TrainError;
use super::parallel::{agree_batch, BatchAgreement, Peer};
use super::step::{fp16_autocast, unscaled, Scheduled, StepOutput, TrainingStep};
use crate::data::loader::Batch;
use crate::model::Gan;
use crate::optim::{LossScaler, OptimizerRecord};
use crate::task::{batch_tensor, scalar, Im2Im, Task, TaskError};

/// The GAN's training step: the `generator` and `discriminator` optimizers.
pub struct GanStep<B: AutodiffBackend> {
    pub generator: Scheduled<B>,
    pub discriminator: Scheduled<B>,
    /// fp16 mixed precision's loss scale, shared by both optimizers as Lightning's precision
    /// plugin shares one GradScaler (updated after each optimizer step).
    pub loss_scaler: LossScaler,
    /// The other devices' peer when training data-parallel.
    peer: Option<Peer<B::InnerBackend>>,
}

impl<B: AutodiffBackend> GanStep<B> {
    /// The step of a generator and a discriminator, each with its schedule.
    pub fn new(generator: Scheduled<B>, discriminator: Scheduled<B>) -> Self {
        GanStep { generator, discriminator, loss_scaler: LossScaler::default(), peer: None }
    }

    pub const GENERATOR: &'static str = "generator";
    pub const DISCRIMINATOR: &'static str = "discriminator";
    /// The losses logged per batch, the stepped total first.
    const LOSSES: [&'static str; 3] = ["train/loss", "train/loss/generator_loss", "train/loss/discriminator_loss"];
}

impl<B: AutodiffBackend> TrainingStep<B, Gan<B>> for GanStep<B> {
    fn begin_epoch(&mut self, epoch: u64) -> Result<(), TrainError> {
        self.generator.begin_epoch(epoch)?;
        self.discriminator.begin_epoch(epoch)
    }

    fn step(&mut self, model: Gan<B>, task: &Task, batch: &Batch, _last_of_epoch: bool, device: &B::Device) -> Result<StepOutput<B, Gan<B>>, TrainError> {
        let adv = task.adversarial.as_ref().ok_or_else(|| TaskError::NoDiscriminator(task.heads.first().map(|h| h.0.clone()).unwrap_or_default()))?;
        let x = batch_tensor::<B>(batch, &task.x_key, device)?;
        let predictions = model.forward_heads(x.clone());
        // Both losses first (the discriminator's reads the prediction before the generator
        // steps), so that the peers agree on the batch before anything is applied; a batch
        // without the target is agreed too (as a skip), or the peers' calls would pair wrongly.
        let computed = if batch.samples.iter().any(|s| s.array(&adv.head).is_none()) {
            None
        } else {
            let target = batch_tensor::<B>(batch, &adv.head, device)?;
            let pred = predictions
                .get(&adv.head)
                .cloned()
                .ok_or_else(|| TaskError::NoSuchHead { head: adv.head.clone(), available: predictions.keys().cloned().collect::<Vec<_>>().join(", ") })?;
            let wrap = |source| TaskError::Adversarial { head: adv.head.clone(), source };
            let loss_g = adv.generator_loss(&model.discriminator, x.clone(), target.clone(), pred.clone()).map_err(wrap)?;
            let loss_d = adv.discriminator_loss(&model.discriminator, x, target, pred).map_err(wrap)?;
            Some((loss_g, loss_d))
        };
        let names = Self::LOSSES.map(String::from);
        let local = computed.as_ref().map(|(loss_g, loss_d)| {
            let (g, d) = (scalar(loss_g), scalar(loss_d));
            names.iter().cloned().zip([g, g, d]).collect()
        });
        let agreed = agree_batch(self.peer.as_ref(), &names, local)?;
        let (losses, (loss_g, loss_d)) = match (agreed, computed) {
            (BatchAgreement::NonFinite(value), _) => return Err(TrainError::NonFiniteLoss(value)),
            (BatchAgreement::Losses(losses), Some(computed)) => (losses, computed),
            // Some peer's batch had no target: nobody steps.
            (BatchAgreement::Skip, _) | (BatchAgreement::Losses(_), None) => {
                return Ok(StepOutput { model, losses: IndexMap::new(), predictions, optimizer_steps: 0 })
            }
        };
        let scaling = fp16_autocast();
        let scaled = |l: burn::tensor::Tensor<B, 1>| if scaling { self.loss_scaler.scale_loss(l) } else { l };
        // 1. The generator: its gradient, taken for its own parameters only.
        let grads = GradientsParams::from_grads(scaled(loss_g).backward(), &model.generator);
        // 2. The discriminator's, on the prediction before the generator stepped.
        let d_grads = GradientsParams::from_grads(scaled(loss_d).backward(), &model.discriminator);
        let (grads, d_grads) = match &self.peer {
            Some(peer) => (peer.mean_gradients::<B, _>(&model.generator, grads)?, peer.mean_gradients::<B, _>(&model.discriminator, d_grads)?),
            None => (grads, d_grads),
        };

        let model = match unscaled(&mut self.loss_scaler, scaling, &model.generator, grads) {
            Some(grads) => self.generator.optimizer.step(self.generator.lr, model, grads),
            None => model,
        };
        let model = match unscaled(&mut self.loss_scaler, scaling, &model.discriminator, d_grads) {
            Some(d_grads) => self.discriminator.optimizer.step(self.discriminator.lr, model, d_grads),
            None => model,
        };
        Ok(StepOutput { model, losses, predictions, optimizer_steps: 2 })
    }

    fn optimizer_records(&self) -> Vec<(String, OptimizerRecord)> {
        vec![(Self::GENERATOR.to_string(), self.generator.optimizer.to_record()), (Self::DISCRIMINATOR.to_string(), self.discriminator.optimizer.to_record())]
    }

    fn load_optimizer_records(&mut self, records: &[(String, OptimizerRecord)], model: &Gan<B>) -> Result<(), TrainError> {
        let find = |name: &str| {
            records.iter().find(|(n, _)| n == name).map(|(_, r)| r).ok_or_else(|| {
                let names: Vec<&str> = records.iter().map(|(n, _)| n.as_str()).collect();
                TrainError::Optimizers(format!("the checkpoint has optimizers [{}]; a GAN needs `generator` and `discriminator`", names.join(", ")))
            })
        };
        let (g, d) = (find(Self::GENERATOR)?, find(Self::DISCRIMINATOR)?);
        self.generator.optimizer.load_record(g, model)?;
        self.discriminator.optimizer.load_record(d, model)?;
        Ok(())
    }

    fn join(&mut self, peer: Peer<B::InnerBackend>) {
        self.peer = Some(peer);
    }
}
