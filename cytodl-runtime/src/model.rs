//! cyto_dl's `MultiTaskIm2Im`: one backbone whose output feeds named heads (`BaseHead` is the
//! identity, so the backbone's output is the prediction), plus whole-image inference for
//! test and predict through [`crate::infer::SlidingWindow`]; and cyto_dl's `GAN` ([`Gan`]), the
//! same network trained against a discriminator.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use indexmap::IndexMap;

use crate::array::Array;
use crate::infer::{InferError, SlidingWindow};
use crate::nn::discriminator::{DiscriminatorConfigError, MultiScaleDiscriminator};
use crate::nn::heads::{Head, HeadConfigError};
use crate::nn::{DynUNet, DynUNetConfig, DynUNetConfigError, Init};
use crate::task::Im2Im;
use crate::tensor::{to_array, to_tensor};
use cytodl_schema::{BackboneConfig, MultiTaskIm2Im};

/// A DynUNet backbone whose output feeds every head (cyto_dl's `BaseHead` is the identity;
/// `ResBlocksHead` and projection heads transform it).
#[derive(Module, Debug)]
pub struct MultiTask<B: Backend> {
    pub backbone: DynUNet<B>,
    pub heads: Vec<Head<B>>,
    /// Head names, in output order (configuration, not weights).
    #[module(skip)]
    pub names: Vec<String>,
}

impl<B: Backend> MultiTask<B> {
    /// Identity heads, one per name.
    pub fn new(backbone: DynUNet<B>, names: Vec<String>) -> Self {
        let heads = names.iter().map(|_| Head::base()).collect();
        MultiTask { backbone, heads, names }
    }

    /// Named heads of any kind.
    pub fn with_heads(backbone: DynUNet<B>, heads: Vec<(String, Head<B>)>) -> Self {
        let (names, heads) = heads.into_iter().unzip();
        MultiTask { backbone, heads, names }
    }
}

/// cyto_dl's `GAN`: a generator (backbone and one head, what predicts) and the discriminator it
/// is trained against.
#[derive(Module, Debug)]
pub struct Gan<B: Backend> {
    pub generator: MultiTask<B>,
    pub discriminator: MultiScaleDiscriminator<B>,
}

impl<B: Backend> Gan<B> {
    /// The networks a `GAN` config describes: the generator's weights from `init` as a
    /// `MultiTaskIm2Im`'s, the discriminator's from `init.at("discriminator")`.
    pub fn from_config(config: &cytodl_schema::GAN, device: &B::Device, init: &Init) -> Result<Self, ModelError> {
        let generator = MultiTask::from_config(&config.generator(), device, init)?;
        let discriminator = MultiScaleDiscriminator::from_config(&config.discriminator, device, &init.at("discriminator"))?;
        Ok(Gan { generator, discriminator })
    }
}

impl<B: Backend> Im2Im<B> for Gan<B> {
    fn forward_heads(&self, x: Tensor<B, 5>) -> IndexMap<String, Tensor<B, 5>> {
        self.generator.forward_heads(x)
    }

    fn discriminator(&self) -> Option<&MultiScaleDiscriminator<B>> {
        Some(&self.discriminator)
    }
}

/// Why a model config could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model.backbone: {0}")]
    Backbone(#[from] DynUNetConfigError),
    #[error("model.task_heads.{head}: {source}")]
    Head { head: String, source: HeadConfigError },
    #[error("model.discriminator: {0}")]
    Discriminator(#[from] DiscriminatorConfigError),
}

impl<B: Backend> MultiTask<B> {
    /// The network a `MultiTaskIm2Im` config describes, its weights drawn from `init`
    /// (`backbone`, `task_heads.<name>`: one stream per module, see [`Init`]).
    pub fn from_config(config: &MultiTaskIm2Im, device: &B::Device, init: &Init) -> Result<Self, ModelError> {
        let backbone = match &config.backbone {
            BackboneConfig::DynUNet(d) => DynUNetConfig::try_from(d)?.init(device, &init.at("backbone"))?,
        };
        let heads = config
            .task_heads
            .iter()
            .map(|(name, head)| {
                Head::from_config(head, device, &init.at("task_heads").at(name))
                    .map(|h| (name.clone(), h))
                    .map_err(|source| ModelError::Head { head: name.clone(), source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MultiTask::with_heads(backbone, heads))
    }
}

impl<B: Backend> Im2Im<B> for MultiTask<B> {
    fn forward_heads(&self, x: Tensor<B, 5>) -> IndexMap<String, Tensor<B, 5>> {
        let z = self.backbone.forward(x);
        self.names.iter().zip(&self.heads).map(|(n, h)| (n.clone(), h.forward(z.clone()))).collect()
    }
}

/// Runs the model over a whole image `[N, C, Z, Y, X]` window by window (MONAI's
/// `sliding_window_inference`), returning every head's full-size prediction.
pub fn infer_heads<B: Backend, M: Im2Im<B>>(
    model: &M,
    window: &SlidingWindow,
    image: &Array,
    device: &B::Device,
) -> Result<IndexMap<String, Array>, InferError<String>> {
    let mut names: Vec<String> = Vec::new();
    let outputs = window.infer(image, |batch: &Array| -> Result<Vec<Array>, String> {
        let x = to_tensor::<B>(batch, device).ok_or_else(|| format!("window batch has shape {:?}", batch.shape()))?;
        let preds = model.forward_heads(x);
        if names.is_empty() {
            names = preds.keys().cloned().collect();
        }
        // 2D windows ran as Z = 1 volumes: give the window back its own rank.
        let two_d = batch.shape().len() == 4;
        preds
            .into_values()
            .map(|t| {
                let a = to_array(t);
                if two_d && a.shape().len() == 5 && a.shape()[2] == 1 {
                    let s = a.shape();
                    let shape = vec![s[0], s[1], s[3], s[4]];
                    a.reshape(shape).map_err(|e| e.to_string())
                } else {
                    Ok(a)
                }
            })
            .collect()
    })?;
    Ok(names.into_iter().zip(outputs).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use crate::nn::{DynUNetConfig, PerLevel};

    /// A 2D experiment's whole-image inference returns 2D outputs (`[N, C, Y, X]`).
    #[test]
    fn two_d_inference_keeps_the_rank() {
        let k: Vec<PerLevel> = vec![3.into(), 3.into(), 3.into()];
        let s: Vec<PerLevel> = vec![1.into(), 2.into(), 2.into()];
        let u: Vec<PerLevel> = vec![2.into(), 2.into()];
        let device = Default::default();
        let net =
            DynUNetConfig::from_monai(2, 1, 2, &k, &s, &u, Some(&[4, 8, 16])).expect("config").init::<Cpu>(&device, &crate::nn::Init::new(0)).expect("init");
        let model = MultiTask::new(net, vec!["seg".into()]);
        let image = Array::zeros(vec![1, 1, 20, 20]);
        let window = SlidingWindow::new(vec![8, 8]);
        let out = infer_heads(&model, &window, &image, &device).expect("inference");
        assert_eq!(out["seg"].shape(), &[1, 2, 20, 20]);
    }
}
