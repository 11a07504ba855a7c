//! A tracked run: the training thread appends to the journal and returns at once; a background
//! thread delivers the journal to the store in order, retrying with backoff while the store is
//! away. [`TrackedRun::finish`] waits a bounded time for the rest, then reports what is left.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::journal::{Journal, JournalError, Record, Refusal};
use crate::store::{Metric, RunInfo, RunStatus, Store, StoreError, MAX_METRICS_PER_BATCH, MAX_PARAMS_PER_BATCH, MAX_TAGS_PER_BATCH};
use crate::uri::{open_store, TrackingUri};

/// Retries start this soon after a failure and back off to [`MAX_BACKOFF`], so that a server
/// that comes back is used again within seconds.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);

#[derive(Debug, Error)]
pub enum TrackError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("MLflow at {uri}: {error}. Check logger.mlflow.tracking_uri (or set fault_tolerant: true to train anyway and send the records when it answers)")]
    Unreachable { uri: String, error: String },
    #[error("MLflow at {uri} refused the run: {error}")]
    Refused { uri: String, error: String },
}

/// What a run asks of its tracking.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub tracking_uri: TrackingUri,
    pub experiment: String,
    pub run_name: Option<String>,
    pub tags: Vec<(String, String)>,
    /// Whether the store being away is a warning (records wait in the journal) rather than an
    /// error before training starts.
    pub fault_tolerant: bool,
    /// How long [`TrackedRun::finish`] waits for the store to take what is left.
    pub flush_timeout: Duration,
}

/// How far delivery got.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub uri: String,
    pub run: Option<RunInfo>,
    pub sent: usize,
    pub pending: usize,
    pub refused: Vec<Refusal>,
    pub last_error: Option<String>,
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let run = self.run.as_ref().map_or_else(|| "(no run yet)".to_string(), |r| format!("run {} of experiment {}", r.run_id, r.experiment_id));
        write!(f, "MLflow {}: {run}: {} records sent", self.uri, self.sent - self.refused.len())?;
        if !self.refused.is_empty() {
            write!(f, ", {} refused (first: {})", self.refused.len(), self.refused[0].error)?;
        }
        if self.pending > 0 {
            write!(f, ", {} not sent yet", self.pending)?;
            if let Some(e) = &self.last_error {
                write!(f, " ({e})")?;
            }
        }
        Ok(())
    }
}

/// The journal and the sender's flags, shared by the two threads.
struct Shared {
    journal: Mutex<Journal>,
    /// Signalled when a record is appended, delivered, or the run closes.
    changed: Condvar,
    flags: Mutex<Flags>,
}

#[derive(Default)]
struct Flags {
    /// No more records will come: the sender stops once the journal is delivered.
    closing: bool,
    /// Stop after the current attempt, delivered or not.
    abandon: bool,
    last_error: Option<String>,
}

impl Shared {
    fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn flags(&self) -> MutexGuard<'_, Flags> {
        self.flags.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn delivery(&self) -> Delivery {
        let j = self.journal();
        Delivery {
            uri: j.tracking_uri.clone(),
            run: j.run.clone(),
            sent: j.sent,
            pending: j.pending(),
            refused: j.refused.clone(),
            last_error: self.flags().last_error.clone(),
        }
    }
}

/// What one delivery attempt did.
enum Attempt {
    Idle,
    Delivered,
    Failed(String),
}

/// The records from `sent` that go in one call: a run start, an artifact, a deletion and a
/// status alone; metrics, params and tags together within MLflow's batch limits.
fn next_chunk(j: &Journal) -> Option<(usize, Vec<Record>)> {
    let first = j.records.get(j.sent)?;
    let batchable = |r: &Record| matches!(r, Record::Metrics(_) | Record::Params(_) | Record::Tags(_));
    if !batchable(first) {
        return Some((j.sent + 1, vec![first.clone()]));
    }
    let (mut metrics, mut params, mut tags) = (0, 0, 0);
    let mut end = j.sent;
    for r in &j.records[j.sent..] {
        let (m, p, t) = match r {
            Record::Metrics(v) => (v.len(), 0, 0),
            Record::Params(v) => (0, v.len(), 0),
            Record::Tags(v) => (0, 0, v.len()),
            _ => break,
        };
        let fits = metrics + m <= MAX_METRICS_PER_BATCH && params + p <= MAX_PARAMS_PER_BATCH && tags + t <= MAX_TAGS_PER_BATCH;
        if !fits && end > j.sent {
            break;
        }
        (metrics, params, tags) = (metrics + m, params + p, tags + t);
        end += 1;
    }
    Some((end, j.records[j.sent..end].to_vec()))
}

/// Sends `records` (one chunk) to `store`.
fn send(store: &mut dyn Store, run: Option<&RunInfo>, outbox: &Path, records: &[Record]) -> Result<Option<RunInfo>, StoreError> {
    if let [Record::StartRun { experiment, run_name, tags, start_time }] = records {
        return store.create_run(experiment, run_name.as_deref(), tags, *start_time).map(Some);
    }
    let run = run.ok_or_else(|| StoreError::Rejected("a record before the run was started".into()))?;
    match records {
        [Record::Artifact { snapshot, dir, name }] => {
            let file = outbox.join(snapshot);
            if !file.is_file() {
                return Err(StoreError::Rejected(format!("{}: the artifact's snapshot is gone", file.display())));
            }
            store.log_artifact(run, &file, dir, name)?;
        }
        [Record::DeleteArtifact { path }] => store.delete_artifact(run, path)?,
        [Record::Status { status, end_time }] => store.set_status(run, *status, *end_time)?,
        batch => {
            let (mut metrics, mut params, mut tags) = (Vec::new(), Vec::new(), Vec::new());
            for r in batch {
                match r {
                    Record::Metrics(v) => metrics.extend(v.iter().cloned()),
                    Record::Params(v) => params.extend(v.iter().cloned()),
                    Record::Tags(v) => tags.extend(v.iter().cloned()),
                    _ => {}
                }
            }
            store.log_batch(run, &metrics, &params, &tags)?;
        }
    }
    Ok(None)
}

/// Delivers the next chunk of the journal.
fn attempt(shared: &Shared, store: &mut dyn Store) -> Attempt {
    let (end, records, run, outbox) = {
        let j = shared.journal();
        match next_chunk(&j) {
            Some((end, records)) => (end, records, j.run.clone(), j.outbox()),
            None => return Attempt::Idle,
        }
    };
    let result = send(store, run.as_ref(), &outbox, &records);
    let mut j = shared.journal();
    let outcome = match result {
        Ok(made) => {
            if let Some(made) = made {
                j.run = Some(made);
            }
            Attempt::Delivered
        }
        Err(StoreError::Rejected(error)) => {
            // Once per kind of refusal: the same one every epoch says nothing new.
            if !j.refused.iter().any(|r| r.error == error) {
                eprintln!("warning: MLflow refused a record ({error}); it stays in {}", j.journal_path().display());
            }
            let index = j.sent;
            j.refused.push(Refusal { index, error });
            Attempt::Delivered
        }
        Err(StoreError::Unreachable(error)) => return Attempt::Failed(error),
    };
    for r in &records {
        if let Record::Artifact { snapshot, .. } = r {
            let _ = std::fs::remove_file(outbox.join(snapshot));
        }
    }
    j.sent = end;
    if let Err(e) = j.save_state() {
        eprintln!("warning: {e}");
    }
    shared.changed.notify_all();
    outcome
}

fn sender(shared: Arc<Shared>, mut store: Box<dyn Store>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if shared.flags().abandon {
            return;
        }
        match attempt(&shared, store.as_mut()) {
            Attempt::Delivered => {
                backoff = FIRST_BACKOFF;
                shared.flags().last_error = None;
            }
            Attempt::Idle => {
                if shared.flags().closing {
                    return;
                }
                let j = shared.journal();
                if j.pending() == 0 {
                    let _ = shared.changed.wait_timeout(j, Duration::from_secs(1));
                }
            }
            Attempt::Failed(error) => {
                shared.flags().last_error = Some(error);
                shared.changed.notify_all();
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A run being tracked.
pub struct TrackedRun {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    flush_timeout: Duration,
    /// Set when the journal could not be written: warned about once.
    journal_failed: bool,
}

impl TrackedRun {
    /// Tracks the run whose folder is `run_dir` (its journal is `<run_dir>/mlflow`). A folder
    /// that has a journal already (a resumed run) continues its MLflow run. The store is asked
    /// to start the run now: if it is away, that is an error unless `fault_tolerant`.
    pub fn start(run_dir: &Path, options: RunOptions) -> Result<TrackedRun, TrackError> {
        let uri = options.tracking_uri.as_string();
        let mut journal = Journal::open(&run_dir.join(Journal::FOLDER), &uri)?;
        let resumed = !journal.records.is_empty();
        if resumed {
            journal.append(Record::Status { status: RunStatus::Running, end_time: None })?;
        } else {
            journal.append(Record::StartRun {
                experiment: options.experiment.clone(),
                run_name: options.run_name.clone(),
                tags: options.tags.clone(),
                start_time: now_ms(),
            })?;
        }
        journal.sync()?;
        journal.save_state()?;
        let shared = Arc::new(Shared { journal: Mutex::new(journal), changed: Condvar::new(), flags: Mutex::new(Flags::default()) });
        let mut store = open_store(&options.tracking_uri);
        // The first records now, on this thread: a wrong URI is reported before any training.
        while shared.journal().pending() > 0 {
            let refused_before = shared.journal().refused.len();
            match attempt(&shared, store.as_mut()) {
                Attempt::Delivered if shared.journal().refused.len() > refused_before && shared.journal().run.is_none() => {
                    let error = shared.journal().refused.last().map(|r| r.error.clone()).unwrap_or_default();
                    return Err(TrackError::Refused { uri, error });
                }
                Attempt::Delivered | Attempt::Idle => {}
                Attempt::Failed(error) if options.fault_tolerant => {
                    eprintln!(
                        "warning: MLflow at {uri} does not answer ({error}); training goes on, its records wait in {} and are sent when it answers",
                        run_dir.join(Journal::FOLDER).display()
                    );
                    shared.flags().last_error = Some(error);
                    break;
                }
                Attempt::Failed(error) => return Err(TrackError::Unreachable { uri, error }),
            }
        }
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new().name("mlflow".into()).spawn(move || sender(shared, store)).ok()
        };
        Ok(TrackedRun { shared, thread, flush_timeout: options.flush_timeout, journal_failed: false })
    }

    fn append(&mut self, record: Record) {
        let result = self.shared.journal().append(record);
        if let Err(e) = result {
            if !self.journal_failed {
                eprintln!("warning: the MLflow journal cannot be written ({e}); records are kept in memory only");
                self.journal_failed = true;
            }
        }
        self.shared.changed.notify_all();
    }

    pub fn log_metrics(&mut self, metrics: Vec<Metric>) {
        for chunk in metrics.chunks(MAX_METRICS_PER_BATCH) {
            self.append(Record::Metrics(chunk.to_vec()));
        }
    }

    pub fn log_params(&mut self, params: Vec<(String, String)>) {
        for chunk in params.chunks(MAX_PARAMS_PER_BATCH) {
            self.append(Record::Params(chunk.to_vec()));
        }
    }

    pub fn set_tags(&mut self, tags: Vec<(String, String)>) {
        for chunk in tags.chunks(MAX_TAGS_PER_BATCH) {
            self.append(Record::Tags(chunk.to_vec()));
        }
    }

    /// Uploads `file` as it is now, as `<dir>/<name>` among the run's artifacts.
    pub fn log_artifact(&mut self, file: &Path, dir: &str, name: &str) {
        let snapshot = self.shared.journal().snapshot(file);
        match snapshot {
            Ok(snapshot) => self.append(Record::Artifact { snapshot, dir: dir.to_string(), name: name.to_string() }),
            Err(e) => eprintln!("warning: MLflow artifact {}: {e}", file.display()),
        }
    }

    pub fn delete_artifact(&mut self, path: &str) {
        self.append(Record::DeleteArtifact { path: path.to_string() });
    }

    /// Makes the journal durable (an epoch's records survive a crash).
    pub fn sync(&self) {
        if let Err(e) = self.shared.journal().sync() {
            eprintln!("warning: {e}");
        }
    }

    pub fn delivery(&self) -> Delivery {
        self.shared.delivery()
    }

    /// The run's journal folder.
    pub fn journal_dir(&self) -> PathBuf {
        self.shared.journal().dir().to_path_buf()
    }

    /// Ends the run with `status`, waits up to the flush timeout for the store to take the
    /// rest, and says how far delivery got.
    pub fn finish(mut self, status: RunStatus) -> Delivery {
        self.append(Record::Status { status, end_time: Some(now_ms()) });
        self.sync();
        self.shared.flags().closing = true;
        self.shared.changed.notify_all();
        let deadline = Instant::now() + self.flush_timeout;
        loop {
            let j = self.shared.journal();
            if j.pending() == 0 || Instant::now() >= deadline {
                break;
            }
            let wait = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(200));
            drop(self.shared.changed.wait_timeout(j, wait));
        }
        let delivery = self.shared.delivery();
        if delivery.pending == 0 {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        } else {
            self.shared.flags().abandon = true;
        }
        delivery
    }
}

impl Drop for TrackedRun {
    fn drop(&mut self) {
        // Dropped without finish (a panic): the sender stops; the journal keeps the rest.
        self.shared.flags().abandon = true;
        self.shared.changed.notify_all();
    }
}

/// Sends what the journal in `journal_dir` still holds (`mlflow-sync`), to `uri` or, without
/// one, to the URI the run was tracked at; gives up after `timeout` without progress.
pub fn sync(journal_dir: &Path, uri: Option<&TrackingUri>, timeout: Duration) -> Result<Delivery, TrackError> {
    let recorded = uri.map(TrackingUri::as_string).unwrap_or_default();
    let journal = Journal::open(journal_dir, &recorded)?;
    let uri = match uri {
        Some(u) => u.clone(),
        None => TrackingUri::parse(Some(&journal.tracking_uri), journal_dir)
            .map_err(|e| TrackError::Refused { uri: journal.tracking_uri.clone(), error: e.to_string() })?,
    };
    let shared = Shared { journal: Mutex::new(journal), changed: Condvar::new(), flags: Mutex::new(Flags::default()) };
    let mut store = open_store(&uri);
    let mut last_progress = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    loop {
        match attempt(&shared, store.as_mut()) {
            Attempt::Idle => break,
            Attempt::Delivered => {
                last_progress = Instant::now();
                backoff = FIRST_BACKOFF;
                shared.flags().last_error = None;
            }
            Attempt::Failed(error) => {
                shared.flags().last_error = Some(error);
                if last_progress.elapsed() >= timeout {
                    break;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    Ok(shared.delivery())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store that is away until `up` is set, and records what it took.
    #[derive(Clone, Default)]
    struct Flaky {
        up: Arc<Mutex<bool>>,
        taken: Arc<Mutex<Vec<String>>>,
    }

    impl Flaky {
        fn check(&self, what: String) -> Result<(), StoreError> {
            if !*self.up.lock().unwrap() {
                return Err(StoreError::Unreachable("connection refused".into()));
            }
            self.taken.lock().unwrap().push(what);
            Ok(())
        }
    }

    impl Store for Flaky {
        fn create_run(&mut self, experiment: &str, _: Option<&str>, _: &[(String, String)], _: i64) -> Result<RunInfo, StoreError> {
            self.check(format!("create {experiment}"))?;
            Ok(RunInfo { experiment_id: "1".into(), run_id: "r".into(), artifact_uri: "file:///x".into() })
        }
        fn log_batch(&mut self, _: &RunInfo, metrics: &[Metric], params: &[(String, String)], _: &[(String, String)]) -> Result<(), StoreError> {
            self.check(format!("batch {} metrics {} params", metrics.len(), params.len()))
        }
        fn log_artifact(&mut self, _: &RunInfo, local: &Path, dir: &str, name: &str) -> Result<(), StoreError> {
            let text = std::fs::read_to_string(local).unwrap_or_default();
            self.check(format!("artifact {dir}/{name} = {text}"))
        }
        fn delete_artifact(&mut self, _: &RunInfo, path: &str) -> Result<(), StoreError> {
            self.check(format!("delete {path}"))
        }
        fn set_status(&mut self, _: &RunInfo, status: RunStatus, _: Option<i64>) -> Result<(), StoreError> {
            self.check(format!("status {}", status.name()))
        }
    }

    fn shared_with(dir: &Path) -> Shared {
        Shared { journal: Mutex::new(Journal::open(dir, "test://").expect("journal")), changed: Condvar::new(), flags: Mutex::new(Flags::default()) }
    }

    fn metric(step: i64) -> Record {
        Record::Metrics(vec![Metric { key: "train/loss".into(), value: step as f64, timestamp: 0, step }])
    }

    #[test]
    fn batches_respect_mlflow_limits_and_keep_order() {
        let dir = cytodl_testkit::Scratch::new("mlflow-chunks");
        let mut j = Journal::open(&dir, "x").expect("journal");
        j.append(Record::StartRun { experiment: "e".into(), run_name: None, tags: vec![], start_time: 0 }).unwrap();
        for s in 0..3 {
            j.append(metric(s)).unwrap();
        }
        j.append(Record::Params((0..100).map(|i| (format!("p{i}"), "v".into())).collect())).unwrap();
        j.append(Record::Params(vec![("q".into(), "v".into())])).unwrap();
        j.append(Record::DeleteArtifact { path: "a".into() }).unwrap();
        let chunk = |j: &Journal| next_chunk(j).map(|(end, r)| (end, r.len()));
        assert_eq!(chunk(&j), Some((1, 1)), "the run start alone");
        j.sent = 1;
        assert_eq!(chunk(&j), Some((5, 4)), "three metric records and 100 params in one call");
        j.sent = 5;
        assert_eq!(chunk(&j), Some((6, 1)), "the 101st param in the next");
        j.sent = 6;
        assert_eq!(chunk(&j), Some((7, 1)));
        j.sent = 7;
        assert_eq!(chunk(&j), None);
    }

    #[test]
    fn an_away_store_loses_nothing_and_gets_everything_in_order_when_it_returns() {
        let dir = cytodl_testkit::Scratch::new("mlflow-flaky");
        let store = Flaky::default();
        let shared = shared_with(&dir);
        shared.journal().append(Record::StartRun { experiment: "e".into(), run_name: None, tags: vec![], start_time: 0 }).unwrap();
        let file = dir.join("plot.png");
        std::fs::write(&file, "first").unwrap();
        {
            let mut j = shared.journal();
            j.append(metric(0)).unwrap();
            let snap = j.snapshot(&file).unwrap();
            j.append(Record::Artifact { snapshot: snap, dir: "plots".into(), name: "loss.png".into() }).unwrap();
        }
        // The picture changes after it was logged: the upload is of the logged version.
        std::fs::write(dir.join("new"), "second").unwrap();
        std::fs::rename(dir.join("new"), &file).unwrap();
        shared.journal().append(metric(1)).unwrap();
        let mut boxed: Box<dyn Store> = Box::new(store.clone());
        assert!(matches!(attempt(&shared, boxed.as_mut()), Attempt::Failed(_)));
        assert_eq!(shared.journal().sent, 0, "nothing counted while away");
        *store.up.lock().unwrap() = true;
        while let Attempt::Delivered = attempt(&shared, boxed.as_mut()) {}
        assert_eq!(*store.taken.lock().unwrap(), ["create e", "batch 1 metrics 0 params", "artifact plots/loss.png = first", "batch 1 metrics 0 params"]);
        assert_eq!(std::fs::read_dir(dir.join("outbox")).unwrap().count(), 0, "uploaded snapshots are removed");
        // The state on disk says so: a reopened journal has nothing pending.
        let again = Journal::open(&dir, "").unwrap();
        assert_eq!((again.sent, again.pending(), again.run.map(|r| r.run_id)), (4, 0, Some("r".to_string())));
    }

    #[test]
    fn finish_waits_a_bounded_time_and_sync_sends_the_rest_later() {
        let run_dir = cytodl_testkit::Scratch::new("mlflow-finish");
        let store_root = run_dir.join("store");
        // A file store under a path that is a file cannot be written: the store is "away".
        std::fs::write(&store_root, "not a folder").unwrap();
        let options = RunOptions {
            tracking_uri: TrackingUri::Folder(store_root.clone()),
            experiment: "exp".into(),
            run_name: Some("r1".into()),
            tags: vec![],
            fault_tolerant: false,
            flush_timeout: Duration::from_millis(300),
        };
        assert!(matches!(TrackedRun::start(&run_dir, options.clone()), Err(TrackError::Unreachable { .. })), "not fault tolerant: an error before training");
        std::fs::remove_dir_all(run_dir.join("mlflow")).unwrap();
        let mut run = TrackedRun::start(&run_dir, RunOptions { fault_tolerant: true, ..options }).expect("fault tolerant start");
        run.log_metrics(vec![Metric { key: "train/loss".into(), value: 0.5, timestamp: 1, step: 0 }]);
        run.log_params(vec![("lr".into(), "0.1".into())]);
        let delivery = run.finish(RunStatus::Finished);
        assert_eq!((delivery.sent, delivery.pending), (0, 4), "{delivery}");
        // The store comes back; mlflow-sync delivers everything.
        std::fs::remove_file(&store_root).unwrap();
        let delivery = sync(&run_dir.join("mlflow"), None, Duration::from_secs(5)).expect("sync");
        assert_eq!((delivery.sent, delivery.pending, delivery.refused.len()), (4, 0, 0), "{delivery}");
        let run = delivery.run.expect("run made");
        let base = store_root.join(&run.experiment_id).join(&run.run_id);
        assert_eq!(std::fs::read_to_string(base.join("params/lr")).unwrap(), "0.1");
        assert!(std::fs::read_to_string(base.join("meta.yaml")).unwrap().contains("status: 3\n"));
    }
}
