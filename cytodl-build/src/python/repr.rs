//! Python's `repr()` of floats and strings, and `str()` / `repr()` of config values as OmegaConf
//! produces them when an interpolation is embedded in a longer string (`True`, `None`, `1e-05`,
//! `{'b': 1}`).

use crate::config::node::{Node, Value};

/// `repr(float)`: the shortest round-trip digits, in exponent form below 1e-4 or from 1e16 up.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // `{:e}` gives the shortest round-trip digits: "1.5e-5", "1e102".
    let sci = format!("{:e}", f);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if neg { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp >= 0 {
            let int_len = (exp + 1) as usize;
            if digits.len() <= int_len {
                format!("{}{}.0", digits, "0".repeat(int_len - digits.len()))
            } else {
                format!("{}.{}", &digits[..int_len], &digits[int_len..])
            }
        } else {
            let _ = n;
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        };
        format!("{sign}{body}")
    } else {
        let m = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{esign}{:02}", exp.abs())
    }
}

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
