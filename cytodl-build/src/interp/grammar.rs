//! OmegaConf 2.3 interpolation grammar.
//!
//! A hand-written equivalent of OmegaConf's ANTLR `OmegaConfGrammarLexer` /
//! `OmegaConfGrammarParser` (plus the un-escaping done by its `GrammarVisitor`).
//! The lexer is modal exactly like the ANTLR one (default / value /
//! interpolation / single-quoted / double-quoted modes, with a mode stack) and
//! uses ANTLR's rule: longest match wins, ties go to the rule declared first.
//! The parser is a recursive descent over the token list. Nothing here
//! panics: every malformed input becomes a [`ParseError`].

use thiserror::Error;

/// A grammar error (OmegaConf's `GrammarParseError`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message} (at byte {offset})")]
pub struct ParseError {
    pub message: String,
    /// Byte offset into the input where it went wrong.
    pub offset: usize,
}

/// A piece of a string: literal text or an interpolation to be resolved and
/// converted to str.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Lit(String),
    Interp(Interp),
}

/// One `${...}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Interp {
    /// `${..a.b[c]}`: `dots` leading dots (0 = absolute), then key parts.
    Node { dots: usize, keys: Vec<Key>, offset: usize },
    /// `${name.parts:args}`
    Resolver { name: Vec<Key>, args: Vec<Element>, offset: usize },
}

/// A key part of a node path or resolver name.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    Lit(String),
    /// `${options.${choice}}`, `${${rel_opt}.b}`: must resolve to a str.
    Interp(Box<Interp>),
}

/// A resolver argument / `oc.decode` element.
#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string with nothing left to resolve (multi-token primitive, quoted
    /// string without interpolations, escapes applied).
    Str(String),
    /// An element that is exactly one interpolation (type of the target kept).
    Interp(Box<Interp>),
    /// A string made by concatenating pieces (a primitive of several tokens
    /// containing interpolations, or any quoted string containing
    /// interpolations — a quoted string is always a str).
    Concat(Vec<Piece>),
    List(Vec<Element>),
    /// Keys are the dict-key text with escapes applied (OmegaConf would turn
    /// `{1: x}` into an int key; config keys are strings here).
    Dict(Vec<(String, Element)>),
}

/// Maximum nesting of interpolations / containers / quotes, so that hostile
/// input cannot overflow the stack of the recursive-descent parser.
const MAX_DEPTH: usize = 200;

/// A top-level string value (`configValue: text EOF`).
///
/// Empty input gives an empty piece list (OmegaConf never parses strings
/// without `${`, whose value is the string itself).
pub fn parse_value(input: &str) -> Result<Vec<Piece>, ParseError> {
    let toks = lex(input, Mode::Default)?;
    let mut p = Parser { src: input, toks, pos: 0, depth: 0 };
    let pieces = p.text(TextCtx::Top)?;
    p.expect_eof()?;
    Ok(pieces)
}

/// A single element (`singleElement: element EOF`), used by oc.decode.
pub fn parse_element(input: &str) -> Result<Element, ParseError> {
    let toks = lex(input, Mode::Value)?;
    let mut p = Parser { src: input, toks, pos: 0, depth: 0 };
    let e = p.element()?;
    p.expect_eof()?;
    Ok(e)
}

// ---------------------------------------------------------------- lexer --

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Default,
    Value,
    Interp,
    QSingle,
    QDouble,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum T {
    AnyStr,
    EscInter,
    TopEsc,
    InterOpen,
    BraceOpen,
    BraceClose,
    QuoteOpenSingle,
    QuoteOpenDouble,
    Comma,
    BracketOpen,
    BracketClose,
    Colon,
    Float,
    Int,
    Bool,
    Null,
    UnquotedChar,
    Id,
    Esc,
    Ws,
    InterClose,
    Dot,
    InterKey,
    MatchingQuoteClose,
    QuotedEsc,
    Eof,
}

/// What the lexer does to its mode stack after a token.
#[derive(Clone, Copy)]
enum Action {
    None,
    Push(Mode),
    Pop,
    Set(Mode),
}

#[derive(Debug, Clone, Copy)]
struct Tok {
    kind: T,
    start: usize,
    end: usize,
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn count_while(s: &[u8], p: usize, f: impl Fn(u8) -> bool) -> usize {
    s.get(p..).map_or(0, |r| r.iter().take_while(|&&b| f(b)).count())
}

fn at(s: &[u8], p: usize) -> Option<u8> {
    s.get(p).copied()
}

/// `WS? <c> WS?` style helpers: length of optional whitespace at `p`.
fn ws_len(s: &[u8], p: usize) -> usize {
    count_while(s, p, is_ws)
}

/// `'${' WS?`
fn m_inter_open(s: &[u8], p: usize) -> Option<usize> {
    if s.get(p..p + 2) == Some(b"${") {
        Some(2 + ws_len(s, p + 2))
    } else {
        None
    }
}

/// `WS? c` (and optionally trailing `WS?`).
fn m_ws_char(s: &[u8], p: usize, c: u8, trailing: bool) -> Option<usize> {
    let w = ws_len(s, p);
    if at(s, p + w) == Some(c) {
        let t = if trailing { ws_len(s, p + w + 1) } else { 0 };
        Some(w + 1 + t)
    } else {
        None
    }
}

/// `c WS?`
fn m_char_ws(s: &[u8], p: usize, c: u8) -> Option<usize> {
    if at(s, p) == Some(c) {
        Some(1 + ws_len(s, p + 1))
    } else {
        None
    }
}

/// `~[stop]* ~[stop + '\\']`: longest run without `stop` bytes not ending in a backslash.
fn m_str(s: &[u8], p: usize, stop: &[u8]) -> Option<usize> {
    let mut n = count_while(s, p, |b| !stop.contains(&b));
    while n > 0 && at(s, p + n - 1) == Some(b'\\') {
        n -= 1;
    }
    (n > 0).then_some(n)
}

fn backslashes(s: &[u8], p: usize) -> usize {
    count_while(s, p, |b| b == b'\\')
}

/// `ESC_BACKSLASH* '\\' tail`: an odd run of backslashes followed by `tail`.
fn m_odd_bs_then(s: &[u8], p: usize, tail: &[u8]) -> Option<usize> {
    let n = backslashes(s, p);
    if n % 2 == 1 && s.get(p + n..p + n + tail.len()) == Some(tail) {
        Some(n + tail.len())
    } else {
        None
    }
}

/// `ESC_BACKSLASH+`
fn m_esc_backslashes(s: &[u8], p: usize) -> Option<usize> {
    let n = backslashes(s, p) / 2 * 2;
    (n > 0).then_some(n)
}

fn m_backslashes(s: &[u8], p: usize) -> Option<usize> {
    let n = backslashes(s, p);
    (n > 0).then_some(n)
}

fn m_byte(s: &[u8], p: usize, c: u8) -> Option<usize> {
    (at(s, p) == Some(c)).then_some(1)
}

/// `DIGIT (('_')? DIGIT)*` starting at `p`.
fn digits_us(s: &[u8], p: usize) -> Option<usize> {
    if !at(s, p)?.is_ascii_digit() {
        return None;
    }
    let mut i = p + 1;
    loop {
        match at(s, i) {
            Some(b) if b.is_ascii_digit() => i += 1,
            Some(b'_') if at(s, i + 1).is_some_and(|b| b.is_ascii_digit()) => i += 2,
            _ => break,
        }
    }
    Some(i - p)
}

/// `'0' | [1-9] (('_')? DIGIT)*`
fn int_unsigned(s: &[u8], p: usize) -> Option<usize> {
    match at(s, p)? {
        b'0' => Some(1),
        b'1'..=b'9' => digits_us(s, p),
        _ => None,
    }
}

fn sign_len(s: &[u8], p: usize) -> usize {
    usize::from(matches!(at(s, p), Some(b'+' | b'-')))
}

/// `POINT_FLOAT` (longest alternative).
fn point_float(s: &[u8], p: usize) -> Option<usize> {
    let iu = int_unsigned(s, p).unwrap_or(0);
    if at(s, p + iu) != Some(b'.') {
        return None;
    }
    match digits_us(s, p + iu + 1) {
        Some(d) => Some(iu + 1 + d),
        None if iu > 0 => Some(iu + 1),
        None => None,
    }
}

/// `[eE] [+-]? DIGIT (('_')? DIGIT)*`
fn exponent(s: &[u8], p: usize) -> Option<usize> {
    if !matches!(at(s, p)?, b'e' | b'E') {
        return None;
    }
    let sg = sign_len(s, p + 1);
    digits_us(s, p + 1 + sg).map(|d| 1 + sg + d)
}

fn ci_word(s: &[u8], p: usize, w: &[u8]) -> Option<usize> {
    let r = s.get(p..p + w.len())?;
    r.eq_ignore_ascii_case(w).then_some(w.len())
}

fn m_float(s: &[u8], p: usize) -> Option<usize> {
    let sg = sign_len(s, p);
    let q = p + sg;
    let mut best = ci_word(s, q, b"inf").or_else(|| ci_word(s, q, b"nan"));
    let pf = point_float(s, q);
    best = best.max(pf);
    for mant in [int_unsigned(s, q), pf].into_iter().flatten() {
        if let Some(e) = exponent(s, q + mant) {
            best = best.max(Some(mant + e));
        }
    }
    best.map(|n| n + sg)
}

fn m_int(s: &[u8], p: usize) -> Option<usize> {
    let sg = sign_len(s, p);
    int_unsigned(s, p + sg).map(|n| n + sg)
}

fn m_bool(s: &[u8], p: usize) -> Option<usize> {
    ci_word(s, p, b"true").or_else(|| ci_word(s, p, b"false"))
}

fn m_id(s: &[u8], p: usize) -> Option<usize> {
    let b = at(s, p)?;
    if !(b.is_ascii_alphabetic() || b == b'_') {
        return None;
    }
    Some(1 + count_while(s, p + 1, |b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
}

/// `ESC: (ESC_BACKSLASH | '\(' | ... | '\\\t')+`
fn m_esc(s: &[u8], p: usize) -> Option<usize> {
    let mut i = p;
    while at(s, i) == Some(b'\\') && at(s, i + 1).is_some_and(|b| b"\\()[]{}:=, \t".contains(&b)) {
        i += 2;
    }
    (i > p).then_some(i - p)
}

fn m_inter_key(s: &[u8], p: usize) -> Option<usize> {
    let n = count_while(s, p, |b| !b"\\{}()[]:. \t'\"".contains(&b));
    (n > 0).then_some(n)
}

type Rule = (Option<usize>, T, Action);

/// The rules of `mode`, in declaration order, matched at `p`.
fn rules(mode: Mode, s: &[u8], p: usize) -> Vec<Rule> {
    use Action::*;
    match mode {
        Mode::Default => vec![
            (m_inter_open(s, p), T::InterOpen, Push(Mode::Interp)),
            (m_str(s, p, b"$"), T::AnyStr, None),
            (m_odd_bs_then(s, p, b"${"), T::EscInter, None),
            (m_esc_backslashes(s, p), T::TopEsc, None),
            (m_backslashes(s, p), T::AnyStr, None),
            (m_byte(s, p, b'$'), T::AnyStr, None),
        ],
        Mode::Value => vec![
            (m_inter_open(s, p), T::InterOpen, Push(Mode::Interp)),
            (m_char_ws(s, p, b'{'), T::BraceOpen, Push(Mode::Value)),
            (m_ws_char(s, p, b'}', false), T::BraceClose, Pop),
            (m_byte(s, p, b'\''), T::QuoteOpenSingle, Push(Mode::QSingle)),
            (m_byte(s, p, b'"'), T::QuoteOpenDouble, Push(Mode::QDouble)),
            (m_ws_char(s, p, b',', true), T::Comma, None),
            (m_char_ws(s, p, b'['), T::BracketOpen, None),
            (m_ws_char(s, p, b']', false), T::BracketClose, None),
            (m_ws_char(s, p, b':', true), T::Colon, None),
            (m_float(s, p), T::Float, None),
            (m_int(s, p), T::Int, None),
            (m_bool(s, p), T::Bool, None),
            (ci_word(s, p, b"null"), T::Null, None),
            (at(s, p).filter(|b| b"/-\\+.$%*@?|".contains(b)).map(|_| 1), T::UnquotedChar, None),
            (m_id(s, p), T::Id, None),
            (m_esc(s, p), T::Esc, None),
            ((ws_len(s, p) > 0).then(|| ws_len(s, p)), T::Ws, None),
        ],
        Mode::Interp => vec![
            (m_inter_open(s, p), T::InterOpen, Push(Mode::Interp)),
            (m_ws_char(s, p, b':', true), T::Colon, Set(Mode::Value)),
            (m_ws_char(s, p, b'}', false), T::InterClose, Pop),
            (m_byte(s, p, b'.'), T::Dot, None),
            (m_byte(s, p, b'['), T::BracketOpen, None),
            (m_byte(s, p, b']'), T::BracketClose, None),
            (m_id(s, p), T::Id, None),
            (m_inter_key(s, p), T::InterKey, None),
        ],
        Mode::QSingle | Mode::QDouble => {
            let q = if mode == Mode::QSingle { b'\'' } else { b'"' };
            vec![
                (m_inter_open(s, p), T::InterOpen, Push(Mode::Interp)),
                (m_byte(s, p, q), T::MatchingQuoteClose, Pop),
                (m_str(s, p, &[q, b'$']), T::AnyStr, None),
                (m_odd_bs_then(s, p, b"${"), T::EscInter, None),
                (m_odd_bs_then(s, p, &[q]), T::Esc, None),
                (m_esc_backslashes(s, p), T::QuotedEsc, None),
                (m_backslashes(s, p), T::AnyStr, None),
                (m_byte(s, p, b'$'), T::AnyStr, None),
            ]
        }
    }
}

/// Tokenises the whole input (ANTLR's lexer is independent of the parser, so
/// lexing eagerly gives the same token stream).
fn lex(input: &str, start: Mode) -> Result<Vec<Tok>, ParseError> {
    let s = input.as_bytes();
    let mut mode = start;
    let mut stack: Vec<Mode> = Vec::new();
    let mut out = Vec::new();
    let mut p = 0;
    while p < s.len() {
        // Longest match; `>` keeps the first-declared rule on ties.
        let mut best: Option<(usize, T, Action)> = None;
        for (len, kind, act) in rules(mode, s, p) {
            if let Some(n) = len {
                if best.is_none_or(|(b, _, _)| n > b) {
                    best = Some((n, kind, act));
                }
            }
        }
        let Some((n, kind, act)) = best else {
            let ch = input.get(p..).and_then(|r| r.chars().next()).unwrap_or('?');
            return Err(ParseError { message: format!("token recognition error at: '{ch}'"), offset: p });
        };
        out.push(Tok { kind, start: p, end: p + n });
        match act {
            Action::None => {}
            Action::Push(m) => {
                stack.push(mode);
                mode = m;
            }
            Action::Pop => match stack.pop() {
                Some(m) => mode = m,
                None => return Err(ParseError { message: "Empty Stack".into(), offset: p }),
            },
            Action::Set(m) => mode = m,
        }
        p += n;
    }
    out.push(Tok { kind: T::Eof, start: s.len(), end: s.len() });
    Ok(out)
}

// --------------------------------------------------------------- parser --

#[derive(Clone, Copy, PartialEq)]
enum TextCtx {
    Top,
    Quoted,
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

/// Python's `text[1::2]`: drops every other char (the escaping backslashes).
fn unescape_pairs(t: &str) -> String {
    t.chars().skip(1).step_by(2).collect()
}

/// Appends a literal, merging with a preceding literal.
fn push_lit(pieces: &mut Vec<Piece>, s: &str) {
    if s.is_empty() {
        return;
    }
    if let Some(Piece::Lit(l)) = pieces.last_mut() {
        l.push_str(s);
    } else {
        pieces.push(Piece::Lit(s.to_string()));
    }
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Tok {
        self.toks.get(self.pos).copied().unwrap_or(Tok { kind: T::Eof, start: self.src.len(), end: self.src.len() })
    }

    fn peek_at(&self, k: usize) -> T {
        self.toks.get(self.pos + k).map_or(T::Eof, |t| t.kind)
    }

    fn text_of(&self, t: Tok) -> &'a str {
        self.src.get(t.start..t.end).unwrap_or("")
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn err<R>(&self, t: Tok, what: &str) -> Result<R, ParseError> {
        let found = if t.kind == T::Eof { "<EOF>".to_string() } else { format!("'{}'", self.text_of(t)) };
        Err(ParseError { message: format!("mismatched input {found}: expected {what}"), offset: t.start })
    }

    fn expect(&mut self, k: T, what: &str) -> Result<Tok, ParseError> {
        let t = self.peek();
        if t.kind == k {
            Ok(self.bump())
        } else {
            self.err(t, what)
        }
    }

    fn expect_eof(&mut self) -> Result<(), ParseError> {
        self.expect(T::Eof, "<EOF>").map(|_| ())
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError { message: "nesting too deep".into(), offset: self.peek().start });
        }
        Ok(())
    }

    /// `text` at top level (until EOF) or inside quotes (until the closing quote).
    fn text(&mut self, ctx: TextCtx) -> Result<Vec<Piece>, ParseError> {
        let mut pieces = Vec::new();
        loop {
            let t = self.peek();
            let next = self.peek_at(1);
            match t.kind {
                T::InterOpen => {
                    let i = self.interpolation()?;
                    pieces.push(Piece::Interp(i));
                    continue;
                }
                T::AnyStr => push_lit(&mut pieces, self.text_of(t)),
                T::EscInter => {
                    let s = self.text_of(t);
                    let keep = s.len() / 2 + 1;
                    push_lit(&mut pieces, s.get(s.len().saturating_sub(keep)..).unwrap_or(""));
                }
                T::Esc => push_lit(&mut pieces, &unescape_pairs(self.text_of(t))),
                // Backslashes are only un-escaped when they precede an
                // interpolation (or, in quotes, end the string).
                T::TopEsc | T::QuotedEsc => {
                    let s = self.text_of(t);
                    let unesc = next == T::InterOpen || (t.kind == T::QuotedEsc && next == T::MatchingQuoteClose);
                    if unesc {
                        push_lit(&mut pieces, &unescape_pairs(s));
                    } else {
                        push_lit(&mut pieces, s);
                    }
                }
                T::Eof if ctx == TextCtx::Top => break,
                T::MatchingQuoteClose if ctx == TextCtx::Quoted => break,
                _ => return self.err(t, "text"),
            }
            self.bump();
        }
        Ok(pieces)
    }

    /// `interpolationNode | interpolationResolver`, at an `INTER_OPEN` token.
    fn interpolation(&mut self) -> Result<Interp, ParseError> {
        self.enter()?;
        let r = self.interpolation_inner();
        self.depth -= 1;
        r
    }

    fn interpolation_inner(&mut self) -> Result<Interp, ParseError> {
        let open = self.expect(T::InterOpen, "'${'")?;
        let mut dots = 0;
        while self.peek().kind == T::Dot {
            self.bump();
            dots += 1;
        }
        let mut keys = Vec::new();
        // Whether the path so far is also a valid resolver name: ID or
        // interpolation parts, separated by dots.
        let mut name_ok = dots == 0;
        let mut first = true;
        loop {
            let t = self.peek();
            match t.kind {
                T::Dot if !first => {
                    self.bump();
                    let (k, is_name) = self.config_key()?;
                    name_ok &= is_name;
                    keys.push(k);
                }
                T::BracketOpen => {
                    self.bump();
                    let (k, _) = self.config_key()?;
                    self.expect(T::BracketClose, "']'")?;
                    name_ok = false;
                    keys.push(k);
                }
                _ if first => {
                    let (k, is_name) = self.config_key()?;
                    name_ok &= is_name;
                    keys.push(k);
                }
                T::InterClose => {
                    self.bump();
                    return Ok(Interp::Node { dots, keys, offset: open.start });
                }
                T::Colon if name_ok => {
                    self.bump();
                    let args = self.sequence(T::BraceClose)?;
                    self.expect(T::BraceClose, "'}'")?;
                    return Ok(Interp::Resolver { name: keys, args, offset: open.start });
                }
                _ => return self.err(t, "'.', '[' or '}'"),
            }
            first = false;
        }
    }

    /// `configKey: interpolation | ID | INTER_KEY`; also says whether it may
    /// be part of a resolver name (ID or interpolation).
    fn config_key(&mut self) -> Result<(Key, bool), ParseError> {
        let t = self.peek();
        match t.kind {
            T::InterOpen => Ok((Key::Interp(Box::new(self.interpolation()?)), true)),
            T::Id => {
                self.bump();
                Ok((Key::Lit(self.text_of(t).to_string()), true))
            }
            T::InterKey => {
                self.bump();
                Ok((Key::Lit(self.text_of(t).to_string()), false))
            }
            _ => self.err(t, "a key"),
        }
    }

    /// `sequence?` followed by `close` (not consumed). Missing elements
    /// (`a,,b`, trailing comma) become empty strings, like OmegaConf.
    fn sequence(&mut self, close: T) -> Result<Vec<Element>, ParseError> {
        let mut out = Vec::new();
        if self.peek().kind == close {
            return Ok(out);
        }
        let mut prev_comma = true;
        loop {
            let t = self.peek();
            if t.kind == T::Comma {
                if prev_comma {
                    out.push(Element::Str(String::new()));
                }
                prev_comma = true;
                self.bump();
            } else if t.kind == close {
                break;
            } else if prev_comma {
                out.push(self.element()?);
                prev_comma = false;
            } else {
                return self.err(t, "',' or closing bracket");
            }
        }
        if prev_comma {
            out.push(Element::Str(String::new()));
        }
        Ok(out)
    }

    /// `element: primitive | quotedValue | listContainer | dictContainer`
    fn element(&mut self) -> Result<Element, ParseError> {
        self.enter()?;
        let r = self.element_inner();
        self.depth -= 1;
        r
    }

    fn element_inner(&mut self) -> Result<Element, ParseError> {
        let t = self.peek();
        match t.kind {
            T::QuoteOpenSingle | T::QuoteOpenDouble => {
                self.bump();
                let pieces = self.text(TextCtx::Quoted)?;
                self.expect(T::MatchingQuoteClose, "closing quote")?;
                if pieces.iter().any(|p| matches!(p, Piece::Interp(_))) {
                    Ok(Element::Concat(pieces))
                } else {
                    Ok(Element::Str(match pieces.into_iter().next() {
                        Some(Piece::Lit(s)) => s,
                        _ => String::new(),
                    }))
                }
            }
            T::BracketOpen => {
                self.bump();
                let items = self.sequence(T::BracketClose)?;
                self.expect(T::BracketClose, "']'")?;
                Ok(Element::List(items))
            }
            T::BraceOpen => {
                self.bump();
                self.dict()
            }
            _ => self.primitive(),
        }
    }

    /// After `BRACE_OPEN`: `(dictKeyValuePair (COMMA dictKeyValuePair)*)? BRACE_CLOSE`.
    fn dict(&mut self) -> Result<Element, ParseError> {
        let mut out: Vec<(String, Element)> = Vec::new();
        if self.peek().kind == T::BraceClose {
            self.bump();
            return Ok(Element::Dict(out));
        }
        loop {
            let mut key = String::new();
            let mut n = 0;
            loop {
                let t = self.peek();
                match t.kind {
                    T::Id | T::Null | T::Int | T::Float | T::Bool | T::UnquotedChar | T::Ws => key.push_str(self.text_of(t)),
                    T::Esc => key.push_str(&unescape_pairs(self.text_of(t))),
                    _ => break,
                }
                n += 1;
                self.bump();
            }
            if n == 0 {
                return self.err(self.peek(), "a dict key");
            }
            self.expect(T::Colon, "':'")?;
            let v = self.element()?;
            // Python dict semantics: a repeated key keeps its first position
            // and takes the last value.
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = v,
                None => out.push((key, v)),
            }
            let t = self.bump();
            match t.kind {
                T::Comma => continue,
                T::BraceClose => return Ok(Element::Dict(out)),
                _ => return self.err(t, "',' or '}'"),
            }
        }
    }

    /// `primitive: (ID | NULL | INT | FLOAT | BOOL | UNQUOTED_CHAR | COLON | ESC | WS | interpolation)+`
    fn primitive(&mut self) -> Result<Element, ParseError> {
        let start = self.peek();
        let mut items: Vec<(Tok, Option<Interp>)> = Vec::new();
        loop {
            let t = self.peek();
            match t.kind {
                T::Id | T::Null | T::Int | T::Float | T::Bool | T::UnquotedChar | T::Colon | T::Esc | T::Ws => {
                    self.bump();
                    items.push((t, None));
                }
                T::InterOpen => {
                    let i = self.interpolation()?;
                    items.push((t, Some(i)));
                }
                _ => break,
            }
        }
        if items.len() == 1 {
            if let Some((t, i)) = items.pop() {
                let txt = self.text_of(t);
                return match (t.kind, i) {
                    (_, Some(i)) => Ok(Element::Interp(Box::new(i))),
                    (T::Null, _) => Ok(Element::Null),
                    (T::Bool, _) => Ok(Element::Bool(txt.eq_ignore_ascii_case("true"))),
                    (T::Int, _) => {
                        parse_int(txt).map(Element::Int).ok_or_else(|| ParseError { message: format!("integer out of range: {txt}"), offset: t.start })
                    }
                    (T::Float, _) => {
                        parse_float(txt).map(Element::Float).ok_or_else(|| ParseError { message: format!("invalid float: {txt}"), offset: t.start })
                    }
                    (T::Esc, _) => Ok(Element::Str(unescape_pairs(txt))),
                    // OmegaConf's visitor asserts on a lone WS (only reachable
                    // as a whole `oc.decode` input): an error there too.
                    (T::Ws, _) => self.err(t, "an element"),
                    _ => Ok(Element::Str(txt.to_string())),
                };
            }
        }
        if items.is_empty() {
            return self.err(start, "an element");
        }
        let mut pieces = Vec::new();
        for (t, i) in items {
            match i {
                Some(i) => pieces.push(Piece::Interp(i)),
                None if t.kind == T::Esc => push_lit(&mut pieces, &unescape_pairs(self.text_of(t))),
                None => push_lit(&mut pieces, self.text_of(t)),
            }
        }
        if pieces.iter().any(|p| matches!(p, Piece::Interp(_))) {
            Ok(Element::Concat(pieces))
        } else {
            Ok(Element::Str(match pieces.into_iter().next() {
                Some(Piece::Lit(s)) => s,
                _ => String::new(),
            }))
        }
    }
}

/// Python `int()` of an INT token (`[+-]?(0|[1-9](_?\d)*)`).
fn parse_int(t: &str) -> Option<i64> {
    t.replace('_', "").parse::<i64>().ok()
}

/// Python `float()` of a FLOAT token (underscores allowed, inf/nan any case).
fn parse_float(t: &str) -> Option<f64> {
    let s = t.replace('_', "");
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, &s[..]),
    };
    let v = if body.eq_ignore_ascii_case("inf") {
        f64::INFINITY
    } else if body.eq_ignore_ascii_case("nan") {
        f64::NAN
    } else {
        body.parse::<f64>().ok()?
    };
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Piece {
        Piece::Lit(s.into())
    }
    fn k(s: &str) -> Key {
        Key::Lit(s.into())
    }
    fn node(v: &str) -> Interp {
        match parse_value(v) {
            Ok(mut p) if p.len() == 1 => match p.pop() {
                Some(Piece::Interp(i)) => i,
                other => panic!("{v}: {other:?}"),
            },
            other => panic!("{v}: {other:?}"),
        }
    }
    fn keys_of(i: &Interp) -> (usize, Vec<Key>) {
        match i {
            Interp::Node { dots, keys, .. } => (*dots, keys.clone()),
            _ => panic!("not a node: {i:?}"),
        }
    }
    fn res_of(i: &Interp) -> (Vec<Key>, Vec<Element>) {
        match i {
            Interp::Resolver { name, args, .. } => (name.clone(), args.clone()),
            _ => panic!("not a resolver: {i:?}"),
        }
    }
    fn s(x: &str) -> Element {
        Element::Str(x.into())
    }

    #[test]
    fn node_refs() {
        assert_eq!(keys_of(&node("${dict.a}")), (0, vec![k("dict"), k("a")]));
        assert_eq!(keys_of(&node("${list.0}")), (0, vec![k("list"), k("0")]));
        assert_eq!(keys_of(&node("${list[0]}")), (0, vec![k("list"), k("0")]));
        assert_eq!(keys_of(&node("${dict[b][c]}")), (0, vec![k("dict"), k("b"), k("c")]));
        assert_eq!(keys_of(&node("${..a.b}")), (2, vec![k("a"), k("b")]));
        assert_eq!(keys_of(&node("${.a}")), (1, vec![k("a")]));
        assert_eq!(keys_of(&node("${list.-1}")), (0, vec![k("list"), k("-1")]));
        assert_eq!(keys_of(&node("${$a@/b-c}")), (0, vec![k("$a@/b-c")]));
        assert_eq!(keys_of(&node("${ \tdict.a  \t}")), (0, vec![k("dict"), k("a")]));
        assert_eq!(keys_of(&node("${[a].b}")), (0, vec![k("a"), k("b")]));
        let (_, ks) = keys_of(&node("${options.${choice}}"));
        assert_eq!(ks[0], k("options"));
        assert!(matches!(&ks[1], Key::Interp(i) if keys_of(i) == (0, vec![k("choice")])));
        let (_, ks) = keys_of(&node("${${rel_opt}.b}"));
        assert!(matches!(&ks[0], Key::Interp(_)));
        assert_eq!(ks[1], k("b"));
        match node("ab${x}".trim_start_matches("ab")) {
            Interp::Node { offset, .. } => assert_eq!(offset, 0),
            _ => unreachable!(),
        }
    }

    #[test]
    fn node_errors() {
        for bad in [
            "${dict .\ta}",
            "${foo${bar}}",
            "${",
            "${a",
            "${}",
            "${.}",
            "${a..b}",
            "${a.}",
            "${a[b.c]}",
            "${a[b}",
            "${test:${str}",
            "${a:[1,}",
            "${a b}",
            "${a:b",
            "${'a'}",
            "${a(b)}",
            "${.a:b}",
            "${a[b]:c}",
            "${1a:b}",
            "${a.1:b}",
        ] {
            assert!(parse_value(bad).is_err(), "{bad} should fail: {:?}", parse_value(bad));
        }
    }

    #[test]
    fn top_level_text() {
        assert_eq!(parse_value("bonjour ${str}").ok(), Some(vec![lit("bonjour "), Piece::Interp(Interp::Node { dots: 0, keys: vec![k("str")], offset: 8 })]));
        let p = parse_value("${null}${float}").ok().unwrap_or_default();
        assert_eq!(p.len(), 2);
        let p = parse_value("${str}}").ok().unwrap_or_default();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1], lit("}"));
        assert_eq!(parse_value("Esc: \\${str}").ok(), Some(vec![lit("Esc: ${str}")]));
        let p = parse_value("Esc: \\\\${str}").ok().unwrap_or_default();
        assert_eq!(p[0], lit("Esc: \\"));
        assert!(matches!(p[1], Piece::Interp(Interp::Node { offset: 7, .. })));
        assert_eq!(parse_value("$\\{str\\}").ok(), Some(vec![lit("$\\{str\\}")]));
        assert_eq!(parse_value("a\\\\\\${x}").ok(), Some(vec![lit("a\\${x}")]));
        assert_eq!(parse_value("a\\\\b\\").ok(), Some(vec![lit("a\\\\b\\")]));
        assert_eq!(parse_value("x \\\\ y ${a}").ok().map(|p| p[0].clone()), Some(lit("x \\\\ y ")));
        assert_eq!(parse_value("$ $$ {}").ok(), Some(vec![lit("$ $$ {}")]));
        assert_eq!(parse_value("").ok(), Some(vec![]));
    }

    #[test]
    fn resolvers() {
        let (n, a) = res_of(&node("${test:a, b c}"));
        assert_eq!(n, vec![k("test")]);
        assert_eq!(a, vec![s("a"), s("b c")]);
        let (_, a) = res_of(&node("${f: a b , c }"));
        assert_eq!(a, vec![s("a b"), s("c")]);
        let (_, a) = res_of(&node("${test:[a, b], 0, [1.1]}"));
        assert_eq!(a, vec![Element::List(vec![s("a"), s("b")]), Element::Int(0), Element::List(vec![Element::Float(1.1)])]);
        assert!(parse_value("${test:{'a': 1.1, b: b}}").is_err());
        let (_, a) = res_of(&node("${test:{a: 1.1, b: b}}"));
        assert_eq!(a, vec![Element::Dict(vec![("a".into(), Element::Float(1.1)), ("b".into(), s("b"))])]);
        let (_, a) = res_of(&node("${test:${str}, ${null}, ${int}}"));
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|e| matches!(e, Element::Interp(_))));
        let (_, a) = res_of(&node("${f:'${null}'}"));
        assert!(matches!(&a[..], [Element::Concat(p)] if p.len() == 1));
        let (n, a) = res_of(&node("${eval:'\"ZYX\" if ${spatial_dims}==3 else \"YX\"'}"));
        assert_eq!(n, vec![k("eval")]);
        match &a[..] {
            [Element::Concat(p)] => {
                assert_eq!(p.len(), 3);
                assert_eq!(p[0], lit("\"ZYX\" if "));
                assert_eq!(p[2], lit("==3 else \"YX\""));
            }
            other => panic!("{other:?}"),
        }
        let (n, a) = res_of(&node("${kv_to_dict:${data._aux._scales_dict}}"));
        assert_eq!(n, vec![k("kv_to_dict")]);
        assert!(matches!(&a[0], Element::Interp(i) if keys_of(i).1 == vec![k("data"), k("_aux"), k("_scales_dict")]));
        let (n, a) = res_of(&node("${oc.env:PROJECT_ROOT, './'}"));
        assert_eq!(n, vec![k("oc"), k("env")]);
        assert_eq!(a, vec![s("PROJECT_ROOT"), s("./")]);
        let (_, a) = res_of(&node("${now:%Y-%m-%d}"));
        assert_eq!(a, vec![s("%Y-%m-%d")]);
        let (_, a) = res_of(&node("${hydra:runtime.output_dir}"));
        assert_eq!(a, vec![s("runtime.output_dir")]);
        let (_, a) = res_of(&node("${eval:${spatial_dims}+3}"));
        match &a[..] {
            [Element::Concat(p)] => {
                assert!(matches!(p[0], Piece::Interp(_)));
                assert_eq!(p[1], lit("+3"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(res_of(&node("${f:}")).1, vec![]);
        assert_eq!(res_of(&node("${f:a,,b}")).1, vec![s("a"), s(""), s("b")]);
        assert_eq!(res_of(&node("${f:,}")).1, vec![s(""), s("")]);
        assert_eq!(res_of(&node("${f:a,}")).1, vec![s("a"), s("")]);
        assert_eq!(res_of(&node("${f:a\\,b\\ c}")).1, vec![s("a,b c")]);
        assert_eq!(res_of(&node("${f:'a\\'b', \"c\\\"d\", 'e\\\\'}")).1, vec![s("a'b"), s("c\"d"), s("e\\")]);
        assert_eq!(res_of(&node("${f:'a\\\\b'}")).1, vec![s("a\\\\b")]);
        assert_eq!(res_of(&node("${f:a:b}")).1, vec![s("a:b")]);
        assert_eq!(res_of(&node("${f:''}")).1, vec![s("")]);
        let (n, _) = res_of(&node("${ns.${x}.f:1}"));
        assert!(matches!(&n[..], [Key::Lit(_), Key::Interp(_), Key::Lit(_)]));
        assert!(parse_value("${f:'a' b}").is_err());
        assert!(parse_value("${f:[1,2}").is_err());
        assert!(parse_value("${f:{a}}").is_err());
    }

    #[test]
    fn elements() {
        assert_eq!(parse_element("007"), Ok(s("007")));
        assert_eq!(parse_element("1_000"), Ok(Element::Int(1000)));
        assert_eq!(parse_element("+1E-2"), Ok(Element::Float(0.01)));
        assert_eq!(parse_element("TrUe"), Ok(Element::Bool(true)));
        assert_eq!(parse_element("'123'"), Ok(s("123")));
        assert_eq!(parse_element("NuLL"), Ok(Element::Null));
        assert_eq!(parse_element("1."), Ok(Element::Float(1.0)));
        assert_eq!(parse_element(".1"), Ok(Element::Float(0.1)));
        assert_eq!(parse_element("1e3"), Ok(Element::Float(1000.0)));
        assert_eq!(parse_element("1_000.5"), Ok(Element::Float(1000.5)));
        assert_eq!(parse_element("-inf"), Ok(Element::Float(f64::NEG_INFINITY)));
        assert_eq!(parse_element("+Inf"), Ok(Element::Float(f64::INFINITY)));
        assert!(matches!(parse_element("NaN"), Ok(Element::Float(f)) if f.is_nan()));
        assert_eq!(parse_element("-5"), Ok(Element::Int(-5)));
        assert_eq!(parse_element("1__0"), Ok(s("1__0")));
        assert_eq!(parse_element("a b"), Ok(s("a b")));
        assert_eq!(parse_element("nullx"), Ok(s("nullx")));
        assert_eq!(parse_element("foo-bar"), Ok(s("foo-bar")));
        assert_eq!(parse_element("-"), Ok(s("-")));
        assert_eq!(parse_element("\\,"), Ok(s(",")));
        assert_eq!(parse_element("[1, [2], {}]"), Ok(Element::List(vec![Element::Int(1), Element::List(vec![Element::Int(2)]), Element::Dict(vec![])])));
        assert_eq!(parse_element("{a: 1, a: 2, b: 3}"), Ok(Element::Dict(vec![("a".into(), Element::Int(2)), ("b".into(), Element::Int(3))])));
        assert!(parse_element("}").is_err());
        assert!(parse_element("").is_err());
        assert!(parse_element(" ").is_err());
        assert!(parse_element("[").is_err());
        assert!(parse_element("'abc").is_err());
        assert!(parse_element("99999999999999999999999").is_err());
    }

    #[test]
    fn no_panic_on_garbage() {
        let alphabet = ["$", "{", "}", "[", "]", "'", "\"", "\\", ":", ",", ".", " ", "a", "1", "é", "${", "(", "\t"];
        // Deterministic pseudo-random strings.
        let mut x: u64 = 0x9E3779B97F4A7C15;
        for _ in 0..20000 {
            let mut s = String::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 12) as usize;
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push_str(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            let _ = parse_value(&s);
            let _ = parse_element(&s);
        }
        let deep = "${".repeat(100_000);
        assert!(parse_value(&deep).is_err());
        let deep = format!("${{f:{}}}", "[".repeat(100_000));
        assert!(parse_value(&deep).is_err());
        let deep = format!("{}a{}", "${f:".repeat(5000), "}".repeat(5000));
        assert!(parse_value(&deep).is_err());
    }
}
