//! The trainer on a tiny model: exact resume (per-step losses equal an uninterrupted run),
//! a non-finite loss stops training with a message and leaves the last good checkpoint,
//! Lightning-style CSV logs and checkpoint files.

use std::path::Path;

use burn::module::Module;
use burn::nn::conv::Conv3d;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use cytodl_runtime::config::{ConfigPath, ModelCheckpoint, Trainer as TrainerArgs};
use cytodl_runtime::loss::{Loss, Reduction};
use cytodl_runtime::nn::Init;
use cytodl_runtime::optim::{AdamConfig, Optimizer, OptimizerConfig};
use cytodl_runtime::task::{Im2Im, Task};
use cytodl_runtime::train::checkpoint_policy::CheckpointPolicy;
use cytodl_runtime::train::csv_logger::CsvLogger;
use cytodl_runtime::train::error::TrainError;
use cytodl_runtime::train::trainer::{FitReport, Trainer, TrainerConfig};
use indexmap::IndexMap;

#[path = "common/tiny_trainer.rs"]
mod tiny_trainer;
use tiny_trainer::*;

#[test]
fn resumed_run_matches_uninterrupted_run() {
    let full_dir = tmp("full");
    let mut full = trainer(&full_dir, 4);
    let train = loader(samples(6, None));
    let val = loader(samples(2, None));
    let whole: FitReport = full.fit(&train, Some(&val)).unwrap();
    assert_eq!(whole.step_losses.len(), 12, "4 epochs x 3 batches");
    assert!(whole.step_losses.last().unwrap() < whole.step_losses.first().unwrap(), "it learns: {:?}", whole.step_losses);

    // Stop after epoch 2 ("killed"), then resume from last.ckpt in a fresh process state.
    let part_dir = tmp("part");
    let mut first = trainer(&part_dir, 2);
    let head = first.fit(&train, Some(&val)).unwrap();
    let mut second = trainer(&part_dir, 4);
    second.resume(&part_dir.join("checkpoints/last.ckpt")).unwrap();
    assert_eq!(second.epoch, 2);
    let tail = second.fit(&train, Some(&val)).unwrap();
    let mut resumed = head.step_losses.clone();
    resumed.extend(tail.step_losses);
    assert_eq!(resumed, whole.step_losses, "per-step losses after resume equal the uninterrupted run");
}

#[test]
fn non_finite_loss_stops_and_keeps_the_last_good_checkpoint() {
    let dir = tmp("nan");
    let mut t = trainer(&dir, 3);
    // A NaN target in a row that only the training set has: epoch 0 already meets it, so use a
    // two-stage run: a clean epoch first, then the poisoned data.
    let val = loader(samples(2, None));
    t.fit(&loader(samples(6, None)), Some(&val)).expect("the clean epochs train");
    let last = dir.join("checkpoints/last.ckpt");
    let before = std::fs::read(&last).unwrap();
    let mut t = trainer(&dir, 5);
    t.resume(&last).unwrap();
    let err = t.fit(&loader(samples(6, Some(4))), Some(&val)).unwrap_err();
    assert!(matches!(err, TrainError::NotFinite { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("the loss became NaN") && msg.contains("last good checkpoint is kept"), "{msg}");
    assert_eq!(std::fs::read(&last).unwrap(), before, "last.ckpt untouched");
}

/// Trains 2 epochs, puts `failure` where the next `last.ckpt` write's temporary file goes, and
/// trains on: the run must stop with an error naming the file, leave the checkpoint written
/// before as it was, and resume from it (and train on) once the failure is removed. Returns
/// the error's text.
fn a_failed_write_keeps_the_previous_checkpoint(name: &str, failure: impl Fn(&Path)) -> String {
    let dir = tmp(name);
    let (train, val) = (loader(samples(6, None)), loader(samples(2, None)));
    trainer(&dir, 2).fit(&train, Some(&val)).expect("two clean epochs");
    let last = dir.join("checkpoints/last.ckpt");
    let before = std::fs::read(&last).unwrap();
    let temp = dir.join(format!("checkpoints/last.tmp.{}", std::process::id()));
    failure(&temp);

    let mut t = trainer(&dir, 4);
    t.resume(&last).unwrap();
    let err = t.fit(&train, Some(&val)).unwrap_err().to_string();
    assert!(err.contains("cannot write checkpoint") && err.contains(&last.display().to_string()), "{err}");
    assert_eq!(std::fs::read(&last).unwrap(), before, "last.ckpt is the one written before");
    if std::fs::symlink_metadata(&temp).is_ok_and(|m| m.is_dir()) {
        std::fs::remove_dir(&temp).unwrap();
    }
    assert!(std::fs::symlink_metadata(&temp).is_err(), "the failed write's temporary file is gone");
    let mut again = trainer(&dir, 4);
    again.resume(&last).expect("the previous checkpoint loads");
    assert_eq!(again.epoch, 2);
    again.fit(&train, Some(&val)).expect("without the failure, training goes on");
    assert_eq!(again.epoch, 4);
    err
}

/// A checkpoint that cannot be written (a permission lost, here a folder standing where the
/// write's temporary file goes).
#[test]
fn a_failed_checkpoint_write_is_reported_and_the_previous_one_stays_loadable() {
    a_failed_write_keeps_the_previous_checkpoint("write-fails", |temp| std::fs::create_dir_all(temp).unwrap());
}

/// A disk that fills up while the checkpoint is written: the temporary file is a link to
/// `/dev/full`, where every write fails with ENOSPC, as on a full filesystem; the error says so.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_during_a_checkpoint_write_is_reported_and_the_previous_one_stays_loadable() {
    let err = a_failed_write_keeps_the_previous_checkpoint("disk-full", |temp| std::os::unix::fs::symlink("/dev/full", temp).unwrap());
    assert!(err.to_lowercase().contains("no space left on device"), "the cause is said: {err}");
}

/// Same structure, other shapes (a 3-D kernel where the checkpoint has a 2-D one): an error that
/// names the parameter, not weights read into the wrong shape.
#[test]
fn a_checkpoint_of_another_architecture_is_an_error() {
    let dir = tmp("arch");
    trainer(&dir, 1).fit(&loader(samples(4, None)), None).unwrap();
    let other = tmp("arch-other");
    let mut t = trainer(&other, 2);
    t.model = Tiny { conv: seeded_conv([3, 3, 3], &Init::new(1).at("conv")) };
    let err = t.resume(&dir.join("checkpoints/last.ckpt")).unwrap_err().to_string();
    assert!(err.contains("`conv.weight` is [1, 1, 1, 3, 3] in the checkpoint, [1, 1, 3, 3, 3] here"), "{err}");
}

#[test]
fn csv_log_and_checkpoint_files_in_lightnings_layout() {
    let dir = tmp("layout");
    let mut t = trainer(&dir, 3);
    t.loggers.push(Box::new(CsvLogger::create(&dir, "csv/").unwrap()));
    let saver = cytodl_runtime::config::ImageSaver {
        save_dir: ConfigPath::in_run(""),
        save_every_n_epochs: 1,
        stages: vec!["train".into(), "val".into()],
        save_input: true,
    };
    let saver = cytodl_runtime::train::evaluate::ImageSaver::new(saver, &dir);
    t.callbacks.image_saver = Some((saver, Default::default()));
    let report = t.fit(&loader(samples(6, None)), Some(&loader(samples(2, None)))).unwrap();
    let csv = std::fs::read_to_string(dir.join("csv/version_0/metrics.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert_eq!(header, "epoch,step,train/loss,train/loss/seg,val/loss,val/loss/seg");
    assert_eq!(csv.lines().count(), 1 + 2 * 3, "a val row and a train row per epoch:\n{csv}");
    // The values: each train row is the mean of its epoch's step losses; val rows alternate.
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let mut val = Vec::new();
    for (epoch, pair) in rows.chunks(2).enumerate() {
        let (v, tr) = (&pair[0], &pair[1]);
        assert_eq!((v[0], tr[0]), (epoch.to_string().as_str(), epoch.to_string().as_str()));
        assert_eq!(v[1], tr[1], "one step number per epoch");
        let mean: f64 = report.step_losses[epoch * 3..epoch * 3 + 3].iter().sum::<f64>() / 3.0;
        let logged: f64 = tr[2].parse().unwrap();
        assert!((logged - mean).abs() < 1e-12, "epoch {epoch}: train/loss {logged}, mean of its steps {mean}");
        assert_eq!(tr[2], tr[3], "one head: total = head loss");
        assert_eq!((tr[4], tr[5], v[2], v[3]), ("", "", "", ""), "train and val rows have their own columns");
        val.push(v[4].parse::<f64>().unwrap());
    }
    assert!(dir.join("checkpoints/last.ckpt").is_file());
    let kept: Vec<_> = std::fs::read_dir(dir.join("checkpoints")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect();
    assert_eq!(kept.len(), 2, "best (top-1) and last: {kept:?}");
    // The kept one is the epoch with the lowest val/loss (mode min).
    let best = val.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).map(|(e, _)| e).unwrap();
    assert!(kept.contains(&format!("epoch_{best:03}.ckpt")), "best epoch {best} (val {val:?}) not kept: {kept:?}");
    // cyto_dl's ImageSaver: the first batch of each epoch, `<step>_<head>_{input,target,pred}.tif`.
    for (stage, step) in [("train", 0), ("train", 3), ("val", 3), ("val", 9)] {
        for kind in ["input", "target", "pred"] {
            let p = dir.join(format!("{stage}_images/{step}_seg_{kind}.tif"));
            let (image, _) = cytodl_runtime::io::read(&p, &Default::default()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(image.data().len(), 64, "{}: one 8 x 8 sample", p.display());
        }
        // ... and the three side by side: a PNG of three 8 x 8 panels with 4-pixel gaps, scaled up.
        let p = dir.join(format!("{stage}_images/{step}_seg_montage.png"));
        let reader =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))).read_info().expect("a PNG");
        let scale = cytodl_runtime::train::montage::MIN_WIDTH.div_ceil(8 * 3 + 4 * 2) as u32;
        assert_eq!((reader.info().width, reader.info().height), ((8 * 3 + 4 * 2) * scale, 8 * scale), "{}", p.display());
    }
    // The saved target is a validation sample's target, as loaded (this test's val loader
    // shuffles, so either of the two).
    let (target, _) = cytodl_runtime::io::read(&dir.join("val_images/3_seg_target.tif"), &Default::default()).unwrap();
    let candidates: Vec<Vec<f32>> = samples(2, None).iter().map(|s| s.array("seg").unwrap().data().to_vec()).collect();
    assert!(candidates.iter().any(|c| c == target.data()), "the saved target is one of the validation targets");
}

/// A model trained by two named optimizers, one per part (the shape of cyto_dl's GAN step: a
/// `generator` and a `discriminator` optimizer): the trainer loop, its checkpoints and exact
/// resume work unchanged with a [`TrainingStep`] other than the supervised one.
mod two_optimizers {
    use super::*;
    use burn::optim::GradientsParams;
    use cytodl_runtime::data::loader::Batch;
    use cytodl_runtime::optim::OptimizerRecord;
    use cytodl_runtime::task::batch_tensor;
    use cytodl_runtime::train::parallel::{agree_batch, BatchAgreement, Peer};
    use cytodl_runtime::train::step::{StepOutput, TrainingStep};

    #[derive(Module, Debug)]
    pub struct Pair<B: Backend> {
        first: Conv3d<B>,
        second: Conv3d<B>,
    }

    impl<B: Backend> Im2Im<B> for Pair<B> {
        fn forward_heads(&self, x: Tensor<B, 5>) -> IndexMap<String, Tensor<B, 5>> {
            [("seg".to_string(), self.second.forward(self.first.forward(x)))].into_iter().collect()
        }
    }

    /// Steps `first` with one optimizer and `second` with another, at different learning rates.
    pub struct PerPart {
        first: Optimizer<B>,
        second: Optimizer<B>,
        lrs: (f64, f64),
        peer: Option<Peer<<B as burn::tensor::backend::AutodiffBackend>::InnerBackend>>,
    }

    impl TrainingStep<B, Pair<B>> for PerPart {
        fn begin_epoch(&mut self, _epoch: u64) -> Result<(), TrainError> {
            Ok(())
        }

        fn step(
            &mut self,
            model: Pair<B>,
            task: &Task,
            batch: &Batch,
            _: bool,
            device: &burn::tensor::Device<B>,
        ) -> Result<StepOutput<B, Pair<B>>, TrainError> {
            let x = batch_tensor::<B>(batch, &task.x_key, device)?;
            let y = batch_tensor::<B>(batch, "seg", device)?;
            let predictions = model.forward_heads(x);
            let loss = (predictions["seg"].clone() - y).powi_scalar(2).mean();
            let value: f64 = loss.clone().into_scalar().into();
            let names = ["train/loss".to_string()];
            let losses = match agree_batch(self.peer.as_ref(), &names, Some([(names[0].clone(), value)].into_iter().collect()))? {
                BatchAgreement::Losses(losses) => losses,
                BatchAgreement::NonFinite(v) => return Err(TrainError::NonFiniteLoss(v)),
                BatchAgreement::Skip => unreachable!("every batch here has a target"),
            };
            let mut grads = loss.backward();
            let mut g_first = GradientsParams::from_module(&mut grads, &model.first);
            let mut g_second = GradientsParams::from_module(&mut grads, &model.second);
            if let Some(peer) = &self.peer {
                g_first = peer.mean_gradients::<B, _>(&model.first, g_first)?;
                g_second = peer.mean_gradients::<B, _>(&model.second, g_second)?;
            }
            let Pair { first, second } = model;
            let first = self.first.step(self.lrs.0, first, g_first);
            let second = self.second.step(self.lrs.1, second, g_second);
            Ok(StepOutput { model: Pair { first, second }, losses, predictions, optimizer_steps: 2 })
        }

        fn optimizer_records(&self) -> Vec<(String, OptimizerRecord)> {
            vec![("first".into(), self.first.to_record()), ("second".into(), self.second.to_record())]
        }

        fn load_optimizer_records(&mut self, records: &[(String, OptimizerRecord)], model: &Pair<B>) -> Result<(), TrainError> {
            for (name, record) in records {
                match name.as_str() {
                    "first" => self.first.load_record(record, &model.first)?,
                    "second" => self.second.load_record(record, &model.second)?,
                    other => return Err(TrainError::Optimizers(format!("no optimizer `{other}` here"))),
                }
            }
            Ok(())
        }

        fn join(&mut self, peer: Peer<<B as burn::tensor::backend::AutodiffBackend>::InnerBackend>) {
            self.peer = Some(peer);
        }
    }

    fn trainer(dir: &std::path::Path, max_epochs: u64) -> Trainer<B, Pair<B>, PerPart> {
        let device = Default::default();
        let conv = |name: &str| super::seeded_conv([1, 3, 3], &Init::new(1).at(name));
        let adam = || Optimizer::new(OptimizerConfig::Adam(AdamConfig::default())).unwrap();
        let task = Task::new("raw", vec![("seg".into(), Loss::Mse { reduction: Reduction::Mean })]);
        let step = PerPart { first: adam(), second: adam(), lrs: (0.05, 0.01), peer: None };
        let config = TrainerConfig::new(TrainerArgs { max_epochs: max_epochs as i64, ..Default::default() }, 1);
        let mut t = Trainer::with_step(config, task, Pair { first: conv("first"), second: conv("second") }, step, device);
        let checkpoint = ModelCheckpoint { save_last: Some(true), ..ModelCheckpoint::default() };
        t.callbacks.checkpoint = Some(CheckpointPolicy::new(checkpoint, dir));
        t
    }

    #[test]
    fn named_optimizers_checkpoint_and_resume_exactly() {
        let train = loader(samples(6, None));
        let full_dir = tmp("pair-full");
        let whole = trainer(&full_dir, 4).fit(&train, None).unwrap();
        assert!(whole.step_losses.last() < whole.step_losses.first(), "it learns: {:?}", whole.step_losses);

        let dir = tmp("pair-part");
        let head = trainer(&dir, 2).fit(&train, None).unwrap();
        let last = dir.join("checkpoints/last.ckpt");
        let saved = cytodl_runtime::train::checkpoint::read(&last).unwrap();
        let names: Vec<&str> = saved.optimizers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["first", "second"]);
        let mut second = trainer(&dir, 4);
        second.resume(&last).unwrap();
        let tail = second.fit(&train, None).unwrap();
        let mut resumed = head.step_losses;
        resumed.extend(tail.step_losses);
        assert_eq!(resumed, whole.step_losses, "both optimizers' states survive the checkpoint");

        // A checkpoint of the one-optimizer trainer does not silently fit this one.
        let single = tmp("pair-single");
        super::trainer(&single, 1).fit(&train, None).unwrap();
        let mismatch = tmp("pair-mismatch");
        let mut t = trainer(&mismatch, 2);
        let err = t.resume(&single.join("checkpoints/last.ckpt")).unwrap_err().to_string();
        assert!(err.contains("does not fit this experiment's model"), "{err}");
    }
}

/// Several loggers side by side (Lightning's `logger:` list; MLflow will be one): each gets
/// every row.
#[test]
fn every_logger_gets_every_row() {
    use cytodl_runtime::train::logger::MetricLogger;
    use std::sync::{Arc, Mutex};

    /// (epoch, step, metric names) of each row.
    type Row = (u64, u64, Vec<String>);
    #[derive(Clone, Default)]
    struct Recording(Arc<Mutex<Vec<Row>>>);
    impl MetricLogger for Recording {
        fn log(&mut self, epoch: u64, step: u64, values: std::collections::BTreeMap<String, f64>) {
            self.0.lock().unwrap().push((epoch, step, values.into_keys().collect()));
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
        fn resume_at(&mut self, epoch: u64) {
            self.0.lock().unwrap().retain(|(e, _, _)| *e < epoch);
        }
        fn location(&self) -> String {
            "memory".into()
        }
    }

    let dir = tmp("loggers");
    let recording = Recording::default();
    let mut t = trainer(&dir, 2);
    t.loggers.push(Box::new(CsvLogger::create(&dir, "csv/").unwrap()));
    t.loggers.push(Box::new(recording.clone()));
    t.fit(&loader(samples(6, None)), Some(&loader(samples(2, None)))).unwrap();
    let rows = recording.0.lock().unwrap().clone();
    let csv = std::fs::read_to_string(dir.join("csv/version_0/metrics.csv")).unwrap();
    assert_eq!(rows.len(), csv.lines().count() - 1, "the same rows as the CSV:\n{csv}");
    assert_eq!(rows[0].2, ["val/loss", "val/loss/seg"]);
    assert_eq!(rows[1].2, ["train/loss", "train/loss/seg"]);
    assert_eq!((rows[3].0, rows[3].1), (1, 5), "epoch 1 ends at step 5 (3 batches per epoch)");
}
