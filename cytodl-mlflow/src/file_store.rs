//! A `file:` tracking URI: MLflow's file store layout, written directly, so that tracking works
//! without a server and `mlflow ui --backend-store-uri file:...` shows the runs.
//!
//! ```text
//! <root>/<experiment_id>/meta.yaml                      name, artifact_location, ...
//! <root>/<experiment_id>/<run_id>/meta.yaml             run_name, status, start/end time, ...
//! <root>/<experiment_id>/<run_id>/metrics/<key>         "<timestamp> <value> <step>" per line
//! <root>/<experiment_id>/<run_id>/params/<key>          the value
//! <root>/<experiment_id>/<run_id>/tags/<key>            the value
//! <root>/<experiment_id>/<run_id>/artifacts/...
//! ```
//! Keys may contain `/` (`train/loss`): MLflow keeps them as sub-folders, as here.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::store::{clean_artifact_path, Metric, RunInfo, RunStatus, Store, StoreError};

/// MLflow's file store under `root`.
pub struct FileStore {
    root: PathBuf,
}

fn io_error(path: &Path, e: std::io::Error) -> StoreError {
    // A full disk or a permission problem does not fix itself by retrying at once, but it may
    // later (space freed): the journal retries, as for a server that is away.
    StoreError::Unreachable(format!("{}: {e}", path.display()))
}

/// A string as a YAML scalar that reads back as the same string (JSON's quoting is valid YAML).
fn yaml_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The value of `key:` in a flat `meta.yaml`, unquoted.
fn yaml_field(text: &str, key: &str) -> Option<String> {
    let line = text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?.trim();
    if line.starts_with('"') {
        return serde_json::from_str::<String>(line).ok();
    }
    if let Some(inner) = line.strip_prefix('\'').and_then(|l| l.strip_suffix('\'')) {
        return Some(inner.replace("''", "'"));
    }
    Some(line.to_string())
}

/// Replaces `path` with `text` through a temporary file and a rename: readers (MLflow, a later
/// `mlflow-sync`) never see half a file.
pub(crate) fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path))
}

fn write_atomically(path: &Path, text: &str) -> Result<(), StoreError> {
    replace_file(path, text).map_err(|e| io_error(path, e))
}

/// A new 32-hex-digit id, as MLflow's `uuid4().hex`: random (std's per-process random hash keys)
/// mixed with the time and the process id.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for half in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
        h.write_u32(std::process::id());
        h.write_u64(half);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

impl FileStore {
    pub fn new(root: &Path) -> FileStore {
        FileStore { root: std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf()) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn file_uri(path: &Path) -> String {
        format!("file://{}", path.display())
    }

    /// The experiment folders: `(id, name)`.
    fn experiments(&self) -> Vec<(String, String)> {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|e| {
                let text = std::fs::read_to_string(e.path().join("meta.yaml")).ok()?;
                Some((e.file_name().to_str()?.to_string(), yaml_field(&text, "name")?))
            })
            .collect()
    }

    fn create_experiment(&self, id: &str, name: &str, now: i64) -> Result<(), StoreError> {
        let dir = self.root.join(id);
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        let meta = format!(
            "artifact_location: {}\ncreation_time: {now}\nexperiment_id: '{id}'\nlast_update_time: {now}\nlifecycle_stage: active\nname: {}\n",
            yaml_string(&Self::file_uri(&dir)),
            yaml_string(name)
        );
        write_atomically(&dir.join("meta.yaml"), &meta)
    }

    /// The experiment `name`'s id, made (with MLflow's `Default` experiment 0 beside it) if missing.
    fn experiment_id(&self, name: &str, now: i64) -> Result<String, StoreError> {
        let experiments = self.experiments();
        if let Some((id, _)) = experiments.iter().find(|(_, n)| n == name) {
            return Ok(id.clone());
        }
        if !experiments.iter().any(|(id, _)| id == "0") {
            self.create_experiment("0", "Default", now)?;
        }
        if name == "Default" {
            return Ok("0".into());
        }
        let next = experiments.iter().filter_map(|(id, _)| id.parse::<u64>().ok()).max().unwrap_or(0) + 1;
        let id = next.to_string();
        self.create_experiment(&id, name, now)?;
        Ok(id)
    }

    fn run_dir(&self, run: &RunInfo) -> PathBuf {
        self.root.join(&run.experiment_id).join(&run.run_id)
    }

    fn run_meta(run: &RunInfo, run_name: &str, status: RunStatus, start_time: i64, end_time: Option<i64>) -> String {
        format!(
            "artifact_uri: {}\nend_time: {}\nentry_point_name: ''\nexperiment_id: '{}'\nlifecycle_stage: active\nrun_id: {}\nrun_name: {}\nrun_uuid: {}\nsource_name: ''\nsource_type: 4\nsource_version: ''\nstart_time: {start_time}\nstatus: {}\ntags: []\nuser_id: {}\n",
            yaml_string(&run.artifact_uri),
            end_time.map_or("null".to_string(), |t| t.to_string()),
            run.experiment_id,
            run.run_id,
            yaml_string(run_name),
            run.run_id,
            status.code(),
            yaml_string(&std::env::var("USER").unwrap_or_else(|_| "unknown".into())),
        )
    }

    /// Whether metric `key` cannot be a file: a folder has its name, or one of its parents is
    /// a file (`val/loss` logged, then `val/loss/seg`, or the other way round).
    fn clashes(&self, run: &RunInfo, key: &str) -> bool {
        let Ok(key) = clean_artifact_path(key) else { return false };
        let metrics = self.run_dir(run).join("metrics");
        let path = metrics.join(&key);
        path.is_dir() || path.ancestors().skip(1).take_while(|a| *a != metrics).any(Path::is_file)
    }

    /// Writes `value` to `<run>/<kind>/<key>` (a key's `/` are sub-folders).
    fn key_file(&self, run: &RunInfo, kind: &str, key: &str) -> Result<PathBuf, StoreError> {
        let key = clean_artifact_path(key)?;
        if key.is_empty() {
            return Err(StoreError::Rejected(format!("an empty {kind} key")));
        }
        let path = self.run_dir(run).join(kind).join(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        }
        Ok(path)
    }
}

impl Store for FileStore {
    fn create_run(&mut self, experiment: &str, run_name: Option<&str>, tags: &[(String, String)], start_time: i64) -> Result<RunInfo, StoreError> {
        let experiment_id = self.experiment_id(experiment, start_time)?;
        let run_id = new_run_id();
        let dir = self.root.join(&experiment_id).join(&run_id);
        let artifacts = dir.join("artifacts");
        std::fs::create_dir_all(&artifacts).map_err(|e| io_error(&artifacts, e))?;
        let run = RunInfo { experiment_id, run_id, artifact_uri: Self::file_uri(&artifacts) };
        let name = run_name.map(str::to_string).unwrap_or_else(|| run.run_id[..8].to_string());
        write_atomically(&dir.join("meta.yaml"), &Self::run_meta(&run, &name, RunStatus::Running, start_time, None))?;
        let mut all_tags = tags.to_vec();
        all_tags.push(("mlflow.runName".into(), name));
        self.log_batch(&run, &[], &[], &all_tags)?;
        Ok(run)
    }

    fn log_batch(&mut self, run: &RunInfo, metrics: &[Metric], params: &[(String, String)], tags: &[(String, String)]) -> Result<(), StoreError> {
        if !self.run_dir(run).join("meta.yaml").is_file() {
            return Err(StoreError::Rejected(format!("run {} is not in {}", run.run_id, self.root.display())));
        }
        let mut clashing = Vec::new();
        for m in metrics {
            if self.clashes(run, &m.key) {
                clashing.push(m.key.as_str());
                continue;
            }
            let path = self.key_file(run, "metrics", &m.key)?;
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| io_error(&path, e))?;
            writeln!(f, "{} {} {}", m.timestamp, python_float(m.value), m.step).map_err(|e| io_error(&path, e))?;
        }
        for (kind, pairs) in [("params", params), ("tags", tags)] {
            for (k, v) in pairs {
                let path = self.key_file(run, kind, k)?;
                // MLflow refuses to change a param; the same value again is fine.
                if kind == "params" {
                    if let Ok(old) = std::fs::read_to_string(&path) {
                        if old != *v {
                            return Err(StoreError::Rejected(format!("param `{k}` was `{old}`, cannot change it to `{v}`")));
                        }
                    }
                }
                write_atomically(&path, v)?;
            }
        }
        if !clashing.is_empty() {
            clashing.dedup();
            return Err(StoreError::Rejected(format!(
                "MLflow's file store keeps a metric as a file named by its key, so it cannot hold both `a/b` and `a/b/c`: {} not written (an MLflow server keeps them all: `mlflow server --backend-store-uri sqlite:///mlflow.db`)",
                clashing.join(", ")
            )));
        }
        Ok(())
    }

    fn log_artifact(&mut self, run: &RunInfo, local: &Path, artifact_dir: &str, name: &str) -> Result<(), StoreError> {
        copy_into(local, &self.run_dir(run).join("artifacts"), &clean_artifact_path(&format!("{artifact_dir}/{name}"))?)
    }

    fn delete_artifact(&mut self, run: &RunInfo, path: &str) -> Result<(), StoreError> {
        remove_from(&self.run_dir(run).join("artifacts"), &clean_artifact_path(path)?)
    }

    fn set_status(&mut self, run: &RunInfo, status: RunStatus, end_time: Option<i64>) -> Result<(), StoreError> {
        let path = self.run_dir(run).join("meta.yaml");
        let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
        let start = yaml_field(&text, "start_time").and_then(|s| s.parse().ok()).unwrap_or(0);
        let name = yaml_field(&text, "run_name").unwrap_or_default();
        write_atomically(&path, &Self::run_meta(run, &name, status, start, end_time))
    }
}

/// A float as Python's `str()` writes it, which MLflow's reader (`float()`) takes back.
fn python_float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else {
        format!("{v:?}")
    }
}

/// Copies `local` to `root/<relative>` through a temporary file, making folders.
pub(crate) fn copy_into(local: &Path, root: &Path, relative: &str) -> Result<(), StoreError> {
    let target = root.join(relative);
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    }
    if !local.is_file() {
        return Err(StoreError::Rejected(format!("{}: no such file to upload", local.display())));
    }
    let tmp = target.with_extension(format!("part.{}", std::process::id()));
    std::fs::copy(local, &tmp).and_then(|_| std::fs::rename(&tmp, &target)).map(|_| ()).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_error(&target, e)
    })
}

pub(crate) fn remove_from(root: &Path, relative: &str) -> Result<(), StoreError> {
    let target = root.join(relative);
    match std::fs::remove_file(&target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(&target, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiments_are_found_by_name_and_runs_keep_their_history() {
        let root = cytodl_testkit::Scratch::new("mlflow-file-store");
        let mut store = FileStore::new(&root);
        let run = store.create_run("my exp: \"quoted\"", Some("first"), &[("k".into(), "v".into())], 1000).expect("run");
        assert_eq!(run.experiment_id, "1");
        assert!(root.join("0/meta.yaml").is_file(), "MLflow's Default experiment beside it");
        let again = store.create_run("my exp: \"quoted\"", None, &[], 2000).expect("second run");
        assert_eq!(again.experiment_id, "1");
        assert_ne!(again.run_id, run.run_id);
        let m = |v: f64, step| Metric { key: "train/loss".into(), value: v, timestamp: 5, step };
        store.log_batch(&run, &[m(0.5, 1), m(f64::NAN, 2)], &[("lr".into(), "0.001".into())], &[]).expect("batch");
        let history = std::fs::read_to_string(root.join("1").join(&run.run_id).join("metrics/train/loss")).expect("metric file");
        assert_eq!(history, "5 0.5 1\n5 nan 2\n");
        assert!(store.log_batch(&run, &[], &[("lr".into(), "0.001".into())], &[]).is_ok(), "same param again");
        // `train/loss/seg` beside the file `train/loss`: refused by name, the rest written.
        let clash =
            store.log_batch(&run, &[m(0.1, 3), Metric { key: "train/loss/seg".into(), value: 1.0, timestamp: 5, step: 3 }], &[], &[]).expect_err("clash");
        assert!(!clash.is_transient() && clash.to_string().contains("train/loss/seg not written"), "{clash}");
        assert!(std::fs::read_to_string(root.join("1").join(&run.run_id).join("metrics/train/loss")).expect("metric").ends_with("5 0.1 3\n"));
        assert!(!store.log_batch(&run, &[], &[("lr".into(), "0.01".into())], &[]).expect_err("changed").is_transient());
        store.set_status(&run, RunStatus::Finished, Some(3000)).expect("status");
        let meta = std::fs::read_to_string(root.join("1").join(&run.run_id).join("meta.yaml")).expect("meta");
        assert!(meta.contains("status: 3\n") && meta.contains("end_time: 3000\n") && meta.contains("start_time: 1000\n"), "{meta}");
        assert_eq!(yaml_field(&meta, "run_name").as_deref(), Some("first"));
    }
}
