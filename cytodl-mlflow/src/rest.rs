//! MLflow's tracking server through its REST API (`/api/2.0/mlflow/...`), and its artifact
//! proxy (`/api/2.0/mlflow-artifacts/...`, what `mlflow server` serves by default).
//!
//! Authentication follows MLflow's client: `MLFLOW_TRACKING_TOKEN` (a bearer token) or
//! `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD` (basic).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::store::{clean_artifact_path, Metric, RunInfo, RunStatus, Store, StoreError};

/// How long one call may take; uploads get [`UPLOAD_TIMEOUT`] (a checkpoint is large).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// A client of one tracking server.
pub struct RestStore {
    base: String,
    agent: ureq::Agent,
    upload_agent: ureq::Agent,
    authorization: Option<String>,
}

impl RestStore {
    /// A client of the server at `base` (`http://host:port`, with or without a path prefix).
    pub fn new(base: &str) -> RestStore {
        let agent = |timeout: Duration| -> ureq::Agent {
            ureq::Agent::config_builder().timeout_global(Some(timeout)).timeout_connect(Some(Duration::from_secs(5))).http_status_as_error(false).build().into()
        };
        RestStore {
            base: base.trim_end_matches('/').to_string(),
            agent: agent(CALL_TIMEOUT),
            upload_agent: agent(UPLOAD_TIMEOUT),
            authorization: authorization_from_env(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `request` with the credentials of the environment, if any.
    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(auth) => request.header("Authorization", auth),
            None => request,
        }
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}/api/2.0/{endpoint}", self.base)
    }

    /// A `POST` of `body` to an `mlflow/...` endpoint; the answer's JSON.
    fn post(&self, endpoint: &str, body: &Value) -> Result<Value, StoreError> {
        let url = self.url(endpoint);
        let request = self.authorized(self.agent.post(&url).header("Content-Type", "application/json"));
        let response = request.send(body.to_string().as_bytes()).map_err(|e| transport(&url, e))?;
        answer(&url, response)
    }

    fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Value, StoreError> {
        let url = self.url(endpoint);
        let mut request = self.authorized(self.agent.get(&url));
        for (k, v) in query {
            request = request.query(*k, *v);
        }
        let response = request.call().map_err(|e| transport(&url, e))?;
        answer(&url, response)
    }

    /// The id of the experiment `name`, or `None` when there is none.
    fn experiment_id(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.get("mlflow/experiments/get-by-name", &[("experiment_name", name)]) {
            Ok(v) => Ok(v["experiment"]["experiment_id"].as_str().map(str::to_string)),
            Err(StoreError::Rejected(m)) if m.contains("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Metric history of `key` in `run_id` (what tests and `mlflow-sync` check against).
    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>, StoreError> {
        let v = self.get("mlflow/metrics/get-history", &[("run_id", run_id), ("metric_key", key), ("max_results", "25000")])?;
        Ok(v["metrics"].as_array().map(|a| a.iter().filter_map(Metric::from_json).collect()).unwrap_or_default())
    }

    /// The whole run as the server reports it (`runs/get`).
    pub fn get_run(&self, run_id: &str) -> Result<Value, StoreError> {
        self.get("mlflow/runs/get", &[("run_id", run_id)])
    }

    /// The artifacts directly under `path` of the run (`artifacts/list`).
    pub fn list_artifacts(&self, run_id: &str, path: &str) -> Result<Vec<(String, bool)>, StoreError> {
        let v = self.get("mlflow/artifacts/list", &[("run_id", run_id), ("path", path)])?;
        let files = v["files"].as_array().cloned().unwrap_or_default();
        Ok(files.iter().filter_map(|f| Some((f["path"].as_str()?.to_string(), f["is_dir"].as_bool().unwrap_or(false)))).collect())
    }

    /// The bytes of one artifact through the server's proxy.
    pub fn download_artifact(&self, run: &RunInfo, path: &str) -> Result<Vec<u8>, StoreError> {
        let url = self.proxy_url(run, path)?;
        let mut response = self.authorized(self.upload_agent.get(&url)).call().map_err(|e| transport(&url, e))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(status_error(&url, status, &response.body_mut().read_to_string().unwrap_or_default()));
        }
        response.body_mut().with_config().limit(u64::MAX).read_to_vec().map_err(|e| transport(&url, e))
    }

    /// Where the server's artifact proxy keeps `path` of `run`.
    fn proxy_url(&self, run: &RunInfo, path: &str) -> Result<String, StoreError> {
        let root = match artifact_location(&run.artifact_uri)? {
            ArtifactLocation::Proxied(root) => root,
            ArtifactLocation::Local(dir) => {
                return Err(StoreError::Rejected(format!("the run's artifacts are in the folder {}, not behind the server", dir.display())))
            }
        };
        let path = clean_artifact_path(path)?;
        Ok(format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}",
            self.base,
            [root.as_str(), path.as_str()].iter().filter(|p| !p.is_empty()).cloned().collect::<Vec<_>>().join("/")
        ))
    }
}

/// Where a run's artifacts live, from its artifact URI.
enum ArtifactLocation {
    /// Behind the tracking server's artifact proxy, at this path.
    Proxied(String),
    /// A folder this machine sees (a server started with a local `--default-artifact-root`).
    Local(PathBuf),
}

fn artifact_location(uri: &str) -> Result<ArtifactLocation, StoreError> {
    if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
        // `mlflow-artifacts:/path` or `mlflow-artifacts://host:port/path`.
        let path = match rest.strip_prefix("//") {
            Some(authority_and_path) => authority_and_path.split_once('/').map_or("", |(_, p)| p),
            None => rest,
        };
        return Ok(ArtifactLocation::Proxied(path.trim_matches('/').to_string()));
    }
    if let Some(path) = uri.strip_prefix("file://") {
        return Ok(ArtifactLocation::Local(PathBuf::from(path)));
    }
    if uri.starts_with('/') {
        return Ok(ArtifactLocation::Local(PathBuf::from(uri)));
    }
    Err(StoreError::Rejected(format!(
        "the run's artifact store `{uri}` is not one cytodl writes to (it writes through the server's artifact proxy, `mlflow server` with --serve-artifacts, or to a local folder)"
    )))
}

impl Store for RestStore {
    fn create_run(&mut self, experiment: &str, run_name: Option<&str>, tags: &[(String, String)], start_time: i64) -> Result<RunInfo, StoreError> {
        let experiment_id = match self.experiment_id(experiment)? {
            Some(id) => id,
            None => match self.post("mlflow/experiments/create", &json!({"name": experiment})) {
                Ok(v) => v["experiment_id"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| StoreError::Rejected("experiments/create answered without an experiment_id".into()))?,
                // Made meanwhile by another run.
                Err(StoreError::Rejected(m)) if m.contains("RESOURCE_ALREADY_EXISTS") => {
                    self.experiment_id(experiment)?.ok_or_else(|| StoreError::Rejected(format!("experiment `{experiment}` exists and cannot be found")))?
                }
                Err(e) => return Err(e),
            },
        };
        let mut body = json!({"experiment_id": experiment_id, "start_time": start_time, "tags": tag_list(tags)});
        if let Some(name) = run_name {
            body["run_name"] = json!(name);
        }
        let v = self.post("mlflow/runs/create", &body)?;
        let info = &v["run"]["info"];
        let field = |k: &str| info[k].as_str().map(str::to_string).ok_or_else(|| StoreError::Rejected(format!("runs/create answered without {k}")));
        Ok(RunInfo { experiment_id: field("experiment_id")?, run_id: field("run_id")?, artifact_uri: field("artifact_uri")? })
    }

    fn log_batch(&mut self, run: &RunInfo, metrics: &[Metric], params: &[(String, String)], tags: &[(String, String)]) -> Result<(), StoreError> {
        let body = json!({
            "run_id": run.run_id,
            "metrics": metrics.iter().map(Metric::to_json).collect::<Vec<_>>(),
            "params": tag_list(params),
            "tags": tag_list(tags),
        });
        self.post("mlflow/runs/log-batch", &body).map(|_| ())
    }

    fn log_artifact(&mut self, run: &RunInfo, local: &Path, artifact_dir: &str, name: &str) -> Result<(), StoreError> {
        let target = format!("{artifact_dir}/{name}");
        match artifact_location(&run.artifact_uri)? {
            ArtifactLocation::Local(root) => crate::file_store::copy_into(local, &root, &clean_artifact_path(&target)?),
            ArtifactLocation::Proxied(_) => {
                let url = self.proxy_url(run, &target)?;
                let file = std::fs::File::open(local).map_err(|e| StoreError::Rejected(format!("{}: {e}", local.display())))?;
                let response = self.authorized(self.upload_agent.put(&url)).send(file).map_err(|e| transport(&url, e))?;
                answer(&url, response).map(|_| ())
            }
        }
    }

    fn delete_artifact(&mut self, run: &RunInfo, path: &str) -> Result<(), StoreError> {
        match artifact_location(&run.artifact_uri)? {
            ArtifactLocation::Local(root) => crate::file_store::remove_from(&root, &clean_artifact_path(path)?),
            ArtifactLocation::Proxied(_) => {
                let url = self.proxy_url(run, path)?;
                let response = self.authorized(self.agent.delete(&url)).call().map_err(|e| transport(&url, e))?;
                match answer(&url, response) {
                    Ok(_) => Ok(()),
                    Err(StoreError::Rejected(m)) if m.contains("404") || m.contains("RESOURCE_DOES_NOT_EXIST") => Ok(()),
                    Err(e) => Err(e),
                }
            }
        }
    }

    fn set_status(&mut self, run: &RunInfo, status: RunStatus, end_time: Option<i64>) -> Result<(), StoreError> {
        let mut body = json!({"run_id": run.run_id, "status": status.name()});
        if let Some(t) = end_time {
            body["end_time"] = json!(t);
        }
        self.post("mlflow/runs/update", &body).map(|_| ())
    }
}

fn tag_list(pairs: &[(String, String)]) -> Vec<Value> {
    pairs.iter().map(|(k, v)| json!({"key": k, "value": v})).collect()
}

/// A failure before an answer came: the server is away (or too slow).
fn transport(url: &str, e: ureq::Error) -> StoreError {
    StoreError::Unreachable(format!("{url}: {e}"))
}

fn status_error(url: &str, status: u16, body: &str) -> StoreError {
    let detail = serde_json::from_str::<Value>(body)
        .ok()
        .map(|v| format!("{} {}", v["error_code"].as_str().unwrap_or(""), v["message"].as_str().unwrap_or("")).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| body.chars().take(300).collect());
    let message = format!("{url}: HTTP {status}: {detail}");
    // Busy or failing servers, and proxies in front of a server that is restarting.
    match status {
        408 | 429 | 500..=599 => StoreError::Unreachable(message),
        _ => StoreError::Rejected(message),
    }
}

/// The JSON of a 2xx answer, or the error its status means.
fn answer(url: &str, mut response: ureq::http::Response<ureq::Body>) -> Result<Value, StoreError> {
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().map_err(|e| transport(url, e))?;
    if !(200..300).contains(&status) {
        return Err(status_error(url, status, &body));
    }
    if body.trim().is_empty() {
        return Ok(Value::Null);
    }
    // MLflow answers JSON; a 2xx page that is not JSON is not MLflow.
    serde_json::from_str(&body)
        .map_err(|_| StoreError::Rejected(format!("{url}: the answer is not MLflow's JSON: {}", body.chars().take(200).collect::<String>())))
}

fn authorization_from_env() -> Option<String> {
    if let Some(token) = std::env::var("MLFLOW_TRACKING_TOKEN").ok().filter(|t| !t.is_empty()) {
        return Some(format!("Bearer {token}"));
    }
    let user = std::env::var("MLFLOW_TRACKING_USERNAME").ok().filter(|u| !u.is_empty())?;
    let password = std::env::var("MLFLOW_TRACKING_PASSWORD").unwrap_or_default();
    Some(format!("Basic {}", base64(format!("{user}:{password}").as_bytes())))
}

/// Standard base64 with padding (RFC 4648), for basic authentication.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy"), ("user:pa55", "dXNlcjpwYTU1")] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn artifact_uris_of_the_proxy_and_of_folders() {
        let root = |uri: &str| match artifact_location(uri) {
            Ok(ArtifactLocation::Proxied(p)) => format!("proxy {p}"),
            Ok(ArtifactLocation::Local(d)) => format!("local {}", d.display()),
            Err(e) => format!("error {e}"),
        };
        assert_eq!(root("mlflow-artifacts:/1/abc/artifacts"), "proxy 1/abc/artifacts");
        assert_eq!(root("mlflow-artifacts://host:5000/1/abc/artifacts"), "proxy 1/abc/artifacts");
        assert_eq!(root("file:///srv/mlruns/1/abc/artifacts"), "local /srv/mlruns/1/abc/artifacts");
        assert!(root("s3://bucket/1/abc").starts_with("error"));
    }

    #[test]
    fn server_errors_are_retried_and_client_errors_are_not() {
        assert!(status_error("u", 503, "").is_transient());
        assert!(status_error("u", 429, "").is_transient());
        let e = status_error("u", 400, r#"{"error_code": "INVALID_PARAMETER_VALUE", "message": "param changed"}"#);
        assert!(!e.is_transient());
        assert!(e.to_string().contains("INVALID_PARAMETER_VALUE param changed"), "{e}");
    }
}
