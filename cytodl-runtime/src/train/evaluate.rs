//! The test stage (cyto_dl's `MultiTaskIm2Im.test_step`): every whole image through
//! sliding-window inference, each head's loss against its target on the full field of view
//! (`test/loss`, `test/loss/<head>`), and cyto_dl's ImageSaver files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::ElementConversion as _;

use super::error::TrainError;
use super::parallel::Peer;
use super::stage_totals::StageTotals;
use crate::array::Array;
use crate::data::loader::Loader;
use crate::infer::SlidingWindow;
use crate::io::{write_ome_tiff, DType};
use crate::model::infer_heads;
use crate::postprocess::{HeadPostprocess, Postprocess};
use crate::task::{head_losses, Im2Im, Task, TaskError};
use crate::tensor::to_tensor;
use indexmap::IndexMap;

/// The precision a run uses, as Lightning's `precision` names it. Mixed precision runs on the GPU
/// backends: convolutions compute in the 16-bit type (`nn::autocast`), everything else in f32.
/// cyto_dl's default `precision: 16` is fp16 with dynamic loss scaling
/// ([`crate::optim::LossScaler`]); on the CPU it falls back to 32 with a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    Bf16Mixed,
    F16Mixed,
}

impl Precision {
    /// The type convolutions compute in ([`crate::nn::autocast`]).
    pub fn compute_dtype(self) -> Option<burn::tensor::FloatDType> {
        match self {
            Precision::F32 => None,
            Precision::Bf16Mixed => Some(burn::tensor::FloatDType::BF16),
            Precision::F16Mixed => Some(burn::tensor::FloatDType::F16),
        }
    }
}

/// A `precision` value Lightning does not have.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{0}` is not one of 32, 16, 16-mixed, bf16, bf16-mixed")]
pub struct UnknownPrecision(pub String);

/// Reads Lightning's `precision` value for a device (`gpu`: a CUDA or wgpu device); the warning
/// says what changed.
pub fn effective_precision(requested: &str, gpu: bool) -> Result<(Precision, Option<String>), UnknownPrecision> {
    let (wanted, all_16_bit) = match requested.trim() {
        "32" | "32-true" | "highest" => (Precision::F32, false),
        "16" | "16-mixed" => (Precision::F16Mixed, false),
        "16-true" => (Precision::F16Mixed, true),
        "bf16" | "bf16-mixed" => (Precision::Bf16Mixed, false),
        "bf16-true" => (Precision::Bf16Mixed, true),
        other => return Err(UnknownPrecision(other.to_string())),
    };
    if !gpu && wanted != Precision::F32 {
        return Ok((
            Precision::F32,
            Some(format!("precision {requested} is not available on this device (mixed precision runs on the GPU backends); running in 32-bit")),
        ));
    }
    if all_16_bit {
        let mixed = if wanted == Precision::F16Mixed { "16-mixed" } else { "bf16-mixed" };
        return Ok((wanted, Some(format!("precision {requested} runs as {mixed}: weights and optimizer state stay in f32"))));
    }
    Ok((wanted, None))
}

/// cyto_dl's `ImageSaver`: `<save_dir>/<stage>_images/<step>_<head>_{input,target,pred}.tif`,
/// and `<step>_<head>_montage.png` showing them side by side;
/// its config (`callbacks.saving`, as declared in `cytodl-schema`) and the folder it resolved to.
#[derive(Debug, Clone)]
pub struct ImageSaver {
    pub config: cytodl_schema::ImageSaver,
    pub save_dir: PathBuf,
}

impl ImageSaver {
    /// The saver of `config` for a run whose folder is `run_dir`.
    pub fn new(config: cytodl_schema::ImageSaver, run_dir: &Path) -> Self {
        let save_dir = config.save_dir.under(run_dir);
        ImageSaver { config, save_dir }
    }

    pub fn wants(&self, stage: &str, epoch: u64) -> bool {
        let every = u64::try_from(self.config.save_every_n_epochs).unwrap_or(1).max(1);
        self.config.stages.iter().any(|s| s == stage) && (stage == "test" || stage == "predict" || (epoch + 1).is_multiple_of(every))
    }

    /// Writes one head's images (each `[C, Z, Y, X]`), postprocessed like cyto_dl does.
    #[allow(clippy::too_many_arguments)]
    pub fn save(
        &self,
        stage: &str,
        step: u64,
        head: &str,
        input: Option<&Array>,
        target: Option<&Array>,
        pred: &Array,
        post: Option<&(Postprocess, Postprocess)>,
    ) -> Result<Vec<PathBuf>, TrainError> {
        let dir = self.save_dir.join(format!("{stage}_images"));
        std::fs::create_dir_all(&dir)?;
        let mut written = Vec::new();
        let mut panels = Vec::new();
        let mut write = |kind: &str, a: &Array, pp: Option<&Postprocess>| -> Result<(), TrainError> {
            let (array, dtype) = match pp {
                Some(p) => p.apply(a).map(|r| (r.array, r.dtype)).map_err(|e| TrainError::Postprocess { head: head.to_string(), message: e.to_string() })?,
                None => (a.clone(), DType::F32),
            };
            panels.push(array.clone());
            let (array, axes) = squeeze(array);
            let path = dir.join(format!("{step}_{head}_{kind}.tif"));
            write_ome_tiff(&path, &array, &axes, dtype, [None; 3]).map_err(|e| TrainError::WriteImage { path: path.clone(), message: e.to_string() })?;
            written.push(path);
            Ok(())
        };
        if self.config.save_input {
            if let Some(i) = input {
                write("input", i, post.map(|p| &p.0))?;
            }
        }
        if let Some(t) = target {
            write("target", t, None)?;
        }
        write("pred", pred, post.map(|p| &p.1))?;
        // The same images side by side, for a quick look (`super::montage`).
        let path = dir.join(format!("{step}_{head}_montage.png"));
        let picture = super::montage::montage(&panels.iter().collect::<Vec<_>>());
        picture.and_then(|m| super::montage::write_png(&path, &m)).map_err(|e| TrainError::WriteImage { path: path.clone(), message: e.to_string() })?;
        written.push(path);
        Ok(written)
    }
}

/// `[C, Z, Y, X]` with a single channel or a single Z dropped, and its axes.
fn squeeze(a: Array) -> (Array, String) {
    let mut shape = a.shape().to_vec();
    let mut axes: Vec<char> = "CZYX".chars().rev().take(shape.len()).collect::<Vec<_>>().into_iter().rev().collect();
    for axis in ['C', 'Z'] {
        if let Some(i) = axes.iter().position(|c| *c == axis) {
            if shape[i] == 1 && shape.len() > 2 {
                shape.remove(i);
                axes.remove(i);
            }
        }
    }
    let a = match a.clone().reshape(shape) {
        Ok(r) => r,
        Err(_) => a,
    };
    (a, axes.into_iter().collect())
}

/// Drops a leading batch axis of length 1.
fn unbatch(a: &Array) -> Array {
    let shape = a.shape()[1..].to_vec();
    a.clone().reshape(shape).unwrap_or_else(|_| a.clone())
}

/// Where the test stage writes cyto_dl's ImageSaver files: the saver, each head's
/// postprocessing, and the step the file names carry.
#[derive(Clone, Copy)]
pub struct TestImages<'a> {
    pub saver: &'a ImageSaver,
    pub post: &'a HeadPostprocess,
    pub step: u64,
}

/// Whole-image evaluation of every image in `loader` (use batch size 1): mean `test/loss` and
/// `test/loss/<head>` and the test metrics; with `images`, each head's input, target and
/// prediction are written. With a `peer`, `loader` is this peer's shard and the means are over
/// every peer's (each peer returns the same numbers).
pub fn test<B: Backend, M: Im2Im<B>>(
    model: &M,
    task: &Task,
    loader: &Loader,
    window: &SlidingWindow,
    images: Option<TestImages>,
    peer: Option<&Peer<B>>,
    device: &B::Device,
) -> Result<BTreeMap<String, f64>, TrainError> {
    let mut totals = StageTotals::new(task, "test")?;
    crate::device_fault::watch();
    for batch in loader.epoch(0) {
        let batch = batch?;
        for sample in &batch.samples {
            let Some(x) = sample.array(&task.x_key) else { continue };
            let image = x.clone().with_leading_axis();
            let preds = infer_heads(model, window, &image, device).map_err(|e| TrainError::Inference(e.to_string()))?;
            let as_tensor =
                |key: &str, a: &Array| to_tensor::<B>(a, device).ok_or_else(|| TaskError::BadShape { key: key.to_string(), shape: a.shape().to_vec() });
            let pred_tensors = preds.iter().map(|(h, p)| Ok((h.clone(), as_tensor(h, p)?))).collect::<Result<IndexMap<_, _>, TaskError>>()?;
            let column = |key: &str| sample.array(key).map(|a| as_tensor(key, &a.clone().with_leading_axis())).transpose();
            let (total, named) = head_losses(model, task, as_tensor(&task.x_key, &image)?, &pred_tensors, column)?;
            totals.add_losses(total.map(|t| t.into_scalar().elem::<f64>()), named.into_iter().map(|(h, l)| (h, l.into_scalar().elem::<f64>())));
            crate::device_fault::check().map_err(|fault| TrainError::Device { fault, context: format!("Testing stopped at row {}", sample.origin.row) })?;
            totals.metrics.update(|head| task.metric_pair(head, preds.get(head).cloned(), sample.array(head).map(|a| a.clone().with_leading_axis())))?;
            if let Some(TestImages { saver, post, step }) = images.filter(|i| i.saver.wants("test", 0)) {
                for (head, pred) in &preds {
                    if let Some(target) = sample.array(head) {
                        saver.save("test", step, head, Some(x), Some(target), &unbatch(pred), post.get(head))?;
                    }
                }
            }
        }
    }
    totals.add_up(peer, task)?;
    Ok(totals.means())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_falls_back_on_cpu() {
        let (p, w) = effective_precision("16", false).unwrap();
        assert_eq!(p, Precision::F32);
        assert!(w.unwrap().contains("not available on this device"));
        assert_eq!(effective_precision("bf16-mixed", true).unwrap(), (Precision::Bf16Mixed, None));
        assert_eq!(effective_precision("16-mixed", true).unwrap(), (Precision::F16Mixed, None));
        assert_eq!(effective_precision("16", true).unwrap(), (Precision::F16Mixed, None));
        let (p, w) = effective_precision("16-true", true).unwrap();
        assert_eq!(p, Precision::F16Mixed);
        assert!(w.unwrap().contains("runs as 16-mixed"));
        assert_eq!(Precision::F32.compute_dtype(), None);
        assert_eq!(Precision::F16Mixed.compute_dtype(), Some(burn::tensor::FloatDType::F16));
        assert!(effective_precision("64", false).is_err());
    }
}
