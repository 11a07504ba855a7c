//! Metrics beyond the loss (`model.metrics`), with torchmetrics' names, arguments and defaults.
//!
//! cyto_dl's `BaseModel` takes `metrics: {"<split>/<type>/<part>": <torchmetrics object>}`: a
//! `loss` type averages the loss of head `<part>` (`MeanMetric`, what cyto_dl logs by default);
//! any other type compares head `<part>`'s prediction with its target, accumulated over an
//! epoch. [`MetricKey`] reads such a key.

use crate::{choice, component, kind};

component! {
    /// The mean of the values it is given: how cyto_dl logs a loss (`<split>/loss/<head>`).
    #[kind(Metric)]
    #[names("torchmetrics.MeanMetric", "torchmetrics.aggregation.MeanMetric")]
    pub struct MeanMetric {}
    ignored {
        /// (torchmetrics) what a NaN does: a non-finite loss stops training here
        nan_strategy: Option<String> = None => "a non-finite loss stops training",
    }
}

choice! {
    /// The classification task of torchmetrics' task wrappers: cytodl's heads predict one
    /// foreground channel, so only the binary task.
    pub enum BinaryTask {
        Binary = "binary",
    }
}

component! {
    /// F1 of a thresholded prediction against a 0/1 target — the Dice coefficient. A prediction
    /// with values outside [0, 1] is taken as logits (sigmoid first), decided per batch as
    /// torchmetrics does.
    #[kind(Metric)]
    #[names("torchmetrics.classification.BinaryF1Score")]
    pub struct BinaryF1Score {
        /// a voxel is foreground when its probability is above this
        pub threshold: f64 = 0.5,
        /// the value when there is no foreground in either (0 or 1)
        pub zero_division: f64 = 0.0,
    }
    ignored {
        /// (torchmetrics) input validation: targets are always checked to be 0 or 1
        validate_args: bool = true => "targets are always checked to be 0 or 1",
    }
    unsupported {
        /// (torchmetrics) per-sample averages: the score is global over voxels and samples
        multidim_average: Option<String> = None,
        /// (torchmetrics) ignored target value: not supported
        ignore_index: Option<i64> = None,
    }
}

component! {
    /// torchmetrics' `F1Score` with `task: binary` ([`BinaryF1Score`]).
    #[kind(Metric)]
    #[names("torchmetrics.F1Score", "torchmetrics.classification.F1Score")]
    pub struct F1Score {
        /// binary (one foreground channel)
        pub task: BinaryTask,
        /// a voxel is foreground when its probability is above this
        pub threshold: f64 = 0.5,
        /// the value when there is no foreground in either (0 or 1)
        pub zero_division: f64 = 0.0,
    }
    ignored {
        /// (torchmetrics) input validation: targets are always checked to be 0 or 1
        validate_args: bool = true => "targets are always checked to be 0 or 1",
    }
    unsupported {
        /// (torchmetrics) multiclass tasks: not supported
        num_classes: Option<i64> = None,
        /// (torchmetrics) multilabel tasks: not supported
        num_labels: Option<i64> = None,
        /// (torchmetrics) per-sample averages: the score is global over voxels and samples
        multidim_average: Option<String> = None,
        /// (torchmetrics) ignored target value: not supported
        ignore_index: Option<i64> = None,
    }
}

component! {
    /// Intersection over union of a thresholded prediction and a 0/1 target (logits are
    /// recognised as for [`BinaryF1Score`]).
    #[kind(Metric)]
    #[names("torchmetrics.classification.BinaryJaccardIndex")]
    pub struct BinaryJaccardIndex {
        /// a voxel is foreground when its probability is above this
        pub threshold: f64 = 0.5,
        /// the value when there is no foreground in either (0 or 1)
        pub zero_division: f64 = 0.0,
    }
    ignored {
        /// (torchmetrics) input validation: targets are always checked to be 0 or 1
        validate_args: bool = true => "targets are always checked to be 0 or 1",
    }
    unsupported {
        /// (torchmetrics) ignored target value: not supported
        ignore_index: Option<i64> = None,
    }
}

component! {
    /// torchmetrics' `JaccardIndex` with `task: binary` ([`BinaryJaccardIndex`]).
    #[kind(Metric)]
    #[names("torchmetrics.JaccardIndex", "torchmetrics.classification.JaccardIndex")]
    pub struct JaccardIndex {
        /// binary (one foreground channel)
        pub task: BinaryTask,
        /// a voxel is foreground when its probability is above this
        pub threshold: f64 = 0.5,
        /// the value when there is no foreground in either (0 or 1)
        pub zero_division: f64 = 0.0,
    }
    ignored {
        /// (torchmetrics) input validation: targets are always checked to be 0 or 1
        validate_args: bool = true => "targets are always checked to be 0 or 1",
    }
    unsupported {
        /// (torchmetrics) multiclass tasks: not supported
        num_classes: Option<i64> = None,
        /// (torchmetrics) multilabel tasks: not supported
        num_labels: Option<i64> = None,
        /// (torchmetrics) class averaging: one class here
        average: Option<String> = None,
        /// (torchmetrics) ignored target value: not supported
        ignore_index: Option<i64> = None,
    }
}

component! {
    /// Peak signal-to-noise ratio over every voxel of an epoch; without `data_range`, the range
    /// is the targets' max - min so far.
    #[kind(Metric)]
    #[names("torchmetrics.image.PeakSignalNoiseRatio", "torchmetrics.PeakSignalNoiseRatio")]
    pub struct PeakSignalNoiseRatio {
        /// the signal's range (default: from the targets)
        pub data_range: Option<f64> = None,
        /// the logarithm's base
        pub base: f64 = 10.0,
    }
    unsupported {
        /// (torchmetrics) per-sample reduction: the ratio is over all voxels
        dim: Option<i64> = None,
        /// (torchmetrics) reduction over `dim`: not supported
        reduction: Option<String> = None,
    }
}

component! {
    /// Structural similarity, per sample averaged over the epoch; a 3-D Gaussian window on
    /// volumes, 2-D on images. Without `data_range`, each batch's range is the larger of its
    /// predictions' and targets' max - min.
    #[kind(Metric)]
    #[names("torchmetrics.image.StructuralSimilarityIndexMeasure", "torchmetrics.StructuralSimilarityIndexMeasure")]
    pub struct StructuralSimilarityIndexMeasure {
        /// a Gaussian window (else uniform of `kernel_size`)
        pub gaussian_kernel: bool = true,
        /// the Gaussian's standard deviation (its window is `2 * int(3.5 sigma + 0.5) + 1`)
        pub sigma: f64 = 1.5,
        /// the uniform window's size (and torchmetrics' padding of the last axis of a volume)
        pub kernel_size: i64 = 11,
        /// the signal's range (default: from each batch)
        pub data_range: Option<f64> = None,
        /// luminance stabiliser
        pub k1: f64 = 0.01,
        /// contrast stabiliser
        pub k2: f64 = 0.03,
    }
    unsupported {
        /// (torchmetrics) full SSIM images: not supported
        return_full_image: bool = false,
        /// (torchmetrics) contrast sensitivity: not supported
        return_contrast_sensitivity: bool = false,
        /// (torchmetrics) reduction over samples: always the mean
        reduction: Option<String> = None,
    }
}

component! {
    /// Pearson's correlation of prediction and target over every voxel of an epoch (torchmetrics
    /// takes 1-D tensors: the images are flattened).
    #[kind(Metric)]
    #[names("torchmetrics.PearsonCorrCoef", "torchmetrics.regression.PearsonCorrCoef")]
    pub struct PearsonCorrCoef {}
    unsupported {
        /// (torchmetrics) several outputs: one correlation over all channels
        num_outputs: Option<i64> = None,
    }
}

component! {
    /// Mean squared error over every voxel of an epoch (`squared: false`: its root).
    #[kind(Metric)]
    #[names("torchmetrics.MeanSquaredError", "torchmetrics.regression.MeanSquaredError")]
    pub struct MeanSquaredError {
        /// the mean of squares (else its square root)
        pub squared: bool = true,
    }
    unsupported {
        /// (torchmetrics) several outputs: one error over all channels
        num_outputs: Option<i64> = None,
    }
}

component! {
    /// Mean absolute error over every voxel of an epoch.
    #[kind(Metric)]
    #[names("torchmetrics.MeanAbsoluteError", "torchmetrics.regression.MeanAbsoluteError")]
    pub struct MeanAbsoluteError {}
    unsupported {
        /// (torchmetrics) several outputs: one error over all channels
        num_outputs: Option<i64> = None,
    }
}

kind! {
    /// A metric of `model.metrics`.
    pub enum MetricConfig: Metric {
        MeanMetric,
        BinaryF1Score,
        F1Score,
        BinaryJaccardIndex,
        JaccardIndex,
        PeakSignalNoiseRatio,
        StructuralSimilarityIndexMeasure,
        PearsonCorrCoef,
        MeanSquaredError,
        MeanAbsoluteError,
    }
}

impl MetricConfig {
    /// Whether the metric averages a loss (the only metric of a `<split>/loss/...` key) rather
    /// than comparing a prediction with its target.
    pub fn averages_loss(&self) -> bool {
        matches!(self, MetricConfig::MeanMetric(_))
    }
}

/// A `model.metrics` key, `<split>/<type>[/<part>]`, as cyto_dl's `compute_metrics` splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricKey<'a> {
    /// matched by prefix against the stage (`train`, `val`, `test`), as cyto_dl does
    pub split: &'a str,
    /// `loss`, or the metric's own name
    pub kind: &'a str,
    /// the head (or, for a GAN's loss, `generator_loss` / `discriminator_loss`)
    pub part: Option<&'a str>,
}

impl<'a> MetricKey<'a> {
    /// Splits `key`; `None` when it has no `/`.
    pub fn parse(key: &'a str) -> Option<Self> {
        let (split, rest) = key.split_once('/')?;
        let (kind, part) = match rest.split_once('/') {
            Some((k, p)) => (k, Some(p)),
            None => (rest, None),
        };
        Some(MetricKey { split, kind, part })
    }

    /// The stage (`train`, `val` or `test`) this key is logged in, matched as cyto_dl matches
    /// it (`key_split.startswith(stage)`).
    pub fn stage(&self) -> Option<&'static str> {
        ["train", "val", "test"].into_iter().find(|s| self.split.starts_with(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_like_cyto_dl() {
        let k = MetricKey::parse("val/ssim/fluor").unwrap();
        assert_eq!((k.split, k.kind, k.part, k.stage()), ("val", "ssim", Some("fluor"), Some("val")));
        let k = MetricKey::parse("validation/loss").unwrap();
        assert_eq!((k.kind, k.part, k.stage()), ("loss", None, Some("val")));
        assert_eq!(MetricKey::parse("train/dice/a/b").unwrap().part, Some("a/b"));
        assert_eq!(MetricKey::parse("predict/dice/seg").unwrap().stage(), None);
        assert!(MetricKey::parse("dice").is_none());
    }
}
