//! The two-mode lexer of `OverrideLexer.g4`: KEY mode until the first `=`, VALUE mode after it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum T {
    Equal,
    Tilde,
    Plus,
    At,
    Colon,
    Slash,
    Id,
    KeySpecial,
    DotPath,
    POpen,
    Comma,
    PClose,
    BrOpen,
    BrClose,
    BcOpen,
    BcClose,
    Float,
    Int,
    Bool,
    Null,
    Unq,
    Esc,
    Ws,
    Quoted,
    Interp,
    Eof,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Tok {
    pub(super) t: T,
    pub(super) s: usize,
    pub(super) e: usize,
}

fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn ws_len(b: &[u8], i: usize) -> usize {
    let mut j = i;
    while j < b.len() && is_ws(b[j]) {
        j += 1;
    }
    j - i
}

fn at(b: &[u8], i: usize) -> Option<u8> {
    b.get(i).copied()
}

/// Longest INT_UNSIGNED at `i`: `0` or `[1-9](_?[0-9])*`.
fn int_unsigned(b: &[u8], i: usize) -> usize {
    match at(b, i) {
        Some(b'0') => 1,
        Some(c) if c.is_ascii_digit() => digit_tail(b, i + 1) - i,
        _ => 0,
    }
}

/// Continues `(_?[0-9])*` from `j`, returning the end position.
fn digit_tail(b: &[u8], mut j: usize) -> usize {
    loop {
        match (at(b, j), at(b, j + 1)) {
            (Some(c), _) if c.is_ascii_digit() => j += 1,
            (Some(b'_'), Some(d)) if d.is_ascii_digit() => j += 2,
            _ => return j,
        }
    }
}

/// `DIGIT (('_')? DIGIT)*` at `i`; 0 if no digit.
fn digits_us(b: &[u8], i: usize) -> usize {
    match at(b, i) {
        Some(c) if c.is_ascii_digit() => digit_tail(b, i + 1) - i,
        _ => 0,
    }
}

/// Length of the FLOAT token at `i` (0 if none).
fn float_len(b: &[u8], i: usize) -> usize {
    let mut p = i;
    if matches!(at(b, p), Some(b'+') | Some(b'-')) {
        p += 1;
    }
    let mut best = 0;
    if let Some(w) = b.get(p..p + 3) {
        if w.eq_ignore_ascii_case(b"inf") || w.eq_ignore_ascii_case(b"nan") {
            best = p + 3 - i;
        }
    }
    let n = int_unsigned(b, p);
    let mut pf = 0;
    if n > 0 && at(b, p + n) == Some(b'.') {
        pf = n + 1 + digits_us(b, p + n + 1);
    } else if n == 0 && at(b, p) == Some(b'.') {
        let d = digits_us(b, p + 1);
        if d > 0 {
            pf = 1 + d;
        }
    }
    if pf > 0 {
        best = best.max(p + pf - i);
    }
    let m = if pf > 0 { pf } else { n };
    if m > 0 && matches!(at(b, p + m), Some(b'e') | Some(b'E')) {
        let mut q = p + m + 1;
        if matches!(at(b, q), Some(b'+') | Some(b'-')) {
            q += 1;
        }
        let d = digits_us(b, q);
        if d > 0 {
            best = best.max(q + d - i);
        }
    }
    best
}

/// KEY-mode ID / KEY_SPECIAL / DOT_PATH as one DFA: (accepted length, kind, bytes read).
fn key_path(b: &[u8], i: usize) -> (usize, T, usize) {
    #[derive(Clone, Copy, PartialEq)]
    enum S {
        SegStart,
        Ks,
        Zero,
        Iu,
        IuUs,
    }
    let mut st = S::SegStart;
    let mut j = i;
    let mut dot = false;
    let mut dollar = false;
    let mut best = (0, T::Id);
    loop {
        let c = at(b, j);
        let next = match (st, c) {
            (S::SegStart, Some(c)) if c.is_ascii_alphabetic() || c == b'_' || c == b'$' => S::Ks,
            (S::SegStart, Some(b'0')) => S::Zero,
            (S::SegStart, Some(c)) if c.is_ascii_digit() => S::Iu,
            (S::Ks, Some(c)) if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'$') => S::Ks,
            (S::Ks | S::Zero | S::Iu, Some(b'.')) => S::SegStart,
            (S::Iu, Some(c)) if c.is_ascii_digit() => S::Iu,
            (S::Iu, Some(b'_')) => S::IuUs,
            (S::IuUs, Some(c)) if c.is_ascii_digit() => S::Iu,
            _ => break,
        };
        if next == S::SegStart {
            dot = true;
        }
        if c == Some(b'$') && !dot {
            dollar = true;
        }
        j += 1;
        st = next;
        let accepting = matches!(st, S::Ks | S::Zero | S::Iu);
        if accepting && dot {
            best = (j - i, T::DotPath);
        } else if st == S::Ks && !dot {
            best = (j - i, if dollar { T::KeySpecial } else { T::Id });
        }
    }
    (best.0, best.1, j - i)
}

/// Longest VALUE-mode token at `i` (ties go to the earlier lexer rule).
fn value_token(b: &[u8], i: usize, next_close: &mut Option<usize>) -> Option<(T, usize)> {
    let mut best: Option<(T, usize)> = None;
    let mut cand = |t: T, l: usize| {
        if l > 0 && !matches!(best, Some((_, bl)) if l <= bl) {
            best = Some((t, l));
        }
    };
    let w = ws_len(b, i);
    let ws_sym_ws = |c: u8| -> usize {
        if at(b, i + w) == Some(c) {
            w + 1 + ws_len(b, i + w + 1)
        } else {
            0
        }
    };
    let ws_sym = |c: u8| -> usize {
        if at(b, i + w) == Some(c) {
            w + 1
        } else {
            0
        }
    };
    let sym_ws = |c: u8| -> usize {
        if at(b, i) == Some(c) {
            1 + ws_len(b, i + 1)
        } else {
            0
        }
    };
    cand(T::POpen, ws_sym_ws(b'('));
    cand(T::Comma, ws_sym_ws(b','));
    cand(T::PClose, ws_sym(b')'));
    cand(T::BrOpen, sym_ws(b'['));
    cand(T::BrClose, ws_sym(b']'));
    cand(T::BcOpen, sym_ws(b'{'));
    cand(T::BcClose, ws_sym(b'}'));
    cand(T::Colon, ws_sym_ws(b':'));
    cand(T::Equal, ws_sym_ws(b'='));
    cand(T::Float, float_len(b, i));
    let sign = usize::from(matches!(at(b, i), Some(b'+') | Some(b'-')));
    let iu = int_unsigned(b, i + sign);
    cand(T::Int, if iu > 0 { sign + iu } else { 0 });
    let kw = |word: &[u8]| -> usize {
        match b.get(i..i + word.len()) {
            Some(s) if s.eq_ignore_ascii_case(word) => word.len(),
            _ => 0,
        }
    };
    cand(T::Bool, kw(b"true").max(kw(b"false")));
    cand(T::Null, kw(b"null"));
    cand(T::Unq, usize::from(matches!(at(b, i), Some(c) if b"/-\\+.$%*@?|".contains(&c))));
    let id = match at(b, i) {
        Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
            let mut j = i + 1;
            while matches!(at(b, j), Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
                j += 1;
            }
            j - i
        }
        _ => 0,
    };
    cand(T::Id, id);
    let mut j = i;
    while at(b, j) == Some(b'\\') && matches!(at(b, j + 1), Some(c) if b"\\()[]{}:=, \t".contains(&c)) {
        j += 2;
    }
    cand(T::Esc, j - i);
    cand(T::Ws, w);
    if let Some(q) = at(b, i).filter(|c| *c == b'\'' || *c == b'"') {
        let mut j = i + 1;
        while j < b.len() {
            if b[j] == q {
                let mut k = 0;
                while j - k > i + 1 && b[j - k - 1] == b'\\' {
                    k += 1;
                }
                if k % 2 == 0 {
                    cand(T::Quoted, j + 1 - i);
                    break;
                }
            }
            j += 1;
        }
    }
    if at(b, i) == Some(b'$') && at(b, i + 1) == Some(b'{') {
        // Cache the next '}' so repeated `${` without a close stays linear.
        let j = match *next_close {
            Some(c) if c >= i + 2 => c,
            _ => {
                let c = b.get(i + 2..).and_then(|r| r.iter().position(|c| *c == b'}')).map_or(b.len(), |p| i + 2 + p);
                *next_close = Some(c);
                c
            }
        };
        if j < b.len() && j > i + 2 {
            cand(T::Interp, j + 1 - i);
        }
    }
    best
}

/// Escapes control characters the way ANTLR shows token text in messages.
pub(super) fn display_text(s: &str) -> String {
    s.replace('\n', "\\n").replace('\r', "\\r").replace('\t', "\\t")
}

/// Text of a lexer error: from the token start through the char where lexing failed.
fn lex_error_text(s: &str, start: usize, fail: usize) -> String {
    let end = s.get(fail..).and_then(|r| r.chars().next()).map_or(s.len(), |c| fail + c.len_utf8());
    s.get(start..end).unwrap_or("").to_string()
}

/// Tokenizes the whole line; a lexer error stops tokenization and is reported when the
/// parser reaches it (ANTLR lexes lazily, so earlier syntax errors win).
pub(super) fn lex(s: &str) -> (Vec<Tok>, Option<(String, usize)>) {
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut value_mode = false;
    let mut next_close = None;
    while i < b.len() {
        let (t, len) = if !value_mode {
            match b[i] {
                b'=' => {
                    value_mode = true;
                    (T::Equal, 1 + ws_len(b, i + 1))
                }
                b'~' => (T::Tilde, 1),
                b'+' => (T::Plus, 1),
                b'@' => (T::At, 1),
                b':' => (T::Colon, 1),
                b'/' => (T::Slash, 1),
                _ => {
                    let (len, t, read) = key_path(b, i);
                    if len == 0 {
                        let msg = format!("token recognition error at: '{}'", display_text(&lex_error_text(s, i, i + read)));
                        return (toks, Some((msg, i)));
                    }
                    (t, len)
                }
            }
        } else {
            match value_token(b, i, &mut next_close) {
                Some(x) => x,
                None => {
                    let fail = if matches!(b[i], b'\'' | b'"') { b.len() } else { i };
                    let msg = format!("token recognition error at: '{}'", display_text(&lex_error_text(s, i, fail)));
                    return (toks, Some((msg, i)));
                }
            }
        };
        toks.push(Tok { t, s: i, e: i + len });
        i += len;
    }
    toks.push(Tok { t: T::Eof, s: b.len(), e: b.len() });
    (toks, None)
}
