//! The training loop (Lightning's `Trainer.fit` / `validate` as cyto_dl drives it): epochs of
//! train batches, the learning rate stepped per epoch, validation every n epochs, metrics
//! (`train/loss`, `val/loss`, `val/loss/<head>`) to the CSV log, checkpoints, early stopping,
//! and exact resume.
//!
//! A model is anything with named heads ([`Im2Im`]); each head has a loss and a target column
//! of the same name ([`Task`]); both live in [`crate::task`], below the trainer. How a batch is
//! trained is a [`TrainingStep`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use indexmap::IndexMap;
use serde_json::json;

use super::checkpoint::{self, CheckpointData};
use super::checkpoint_policy::CheckpointPolicy;
use super::early_stopping::{EarlyStopping, Stop};
use super::error::TrainError;
use super::logger::{MetricLogger, SavedCheckpoints};
use super::loss_plot::LossPlot;
use super::parallel::{ParallelError, Peer};
use super::progress::Progress;
use super::stage_totals::StageTotals;
use super::step::{Supervised, TrainingStep};
use crate::data::loader::{Batch, Loader};
use crate::nn::noise::NoiseScope;
use crate::optim::{OptimError, Optimizer, OptimizerRecord, Scheduler};
use crate::rng::Rng;
use crate::task::{batch_losses, scalar, Im2Im, Task};

/// Mixed into the seed for the dropout streams, so that they differ from the data streams
/// (which use the same (seed, epoch, index) scheme).
const DROPOUT_STREAMS: u64 = 0xD209_0A7E_5EED_0001;

/// What the loop runs by: Lightning's trainer arguments as the config declares them (the one
/// `Trainer` type of `cytodl-schema`, with its defaults), the run's seed, and how often plain
/// progress lines are printed when stdout is not a terminal.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerConfig {
    pub trainer: cytodl_schema::Trainer,
    pub seed: u64,
    pub log_every_n_steps: u64,
}

impl TrainerConfig {
    /// Lightning's `log_every_n_steps` default.
    pub const LOG_EVERY_N_STEPS: u64 = 50;

    pub fn new(trainer: cytodl_schema::Trainer, seed: u64) -> Self {
        TrainerConfig { trainer, seed, log_every_n_steps: Self::LOG_EVERY_N_STEPS }
    }

    fn max_epochs(&self) -> u64 {
        u64::try_from(self.trainer.max_epochs).unwrap_or(0)
    }

    fn min_epochs(&self) -> u64 {
        u64::try_from(self.trainer.min_epochs).unwrap_or(0)
    }

    fn check_val_every_n_epoch(&self) -> u64 {
        u64::try_from(self.trainer.check_val_every_n_epoch).unwrap_or(1).max(1)
    }

    /// Lightning's `accumulate_grad_batches` (at least 1).
    pub fn accumulate_grad_batches(&self) -> usize {
        usize::try_from(self.trainer.accumulate_grad_batches).unwrap_or(1).max(1)
    }
}

/// Callbacks, as cyto_dl configures them.
#[derive(Debug, Clone, Default)]
pub struct Callbacks {
    pub checkpoint: Option<CheckpointPolicy>,
    pub early_stopping: Option<EarlyStopping>,
    /// cyto_dl's ImageSaver with each head's (input, prediction) postprocessing.
    pub image_saver: Option<(super::evaluate::ImageSaver, crate::postprocess::HeadPostprocess)>,
}

/// How a fit ended.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    pub epochs_run: u64,
    pub global_step: u64,
    /// Per step, the total training loss (what resume tests compare).
    pub step_losses: Vec<f64>,
    pub stopped_early: Option<String>,
    pub last_val: BTreeMap<String, f64>,
}

/// The training loop around a [`TrainingStep`] (by default cyto_dl's supervised multi-task step,
/// [`Supervised`]): the loop owns epochs, validation, logs, checkpoints and early stopping; the
/// step owns the optimizers.
pub struct Trainer<B: AutodiffBackend, M, S = Supervised<B>> {
    pub config: TrainerConfig,
    pub task: Task,
    pub model: M,
    pub step: S,
    pub callbacks: Callbacks,
    /// Every logger of the run (Lightning's `logger:` list).
    pub loggers: Vec<Box<dyn MetricLogger>>,
    /// `plots/loss.png`, redrawn at each epoch's end and handed to the loggers as an artifact.
    pub plot: Option<LossPlot>,
    /// Set by Ctrl-C / SIGTERM: the loop stops before the next batch ([`TrainError::Interrupted`]).
    pub interrupt: Option<&'static AtomicBool>,
    /// This device's place among the peers of a data-parallel run ([`Trainer::join`]).
    peer: Option<Peer<B::InnerBackend>>,
    pub device: B::Device,
    /// The next epoch to run and the optimizer steps taken so far.
    pub epoch: u64,
    pub global_step: u64,
    progress: Progress,
    /// PNGs written since the loggers last heard of them, with their artifact folder.
    pictures: Vec<(PathBuf, String)>,
}

/// The first sample of a batch as `[C, Z, Y, X]` arrays (input, target, prediction) per head,
/// written by the image saver (cyto_dl saves the first batch of an epoch); the montage PNGs it
/// wrote.
fn save_first<B: Backend>(
    callbacks: &Callbacks,
    task: &Task,
    stage: &str,
    epoch: u64,
    step: u64,
    batch: &Batch,
    preds: &IndexMap<String, Tensor<B, 5>>,
) -> Result<Vec<PathBuf>, TrainError> {
    let mut pictures = Vec::new();
    let Some((saver, post)) = &callbacks.image_saver else { return Ok(pictures) };
    if !saver.wants(stage, epoch) {
        return Ok(pictures);
    }
    let Some(sample) = batch.samples.first() else { return Ok(pictures) };
    for (head, pred) in preds {
        let first = pred.clone().narrow(0, 0, 1);
        let dims = first.dims();
        let pred = crate::tensor::to_array(first);
        let pred = pred.clone().reshape(dims[1..].to_vec()).unwrap_or(pred);
        let written = saver.save(stage, step, head, sample.array(&task.x_key), sample.array(head), &pred, post.get(head))?;
        pictures.extend(written.into_iter().filter(|p| p.extension().is_some_and(|e| e == "png")));
    }
    Ok(pictures)
}

impl<B, M> Trainer<B, M, Supervised<B>>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Im2Im<B>,
    M::InnerModule: Im2Im<B::InnerBackend>,
{
    /// A trainer for cyto_dl's supervised multi-task model: one optimizer, one schedule.
    pub fn new(config: TrainerConfig, task: Task, model: M, optimizer: Optimizer<B>, scheduler: Scheduler, device: B::Device) -> Self {
        let step = Supervised::new(optimizer, scheduler, config.accumulate_grad_batches());
        Self::with_step(config, task, model, step, device)
    }
}

impl<B, M, S> Trainer<B, M, S>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Im2Im<B>,
    M::InnerModule: Im2Im<B::InnerBackend>,
    S: TrainingStep<B, M>,
{
    /// A trainer whose batches are trained by `step`.
    pub fn with_step(config: TrainerConfig, task: Task, model: M, step: S, device: B::Device) -> Self {
        let progress = Progress::new(config.log_every_n_steps);
        crate::device_fault::watch();
        Trainer {
            config,
            task,
            model,
            step,
            callbacks: Callbacks::default(),
            loggers: Vec::new(),
            plot: None,
            interrupt: None,
            peer: None,
            device,
            epoch: 0,
            global_step: 0,
            progress,
            pictures: Vec::new(),
        }
    }

    /// Trains data-parallel as `peer`: the step averages gradients and agrees each batch with the
    /// other peers, the loop agrees interrupts and adds up validation; only the first peer shows
    /// progress (its loggers and checkpoints are the caller's to give).
    pub fn join(&mut self, peer: Peer<B::InnerBackend>) {
        self.step.join(peer.clone());
        if !peer.is_chief() {
            self.progress.silence();
        }
        self.peer = Some(peer);
    }

    /// This device's place among the peers, in a data-parallel run.
    pub fn peer(&self) -> Option<&Peer<B::InnerBackend>> {
        self.peer.as_ref()
    }

    /// The checkpoint a stopped run leaves for resuming, as the end of a sentence.
    fn last_good_checkpoint(&self) -> String {
        self.callbacks
            .checkpoint
            .as_ref()
            .and_then(|c| c.best_path().cloned().or_else(|| c.config.writes_last().then(|| c.dirpath.join("last.ckpt"))))
            .filter(|p| p.exists())
            .map(|p| format!(": {}", p.display()))
            .unwrap_or_else(|| " (none was written yet)".into())
    }

    /// [`TrainError::Device`] when a GPU task failed since the last check; `at` says where the
    /// run is (call it after the batch's results were read back, which waits for the device).
    fn check_device(&self, at: &str) -> Result<(), TrainError> {
        crate::device_fault::check().map_err(|fault| TrainError::Device {
            fault,
            context: format!("Training stopped {at}; the last good checkpoint is kept{}", self.last_good_checkpoint()),
        })
    }

    /// Whether to stop before the next batch: Ctrl-C here, or on any peer.
    fn interrupted(&self) -> Result<bool, ParallelError> {
        let here = self.interrupt.is_some_and(|flag| flag.load(Ordering::SeqCst));
        match &self.peer {
            Some(peer) => peer.any("agreeing on an interrupt", here),
            None => Ok(here),
        }
    }

    /// Mean losses over a loader without gradients (`val/loss`, `val/loss/<head>` with `prefix` "val").
    pub fn evaluate(&mut self, loader: &Loader, prefix: &str, limit: Option<usize>, epoch: u64) -> Result<BTreeMap<String, f64>, TrainError> {
        let model = self.model.valid();
        let device = self.device.clone();
        let total = limit.map_or(loader.len(), |l| l.min(loader.len()));
        let mut totals = StageTotals::new(&self.task, prefix)?;
        self.progress.start(prefix, epoch, total as u64);
        for (i, batch) in loader.epoch(epoch).take(total).enumerate() {
            let batch = batch?;
            let (t, heads, preds) = batch_losses::<B::InnerBackend, _>(&model, &self.task, &batch, &device)?;
            let t = t.map(|t| scalar(&t));
            let heads: Vec<(String, f64)> = heads.iter().map(|(h, l)| (h.clone(), scalar(l))).collect();
            self.check_device(&format!("in {prefix} at epoch {epoch}, batch {i}"))?;
            if i == 0 {
                let written = save_first::<B::InnerBackend>(&self.callbacks, &self.task, prefix, epoch, self.global_step, &batch, &preds)?;
                self.pictures.extend(written.into_iter().map(|p| (p, format!("images/{prefix}_images"))));
            }
            totals.metrics.update(|head| self.task.batch_metric_pair(head, &batch, &preds))?;
            totals.add_losses(t, heads.iter().map(|(h, l)| (h.as_str(), *l)));
            self.progress.step(i as u64 + 1, t);
        }
        totals.add_up(self.peer.as_ref(), &self.task)?;
        let means = totals.means();
        self.progress.finish(&summary(&means));
        Ok(means)
    }

    /// Trains until `max_epochs`, early stopping or a non-finite loss.
    ///
    /// Nothing here touches burn's global RNG: data order and augmentation come from the
    /// loader's seeded streams, and each batch's dropout masks from a stream of (seed, epoch,
    /// batch) ([`NoiseScope`]), so a run is a function of its seed and a resumed run repeats
    /// an uninterrupted one.
    pub fn fit(&mut self, train: &Loader, val: Option<&Loader>) -> Result<FitReport, TrainError> {
        let mut report = FitReport { epochs_run: 0, global_step: self.global_step, step_losses: Vec::new(), stopped_early: None, last_val: BTreeMap::new() };
        while self.epoch < self.config.max_epochs() {
            let epoch = self.epoch;
            self.step.begin_epoch(epoch)?;
            let total = self.config.trainer.train_batches().map_or(train.len(), |l| l.min(train.len()));
            self.progress.start("train", epoch, total as u64);
            let mut totals = StageTotals::new(&self.task, "train")?;
            for (i, batch) in train.epoch(epoch).take(total).enumerate() {
                if self.interrupted()? {
                    self.progress.finish("interrupted");
                    return Err(TrainError::Interrupted { epoch, step: self.global_step });
                }
                let batch = batch?;
                let last = i + 1 == total;
                let noise = NoiseScope::enter(Rng::for_sample(self.dropout_seed(), epoch, i as u64));
                let out = self.step.step(self.model.clone(), &self.task, &batch, last, &self.device);
                drop(noise);
                // Before the step's result is looked at: a failed device task explains it.
                self.check_device(&format!("at epoch {epoch}, step {}", self.global_step))?;
                let out = match out {
                    Ok(out) => out,
                    Err(TrainError::NonFiniteLoss(value)) => {
                        return Err(TrainError::NotFinite { value, epoch, step: self.global_step, checkpoint: self.last_good_checkpoint() });
                    }
                    Err(e) => return Err(e),
                };
                if i == 0 {
                    let written = save_first::<B>(&self.callbacks, &self.task, "train", epoch, self.global_step, &batch, &out.predictions)?;
                    self.pictures.extend(written.into_iter().map(|p| (p, "images/train_images".to_string())));
                }
                totals.metrics.update(|head| self.task.batch_metric_pair(head, &batch, &out.predictions))?;
                self.model = out.model;
                for (name, value) in &out.losses {
                    totals.add(name.clone(), *value);
                }
                self.global_step += out.optimizer_steps;
                let value = out.losses.get("train/loss").copied();
                if let Some(v) = value {
                    report.step_losses.push(v);
                }
                self.progress.step(i as u64 + 1, value);
            }
            // The step already agreed each batch's losses; the metrics' states are per peer.
            totals.add_up_metrics(self.peer.as_ref(), &self.task)?;
            let train_metrics = totals.means();
            self.progress.finish(&summary(&train_metrics));
            self.epoch += 1;
            report.epochs_run += 1;

            let mut epoch_metrics = train_metrics.clone();
            let validate = val.is_some() && (epoch + 1).is_multiple_of(self.config.check_val_every_n_epoch());
            if validate {
                if let Some(v) = val {
                    let limit = self.config.trainer.val_batches();
                    let vm = self.evaluate(v, "val", limit, epoch)?;
                    for logger in self.loggers.iter_mut().map(|l| l.as_mut()).chain(self.plot.as_mut().map(|p| p as &mut dyn MetricLogger)) {
                        logger.log(epoch, self.global_step.saturating_sub(1), vm.clone());
                    }
                    epoch_metrics.extend(vm.clone());
                    report.last_val = vm;
                }
            }
            for logger in &mut self.loggers {
                logger.log(epoch, self.global_step.saturating_sub(1), train_metrics.clone());
                logger.flush()?;
            }
            if let Some(plot) = self.plot.as_mut() {
                plot.log(epoch, self.global_step.saturating_sub(1), train_metrics.clone());
                // A picture that cannot be drawn is not a reason to stop training.
                match plot.render() {
                    Ok(Some(path)) => self.pictures.push((path.to_path_buf(), "plots".to_string())),
                    Ok(None) => {}
                    Err(e) => eprintln!("warning: {e}"),
                }
            }
            self.hand_pictures_to_loggers();
            let stop = match self.callbacks.early_stopping.as_mut() {
                Some(es) if validate || val.is_none() => match epoch_metrics.get(es.monitor()) {
                    Some(v) => es.update(*v),
                    None => None,
                },
                _ => None,
            };
            self.save_checkpoints(epoch, &epoch_metrics)?;
            if let Some(stop) = stop {
                if matches!(stop, Stop::NotFinite { .. }) || self.epoch >= self.config.min_epochs() {
                    report.stopped_early = Some(stop.to_string());
                    println!("{stop}");
                    break;
                }
            }
        }
        report.global_step = self.global_step;
        Ok(report)
    }

    /// The seed of this peer's dropout streams: the run's, and another one for each further
    /// peer (each device drops out on its own samples).
    fn dropout_seed(&self) -> u64 {
        let rank = self.peer.as_ref().map_or(0, |p| p.rank as u64);
        (self.config.seed ^ DROPOUT_STREAMS).wrapping_add(rank.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn save_checkpoints(&mut self, epoch: u64, metrics: &BTreeMap<String, f64>) -> Result<(), TrainError> {
        let Some(mut policy) = self.callbacks.checkpoint.take() else { return Ok(()) };
        let plan = policy.on_epoch_end(epoch, self.global_step.saturating_sub(1), metrics);
        let saved = SavedCheckpoints {
            monitor: policy.config.monitor.clone(),
            save_top_k: policy.config.save_top_k,
            kept: policy.best.iter().map(|(_, p)| p.clone()).collect(),
            best: policy.best_path().cloned(),
            written: plan.write.clone(),
        };
        self.callbacks.checkpoint = Some(policy);
        for path in &plan.write {
            self.save_checkpoint(path)?;
        }
        for path in &plan.delete {
            let _ = std::fs::remove_file(path);
        }
        if !saved.written.is_empty() {
            for logger in &mut self.loggers {
                logger.checkpoints_saved(&saved);
            }
        }
        Ok(())
    }

    /// Gives the loggers the pictures written since they last heard (those still on disk).
    fn hand_pictures_to_loggers(&mut self) {
        for (file, dir) in std::mem::take(&mut self.pictures) {
            if file.is_file() {
                for logger in &mut self.loggers {
                    logger.log_artifact(&file, &dir);
                }
            }
        }
    }

    /// The trainer's state as stored in the checkpoint `path`. Paths are relative to the
    /// checkpoint's folder, so that a run folder can be moved and still resumes, and a
    /// checkpoint's bytes do not depend on where the run was.
    fn state_json(&self, path: &Path) -> serde_json::Value {
        let base = path.parent().unwrap_or(Path::new(""));
        let rel = |p: &Path| checkpoint::relative_path(base, p).display().to_string();
        let kept: Vec<serde_json::Value> = match &self.callbacks.checkpoint {
            Some(c) => c.best.iter().map(|(s, p)| json!([s, rel(p)])).collect(),
            None => Vec::new(),
        };
        json!({
            "format": "cytodl-checkpoint",
            "model_format": checkpoint::MODEL_FORMAT,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "seed": self.config.seed,
            "kept_checkpoints": kept,
            "early_stopping": self.callbacks.early_stopping.as_ref().map(|e| json!({"best": e.best, "wait": e.wait})),
            "logger_dir": self.loggers.first().map(|l| rel(Path::new(&l.location()))),
        })
    }

    pub fn save_checkpoint(&self, path: &Path) -> Result<(), TrainError> {
        let model = checkpoint::encode_model(&self.model).map_err(|source| TrainError::Model { path: path.to_path_buf(), source })?;
        let optimizers = self.step.optimizer_records().into_iter().map(|(name, r)| (name, r.to_bytes())).collect();
        let data = CheckpointData { state: self.state_json(path), model, optimizers };
        checkpoint::write(path, &data)?;
        Ok(())
    }

    /// Restores model, optimizer, epoch, step, early stopping and kept checkpoints from one of
    /// our checkpoints, so that the run continues exactly where it stopped.
    pub fn resume(&mut self, path: &Path) -> Result<(), TrainError> {
        let data = checkpoint::read(path)?;
        let bad = |message: String| TrainError::Resume { path: path.to_path_buf(), message };
        if let Some(saved) = data.state.get("seed").and_then(|s| s.as_u64()).filter(|s| *s != self.config.seed) {
            return Err(bad(format!("it was trained with seed {saved}, this run has seed {}: an exact resume needs the checkpoint's seed", self.config.seed)));
        }
        self.model =
            checkpoint::decode_model(self.model.clone(), &data, &self.device).map_err(|source| TrainError::Model { path: path.to_path_buf(), source })?;
        let records =
            data.optimizers.iter().map(|(name, bytes)| Ok((name.clone(), OptimizerRecord::from_bytes(bytes)?))).collect::<Result<Vec<_>, OptimError>>()?;
        self.step.load_optimizer_records(&records, &self.model)?;
        let s = &data.state;
        self.epoch = s["epoch"].as_u64().ok_or_else(|| bad("no epoch".into()))?;
        self.global_step = s["global_step"].as_u64().ok_or_else(|| bad("no global_step".into()))?;
        if let (Some(es), Some(saved)) = (self.callbacks.early_stopping.as_mut(), s.get("early_stopping").filter(|v| !v.is_null())) {
            es.best = saved["best"].as_f64().unwrap_or(es.best);
            es.wait = saved["wait"].as_u64().unwrap_or(0) as u32;
        }
        let base = path.parent().unwrap_or(Path::new(""));
        if let (Some(c), Some(kept)) = (self.callbacks.checkpoint.as_mut(), s["kept_checkpoints"].as_array()) {
            c.best = kept.iter().filter_map(|e| Some((e.get(0)?.as_f64()?, checkpoint::resolve_path(base, e.get(1)?.as_str()?)))).collect();
        }
        for logger in self.loggers.iter_mut().map(|l| l.as_mut()).chain(self.plot.as_mut().map(|p| p as &mut dyn MetricLogger)) {
            logger.resume_at(self.epoch);
        }
        Ok(())
    }
}

fn summary(metrics: &BTreeMap<String, f64>) -> String {
    metrics.iter().map(|(k, v)| format!("{k}={v:.4}")).collect::<Vec<_>>().join(" ")
}
