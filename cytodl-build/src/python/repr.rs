//! Python's `repr()` of floats and strings, and `str()` / `repr()` of config values as OmegaConf
//! produces them when an interpolation is embedded in a longer string (`True`, `None`, `1e-05`,
//! `{'b': 1}`).

use crate::config::node::{Node, Value};

/// `repr(float)`, shared with the runtime (its CSV logger writes floats as Python does).
pub use cytodl_schema::py::float_repr;

/// Python `str()` of a value.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Missing => "???".into(),
        other => py_repr(other),
    }
}

/// Python `repr()` of a value (containers show their raw, unresolved items, like OmegaConf's repr).
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float_repr(*f),
        Value::Str(s) => str_repr(s),
        Value::Missing => "'???'".into(),
        Value::List(items) => {
            let inner: Vec<String> = items.iter().map(|n: &Node| py_repr(&n.value)).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Map(m) => {
            let inner: Vec<String> = m.iter().map(|(k, n)| format!("{}: {}", str_repr(k), py_repr(&n.value))).collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Python's repr of a str: single quotes unless the text has a `'` and no `"`.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_python() {
        let cases = [
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (100.0, "100.0"),
            (1e16, "1e+16"),
            (1.5, "1.5"),
            (1e102, "1e+102"),
            (0.1, "0.1"),
            (123456789.123, "123456789.123"),
            (-2.5e-7, "-2.5e-07"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.001, "0.001"),
            (1.2, "1.2"),
            (3.0, "3.0"),
        ];
        for (f, s) in cases {
            assert_eq!(float_repr(f), s, "{f}");
        }
        assert_eq!(float_repr(f64::INFINITY), "inf");
        assert_eq!(float_repr(f64::NAN), "nan");
    }

    #[test]
    fn str_and_repr() {
        assert_eq!(py_str(&Value::Bool(true)), "True");
        assert_eq!(py_str(&Value::Null), "None");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("q"), "'q'");
    }
}
