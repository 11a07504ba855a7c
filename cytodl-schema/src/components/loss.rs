//! Losses, with MONAI's and torch's names and defaults.

use crate::{choice, component, kind};

choice! {
    /// How a training loss reduces over the batch (a scalar: `none` cannot be trained on).
    pub enum Reduction {
        Mean = "mean",
        Sum = "sum",
    }
}

component! {
    /// Dice + cross-entropy (BCE with sigmoid).
    #[kind(Loss)]
    #[names("monai.losses.DiceCELoss")]
    pub struct DiceCELoss {
        /// sigmoid on the logits
        pub sigmoid: bool = false,
        /// softmax on the logits
        pub softmax: bool = false,
        /// count channel 0
        pub include_background: bool = true,
        /// one-hot encode a label target to the prediction's channels
        pub to_onehot_y: bool = false,
        /// square the denominator terms
        pub squared_pred: bool = false,
        /// Jaccard (IoU) instead of Dice
        pub jaccard: bool = false,
        /// numerator smoothing
        pub smooth_nr: f64 = 1e-5,
        /// denominator smoothing
        pub smooth_dr: f64 = 1e-5,
        /// sum over the batch before dividing
        pub batch: bool = false,
        /// Dice weight
        pub lambda_dice: f64 = 1.0,
        /// cross-entropy weight
        pub lambda_ce: f64 = 1.0,
        /// reduction
        pub reduction: Reduction = Reduction::Mean,
    }
}

component! {
    /// Soft Dice.
    #[kind(Loss)]
    #[names("monai.losses.DiceLoss")]
    pub struct DiceLoss {
        /// sigmoid on the logits
        pub sigmoid: bool = false,
        /// softmax on the logits
        pub softmax: bool = false,
        /// count channel 0
        pub include_background: bool = true,
        /// one-hot encode a label target to the prediction's channels
        pub to_onehot_y: bool = false,
        /// square the denominator terms
        pub squared_pred: bool = false,
        /// Jaccard (IoU) instead of Dice
        pub jaccard: bool = false,
        /// numerator smoothing
        pub smooth_nr: f64 = 1e-5,
        /// denominator smoothing
        pub smooth_dr: f64 = 1e-5,
        /// sum over the batch before dividing
        pub batch: bool = false,
        /// reduction
        pub reduction: Reduction = Reduction::Mean,
    }
}

component! {
    /// Soft Dice over the voxels a mask keeps (cyto_dl's MaskHead gives the mask).
    #[kind(Loss)]
    #[names("monai.losses.MaskedDiceLoss")]
    pub struct MaskedDiceLoss {
        /// sigmoid on the logits
        pub sigmoid: bool = false,
        /// softmax on the logits
        pub softmax: bool = false,
        /// count channel 0
        pub include_background: bool = true,
        /// one-hot encode a label target to the prediction's channels
        pub to_onehot_y: bool = false,
        /// square the denominator terms
        pub squared_pred: bool = false,
        /// Jaccard (IoU) instead of Dice
        pub jaccard: bool = false,
        /// numerator smoothing
        pub smooth_nr: f64 = 1e-5,
        /// denominator smoothing
        pub smooth_dr: f64 = 1e-5,
        /// sum over the batch before dividing
        pub batch: bool = false,
        /// reduction
        pub reduction: Reduction = Reduction::Mean,
    }
}

component! {
    /// Tversky loss: Dice with separate weights for false positives and false negatives.
    #[kind(Loss)]
    #[names("monai.losses.TverskyLoss")]
    pub struct TverskyLoss {
        /// sigmoid on the logits
        pub sigmoid: bool = false,
        /// softmax on the logits
        pub softmax: bool = false,
        /// count channel 0
        pub include_background: bool = true,
        /// one-hot encode a label target to the prediction's channels
        pub to_onehot_y: bool = false,
        /// weight of false positives
        pub alpha: f64 = 0.5,
        /// weight of false negatives
        pub beta: f64 = 0.5,
        /// numerator smoothing
        pub smooth_nr: f64 = 1e-5,
        /// denominator smoothing
        pub smooth_dr: f64 = 1e-5,
        /// sum over the batch before dividing
        pub batch: bool = false,
        /// reduction
        pub reduction: Reduction = Reduction::Mean,
    }
}

component! {
    /// Mean squared error.
    #[kind(Loss)]
    #[names("torch.nn.MSELoss")]
    pub struct MSELoss {
        /// reduction
        pub reduction: Reduction = Reduction::Mean,
    }
}

component! {
    /// Mean absolute error.
    #[kind(Loss)]
    #[names("torch.nn.L1Loss")]
    pub struct L1Loss {
        /// reduction
        pub reduction: Reduction = Reduction::Mean,
    }
}

component! {
    /// Binary cross-entropy on logits.
    #[kind(Loss)]
    #[names("torch.nn.BCEWithLogitsLoss")]
    pub struct BCEWithLogitsLoss {
        /// reduction
        pub reduction: Reduction = Reduction::Mean,
        /// weight of positives
        pub pos_weight: Option<f64> = None,
    }
}

component! {
    /// Focal loss (Lin et al. 2017): cross-entropy that down-weights well-classified voxels.
    #[kind(Loss)]
    #[names("monai.losses.FocalLoss")]
    pub struct FocalLoss {
        /// count channel 0
        pub include_background: bool = true,
        /// one-hot encode a label target to the prediction's channels
        pub to_onehot_y: bool = false,
        /// focusing exponent: 0 is plain (binary) cross-entropy
        pub gamma: f64 = 2.0,
        /// weight of positives in [0, 1] (with softmax: of every class but channel 0)
        pub alpha: Option<f64> = None,
        /// per-class weights: one value for all classes or one per class
        pub weight: Option<Vec<f64>> = None,
        /// reduction (`sum` sums the per-channel spatial means, as MONAI does)
        pub reduction: Reduction = Reduction::Mean,
        /// softmax over channels instead of a sigmoid per channel
        pub use_softmax: bool = false,
    }
}

component! {
    /// cyto_dl's instance-segmentation loss on the `dim + 3` prediction channels against
    /// InstanceSegPreprocessd's `dim + 4` target channels: cost-map-weighted MSE of the skeleton
    /// and of the embedding, Tversky of the semantic mask, cost-map-weighted BCE of the boundary.
    #[kind(Loss)]
    #[names("cyto_dl.models.im2im.utils.InstanceSegLoss", "cyto_dl.models.im2im.utils.instance_seg.InstanceSegLoss")]
    pub struct InstanceSegLoss {
        /// 2 or 3 (the experiment's spatial_dims)
        pub dim: i64 = 3,
        /// `{skeleton, semantic, boundary, vector}` weights (default 1, 40, 1, 10)
        pub weights: Option<crate::field::Map<f64>> = None,
    }
}

kind! {
    /// A head's loss.
    pub enum LossConfig: Loss {
        DiceCELoss,
        DiceLoss,
        MaskedDiceLoss,
        TverskyLoss,
        MSELoss,
        L1Loss,
        BCEWithLogitsLoss,
        FocalLoss,
        InstanceSegLoss,
    }
}

impl LossConfig {
    /// Whether the loss applies a sigmoid or a softmax to the logits (the Dice family's flags,
    /// FocalLoss's `use_softmax`; false for the others).
    pub fn activation_flags(&self) -> (bool, bool) {
        match self {
            LossConfig::DiceCELoss(l) => (l.sigmoid, l.softmax),
            LossConfig::DiceLoss(l) => (l.sigmoid, l.softmax),
            LossConfig::MaskedDiceLoss(l) => (l.sigmoid, l.softmax),
            LossConfig::TverskyLoss(l) => (l.sigmoid, l.softmax),
            LossConfig::FocalLoss(l) => (!l.use_softmax, l.use_softmax),
            LossConfig::MSELoss(_) | LossConfig::L1Loss(_) | LossConfig::BCEWithLogitsLoss(_) | LossConfig::InstanceSegLoss(_) => (false, false),
        }
    }
}
