//! `cytodl-build explain`: where each value of a composed config came from — the source that set
//! it last, every earlier source it overrode (configs earlier in the defaults list, then
//! command-line overrides), and the interpolations it went through, each explained the same way.
//!
//! Hydra's `--info` lists the config sources; it cannot say why `lr` is 0.0003. The front end
//! keeps a span on every node and, through merges and overrides, the spans of the values each
//! node replaced ([`Node::history`]); this module only reads them back.

use std::fmt::Write;

use thiserror::Error;

use crate::config::emit::scalar;
use crate::config::node::{Node, Value};
use crate::diag::{did_you_mean, SourceMap, Span};
use crate::frontend::Resolved;
use crate::interp::grammar::{self, Interp, Key, Piece};
use crate::interp::select_resolved;

/// Interpolation chains deeper than this are cut (a cycle is an error at resolution already).
const MAX_DEPTH: usize = 16;

#[derive(Debug, Error, PartialEq)]
pub enum ExplainError {
    #[error("no key `{key}` in the composed config{hint}")]
    NoKey { key: String, hint: String },
}

/// The explanation of one dotted key (`model.optimizer.lr`, `data.columns.0`).
pub fn explain_key(resolved: &Resolved, key: &str) -> Result<String, ExplainError> {
    let parts: Vec<String> = key.split('.').map(str::to_string).collect();
    let Some(node) = node_at(&resolved.composed, &parts) else {
        return Err(no_key(&resolved.composed, &parts));
    };
    let mut out = String::new();
    explain_node(&mut out, resolved, &parts, node, 0, &mut Vec::new());
    Ok(out)
}

/// Every leaf of the app config (no `hydra` node, no `_aux` scratch keys unless an
/// interpolation reads them), in config order: the provenance file `explain --all` writes.
pub fn explain_all(resolved: &Resolved) -> String {
    let mut keys = Vec::new();
    leaves(&resolved.config, &mut Vec::new(), &mut keys);
    let mut out = String::new();
    for parts in keys {
        if let Some(node) = node_at(&resolved.composed, &parts) {
            explain_node(&mut out, resolved, &parts, node, 0, &mut Vec::new());
        }
    }
    out
}

fn explain_node(out: &mut String, resolved: &Resolved, path: &[String], node: &Node, depth: usize, seen: &mut Vec<Vec<String>>) {
    let pad = "  ".repeat(depth);
    let key = path.join(".");
    let value = match select_resolved(&resolved.composed, path) {
        Ok(Some(v)) => show(&v),
        Ok(None) => "null".to_string(),
        Err(e) => format!("<unresolvable: {e}>"),
    };
    let _ = writeln!(out, "{pad}{key} = {value}");
    let sources = &resolved.sources;
    let _ = writeln!(out, "{pad}  set by    {}", located(sources, node.span));
    for earlier in node.history.iter().rev() {
        let _ = writeln!(out, "{pad}  overrode  {}", located(sources, *earlier));
    }
    let Value::Str(text) = &node.value else { return };
    if !text.contains("${") || depth >= MAX_DEPTH || seen.iter().any(|p| p == path) {
        return;
    }
    let Ok(pieces) = grammar::parse_value(text) else { return };
    seen.push(path.to_vec());
    for piece in &pieces {
        let Piece::Interp(interp) = piece else { continue };
        match interp {
            Interp::Node { dots, keys, .. } => {
                let Some(target) = absolute(path, *dots, keys) else {
                    let _ = writeln!(out, "{pad}  via       {text} (a key computed by an interpolation)");
                    continue;
                };
                let _ = writeln!(out, "{pad}  via       ${{{}}}", target.join("."));
                match node_at(&resolved.composed, &target) {
                    Some(next) => explain_node(out, resolved, &target, next, depth + 2, seen),
                    None => {
                        let _ = writeln!(out, "{pad}    {} is not in the composed config", target.join("."));
                    }
                }
            }
            Interp::Resolver { name, .. } => {
                let name: Vec<String> = name.iter().map(|k| if let Key::Lit(s) = k { s.clone() } else { "${...}".into() }).collect();
                let _ = writeln!(out, "{pad}  via       resolver `{}`", name.join("."));
            }
        }
    }
    seen.pop();
}

/// `file:line:col  | the source line` (for an override, its text).
fn located(sources: &SourceMap, span: Span) -> String {
    match sources.line_text(span) {
        Some(line) => format!("{}  | {}", sources.location(span), line.trim()),
        None => sources.location(span),
    }
}

/// A node interpolation's target as an absolute path, OmegaConf's rules: no dot is from the
/// root; one dot is the container of the value, each further dot one level up. `None` when a
/// key part is itself an interpolation.
fn absolute(path: &[String], dots: usize, keys: &[Key]) -> Option<Vec<String>> {
    let mut parts: Vec<String> = if dots == 0 {
        Vec::new()
    } else {
        let container = &path[..path.len().saturating_sub(1)];
        container[..container.len().saturating_sub(dots - 1)].to_vec()
    };
    for key in keys {
        match key {
            Key::Lit(s) => parts.extend(s.split('.').filter(|p| !p.is_empty()).map(str::to_string)),
            Key::Interp(_) => return None,
        }
    }
    Some(parts)
}

fn node_at<'a>(root: &'a Node, parts: &[String]) -> Option<&'a Node> {
    parts.iter().try_fold(root, |node, part| node.child(part))
}

fn no_key(root: &Node, parts: &[String]) -> ExplainError {
    // The deepest prefix that exists, and a suggestion among its keys.
    let mut node = root;
    let mut depth = 0;
    while let Some(next) = parts.get(depth).and_then(|p| node.child(p)) {
        node = next;
        depth += 1;
    }
    let hint = match (node.as_map(), parts.get(depth)) {
        (Some(map), Some(missing)) => match did_you_mean(missing, map.keys().map(String::as_str)) {
            Some(s) => format!(" ({s})"),
            None => String::new(),
        },
        _ => String::new(),
    };
    ExplainError::NoKey { key: parts.join("."), hint }
}

fn leaves(node: &Node, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match &node.value {
        Value::Map(m) if !m.is_empty() => {
            for (k, v) in m {
                path.push(k.clone());
                leaves(v, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

/// A resolved value on one line: scalars as YAML writes them, lists and mappings in flow style.
fn show(v: &Value) -> String {
    match v {
        Value::List(items) => format!("[{}]", items.iter().map(|n| show(&n.value)).collect::<Vec<_>>().join(", ")),
        Value::Map(m) => format!("{{{}}}", m.iter().map(|(k, n)| format!("{k}: {}", show(&n.value))).collect::<Vec<_>>().join(", ")),
        v => scalar(v),
    }
}
