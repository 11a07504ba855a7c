//! Tracking URIs, as MLflow's client reads them: `http(s)://host[:port][/prefix]` (a tracking
//! server), `file:/path`, `file:///path` or a plain path (MLflow's file store). Database URIs
//! (`sqlite:`, `postgresql:`, ...) and `databricks` need MLflow's Python store: point a server
//! at the database and track through the server instead.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::file_store::FileStore;
use crate::rest::RestStore;
use crate::store::Store;

#[derive(Debug, Error)]
pub enum UriError {
    #[error("tracking_uri `{uri}`: {why}")]
    Unsupported { uri: String, why: String },
}

/// Where a run is tracked.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackingUri {
    Server(String),
    Folder(PathBuf),
}

impl TrackingUri {
    /// `uri` (relative folders against `base`); `None` or empty is `$MLFLOW_TRACKING_URI`, and
    /// without it `<base>/mlruns`, MLflow's default.
    pub fn parse(uri: Option<&str>, base: &Path) -> Result<TrackingUri, UriError> {
        let from_env = std::env::var("MLFLOW_TRACKING_URI").ok().filter(|u| !u.trim().is_empty());
        let uri = match uri.map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) => u.to_string(),
            None => from_env.unwrap_or_else(|| "mlruns".to_string()),
        };
        let lower = uri.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Ok(TrackingUri::Server(uri.trim_end_matches('/').to_string()));
        }
        let folder = if let Some(rest) = uri.strip_prefix("file://") {
            // file:///abs (empty authority) or file://localhost/abs.
            rest.strip_prefix("localhost").unwrap_or(rest).to_string()
        } else if let Some(rest) = uri.strip_prefix("file:") {
            rest.to_string()
        } else if let Some((scheme, _)) = uri.split_once(':').filter(|(s, _)| s.len() > 1 && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)))
        {
            let why = match scheme.split('+').next().unwrap_or(scheme) {
                "sqlite" | "postgresql" | "mysql" | "mssql" => {
                    "a database needs MLflow's Python store: run `mlflow server --backend-store-uri <this uri>` and set tracking_uri to the server's http:// address".to_string()
                }
                "databricks" => "Databricks workspaces are not supported; use the workspace's REST address with MLFLOW_TRACKING_TOKEN".to_string(),
                other => format!("the scheme `{other}:` is not a tracking store (http://, https:// or file:)"),
            };
            return Err(UriError::Unsupported { uri, why });
        } else if uri == "databricks" {
            return Err(UriError::Unsupported { uri, why: "Databricks workspaces are not supported".into() });
        } else {
            uri.clone()
        };
        let path = PathBuf::from(folder);
        Ok(TrackingUri::Folder(if path.is_absolute() { path } else { base.join(path) }))
    }

    /// The URI as recorded (`file://` + absolute path for folders).
    pub fn as_string(&self) -> String {
        match self {
            TrackingUri::Server(u) => u.clone(),
            TrackingUri::Folder(p) => format!("file://{}", p.display()),
        }
    }
}

/// The store behind `uri`.
pub fn open_store(uri: &TrackingUri) -> Box<dyn Store> {
    match uri {
        TrackingUri::Server(base) => Box::new(RestStore::new(base)),
        TrackingUri::Folder(root) => Box::new(FileStore::new(root)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_folders_and_what_needs_python() {
        let base = Path::new("/runs");
        let parse = |u: &str| TrackingUri::parse(Some(u), base);
        assert_eq!(parse("http://127.0.0.1:5000/").unwrap(), TrackingUri::Server("http://127.0.0.1:5000".into()));
        assert_eq!(parse("file:///srv/mlruns").unwrap(), TrackingUri::Folder("/srv/mlruns".into()));
        assert_eq!(parse("file:./mlruns").unwrap(), TrackingUri::Folder("/runs/./mlruns".into()));
        assert_eq!(parse("tracking").unwrap(), TrackingUri::Folder("/runs/tracking".into()));
        let err = parse("sqlite:///mlflow.db").unwrap_err().to_string();
        assert!(err.contains("mlflow server --backend-store-uri"), "{err}");
        assert!(parse("s3://bucket").is_err());
    }
}
