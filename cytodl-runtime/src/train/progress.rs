//! Training progress: an indicatif bar (epoch, step, loss, it/s, ETA) on a terminal, plain lines
//! (one per epoch and every `every` steps) when stdout is a file or a pipe (CI, `| tee`).

use std::io::IsTerminal as _;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    every: u64,
    stage: String,
    epoch: u64,
    total: u64,
    /// Nothing is shown (the peers of a data-parallel run other than the first).
    silent: bool,
}

impl Progress {
    /// A bar on a terminal, plain lines otherwise (`CYTODL_PLAIN_PROGRESS=1` forces lines).
    pub fn new(every: u64) -> Self {
        let terminal = std::io::stdout().is_terminal() && std::env::var_os("CYTODL_PLAIN_PROGRESS").is_none();
        let bar = terminal.then(|| {
            let b = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} [{elapsed}<{eta}, {per_sec}] {msg}") {
                b.set_style(style);
            }
            b
        });
        Progress { bar, started: Instant::now(), every: every.max(1), stage: String::new(), epoch: 0, total: 0, silent: false }
    }

    /// Shows nothing (one progress display per run: the first peer's).
    pub fn silence(&mut self) {
        self.silent = true;
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    pub fn start(&mut self, stage: &str, epoch: u64, total: u64) {
        self.stage = stage.to_string();
        self.epoch = epoch;
        self.total = total;
        self.started = Instant::now();
        if let Some(b) = &self.bar {
            b.reset();
            b.set_length(total);
            b.set_prefix(format!("{stage} epoch {epoch}"));
        }
    }

    pub fn step(&mut self, done: u64, loss: Option<f64>) {
        if self.silent {
            return;
        }
        let msg = loss.map(|l| format!("loss={l:.4}")).unwrap_or_default();
        match &self.bar {
            Some(b) => {
                b.set_position(done);
                b.set_message(msg);
            }
            None if done.is_multiple_of(self.every) || done == self.total => {
                let secs = self.started.elapsed().as_secs_f64().max(1e-9);
                let rate = done as f64 / secs;
                let eta = if rate > 0.0 { (self.total.saturating_sub(done)) as f64 / rate } else { 0.0 };
                println!("{} epoch {} step {}/{} {} {:.2} it/s eta {:.0}s", self.stage, self.epoch, done, self.total, msg, rate, eta);
            }
            None => {}
        }
    }

    /// Ends the stage with its summary (`val/loss=0.31 ...`).
    pub fn finish(&mut self, summary: &str) {
        if self.silent {
            return;
        }
        match &self.bar {
            Some(b) => b.finish_with_message(summary.to_string()),
            None => println!("{} epoch {} done in {:.1}s {summary}", self.stage, self.epoch, self.started.elapsed().as_secs_f64()),
        }
    }
}
