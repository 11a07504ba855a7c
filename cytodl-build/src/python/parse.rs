//! Python's `int(str)` and `float(str)`.

/// Checks Python's digit-group underscores (one `_` between two digits) and strips them.
fn strip_underscores(s: &str) -> Option<String> {
    let b = s.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'_' {
            let prev = i.checked_sub(1).and_then(|p| b.get(p));
            let next = b.get(i + 1);
            if !matches!(prev, Some(p) if p.is_ascii_digit()) || !matches!(next, Some(n) if n.is_ascii_digit()) {
                return None;
            }
        }
    }
    Some(s.replace('_', ""))
}

/// Python's `int(str)` in base 10: surrounding whitespace, a sign, underscores between digits.
/// `None` where Python raises `ValueError` (and beyond `i64`, where Python's ints go on).
pub fn int_from_str(s: &str) -> Option<i64> {
    let t = strip_underscores(s.trim())?;
    let digits = t.strip_prefix(['+', '-']).unwrap_or(&t);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse::<i64>().ok()
}

/// Python's `float(str)`: `[sign](digits[.digits]|.digits)[e[sign]digits]`, `inf`, `infinity`,
/// `nan` (any case), underscores between digits. `None` where Python raises `ValueError`.
pub fn float_from_str(s: &str) -> Option<f64> {
    let t = strip_underscores(s.trim())?;
    let (neg, body) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(&t)),
    };
    let lower = body.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            let (mant, exp) = match lower.split_once('e') {
                Some((m, e)) => (m, Some(e)),
                None => (lower.as_str(), None),
            };
            let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
            let ok_digits = |x: &str| x.bytes().all(|c| c.is_ascii_digit());
            if (ip.is_empty() && fp.is_empty()) || !ok_digits(ip) || !ok_digits(fp) {
                return None;
            }
            if let Some(e) = exp {
                let ed = e.strip_prefix(['+', '-']).unwrap_or(e);
                if ed.is_empty() || !ok_digits(ed) {
                    return None;
                }
            }
            let norm =
                format!("{}.{}{}", if ip.is_empty() { "0" } else { ip }, if fp.is_empty() { "0" } else { fp }, exp.map_or(String::new(), |e| format!("e{e}")));
            norm.parse::<f64>().ok()?
        }
    };
    Some(if neg { -v } else { v })
}

// Expected values: CPython 3.11 (`int(s)`, `float(s)`; scripts/oracles/python_eval.py checks the
// `eval` tables that call these through `int()` and `float()`).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_like_python() {
        for (s, want) in [
            (" 42 ", Some(42)),
            ("-1_000", Some(-1000)),
            ("+7", Some(7)),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("", None),
            ("1.0", None),
            ("0x10", None),
            ("- 1", None),
        ] {
            assert_eq!(int_from_str(s), want, "int({s:?})");
        }
    }

    #[test]
    fn float_like_python() {
        for (s, want) in [
            ("1.5", Some(1.5)),
            (" -2e3 ", Some(-2000.0)),
            (".5", Some(0.5)),
            ("5.", Some(5.0)),
            ("1_0.2_5", Some(10.25)),
            ("1e", None),
            ("e5", None),
            (".", None),
            ("1._5", None),
            ("", None),
        ] {
            assert_eq!(float_from_str(s), want, "float({s:?})");
        }
        assert_eq!(float_from_str("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(float_from_str("NaN").is_some_and(f64::is_nan));
    }
}
