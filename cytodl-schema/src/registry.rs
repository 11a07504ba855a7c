//! Every component's spec, for lookups by `_target_` and for `cytodl-build targets`, and the
//! cyto_dl targets that are known but not implemented yet.

use crate::components::*;
use crate::spec::{ComponentSpec, Kind};
use crate::Component;

/// Every registered component, grouped by kind in the order `targets` lists them.
pub fn all() -> Vec<&'static ComponentSpec> {
    let mut out: Vec<&'static ComponentSpec> = vec![&<DataframeDatamodule as Component>::SPEC, &<Compose as Component>::SPEC];
    out.extend(TransformConfig::SPECS);
    out.push(&<MonaiBioReader as Component>::SPEC);
    out.extend(ModelConfig::SPECS);
    out.extend(DiscriminatorConfig::SPECS);
    out.extend(GanLossConfig::SPECS);
    out.extend(BackboneConfig::SPECS);
    out.extend(HeadConfig::SPECS);
    out.extend(LossConfig::SPECS);
    out.extend(MetricConfig::SPECS);
    out.extend(ActivationConfig::SPECS);
    out.extend(PostprocessConfig::SPECS);
    out.extend(OptimizerConfig::SPECS);
    out.extend(SchedulerConfig::SPECS);
    out.push(&<SlidingWindowArgs as Component>::SPEC);
    out.push(&<Trainer as Component>::SPEC);
    out.extend(CallbackConfig::SPECS);
    out.extend(LoggerConfig::SPECS);
    out
}

/// The component answering to `target` (a `_target_` name or a native name), of any kind.
pub fn lookup(target: &str) -> Option<&'static ComponentSpec> {
    all().into_iter().find(|c| c.answers(target))
}

/// Every `_target_` name of the components of `kind`.
pub fn names_of(kind: Kind) -> Vec<&'static str> {
    all().into_iter().filter(|c| c.kind == kind).flat_map(|c| c.names.iter().copied()).collect()
}

/// A known cyto_dl / MONAI / torch target that cytodl does not implement yet.
pub fn not_implemented(target: &str) -> Option<&'static str> {
    NOT_IMPLEMENTED.iter().find(|(n, _)| *n == target).map(|(_, what)| *what)
}

/// cyto_dl / MONAI / torch targets that cytodl recognises but does not implement yet.
pub const NOT_IMPLEMENTED: &[(&str, &str)] = &[
    ("cyto_dl.nn.vits.MAE", "masked autoencoder"),
    ("cyto_dl.nn.vits.mae.HieraMAE", "Hiera MAE"),
    ("cyto_dl.nn.vits.Seg_ViT", "ViT segmentation"),
    ("cyto_dl.nn.vits.encoder.JEPAEncoder", "JEPA"),
    ("cyto_dl.nn.vits.predictor.JEPAPredictor", "JEPA"),
    ("cyto_dl.nn.vits.predictor.IWMPredictor", "IWM"),
    ("cyto_dl.models.jepa.ijepa.IJEPA", "I-JEPA"),
    ("cyto_dl.models.jepa.iwm.IWM", "IWM"),
    ("cyto_dl.nn.head.mae_head.MAEHead", "MAE head"),
    ("cyto_dl.nn.head.vic_reg.VICRegHead", "VICReg head"),
    ("cyto_dl.nn.losses.vic_reg.VICRegLoss", "VICReg loss"),
    ("cyto_dl.nn.TorchVisionWrapper", "torchvision backbones"),
    ("monai.networks.nets.Regressor", "MONAI Regressor"),
    ("monai.networks.nets.diffusion_model_unet.DiffusionModelUNet", "diffusion models"),
    ("monai.networks.schedulers.ddim.DDIMScheduler", "diffusion models"),
    ("monai.inferers.DiffusionInferer", "diffusion models"),
    ("monai.inferers.SlidingWindowSplitter", "sliding-window splitter"),
    ("cyto_dl.models.im2im.utils.inferers.EmbeddingPatchInferer", "embedding inferer"),
    ("monai.transforms.GridPatchd", "GridPatchd"),
    ("monai.transforms.SplitDimd", "SplitDimd"),
    ("monai.transforms.DeleteItemsd", "DeleteItemsd"),
    ("monai.transforms.CopyItemsd", "CopyItemsd"),
    ("monai.transforms.RandGaussianSmoothd", "RandGaussianSmoothd"),
    ("monai.transforms.RandShiftIntensityd", "RandShiftIntensityd"),
    ("monai.transforms.RandScaleIntensityd", "RandScaleIntensityd"),
    ("cyto_dl.image.io.PolygonLoaderd", "polygon loading"),
    ("cyto_dl.image.transforms.generate_jepa_masks.JEPAMaskGenerator", "JEPA masks"),
    ("cyto_dl.image.transforms.track_transforms.GenerateTrackLabels", "tracking"),
    ("cyto_dl.image.transforms.track_transforms.SplitTrackd", "tracking"),
    ("cyto_dl.datamodules.array.make_array_dataloader", "in-memory array data"),
    ("cyto_dl.datamodules.multidim_image.MultiDimImageDataset", "multi-dimensional image datasets"),
    ("cyto_dl.datamodules.torchvision.MNIST", "torchvision datasets"),
    ("cyto_dl.utils.dummy_dataset.DummyDatamodule", "dummy data"),
    ("monai.data.DataLoader", "explicit data loaders"),
    ("monai.data.dataloader.DataLoader", "explicit data loaders"),
    ("lightning.pytorch.callbacks.LearningRateMonitor", "learning-rate logging"),
    ("lightning.pytorch.loggers.tensorboard.TensorBoardLogger", "TensorBoard logging"),
    ("lightning.pytorch.loggers.wandb.WandbLogger", "Weights & Biases logging"),
    ("lightning.pytorch.loggers.comet.CometLogger", "Comet logging"),
    ("lightning.pytorch.loggers.neptune.NeptuneLogger", "Neptune logging"),
    ("torchvision.models.resnet18", "torchvision models"),
    ("torchmetrics.segmentation.DiceScore", "Dice of one-hot predictions; BinaryF1Score is the Dice of a thresholded prediction"),
    ("torchmetrics.segmentation.MeanIoU", "IoU of one-hot predictions; BinaryJaccardIndex is the IoU of a thresholded prediction"),
    ("torchmetrics.segmentation.GeneralizedDiceScore", "generalized Dice"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `_target_` name answers to one component only, and native names are unique.
    #[test]
    fn names_are_unique() {
        let specs = all();
        let mut seen = std::collections::HashSet::new();
        for c in &specs {
            assert!(seen.insert(c.native), "native name {} twice", c.native);
            for n in c.names {
                assert!(seen.insert(n), "`{n}` twice");
                assert!(not_implemented(n).is_none(), "`{n}` is registered and listed as not implemented");
            }
        }
    }

    /// Every parameter's default converts into its own field type (a default that does not
    /// parse would be a silent surprise in generated code).
    #[test]
    fn defaults_are_documented() {
        for c in all() {
            assert!(!c.doc().is_empty(), "{} has no doc", c.native);
            for p in c.params {
                assert!(!p.doc().is_empty(), "{}.{} has no doc", c.native, p.name);
                if let Some(d) = p.default_text() {
                    assert!(!d.is_empty(), "{}.{}", c.native, p.name);
                }
            }
        }
    }
}
