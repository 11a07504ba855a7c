//! Model families: what a `model:` config builds and how it trains.
//!
//! An experiment's model config (`cytodl-schema`) is a [`ModelFamily`]: it builds its network
//! ([`ModelFamily::Net`], any [`Im2Im`] module), says what is learned ([`Task`]), and builds the
//! [`TrainingStep`] that trains it. The trainer and the command line are generic over the
//! family, so a new family (cyto_dl's GAN: a generator and a discriminator with their own
//! optimizers, [`gan`]) is a new config type, a new network and a new step in their own files;
//! the supervised family ([`multitask`]) is not edited for it.

pub mod gan;
pub mod multitask;

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use cytodl_schema::ConfigPath;
use thiserror::Error;

use crate::assemble::AssembleError;
use crate::infer::SlidingWindow;
use crate::model::ModelError;
use crate::nn::Init;
use crate::optim::{OptimError, ScheduleError};
use crate::postprocess::HeadPostprocess;
use crate::task::{Im2Im, Task, TaskError};
use crate::train::step::TrainingStep;
use crate::train::trainer::TrainerConfig;

/// Why a family's network, task or step could not be built.
#[derive(Debug, Error)]
pub enum FamilyError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error(transparent)]
    Assemble(#[from] AssembleError),
    #[error(transparent)]
    Optim(#[from] OptimError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("trainer.gradient_clip_val: {0}")]
    GradClip(OptimError),
    #[error("{0}")]
    Gan(String),
}

/// A configuration buffer of a cyto_dl state dict that disagrees with this config.
#[derive(Debug, Error)]
pub enum ConfigBufferError {
    #[error(transparent)]
    Family(Box<FamilyError>),
    #[error("`{key}` is {found}, this config's label is {want}")]
    Label { key: String, found: f64, want: f64 },
}

impl From<FamilyError> for ConfigBufferError {
    fn from(e: FamilyError) -> Self {
        ConfigBufferError::Family(Box::new(e))
    }
}

/// A model config that builds a network and its training step.
pub trait ModelFamily {
    /// The network, on any backend (test and predict run it on the inner backend).
    type Net<B: Backend>: Im2Im<B>;
    /// The network on an autodiff backend, whose gradient-free version is [`Self::Net`]
    /// (for burn modules, the same type: `MultiTask<B>`).
    type Trainable<B: AutodiffBackend>: Im2Im<B> + AutodiffModule<B, InnerModule = Self::Net<B::InnerBackend>>;
    /// What trains one batch of the network.
    type Step<B: AutodiffBackend>: TrainingStep<B, Self::Trainable<B>>;

    /// The network, its weights drawn from `init`.
    fn build<B: Backend>(&self, device: &B::Device, init: &Init) -> Result<Self::Net<B>, FamilyError>;

    /// The network to train, its weights drawn from `init` (the same weights as [`Self::build`]).
    fn build_trainable<B: AutodiffBackend>(&self, device: &B::Device, init: &Init) -> Result<Self::Trainable<B>, FamilyError>;

    /// The input column and each output's loss.
    fn task(&self) -> Result<Task, FamilyError>;

    /// The training step with its optimizers and schedules; `lr` is the run's learning rate when
    /// it overrides the config's.
    fn training_step<B: AutodiffBackend>(&self, trainer: &TrainerConfig, lr: Option<f64>) -> Result<Self::Step<B>, FamilyError>;

    /// Whole-image inference for test and predict.
    fn window(&self) -> Result<SlidingWindow, FamilyError>;

    /// Each output's (input, prediction) postprocessing for saved images.
    fn postprocess(&self) -> HeadPostprocess;

    /// The outputs' names, in order.
    fn outputs(&self) -> Vec<String>;

    /// Where a key of cyto_dl's state dict lands in this network (PyTorch checkpoints load by
    /// name); `None` keeps the key as it is.
    fn state_dict_key(&self, key: &str) -> Option<String>;

    /// Takes out of a cyto_dl state dict the buffers that hold configuration rather than
    /// weights (a GAN loss's labels), checking them against this config; what is left must all
    /// be weights. A mismatch is an error naming the key.
    fn take_config_buffers(&self, _tensors: &mut std::collections::BTreeMap<String, burn::tensor::TensorData>) -> Result<(), ConfigBufferError> {
        Ok(())
    }

    /// Where predict writes (`model.save_dir`; the run folder when unset).
    fn save_dir(&self) -> Option<ConfigPath>;

    /// Input channels the network expects (for benchmarks' synthetic batches).
    fn in_channels(&self) -> usize;
}
