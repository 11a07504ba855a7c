//! Checking a resolved config against the component registry (`cytodl-schema`), and lowering it
//! to the typed [`ir::Experiment`].
//!
//! Like serde_derive's context, the checker collects every independent error before reporting:
//! an unknown target, a misspelt parameter, a wrong type, a transform key that is not a column,
//! a patch of the wrong rank and a channel mismatch all come out of one run, each pointing at
//! the YAML node that caused it (and, through an interpolation, at the definition too).
//!
//! - [`component`]: one `_target_` node against its component's spec (the generic part);
//! - [`rules`]: the domain rules (DynUNet levels, transform keys and ranks, losses vs heads,
//!   optimizers, inference, trainer, callbacks);
//! - [`gan`]: the rules of cyto_dl's GAN (one GAN head, the discriminator, both optimizers);
//! - [`metrics`]: `model.metrics` names, splits, heads and metric kinds;
//! - [`lower`]: the typed experiment, each component built by its declaration.
//!
//! [`ir::Experiment`]: crate::ir::Experiment

mod component;
mod gan;
mod lower;
mod metrics;
mod rules;

use cytodl_schema::{Args, Field, FieldErrors, Lit, Ty};

use crate::config::node::{Node, Value};
use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::frontend::Resolved;
use crate::ir::Experiment;

/// The splits of cyto_dl's `transforms` mapping (`valid` is cyto_dl's name for validation).
const SPLITS: &[&str] = &["train", "valid", "val", "test", "predict"];

struct Checker<'a> {
    resolved: &'a Resolved,
    diags: Diagnostics,
    /// Where errors about something absent point: the experiment file's first line.
    anchor: Span,
}

/// Checks `resolved` and returns the experiment with the warnings, or every error. Errors about
/// a section that is absent altogether point at `anchor` (the experiment file).
pub fn check(resolved: &Resolved, name: &str, anchor: Span) -> Result<(Experiment, Diagnostics), Diagnostics> {
    let anchor = if anchor.is_known() { anchor } else { resolved.config.span };
    let mut c = Checker { resolved, diags: Diagnostics::new(), anchor };
    c.diags.extend(crate::frontend::missing_diagnostics(&resolved.missing, true));
    let experiment = c.experiment(name);
    if c.diags.has_errors() {
        return Err(c.diags);
    }
    match experiment {
        Some(e) => Ok((e, c.diags)),
        None => {
            c.diags.push(Diagnostic::error("the experiment could not be checked", c.anchor));
            Err(c.diags)
        }
    }
}

/// A config node as a value (locations dropped: errors are reported at the node).
fn lit(node: &Node) -> Lit {
    match &node.value {
        Value::Null | Value::Missing => Lit::Null,
        Value::Bool(b) => Lit::Bool(*b),
        Value::Int(i) => Lit::Int(*i),
        Value::Float(f) => Lit::Float(*f),
        Value::Str(s) => Lit::Str(s.clone()),
        Value::List(items) => Lit::List(items.iter().map(lit).collect()),
        Value::Map(m) => Lit::Map(m.iter().map(|(k, v)| (k.clone(), lit(v))).collect()),
    }
}

fn fits(ty: Ty, node: &Node) -> bool {
    let int = |n: &Node| matches!(n.value, Value::Int(_));
    let num = |n: &Node| matches!(n.value, Value::Int(_) | Value::Float(_));
    let string = |n: &Node| matches!(n.value, Value::Str(_));
    let list_of = |n: &Node, f: &dyn Fn(&Node) -> bool| match &n.value {
        Value::List(items) => items.iter().all(f),
        _ => false,
    };
    match ty {
        Ty::Bool => matches!(node.value, Value::Bool(_)),
        Ty::Int => int(node),
        Ty::Float => num(node),
        Ty::Str => string(node),
        Ty::Ints => int(node) || list_of(node, &int),
        Ty::Floats => num(node) || list_of(node, &num),
        Ty::Keys | Ty::Strs => string(node) || list_of(node, &string),
        Ty::Enum(_) => string(node),
        Ty::Target(_) => matches!(node.value, Value::Map(_)),
        Ty::Targets(_) => matches!(node.value, Value::List(_)),
        Ty::Map => matches!(node.value, Value::Map(_)),
        Ty::Any => true,
    }
}

fn show(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => format!("\"{s}\""),
        Value::Map(_) => "a mapping".into(),
        Value::List(_) => format!("the list {}", crate::config::emit::to_yaml(node).trim().replace('\n', " ")),
        _ => crate::config::emit::to_yaml(node).trim().to_string(),
    }
}

impl<'a> Checker<'a> {
    fn cfg(&self, path: &str) -> Option<&'a Node> {
        self.resolved.config.get_path(path)
    }

    /// Adds a note pointing at the definition when the value at `path` came through `${...}`.
    fn error(&mut self, mut d: Diagnostic, path: &str) {
        if let Some(src) = self.resolved.composed.get_path(path).and_then(|n| n.as_str()) {
            let t = src.trim();
            if let Some(inner) = t.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
                if !inner.contains(['$', ':', '{']) {
                    if let Some(def) = self.resolved.composed.get_path(inner.trim_start_matches('.')) {
                        if def.span != d.span {
                            d = d.with_note(def.span, format!("the value comes from `{inner}`, defined here"));
                        }
                    }
                }
            }
        }
        self.diags.push(d);
    }

    fn err(&mut self, message: impl Into<String>, node: &Node, path: &str, help: Option<String>) {
        let mut d = Diagnostic::error(message, node.span).with_key(path.to_string());
        if let Some(h) = help {
            d = d.with_help(h);
        }
        self.error(d, path);
    }

    fn warn(&mut self, message: impl Into<String>, node: &Node, path: &str) {
        self.diags.push(Diagnostic::warning(message, node.span).with_key(path.to_string()));
    }

    /// A checked component node as its typed config, built by `build` (a kind's `from_args`, or a
    /// component's): each field that does not convert is an error at its own node.
    fn typed_component<T>(&mut self, value: &Lit, node: &Node, path: &str, build: impl Fn(&str, &Args) -> Option<Result<T, FieldErrors>>) -> Option<T> {
        let Some(map) = value.as_map() else {
            self.err(format!("expected a mapping, found {}", value.to_yaml()), node, path, None);
            return None;
        };
        let target = map.get("_target_").and_then(Lit::as_str).unwrap_or_default().to_string();
        match build(&target, &Args::of_map(map)) {
            Some(Ok(t)) => Some(t),
            Some(Err(errors)) => {
                for e in errors.0 {
                    let at = node.child(&e.param).unwrap_or(node);
                    self.err(format!("`{}` of `{target}` {}", e.param, e.message), at, &format!("{path}.{}", e.param), None);
                }
                None
            }
            None => {
                self.err(format!("`{target}` cannot be used here"), node, path, None);
                None
            }
        }
    }

    /// [`Self::typed`] of a value the checker normalised (errors still point at `node`).
    fn typed_lit<T: Field>(&mut self, value: &Lit, node: &Node, path: &str) -> Option<T> {
        match T::from_lit(value) {
            Ok(t) => Some(t),
            Err(message) => {
                self.err(format!("`{path}` {message}"), node, path, None);
                None
            }
        }
    }
}
