"""Read the string tables a Rust test hard-codes, so that an oracle script can compare itself with
them. Shared by `python_eval.py`, `omegaconf_yaml.py` and `hydra_overrides.py` in this folder.

A small tokenizer for Rust source: string literals (`"..."` with Rust escapes, raw `r#"..."#`),
char literals, numbers, identifiers (`f64::NAN` is one token), punctuation; `//` and `/* */`
comments are skipped but remembered, so a table row can show the comment written above it.
Only what the test modules use is understood; anything else raises rather than guessing.
"""
import os
import re

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def read_rs(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


class Tok:
    __slots__ = ("kind", "value", "pos", "comment")

    def __init__(self, kind, value, pos, comment=None):
        self.kind = kind  # "str", "char", "num", "ident", "punct"
        self.value = value
        self.pos = pos
        self.comment = comment  # text of the comment(s) directly before this token, if any

    def __repr__(self):
        return f"Tok({self.kind}, {self.value!r})"


_SIMPLE_ESC = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "0": "\0", "'": "'", '"': '"'}
_NUM = re.compile(r"\d[\d_]*(?:\.(?!\.)[\d_]*)?(?:[eE][+-]?[\d_]+)?(?:f32|f64|i32|i64|u8|u32|u64|usize|isize)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*")


def _unescape(body, pos):
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e in _SIMPLE_ESC:
            out.append(_SIMPLE_ESC[e])
            i += 2
        elif e == "x":
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        elif e == "u":
            j = body.index("}", i)
            out.append(chr(int(body[i + 3 : j], 16)))
            i = j + 1
        elif e == "\n":  # line continuation: skip the newline and leading whitespace
            i += 2
            while i < len(body) and body[i] in " \t\n\r":
                i += 1
        else:
            raise ValueError(f"unknown Rust escape \\{e} at byte {pos + i}")
    return "".join(out)


def tokenize(src):
    toks, i, n = [], 0, len(src)
    pending = []
    while i < n:
        c = src[i]
        if c.isspace():
            i += 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            pending.append(src[i + 2 : j].strip())
            i = j
        elif src.startswith("/*", i):
            j = src.index("*/", i)
            pending.append(src[i + 2 : j].strip())
            i = j + 2
        else:
            com = " ".join(pending) if pending else None
            pending = []
            m = re.match(r'(b?)r(#*)"', src[i:])
            if m:
                hashes = m.group(2)
                start = i + m.end()
                end = src.index('"' + hashes, start)
                toks.append(Tok("str", src[start:end], i, com))
                i = end + 1 + len(hashes)
                continue
            if c == '"' or src.startswith('b"', i):
                start = i + (2 if c == "b" else 1)
                j = start
                while src[j] != '"':
                    j += 2 if src[j] == "\\" else 1
                toks.append(Tok("str", _unescape(src[start:j], start), i, com))
                i = j + 1
                continue
            m = re.match(r"'(\\.[^']*|[^\\'])'", src[i:])
            if m:
                toks.append(Tok("char", _unescape(m.group(1), i + 1), i, com))
                i += m.end()
                continue
            m = _NUM.match(src, i)
            if m:
                toks.append(Tok("num", m.group(0), i, com))
                i = m.end()
                continue
            m = _IDENT.match(src, i)
            if m:
                toks.append(Tok("ident", m.group(0), i, com))
                i = m.end()
                continue
            if c == "'":  # a lifetime
                m = _IDENT.match(src, i + 1)
                toks.append(Tok("ident", "'" + m.group(0), i, com))
                i = m.end()
                continue
            toks.append(Tok("punct", c, i, com))
            i += 1
    return toks


def block(src, header, open_="{"):
    """The text of the bracketed block (opening with `open_`) that first follows `header`,
    e.g. `block(src, "fn arithmetic()")` or `block(src, "const CASES", "[")`. Brackets inside
    strings and comments do not count."""
    i = src.index(header)
    if header.startswith(("const ", "static ", "let ")):
        i = src.index("=", i)  # skip the type annotation
    toks = tokenize(src[i:])
    depth, start = 0, None
    for t in toks:
        if start is None:
            if t.kind == "punct" and t.value == open_:
                start = t.pos
            else:
                continue
        if t.kind == "punct" and t.value in "{[(":
            depth += 1
        elif t.kind == "punct" and t.value in "}])":
            depth -= 1
            if depth == 0:
                return src[i + start : i + t.pos + 1]
    raise ValueError(f"unterminated block after {header!r}")


def str_pairs(text):
    """Every `(STR, STR)` tuple (trailing comma allowed) in `text`, as (a, b, comment)."""
    toks = tokenize(text)
    out = []
    for k in range(len(toks) - 4):
        a, b, c, d, e = toks[k : k + 5]
        if not (a.kind == "punct" and a.value == "(" and b.kind == "str" and c.value == ","
                and d.kind == "str"):
            continue
        if e.value == ")" or (e.value == "," and k + 5 < len(toks) and toks[k + 5].value == ")"):
            out.append((b.value, d.value, a.comment))
    return out


def str_array(text, anchor):
    """The string literals of the `[...]` that follows `anchor` in `text`."""
    i = text.index(anchor)
    j = text.index("[", i)
    toks = tokenize(text[j:])
    depth, out = 0, []
    for t in toks:
        if t.kind == "punct" and t.value in "[(":
            depth += 1
        elif t.kind == "punct" and t.value in "])":
            depth -= 1
            if depth == 0:
                return out
        elif t.kind == "str" and depth == 1:
            out.append(t.value)
    raise ValueError(f"unterminated array after {anchor!r}")
