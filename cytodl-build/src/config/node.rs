//! The config tree: values as OmegaConf sees them, each carrying the source span it came from.
//!
//! Spans survive composition, merging and overrides so that every diagnostic (and, later, the
//! "where did this value come from" view) can name a file:line:col or a command-line override.

use indexmap::IndexMap;

use crate::diag::Span;

/// An ordered mapping, as OmegaConf's DictConfig: existing keys keep their position on merge.
pub type Map = IndexMap<String, Node>;

/// One node of the config tree.
#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub span: Span,
    /// This node's key in its parent mapping was a YAML number or boolean (`1:`, `true:`), kept
    /// as text; output writes such keys bare and quotes string keys that would read as one.
    pub typed_key: bool,
    /// Where the values this one replaced were written, oldest first (configs earlier in the
    /// defaults list, then overrides): what `cytodl-build explain` shows as "overrode".
    pub history: Vec<Span>,
}

/// Nodes compare as data: spans say where a value came from, not what it is.
impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

/// A node's value. Strings containing `${` are interpolations, resolved by [`crate::interp`].
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// OmegaConf's mandatory-missing `???`.
    Missing,
    Map(Map),
    List(Vec<Node>),
}

impl Node {
    pub fn new(value: Value, span: Span) -> Self {
        Node { value, span, typed_key: false, history: Vec::new() }
    }

    pub fn map(map: Map, span: Span) -> Self {
        Node::new(Value::Map(map), span)
    }

    pub fn empty_map(span: Span) -> Self {
        Node::map(Map::new(), span)
    }

    /// `self` taking `earlier`'s place: `earlier`'s history and its own span go first in
    /// [`Node::history`].
    pub fn replacing(mut self, earlier: &Node) -> Node {
        let mut history = earlier.history.clone();
        history.push(earlier.span);
        history.append(&mut self.history);
        self.history = history;
        self
    }

    pub fn as_map(&self) -> Option<&Map> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A string value that OmegaConf would treat as an interpolation.
    pub fn is_interpolation(&self) -> bool {
        matches!(&self.value, Value::Str(s) if s.contains("${"))
    }

    pub fn is_container(&self) -> bool {
        matches!(self.value, Value::Map(_) | Value::List(_))
    }

    /// Looks up a dotted key path (`a.b.0`) without resolving interpolations.
    pub fn get_path(&self, path: &str) -> Option<&Node> {
        if path.is_empty() {
            return Some(self);
        }
        let mut cur = self;
        for part in path.split('.') {
            cur = cur.child(part)?;
        }
        Some(cur)
    }

    /// The child named `key`: a mapping key, or a list index written in decimal.
    pub fn child(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(m) => m.get(key),
            Value::List(l) => key.parse::<usize>().ok().and_then(|i| l.get(i)),
            _ => None,
        }
    }

    pub fn child_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Map(m) => m.get_mut(key),
            Value::List(l) => key.parse::<usize>().ok().and_then(|i| l.get_mut(i)),
            _ => None,
        }
    }
}

/// Values compare as config data: `nan` equals `nan` (two configs that both say `.nan` agree).
impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) | (Value::Missing, Value::Missing) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            _ => false,
        }
    }
}

impl Value {
    /// Python's type name for messages (`int`, `str`, `dict`...), as OmegaConf users see them.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Missing => "missing",
            Value::Map(_) => "dict",
            Value::List(_) => "list",
        }
    }
}
