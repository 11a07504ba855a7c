//! Where metrics go. The trainer logs through [`MetricLogger`] so that several loggers can run
//! side by side, as Lightning's `logger:` list does: the CSV logger today
//! ([`super::csv_logger::CsvLogger`], Lightning's layout), MLflow (a tracking server) next.

use std::collections::BTreeMap;

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
