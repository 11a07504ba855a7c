//! Defaults-list entries (Hydra's `InputDefault`): parsing from YAML and the path and package
//! arithmetic Hydra does on them (`get_group_path`, `get_final_package`, `get_override_key`).

use super::node::{Node, Value};
use crate::diag::{Diagnostic, ErrorClass, Span};

/// What an entry selects.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    /// `- path/name[@pkg]` or `_self_`.
    Config { path: String },
    /// `- [optional ][override ]group[@pkg]: option` (option may be null, `???` or a list).
    Group { group: String, value: GroupValue },
}

#[derive(Debug, Clone, PartialEq)]
pub enum GroupValue {
    /// One option; `None` is YAML `null` (a placeholder).
    Name(Option<String>),
    /// `g: [a, b]` loads several options of the same group.
    Options(Vec<String>),
}

/// One entry of a defaults list, with the state Hydra attaches while building the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultEntry {
    pub kind: EntryKind,
    pub package: Option<String>,
    pub optional: bool,
    pub is_override: bool,
    pub external_append: bool,
    pub primary: bool,
    pub deleted: bool,
    pub parent_base_dir: Option<String>,
    pub parent_package: Option<String>,
    pub package_header: Option<String>,
    pub span: Span,
}

impl DefaultEntry {
    pub fn config(path: &str, package: Option<String>, span: Span) -> Self {
        let package = package.map(|p| if p == "_here_" { String::new() } else { p });
        DefaultEntry {
            kind: EntryKind::Config { path: path.to_string() },
            package,
            optional: false,
            is_override: false,
            external_append: false,
            primary: false,
            deleted: false,
            parent_base_dir: None,
            parent_package: None,
            package_header: None,
            span,
        }
    }

    pub fn group(group: &str, value: GroupValue, package: Option<String>, span: Span) -> Self {
        let mut d = DefaultEntry::config("", package, span);
        d.kind = EntryKind::Group { group: group.to_string(), value };
        d
    }

    pub fn is_self(&self) -> bool {
        match &self.kind {
            EntryKind::Config { path } => path == "_self_",
            EntryKind::Group { value, .. } => matches!(value, GroupValue::Name(Some(n)) if n == "_self_"),
        }
    }

    pub fn is_group(&self) -> bool {
        matches!(self.kind, EntryKind::Group { .. })
    }

    pub fn update_parent(&mut self, base_dir: &str, package: &str) {
        self.parent_base_dir = Some(base_dir.to_string());
        self.parent_package = Some(package.to_string());
        // Hydra still expands the legacy `_group_` in an entry's package (absolute from then on).
        if let Some(p) = &self.package {
            if p.contains("_group_") {
                let resolved = p.replace("_group_", &self.default_package());
                self.package = Some(format!("_global_.{resolved}"));
            }
        }
    }

    fn base_dir(&self) -> &str {
        self.parent_base_dir.as_deref().unwrap_or("")
    }

    /// The group this entry belongs to, made absolute against the containing config's folder.
    pub fn group_path(&self) -> String {
        match &self.kind {
            EntryKind::Config { path } => {
                let (abs, p) = match path.strip_prefix('/') {
                    Some(p) => (true, p),
                    None => (false, path.as_str()),
                };
                let group = p.rfind('/').map(|i| &p[..i]).unwrap_or("");
                if abs || self.base_dir().is_empty() {
                    group.to_string()
                } else if group.is_empty() {
                    self.base_dir().to_string()
                } else {
                    format!("{}/{}", self.base_dir(), group)
                }
            }
            EntryKind::Group { group, .. } => match group.strip_prefix('/') {
                Some(g) => g.to_string(),
                None if self.base_dir().is_empty() => group.clone(),
                None => format!("{}/{}", self.base_dir(), group),
            },
        }
    }

    /// The option name (`gpu`), `None` for a null placeholder or an option list.
    pub fn name(&self) -> Option<String> {
        match &self.kind {
            EntryKind::Config { path } => Some(path.rsplit('/').next().unwrap_or(path).to_string()),
            EntryKind::Group { value: GroupValue::Name(n), .. } => n.clone(),
            EntryKind::Group { value: GroupValue::Options(_), .. } => None,
        }
    }

    pub fn options(&self) -> Option<&[String]> {
        match &self.kind {
            EntryKind::Group { value: GroupValue::Options(o), .. } => Some(o),
            _ => None,
        }
    }

    pub fn config_path(&self) -> String {
        match &self.kind {
            EntryKind::Config { path } => match path.strip_prefix('/') {
                Some(p) => p.to_string(),
                None if self.base_dir().is_empty() => path.clone(),
                None => format!("{}/{}", self.base_dir(), path),
            },
            EntryKind::Group { .. } => format!("{}/{}", self.group_path(), self.name().unwrap_or_default()),
        }
    }

    fn relative_group_path(&self) -> String {
        match &self.kind {
            EntryKind::Config { path } => {
                let p = path.strip_prefix('/').unwrap_or(path);
                p.rfind('/').map(|i| p[..i].to_string()).unwrap_or_default()
            }
            EntryKind::Group { group, .. } => group.strip_prefix('/').unwrap_or(group).to_string(),
        }
    }

    pub fn default_package(&self) -> String {
        self.group_path().replace('/', ".")
    }

    /// `@pkg` if given, else (optionally) the file's `# @package` header.
    pub fn effective_package(&self, default_to_header: bool) -> Option<String> {
        if self.package.is_none() && default_to_header {
            self.package_header.clone()
        } else {
            self.package.clone()
        }
    }

    /// Where this entry's content lands in the final config ("" is the root).
    pub fn final_package(&self, default_to_header: bool) -> String {
        let parent = self.parent_package.as_deref().unwrap_or("");
        let package = self.effective_package(default_to_header).unwrap_or_else(|| self.relative_group_path().replace('/', "."));
        let joined = if parent.is_empty() {
            package
        } else if package.is_empty() {
            parent.to_string()
        } else {
            format!("{parent}.{package}")
        };
        strip_global(&joined)
    }

    /// The key overrides use to find this entry: its group, plus `@pkg` when the package moved.
    pub fn override_key(&self) -> String {
        let default_pkg = self.default_package();
        let final_pkg = self.final_package(false);
        let group = self.group_path();
        if default_pkg != final_pkg {
            let shown = if final_pkg.is_empty() { "_global_".to_string() } else { final_pkg };
            format!("{group}@{shown}")
        } else {
            group
        }
    }

    /// A header is always absolute: `foo` means `_global_.foo`.
    pub fn set_package_header(&mut self, header: Option<String>) {
        if let Some(h) = header {
            let h = if h == "_global_" || h.starts_with("_global_.") {
                h
            } else if h.is_empty() {
                "_global_".into()
            } else {
                format!("_global_.{h}")
            };
            self.package_header = Some(h);
        }
    }

    pub fn is_missing(&self) -> bool {
        self.name().as_deref() == Some("???") && self.options().is_none()
    }

    /// An option (or config path) written as `${...}` refers to other choices.
    pub fn is_interpolation(&self) -> bool {
        match &self.kind {
            EntryKind::Config { .. } => self.config_path().contains("${"),
            EntryKind::Group { value: GroupValue::Name(Some(n)), .. } => n.contains("${"),
            _ => false,
        }
    }

    /// Hydra's display of an option value in messages (`a`, `[a, b]`, `None`).
    pub fn value_display(&self) -> String {
        match &self.kind {
            EntryKind::Group { value: GroupValue::Options(o), .. } => {
                format!("[{}]", o.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", "))
            }
            _ => self.name().unwrap_or_else(|| "None".into()),
        }
    }
}

/// `_global_` drops everything up to and including the last `_global_.`.
pub fn strip_global(pkg: &str) -> String {
    match pkg.rfind("_global_") {
        None => pkg.to_string(),
        Some(i) => pkg.get(i + "_global_".len() + 1..).unwrap_or("").to_string(),
    }
}

/// Splits `group@pkg` (a `pkg:pkg2` rename keeps only the first part, as Hydra 1.1+).
fn split_package(s: &str) -> (String, Option<String>) {
    match s.find('@') {
        None => (s.to_string(), None),
        Some(i) => {
            let pkg = &s[i + 1..];
            let pkg = pkg.split(':').next().unwrap_or(pkg);
            (s[..i].to_string(), Some(pkg.to_string()))
        }
    }
}

/// Parses a file's `defaults:` node into entries, with Hydra's messages for malformed items.
pub fn parse_defaults_list(config_path: &str, node: Node) -> Result<Vec<DefaultEntry>, Diagnostic> {
    let items = match node.value {
        Value::List(items) => items,
        Value::Map(_) => {
            return Err(Diagnostic::error(format!("Invalid defaults list in '{config_path}', defaults must be a list (got mapping)"), node.span)
                .with_class(ErrorClass::ValueError)
                .with_help("write the defaults list as a YAML list: `defaults:\\n  - group: option`"))
        }
        other => {
            return Err(Diagnostic::error(format!("Invalid defaults list in '{config_path}', defaults must be a list (got {})", other.type_name()), node.span)
                .with_class(ErrorClass::ValueError))
        }
    };
    let mut out = Vec::new();
    for item in items {
        let span = item.span;
        match item.value {
            Value::Str(s) => {
                let (path, package) = split_package(&s);
                if path == "_self_" && package.is_some() {
                    return Err(Diagnostic::error("_self_@PACKAGE is not supported", span));
                }
                out.push(DefaultEntry::config(&path, package, span));
            }
            Value::Map(m) => {
                if m.len() != 1 {
                    let keys: Vec<&str> = m.keys().map(|k| k.as_str()).collect();
                    let msg = if m.is_empty() {
                        format!("In {config_path}: Missing group name in {{}}")
                    } else {
                        format!("In {config_path}: Too many keys in default item {{{}}}", keys.join(", "))
                    };
                    return Err(Diagnostic::error(msg, span).with_help("each defaults entry is one `group: option` pair; put each on its own `- ` line"));
                }
                let Some((key, value)) = m.into_iter().next() else { continue };
                let words: Vec<&str> = key.split(' ').collect();
                let (flags, last) = words.split_at(words.len().saturating_sub(1));
                let mut optional = false;
                let mut is_override = false;
                for w in flags {
                    match *w {
                        "optional" => optional = true,
                        "override" => is_override = true,
                        _ => break,
                    }
                }
                let (group, package) = split_package(last.first().copied().unwrap_or(""));
                let gv = match value.value {
                    Value::Null => GroupValue::Name(None),
                    Value::Missing => GroupValue::Name(Some("???".into())),
                    Value::Str(s) => GroupValue::Name(Some(s)),
                    Value::List(opts) => {
                        let mut names = Vec::new();
                        for o in opts {
                            match o.value {
                                Value::Str(s) => names.push(s),
                                other => {
                                    return Err(Diagnostic::error(
                                        format!("Unsupported item value in defaults : {}, nested list items must be strings", other.type_name()),
                                        o.span,
                                    ))
                                }
                            }
                        }
                        GroupValue::Options(names)
                    }
                    other => {
                        return Err(Diagnostic::error(
                            format!("Unsupported item value in defaults : {}. Supported: string or list", other.type_name()),
                            value.span,
                        )
                        .with_help("quote the option name, e.g. `group: '1'`"))
                    }
                };
                if group.is_empty() {
                    return Err(Diagnostic::error(format!("In {config_path}: Missing group name in default item"), span));
                }
                let mut d = DefaultEntry::group(&group, gv, package, span);
                d.optional = optional;
                d.is_override = is_override;
                out.push(d);
            }
            other => return Err(Diagnostic::error(format!("Unsupported type in defaults : {}", other.type_name()), span)),
        }
    }
    Ok(out)
}
