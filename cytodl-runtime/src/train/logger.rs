//! Where metrics go. The trainer logs through [`MetricLogger`] so that several loggers can run
//! side by side, as Lightning's `logger:` list does: the CSV logger
//! ([`super::csv_logger::CsvLogger`], Lightning's layout) and MLflow
//! ([`super::mlflow_logger::MlflowLogger`]). Loggers that keep files as well (MLflow's
//! artifacts) also hear of the run's pictures and checkpoints, and of how the run ended.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How a run ended, as a logger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    Finished,
    Failed,
    /// Stopped by the user (Ctrl-C, or the scheduler's SIGTERM).
    Interrupted,
}

/// The checkpoints after an epoch's saves (what cyto_dl's MLflow logger mirrors).
#[derive(Debug, Clone, PartialEq)]
pub struct SavedCheckpoints {
    /// The metric ranking them (`ModelCheckpoint.monitor`).
    pub monitor: Option<String>,
    pub save_top_k: i64,
    /// The checkpoints kept now (the top k, or the latest without a monitor).
    pub kept: Vec<PathBuf>,
    pub best: Option<PathBuf>,
    /// What this epoch wrote.
    pub written: Vec<PathBuf>,
}

/// A destination for the metrics of a run.
pub trait MetricLogger: Send {
    /// One row: the metrics of a stage (`train/loss`, `val/loss/<head>`, ...) at an epoch's end.
    fn log(&mut self, epoch: u64, step: u64, values: BTreeMap<String, f64>);

    /// Makes everything logged so far durable (written, sent).
    fn flush(&mut self) -> std::io::Result<()>;

    /// On resume at `epoch`: forgets the rows of that epoch and later (the interrupted run may
    /// have logged some, and its test row), which the resumed run logs again.
    fn resume_at(&mut self, epoch: u64);

    /// Where the logs are (a folder, a run URL), recorded in checkpoints.
    fn location(&self) -> String;

    /// A file the run made (a montage, the loss plot), to keep under `dir` among the logger's
    /// artifacts. Loggers without artifacts ignore it.
    fn log_artifact(&mut self, _file: &Path, _dir: &str) {}

    /// The checkpoints after an epoch's saves.
    fn checkpoints_saved(&mut self, _saved: &SavedCheckpoints) {}

    /// The run is over; a line to tell the user, if the logger has one (what was not delivered).
    fn finish(&mut self, _end: RunEnd) -> Option<String> {
        None
    }
}

impl MetricLogger for super::csv_logger::CsvLogger {
    fn log(&mut self, epoch: u64, step: u64, values: BTreeMap<String, f64>) {
        super::csv_logger::CsvLogger::log(self, epoch, step, values)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        super::csv_logger::CsvLogger::flush(self)
    }

    fn resume_at(&mut self, epoch: u64) {
        super::csv_logger::CsvLogger::resume_at(self, epoch)
    }

    fn location(&self) -> String {
        self.dir().display().to_string()
    }
}
