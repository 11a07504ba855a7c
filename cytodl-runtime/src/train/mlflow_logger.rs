//! cyto_dl's `MLFlowLogger` (`logger.mlflow`, as declared in `cytodl-schema`) over
//! [`cytodl_mlflow`]: the run's metrics per epoch with the CSV's names (and `epoch`, as
//! Lightning logs it), the flattened resolved config as params, the resolved config as the
//! artifact `config/train.yaml`, checkpoints as cyto_dl uploads them, the run's pictures, and
//! the run's status. Everything goes through the run folder's journal (`<run>/mlflow/`), so the
//! server being away never stops or slows training.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cytodl_mlflow::run::{now_ms, TrackError};
use cytodl_mlflow::{flatten_config, Metric, RunOptions, RunStatus, TrackedRun, TrackingUri, UriError};
use thiserror::Error;

use super::logger::{MetricLogger, RunEnd, SavedCheckpoints};

#[derive(Debug, Error)]
pub enum MlflowLoggerError {
    #[error("logger.mlflow: {0}")]
    Uri(#[from] UriError),
    #[error("logger.mlflow: {0}")]
    Track(#[from] TrackError),
}

/// The MLflow logger of one run.
pub struct MlflowLogger {
    run: Option<TrackedRun>,
    uri: String,
    /// Checkpoint names uploaded to `checkpoints/<monitor>/`, to delete those that leave the top k.
    uploaded: BTreeSet<String>,
    /// The checkpoint last uploaded as `best.ckpt`.
    best: Option<PathBuf>,
    /// `last.ckpt`, uploaded when the run ends.
    last: Option<PathBuf>,
}

/// The tracking URI of `config`: `tracking_uri`, else `$MLFLOW_TRACKING_URI`, else the file
/// store at `save_dir` (Lightning's order); relative folders against the working directory.
pub fn tracking_uri(config: &cytodl_schema::MLFlowLogger, run_dir: &Path) -> Result<TrackingUri, UriError> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let explicit = config.tracking_uri.as_deref().map(str::trim).filter(|u| !u.is_empty());
    let from_env = std::env::var("MLFLOW_TRACKING_URI").ok().filter(|u| !u.trim().is_empty());
    match explicit.map(str::to_string).or(from_env) {
        Some(uri) => TrackingUri::parse(Some(&uri), &cwd),
        None => {
            let dir = config.save_dir.under(run_dir);
            Ok(TrackingUri::Folder(if dir.is_absolute() { dir } else { cwd.join(dir) }))
        }
    }
}

impl MlflowLogger {
    /// Starts (or, in a resumed run folder, continues) the MLflow run of `config` for the run in
    /// `run_dir`, and logs the config: params and `config/train.yaml`.
    pub fn start(config: &cytodl_schema::MLFlowLogger, run_dir: &Path, experiment: &str, resolved_yaml: &str) -> Result<Self, MlflowLoggerError> {
        let uri = tracking_uri(config, run_dir)?;
        let mut tags: Vec<(String, String)> = config.tags.iter().flat_map(|t| t.0.iter().map(|(k, v)| (k.clone(), v.clone()))).collect();
        tags.push(("cytodl.experiment".into(), experiment.to_string()));
        tags.push(("cytodl.run_dir".into(), run_dir.display().to_string()));
        tags.push(("mlflow.source.name".into(), std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default()));
        let options = RunOptions {
            tracking_uri: uri.clone(),
            experiment: config.experiment_name.clone(),
            run_name: config.run_name.clone(),
            tags,
            fault_tolerant: config.fault_tolerant,
            flush_timeout: Duration::from_secs_f64(config.flush_timeout.max(0.0)),
        };
        let resumed = run_dir.join(cytodl_mlflow::Journal::FOLDER).join("journal.jsonl").is_file();
        let mut run = TrackedRun::start(run_dir, options)?;
        if !resumed {
            match flatten_config(resolved_yaml) {
                Ok((params, dropped)) => {
                    if dropped > 0 {
                        eprintln!("note: logger.mlflow: {dropped} config keys are longer than MLflow's 250 characters and are not params (config/train.yaml has them)");
                    }
                    run.log_params(params);
                }
                Err(e) => eprintln!("warning: logger.mlflow: the resolved config is not YAML ({e}); no params logged"),
            }
            let config_file = run.journal_dir().join("train.yaml");
            match std::fs::write(&config_file, resolved_yaml) {
                Ok(()) => run.log_artifact(&config_file, "config", "train.yaml"),
                Err(e) => eprintln!("warning: logger.mlflow: {}: {e}", config_file.display()),
            }
        }
        Ok(MlflowLogger { run: Some(run), uri: uri.as_string(), uploaded: BTreeSet::new(), best: None, last: None })
    }

    /// The journal folder (`<run>/mlflow`).
    pub fn journal_dir(&self) -> Option<PathBuf> {
        self.run.as_ref().map(TrackedRun::journal_dir)
    }

    fn upload(&mut self, file: &Path, dir: &str, name: &str) {
        if let Some(run) = self.run.as_mut() {
            run.log_artifact(file, dir, name);
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

impl MetricLogger for MlflowLogger {
    fn log(&mut self, epoch: u64, step: u64, values: BTreeMap<String, f64>) {
        let Some(run) = self.run.as_mut() else { return };
        if values.is_empty() {
            return;
        }
        let (timestamp, step) = (now_ms(), step as i64);
        let mut metrics: Vec<Metric> = values.into_iter().map(|(key, value)| Metric { key, value, timestamp, step }).collect();
        metrics.push(Metric { key: "epoch".into(), value: epoch as f64, timestamp, step });
        run.log_metrics(metrics);
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(run) = &self.run {
            run.sync();
        }
        Ok(())
    }

    /// MLflow keeps a metric's history; the epochs a resumed run repeats are logged again.
    fn resume_at(&mut self, _epoch: u64) {}

    fn location(&self) -> String {
        match self.run.as_ref().and_then(|r| r.delivery().run) {
            Some(r) => format!("{} (run {})", self.uri, r.run_id),
            None => self.uri.clone(),
        }
    }

    fn log_artifact(&mut self, file: &Path, dir: &str) {
        let name = file_name(file);
        self.upload(file, dir, &name);
    }

    /// As cyto_dl's logger: with a monitor, `checkpoints/<monitor>/` mirrors the top k (those
    /// that left it are deleted) plus `best.ckpt`; without one, the latest checkpoint becomes
    /// `checkpoints/last.ckpt` (`save_top_k` 1) or each is kept under `checkpoints/`.
    fn checkpoints_saved(&mut self, saved: &SavedCheckpoints) {
        if let Some(last) = saved.written.iter().find(|p| file_name(p) == "last.ckpt") {
            self.last = Some(last.clone());
        }
        let ranked: Vec<&PathBuf> = saved.written.iter().filter(|p| file_name(p) != "last.ckpt").collect();
        if ranked.is_empty() {
            return;
        }
        match &saved.monitor {
            Some(monitor) => {
                let dir = format!("checkpoints/{monitor}");
                let kept: BTreeSet<String> = saved.kept.iter().map(|p| file_name(p)).collect();
                for gone in self.uploaded.difference(&kept).cloned().collect::<Vec<_>>() {
                    if let Some(run) = self.run.as_mut() {
                        run.delete_artifact(&format!("{dir}/{gone}"));
                    }
                    self.uploaded.remove(&gone);
                }
                for path in saved.kept.iter().filter(|p| !self.uploaded.contains(&file_name(p))).cloned().collect::<Vec<_>>() {
                    let name = file_name(&path);
                    self.upload(&path, &dir, &name);
                    self.uploaded.insert(name);
                }
                if let Some(best) = saved.best.clone().filter(|b| self.best.as_ref() != Some(b)) {
                    self.upload(&best, &dir, "best.ckpt");
                    self.best = Some(best);
                }
            }
            None if saved.save_top_k == 1 => {
                if let Some(latest) = ranked.last() {
                    self.upload(latest, "checkpoints", "last.ckpt");
                }
            }
            None => {
                for path in ranked {
                    self.log_artifact(path, "checkpoints");
                }
            }
        }
    }

    fn finish(&mut self, end: RunEnd) -> Option<String> {
        if let Some(last) = self.last.take().filter(|p| p.is_file()) {
            self.upload(&last, "checkpoints", "last.ckpt");
        }
        let run = self.run.take()?;
        let journal = run.journal_dir();
        let status = match end {
            RunEnd::Finished => RunStatus::Finished,
            RunEnd::Failed => RunStatus::Failed,
            RunEnd::Interrupted => RunStatus::Killed,
        };
        let delivery = run.finish(status);
        let mut line = delivery.to_string();
        if delivery.pending > 0 {
            let exe =
                std::env::current_exe().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_else(|| "<experiment>".into());
            let run_dir = journal.parent().unwrap_or(&journal).display().to_string();
            line.push_str(&format!(". They are kept in {}; send them with `{exe} mlflow-sync {run_dir}`", journal.display()));
        }
        Some(line)
    }
}

impl Drop for MlflowLogger {
    /// A logger dropped without `finish` (a panic) leaves its journal for `mlflow-sync`.
    fn drop(&mut self) {
        if let Some(run) = &self.run {
            run.sync();
        }
    }
}
