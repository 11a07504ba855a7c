//! The config front end as one call: compose (Hydra) -> resolve (OmegaConf) -> drop `_aux`.
//! The CLI, `cytodl_experiment!` and the tests all go through here.

use std::path::{Path, PathBuf};

use crate::config::compose::{compose, ComposeRequest};
use crate::config::node::{Node, Value};
use crate::diag::{Diagnostic, Diagnostics, ErrorClass, Failure, SourceMap, Span};
use crate::interp::{remove_aux, resolve_config, ResolveOptions};

/// What the user asked for: a config tree, a primary config and overrides.
#[derive(Debug, Clone)]
pub struct Request {
    pub config_dir: PathBuf,
    pub config_name: String,
    pub overrides: Vec<String>,
    /// Leading overrides added by the tool itself (see [`ComposeRequest::implicit_overrides`]).
    pub implicit_overrides: usize,
}

/// A resolved configuration and everything needed to explain it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The app config: resolved, `_aux` removed, without the `hydra` node.
    pub config: Node,
    /// The composed tree before resolution, `hydra` included (spans point at the sources).
    pub composed: Node,
    pub sources: SourceMap,
    pub warnings: Diagnostics,
    /// Mandatory values still `???`, with where they were defined.
    pub missing: Vec<(String, Span)>,
}

/// Composes and resolves a config as cyto_dl's `train.py` does before instantiating anything.
pub fn resolve(req: &Request, opts: &ResolveOptions) -> Result<Resolved, Failure> {
    let creq = ComposeRequest {
        config_dir: req.config_dir.clone(),
        config_name: req.config_name.clone(),
        overrides: req.overrides.clone(),
        implicit_overrides: req.implicit_overrides,
        job_name: None,
    };
    // Anything composition reports that has no more precise class is Hydra's
    // ConfigCompositionException (Hydra wraps the errors of its own stages in it).
    let composed = compose(&creq).map_err(|(mut diagnostics, sources)| {
        for d in &mut diagnostics.items {
            d.class.get_or_insert(ErrorClass::ConfigCompositionException);
        }
        Failure { diagnostics, sources }
    })?;
    let mut resolved = match resolve_config(&composed.config, opts) {
        Ok(n) => n,
        Err(diagnostics) => return Err(Failure { diagnostics, sources: composed.sources }),
    };
    if let Some(m) = resolved.as_map_mut() {
        m.shift_remove("hydra");
    }
    let aux_errors = remove_aux(&mut resolved);
    if aux_errors.has_errors() {
        return Err(Failure { diagnostics: aux_errors, sources: composed.sources });
    }
    let mut missing = Vec::new();
    find_missing(&resolved, &mut Vec::new(), &mut missing);
    Ok(Resolved { config: resolved, composed: composed.config, sources: composed.sources, warnings: composed.warnings, missing })
}

fn find_missing(node: &Node, path: &mut Vec<String>, out: &mut Vec<(String, Span)>) {
    match &node.value {
        Value::Missing => out.push((path.join("."), node.span)),
        Value::Map(m) => {
            for (k, v) in m {
                path.push(k.clone());
                find_missing(v, path, out);
                path.pop();
            }
        }
        Value::List(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(i.to_string());
                find_missing(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// One diagnostic per `???` left, saying which override fills it.
pub fn missing_diagnostics(missing: &[(String, Span)], as_errors: bool) -> Diagnostics {
    let mut d = Diagnostics::new();
    for (key, span) in missing {
        let msg = format!("Missing mandatory value: {key}");
        let diag = if as_errors { Diagnostic::error(msg, *span) } else { Diagnostic::warning(msg, *span) };
        d.push(diag.with_key(key.clone()).with_help(format!("set it on the command line: `{key}=<value>`")));
    }
    d
}

/// An experiment file given by path: the config root is the nearest ancestor holding
/// `train.yaml`, and the file is selected as `experiment=<path under experiment/>`.
pub fn locate_experiment(file: &Path, primary: &str) -> Result<(PathBuf, String), Diagnostic> {
    let abs = if file.is_absolute() { file.to_path_buf() } else { std::env::current_dir().map(|c| c.join(file)).unwrap_or_else(|_| file.to_path_buf()) };
    if !abs.is_file() {
        return Err(Diagnostic::error(format!("experiment file {} does not exist", file.display()), Span::UNKNOWN));
    }
    if !abs.extension().is_some_and(|e| e == "yaml" || e == "yml") {
        return Err(Diagnostic::error(format!("{} is not a YAML file; an experiment is a `.yaml` file under `experiment/`", file.display()), Span::UNKNOWN));
    }
    let primary_file = if primary.ends_with(".yaml") { primary.to_string() } else { format!("{primary}.yaml") };
    let mut dir = abs.parent();
    while let Some(d) = dir {
        if d.join(&primary_file).is_file() {
            let rel = abs.strip_prefix(d).unwrap_or(&abs);
            let rel = rel.to_string_lossy().to_string();
            let choice = rel.strip_suffix(".yaml").unwrap_or(&rel);
            let Some(choice) = choice.strip_prefix("experiment/") else {
                return Err(Diagnostic::error(
                    format!("{} is not under the `experiment/` folder of the config tree {}", file.display(), d.display()),
                    Span::UNKNOWN,
                )
                .with_help("experiment files live in `<config root>/experiment/`"));
            };
            return Ok((d.to_path_buf(), format!("experiment={choice}")));
        }
        dir = d.parent();
    }
    Err(Diagnostic::error(format!("no ancestor folder of {} holds `{primary_file}`, so the config root is unknown", file.display()), Span::UNKNOWN)
        .with_help("pass the config tree explicitly with `--config-dir DIR`"))
}
