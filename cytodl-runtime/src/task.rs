//! What is learned, independent of how it is trained: a network with named outputs
//! ([`Im2Im`]), the input column and each head's loss ([`Task`]), and a batch's losses. The
//! model types sit on this module and the trainer above it; nothing here knows the trainer.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use indexmap::IndexMap;
use thiserror::Error;

use crate::data::loader::{Batch, LoadError};
use crate::loss::{Loss, LossError};

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
}

/// A network with named outputs.
pub trait Im2Im<B: Backend>: Module<B> {
    /// Every head's prediction for a batch `[N, C, Z, Y, X]`.
    fn forward_heads(&self, x: Tensor<B, 5>) -> IndexMap<String, Tensor<B, 5>>;
}

/// What is learned: the input column and, per head, its loss (the head's target column has the
/// head's name), and the mask column of each head whose loss takes one (cyto_dl's `MaskHead`).
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub x_key: String,
    pub heads: Vec<(String, Loss)>,
    pub masks: BTreeMap<String, String>,
}

impl Task {
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
        Ok(Task { x_key: model.x_key.0.clone(), heads, masks })
    }

    /// A task without masks.
    pub fn new(x_key: impl Into<String>, heads: Vec<(String, Loss)>) -> Task {
        Task { x_key: x_key.into(), heads, masks: BTreeMap::new() }
    }

    /// The mask column `head`'s loss takes, if any.
    pub fn mask_of(&self, head: &str) -> Option<&str> {
        self.masks.get(head).map(String::as_str)
    }
}

/// Stacks `key` of a batch into a 5-D tensor (2D images get Z = 1).
pub fn batch_tensor<B: Backend>(batch: &Batch, key: &str, device: &B::Device) -> Result<Tensor<B, 5>, TaskError> {
    let a = batch.stack(key)?;
    let shape = a.shape().to_vec();
    let shape5: [usize; 5] = match shape.as_slice() {
        [n, c, y, x] => [*n, *c, 1, *y, *x],
        [n, c, z, y, x] => [*n, *c, *z, *y, *x],
        _ => return Err(TaskError::BadShape { key: key.to_string(), shape }),
    };
    Ok(Tensor::from_data(TensorData::new(a.into_data(), shape5), device))
}

/// A one-element tensor's value.
pub fn scalar<B: Backend>(t: &Tensor<B, 1>) -> f64 {
    t.clone().into_scalar().elem::<f64>()
}

/// Per-head and total losses of one batch (heads without a target in the batch are skipped),
/// and every head's prediction.
pub type Losses<B> = (Option<Tensor<B, 1>>, Vec<(String, Tensor<B, 1>)>, IndexMap<String, Tensor<B, 5>>);

/// The losses of one batch, and every head's prediction (for the image saver).
pub fn batch_losses<B: Backend, M: Im2Im<B>>(model: &M, task: &Task, batch: &Batch, device: &B::Device) -> Result<Losses<B>, TaskError> {
    let x = batch_tensor::<B>(batch, &task.x_key, device)?;
    let preds = model.forward_heads(x);
    let mut total: Option<Tensor<B, 1>> = None;
    let mut per_head = Vec::new();
    for (head, loss) in &task.heads {
        if batch.samples.iter().any(|s| s.array(head).is_none()) {
            continue;
        }
        let pred = preds
            .get(head)
            .cloned()
            .ok_or_else(|| TaskError::NoSuchHead { head: head.clone(), available: preds.keys().cloned().collect::<Vec<_>>().join(", ") })?;
        let target = batch_tensor::<B>(batch, head, device)?;
        let mask = task.mask_of(head).map(|key| batch_tensor::<B>(batch, key, device)).transpose()?;
        let l = loss.forward_masked(pred, target, mask).map_err(|source| TaskError::Loss { head: head.clone(), source })?;
        total = Some(match total {
            Some(t) => t + l.clone(),
            None => l.clone(),
        });
        per_head.push((head.clone(), l));
    }
    Ok((total, per_head, preds))
}
