//! The config repository: the files under a config directory, plus Hydra's own built-in groups.
//!
//! Paths are Hydra config paths (`trainer/gpu`, no extension). Loaded files are cached, and each
//! is registered in the [`SourceMap`] so that spans can point into it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::defaults::{parse_defaults_list, DefaultEntry};
use super::node::{Node, Value};
use super::yaml::{load_config, YamlError};
use crate::diag::{Diagnostic, FileId, SourceMap, Span};

/// Groups that Hydra itself provides, with the options Hydra 1.3.2 (plus the hydra-colorlog
/// plugin) ships. Choosing them is accepted; their content (logging, launching) means nothing
/// to a compiled experiment and is ignored, except `hydra/output/default` (the run directory).
/// Options of uninstalled plugins (`hydra/sweeper: optuna`) are "not found", as in Hydra.
pub const HYDRA_BUILTIN: &[(&str, &[&str])] = &[
    ("hydra/output", &["default"]),
    ("hydra/launcher", &["basic"]),
    ("hydra/sweeper", &["basic"]),
    ("hydra/help", &["default"]),
    ("hydra/hydra_help", &["default"]),
    ("hydra/hydra_logging", &["colorlog", "default", "disabled", "hydra_debug", "none"]),
    ("hydra/job_logging", &["colorlog", "default", "disabled", "none", "stdout"]),
    ("hydra/callbacks", &[]),
    ("hydra/env", &["default"]),
];

fn builtin_options(group: &str) -> Option<&'static [&'static str]> {
    HYDRA_BUILTIN.iter().find(|(g, _)| *g == group).map(|(_, o)| *o)
}

/// The config path of Hydra's own primary config, composed before the user's.
pub const HYDRA_CONFIG: &str = "hydra/config";

const HYDRA_CONFIG_YAML: &str = "\
# @package hydra
defaults:
  - output: default
  - launcher: basic
  - sweeper: basic
  - help: default
  - hydra_help: default
  - hydra_logging: default
  - job_logging: default
  - callbacks: null
  - env: default
  - _self_
mode: RUN
job:
  chdir: null
  override_dirname: ''
  num: 0
  config:
    override_dirname:
      kv_sep: '='
      item_sep: ','
      exclude_keys: []
runtime:
  choices: {}
overrides:
  hydra: []
  task: []
searchpath: []
verbose: false
";

const HYDRA_OUTPUT_DEFAULT_YAML: &str = "\
# @package hydra
run:
  dir: outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}
sweep:
  dir: multirun/${now:%Y-%m-%d}/${now:%H-%M-%S}
  subdir: ${hydra.job.num}
";

/// One loaded config file: content without `defaults`, its header package and its defaults list.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Node,
    pub header_package: Option<String>,
    pub defaults: Vec<DefaultEntry>,
    pub file: FileId,
    /// Whether the file had a `defaults` key at all.
    pub has_defaults: bool,
}

#[derive(Debug)]
pub struct Repo {
    /// The primary config directory, then `hydra.searchpath` entries, searched in order.
    roots: Vec<PathBuf>,
    cache: HashMap<String, Option<Loaded>>,
    pub sources: SourceMap,
}

impl Repo {
    pub fn new(root: &Path, sources: SourceMap) -> Self {
        Repo { roots: vec![root.to_path_buf()], cache: HashMap::new(), sources }
    }

    /// Adds a `hydra.searchpath` folder, searched after those already known.
    pub fn add_search_path(&mut self, dir: PathBuf) {
        self.roots.push(dir);
    }

    pub fn root(&self) -> &Path {
        &self.roots[0]
    }

    /// The file of a config: the first search-path folder that has it.
    fn file_path(&self, config_path: &str) -> PathBuf {
        let rel = format!("{}.yaml", normalize(config_path));
        self.roots.iter().map(|r| r.join(&rel)).find(|p| p.is_file()).unwrap_or_else(|| self.roots[0].join(&rel))
    }

    fn group_dirs(&self, group: &str) -> impl Iterator<Item = PathBuf> + '_ {
        let group = group.to_string();
        self.roots.iter().map(move |r| r.join(&group)).filter(|p| p.is_dir())
    }

    fn builtin(config_path: &str) -> Option<&'static str> {
        let p = normalize(config_path);
        if p == HYDRA_CONFIG {
            return Some(HYDRA_CONFIG_YAML);
        }
        if p == "hydra/output/default" {
            return Some(HYDRA_OUTPUT_DEFAULT_YAML);
        }
        let (group, option) = p.rsplit_once('/')?;
        builtin_options(group)?.contains(&option).then_some("# @package hydra\n")
    }

    pub fn group_exists(&self, group: &str) -> bool {
        let group = group.trim_matches('/');
        if group.is_empty() {
            return true;
        }
        builtin_options(group).is_some() || group == "hydra" || self.group_dirs(group).next().is_some()
    }

    pub fn config_exists(&self, config_path: &str) -> bool {
        self.file_path(config_path).is_file() || Self::builtin(config_path).is_some()
    }

    /// The options of a group: its `.yaml` files, sorted, as Hydra lists them.
    pub fn group_options(&self, group: &str) -> Vec<String> {
        let mut out: Vec<String> = builtin_options(group).unwrap_or(&[]).iter().map(|s| s.to_string()).collect();
        for dir in self.group_dirs(group) {
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if let Some(stem) = name.strip_suffix(".yaml") {
                    if e.path().is_file() {
                        out.push(stem.to_string());
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The options of a group including those in sub-folders (`im2im/segmentation`), for suggestions.
    pub fn group_options_deep(&self, group: &str) -> Vec<String> {
        let mut out = Vec::new();
        for dir in self.group_dirs(group) {
            collect_options(&dir, "", &mut out, 0);
        }
        out.sort();
        out.dedup();
        out
    }

    /// All group paths under the root (`data`, `data/im2im`...), for "did you mean".
    pub fn all_groups(&self) -> Vec<String> {
        let mut out: Vec<String> = HYDRA_BUILTIN.iter().map(|(g, _)| g.to_string()).collect();
        for root in &self.roots {
            collect_groups(root, "", &mut out, 0);
        }
        out
    }

    /// Loads a config (cached). `Ok(None)` when it does not exist; errors carry diagnostics.
    pub fn load(&mut self, config_path: &str) -> Result<Option<Loaded>, Diagnostic> {
        let key = normalize(config_path).to_string();
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit.clone());
        }
        let path = self.file_path(&key);
        let (text, display_path) = if path.is_file() {
            match std::fs::read_to_string(&path) {
                Ok(t) => (t, path.clone()),
                Err(e) => return Err(Diagnostic::error(format!("cannot read config file {}: {e}", path.display()), Span::UNKNOWN)),
            }
        } else if let Some(text) = Self::builtin(&key) {
            (text.to_string(), PathBuf::from(format!("<hydra>/{key}.yaml")))
        } else {
            self.cache.insert(key, None);
            return Ok(None);
        };
        let file = self.sources.add_file(&display_path, text.clone());
        let header_package = header_package(&text, file)?;
        let mut config = load_config(&text, file).map_err(|e: YamlError| e.to_diagnostic())?;
        let mut defaults = Vec::new();
        let mut has_defaults = false;
        if let Some(map) = config.as_map_mut() {
            if let Some(d) = map.shift_remove("defaults") {
                has_defaults = true;
                defaults = parse_defaults_list(&key, d)?;
            }
        }
        let loaded = Loaded { config, header_package, defaults, file, has_defaults };
        self.cache.insert(key, Some(loaded.clone()));
        Ok(Some(loaded))
    }
}

fn collect_options(dir: &Path, prefix: &str, out: &mut Vec<String>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let p = e.path();
        if p.is_dir() && depth < 8 {
            collect_options(&p, &format!("{prefix}{name}/"), out, depth + 1);
        } else if let Some(stem) = name.strip_suffix(".yaml") {
            out.push(format!("{prefix}{stem}"));
        }
    }
}

fn collect_groups(dir: &Path, prefix: &str, out: &mut Vec<String>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && depth < 8 {
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            out.push(name.clone());
            collect_groups(&p, &format!("{name}/"), out, depth + 1);
        }
    }
}

/// `a/b.yaml` and `a/b` name the same config.
pub fn normalize(config_path: &str) -> &str {
    let p = config_path.strip_prefix('/').unwrap_or(config_path);
    p.strip_suffix(".yaml").unwrap_or(p)
}

/// The `# @package X` header: only leading `# @KEY VALUE` lines (blank lines skipped) in the
/// first 512 characters count; any other line, even an ordinary comment, ends the header.
pub fn header_package(text: &str, file: FileId) -> Result<Option<String>, Diagnostic> {
    let head: String = text.chars().take(512).collect();
    let mut package = None;
    for (i, raw) in head.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let Some(rest) = line.strip_prefix('#') else { break };
        if !rest.trim_start().starts_with('@') {
            break;
        }
        let body = line.trim_start_matches('#').trim();
        let parts: Vec<&str> = body.split(' ').filter(|s| !s.is_empty()).collect();
        let span = Span::new(file, i as u32 + 1, 1);
        if parts.len() < 2 {
            return Err(Diagnostic::error(format!("Expected header format: KEY VALUE, got '{body}'"), span)
                .with_help("write the header as `# @package <package>`, e.g. `# @package _global_`"));
        }
        if parts.len() > 2 {
            return Err(
                Diagnostic::error(format!("Too many components in '{body}'"), span).with_help("a package header has exactly one value: `# @package <package>`")
            );
        }
        if parts[0] == "@package" {
            package = Some(parts[1].to_string());
        }
    }
    Ok(package)
}

/// Whether a loaded config has content besides missing values (Hydra's `_has_config_content`).
pub fn has_config_content(config: &Node) -> bool {
    match &config.value {
        Value::Map(m) => m.values().any(|v| !matches!(v.value, Value::Missing)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vector_22_headers() {
        let f = FileId(1);
        assert_eq!(header_package("# @package foo.bar\n", f).unwrap().as_deref(), Some("foo.bar"));
        assert_eq!(header_package("#@package foo.bar \n", f).unwrap().as_deref(), Some("foo.bar"));
        assert_eq!(header_package("\n# @package foo.bar\n", f).unwrap().as_deref(), Some("foo.bar"));
        let e = header_package("#@package foo.bar bah\n", f).unwrap_err();
        assert!(e.message.starts_with("Too many components in"), "{}", e.message);
        let e = header_package("#@package\n", f).unwrap_err();
        assert!(e.message.starts_with("Expected header format: KEY VALUE"), "{}", e.message);
        // An ordinary comment ends the header.
        assert_eq!(header_package("# note\n# @package _global_\n", f).unwrap(), None);
    }
}
