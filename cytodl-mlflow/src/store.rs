//! What a tracking store does for a run, whatever it is behind it (a server, a folder).

use std::path::Path;

use serde_json::{json, Value};
use thiserror::Error;

/// MLflow's limits on one `log-batch` call and on what a param holds.
pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_PARAMS_PER_BATCH: usize = 100;
pub const MAX_TAGS_PER_BATCH: usize = 100;
pub const MAX_PARAM_VALUE_LENGTH: usize = 6000;
pub const MAX_KEY_LENGTH: usize = 250;

/// One value of a metric's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub step: i64,
}

impl Metric {
    pub fn to_json(&self) -> Value {
        json!({"key": self.key, "value": json_number(self.value), "timestamp": self.timestamp, "step": self.step})
    }

    pub fn from_json(v: &Value) -> Option<Metric> {
        Some(Metric {
            key: v.get("key")?.as_str()?.to_string(),
            value: number_from_json(v.get("value")?)?,
            timestamp: v.get("timestamp")?.as_i64()?,
            step: v.get("step")?.as_i64()?,
        })
    }
}

/// A float as MLflow's JSON carries it: a number, or the strings `NaN`, `Infinity`, `-Infinity`
/// (JSON has no literal for them; MLflow's protobuf JSON parser accepts these).
pub fn json_number(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v.is_infinite() {
        json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(v)
    }
}

pub fn number_from_json(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            other => other.parse().ok(),
        },
        _ => None,
    }
}

/// How a run ended (MLflow's `RunStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }

    /// The number MLflow's file store writes in a run's `meta.yaml`.
    pub fn code(self) -> i64 {
        match self {
            RunStatus::Running => 1,
            RunStatus::Finished => 3,
            RunStatus::Failed => 4,
            RunStatus::Killed => 5,
        }
    }

    pub fn from_name(name: &str) -> Option<RunStatus> {
        [RunStatus::Running, RunStatus::Finished, RunStatus::Failed, RunStatus::Killed].into_iter().find(|s| s.name() == name)
    }
}

/// The run a store made: what later calls address.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub experiment_id: String,
    pub run_id: String,
    /// Where the run's artifacts go (`mlflow-artifacts:/...`, `file:///...`).
    pub artifact_uri: String,
}

impl RunInfo {
    pub fn to_json(&self) -> Value {
        json!({"experiment_id": self.experiment_id, "run_id": self.run_id, "artifact_uri": self.artifact_uri})
    }

    pub fn from_json(v: &Value) -> Option<RunInfo> {
        Some(RunInfo {
            experiment_id: v.get("experiment_id")?.as_str()?.to_string(),
            run_id: v.get("run_id")?.as_str()?.to_string(),
            artifact_uri: v.get("artifact_uri")?.as_str()?.to_string(),
        })
    }
}

/// Why a store call failed: worth retrying (the server is away, busy or failing), or refused
/// for good (the request itself is wrong: retrying cannot help).
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Rejected(String),
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unreachable(_))
    }
}

/// A tracking store. Every call is one request (or one folder update) and either happens or
/// fails with a [`StoreError`]; the journal above decides what to retry.
pub trait Store: Send {
    /// The experiment named `experiment` (made if missing) and a new run in it.
    fn create_run(&mut self, experiment: &str, run_name: Option<&str>, tags: &[(String, String)], start_time: i64) -> Result<RunInfo, StoreError>;

    /// Metrics, params and tags, each within MLflow's batch limits.
    fn log_batch(&mut self, run: &RunInfo, metrics: &[Metric], params: &[(String, String)], tags: &[(String, String)]) -> Result<(), StoreError>;

    /// Copies the file `local` to `<artifact_dir>/<name>` among the run's artifacts.
    fn log_artifact(&mut self, run: &RunInfo, local: &Path, artifact_dir: &str, name: &str) -> Result<(), StoreError>;

    /// Removes the artifact at `path` (relative to the run's artifact root); a missing one is fine.
    fn delete_artifact(&mut self, run: &RunInfo, path: &str) -> Result<(), StoreError>;

    /// Sets the run's status (and its end time unless it is running again).
    fn set_status(&mut self, run: &RunInfo, status: RunStatus, end_time: Option<i64>) -> Result<(), StoreError>;
}

/// `path` as MLflow accepts an artifact path: `/`-separated, no `..`, no leading `/`.
pub fn clean_artifact_path(path: &str) -> Result<String, StoreError> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.contains(&"..") {
        return Err(StoreError::Rejected(format!("artifact path `{path}` leaves the run's artifact folder")));
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_survive_json() {
        for v in [1.5, -0.0, f64::INFINITY, f64::NEG_INFINITY] {
            let m = Metric { key: "a".into(), value: v, timestamp: 1, step: 2 };
            assert_eq!(Metric::from_json(&m.to_json()), Some(m));
        }
        let nan = Metric { key: "a".into(), value: f64::NAN, timestamp: 1, step: 2 };
        assert!(Metric::from_json(&nan.to_json()).is_some_and(|m| m.value.is_nan()));
    }

    #[test]
    fn artifact_paths_stay_inside_the_run() {
        assert_eq!(clean_artifact_path("/checkpoints//val/loss/").unwrap(), "checkpoints/val/loss");
        assert!(clean_artifact_path("a/../../etc").is_err());
    }
}
