//! The resolvers a cyto_dl config can call: OmegaConf's built-ins (`oc.env`, `oc.select`,
//! `oc.decode`, `oc.create`, `oc.dict.keys`, `oc.dict.values`, `oc.deprecated`), Hydra's (`now`,
//! `hydra`, `python_version`), and cyto_dl's (`kv_to_dict`, `eval` — a safe evaluator, never code).

use std::path::{Component, PathBuf};

use super::eval::{eval_python, PyValue};
use super::grammar::{self, Element};
use super::resolve::{InterpError, Resolver};
use crate::config::node::{Map, Node, Value};

use crate::config::yaml::load_any;
use crate::diag::{did_you_mean, FileId, Span};
use crate::python::py_str;

const KNOWN: &[&str] = &[
    "oc.env",
    "oc.select",
    "oc.decode",
    "oc.create",
    "oc.dict.keys",
    "oc.dict.values",
    "oc.deprecated",
    "now",
    "hydra",
    "python_version",
    "kv_to_dict",
    "eval",
];

fn err(resolver: &str, message: impl Into<String>) -> InterpError {
    InterpError::Resolver { resolver: resolver.to_string(), message: message.into() }
}

fn node(v: Value) -> Node {
    Node::new(v, Span::UNKNOWN)
}

/// Calls resolver `name` with its (unevaluated) arguments.
pub(crate) fn call(r: &mut Resolver<'_>, name: &str, args: &[Element], container: &[String]) -> Result<Node, InterpError> {
    match name {
        // oc.select handles missing keys itself, so its key argument is not evaluated as a node.
        "oc.select" => return oc_select(r, args, container),
        "oc.env" => return oc_env(r, args, container),
        _ => {}
    }
    if !KNOWN.contains(&name) {
        let suggestion = if name == "env" {
            Some("`${env:...}` was removed in OmegaConf 2.2; use `${oc.env:...}`".to_string())
        } else {
            did_you_mean(name, KNOWN.iter().copied())
        };
        return Err(InterpError::UnsupportedResolver { name: name.to_string(), suggestion });
    }
    let mut values = Vec::with_capacity(args.len());
    for a in args {
        values.push(r.eval_element(a, container)?);
    }
    match name {
        "oc.decode" => oc_decode(r, &values, container),
        "oc.create" => oc_create(&values),
        "oc.dict.keys" | "oc.dict.values" => oc_dict(r, name, &values, container),
        "oc.deprecated" => {
            let key = single_str(name, &values)?;
            let (dots, parts) = split_key(&key);
            r.select(dots, &parts, container)
        }
        "now" => now(r, &values),
        "hydra" => hydra(r, &values),
        "python_version" => Ok(node(Value::Str("3.11".into()))),
        "kv_to_dict" => {
            // cyto_dl's kv_to_dict takes a ListConfig node; a literal `[...]` is a plain list.
            if matches!(args.first(), Some(Element::List(_))) {
                return Err(err("kv_to_dict", "TypeError: Config resolved with kv_to_dict must be ListConfig"));
            }
            kv_to_dict(&values)
        }
        "eval" => eval(r, &values),
        _ => Err(InterpError::UnsupportedResolver { name: name.to_string(), suggestion: None }),
    }
}

fn single_str(name: &str, values: &[Node]) -> Result<String, InterpError> {
    match values {
        [n] => match &n.value {
            Value::Str(s) => Ok(s.clone()),
            other => Ok(py_str(other)),
        },
        _ => Err(err(name, format!("takes 1 argument ({} given)", values.len()))),
    }
}

/// `.a.b` -> (1, [a, b]); `a.b` -> (0, [a, b]).
fn split_key(key: &str) -> (usize, Vec<String>) {
    let rest = key.trim_start_matches('.');
    let dots = key.len() - rest.len();
    let parts = if rest.is_empty() { Vec::new() } else { rest.split('.').map(str::to_string).collect() };
    (dots, parts)
}

/// `${oc.env:NAME[,default]}`: always a string; a `null` default gives None.
fn oc_env(r: &mut Resolver<'_>, args: &[Element], container: &[String]) -> Result<Node, InterpError> {
    if args.is_empty() || args.len() > 2 {
        return Err(err("oc.env", format!("takes 1 or 2 arguments ({} given)", args.len())));
    }
    let name_node = r.eval_element(&args[0], container)?;
    let name = py_str(&name_node.value);
    // OmegaConf evaluates every argument before calling the resolver, the default included.
    let default = args.get(1).map(|d| r.eval_element(d, container)).transpose()?;
    let from_env = r.opts.env.get(&name).cloned().or_else(|| std::env::var(&name).ok());
    if let Some(v) = from_env {
        return Ok(node(Value::Str(v)));
    }
    match default {
        Some(d) => Ok(node(match d.value {
            Value::Null => Value::Null,
            other => Value::Str(py_str(&other)),
        })),
        None => Err(InterpError::EnvNotFound { name }),
    }
}

/// `${oc.select:key[,default]}`: the default (or None) when the key is absent or `???`.
fn oc_select(r: &mut Resolver<'_>, args: &[Element], container: &[String]) -> Result<Node, InterpError> {
    if args.is_empty() || args.len() > 2 {
        return Err(err("oc.select", format!("takes 1 or 2 arguments ({} given)", args.len())));
    }
    let key = r.eval_element(&args[0], container)?;
    // As for every resolver, the default is evaluated whether it is used or not.
    let default = match args.get(1) {
        Some(d) => r.eval_element(d, container)?,
        None => node(Value::Null),
    };
    let Value::Str(key) = key.value else {
        return Err(err("oc.select", format!("AttributeError: '{}' object has no attribute 'startswith'", key.value.type_name())));
    };
    let (dots, parts) = split_key(&key);
    match r.select(dots, &parts, container) {
        Ok(n) => Ok(n),
        Err(InterpError::KeyNotFound { .. } | InterpError::ToMissing { .. } | InterpError::PastRoot { .. }) => Ok(default),
        Err(e) => Err(e),
    }
}

/// `${oc.decode:s}`: parses `s` as a typed element; interpolations in it resolve here.
fn oc_decode(r: &mut Resolver<'_>, values: &[Node], container: &[String]) -> Result<Node, InterpError> {
    let [v] = values else { return Err(err("oc.decode", format!("takes 1 argument ({} given)", values.len()))) };
    match &v.value {
        Value::Null => Ok(node(Value::Null)),
        Value::Str(s) => {
            let e = grammar::parse_element(s).map_err(|e| InterpError::Grammar { message: e.message, offset: e.offset })?;
            let n = r.eval_element(&e, container)?;
            // A plain list or dict cannot become a node, but can be embedded in a string.
            if n.is_container() {
                r.plain_result =
                    Some(PlainResult { type_name: if matches!(n.value, Value::List(_)) { "list" } else { "dict" }, text: crate::python::py_repr(&n.value) });
            }
            Ok(n)
        }
        other => Err(err(
            "oc.decode",
            format!("TypeError: `oc.decode` can only take strings or None as input, but `{}` is of type {}", py_str(other), other.type_name()),
        )),
    }
}

/// `${oc.create:x}`: a new container from a dict/list argument or a YAML string.
fn oc_create(values: &[Node]) -> Result<Node, InterpError> {
    let [v] = values else { return Err(err("oc.create", format!("takes 1 argument ({} given)", values.len()))) };
    match &v.value {
        Value::Map(_) | Value::List(_) | Value::Null => Ok(v.clone()),
        // `OmegaConf.create(str)` parses YAML; a lone string `s` becomes `{s: None}`.
        Value::Str(s) => match load_any(s, FileId(0)) {
            Ok(Some(n)) if n.is_container() => Ok(n),
            Ok(Some(Node { value: Value::Str(text), .. })) => {
                let mut m = Map::new();
                m.insert(text, node(Value::Null));
                Ok(node(Value::Map(m)))
            }
            Ok(None) | Ok(Some(Node { value: Value::Null, .. })) => Ok(node(Value::Map(Map::new()))),
            Ok(Some(other)) => Err(err("oc.create", format!("cannot create a config from {}", other.value.type_name()))),
            Err(e) => Err(err("oc.create", e.to_string())),
        },
        other => Err(err("oc.create", format!("cannot create a config from {}", other.type_name()))),
    }
}

/// `${oc.dict.keys:path}` / `${oc.dict.values:path}`.
fn oc_dict(r: &mut Resolver<'_>, name: &str, values: &[Node], container: &[String]) -> Result<Node, InterpError> {
    let [v] = values else { return Err(err(name, format!("takes 1 argument ({} given)", values.len()))) };
    let target = match &v.value {
        Value::Str(key) => {
            let (dots, parts) = split_key(key);
            match r.select(dots, &parts, container) {
                // Unlike a plain reference, these fail on `???` rather than becoming `???`.
                Err(InterpError::ToMissing { key, .. }) => {
                    return Err(err(name, format!("MissingMandatoryValue raised while resolving interpolation: Missing mandatory value: {key}")))
                }
                // OmegaConf selects the argument itself: a missing key fails inside the resolver.
                Err(InterpError::KeyNotFound { key, .. }) => {
                    return Err(err(name, format!("ConfigKeyError raised while resolving interpolation: Key not found: '{key}'")))
                }
                other => other?,
            }
        }
        _ => v.clone(),
    };
    let Value::Map(m) = &target.value else {
        return Err(err(name, format!("TypeError: `{name}` cannot be applied to objects of type: {}", target.value.type_name())));
    };
    let items: Vec<Node> = if name == "oc.dict.keys" {
        m.keys().map(|k| node(Value::Str(k.clone()))).collect()
    } else {
        // OmegaConf returns interpolations to each value: embedded in a string they show raw.
        if let Value::Str(key) = &v.value {
            let raw: Vec<Node> = m.keys().map(|k| node(Value::Str(format!("${{{key}.{k}}}")))).collect();
            r.embed_repr = Some(crate::python::py_repr(&Value::List(raw)));
        }
        m.values().cloned().collect()
    };
    Ok(node(Value::List(items)))
}

/// `${now:fmt}`: strftime of the compose time, constant within one config.
fn now(r: &mut Resolver<'_>, values: &[Node]) -> Result<Node, InterpError> {
    let fmt = if values.is_empty() { String::new() } else { single_str("now", values)? };
    if let Some(hit) = r.now_cache.get(&fmt) {
        return Ok(node(Value::Str(hit.clone())));
    }
    use std::fmt::Write as _;
    let mut out = String::new();
    let items: Vec<chrono::format::Item<'_>> = chrono::format::StrftimeItems::new(&fmt).collect();
    if items.iter().any(|i| matches!(i, chrono::format::Item::Error)) {
        return Err(err("now", format!("invalid strftime format '{fmt}'")));
    }
    write!(out, "{}", r.opts.now.format_with_items(items.into_iter())).map_err(|_| err("now", format!("invalid strftime format '{fmt}'")))?;
    r.now_cache.insert(fmt, out.clone());
    Ok(node(Value::Str(out)))
}

/// `${hydra:path}`: a value of the `hydra` node; `runtime.output_dir` is the absolute run dir.
fn hydra(r: &mut Resolver<'_>, values: &[Node]) -> Result<Node, InterpError> {
    let key = single_str("hydra", values)?;
    r.hydra_access += 1;
    let result = hydra_select(r, &key);
    r.hydra_access -= 1;
    result
}

fn hydra_select(r: &mut Resolver<'_>, key: &str) -> Result<Node, InterpError> {
    let key = key.to_string();
    if key == "runtime.output_dir" {
        let dir = r.select(0, &["hydra".into(), "run".into(), "dir".into()], &[])?;
        return Ok(node(Value::Str(abspath(&r.opts.cwd, &py_str(&dir.value)))));
    }
    if key == "runtime.cwd" {
        return Ok(node(Value::Str(r.opts.cwd.display().to_string())));
    }
    let mut parts = vec!["hydra".to_string()];
    parts.extend(key.split('.').filter(|s| !s.is_empty()).map(str::to_string));
    match r.select(0, &parts, &[]) {
        Ok(n) => Ok(n),
        Err(InterpError::ToMissing { .. }) => Ok(node(Value::Null)),
        Err(InterpError::KeyNotFound { .. }) => Err(err("hydra", format!("ConfigAttributeError: Key '{key}' is not in the hydra config"))),
        Err(e) => Err(e),
    }
}

/// Python's `os.path.abspath`: joined onto the cwd and normalised (`logs//train` -> `logs/train`).
pub fn abspath(cwd: &std::path::Path, p: &str) -> String {
    let joined = if p.starts_with('/') { PathBuf::from(p) } else { cwd.join(p) };
    let mut out: Vec<String> = Vec::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(s) => out.push(s.to_string_lossy().to_string()),
            _ => {}
        }
    }
    format!("/{}", out.join("/"))
}

/// cyto_dl's `kv_to_dict`: `[[key, value], ...]` -> `{key: value}` (keys may be interpolations).
fn kv_to_dict(values: &[Node]) -> Result<Node, InterpError> {
    let [v] = values else { return Err(err("kv_to_dict", format!("takes 1 argument ({} given)", values.len()))) };
    let Value::List(items) = &v.value else {
        return Err(err("kv_to_dict", "TypeError: Config resolved with kv_to_dict must be ListConfig"));
    };
    let mut m = Map::new();
    for item in items {
        match &item.value {
            Value::List(pair) if pair.len() >= 2 => {
                // cyto_dl calls `OmegaConf.to_container` on each value: it must be a container.
                if !pair[1].is_container() {
                    return Err(err(
                        "kv_to_dict",
                        format!("ValueError raised while resolving interpolation: Input cfg is not an OmegaConf config object ({})", pair[1].value.type_name()),
                    ));
                }
                let key = match &pair[0].value {
                    Value::Str(s) => s.clone(),
                    Value::Int(_) | Value::Float(_) | Value::Bool(_) => py_str(&pair[0].value),
                    other => {
                        let t = match other {
                            Value::Map(_) => "DictConfig",
                            Value::List(_) => "ListConfig",
                            Value::Null => "NoneType",
                            _ => "missing",
                        };
                        return Err(err("kv_to_dict", format!("KeyValidationError: Incompatible key type '{t}'")));
                    }
                };
                m.insert(key, pair[1].clone());
            }
            other => return Err(err("kv_to_dict", format!("each item must be a [key, value] pair, found {}", crate::python::py_repr(other)))),
        }
    }
    Ok(node(Value::Map(m)))
}

/// cyto_dl registers Python's `eval`; we evaluate the same expressions with a safe evaluator.
fn eval(r: &mut Resolver<'_>, values: &[Node]) -> Result<Node, InterpError> {
    let [v] = values else { return Err(err("eval", format!("takes 1 argument ({} given)", values.len()))) };
    let Value::Str(expr) = &v.value else {
        return Err(err("eval", "TypeError: eval() arg 1 must be a string, bytes or code object"));
    };
    let result = eval_python(expr).map_err(|e| err("eval", format!("{} in `{expr}`", e.message)))?;
    // A plain list, tuple or dict cannot become a node, but can be embedded in a string.
    let type_name = match &result {
        PyValue::List(_) => Some("list"),
        PyValue::Tuple(_) => Some("tuple"),
        PyValue::Dict(_) => Some("dict"),
        _ => None,
    };
    if let Some(type_name) = type_name {
        r.plain_result = Some(PlainResult { type_name, text: super::eval::py_str(&result) });
    }
    Ok(node(py_to_value(result)))
}

/// A resolver returned a plain Python container: usable inside a string (as its `str()`), an
/// error as a whole value (OmegaConf's UnsupportedValueType).
#[derive(Debug, Clone)]
pub(crate) struct PlainResult {
    pub type_name: &'static str,
    pub text: String,
}

pub(crate) fn unsupported_value(kind: &str) -> InterpError {
    InterpError::UnsupportedValueType { kind: kind.to_string() }
}

fn py_to_value(v: PyValue) -> Value {
    match v {
        PyValue::None => Value::Null,
        PyValue::Bool(b) => Value::Bool(b),
        PyValue::Int(i) => Value::Int(i),
        PyValue::Float(f) => Value::Float(f),
        PyValue::Str(s) => Value::Str(s),
        PyValue::List(items) | PyValue::Tuple(items) => Value::List(items.into_iter().map(|i| node(py_to_value(i))).collect()),
        PyValue::Dict(kv) => {
            let mut m = Map::new();
            for (k, v) in kv {
                let key = match k {
                    PyValue::Str(s) => s,
                    other => super::eval::py_str(&other),
                };
                m.insert(key, node(py_to_value(v)));
            }
            Value::Map(m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abspath_normalises() {
        let cwd = std::path::Path::new("/w");
        assert_eq!(abspath(cwd, "./logs//train/runs"), "/w/logs/train/runs");
        assert_eq!(abspath(cwd, "/proj/logs//x/../y"), "/proj/logs/y");
    }
}
