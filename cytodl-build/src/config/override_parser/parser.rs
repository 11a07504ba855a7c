//! Recursive descent over the tokens into a small syntax tree (`OverrideParser.g4`), then
//! the tree into an [`Override`]; functions are evaluated after the whole line parsed, so a
//! syntax error wins over an evaluation error, as in Hydra.

use super::functions::{call, unquote, PV};
use super::lexer::{display_text, lex, Tok, T};
use super::{Element, Override, OverrideKind, OverrideValue, ParseError};
use crate::python::{float_from_str, float_repr};

/// Syntax tree of a value; evaluated after the whole line parsed.
#[derive(Debug, Clone)]
enum Node {
    /// Primitive tokens (QUOTED_VALUE alone, or a run of the other primitive tokens).
    Prim(Vec<Tok>),
    List(Vec<Node>),
    Dict(Vec<(Vec<Tok>, Node)>),
    Func {
        name: String,
        args: Vec<(Option<String>, Node)>,
        s: usize,
        e: usize,
    },
}

/// Guard against stack exhaustion on deeply nested input (Python would hit its
/// recursion limit too).
const MAX_DEPTH: usize = 200;

const ELEMENT_START: &str = "{':', BRACKET_OPEN, BRACE_OPEN, FLOAT, INT, BOOL, NULL, UNQUOTED_CHAR, ID, ESC, WS, QUOTED_VALUE, INTERPOLATION}";

pub(super) struct Parser<'a> {
    s: &'a str,
    toks: Vec<Tok>,
    lex_err: Option<(String, usize)>,
    pos: usize,
}

fn is_prim(t: T) -> bool {
    matches!(t, T::Id | T::Null | T::Int | T::Float | T::Bool | T::Interp | T::Unq | T::Colon | T::Esc | T::Ws)
}

fn is_dict_key(t: T) -> bool {
    matches!(t, T::Id | T::Null | T::Int | T::Float | T::Bool | T::Unq | T::Esc | T::Ws)
}

impl<'a> Parser<'a> {
    /// A parser over the tokens of `line` (a lexing error is reported where the parse reaches it).
    pub(super) fn new(line: &'a str) -> Self {
        let (toks, lex_err) = lex(line);
        Parser { s: line, toks, lex_err, pos: 0 }
    }

    fn fail(&self, msg: String, offset: usize) -> ParseError {
        ParseError { message: format!("Error parsing override '{}'\n{}", self.s, msg), offset }
    }

    /// Token at `pos + k`, or the pending lexer error when lexing stopped before it.
    fn peek_at(&self, k: usize) -> Result<Tok, ParseError> {
        match self.toks.get(self.pos + k) {
            Some(t) => Ok(*t),
            None => {
                let (m, o) = self.lex_err.clone().unwrap_or_else(|| ("unexpected end of input".to_string(), self.s.len()));
                Err(self.fail(m, o))
            }
        }
    }

    fn peek(&self) -> Result<Tok, ParseError> {
        self.peek_at(0)
    }

    fn bump(&mut self) {
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
    }

    fn text(&self, t: &Tok) -> &'a str {
        if t.t == T::Eof {
            "<EOF>"
        } else {
            self.s.get(t.s..t.e).unwrap_or("")
        }
    }

    /// ANTLR-style "extraneous"/"mismatched input" message for the current token.
    fn unexpected(&self, expected: &str, follow_ok: &[T]) -> ParseError {
        let cur = match self.peek() {
            Ok(t) => t,
            Err(e) => return e,
        };
        let extraneous = cur.t != T::Eof && matches!(self.toks.get(self.pos + 1), Some(n) if follow_ok.contains(&n.t));
        let word = if extraneous { "extraneous" } else { "mismatched" };
        self.fail(format!("{} input '{}' expecting {}", word, display_text(self.text(&cur)), expected), cur.s)
    }

    /// "no viable alternative" from the start of a container through the current token.
    fn no_viable(&self, start: usize) -> ParseError {
        match self.peek() {
            Ok(cur) => {
                let end = cur.e.max(start);
                let txt = self.s.get(start..end).unwrap_or("");
                self.fail(format!("no viable alternative at input '{}'", display_text(txt)), cur.s)
            }
            Err(e) => e,
        }
    }

    pub(super) fn parse_override(&mut self) -> Result<Override, ParseError> {
        let mut kind = OverrideKind::Change;
        match self.peek()?.t {
            T::Tilde => {
                self.bump();
                kind = OverrideKind::Delete;
            }
            T::Plus => {
                self.bump();
                kind = OverrideKind::Add;
                if self.peek()?.t == T::Plus {
                    self.bump();
                    kind = OverrideKind::ForceAdd;
                }
            }
            _ => {}
        }
        // packageOrGroup: package | ID (SLASH ID)+
        let kstart = self.peek()?.s;
        let mut kend = kstart;
        let first = self.peek()?;
        if first.t == T::Id && self.peek_at(1)?.t == T::Slash {
            self.bump();
            kend = first.e;
            while self.peek()?.t == T::Slash {
                self.bump();
                let t = self.peek()?;
                if t.t != T::Id {
                    let m = if t.t == T::Equal || t.t == T::Eof {
                        format!("missing ID at '{}'", display_text(self.text(&t)))
                    } else {
                        format!("mismatched input '{}' expecting ID", display_text(self.text(&t)))
                    };
                    return Err(self.fail(m, t.s));
                }
                self.bump();
                kend = t.e;
            }
        } else if matches!(first.t, T::Id | T::KeySpecial | T::DotPath) {
            self.bump();
            kend = first.e;
        } else if kind != OverrideKind::Delete && first.t == T::Eof {
            let m = "mismatched input '<EOF>' expecting {EQUAL, '+', '@', KEY_SPECIAL, DOT_PATH, ID}";
            if kind == OverrideKind::Add || kind == OverrideKind::ForceAdd {
                return Err(self.fail(m.to_string(), first.s));
            }
        }
        let key_or_group = self.s.get(kstart..kend).unwrap_or("").to_string();
        let mut package = None;
        if self.peek()?.t == T::At {
            self.bump();
            let t = self.peek()?;
            let mut pend = t.s;
            if matches!(t.t, T::Id | T::KeySpecial | T::DotPath) {
                self.bump();
                pend = t.e;
            }
            package = Some(self.s.get(t.s..pend).unwrap_or("").to_string());
        }
        let t = self.peek()?;
        let value = match t.t {
            T::Equal => {
                self.bump();
                if self.peek()?.t == T::Eof {
                    Some(OverrideValue::Element(Element::Str { value: String::new(), quoted: false }))
                } else {
                    Some(self.parse_value()?)
                }
            }
            T::Eof if kind == OverrideKind::Delete => None,
            _ if kind == OverrideKind::Delete => return Err(self.unexpected("{<EOF>, EQUAL}", &[T::Eof, T::Equal])),
            T::Eof | T::Colon => return Err(self.fail(format!("missing EQUAL at '{}'", self.text(&t)), t.s)),
            T::Plus if kind == OverrideKind::ForceAdd && key_or_group.is_empty() => return Err(self.fail("no viable alternative at input '+'".into(), t.s)),
            _ => return Err(self.unexpected("EQUAL", &[T::Equal])),
        };
        Ok(Override { kind, key_or_group, package, value, input: self.s.to_string() })
    }

    fn parse_value(&mut self) -> Result<OverrideValue, ParseError> {
        let first = self.peek()?;
        let start = first.s;
        if !self.starts_element()? {
            // The value is optional, so ANTLR also lists <EOF> here.
            let mut follow = vec![T::Eof, T::Quoted, T::BrOpen, T::BcOpen];
            follow.extend([T::Id, T::Null, T::Int, T::Float, T::Bool, T::Interp, T::Unq, T::Colon, T::Esc, T::Ws]);
            let exp = ELEMENT_START.replacen('{', "{<EOF>, ", 1);
            return Err(self.unexpected(&exp, &follow));
        }
        let mut nodes = vec![self.parse_element(0)?];
        while self.peek()?.t == T::Comma {
            self.bump();
            nodes.push(self.parse_element(0)?);
        }
        let end_tok = self.peek()?;
        if end_tok.t != T::Eof {
            let exp = if nodes.len() > 1 { "{<EOF>, ','}" } else { "<EOF>" };
            return Err(self.unexpected(exp, &[T::Eof, T::Comma]));
        }
        if nodes.len() > 1 {
            for n in &nodes {
                self.eval(n, 0)?; // nested-sweep errors are tolerated here, as in Hydra
            }
            return Ok(self.sweep_text(start));
        }
        match self.eval(&nodes[0], 0)? {
            (_, Some(p)) => Err(p),
            (PV::E(e), None) => Ok(OverrideValue::Element(e)),
            _ => Ok(self.sweep_text(start)),
        }
    }

    fn sweep_text(&self, start: usize) -> OverrideValue {
        let text = self.s.get(start..).unwrap_or("").trim_end_matches([' ', '\t']);
        OverrideValue::Sweep { text: text.to_string() }
    }

    fn parse_element(&mut self, depth: usize) -> Result<Node, ParseError> {
        let t = self.peek()?;
        if depth > MAX_DEPTH {
            return Err(self.fail("maximum nesting depth exceeded".into(), t.s));
        }
        match t.t {
            T::Id if self.peek_at(1).map(|n| n.t) == Ok(T::POpen) => self.parse_function(depth),
            T::BrOpen => {
                self.bump();
                let mut items = Vec::new();
                if self.peek()?.t != T::BrClose {
                    loop {
                        if !self.starts_element()? {
                            return Err(self.no_viable(t.s));
                        }
                        items.push(self.parse_element(depth + 1)?);
                        if self.peek()?.t == T::Comma {
                            self.bump();
                        } else {
                            break;
                        }
                    }
                }
                if self.peek()?.t != T::BrClose {
                    return Err(self.no_viable(t.s));
                }
                self.bump();
                Ok(Node::List(items))
            }
            T::BcOpen => {
                self.bump();
                let mut items = Vec::new();
                if self.peek()?.t != T::BcClose {
                    loop {
                        let mut key = Vec::new();
                        while is_dict_key(self.peek()?.t) {
                            key.push(self.peek()?);
                            self.bump();
                        }
                        if key.is_empty() || self.peek()?.t != T::Colon {
                            return Err(self.no_viable(t.s));
                        }
                        self.bump();
                        if !self.starts_element()? {
                            return Err(self.no_viable(t.s));
                        }
                        let v = self.parse_element(depth + 1)?;
                        items.push((key, v));
                        if self.peek()?.t == T::Comma {
                            self.bump();
                        } else {
                            break;
                        }
                    }
                }
                if self.peek()?.t != T::BcClose {
                    return Err(self.no_viable(t.s));
                }
                self.bump();
                Ok(Node::Dict(items))
            }
            T::Quoted => {
                self.bump();
                Ok(Node::Prim(vec![t]))
            }
            x if is_prim(x) => {
                let mut toks = Vec::new();
                while is_prim(self.peek()?.t) {
                    toks.push(self.peek()?);
                    self.bump();
                }
                Ok(Node::Prim(toks))
            }
            _ => Err(self.unexpected(ELEMENT_START, &[])),
        }
    }

    fn starts_element(&self) -> Result<bool, ParseError> {
        let t = self.peek()?.t;
        Ok(is_prim(t) || matches!(t, T::Quoted | T::BrOpen | T::BcOpen))
    }

    fn parse_function(&mut self, depth: usize) -> Result<Node, ParseError> {
        let name_tok = self.peek()?;
        let name = self.text(&name_tok).to_string();
        self.bump(); // ID
        self.bump(); // POPEN
        let mut args = Vec::new();
        if self.peek()?.t != T::PClose {
            loop {
                let mut arg_name = None;
                if self.peek()?.t == T::Id && self.peek_at(1)?.t == T::Equal {
                    arg_name = Some(self.text(&self.peek()?).to_string());
                    self.bump();
                    self.bump();
                }
                if !self.starts_element()? {
                    return Err(self.no_viable(name_tok.s));
                }
                args.push((arg_name, self.parse_element(depth + 1)?));
                if self.peek()?.t == T::Comma {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        let close = self.peek()?;
        if close.t != T::PClose {
            return Err(self.no_viable(name_tok.s));
        }
        self.bump();
        Ok(Node::Func { name, args, s: name_tok.s, e: close.e })
    }

    // -----------------------------------------------------------------------
    // Evaluation
    // -----------------------------------------------------------------------

    /// Evaluates a node. The second value is a deferred error: a sweep stored inside a
    /// list/dict, which Hydra accepts while parsing but can never use as a value. It is
    /// raised when the container ends up as the override's value or a function argument,
    /// and dropped when a later duplicate dict key overwrites it or it sits inside a
    /// top-level `a,b` sweep (where Hydra also accepts it).
    fn eval(&self, n: &Node, depth: usize) -> Result<(PV, Option<ParseError>), ParseError> {
        match n {
            Node::Prim(toks) => Ok((PV::E(self.primitive(toks)?), None)),
            Node::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut poison = None;
                for it in items {
                    let (el, p) = self.eval_element(it, depth + 1)?;
                    if poison.is_none() {
                        poison = p;
                    }
                    out.push(el);
                }
                Ok((PV::E(Element::List(out)), poison))
            }
            Node::Dict(items) => {
                // Python dict semantics: equal keys (1 == 1.0 == true) keep the first key
                // and the last value.
                let mut out: Vec<(String, (Element, Option<ParseError>))> = Vec::new();
                let mut seen: std::collections::HashMap<String, usize> = Default::default();
                for (ktoks, v) in items {
                    let k = self.primitive(ktoks)?;
                    let val = self.eval_element(v, depth + 1)?;
                    match key_identity(&k) {
                        Some(id) => match seen.get(&id) {
                            Some(&slot) => {
                                if let Some(s) = out.get_mut(slot) {
                                    s.1 = val;
                                }
                            }
                            None => {
                                seen.insert(id, out.len());
                                out.push((key_string(&k), val));
                            }
                        },
                        None => out.push((key_string(&k), val)),
                    }
                }
                let poison = out.iter().find_map(|(_, (_, p))| p.clone());
                let dict = out.into_iter().map(|(k, (v, _))| (k, v)).collect();
                Ok((PV::E(Element::Dict(dict)), poison))
            }
            Node::Func { name, args, s, e } => {
                let mut pos = Vec::new();
                let mut kw: Vec<(String, PV)> = Vec::new();
                for (an, node) in args {
                    match an {
                        Some(k) => {
                            let v = unquote(self.eval_arg(node, depth + 1)?);
                            match kw.iter_mut().find(|(kk, _)| kk == k) {
                                Some(slot) => slot.1 = v,
                                None => kw.push((k.clone(), v)),
                            }
                        }
                        None => {
                            if !kw.is_empty() {
                                return Err(self.fail("positional argument follows keyword argument".into(), *s));
                            }
                            pos.push(unquote(self.eval_arg(node, depth + 1)?));
                        }
                    }
                }
                let text = self.s.get(*s..*e).unwrap_or("");
                call(name, pos, kw).map(|v| (v, None)).map_err(|(ty, msg)| self.fail(format!("{} while evaluating '{}': {}", ty, text, msg), *s))
            }
        }
    }

    /// An element nested in a list or dict; sweeps cannot be stored there.
    fn eval_arg(&self, n: &Node, depth: usize) -> Result<PV, ParseError> {
        match self.eval(n, depth)? {
            (_, Some(p)) => Err(p),
            (v, None) => Ok(v),
        }
    }

    fn eval_element(&self, n: &Node, depth: usize) -> Result<(Element, Option<ParseError>), ParseError> {
        match self.eval(n, depth)? {
            (PV::E(e), p) => Ok((e, p)),
            (other, _) => {
                let off = match n {
                    Node::Func { s, .. } => *s,
                    _ => 0,
                };
                let err = self.fail(format!("{} cannot be used inside a list or dict", other.type_name()), off);
                Ok((Element::Null, Some(err)))
            }
        }
    }

    /// Hydra's `_createPrimitive`.
    fn primitive(&self, toks: &[Tok]) -> Result<Element, ParseError> {
        let off = toks.first().map_or(self.s.len(), |t| t.s);
        let mut lo = 0;
        let mut hi = toks.len();
        if toks.first().map(|t| t.t) == Some(T::Ws) {
            if toks.len() == 1 {
                return Err(self.fail("Trying to parse a primitive that is all whitespaces".into(), off));
            }
            lo = 1;
        }
        if hi > lo && toks.last().map(|t| t.t) == Some(T::Ws) {
            hi -= 1;
        }
        let toks = toks.get(lo..hi).unwrap_or(&[]);
        if toks.len() != 1 {
            let mut out = String::new();
            for t in toks {
                let txt = self.text(t);
                if t.t == T::Esc {
                    out.extend(txt.chars().skip(1).step_by(2));
                } else {
                    out.push_str(txt);
                }
            }
            return Ok(Element::Str { value: out, quoted: false });
        }
        let t = toks[0];
        let txt = self.text(&t);
        Ok(match t.t {
            T::Quoted => Element::Str { value: unescape_quoted(txt), quoted: true },
            T::Int => {
                let clean: String = txt.chars().filter(|c| *c != '_').collect();
                match clean.parse::<i64>() {
                    Ok(v) => Element::Int(v),
                    Err(_) => return Err(self.fail(format!("integer out of range: '{}'", txt), t.s)),
                }
            }
            T::Float => Element::Float(parse_float_token(txt)),
            T::Null => Element::Null,
            T::Bool => Element::Bool(txt.eq_ignore_ascii_case("true")),
            T::Esc => Element::Str { value: txt.chars().skip(1).step_by(2).collect(), quoted: false },
            _ => Element::Str { value: txt.to_string(), quoted: false },
        })
    }
}

/// Float token text (already lexically valid) to f64, like Python's `float()`.
fn parse_float_token(txt: &str) -> f64 {
    float_from_str(txt).unwrap_or(f64::NAN)
}

/// Python hash/eq identity of a dict key (1 == 1.0 == true); None for NaN, which
/// never equals another key.
fn key_identity(k: &Element) -> Option<String> {
    match k {
        Element::Str { value, .. } => Some(format!("s:{}", value)),
        Element::Null => Some("null".into()),
        Element::Int(i) => Some(format!("n:{}", i)),
        Element::Bool(b) => Some(format!("n:{}", u8::from(*b))),
        Element::Float(f) if f.is_nan() => None,
        Element::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(format!("n:{}", *f as i64)),
        Element::Float(f) => Some(format!("f:{}", f)),
        other => Some(format!("x:{}", other.to_hydra_string())),
    }
}

/// Dict keys are stored as strings: the printed form of non-string keys.
fn key_string(k: &Element) -> String {
    match k {
        Element::Str { value, .. } => value.clone(),
        Element::Null => "null".into(),
        Element::Bool(b) => b.to_string(),
        Element::Int(i) => i.to_string(),
        Element::Float(f) => float_repr(*f),
        other => other.to_hydra_string(),
    }
}

/// Hydra's `_unescape_quoted_string`: strip the quotes and halve backslash runs that
/// precede a quote of the same kind.
fn unescape_quoted(text: &str) -> String {
    let mut chars = text.chars();
    let qc = match chars.next() {
        Some(c) => c,
        None => return String::new(),
    };
    let t: Vec<char> = chars.collect(); // content + closing quote
    let mut out = String::new();
    let mut i = 0;
    let mut pending_start = 0;
    while i < t.len() {
        if t[i] == '\\' {
            let mut j = i;
            while j < t.len() && t[j] == '\\' {
                j += 1;
            }
            if j < t.len() && t[j] == qc {
                out.extend(&t[pending_start..i]);
                // segment t[i..=j], keep every other char starting at index 1
                out.extend(t[i..=j].iter().skip(1).step_by(2));
                i = j + 1;
                pending_start = i;
                continue;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    if t.len() > pending_start + 1 {
        out.extend(&t[pending_start..t.len() - 1]);
    }
    out
}
