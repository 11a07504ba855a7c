//! cyto_dl's GAN family: the generator of a `MultiTaskIm2Im` (backbone and one GAN head) and a
//! discriminator ([`Gan`]), trained by [`GanStep`] with the `generator` and `discriminator`
//! optimizers. Prediction, inference and postprocessing are the generator's.

use burn::tensor::backend::{AutodiffBackend, Backend};
use cytodl_schema::{ConfigPath, GAN};

use super::{ConfigBufferError, FamilyError, ModelFamily};
use std::collections::BTreeMap;

use burn::tensor::TensorData;

use crate::adversarial::{Adversarial, Criterion};
use crate::assemble::{self, DISCRIMINATOR, GENERATOR};
use crate::infer::SlidingWindow;
use crate::metric::MetricSpec;
use crate::model::Gan;
use crate::nn::discriminator;
use crate::nn::Init;
use crate::optim::{Optimizer, Scheduler};
use crate::postprocess::HeadPostprocess;
use crate::task::{Task, TaskError};
use crate::train::gan_step::GanStep;
use crate::train::step::Scheduled;
use crate::train::trainer::TrainerConfig;

impl ModelFamily for GAN {
    type Net<B: Backend> = Gan<B>;
    type Trainable<B: AutodiffBackend> = Gan<B>;
    type Step<B: AutodiffBackend> = GanStep<B>;

    fn build<B: Backend>(&self, device: &B::Device, init: &Init) -> Result<Gan<B>, FamilyError> {
        Ok(Gan::from_config(self, device, init)?)
    }

    fn build_trainable<B: AutodiffBackend>(&self, device: &B::Device, init: &Init) -> Result<Gan<B>, FamilyError> {
        self.build(device, init)
    }

    fn task(&self) -> Result<Task, FamilyError> {
        let mut heads = self.task_heads.iter();
        let (Some((name, head)), None) = (heads.next(), heads.next()) else {
            return Err(FamilyError::Gan(format!("a GAN has exactly one head, this one has {}", self.task_heads.0.len())));
        };
        let adversarial = Adversarial::from_config(name, head).map_err(|source| TaskError::Adversarial { head: name.clone(), source })?;
        let mut task = Task::adversarial(self.x_key.0.clone(), adversarial);
        task.metrics = MetricSpec::from_config(self.metrics.as_ref());
        Ok(task)
    }

    fn training_step<B: AutodiffBackend>(&self, trainer: &TrainerConfig, lr: Option<f64>) -> Result<GanStep<B>, FamilyError> {
        let t = &trainer.trainer;
        if t.gradient_clip_val.is_some_and(|v| v > 0.0) || trainer.accumulate_grad_batches() > 1 {
            return Err(FamilyError::Gan(
                "a GAN optimizes manually: trainer.gradient_clip_val and accumulate_grad_batches are not available (Lightning refuses them too)".into(),
            ));
        }
        let role = |name: &'static str, lr: Option<f64>| -> Result<Scheduled<B>, FamilyError> {
            let (optimizer, lr) = assemble::optimizer_of(self.optimizer(name), name, lr)?;
            let scheduler = Scheduler::new(assemble::lr_schedule_of(self.scheduler(name), name)?, lr)?;
            Ok(Scheduled::new(Optimizer::<B>::new(optimizer)?, scheduler))
        };
        Ok(GanStep::new(role(GENERATOR, lr)?, role(DISCRIMINATOR, None)?))
    }

    fn window(&self) -> Result<SlidingWindow, FamilyError> {
        self.generator().window()
    }

    fn postprocess(&self) -> HeadPostprocess {
        self.generator().postprocess()
    }

    fn outputs(&self) -> Vec<String> {
        self.generator().outputs()
    }

    /// The generator's keys as a `MultiTaskIm2Im`'s, under `generator.`; the discriminator's
    /// positional `discriminators.<s>.model.block_<b>.0.*` under `discriminator.`.
    fn state_dict_key(&self, key: &str) -> Option<String> {
        if let Some(rest) = key.strip_prefix("discriminator.") {
            return discriminator::cyto_dl_key(rest).map(|k| format!("discriminator.{k}"));
        }
        let own = self.generator().state_dict_key(key).unwrap_or_else(|| key.to_string());
        Some(format!("generator.{own}"))
    }

    /// cyto_dl's `GANLoss` registers its labels as buffers (`task_heads.<h>.gan_loss[.gan_loss]
    /// .real_label` / `.fake_label`): they must be the labels this config trains with.
    fn take_config_buffers(&self, tensors: &mut BTreeMap<String, TensorData>) -> Result<(), ConfigBufferError> {
        let task = self.task()?;
        let Some(adv) = &task.adversarial else { return Ok(()) };
        let (real, fake) = match adv.objective.criterion {
            Criterion::Vanilla { real_label, fake_label } | Criterion::LeastSquares { real_label, fake_label } => (real_label, fake_label),
            Criterion::Wasserstein => (1.0, 0.0),
        };
        let prefix = format!("task_heads.{}.gan_loss.", adv.head);
        let keys: Vec<String> =
            tensors.keys().filter(|k| k.starts_with(&prefix) && (k.ends_with(".real_label") || k.ends_with(".fake_label"))).cloned().collect();
        for key in keys {
            let Some(data) = tensors.remove(&key) else { continue };
            let value = data.as_slice::<f32>().ok().and_then(|v| v.first().copied()).unwrap_or(f32::NAN) as f64;
            let want = if key.ends_with(".real_label") { real } else { fake };
            if (value - want).abs() > 1e-6 {
                return Err(ConfigBufferError::Label { key, found: value, want });
            }
        }
        Ok(())
    }

    fn save_dir(&self) -> Option<ConfigPath> {
        self.save_dir.clone()
    }

    fn in_channels(&self) -> usize {
        self.generator().in_channels()
    }
}
