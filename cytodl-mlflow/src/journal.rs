//! The journal: every record of a tracked run, in order, on disk in the run folder, and how far
//! the store has taken it. A killed process, a server that never came back, a full disk on the
//! server: whatever was not delivered is still here, and [`crate::sync`] sends it later.
//!
//! ```text
//! <run>/mlflow/journal.jsonl   one record per line, appended (never rewritten)
//! <run>/mlflow/state.json      the store's run (ids, artifact URI), how many records were sent,
//!                              the tracking URI, and the records the store refused
//! <run>/mlflow/outbox/         artifacts as they were when logged (hard links or copies),
//!                              removed once uploaded
//! ```

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use thiserror::Error;

use crate::store::{Metric, RunInfo, RunStatus};

#[derive(Debug, Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: not a journal record: {message}")]
    Corrupt { path: PathBuf, line: usize, message: String },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io { path: path.to_path_buf(), source }
}

/// One thing to tell the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    StartRun {
        experiment: String,
        run_name: Option<String>,
        tags: Vec<(String, String)>,
        start_time: i64,
    },
    Metrics(Vec<Metric>),
    Params(Vec<(String, String)>),
    Tags(Vec<(String, String)>),
    /// Upload `outbox/<snapshot>` as `<dir>/<name>`.
    Artifact {
        snapshot: String,
        dir: String,
        name: String,
    },
    DeleteArtifact {
        path: String,
    },
    Status {
        status: RunStatus,
        end_time: Option<i64>,
    },
}

fn pairs_json(pairs: &[(String, String)]) -> Value {
    Value::Array(pairs.iter().map(|(k, v)| json!([k, v])).collect())
}

fn pairs_from(v: &Value) -> Option<Vec<(String, String)>> {
    v.as_array()?.iter().map(|p| Some((p.get(0)?.as_str()?.to_string(), p.get(1)?.as_str()?.to_string()))).collect()
}

impl Record {
    pub fn to_json(&self) -> Value {
        match self {
            Record::StartRun { experiment, run_name, tags, start_time } => {
                json!({"start_run": {"experiment": experiment, "run_name": run_name, "tags": pairs_json(tags), "start_time": start_time}})
            }
            Record::Metrics(ms) => json!({"metrics": ms.iter().map(Metric::to_json).collect::<Vec<_>>()}),
            Record::Params(p) => json!({"params": pairs_json(p)}),
            Record::Tags(t) => json!({"tags": pairs_json(t)}),
            Record::Artifact { snapshot, dir, name } => json!({"artifact": {"snapshot": snapshot, "dir": dir, "name": name}}),
            Record::DeleteArtifact { path } => json!({"delete_artifact": path}),
            Record::Status { status, end_time } => json!({"status": {"status": status.name(), "end_time": end_time}}),
        }
    }

    pub fn from_json(v: &Value) -> Option<Record> {
        let (kind, body) = v.as_object()?.iter().next()?;
        Some(match kind.as_str() {
            "start_run" => Record::StartRun {
                experiment: body["experiment"].as_str()?.to_string(),
                run_name: body["run_name"].as_str().map(str::to_string),
                tags: pairs_from(&body["tags"])?,
                start_time: body["start_time"].as_i64()?,
            },
            "metrics" => Record::Metrics(body.as_array()?.iter().map(Metric::from_json).collect::<Option<_>>()?),
            "params" => Record::Params(pairs_from(body)?),
            "tags" => Record::Tags(pairs_from(body)?),
            "artifact" => Record::Artifact {
                snapshot: body["snapshot"].as_str()?.to_string(),
                dir: body["dir"].as_str()?.to_string(),
                name: body["name"].as_str()?.to_string(),
            },
            "delete_artifact" => Record::DeleteArtifact { path: body.as_str()?.to_string() },
            "status" => Record::Status { status: RunStatus::from_name(body["status"].as_str()?)?, end_time: body["end_time"].as_i64() },
            _ => return None,
        })
    }
}

/// A refused record: its index in the journal and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub index: usize,
    pub error: String,
}

/// The journal of one run folder, in memory and on disk.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    pub records: Vec<Record>,
    /// Records the store has taken (or refused), from the start.
    pub sent: usize,
    pub run: Option<RunInfo>,
    pub tracking_uri: String,
    pub refused: Vec<Refusal>,
}

impl Journal {
    pub const FOLDER: &'static str = "mlflow";

    /// The journal in `dir` (`<run>/mlflow`), made empty if there is none.
    pub fn open(dir: &Path, tracking_uri: &str) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(dir.join("outbox")).map_err(io(dir))?;
        let mut journal =
            Journal { dir: dir.to_path_buf(), records: Vec::new(), sent: 0, run: None, tracking_uri: tracking_uri.to_string(), refused: Vec::new() };
        let path = journal.journal_path();
        if let Ok(text) = std::fs::read_to_string(&path) {
            let complete = if text.ends_with('\n') { text.as_str() } else { text.rsplit_once('\n').map_or("", |(head, _)| head) };
            for (i, line) in complete.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let record = serde_json::from_str::<Value>(line).ok().and_then(|v| Record::from_json(&v));
                let record = record.ok_or_else(|| JournalError::Corrupt { path: path.clone(), line: i + 1, message: line.chars().take(120).collect() })?;
                journal.records.push(record);
            }
            if complete.len() != text.len() {
                // The last line of a killed process, half written: drop it (it was never
                // acknowledged to anyone) and keep the file appendable.
                std::fs::write(&path, if complete.is_empty() { String::new() } else { format!("{complete}\n") }).map_err(io(&path))?;
            }
        }
        let state_path = journal.state_path();
        if let Ok(text) = std::fs::read_to_string(&state_path) {
            let state: Value =
                serde_json::from_str(&text).map_err(|e| JournalError::Corrupt { path: state_path.clone(), line: e.line(), message: e.to_string() })?;
            journal.sent = state["sent"].as_u64().unwrap_or(0) as usize;
            journal.run = RunInfo::from_json(&state["run"]);
            if let Some(uri) = state["tracking_uri"].as_str().filter(|_| tracking_uri.is_empty()) {
                journal.tracking_uri = uri.to_string();
            }
            journal.refused = state["refused"]
                .as_array()
                .map(|a| a.iter().filter_map(|r| Some(Refusal { index: r["index"].as_u64()? as usize, error: r["error"].as_str()?.to_string() })).collect())
                .unwrap_or_default();
        }
        journal.sent = journal.sent.min(journal.records.len());
        Ok(journal)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn journal_path(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    pub fn outbox(&self) -> PathBuf {
        self.dir.join("outbox")
    }

    pub fn pending(&self) -> usize {
        self.records.len() - self.sent
    }

    /// Appends `record` to the file (written through to the OS; [`Journal::sync`] makes it durable).
    pub fn append(&mut self, record: Record) -> Result<(), JournalError> {
        let path = self.journal_path();
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
        writeln!(f, "{}", record.to_json()).map_err(io(&path))?;
        self.records.push(record);
        Ok(())
    }

    /// Flushes the journal file to the disk.
    pub fn sync(&self) -> Result<(), JournalError> {
        let path = self.journal_path();
        match std::fs::File::open(&path) {
            Ok(f) => f.sync_all().map_err(io(&path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Writes the state (atomically).
    pub fn save_state(&self) -> Result<(), JournalError> {
        let state = json!({
            "tracking_uri": self.tracking_uri,
            "run": self.run.as_ref().map(RunInfo::to_json),
            "sent": self.sent,
            "records": self.records.len(),
            "refused": self.refused.iter().map(|r| json!({"index": r.index, "error": r.error})).collect::<Vec<_>>(),
        });
        let path = self.state_path();
        crate::file_store::replace_file(&path, &format!("{state:#}\n")).map_err(io(&path))
    }

    /// Keeps `file` as it is now in the outbox (a hard link, or a copy where links do not work)
    /// and returns its name there, for an [`Record::Artifact`].
    pub fn snapshot(&self, file: &Path) -> Result<String, JournalError> {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("artifact");
        let snapshot = format!("{:06}-{name}", self.records.len());
        let target = self.outbox().join(&snapshot);
        let _ = std::fs::remove_file(&target);
        if std::fs::hard_link(file, &target).is_err() {
            std::fs::copy(file, &target).map_err(io(file))?;
        }
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_torn_last_line_is_dropped() {
        let dir = cytodl_testkit::Scratch::new("mlflow-journal");
        let records = vec![
            Record::StartRun { experiment: "e".into(), run_name: None, tags: vec![("a".into(), "b".into())], start_time: 7 },
            Record::Metrics(vec![Metric { key: "train/loss".into(), value: 0.25, timestamp: 8, step: 3 }]),
            Record::Params(vec![("model.lr".into(), "0.001".into())]),
            Record::Artifact { snapshot: "000003-last.ckpt".into(), dir: "checkpoints".into(), name: "last.ckpt".into() },
            Record::DeleteArtifact { path: "checkpoints/x.ckpt".into() },
            Record::Status { status: RunStatus::Killed, end_time: Some(9) },
        ];
        let mut j = Journal::open(&dir, "http://x").expect("open");
        for r in &records {
            j.append(r.clone()).expect("append");
        }
        j.sent = 2;
        j.run = Some(RunInfo { experiment_id: "1".into(), run_id: "abc".into(), artifact_uri: "mlflow-artifacts:/1/abc/artifacts".into() });
        j.save_state().expect("state");
        // A process killed mid-append leaves half a line.
        std::fs::OpenOptions::new().append(true).open(j.journal_path()).expect("open").write_all(b"{\"metrics\": [{\"key").expect("write");
        let again = Journal::open(&dir, "").expect("reopen");
        assert_eq!(again.records, records);
        assert_eq!((again.sent, again.tracking_uri.as_str()), (2, "http://x"));
        assert_eq!(again.run, j.run);
        assert!(std::fs::read_to_string(again.journal_path()).expect("read").ends_with("}}\n"), "the torn line is gone");
        // A line in the middle that is not a record is an error naming the file and line.
        std::fs::write(again.journal_path(), "{\"bogus\": 1}\n").expect("write");
        let err = Journal::open(&dir, "").expect_err("corrupt");
        assert!(err.to_string().contains("journal.jsonl:1"), "{err}");
    }
}
