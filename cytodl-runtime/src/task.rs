//! What is learned, independent of how it is trained: a network with named outputs
//! ([`Im2Im`]), the input column and each head's loss ([`Task`]), and a batch's losses. The
//! model types sit on this module and the trainer above it; nothing here knows the trainer.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};
use indexmap::IndexMap;
use thiserror::Error;

use crate::adversarial::{Adversarial, AdversarialError};
use crate::array::Array;
use crate::data::loader::{Batch, LoadError};
use crate::loss::{Loss, LossError};
use crate::metric::{crop_to_common, MetricSpec};
use crate::nn::discriminator::MultiScaleDiscriminator;
use crate::tensor::{into_tensor, to_array};

/// Why a batch's losses could not be computed.
#[derive(Debug, Error)]
pub enum TaskError {
    #[error(transparent)]
    Data(#[from] LoadError),
    #[error("head `{head}`: {source}")]
    Loss { head: String, source: LossError },
    #[error("head `{head}` takes its mask from column `{column}`, which this sample does not have")]
    MissingMask { head: String, column: String },
    #[error("the model has no head `{head}` (it has: {available})")]
    NoSuchHead { head: String, available: String },
    #[error("batch key `{key}` has shape {shape:?}; expected [N, C, Y, X] or [N, C, Z, Y, X]")]
    BadShape { key: String, shape: Vec<usize> },
    #[error("head `{head}`: {source}")]
    Adversarial { head: String, source: AdversarialError },
    #[error("head `{0}` trains against a discriminator, and this model has none")]
    NoDiscriminator(String),
}

/// A network with named outputs.
pub trait Im2Im<B: Backend>: Module<B> {
    /// Every head's prediction for a batch `[N, C, Z, Y, X]`.
    fn forward_heads(&self, x: Tensor<B, 5>) -> IndexMap<String, Tensor<B, 5>>;

    /// The discriminator an adversarial task trains against (a GAN's); `None` for others.
    fn discriminator(&self) -> Option<&MultiScaleDiscriminator<B>> {
        None
    }
}

/// What is learned: the input column and, per head, its loss (the head's target column has the
/// head's name), the mask column of each head whose loss takes one (cyto_dl's `MaskHead`), and
/// for a GAN the adversarial objective of its one head (which then replaces that head's loss:
/// its `loss` is the generator's, `loss/generator_loss` and `loss/discriminator_loss` are logged),
/// and the metrics that compare a head's prediction with its target (`model.metrics`).
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub x_key: String,
    pub heads: Vec<(String, Loss)>,
    pub masks: BTreeMap<String, String>,
    pub adversarial: Option<Adversarial>,
    pub metrics: Vec<MetricSpec>,
}

impl Task {
    /// The loss names a stage logs, the total's first (`<stage>/loss`, `<stage>/loss/<head>`):
    /// the same list on every peer of a data-parallel run, whatever heads a batch has targets for.
    pub fn loss_names(&self, stage: &str) -> Vec<String> {
        std::iter::once(format!("{stage}/loss")).chain(self.heads.iter().map(|(h, _)| format!("{stage}/loss/{h}"))).collect()
    }

    /// The task a model config describes: its input column and each head's loss.
    pub fn from_config(model: &cytodl_schema::MultiTaskIm2Im) -> Result<Task, TaskError> {
        let heads = model
            .task_heads
            .iter()
            .map(|(name, head)| Loss::try_from(head.loss()).map(|l| (name.clone(), l)).map_err(|source| TaskError::Loss { head: name.clone(), source }))
            .collect::<Result<_, _>>()?;
        let masks = model
            .task_heads
            .iter()
            .filter_map(|(name, head)| match head {
                cytodl_schema::HeadConfig::MaskHead(h) => Some((name.clone(), h.mask_key.clone())),
                _ => None,
            })
            .collect();
        let metrics = MetricSpec::from_config(model.metrics.as_ref());
        Ok(Task { x_key: model.x_key.0.clone(), heads, masks, adversarial: None, metrics })
    }

    /// A task without masks.
    pub fn new(x_key: impl Into<String>, heads: Vec<(String, Loss)>) -> Task {
        Task { x_key: x_key.into(), heads, masks: BTreeMap::new(), adversarial: None, metrics: Vec::new() }
    }

    /// A GAN's task: its one head trained by `adversarial`.
    pub fn adversarial(x_key: impl Into<String>, adversarial: Adversarial) -> Task {
        let heads = vec![(adversarial.head.clone(), adversarial.reconstruction.clone())];
        Task { x_key: x_key.into(), heads, masks: BTreeMap::new(), adversarial: Some(adversarial), metrics: Vec::new() }
    }

    /// The mask column `head`'s loss takes, if any.
    pub fn mask_of(&self, head: &str) -> Option<&str> {
        self.masks.get(head).map(String::as_str)
    }

    /// Head `head`'s prediction (`[N, C, Z, Y, X]`) and target as its metrics compare them:
    /// host arrays of the target's rank, cut to their common size for a resizing GAN head;
    /// `None` when the target is missing.
    pub fn metric_pair(&self, head: &str, pred: Option<Array>, target: Option<Array>) -> Option<(Array, Array)> {
        let (pred, target) = (pred?, target?);
        let pred = match (target.shape(), pred.shape()) {
            ([_, _, _, _], [n, c, 1, y, x]) => {
                let shape = vec![*n, *c, *y, *x];
                pred.clone().reshape(shape).unwrap_or(pred)
            }
            _ => pred,
        };
        let resizes = self.adversarial.as_ref().is_some_and(|a| a.head == head && a.crop_to_common);
        Some(if resizes { crop_to_common(pred, target) } else { (pred, target) })
    }

    /// [`Task::metric_pair`] of a batch and its predictions.
    pub fn batch_metric_pair<B: Backend>(&self, head: &str, batch: &Batch, preds: &IndexMap<String, Tensor<B, 5>>) -> Option<(Array, Array)> {
        if batch.samples.iter().any(|s| s.array(head).is_none()) {
            return None;
        }
        let target = batch.stack(head).ok();
        let pred = preds.get(head).map(|p| to_array(p.clone()));
        self.metric_pair(head, pred, target)
    }
}

/// Stacks `key` of a batch into a 5-D tensor (2D images get Z = 1).
pub fn batch_tensor<B: Backend>(batch: &Batch, key: &str, device: &B::Device) -> Result<Tensor<B, 5>, TaskError> {
    into_tensor(batch.stack(key)?, device).map_err(|a| TaskError::BadShape { key: key.to_string(), shape: a.shape().to_vec() })
}

/// A one-element tensor's value.
pub fn scalar<B: Backend>(t: &Tensor<B, 1>) -> f64 {
    t.clone().into_scalar().elem::<f64>()
}

/// Per-head and total losses of one batch (heads without a target in the batch are skipped),
/// and every head's prediction.
pub type Losses<B> = (Option<Tensor<B, 1>>, Vec<(String, Tensor<B, 1>)>, IndexMap<String, Tensor<B, 5>>);

/// A total loss (none when no head had a target) and the named losses it is logged with.
pub type NamedLosses<B> = (Option<Tensor<B, 1>>, Vec<(String, Tensor<B, 1>)>);

/// The losses of one batch, and every head's prediction (for the image saver).
pub fn batch_losses<B: Backend, M: Im2Im<B>>(model: &M, task: &Task, batch: &Batch, device: &B::Device) -> Result<Losses<B>, TaskError> {
    let x = batch_tensor::<B>(batch, &task.x_key, device)?;
    let preds = model.forward_heads(x.clone());
    let column = |key: &str| -> Result<Option<Tensor<B, 5>>, TaskError> {
        if batch.samples.iter().any(|s| s.array(key).is_none()) {
            return Ok(None);
        }
        batch_tensor::<B>(batch, key, device).map(Some)
    };
    let (total, per_head) = head_losses(model, task, x, &preds, column)?;
    Ok((total, per_head, preds))
}

/// The named losses of predictions `preds` of input `x`, with targets and masks from `column`
/// (`None`: this batch lacks the column, and heads needing it are skipped). Supervised heads give
/// `(sum, [(head, loss)])`; a GAN gives `(generator, [(generator_loss, ..), (discriminator_loss, ..)])`.
pub fn head_losses<B: Backend, M: Im2Im<B>>(
    model: &M,
    task: &Task,
    x: Tensor<B, 5>,
    preds: &IndexMap<String, Tensor<B, 5>>,
    column: impl Fn(&str) -> Result<Option<Tensor<B, 5>>, TaskError>,
) -> Result<NamedLosses<B>, TaskError> {
    let prediction = |head: &str| {
        preds
            .get(head)
            .cloned()
            .ok_or_else(|| TaskError::NoSuchHead { head: head.to_string(), available: preds.keys().cloned().collect::<Vec<_>>().join(", ") })
    };
    if let Some(adv) = &task.adversarial {
        let Some(target) = column(&adv.head)? else { return Ok((None, Vec::new())) };
        let discriminator = model.discriminator().ok_or_else(|| TaskError::NoDiscriminator(adv.head.clone()))?;
        let pred = prediction(&adv.head)?;
        let l = adv.losses(discriminator, x, target, pred).map_err(|source| TaskError::Adversarial { head: adv.head.clone(), source })?;
        let per = vec![("generator_loss".to_string(), l.generator.clone()), ("discriminator_loss".to_string(), l.discriminator)];
        return Ok((Some(l.generator), per));
    }
    let mut total: Option<Tensor<B, 1>> = None;
    let mut per_head = Vec::new();
    for (head, loss) in &task.heads {
        let Some(target) = column(head)? else { continue };
        let pred = prediction(head)?;
        let mask = match task.mask_of(head) {
            Some(key) => Some(column(key)?.ok_or_else(|| TaskError::MissingMask { head: head.clone(), column: key.to_string() })?),
            None => None,
        };
        let l = loss.forward_masked(pred, target, mask).map_err(|source| TaskError::Loss { head: head.clone(), source })?;
        total = Some(match total {
            Some(t) => t + l.clone(),
            None => l.clone(),
        });
        per_head.push((head.clone(), l));
    }
    Ok((total, per_head))
}
