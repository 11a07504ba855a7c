//! What the trainer does with one training batch: Lightning's `training_step` together with the
//! optimizer steps that follow it.
//!
//! The trainer ([`super::trainer::Trainer`]) owns the loop — epochs, batches, validation,
//! logging, checkpoints, early stopping — and hands every batch to a [`TrainingStep`]. The step
//! owns the optimizers and their schedules, *by name*, and decides how many forward / backward
//! passes and optimizer steps a batch takes. [`Supervised`] is cyto_dl's multi-task im2im step:
//! one optimizer (`optimizer`), one backward per batch, gradient accumulation. cyto_dl's GAN
//! (`model.optimizer.generator` / `model.optimizer.discriminator`, a generator step then a
//! discriminator step per batch) is another implementation of the same trait; the trainer and the
//! checkpoint format (one optimizer record per name) do not change for it: it is
//! [`super::gan_step::GanStep`].

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use indexmap::IndexMap;

use super::error::TrainError;
use super::parallel::{agree_batch, BatchAgreement, Peer};
use crate::data::loader::Batch;
use crate::optim::{GradAccumulator, LossScaler, Optimizer, OptimizerRecord, Scheduler};
use crate::task::{batch_losses, scalar, Im2Im, Task};

/// What one batch produced.
pub struct StepOutput<B: AutodiffBackend, M> {
    /// The model after this batch's optimizer steps (unchanged while gradients accumulate).
    pub model: M,
    /// Named losses of the batch (`train/loss`, `train/loss/<head>`, ...), as logged; empty
    /// when no head had a target in the batch.
    pub losses: IndexMap<String, f64>,
    /// Every head's prediction, for the image saver.
    pub predictions: IndexMap<String, Tensor<B, 5>>,
    /// How many optimizer steps the batch took (Lightning's `global_step` counts optimizer
    /// steps: 1 per batch for a supervised model, 2 for a GAN, 0 while gradients accumulate).
    pub optimizer_steps: u64,
}

/// One training batch's forward, backward and optimizer steps.
pub trait TrainingStep<B: AutodiffBackend, M> {
    /// Sets every optimizer's learning rate (and momentum) for `epoch`: cyto_dl steps its
    /// schedulers once per epoch.
    fn begin_epoch(&mut self, epoch: u64) -> Result<(), TrainError>;

    /// Trains on one batch. `last_of_epoch` flushes accumulated gradients. A non-finite loss
    /// is [`TrainError::NonFiniteLoss`], with the model untouched.
    fn step(&mut self, model: M, task: &Task, batch: &Batch, last_of_epoch: bool, device: &B::Device) -> Result<StepOutput<B, M>, TrainError>;

    /// Every optimizer's state by name, for checkpoints.
    fn optimizer_records(&self) -> Vec<(String, OptimizerRecord)>;

    /// Restores optimizer states saved by [`TrainingStep::optimizer_records`]. A record list
    /// with one unnamed entry (a checkpoint of format version 1) fits a step with one
    /// optimizer.
    fn load_optimizer_records(&mut self, records: &[(String, OptimizerRecord)], model: &M) -> Result<(), TrainError>;

    /// Trains data-parallel from now on: every batch's outcome is agreed with the other peers
    /// ([`agree_batch`]) and every optimizer's gradients are averaged over them
    /// ([`Peer::mean_gradients`]) before it steps (and before clipping).
    fn join(&mut self, peer: Peer<B::InnerBackend>);
}

/// An optimizer with its learning-rate schedule, and the learning rate of the current epoch (one
/// per role: the supervised step has one, the GAN step two).
pub struct Scheduled<B: AutodiffBackend> {
    pub optimizer: Optimizer<B>,
    pub scheduler: Scheduler,
    pub(crate) lr: f64,
}

impl<B: AutodiffBackend> Scheduled<B> {
    pub fn new(optimizer: Optimizer<B>, scheduler: Scheduler) -> Self {
        let lr = scheduler.base_lr();
        Scheduled { optimizer, scheduler, lr }
    }

    /// Sets the learning rate (and momentum) of `epoch`: cyto_dl steps its schedulers once per
    /// epoch.
    pub fn begin_epoch(&mut self, epoch: u64) -> Result<(), TrainError> {
        self.lr = self.scheduler.lr_at(epoch)?;
        if let Some(m) = self.scheduler.momentum_at(epoch)? {
            self.optimizer.set_momentum(m)?;
        }
        Ok(())
    }
}

/// Whether this thread's convolutions compute in fp16 (`precision: 16-mixed`), whose gradients
/// need loss scaling ([`LossScaler`]); bf16 has f32's exponent range and needs none.
pub(crate) fn fp16_autocast() -> bool {
    crate::nn::autocast::compute_dtype() == Some(burn::tensor::FloatDType::F16)
}

/// The gradients to step on: unscaled when `scaling`, `None` when they overflowed and the step
/// is skipped (GradScaler's `step`; Lightning still counts it as an optimizer step).
pub(crate) fn unscaled<B: AutodiffBackend, M: AutodiffModule<B>>(
    scaler: &mut LossScaler,
    scaling: bool,
    model: &M,
    grads: GradientsParams,
) -> Option<GradientsParams> {
    if scaling {
        scaler.unscale::<B, M>(model, grads)
    } else {
        Some(grads)
    }
}

/// cyto_dl's multi-task im2im step: the heads' losses summed, one backward, one optimizer.
pub struct Supervised<B: AutodiffBackend> {
    pub optimizer: Scheduled<B>,
    /// Lightning's `accumulate_grad_batches`.
    pub accumulate_grad_batches: usize,
    accumulator: GradAccumulator<B>,
    /// fp16 mixed precision's loss scale (used only while convolutions compute in fp16).
    pub loss_scaler: LossScaler,
    /// The other devices' peer when training data-parallel.
    peer: Option<Peer<B::InnerBackend>>,
}

impl<B: AutodiffBackend> Supervised<B> {
    /// The optimizer's name in checkpoints (cyto_dl's `model.optimizer`).
    pub const OPTIMIZER: &'static str = "optimizer";

    pub fn new(optimizer: Optimizer<B>, scheduler: Scheduler, accumulate_grad_batches: usize) -> Self {
        Supervised {
            optimizer: Scheduled::new(optimizer, scheduler),
            accumulate_grad_batches: accumulate_grad_batches.max(1),
            accumulator: GradAccumulator::new(),
            loss_scaler: LossScaler::default(),
            peer: None,
        }
    }
}

impl<B, M> TrainingStep<B, M> for Supervised<B>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Im2Im<B>,
{
    fn begin_epoch(&mut self, epoch: u64) -> Result<(), TrainError> {
        self.optimizer.begin_epoch(epoch)
    }

    fn step(&mut self, model: M, task: &Task, batch: &Batch, last_of_epoch: bool, device: &B::Device) -> Result<StepOutput<B, M>, TrainError> {
        let (loss, heads, predictions) = batch_losses::<B, M>(&model, task, batch, device)?;
        let local = loss.as_ref().map(|loss| {
            std::iter::once(("train/loss".to_string(), scalar(loss))).chain(heads.iter().map(|(h, l)| (format!("train/loss/{h}"), scalar(l)))).collect()
        });
        let losses = match agree_batch(self.peer.as_ref(), &task.loss_names("train"), local)? {
            BatchAgreement::Skip => return Ok(StepOutput { model, losses: IndexMap::new(), predictions, optimizer_steps: 0 }),
            BatchAgreement::NonFinite(value) => return Err(TrainError::NonFiniteLoss(value)),
            BatchAgreement::Losses(losses) => losses,
        };
        let Some(loss) = loss else {
            return Ok(StepOutput { model, losses: IndexMap::new(), predictions, optimizer_steps: 0 });
        };
        let scaling = fp16_autocast();
        let loss = if scaling { self.loss_scaler.scale_loss(loss) } else { loss };
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let grads = if self.accumulate_grad_batches > 1 {
            self.accumulator.accumulate::<B, M>(&model, grads);
            if self.accumulator.count() < self.accumulate_grad_batches && !last_of_epoch {
                return Ok(StepOutput { model, losses, predictions, optimizer_steps: 0 });
            }
            // Lightning sums the scaled losses of the accumulated batches: a mean.
            self.accumulator.take_mean::<B, M>(&model)
        } else {
            grads
        };
        let grads = match &self.peer {
            Some(peer) => peer.mean_gradients::<B, M>(&model, grads)?,
            None => grads,
        };
        let model = match unscaled(&mut self.loss_scaler, scaling, &model, grads) {
            Some(grads) => self.optimizer.optimizer.step(self.optimizer.lr, model, grads),
            None => model,
        };
        Ok(StepOutput { model, losses, predictions, optimizer_steps: 1 })
    }

    fn optimizer_records(&self) -> Vec<(String, OptimizerRecord)> {
        vec![(Self::OPTIMIZER.to_string(), self.optimizer.optimizer.to_record())]
    }

    fn load_optimizer_records(&mut self, records: &[(String, OptimizerRecord)], model: &M) -> Result<(), TrainError> {
        let record = match records {
            [(_, only)] => only,
            _ => {
                let names: Vec<&str> = records.iter().map(|(n, _)| n.as_str()).collect();
                return Err(TrainError::Optimizers(format!(
                    "the checkpoint has optimizers [{}]; this model trains with one (`{}`)",
                    names.join(", "),
                    Self::OPTIMIZER
                )));
            }
        };
        self.optimizer.optimizer.load_record(record, model)?;
        Ok(())
    }

    fn join(&mut self, peer: Peer<B::InnerBackend>) {
        self.peer = Some(peer);
    }
}
