//! Hydra 1.3.2 command-line override grammar (`OverrideLexer.g4` / `OverrideParser.g4`)
//! plus the value typing and grammar functions (`int()`, `sort()`, `choice()`, ...).
//!
//! The parser is a hand-written two-mode lexer (KEY mode until the first `=`, VALUE
//! mode afterwards, exactly like the ANTLR lexer) followed by a recursive-descent
//! parser that builds a small syntax tree; functions are evaluated only after the
//! whole line parsed, so syntax errors win over evaluation errors as in Hydra.
//! Nothing here panics on any input: all indexing is bounds-checked and nesting is
//! capped.

use std::fmt;

use crate::python::float_repr;

/// A syntax or evaluation error, formatted like Hydra's messages.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub message: String,
    /// Byte offset into the override line where the problem was detected.
    pub offset: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// Which of the four override forms was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideKind {
    /// `key=value`
    Change,
    /// `+key=value`
    Add,
    /// `++key=value`
    ForceAdd,
    /// `~key` or `~key=value`
    Delete,
}

/// One parsed command-line override.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub kind: OverrideKind,
    /// The key or group path without `@pkg`: `a.b`, `list.0`, `$x`, `hydra/launcher`, `db`.
    pub key_or_group: String,
    /// `@pkg` if written (may be Some("") for `key@=v`).
    pub package: Option<String>,
    /// None for `~key` with no `=`. `key=` gives an empty unquoted string.
    pub value: Option<OverrideValue>,
    /// The line as given.
    pub input: String,
}

/// The part after `=`.
#[derive(Debug, Clone, PartialEq)]
pub enum OverrideValue {
    Element(Element),
    /// `a,b` simple sweep, or choice()/range()/interval()/glob()/sort(of a sweep)/
    /// shuffle(of a sweep)/tag(): anything that is not a single value. Kept as the
    /// (right-trimmed) source text of the value so it can be printed or re-parsed.
    Sweep {
        text: String,
    },
}

/// A typed override value (Hydra's `ParsedElementType`).
#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// `quoted` is true for 'x' / "x" values (always strings, never re-typed).
    /// Interpolations `${...}` stay inside the string verbatim.
    Str {
        value: String,
        quoted: bool,
    },
    List(Vec<Element>),
    /// Keys are stored as strings; non-string keys (`{1: a}`) use their printed form
    /// (`1`, `1.5`, `true`, `null`).
    Dict(Vec<(String, Element)>),
}

impl Override {
    /// `key_or_group` plus `@package` when given (Hydra's get_key_element() without
    /// the `~`/`+`/`++` prefix; see [`Override::hydra_key_element`] for that).
    pub fn key_element(&self) -> String {
        match &self.package {
            None => self.key_or_group.clone(),
            Some(p) => format!("{}@{}", self.key_or_group, p),
        }
    }

    /// Exactly Hydra's `get_key_element()`: the prefix (`~`, `+`, `++`) plus
    /// [`Override::key_element`]; this is what the basic sweeper prints.
    pub fn hydra_key_element(&self) -> String {
        let prefix = match self.kind {
            OverrideKind::Change => "",
            OverrideKind::Add => "+",
            OverrideKind::ForceAdd => "++",
            OverrideKind::Delete => "~",
        };
        format!("{}{}", prefix, self.key_element())
    }

    /// True when the value is a sweep (Hydra's `is_sweep_override()`).
    pub fn is_sweep(&self) -> bool {
        matches!(self.value, Some(OverrideValue::Sweep { .. }))
    }

    /// The raw text after the first `=` (Hydra's `get_value_string()`), if any.
    pub fn value_string(&self) -> Option<&str> {
        self.input.find('=').and_then(|i| self.input.get(i + 1..))
    }
}

impl Element {
    /// Hydra's string form of a value (`Override._get_value_element_as_str`), e.g.
    /// `[a,b]`, `{a:1}`, `1.5`, `null`, `True`, `a\,b`, `'quoted'`. Special characters
    /// of unquoted strings are backslash-escaped so the result re-parses to the same
    /// value. Quoted strings are always printed with single quotes (the original quote
    /// character is not kept).
    pub fn to_hydra_string(&self) -> String {
        let mut out = String::new();
        write_hydra(self, &mut out);
        out
    }
}

fn write_hydra(e: &Element, out: &mut String) {
    match e {
        Element::Null => out.push_str("null"),
        // Python's str(True) is "True"; Hydra prints it that way.
        Element::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
        Element::Int(i) => out.push_str(&i.to_string()),
        Element::Float(f) => out.push_str(&float_repr(*f)),
        Element::Str { value, quoted: true } => out.push_str(&with_single_quotes(value)),
        Element::Str { value, quoted: false } => out.push_str(&escape_special(value)),
        Element::List(items) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_hydra(it, out);
            }
            out.push(']');
        }
        Element::Dict(items) => {
            out.push('{');
            for (i, (k, v)) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&escape_special(k));
                out.push(':');
                write_hydra(v, out);
            }
            out.push('}');
        }
    }
}

/// Hydra's `escape_special_characters`: backslash before each of `\()[]{}:=, \t`.
fn escape_special(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\()[]{}:=, \t".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Hydra's `QuotedString.with_quotes()` for a single-quoted string.
fn with_single_quotes(text: &str) -> String {
    let qc = '\'';
    if !text.contains('\\') {
        return format!("'{}'", text.replace(qc, "\\'"));
    }
    // Double every run of backslashes that precedes a quote (incl. the closing one).
    let t: Vec<char> = text.chars().chain(std::iter::once(qc)).collect();
    let mut out = String::new();
    let mut i = 0;
    while i < t.len() {
        if t[i] == '\\' {
            let mut j = i;
            while j < t.len() && t[j] == '\\' {
                j += 1;
            }
            let run = j - i;
            if j < t.len() && t[j] == qc {
                for _ in 0..run * 2 {
                    out.push('\\');
                }
                if j + 1 < t.len() {
                    out.push(qc);
                }
                i = j + 1;
            } else {
                for _ in 0..run {
                    out.push('\\');
                }
                i = j;
            }
        } else {
            if i + 1 < t.len() {
                out.push(t[i]);
            }
            i += 1;
        }
    }
    format!("'{}'", out.replace(qc, "\\'"))
}

mod functions;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use parser::Parser;
/// Parses one Hydra command-line override such as `db@backup=mysql`, `+a.b=[1,2]`,
/// `~x`, `lr=0.1,0.01` or `x=int(1.5)`.
pub fn parse_override(line: &str) -> Result<Override, ParseError> {
    Parser::new(line).parse_override()
}
