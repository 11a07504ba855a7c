//! YAML output in the shape of `OmegaConf.to_yaml` (PyYAML block style, insertion order), with
//! strings quoted whenever a YAML 1.1 reader would type them otherwise (`'007'`, `'yes'`, `''`).

use std::sync::LazyLock;

use regex::Regex;

use super::node::{Node, Value};
use super::yaml::resolve_plain;
use crate::python::float_repr;

/// Renders a config tree as a YAML document.
pub fn to_yaml(node: &Node) -> String {
    let mut out = String::new();
    match &node.value {
        Value::Map(m) if m.is_empty() => out.push_str("{}\n"),
        Value::List(l) if l.is_empty() => out.push_str("[]\n"),
        Value::Map(_) | Value::List(_) => block(&mut out, node, 0),
        _ => {
            out.push_str(&scalar(&node.value));
            out.push('\n');
        }
    }
    out
}

fn block(out: &mut String, node: &Node, indent: usize) {
    let pad = " ".repeat(indent);
    match &node.value {
        Value::Map(m) => {
            for (k, v) in m {
                out.push_str(&pad);
                out.push_str(&key(k, v.typed_key));
                out.push(':');
                match &v.value {
                    Value::Map(cm) if !cm.is_empty() => {
                        out.push('\n');
                        block(out, v, indent + 2);
                    }
                    // PyYAML does not indent a list under a mapping key.
                    Value::List(cl) if !cl.is_empty() => {
                        out.push('\n');
                        block(out, v, indent);
                    }
                    _ => {
                        out.push(' ');
                        out.push_str(&inline(v));
                        out.push('\n');
                    }
                }
            }
        }
        Value::List(items) => {
            for item in items {
                out.push_str(&pad);
                out.push_str("- ");
                match &item.value {
                    Value::Map(cm) if !cm.is_empty() => {
                        let mut inner = String::new();
                        block(&mut inner, item, indent + 2);
                        // The first entry shares the line with the dash.
                        out.push_str(inner.trim_start_matches(' '));
                    }
                    Value::List(cl) if !cl.is_empty() => {
                        let mut inner = String::new();
                        block(&mut inner, item, indent + 2);
                        out.push_str(inner.trim_start_matches(' '));
                    }
                    _ => {
                        out.push_str(&inline(item));
                        out.push('\n');
                    }
                }
            }
        }
        _ => {}
    }
}

fn inline(node: &Node) -> String {
    match &node.value {
        Value::Map(_) => "{}".into(),
        Value::List(_) => "[]".into(),
        v => scalar(v),
    }
}

pub(crate) fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => if *b { "true" } else { "false" }.into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => yaml_float(*f),
        Value::Missing => "???".into(),
        Value::Str(s) => string(s),
        Value::Map(_) | Value::List(_) => String::new(),
    }
}

/// PyYAML's float form: `repr()` lower-cased, with `.0` added to a bare exponent (`1.0e-05`).
fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf".into() } else { "-.inf".into() };
    }
    let r = float_repr(f).to_lowercase();
    if !r.contains('.') && r.contains('e') {
        r.replacen('e', ".0e", 1)
    } else {
        r
    }
}

static TIMESTAMP_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$")
        .unwrap_or_else(|e| panic!("bad built-in regex: {e}"))
});

/// Whether `s` can be written as a plain scalar and read back as the same string.
fn plain_ok(s: &str) -> bool {
    if s.is_empty() || s != s.trim() || s == "???" || s == "<<" || s == "=" {
        return false;
    }
    if !matches!(resolve_plain(s), Value::Str(_)) || TIMESTAMP_RE.is_match(s) {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "[]{},#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if matches!(first, '-' | '?' | ':') && s.chars().nth(1).is_none_or(|c| c == ' ') {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.contains('\t') {
        return false;
    }
    s.chars().all(|c| !c.is_control() && c != '\u{feff}')
}

fn string(s: &str) -> String {
    if plain_ok(s) {
        return s.to_string();
    }
    if s.chars().any(|c| c.is_control() && c != ' ') {
        return double_quoted(s);
    }
    format!("'{}'", s.replace('\'', "''"))
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A key is written bare when YAML reads it back the same way: a string key that would read as a
/// number, boolean or null is quoted; a number or boolean key (`typed`) is written bare.
fn key(k: &str, typed: bool) -> String {
    if !typed && !matches!(resolve_plain(k), Value::Str(_)) {
        return format!("'{}'", k.replace('\'', "''"));
    }
    let first = k.chars().next().unwrap_or(' ');
    let indicator_ok = !"[]{},#&*!|>'\"%@`".contains(first) && (!matches!(first, '-' | '?' | ':') || k.chars().nth(1).is_some_and(|c| c != ' '));
    let syntax_ok =
        !k.is_empty() && k == k.trim() && indicator_ok && !k.contains(": ") && !k.contains(" #") && !k.ends_with(':') && k.chars().all(|c| !c.is_control());
    if syntax_ok {
        k.to_string()
    } else if k.chars().any(|c| c.is_control()) {
        double_quoted(k)
    } else {
        format!("'{}'", k.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::load_config;
    use crate::diag::FileId;

    #[test]
    fn round_trips_as_data() {
        let src = "a: '007'\nb: 'yes'\nc: ''\nd: [1, [2, 3], {x: 1.0e-05, y: null}]\ne: {}\nf: []\ng: '2024-01-01'\nh: 'a: b'\ni: \"multi\\nline\"\nj: ???\nk: '- x'\nl: 1e+16\n";
        let n = load_config(src, FileId(1)).unwrap();
        let text = to_yaml(&n);
        let back = load_config(&text, FileId(1)).unwrap();
        assert_eq!(n, back, "{text}");
        assert!(text.contains("a: '007'\n"));
        assert!(text.contains("d:\n- 1\n- - 2\n  - 3\n- x: 1.0e-05\n  y: null\n"), "{text}");
    }
}
