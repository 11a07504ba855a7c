//! One experiment from YAML to checked IR: locate the config tree, compose and resolve
//! (deterministically: generated code must not change with the clock or the machine), check
//! against the registry. The CLI, `cytodl_experiment!` and the tests all go through here.

use std::path::{Path, PathBuf};

use chrono::TimeZone;

use crate::check::check;
use crate::codegen::ident::experiment_name;
use crate::diag::{Diagnostic, Diagnostics, Failure, FileId, SourceKind, SourceMap, Span};
use crate::frontend::{locate_experiment, resolve, Request};
use crate::interp::ResolveOptions;
use crate::ir::Experiment;

/// What to compile.
#[derive(Debug, Clone)]
pub struct CompileRequest {
    /// An experiment file (`configs/experiment/segmentation.yaml`), or none to compile the
    /// primary config of `config_dir` with `overrides` alone.
    pub experiment: Option<PathBuf>,
    pub config_dir: Option<PathBuf>,
    pub config_name: String,
    pub overrides: Vec<String>,
}

/// A checked experiment and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub experiment: Experiment,
    pub warnings: Diagnostics,
    pub sources: SourceMap,
}

/// Resolution options that make output reproducible: `${now:...}` is a fixed instant and
/// `hydra:runtime.cwd` is `.`; the binary makes the real run folder at run time.
pub fn reproducible_options() -> ResolveOptions {
    let now = chrono::Local.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single().unwrap_or_else(chrono::Local::now);
    ResolveOptions { now, cwd: PathBuf::from("."), ..ResolveOptions::default() }
}

/// The YAML files a resolution read, absolute.
pub fn source_files(sources: &SourceMap) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut id = 1;
    while let Some(f) = sources.get(FileId(id)) {
        if let SourceKind::File(p) = &f.kind {
            if p.is_file() {
                let p = p.canonicalize().unwrap_or_else(|_| p.clone());
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        id += 1;
    }
    out
}

/// An error about the experiment file as a whole, located at the file (`path:1:1`), with the
/// nearest existing experiment when the file is missing.
fn file_error(file: &Path, mut d: Diagnostic) -> Failure {
    let mut sources = SourceMap::default();
    let id = sources.add_file(file, String::new());
    d.span = Span::new(id, 1, 1);
    if !file.exists() && d.help.is_none() {
        let siblings: Vec<String> = file
            .parent()
            .and_then(|dir| std::fs::read_dir(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }).ok())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
            .collect();
        let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if let Some(help) = crate::diag::did_you_mean(&name, siblings.iter().map(String::as_str)) {
            d = d.with_help(help);
        }
    }
    Failure { diagnostics: d.into(), sources }
}

/// Line 1, column 1 of `file` in the sources, when it was read.
fn file_span(sources: &SourceMap, file: &Path) -> Option<Span> {
    let want = file.canonicalize().ok()?;
    let mut id = 1;
    while let Some(f) = sources.get(FileId(id)) {
        if let SourceKind::File(p) = &f.kind {
            if p.canonicalize().ok().as_ref() == Some(&want) {
                return Some(Span::new(FileId(id), 1, 1));
            }
        }
        id += 1;
    }
    None
}

pub fn compile(req: &CompileRequest) -> Result<Compiled, Failure> {
    let mut overrides = req.overrides.clone();
    let mut config_dir = req.config_dir.clone();
    let mut implicit = 0;
    let name = match &req.experiment {
        Some(file) => {
            let (root, choice) = locate_experiment(file, &req.config_name).map_err(|d| file_error(file, d))?;
            config_dir.get_or_insert(root);
            // Nested experiments keep their folder in the name (`im2im/segmentation` ->
            // `im2im_segmentation`), so two files with one stem never share a crate.
            let name = experiment_name(choice.trim_start_matches("experiment="));
            overrides.insert(0, choice);
            implicit = 1;
            name
        }
        None => experiment_name(&req.config_name),
    };
    let config_dir = config_dir.unwrap_or_else(|| PathBuf::from("configs"));
    if !config_dir.is_dir() {
        return Err(Failure::single(
            Diagnostic::error(format!("config directory {} does not exist", config_dir.display()), Span::UNKNOWN)
                .with_help("pass `--config-dir DIR` or an experiment file inside a config tree"),
        ));
    }
    let request = Request { config_dir, config_name: req.config_name.clone(), overrides, implicit_overrides: implicit };
    let resolved = resolve(&request, &reproducible_options())?;
    let mut warnings = resolved.warnings.clone();
    let anchor = req.experiment.as_ref().and_then(|f| file_span(&resolved.sources, f)).unwrap_or(Span::UNKNOWN);
    match check(&resolved, &name, anchor) {
        Ok((mut experiment, more)) => {
            warnings.extend(more);
            experiment.sources = source_files(&resolved.sources);
            Ok(Compiled { experiment, warnings, sources: resolved.sources })
        }
        Err(mut errors) => {
            // Warnings first, so a "no effect" note does not hide below the errors that matter.
            let mut all = warnings;
            all.extend(std::mem::take(&mut errors));
            all.items.sort_by_key(|d| d.severity == crate::diag::Severity::Error);
            Err(Failure { diagnostics: all, sources: resolved.sources })
        }
    }
}
