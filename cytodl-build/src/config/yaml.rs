//! YAML loading with OmegaConf's rules: PyYAML's YAML 1.1 implicit typing of plain scalars plus
//! OmegaConf's extra float pattern, no timestamps, duplicate keys rejected, anchors and `<<` merge
//! keys, and a [`Span`] on every node.
//!
//! yaml-rust2 gives us events with positions; typing is ours because YAML 1.2 parsers type
//! `yes`, `017` or `1:30` differently from PyYAML.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use thiserror::Error;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::node::{Map, Node, Value};
use crate::diag::{Diagnostic, ErrorClass, FileId, Span};

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 256;
/// Aliases may expand to at most this many nodes in all (a "billion laughs" file is refused).
const MAX_NODES: usize = 1_000_000;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum YamlError {
    #[error("invalid YAML: {message}")]
    Syntax { message: String, span: Span },
    #[error("found duplicate key `{key}`")]
    DuplicateKey { key: String, span: Span, first: Span },
    #[error("a config file must hold a mapping at the top level, found {found}")]
    NotAMapping { found: &'static str, span: Span },
    #[error("unknown anchor in alias")]
    UnknownAlias { span: Span },
    #[error("a `<<` merge key takes a mapping or a list of mappings")]
    BadMerge { span: Span },
    #[error("a config file holds one YAML document; found a second one")]
    MultipleDocuments { span: Span },
    #[error("unsupported tag `{tag}`")]
    UnsupportedTag { tag: String, span: Span },
    #[error("a mapping key cannot be null")]
    NullKey { span: Span },
    #[error("`?` starts a key inside `[...]`/`{{...}}`: quote the value (`'???'`)")]
    FlowQuestionMark { span: Span },
    #[error("mapping keys must be scalars")]
    ComplexKey { span: Span },
    #[error("aliases expand to more than {MAX_NODES} values")]
    TooLarge { span: Span },
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep { span: Span },
    #[error("cannot construct `{text}` (PyYAML's `tag:yaml.org,2002:value` has no constructor)")]
    ValueTag { text: String, span: Span },
}

impl YamlError {
    pub fn span(&self) -> Span {
        match self {
            YamlError::Syntax { span, .. }
            | YamlError::DuplicateKey { span, .. }
            | YamlError::NotAMapping { span, .. }
            | YamlError::UnknownAlias { span }
            | YamlError::BadMerge { span }
            | YamlError::MultipleDocuments { span }
            | YamlError::UnsupportedTag { span, .. }
            | YamlError::ComplexKey { span }
            | YamlError::NullKey { span }
            | YamlError::FlowQuestionMark { span }
            | YamlError::TooDeep { span }
            | YamlError::TooLarge { span }
            | YamlError::ValueTag { span, .. } => *span,
        }
    }

    /// What PyYAML (through OmegaConf's loader) raises for this file.
    pub fn class(&self) -> ErrorClass {
        match self {
            YamlError::DuplicateKey { .. } | YamlError::ValueTag { .. } => ErrorClass::ConstructorError,
            // PyYAML builds these (a None key, a set, ...); OmegaConf then refuses them while
            // Hydra composes, which wraps the error.
            YamlError::NullKey { .. } => ErrorClass::ConfigCompositionException,
            YamlError::UnsupportedTag { tag, .. } if tag.starts_with("tag:yaml.org,2002:") => ErrorClass::ConfigCompositionException,
            YamlError::UnsupportedTag { .. } => ErrorClass::ConstructorError,
            YamlError::UnknownAlias { .. } | YamlError::MultipleDocuments { .. } => ErrorClass::ComposerError,
            YamlError::NotAMapping { .. } => ErrorClass::ConfigCompositionException,
            _ => ErrorClass::ParserError,
        }
    }

    pub fn to_diagnostic(&self) -> Diagnostic {
        let d = Diagnostic::error(self.to_string(), self.span()).with_class(self.class());
        match self {
            YamlError::DuplicateKey { first, .. } => {
                d.with_note(*first, "first defined here").with_help("remove one of the two entries (YAML mappings cannot repeat a key)")
            }
            _ => d,
        }
    }
}

/// Parses a config file's text. An empty document gives an empty mapping, as in OmegaConf.
pub fn load_config(text: &str, file: FileId) -> Result<Node, YamlError> {
    let node = load_any(text, file)?;
    match node {
        Some(n) if matches!(n.value, Value::Map(_)) => Ok(n),
        Some(Node { value: Value::Null, span, .. }) => Ok(Node::empty_map(span)),
        None => Ok(Node::empty_map(Span::new(file, 1, 1))),
        Some(n) => Err(YamlError::NotAMapping { found: n.value.type_name(), span: n.span }),
    }
}

/// Parses any YAML document (a scalar, list or mapping); `None` for an empty stream.
pub fn load_any(text: &str, file: FileId) -> Result<Option<Node>, YamlError> {
    let mut b = Builder { parser: Parser::new_from_str(text), text, file, anchors: HashMap::new(), expanded: 0, flow_depth: 0, last_index: 0 };
    b.document()
}

struct Builder<'a> {
    parser: Parser<std::str::Chars<'a>>,
    text: &'a str,
    /// How many flow collections (`[...]`, `{...}`) enclose the current event.
    flow_depth: usize,
    /// Character index of the last event's marker.
    last_index: usize,
    file: FileId,
    anchors: HashMap<usize, Node>,
    /// Nodes copied by alias expansion so far.
    expanded: usize,
}

fn count_nodes(n: &Node) -> usize {
    match &n.value {
        Value::Map(m) => 1 + m.values().map(count_nodes).sum::<usize>(),
        Value::List(l) => 1 + l.iter().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

impl Builder<'_> {
    /// Whether the collection that just started is a flow one (its marker sits on `[` or `{`).
    fn starts_flow(&self) -> bool {
        matches!(self.text.chars().nth(self.last_index), Some('[' | '{'))
    }

    /// PyYAML reads any `?` in a flow collection as a key indicator, so `[1, ???]` is an error.
    fn check_flow_plain(&self, text: &str, style: TScalarStyle, span: Span) -> Result<(), YamlError> {
        if self.flow_depth > 0 && style == TScalarStyle::Plain && (text.starts_with('?') || text.starts_with(':')) {
            return Err(YamlError::FlowQuestionMark { span });
        }
        Ok(())
    }

    fn span(&self, m: &Marker) -> Span {
        Span::new(self.file, m.line().max(1) as u32, m.col() as u32 + 1)
    }

    fn next(&mut self) -> Result<(Event, Span), YamlError> {
        match self.parser.next_token() {
            Ok((ev, m)) => {
                self.last_index = m.index();
                Ok((ev, self.span(&m)))
            }
            Err(e) => Err(YamlError::Syntax { message: e.info().to_string(), span: self.span(e.marker()) }),
        }
    }

    fn document(&mut self) -> Result<Option<Node>, YamlError> {
        let mut root = None;
        loop {
            let (ev, span) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return Ok(root),
                Event::DocumentStart => {
                    if root.is_some() {
                        return Err(YamlError::MultipleDocuments { span });
                    }
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::DocumentEnd) {
                        root = Some(Node::new(Value::Null, span));
                        continue;
                    }
                    root = Some(self.node(ev, span, 0)?);
                }
                other => {
                    root = Some(self.node(other, span, 0)?);
                }
            }
        }
    }

    fn node(&mut self, ev: Event, span: Span, depth: usize) -> Result<Node, YamlError> {
        if depth > MAX_DEPTH {
            return Err(YamlError::TooDeep { span });
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                self.check_flow_plain(&text, style, span)?;
                let node = Node::new(scalar_value(&text, style, tag.as_ref(), span)?, span);
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).ok_or(YamlError::UnknownAlias { span })?;
                self.expanded += count_nodes(node);
                if self.expanded > MAX_NODES {
                    return Err(YamlError::TooLarge { span });
                }
                Ok(node.clone())
            }
            Event::SequenceStart(anchor, tag) => {
                let flow = self.starts_flow();
                self.flow_depth += usize::from(flow);
                let mut items = Vec::new();
                loop {
                    let (ev, s) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(ev, s, depth + 1)?);
                }
                self.flow_depth -= usize::from(flow);
                let items = match tag.as_ref().map(core_tag) {
                    None | Some(Some("seq")) => items,
                    // PyYAML builds !!omap / !!pairs as a list of (key, value) pairs.
                    Some(Some("omap" | "pairs")) => pairs(items, span)?,
                    _ => return Err(unsupported_tag(tag.as_ref(), span)),
                };
                let node = Node::new(Value::List(items), span);
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::MappingStart(anchor, tag) => {
                if !matches!(tag.as_ref().map(core_tag), None | Some(Some("map"))) {
                    return Err(unsupported_tag(tag.as_ref(), span));
                }
                let flow = self.starts_flow();
                self.flow_depth += usize::from(flow);
                let node = self.mapping(span, depth);
                self.flow_depth -= usize::from(flow);
                let node = node?;
                self.remember(anchor, &node);
                Ok(node)
            }
            _ => Err(YamlError::Syntax { message: "unexpected event".into(), span }),
        }
    }

    fn mapping(&mut self, span: Span, depth: usize) -> Result<Node, YamlError> {
        let mut span = span;
        let mut first_key = true;
        let mut own: Vec<(String, Span, Node)> = Vec::new();
        let mut merged: Vec<(String, Node)> = Vec::new();
        let mut seen: HashMap<String, Span> = HashMap::new();
        // Non-string keys compare as Python values (1 == 1.0 == True): a repeat replaces the value.
        let mut numeric: HashMap<String, String> = HashMap::new();
        loop {
            let (ev, kspan) = self.next()?;
            // A block mapping's start event sits at its first `:`; point at the first key instead.
            if first_key && kspan.line == span.line && kspan.col < span.col {
                span = kspan;
            }
            first_key = false;
            let key = match ev {
                Event::MappingEnd => break,
                Event::Scalar(text, style, anchor, tag) => {
                    self.check_flow_plain(&text, style, kspan)?;
                    let is_merge = style == TScalarStyle::Plain && tag.is_none() && text == "<<";
                    if anchor != 0 {
                        let n = Node::new(Value::Str(text.clone()), kspan);
                        self.remember(anchor, &n);
                    }
                    if is_merge {
                        let (vev, vspan) = self.next()?;
                        let value = self.node(vev, vspan, depth + 1)?;
                        merged.extend(merge_sources(value)?);
                        continue;
                    }
                    match key_of(&text, style, tag.as_ref(), kspan)? {
                        Key::Str(k) => k,
                        Key::Number { text, canonical } => {
                            let (vev, vspan) = self.next()?;
                            let value = self.node(vev, vspan, depth + 1)?;
                            match numeric.get(&canonical) {
                                Some(first) => {
                                    if let Some(slot) = own.iter_mut().find(|(k, _, _)| k == first) {
                                        let mut value = value;
                                        value.typed_key = true;
                                        slot.2 = value;
                                    }
                                }
                                None => {
                                    numeric.insert(canonical, text.clone());
                                    let mut value = value;
                                    value.typed_key = true;
                                    own.push((text, kspan, value));
                                }
                            }
                            continue;
                        }
                    }
                }
                Event::Alias(id) => match self.anchors.get(&id).map(|n| &n.value) {
                    Some(Value::Str(s)) => s.clone(),
                    Some(v) if !matches!(v, Value::Map(_) | Value::List(_)) => scalar_key_string(v),
                    Some(_) => return Err(YamlError::ComplexKey { span: kspan }),
                    None => return Err(YamlError::UnknownAlias { span: kspan }),
                },
                _ => return Err(YamlError::ComplexKey { span: kspan }),
            };
            if let Some(first) = seen.get(&key) {
                return Err(YamlError::DuplicateKey { key, span: kspan, first: *first });
            }
            seen.insert(key.clone(), kspan);
            let (vev, vspan) = self.next()?;
            let value = self.node(vev, vspan, depth + 1)?;
            own.push((key, kspan, value));
        }
        // PyYAML's `flatten_mapping`: the merged entries go before the mapping's own, and the
        // mapping is built as a Python dict: a key keeps the place where it first appears and
        // the value it is given last (so own keys win, and earlier `<<` sources win).
        let mut map = Map::new();
        for (k, v) in merged {
            map.insert(k, v);
        }
        for (k, _, v) in own {
            map.insert(k, v);
        }
        Ok(Node::map(map, span))
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }
}

/// The entries a `<<` value contributes, in PyYAML's order: a list of mappings is taken last
/// to first, so that (later entries winning) the first mapping of the list wins.
fn merge_sources(value: Node) -> Result<Vec<(String, Node)>, YamlError> {
    match value.value {
        Value::Map(m) => Ok(m.into_iter().collect()),
        Value::List(items) => {
            let mut out: Vec<(String, Node)> = Vec::new();
            for item in items.into_iter().rev() {
                match item.value {
                    Value::Map(m) => out.extend(m),
                    _ => return Err(YamlError::BadMerge { span: item.span }),
                }
            }
            Ok(out)
        }
        _ => Err(YamlError::BadMerge { span: value.span }),
    }
}

/// A mapping key: a string, or a number/bool (kept as text, compared by Python value).
enum Key {
    Str(String),
    Number { text: String, canonical: String },
}

/// Keys are kept as text: strings as they are, numbers and booleans as Python `str()` writes them.
fn key_of(text: &str, style: TScalarStyle, tag: Option<&Tag>, span: Span) -> Result<Key, YamlError> {
    let value = scalar_value(text, style, tag, span)?;
    Ok(match value {
        Value::Str(s) => Key::Str(s),
        Value::Missing => Key::Str("???".into()),
        Value::Null => return Err(YamlError::NullKey { span }),
        Value::Bool(b) => Key::Number { text: if b { "True" } else { "False" }.into(), canonical: format!("{}", if b { 1.0 } else { 0.0 }) },
        // Kept as Python writes the number, so `0x10:` and `16:` are the same key.
        Value::Int(i) => Key::Number { text: i.to_string(), canonical: format!("{}", i as f64) },
        Value::Float(f) => Key::Number { text: crate::python::float_repr(f), canonical: format!("{f}") },
        Value::Map(_) | Value::List(_) => return Err(YamlError::ComplexKey { span }),
    })
}

/// The YAML core-schema name of a tag (`!!omap` -> `omap`), `None` for other tags.
fn core_tag(tag: &Tag) -> Option<&str> {
    match tag.handle.as_str() {
        "!!" | "tag:yaml.org,2002:" => Some(tag.suffix.as_str()),
        _ => None,
    }
}

fn unsupported_tag(tag: Option<&Tag>, span: Span) -> YamlError {
    let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix)).unwrap_or_default();
    YamlError::UnsupportedTag { tag, span }
}

/// `!!omap [a: 1, b: 2]` -> `[[a, 1], [b, 2]]`.
fn pairs(items: Vec<Node>, span: Span) -> Result<Vec<Node>, YamlError> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let item_span = item.span;
        match item.value {
            Value::Map(m) if m.len() == 1 => {
                for (k, v) in m {
                    let key = Node::new(resolve_plain(&k), item_span);
                    out.push(Node::new(Value::List(vec![key, v]), item_span));
                }
            }
            _ => return Err(YamlError::UnsupportedTag { tag: "!!omap".into(), span }),
        }
    }
    Ok(out)
}

fn scalar_key_string(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Str(s) => s.clone(),
        _ => String::new(),
    }
}

fn scalar_value(text: &str, style: TScalarStyle, tag: Option<&Tag>, span: Span) -> Result<Value, YamlError> {
    if let Some(tag) = tag {
        return tagged_scalar(text, tag, span);
    }
    if style != TScalarStyle::Plain {
        return Ok(string_value(text));
    }
    if text == "=" {
        return Err(YamlError::ValueTag { text: text.into(), span });
    }
    Ok(resolve_plain(text))
}

/// A string as OmegaConf stores it: `???` is the mandatory-missing marker however it was quoted.
fn string_value(text: &str) -> Value {
    if text == "???" {
        Value::Missing
    } else {
        Value::Str(text.to_string())
    }
}

fn tagged_scalar(text: &str, tag: &Tag, span: Span) -> Result<Value, YamlError> {
    let full = format!("{}{}", tag.handle, tag.suffix);
    let core = match (tag.handle.as_str(), tag.suffix.as_str()) {
        ("!!", s) | ("tag:yaml.org,2002:", s) => s,
        _ => "",
    };
    let bad = || YamlError::UnsupportedTag { tag: full.clone(), span };
    match core {
        "str" => Ok(string_value(text)),
        "null" => Ok(Value::Null),
        "bool" => match resolve_plain(text) {
            Value::Bool(b) => Ok(Value::Bool(b)),
            _ => Err(bad()),
        },
        "int" => match resolve_plain(text) {
            Value::Int(i) => Ok(Value::Int(i)),
            _ => Err(bad()),
        },
        "float" => match resolve_plain(text) {
            Value::Float(f) => Ok(Value::Float(f)),
            Value::Int(i) => Ok(Value::Float(i as f64)),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

static BOOL_RE: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"));
static PYYAML_FLOAT_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    )
});
static INT_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$"));
/// OmegaConf's addition (checked after PyYAML's float and int): `1e3`, `100e100`, `1.e3`.
static OMEGACONF_FLOAT_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:[-+]?[0-9]+(?:_[0-9]+)*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+)|\.[0-9]+(?:_[0-9]+)*(?:[eE][-+][0-9]+)?|[-+]?[0-9]+(?:_[0-9]+)*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    )
});

fn re(pattern: &str) -> Regex {
    // The patterns are constants of this file; a typo is a bug caught by the unit tests.
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad built-in regex {pattern}: {e}"))
}

/// Types a plain scalar the way OmegaConf's PyYAML loader does (YAML 1.1, no timestamps).
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "???" => return Value::Missing,
        _ => {}
    }
    if BOOL_RE.is_match(text) {
        let lower = text.to_ascii_lowercase();
        return Value::Bool(matches!(lower.as_str(), "yes" | "true" | "on"));
    }
    if PYYAML_FLOAT_RE.is_match(text) {
        if let Some(f) = construct_float(text) {
            return Value::Float(f);
        }
    }
    if INT_RE.is_match(text) {
        if let Some(v) = construct_int(text) {
            return v;
        }
    }
    if OMEGACONF_FLOAT_RE.is_match(text) {
        if let Some(f) = construct_float(text) {
            return Value::Float(f);
        }
    }
    Value::Str(text.to_string())
}

fn split_sign(text: &str) -> (f64, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (-1.0, &text[1..]),
        Some(b'+') => (1.0, &text[1..]),
        _ => (1.0, text),
    }
}

fn construct_float(text: &str) -> Option<f64> {
    let cleaned = text.replace('_', "").to_ascii_lowercase();
    let (sign, body) = split_sign(&cleaned);
    if body == ".inf" {
        return Some(sign * f64::INFINITY);
    }
    if body == ".nan" {
        return Some(f64::NAN);
    }
    if body.contains(':') {
        let mut total = 0.0;
        for part in body.split(':') {
            total = total * 60.0 + part.parse::<f64>().ok()?;
        }
        return Some(sign * total);
    }
    // Python's float() accepts `1.` and `.5`; Rust's parse does too.
    body.parse::<f64>().ok().map(|f| sign * f)
}

/// PyYAML's construct_yaml_int; a value beyond i64 stays a string rather than being wrong.
fn construct_int(text: &str) -> Option<Value> {
    let cleaned = text.replace('_', "");
    let (neg, body) = match cleaned.as_bytes().first() {
        Some(b'-') => (true, &cleaned[1..]),
        Some(b'+') => (false, &cleaned[1..]),
        _ => (false, cleaned.as_str()),
    };
    let magnitude: i128 = if body == "0" || body.is_empty() {
        0
    } else if let Some(b) = body.strip_prefix("0b") {
        i128::from_str_radix(b, 2).ok()?
    } else if let Some(h) = body.strip_prefix("0x") {
        i128::from_str_radix(h, 16).ok()?
    } else if body.starts_with('0') {
        i128::from_str_radix(body, 8).ok()?
    } else if body.contains(':') {
        let mut total: i128 = 0;
        for part in body.split(':') {
            total = total.checked_mul(60)?.checked_add(part.parse::<i128>().ok()?)?;
        }
        total
    } else {
        body.parse::<i128>().ok()?
    };
    let v = if neg { -magnitude } else { magnitude };
    i64::try_from(v).ok().map(Value::Int)
}

// Expected scalar types below: OmegaConf 2.3.0, through scripts/oracles/omegaconf_yaml.py (it reads
// the test table and compares).
#[cfg(test)]
mod tests {
    use super::*;

    fn val(s: &str) -> Value {
        resolve_plain(s)
    }

    #[test]
    fn yaml11_scalars_as_omegaconf() {
        // Each pair was checked against OmegaConf 2.3.0's loader.
        let ints = [
            ("55_000", 55000),
            ("017", 15),
            ("0x1F", 31),
            ("1:30", 90),
            ("0b101", 5),
            ("-0b11", -3),
            ("00", 0),
            ("0_", 0),
            ("+0", 0),
            ("0_1", 1),
            ("190:20:30", 685230),
            ("1_2:30", 750),
            ("-1:30", -90),
            ("0x_1F", 31),
        ];
        for (s, i) in ints {
            assert_eq!(val(s), Value::Int(i), "{s}");
        }
        let floats = [
            ("1e-3", 0.001),
            ("100e100", 1e102),
            ("1e3", 1000.0),
            (".5", 0.5),
            ("1.e3", 1000.0),
            ("0.", 0.0),
            ("1__2.1", 12.1),
            ("1.2_", 1.2),
            ("12e03", 12000.0),
            ("1:30.5", 90.5),
            ("1_000.5", 1000.5),
            (".1_1", 0.11),
            ("1_.5", 1.5),
            ("-1e-3", -0.001),
            ("1e+3", 1000.0),
            ("g", 0.0),
        ];
        for (s, f) in floats.iter().filter(|(s, _)| *s != "g") {
            assert_eq!(val(s), Value::Float(*f), "{s}");
        }
        for s in ["0o17", "2024-01-01", "09", "0_e0", "+.9", "1.2e", "inf", "1:61", "1e-3_", "nULL", "y", "n", "tRUE", "._1", "-.5"] {
            assert_eq!(val(s), Value::Str(s.into()), "{s}");
        }
        for s in ["yes", "On", "TRUE", "on"] {
            assert_eq!(val(s), Value::Bool(true), "{s}");
        }
        for s in ["no", "off", "OFF", "False"] {
            assert_eq!(val(s), Value::Bool(false), "{s}");
        }
        for s in ["~", "", "null", "Null", "NULL"] {
            assert_eq!(val(s), Value::Null, "{s}");
        }
        assert!(matches!(val(".inf"), Value::Float(f) if f == f64::INFINITY));
        assert!(matches!(val("-.inf"), Value::Float(f) if f == f64::NEG_INFINITY));
        assert!(matches!(val(".nan"), Value::Float(f) if f.is_nan()));
        assert_eq!(val("???"), Value::Missing);
    }

    #[test]
    fn spec_vector_21() {
        let n =
            load_config("gitrev: 100e100\na_s: 0_e0\nb_i: 0_0\nc_s: 1_0e1_0\nd_f: .5\ne_s: +.9\ng_f: 1_1_2.1\nh_f: 1__2.1\ni_f: 1.2_\n", FileId(1)).unwrap();
        let m = n.as_map().unwrap();
        assert_eq!(m["gitrev"].value, Value::Float(1e102));
        assert_eq!(m["a_s"].value, Value::Str("0_e0".into()));
        assert_eq!(m["b_i"].value, Value::Int(0));
        assert_eq!(m["c_s"].value, Value::Str("1_0e1_0".into()));
        assert_eq!(m["d_f"].value, Value::Float(0.5));
        assert_eq!(m["e_s"].value, Value::Str("+.9".into()));
        assert_eq!(m["g_f"].value, Value::Float(112.1));
        assert_eq!(m["h_f"].value, Value::Float(12.1));
        assert_eq!(m["i_f"].value, Value::Float(1.2));
    }

    #[test]
    fn quoted_scalars_stay_strings_and_spans_are_kept() {
        let n = load_config("a: '123'\nb:\n  c: \"yes\"\n  d: [1, x]\n", FileId(1)).unwrap();
        let m = n.as_map().unwrap();
        assert_eq!(m["a"].value, Value::Str("123".into()));
        let b = m["b"].as_map().unwrap();
        assert_eq!(b["c"].value, Value::Str("yes".into()));
        assert_eq!((b["c"].span.line, b["c"].span.col), (3, 6));
        assert_eq!((b["d"].span.line, b["d"].span.col), (4, 6));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = load_config("a: 1\nb: 2\na: 3\n", FileId(1)).unwrap_err();
        assert!(matches!(&e, YamlError::DuplicateKey { key, span, first } if key == "a" && span.line == 3 && first.line == 1), "{e:?}");
    }

    #[test]
    fn anchors_and_merge_keys() {
        let n = load_config("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\nl: *b\n", FileId(1)).unwrap();
        let d = n.as_map().unwrap()["d"].as_map().unwrap();
        assert_eq!(d["x"].value, Value::Int(1));
        assert_eq!(d["y"].value, Value::Int(3));
        assert_eq!(d.keys().collect::<Vec<_>>(), vec!["x", "y"]);
        let n = load_config("a: &a {k: 1}\nb: &b {k: 2, j: 2}\nc:\n  <<: [*a, *b]\n", FileId(1)).unwrap();
        let c = n.as_map().unwrap()["c"].as_map().unwrap();
        assert_eq!(c["k"].value, Value::Int(1));
        assert_eq!(c["j"].value, Value::Int(2));
    }

    #[test]
    fn empty_and_bad_documents() {
        assert_eq!(load_config("", FileId(1)).unwrap().as_map().map(|m| m.len()), Some(0));
        assert_eq!(load_config("# only a comment\n", FileId(1)).unwrap().as_map().map(|m| m.len()), Some(0));
        assert!(matches!(load_config("- a\n", FileId(1)), Err(YamlError::NotAMapping { .. })));
        let e = load_config("a: [1, 2\nb: 3\n", FileId(1)).unwrap_err();
        assert!(matches!(e, YamlError::Syntax { .. }), "{e:?}");
        assert!(matches!(load_config("a: 1\n---\nb: 2\n", FileId(1)), Err(YamlError::MultipleDocuments { .. })));
    }
}

#[cfg(test)]
mod pyyaml_edge_tests {
    use super::*;

    fn load(s: &str) -> Result<Node, YamlError> {
        load_config(s, FileId(1))
    }

    #[test]
    fn question_mark_in_flow_collections_is_a_key_indicator() {
        assert!(matches!(load("a: [1, ???]\n"), Err(YamlError::FlowQuestionMark { .. })));
        assert!(matches!(load("a: {c: ???}\n"), Err(YamlError::FlowQuestionMark { .. })));
        assert_eq!(load("a: ???\nb: ['???']\n").unwrap().as_map().unwrap()["a"].value, Value::Missing);
    }

    #[test]
    fn non_string_keys_compare_as_python_values() {
        // `True == 1` in Python: the later value wins, the first key stays.
        let n = load("1: a\ntrue: b\nyes: c\n0x10: f\n").unwrap();
        let m = n.as_map().unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), vec!["1", "16"]);
        assert_eq!(m["1"].value, Value::Str("c".into()));
        assert!(matches!(load("~: x\n"), Err(YamlError::NullKey { .. })));
        assert!(matches!(load("a: 1\na: 2\n"), Err(YamlError::DuplicateKey { .. })));
    }

    #[test]
    fn collection_tags() {
        let n = load("o: !!omap [x: 1, y: 2]\n").unwrap();
        assert_eq!(n.as_map().unwrap()["o"], load("o: [[x, 1], [y, 2]]\n").unwrap().as_map().unwrap()["o"]);
        assert!(matches!(load("s: !!set {x, y}\n"), Err(YamlError::UnsupportedTag { .. })));
    }
}
