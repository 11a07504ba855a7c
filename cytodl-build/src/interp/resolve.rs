//! Resolution of `${...}` over a config tree, as `OmegaConf.resolve` does it: whole-value
//! interpolations keep the target's type, embedded ones concatenate with Python `str()`,
//! relative references count from the container holding the value, and interpolations to `???`
//! become `???`. Every independent error is reported, each with the span of the value.

use std::collections::HashMap;
use std::path::PathBuf;

use thiserror::Error;

use super::grammar::{self, Element, Interp, Key, Piece};
use super::resolvers;
use crate::config::node::{Map, Node, Value};
use crate::diag::{did_you_mean_in, Diagnostic, Diagnostics, ErrorClass, Span};
use crate::python::py_str;

/// Interpolated strings longer than this are refused (doubling chains would exhaust memory).
const MAX_STRING: usize = 16 << 20;

/// Where a resolved value is in the tree: its keys (list indices as decimal strings).
pub type Path = Vec<String>;

/// The ways an interpolation fails, with OmegaConf's messages.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum InterpError {
    #[error("Interpolation key '{key}' not found")]
    KeyNotFound { key: String, suggestion: Option<String> },
    #[error("Error resolving key '{key}'")]
    PastRoot { key: String },
    #[error("MissingMandatoryValue while resolving interpolation: Missing mandatory value: {key}")]
    ToMissing { key: String, definition: Span },
    #[error("Recursive interpolation detected")]
    Recursive { chain: Vec<(String, Span)> },
    #[error("Interpolation to parent node detected")]
    ToParent { key: String },
    #[error("Unsupported interpolation type {name}")]
    UnsupportedResolver { name: String, suggestion: Option<String> },
    #[error("GrammarParseError: {message}")]
    Grammar { message: String, offset: usize },
    #[error("ConfigTypeError raised while resolving interpolation: node `{key}` is not a container and cannot be indexed")]
    NotAContainer { key: String },
    #[error("Environment variable '{name}' not found")]
    EnvNotFound { name: String },
    #[error("{resolver}: {message}")]
    Resolver { resolver: String, message: String },
    #[error("Value '{kind}' is not a supported primitive type (a resolver must return a scalar; use `oc.create` for containers)")]
    UnsupportedValueType { kind: String },
}

impl InterpError {
    /// The OmegaConf exception raised for this failure.
    pub fn class(&self) -> ErrorClass {
        match self {
            InterpError::KeyNotFound { .. } | InterpError::PastRoot { .. } => ErrorClass::InterpolationKeyError,
            InterpError::ToMissing { .. } => ErrorClass::InterpolationToMissingValueError,
            InterpError::UnsupportedResolver { .. } => ErrorClass::UnsupportedInterpolationType,
            InterpError::Grammar { .. } => ErrorClass::GrammarParseError,
            InterpError::UnsupportedValueType { .. } => ErrorClass::UnsupportedValueType,
            InterpError::Recursive { .. }
            | InterpError::ToParent { .. }
            | InterpError::NotAContainer { .. }
            | InterpError::EnvNotFound { .. }
            | InterpError::Resolver { .. } => ErrorClass::InterpolationResolutionError,
        }
    }
}

/// Inputs that do not come from the config: the clock, the working directory, the environment.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    pub now: chrono::DateTime<chrono::Local>,
    pub cwd: PathBuf,
    /// Extra environment values that take precedence over the process environment.
    pub env: HashMap<String, String>,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions { now: chrono::Local::now(), cwd: std::env::current_dir().unwrap_or_default(), env: HashMap::new() }
    }
}

/// The resolution state for one config.
pub(crate) struct Resolver<'a> {
    pub root: &'a Node,
    pub opts: &'a ResolveOptions,
    stack: Vec<(Path, Span)>,
    cache: HashMap<Path, Node>,
    pub now_cache: HashMap<String, String>,
    /// Interpolation leaves already resolved in place by the document-order walk (their repr
    /// inside an embedded container is typed; before that OmegaConf shows `'str(value)'`).
    done: std::collections::HashSet<Path>,
    /// The tree path of the last node a reference selected (None for computed values).
    last_selected: Option<Path>,
    /// Set by a resolver that returned a plain container (see [`resolvers::PlainResult`]).
    pub(crate) plain_result: Option<resolvers::PlainResult>,
    /// How the last resolver's result reads when embedded in a string, when that differs from
    /// its value's `str()` (`oc.dict.values` shows its interpolations).
    pub(crate) embed_repr: Option<String>,
    /// Non-zero while the `hydra:` resolver reads the `hydra` node. Otherwise that node is
    /// invisible to the app config, as in Hydra (which removes it before resolving).
    pub hydra_access: usize,
}

/// Resolves every interpolation outside the `hydra` node (which, as in Hydra's app config, is
/// only read through `${hydra:...}` and `${hydra.x}`). Interpolations to `???` become `???`.
pub fn resolve_config(root: &Node, opts: &ResolveOptions) -> Result<Node, Diagnostics> {
    let mut r = Resolver::new(root, opts);
    let mut errors = Diagnostics::new();
    let mut out = Map::new();
    if let Value::Map(m) = &root.value {
        for (k, v) in m {
            if k == "hydra" {
                out.insert(k.clone(), v.clone());
                continue;
            }
            let resolved = r.resolve_all(v, vec![k.clone()], &mut errors);
            out.insert(k.clone(), resolved);
        }
    }
    if errors.has_errors() {
        return Err(errors);
    }
    Ok(Node::map(out, root.span))
}

/// `OmegaConf.select(cfg, key)` as Hydra's override code uses it: interpolations on the way and at
/// the end are resolved; an absent key, `null` or `???` is `None`.
pub fn select_resolved(root: &Node, parts: &[String]) -> Result<Option<Value>, InterpError> {
    let opts = ResolveOptions::default();
    let mut r = Resolver::new(root, &opts);
    r.hydra_access = 1;
    match r.select(0, parts, &[]) {
        Ok(n) => Ok(match n.value {
            Value::Null | Value::Missing => None,
            v => Some(v),
        }),
        Err(InterpError::KeyNotFound { .. } | InterpError::PastRoot { .. } | InterpError::ToMissing { .. } | InterpError::NotAContainer { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Resolves one string against a config (the root is its container); used for defaults lists.
pub fn resolve_standalone(text: &str, root: &Node) -> Result<Value, InterpError> {
    let opts = ResolveOptions::default();
    let mut r = Resolver::new(root, &opts);
    let pieces = grammar::parse_value(text).map_err(|e| InterpError::Grammar { message: e.message, offset: e.offset })?;
    r.eval_pieces(&pieces, &[]).map(|n| n.value)
}

/// Deletes every mapping-valued `_aux` key, recursing into mappings and lists (cyto_dl's
/// `remove_aux_key`); a scalar `_aux` stays. Like cyto_dl, which iterates list items by value,
/// a `???` item in a list is an error (one diagnostic per item).
pub fn remove_aux(node: &mut Node) -> Diagnostics {
    let mut errors = Diagnostics::new();
    remove_aux_at(node, &mut Vec::new(), &mut errors);
    errors
}

fn remove_aux_at(node: &mut Node, path: &mut Vec<String>, errors: &mut Diagnostics) {
    match &mut node.value {
        Value::Map(m) => {
            for (k, v) in m.iter_mut() {
                path.push(k.clone());
                remove_aux_at(v, path, errors);
                path.pop();
            }
            if matches!(m.get("_aux").map(|n| &n.value), Some(Value::Map(_))) {
                m.shift_remove("_aux");
            }
        }
        Value::List(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                if matches!(v.value, Value::Missing) {
                    errors.push(
                        Diagnostic::error(format!("Missing value at index {i}"), v.span)
                            .with_class(ErrorClass::MissingMandatoryValue)
                            .with_key(path.join("."))
                            .with_help(format!("a list item cannot be `???`; set it: `{}=<value>`", path.join("."))),
                    );
                }
                remove_aux_at(v, path, errors);
                path.pop();
            }
        }
        _ => {}
    }
}

impl<'a> Resolver<'a> {
    pub fn new(root: &'a Node, opts: &'a ResolveOptions) -> Self {
        Resolver {
            root,
            opts,
            stack: Vec::new(),
            cache: HashMap::new(),
            now_cache: HashMap::new(),
            done: Default::default(),
            last_selected: None,
            hydra_access: 0,
            plain_result: None,
            embed_repr: None,
        }
    }

    /// Resolves a subtree for output, collecting errors instead of stopping at the first.
    fn resolve_all(&mut self, node: &Node, path: Path, errors: &mut Diagnostics) -> Node {
        match &node.value {
            Value::Map(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    let mut p = path.clone();
                    p.push(k.clone());
                    out.insert(k.clone(), self.resolve_all(v, p, errors));
                }
                Node::map(out, node.span)
            }
            Value::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    let mut p = path.clone();
                    p.push(i.to_string());
                    out.push(self.resolve_all(v, p, errors));
                }
                Node::new(Value::List(out), node.span)
            }
            Value::Str(s) if s.contains("${") => match self.resolve_path(&path) {
                Ok(n) => {
                    self.done.insert(path);
                    n
                }
                Err(InterpError::ToMissing { .. }) => Node::new(Value::Missing, node.span),
                Err(e) => {
                    errors.push(self.diagnostic(&e, node, &path));
                    node.clone()
                }
            },
            _ => node.clone(),
        }
    }

    /// Turns an error at `node` (found at `path`) into a diagnostic naming the use and definition.
    pub fn diagnostic(&self, e: &InterpError, node: &Node, path: &[String]) -> Diagnostic {
        let text = node.as_str().unwrap_or("");
        let mut d =
            Diagnostic::error(format!("{e}\n    full key: {}\n    value: {text}", path.join(".")), node.span).with_key(path.join(".")).with_class(match e {
                // OmegaConf checks an interpolation's grammar when Hydra merges the value into
                // the config, and Hydra wraps what composition raises.
                InterpError::Grammar { .. } => ErrorClass::ConfigCompositionException,
                e => e.class(),
            });
        d.message = e.to_string();
        match e {
            InterpError::KeyNotFound { key, suggestion } => {
                d = d.with_help(match suggestion {
                    Some(s) if s.starts_with("the `hydra` node") => s.clone(),
                    Some(s) => format!("`{key}` does not exist; {s}"),
                    None => format!("`{key}` does not exist; define it, or set it on the command line with `+{key}=<value>`"),
                });
            }
            InterpError::ToMissing { key, definition } => {
                d = d.with_note(*definition, format!("`{key}` is `???` (mandatory) here")).with_help(format!("set it, e.g. `{key}=<value>`"));
            }
            InterpError::Recursive { chain } => {
                for (k, s) in chain {
                    d = d.with_note(*s, format!("`{k}` is part of the cycle"));
                }
                d = d.with_help(format!(
                    "the interpolations form a cycle: {}",
                    chain.iter().map(|(k, _)| k.as_str()).chain(chain.first().map(|(k, _)| k.as_str())).collect::<Vec<_>>().join(" -> ")
                ));
            }
            InterpError::ToParent { key } => {
                d = d.with_help(format!("`{key}` contains this value, so it cannot be copied into it"));
            }
            InterpError::UnsupportedResolver { suggestion: Some(s), .. } => d = d.with_help(s.clone()),
            InterpError::UnsupportedResolver { .. } => {
                d = d.with_help("known resolvers: oc.env, oc.select, oc.decode, oc.create, oc.dict.keys, oc.dict.values, now, hydra, kv_to_dict, eval")
            }
            InterpError::Grammar { offset, .. } => {
                d.span = shift_into_scalar(node.span, *offset);
                d = d.with_help("interpolations look like `${key.path}` or `${resolver:arg1,arg2}`; escape a literal with `\\${`");
            }
            InterpError::NotAContainer { key } => {
                let parts: Vec<String> = key.split('.').map(str::to_string).collect();
                if let Some(n) = self.raw_at(&parts).filter(|n| n.span.is_known()) {
                    d = d.with_note(n.span, format!("`{key}` is set to {} here, not to a mapping or a list", crate::python::py_str(&n.value)));
                }
            }
            InterpError::EnvNotFound { name } => {
                d = d.with_help(format!("export {name}=..., or give a default: `${{oc.env:{name},<default>}}`"));
            }
            _ => {}
        }
        d
    }

    fn raw_at(&self, path: &[String]) -> Option<&'a Node> {
        let mut cur = self.root;
        for p in path {
            cur = cur.child(p)?;
        }
        Some(cur)
    }

    /// The fully resolved node at `path` of the original tree.
    pub fn resolve_path(&mut self, path: &[String]) -> Result<Node, InterpError> {
        if let Some(hit) = self.cache.get(path) {
            return Ok(hit.clone());
        }
        let Some(raw) = self.raw_at(path) else {
            return Err(InterpError::KeyNotFound { key: path.join("."), suggestion: None });
        };
        if self.stack.iter().any(|(p, _)| p.as_slice() == path) {
            let start = self.stack.iter().position(|(p, _)| p.as_slice() == path).unwrap_or(0);
            let chain = self.stack[start..].iter().map(|(p, s)| (p.join("."), *s)).collect();
            return Err(InterpError::Recursive { chain });
        }
        let resolved = match &raw.value {
            Value::Str(s) if s.contains("${") => {
                self.stack.push((path.to_vec(), raw.span));
                let container = &path[..path.len().saturating_sub(1)];
                let result = grammar::parse_value(s)
                    .map_err(|e| InterpError::Grammar { message: e.message, offset: e.offset })
                    .and_then(|pieces| self.eval_pieces(&pieces, container));
                self.stack.pop();
                let mut n = result?;
                n.span = raw.span;
                n
            }
            Value::Map(m) => {
                let mut out = Map::new();
                for (k, child) in m {
                    let mut p = path.to_vec();
                    p.push(k.clone());
                    out.insert(k.clone(), self.resolve_member(&p, child)?);
                }
                Node::map(out, raw.span)
            }
            Value::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, child) in items.iter().enumerate() {
                    let mut p = path.to_vec();
                    p.push(i.to_string());
                    out.push(self.resolve_member(&p, child)?);
                }
                Node::new(Value::List(out), raw.span)
            }
            _ => raw.clone(),
        };
        self.cache.insert(path.to_vec(), resolved.clone());
        Ok(resolved)
    }

    /// A member of a container being resolved whole: as in `OmegaConf.resolve`, a member that
    /// interpolates to `???` becomes `???` instead of failing the container.
    fn resolve_member(&mut self, path: &[String], raw: &Node) -> Result<Node, InterpError> {
        match self.resolve_path(path) {
            Err(InterpError::ToMissing { .. }) => Ok(Node::new(Value::Missing, raw.span)),
            other => other,
        }
    }

    /// A whole value: one interpolation keeps its type; anything else is a string.
    pub fn eval_pieces(&mut self, pieces: &[Piece], container: &[String]) -> Result<Node, InterpError> {
        if let [Piece::Interp(i)] = pieces {
            self.plain_result = None;
            let n = self.eval_interp(i, container)?;
            if let Some(p) = self.plain_result.take() {
                return Err(resolvers::unsupported_value(p.type_name));
            }
            return Ok(n);
        }
        Ok(Node::new(Value::Str(self.concat(pieces, container)?), Span::UNKNOWN))
    }

    /// Pieces joined with Python `str()` of each interpolation.
    fn concat(&mut self, pieces: &[Piece], container: &[String]) -> Result<String, InterpError> {
        let mut s = String::new();
        for p in pieces {
            match p {
                Piece::Lit(l) => s.push_str(l),
                Piece::Interp(i) => {
                    let text = self.interp_as_str(i, container)?;
                    s.push_str(&text);
                }
            }
            check_len(&s)?;
        }
        Ok(s)
    }

    /// Python `str()` of an interpolation embedded in a longer string. A container from the
    /// tree is shown as OmegaConf's repr shows it, which depends on what was resolved already.
    fn interp_as_str(&mut self, interp: &Interp, container: &[String]) -> Result<String, InterpError> {
        self.last_selected = None;
        self.plain_result = None;
        self.embed_repr = None;
        let n = self.eval_interp(interp, container)?;
        if let Some(text) = self.embed_repr.take() {
            return Ok(text);
        }
        if let Some(p) = self.plain_result.take() {
            return Ok(p.text);
        }
        if n.is_container() {
            if let Some(path) = self.last_selected.take() {
                if let Some(raw) = self.raw_at(&path) {
                    return self.container_repr(raw, &path);
                }
            }
        }
        Ok(py_str(&n.value))
    }

    fn container_repr(&mut self, raw: &'a Node, path: &[String]) -> Result<String, InterpError> {
        let child_path = |k: &str| {
            let mut p = path.to_vec();
            p.push(k.to_string());
            p
        };
        Ok(match &raw.value {
            Value::Map(m) => {
                let mut parts = Vec::with_capacity(m.len());
                for (k, v) in m {
                    parts.push(format!("{}: {}", crate::python::str_repr(k), self.container_repr(v, &child_path(k))?));
                }
                format!("{{{}}}", parts.join(", "))
            }
            Value::List(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    parts.push(self.container_repr(v, &child_path(&i.to_string()))?);
                }
                format!("[{}]", parts.join(", "))
            }
            Value::Str(s) if s.contains("${") => {
                let resolved = self.resolve_path(path)?;
                if self.done.contains(path) {
                    crate::python::py_repr(&resolved.value)
                } else {
                    format!("'{}'", py_str(&resolved.value))
                }
            }
            other => crate::python::py_repr(other),
        })
    }

    pub fn eval_interp(&mut self, interp: &Interp, container: &[String]) -> Result<Node, InterpError> {
        match interp {
            Interp::Node { dots, keys, .. } => {
                // OmegaConf joins the key parts into one dotted key before selecting, so an
                // interpolated part may bring dots of its own (`${${rel_opt}.b}`, rel_opt=.options).
                let mut full = ".".repeat(*dots);
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        full.push('.');
                    }
                    full.push_str(&self.eval_key(k, container)?);
                }
                let rest = full.trim_start_matches('.');
                let dots = full.len() - rest.len();
                let parts: Vec<String> = if rest.is_empty() { Vec::new() } else { rest.split('.').map(str::to_string).collect() };
                self.select(dots, &parts, container)
            }
            Interp::Resolver { name, args, .. } => {
                let mut name_parts = Vec::with_capacity(name.len());
                for k in name {
                    name_parts.push(self.eval_key(k, container)?);
                }
                let name = name_parts.join(".");
                let result = resolvers::call(self, &name, args, container);
                // A resolver's value is computed, not a node of the tree; what its arguments left
                // behind does not describe it.
                self.last_selected = None;
                if !matches!(name.as_str(), "eval" | "oc.decode") {
                    self.plain_result = None;
                }
                if name != "oc.dict.values" {
                    self.embed_repr = None;
                }
                result
            }
        }
    }

    fn eval_key(&mut self, k: &Key, container: &[String]) -> Result<String, InterpError> {
        match k {
            Key::Lit(s) => Ok(s.clone()),
            Key::Interp(i) => {
                let n = self.eval_interp(i, container)?;
                Ok(py_str(&n.value))
            }
        }
    }

    /// Evaluates a resolver argument or a decoded element.
    pub fn eval_element(&mut self, e: &Element, container: &[String]) -> Result<Node, InterpError> {
        let v = match e {
            Element::Null => Value::Null,
            Element::Bool(b) => Value::Bool(*b),
            Element::Int(i) => Value::Int(*i),
            Element::Float(f) => Value::Float(*f),
            Element::Str(s) => Value::Str(s.clone()),
            Element::Interp(i) => return self.eval_interp(i, container),
            Element::Concat(pieces) => Value::Str(self.concat(pieces, container)?),
            Element::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    out.push(self.eval_element(i, container)?);
                }
                Value::List(out)
            }
            Element::Dict(kv) => {
                let mut m = Map::new();
                for (k, v) in kv {
                    let n = self.eval_element(v, container)?;
                    m.insert(k.clone(), n);
                }
                Value::Map(m)
            }
        };
        Ok(Node::new(v, Span::UNKNOWN))
    }

    /// Finds the node `${<dots>key.parts}` names, resolving intermediate interpolations.
    pub fn select(&mut self, dots: usize, parts: &[String], container: &[String]) -> Result<Node, InterpError> {
        let written = format!("{}{}", ".".repeat(dots), parts.join("."));
        let mut path: Path = if dots == 0 {
            Vec::new()
        } else {
            let up = dots - 1;
            if up > container.len() {
                return Err(InterpError::PastRoot { key: written });
            }
            container[..container.len() - up].to_vec()
        };
        if parts.is_empty() && dots == 0 {
            return Err(InterpError::KeyNotFound { key: written, suggestion: None });
        }
        let top = path.first().or(parts.first());
        let inside_hydra = self.stack.last().is_some_and(|(p, _)| p.first().is_some_and(|k| k == "hydra"));
        if top.is_some_and(|k| k == "hydra") && self.hydra_access == 0 && !inside_hydra {
            return Err(InterpError::KeyNotFound {
                key: written,
                suggestion: Some("the `hydra` node is not part of the app config; read it with `${hydra:...}`".into()),
            });
        }
        // Walk the original tree while we can; once an intermediate value is itself an
        // interpolation, continue inside its resolved value.
        let mut detached: Option<Node> = None;
        for (i, part) in parts.iter().enumerate() {
            if let Some(d) = detached.take() {
                match d.value {
                    Value::Map(_) | Value::List(_) => match d.child(part) {
                        Some(c) => detached = Some(c.clone()),
                        None => return Err(self.not_found(&written, &path, part)),
                    },
                    Value::Missing => return Err(InterpError::ToMissing { key: path.join("."), definition: d.span }),
                    _ => return Err(InterpError::NotAContainer { key: path.join(".") }),
                }
                path.push(part.clone());
                continue;
            }
            let Some(cur) = self.raw_at(&path) else {
                return Err(self.not_found(&written, &path, part));
            };
            match &cur.value {
                Value::Map(_) | Value::List(_) => {
                    if cur.child(part).is_none() {
                        return Err(self.not_found(&written, &path, part));
                    }
                    path.push(part.clone());
                    let child = self.raw_at(&path);
                    let is_last = i + 1 == parts.len();
                    if let Some(c) = child {
                        if c.is_interpolation() && !is_last {
                            detached = Some(self.resolve_path(&path)?);
                        }
                    }
                }
                Value::Missing => return Err(InterpError::ToMissing { key: path.join("."), definition: cur.span }),
                _ => return Err(InterpError::NotAContainer { key: path.join(".") }),
            }
        }
        let target = match detached {
            Some(d) => d,
            None => {
                // A reference to a container that holds the value being resolved.
                if let Some((current, _)) = self.stack.last() {
                    if current.len() > path.len() && current.starts_with(&path) {
                        return Err(InterpError::ToParent { key: written });
                    }
                }
                let mut n = self.resolve_path(&path)?;
                n = self.reread_resolved(&path, n)?;
                self.last_selected = Some(path.clone());
                n
            }
        };
        if let Value::Missing = target.value {
            return Err(InterpError::ToMissing { key: path.join("."), definition: target.span });
        }
        Ok(target)
    }

    /// `OmegaConf.resolve` stores each resolved value in place; a value resolved earlier in the
    /// walk that reads as an interpolation (from an escaped `\${`) is live when read again.
    fn reread_resolved(&mut self, path: &[String], n: Node) -> Result<Node, InterpError> {
        let Value::Str(text) = &n.value else { return Ok(n) };
        if !text.contains("${") || !self.done.contains(path) {
            return Ok(n);
        }
        if let Some(start) = self.stack.iter().position(|(p, _)| p.as_slice() == path) {
            let chain = self.stack[start..].iter().map(|(p, s)| (p.join("."), *s)).collect();
            return Err(InterpError::Recursive { chain });
        }
        self.stack.push((path.to_vec(), n.span));
        let container = &path[..path.len().saturating_sub(1)];
        let result = grammar::parse_value(text)
            .map_err(|e| InterpError::Grammar { message: e.message, offset: e.offset })
            .and_then(|pieces| self.eval_pieces(&pieces, container));
        self.stack.pop();
        let mut out = result?;
        out.span = n.span;
        Ok(out)
    }

    fn not_found(&self, written: &str, parent: &[String], part: &str) -> InterpError {
        let suggestion = self.raw_at(parent).and_then(|p| p.as_map()).and_then(|m| {
            // Rank by the missing part, name the full key.
            let prefix = if parent.is_empty() { String::new() } else { format!("{}.", parent.join(".")) };
            did_you_mean_in(&prefix, part, m.keys().map(|k| k.as_str()))
        });
        InterpError::KeyNotFound { key: written.to_string(), suggestion }
    }
}

fn check_len(s: &str) -> Result<(), InterpError> {
    if s.len() > MAX_STRING {
        return Err(InterpError::Resolver {
            resolver: "interpolation".into(),
            message: format!("the resulting string is longer than {} MiB", MAX_STRING >> 20),
        });
    }
    Ok(())
}

/// A span moved to the character of a scalar where an error was found (plain scalars only).
fn shift_into_scalar(span: Span, offset: usize) -> Span {
    span.shifted(offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::load_config;
    use crate::diag::FileId;

    fn y(s: &str) -> Node {
        load_config(s, FileId(1)).unwrap()
    }

    const BASE: &str = "str: hi\nint: 123\nfloat: 1.2\ndict: {a: 0, b: {c: 1}}\nlist: [-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n'null': null\noptions: {a: A, b: B}\nchoice: a\nrel_opt: .options\n";

    fn with_base(extra: &str) -> Result<Node, Diagnostics> {
        let cfg = y(&format!("{BASE}{extra}"));
        resolve_config(&cfg, &ResolveOptions::default())
    }

    fn val(expr: &str) -> Result<Value, String> {
        let text = format!("x: \"{}\"\n", expr.replace('\\', "\\\\").replace('"', "\\\""));
        match with_base(&text) {
            Ok(n) => Ok(n.as_map().unwrap()["x"].value.clone()),
            Err(d) => Err(d.items[0].message.clone()),
        }
    }

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn vector_1_to_4_node_references() {
        assert_eq!(val("${dict.a}"), Ok(Value::Int(0)));
        assert_eq!(val("${list.0}"), Ok(Value::Int(-1)));
        assert_eq!(val("${list[0]}"), Ok(Value::Int(-1)));
        assert_eq!(val("${dict[b][c]}"), Ok(Value::Int(1)));
        assert!(val("${list.-1}").unwrap_err().contains("not found"));
        assert_eq!(val("${options.${choice}}"), Ok(s("A")));
        assert_eq!(val("${${rel_opt}.b}"), Ok(s("B")));
        assert_eq!(val("${ \tdict.a  \t}"), Ok(Value::Int(0)));
        assert!(val("${dict .\ta}").unwrap_err().starts_with("GrammarParseError"));
    }

    #[test]
    fn vector_6_7_8_strings() {
        assert_eq!(val("'${null}'"), Ok(s("'None'")));
        assert_eq!(val("${MiSsInG_ReSoLvEr:0}"), Err("Unsupported interpolation type MiSsInG_ReSoLvEr".into()));
        assert_eq!(val("bonjour ${str}"), Ok(s("bonjour hi")));
        assert_eq!(val("${null}${float}"), Ok(s("None1.2")));
        assert_eq!(val("${str}}"), Ok(s("hi}")));
        assert!(val("${oc.env:A${str}").unwrap_err().starts_with("GrammarParseError"));
        assert_eq!(val("Esc: \\${str}"), Ok(s("Esc: ${str}")));
        assert_eq!(val("Esc: \\\\${str}"), Ok(s("Esc: \\hi")));
        assert_eq!(val("Wrong: $\\{str\\}"), Ok(s("Wrong: $\\{str\\}")));
    }

    #[test]
    fn vectors_10_to_14() {
        let n = resolve_config(&y("a: {aa: 10}\nb: ${a}\nc: ${b.aa}\n"), &ResolveOptions::default()).unwrap();
        assert_eq!(n, y("a: {aa: 10}\nb: {aa: 10}\nc: 10\n"));
        let e = resolve_config(&y("a: ${b}\nb: ${a}\n"), &ResolveOptions::default()).unwrap_err();
        assert_eq!(e.items[0].message, "Recursive interpolation detected");
        let n = resolve_config(&y("a: ${b}_${c}\nb: \"10\"\nc: 20\n"), &ResolveOptions::default()).unwrap();
        assert_eq!(n.as_map().unwrap()["a"].value, s("10_20"));
        let n = resolve_config(&y("a: A\nb: ${a}_${a}\n"), &ResolveOptions::default()).unwrap();
        assert_eq!(n.as_map().unwrap()["b"].value, s("A_A"));
        let e = resolve_config(&y("a:\n  a: ${..a}\n"), &ResolveOptions::default()).unwrap_err();
        assert_eq!(e.items[0].message, "Interpolation to parent node detected");
        let n = resolve_config(&y("x: $${y1}\ny1: \"{foo}\"\n"), &ResolveOptions::default()).unwrap();
        assert_eq!(n.as_map().unwrap()["x"].value, s("${foo}"));
        let n = resolve_config(&y("a: ???\nb: a_${a}\n"), &ResolveOptions::default()).unwrap();
        assert_eq!(n, y("a: ???\nb: ???\n"));
        // Vector 14's list root `[${1}, ???]`, as a list inside our (always mapping) root.
        let n = resolve_config(&y("l: ['${.1}', '???']\n"), &ResolveOptions::default()).unwrap();
        assert_eq!(n, y("l: ['???', '???']\n"));
        let n = resolve_config(&y("x: ${y}\ny: {z: '${foo}'}\nfoo: 0\n"), &ResolveOptions::default()).unwrap();
        assert_eq!(n.as_map().unwrap()["x"], y("z: 0"));
        // An escaped `\${` resolved in place earlier is read as a live interpolation later.
        let n = resolve_config(&y("a: \\${b}\nb: 1\nc: ${a}\nd: ${e}\ne: \\${b}\n"), &ResolveOptions::default()).unwrap();
        assert_eq!(n, y("a: ${b}\nb: 1\nc: 1\nd: ${b}\ne: ${b}\n"));
        // A copied container keeps its own `???` members rather than becoming `???` whole.
        // A container embedded in a string shows as OmegaConf's repr, which depends on whether
        // its interpolations were already resolved in place (document order).
        let n = resolve_config(&y("s: x ${d}\nd: {a: '${b}', n: null, f: 1.0e-05}\nb: 1.5\nt: x ${d}\n"), &ResolveOptions::default()).unwrap();
        assert_eq!(n.as_map().unwrap()["s"].value, s("x {'a': '1.5', 'n': None, 'f': 1e-05}"));
        assert_eq!(n.as_map().unwrap()["t"].value, s("x {'a': 1.5, 'n': None, 'f': 1e-05}"));
        let n = resolve_config(&y("x: ${y}\ny: {z: '${m}', k: 1}\nm: ???\n"), &ResolveOptions::default()).unwrap();
        assert_eq!(n, y("x: {z: '???', k: 1}\ny: {z: '???', k: 1}\nm: ???\n"));
    }

    #[test]
    fn relative_references_and_lists() {
        let n = resolve_config(&y("a:\n  b: 1\n  c: ${.b}\n  d: ${..e}\ne: 2\nl: [5, '${.0}']\n"), &ResolveOptions::default()).unwrap();
        assert_eq!(n, y("a: {b: 1, c: 1, d: 2}\ne: 2\nl: [5, 5]\n"));
        let e = resolve_config(&y("a: ${...x}\n"), &ResolveOptions::default()).unwrap_err();
        assert_eq!(e.items[0].message, "Error resolving key '...x'");
    }

    #[test]
    fn all_errors_are_reported() {
        let e = resolve_config(&y("a: ${nope}\nb: ${also_nope}\nc: ${oc.env:CYTODL_SURELY_UNSET_VAR}\n"), &ResolveOptions::default()).unwrap_err();
        assert_eq!(e.items.len(), 3);
        assert_eq!(e.items[0].message, "Interpolation key 'nope' not found");
        assert_eq!(e.items[0].span.line, 1);
        assert_eq!(e.items[2].message, "Environment variable 'CYTODL_SURELY_UNSET_VAR' not found");
    }

    #[test]
    fn aux_removal_keeps_scalars() {
        let mut n = y("a: {_aux: {x: 1}, b: 1}\n_aux: 3\nl: [{_aux: {y: 2}, z: 1}]\n");
        assert!(remove_aux(&mut n).is_empty());
        assert_eq!(n, y("a: {b: 1}\n_aux: 3\nl: [{z: 1}]\n"));
    }
}
