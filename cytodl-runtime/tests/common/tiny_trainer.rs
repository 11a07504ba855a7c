//! The tiny supervised trainer the trainer tests share: a 1-in, 1-out convolution learning
//! `y = 2x + 0.5` on seeded 8x8 images, Adam, `last.ckpt` and the best by `val/loss`.
#![allow(dead_code)]

use burn::module::{Module, Param};
use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use cytodl_runtime::backend::CpuTrain;
use cytodl_runtime::config::{ConfigPath, ModelCheckpoint, Trainer as TrainerArgs};
use cytodl_runtime::data::loader::{Dataset, Loader, LoaderOptions};
use cytodl_runtime::loss::{Loss, Reduction};
use cytodl_runtime::nn::Init;
use cytodl_runtime::optim::{AdamConfig, LrSchedule, Optimizer, OptimizerConfig, Scheduler};
use cytodl_runtime::task::{Im2Im, Task};
use cytodl_runtime::train::checkpoint_policy::CheckpointPolicy;
use cytodl_runtime::train::early_stopping::Mode;
use cytodl_runtime::train::trainer::{Trainer, TrainerConfig};
use cytodl_runtime::transforms::Pipeline;
use cytodl_runtime::{Array, Rng, Sample};
use indexmap::IndexMap;

#[derive(Module, Debug)]
pub struct Tiny<B: Backend> {
    pub conv: Conv3d<B>,
}

impl<B: Backend> Im2Im<B> for Tiny<B> {
    fn forward_heads(&self, x: Tensor<B, 5>) -> IndexMap<String, Tensor<B, 5>> {
        [("seg".to_string(), self.conv.forward(x))].into_iter().collect()
    }
}

pub type B = CpuTrain;

/// A 1-in, 1-out "same" convolution with weights drawn from `init` (burn's own initialiser
/// draws from its process-global RNG, which tests running in parallel race on).
pub fn seeded_conv(kernel: [usize; 3], init: &Init) -> Conv3d<B> {
    let device = Default::default();
    let mut conv = Conv3dConfig::new([1, 1], kernel).with_padding(burn::nn::PaddingConfig3d::Same).init(&device);
    let bound = 1.0 / (kernel.iter().product::<usize>() as f64).sqrt();
    conv.weight = Param::from_tensor(init.at("weight").uniform([1, 1, kernel[0], kernel[1], kernel[2]], -bound, bound, &device));
    conv.bias = Some(Param::from_tensor(init.at("bias").uniform([1], -bound, bound, &device)));
    conv
}

pub fn model() -> Tiny<B> {
    Tiny { conv: seeded_conv([1, 3, 3], &Init::new(1).at("conv")) }
}

pub fn samples(n: usize, nan_at: Option<usize>) -> Vec<Sample> {
    let mut rng = Rng::seed_from(9);
    (0..n)
        .map(|i| {
            let x: Vec<f32> = (0..64).map(|_| rng.normal() as f32).collect();
            let mut y: Vec<f32> = x.iter().map(|v| 2.0 * v + 0.5).collect();
            if nan_at == Some(i) {
                y[3] = f32::NAN;
            }
            let mut s = Sample::new().with_array("raw", Array::new(vec![1, 8, 8], x).unwrap()).with_array("seg", Array::new(vec![1, 8, 8], y).unwrap());
            s.origin.row = i + 2;
            s
        })
        .collect()
}

pub fn loader(rows: Vec<Sample>) -> Loader {
    Loader::new(Dataset { rows, pipeline: Pipeline::new(), cache: None }, LoaderOptions { batch_size: 2, shuffle: true, seed: 3, ..Default::default() })
}

pub fn trainer(dir: &std::path::Path, max_epochs: u64) -> Trainer<B, Tiny<B>> {
    let task = Task::new("raw", vec![("seg".into(), Loss::Mse { reduction: Reduction::Mean })]);
    let optimizer = Optimizer::new(OptimizerConfig::Adam(AdamConfig::default())).unwrap();
    let scheduler = Scheduler::new(LrSchedule::Exponential { gamma: 0.9 }, 0.05).unwrap();
    let config = TrainerConfig::new(TrainerArgs { max_epochs: max_epochs as i64, ..Default::default() }, 1);
    let mut t = Trainer::new(config, task, model(), optimizer, scheduler, Default::default());
    let checkpoint = ModelCheckpoint {
        dirpath: Some(ConfigPath::in_run("checkpoints")),
        filename: Some("epoch_{epoch:03d}".into()),
        monitor: Some("val/loss".into()),
        mode: Mode::Min,
        save_last: Some(true),
        auto_insert_metric_name: false,
        ..ModelCheckpoint::default()
    };
    t.callbacks.checkpoint = Some(CheckpointPolicy::new(checkpoint, dir));
    t
}

pub fn tmp(name: &str) -> cytodl_testkit::Scratch {
    cytodl_testkit::Scratch::new(&format!("trainer-{name}"))
}
