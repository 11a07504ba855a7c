//! Prediction as cyto_dl does it: each input image through sliding-window inference, each head's
//! output postprocessed (`ActThreshLabel` or a legacy function) and written to `<save_dir>/<head>/<input file name>`.
//! Inputs whose outputs all exist already are skipped, so an interrupted predict resumes.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use indexmap::IndexMap;
use thiserror::Error;

use crate::data::loader::{LoadError, Loader};
use crate::infer::SlidingWindow;
use crate::io::{write_ome_tiff, WriteError};
use crate::model::infer_heads;
use crate::postprocess::{Postprocess, PostprocessError};
use crate::sample::Sample;
use crate::task::Im2Im;

#[derive(Debug, Error)]
pub enum PredictError {
    #[error(transparent)]
    Data(#[from] LoadError),
    #[error("{file}: sliding-window inference failed: {message}")]
    Infer { file: String, message: String },
    #[error("{file}: head `{head}`: {source}")]
    Postprocess { file: String, head: String, source: PostprocessError },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("row {row}: no input image under `{key}`")]
    NoInput { row: usize, key: String },
    #[error("{file}: {fault}. Nothing was written for it")]
    Device { file: String, fault: crate::device_fault::DeviceFault },
}

pub struct PredictOptions {
    pub x_key: String,
    pub save_dir: PathBuf,
    pub window: SlidingWindow,
    /// Postprocessing per head (heads without an entry are written as float32).
    pub postprocess: IndexMap<String, Postprocess>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct PredictReport {
    pub written: Vec<PathBuf>,
    pub skipped_inputs: usize,
}

/// Where head `head`'s prediction for `input` goes (cyto_dl's `BaseHead.generate_io_map`).
pub fn output_path(save_dir: &Path, head: &str, input: &Path) -> PathBuf {
    let name = input.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "prediction.tif".into());
    save_dir.join(head).join(name)
}

/// The manifest rows whose outputs are not all written yet (the rest are skipped).
pub fn pending_rows(rows: Vec<Sample>, x_key: &str, save_dir: &Path, heads: &[String]) -> (Vec<Sample>, usize) {
    let mut skipped = 0;
    let pending = rows
        .into_iter()
        .filter(|r| {
            let done = r.text(x_key).is_some_and(|p| heads.iter().all(|h| output_path(save_dir, h, Path::new(p)).is_file()));
            skipped += usize::from(done);
            !done
        })
        .collect();
    (pending, skipped)
}

/// Axis names for an output `[C, Z, Y, X]`: a single channel is dropped, a Z of 1 too (2D).
fn squeeze_axes(a: crate::array::Array) -> (crate::array::Array, String) {
    let mut shape = a.shape().to_vec();
    let mut axes: Vec<char> = match shape.len() {
        4 => "CZYX".chars().collect(),
        3 => "ZYX".chars().collect(),
        2 => "YX".chars().collect(),
        _ => "CZYX".chars().rev().take(shape.len()).collect::<Vec<_>>().into_iter().rev().collect(),
    };
    for axis in ['C', 'Z'] {
        if let Some(i) = axes.iter().position(|c| *c == axis) {
            if shape[i] == 1 && shape.len() > 2 {
                shape.remove(i);
                axes.remove(i);
            }
        }
    }
    let a = a.reshape(shape).unwrap_or_else(|e| panic!("squeezing length-1 axes keeps the size: {e}"));
    (a, axes.into_iter().collect())
}

/// Runs `model` over every image of `loader` (batch size 1) and writes each head's output.
pub fn predict<B: Backend, M: Im2Im<B>>(model: &M, loader: &Loader, opts: &PredictOptions, device: &B::Device) -> Result<PredictReport, PredictError> {
    let mut report = PredictReport::default();
    crate::device_fault::watch();
    for batch in loader.epoch(0) {
        let batch = batch?;
        for sample in &batch.samples {
            let image = sample.array(&opts.x_key).ok_or_else(|| PredictError::NoInput { row: sample.origin.row, key: opts.x_key.clone() })?;
            let input_file = sample.origin.files.get(&opts.x_key).cloned().unwrap_or_else(|| PathBuf::from(format!("row_{}.tif", sample.origin.row)));
            let file = input_file.display().to_string();
            let batched = image.clone().with_leading_axis();
            let preds = infer_heads(model, &opts.window, &batched, device).map_err(|e| PredictError::Infer { file: file.clone(), message: e.to_string() })?;
            crate::device_fault::check().map_err(|fault| PredictError::Device { file: file.clone(), fault })?;
            for (head, pred) in preds {
                let out = output_path(&opts.save_dir, &head, &input_file);
                if out.is_file() {
                    continue;
                }
                // Drop the batch axis: [1, C, Z, Y, X] -> [C, Z, Y, X].
                let shape = pred.shape()[1..].to_vec();
                let pred = pred.reshape(shape).map_err(|e| PredictError::Infer { file: file.clone(), message: e.to_string() })?;
                let (array, dtype) = match opts.postprocess.get(&head) {
                    Some(p) => {
                        let r = p.apply(&pred).map_err(|source| PredictError::Postprocess { file: file.clone(), head: head.clone(), source })?;
                        (r.array, r.dtype)
                    }
                    None => (pred, crate::io::DType::F32),
                };
                let (array, axes) = squeeze_axes(array);
                if let Some(dir) = out.parent() {
                    std::fs::create_dir_all(dir).map_err(|source| WriteError::Io { path: dir.to_path_buf(), source })?;
                }
                let sizes = sample.origin.pixel_sizes.get(&opts.x_key).copied().unwrap_or([None; 3]);
                write_ome_tiff(&out, &array, &axes, dtype, sizes)?;
                report.written.push(out);
            }
        }
    }
    Ok(report)
}
