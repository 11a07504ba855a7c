//! What `cytodl_experiment!` expands: the same front end as the CLI, driven from a user crate.
//! (The typed modules come with the code generator; today the expansion carries the resolved
//! config and the list of source files, so edits to any composed YAML file trigger a rebuild.)

use std::path::{Path, PathBuf};

use crate::config::emit::to_yaml;
use crate::diag::SourceKind;
use crate::frontend::{locate_experiment, missing_diagnostics, resolve, Request};
use crate::interp::ResolveOptions;

/// The result of expanding one experiment.
#[derive(Debug, Clone)]
pub struct Expansion {
    /// A Rust identifier for the experiment's module (the file stem).
    pub name: String,
    pub resolved_yaml: String,
    /// Every YAML file that was composed, absolute.
    pub sources: Vec<PathBuf>,
}

/// Expands `path` (relative to `manifest_dir`) with optional overrides; errors are rendered
/// diagnostics (`file:line:col: error: ...`), ready for `compile_error!`.
pub fn expand_experiment(manifest_dir: &Path, path: &str, overrides: &[String]) -> Result<Expansion, String> {
    let file = manifest_dir.join(path);
    let (config_dir, choice) = locate_experiment(&file, "train").map_err(|d| d.message)?;
    let mut all = vec![choice];
    all.extend_from_slice(overrides);
    let req = Request { config_dir, config_name: "train".into(), overrides: all, implicit_overrides: 1 };
    let resolved = resolve(&req, &ResolveOptions::default()).map_err(|f| f.render())?;
    let missing = missing_diagnostics(&resolved.missing, true);
    if missing.has_errors() {
        return Err(missing.render(&resolved.sources));
    }
    let mut sources = Vec::new();
    let mut id = 1;
    while let Some(f) = resolved.sources.get(crate::diag::FileId(id)) {
        if let SourceKind::File(p) = &f.kind {
            if p.is_file() {
                sources.push(p.canonicalize().unwrap_or_else(|_| p.clone()));
            }
        }
        id += 1;
    }
    let stem = file.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "experiment".into());
    let name: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    let name = if name.starts_with(|c: char| c.is_ascii_digit()) { format!("_{name}") } else { name };
    Ok(Expansion { name, resolved_yaml: to_yaml(&resolved.config), sources })
}
