//! A config value after resolution, as the checker hands it to a component: YAML's data model
//! without locations (errors name the parameter; the checker knows where it is).

use indexmap::IndexMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Lit>),
    Map(IndexMap<String, Lit>),
}

impl Lit {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Lit::Int(i) => Some(*i as f64),
            Lit::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Lit::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Lit::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Lit::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&IndexMap<String, Lit>> {
        match self {
            Lit::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Lit::Null)
    }

    /// A scalar or list as a list (MONAI's "int or sequence"); null is empty.
    pub fn as_list(&self) -> Vec<Lit> {
        match self {
            Lit::List(v) => v.clone(),
            Lit::Null => vec![],
            other => vec![other.clone()],
        }
    }

    pub fn floats(&self) -> Vec<f64> {
        self.as_list().iter().filter_map(Lit::as_f64).collect()
    }

    pub fn ints(&self) -> Vec<i64> {
        self.as_list().iter().filter_map(Lit::as_i64).collect()
    }

    pub fn strings(&self) -> Vec<String> {
        self.as_list().iter().filter_map(|l| l.as_str().map(str::to_string)).collect()
    }

    /// The value as YAML flow text (`[1, 2]`, `{a: 1}`, `null`), for messages and listings.
    pub fn to_yaml(&self) -> String {
        match self {
            Lit::Null => "null".into(),
            Lit::Bool(b) => b.to_string(),
            Lit::Int(i) => i.to_string(),
            Lit::Float(f) => float_text(*f),
            Lit::Str(s) => {
                let plain = !s.is_empty()
                    && s.chars().all(|c| c.is_alphanumeric() || "._/-+".contains(c))
                    && !matches!(s.as_str(), "null" | "true" | "false" | "yes" | "no" | "on" | "off")
                    && s.parse::<f64>().is_err();
                if plain {
                    s.clone()
                } else {
                    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
                }
            }
            Lit::List(items) => format!("[{}]", items.iter().map(Lit::to_yaml).collect::<Vec<_>>().join(", ")),
            Lit::Map(m) => format!("{{{}}}", m.iter().map(|(k, v)| format!("{k}: {}", v.to_yaml())).collect::<Vec<_>>().join(", ")),
        }
    }
}

/// A float as YAML writes it: `1.0`, `0.0001`, `1e-05` (Python's repr).
pub fn float_text(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf".into() } else { "-.inf".into() };
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let s = format!("{f}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_text() {
        assert_eq!(Lit::List(vec![Lit::Int(1), Lit::Float(0.5)]).to_yaml(), "[1, 0.5]");
        assert_eq!(Lit::Float(1e-5).to_yaml(), "1e-05");
        assert_eq!(Lit::Float(2.0).to_yaml(), "2.0");
        assert_eq!(Lit::Str("numpy.uint8".into()).to_yaml(), "numpy.uint8");
        assert_eq!(Lit::Str("".into()).to_yaml(), "\"\"");
        assert_eq!(Lit::Str("true".into()).to_yaml(), "\"true\"");
    }
}
