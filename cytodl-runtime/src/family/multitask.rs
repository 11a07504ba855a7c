//! cyto_dl's supervised family, `MultiTaskIm2Im`: a backbone feeding named heads, each with a
//! loss against the column of its name, trained by [`Supervised`] (one optimizer, the
//! `generator`'s, with its schedule and Lightning's gradient clipping and accumulation).

use burn::tensor::backend::{AutodiffBackend, Backend};
use cytodl_schema::{BackboneConfig, ClipAlgorithm, ConfigPath, MultiTaskIm2Im};

use super::{FamilyError, ModelFamily};
use crate::assemble;
use crate::infer::SlidingWindow;
use crate::model::MultiTask;
use crate::nn::Init;
use crate::optim::{GradClip, Optimizer, Scheduler};
use crate::postprocess::{head_postprocess, HeadPostprocess};
use crate::task::Task;
use crate::train::step::Supervised;
use crate::train::trainer::TrainerConfig;

impl ModelFamily for MultiTaskIm2Im {
    type Net<B: Backend> = MultiTask<B>;
    type Trainable<B: AutodiffBackend> = MultiTask<B>;
    type Step<B: AutodiffBackend> = Supervised<B>;

    fn build<B: Backend>(&self, device: &B::Device, init: &Init) -> Result<MultiTask<B>, FamilyError> {
        Ok(MultiTask::from_config(self, device, init)?)
    }

    fn build_trainable<B: AutodiffBackend>(&self, device: &B::Device, init: &Init) -> Result<MultiTask<B>, FamilyError> {
        self.build(device, init)
    }

    fn task(&self) -> Result<Task, FamilyError> {
        Ok(Task::from_config(self)?)
    }

    fn training_step<B: AutodiffBackend>(&self, trainer: &TrainerConfig, lr: Option<f64>) -> Result<Supervised<B>, FamilyError> {
        let (optimizer, lr) = assemble::optimizer(self, lr)?;
        let mut optimizer = Optimizer::<B>::new(optimizer)?;
        let t = &trainer.trainer;
        if let Some(v) = t.gradient_clip_val.filter(|v| *v > 0.0) {
            let clip = match t.gradient_clip_algorithm {
                ClipAlgorithm::Norm => GradClip::Norm(v),
                ClipAlgorithm::Value => GradClip::Value(v),
            };
            optimizer = optimizer.with_grad_clip(clip).map_err(FamilyError::GradClip)?;
        }
        let scheduler = Scheduler::new(assemble::lr_schedule(self)?, lr)?;
        Ok(Supervised::new(optimizer, scheduler, trainer.accumulate_grad_batches()))
    }

    fn window(&self) -> Result<SlidingWindow, FamilyError> {
        Ok(assemble::sliding_window(self)?)
    }

    fn postprocess(&self) -> HeadPostprocess {
        head_postprocess(&self.task_heads)
    }

    fn outputs(&self) -> Vec<String> {
        self.task_heads.iter().map(|(name, _)| name.clone()).collect()
    }

    /// cyto_dl names heads in a ModuleDict (`task_heads.<name>.`), each head's layers by
    /// position; [`MultiTask`]'s heads are `heads.<index>.`, their layers named.
    fn state_dict_key(&self, key: &str) -> Option<String> {
        let rest = key.strip_prefix("task_heads.")?;
        self.task_heads.iter().enumerate().find_map(|(i, (name, head))| {
            let within = rest.strip_prefix(name.as_str())?.strip_prefix('.')?;
            Some(match crate::nn::heads::cyto_dl_head_key(head, within) {
                Some(ours) => format!("heads.{i}.{ours}"),
                None => format!("heads.{i}.{within}"),
            })
        })
    }

    fn save_dir(&self) -> Option<ConfigPath> {
        self.save_dir.clone()
    }

    fn in_channels(&self) -> usize {
        match &self.backbone {
            BackboneConfig::DynUNet(d) => usize::try_from(d.in_channels).unwrap_or(1),
        }
    }
}
