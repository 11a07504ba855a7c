#!/usr/bin/env python3
"""The oracle of `cytodl-build/src/config/yaml.rs`, tests `yaml11_scalars_as_omegaconf` (how a
plain YAML 1.1 scalar is typed) and `spec_vector_21` (a whole document).

Each scalar `s` of the test is loaded the way OmegaConf loads a config file,
`OmegaConf.create("v: " + s + "\\n")` (OmegaConf's own `get_yaml_loader()`: PyYAML's SafeLoader
with OmegaConf's float resolver, no timestamps), and the node's type and value are printed next
to what the test expects (`Value::Int/Float/Str/Bool/Null/Missing`). Ints, floats and strings
are compared exactly (floats bit for bit; nan with nan).

The scalars and expectations are read from yaml.rs itself (scripts/oracles/rs_strings.py). The
`("g", 0.0)` entry of the test's float table is filtered out by the test (`.filter(|(s, _)| *s !=
"g")`), so it is shown but not compared.

Versions: omegaconf 2.3.0, PyYAML 6.0.x (the one omegaconf 2.3.0 pulls in), CPython 3.11.

    python3 -m venv /work/venv-hydra && /work/venv-hydra/bin/pip install hydra-core==1.3.2 omegaconf==2.3.0
    /work/venv-hydra/bin/python scripts/oracles/omegaconf_yaml.py [-v]

Exit status 1 on any mismatch.
"""
import math
import os
import re
import sys

import omegaconf
import yaml
from omegaconf import OmegaConf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rs_strings import block, read_rs, str_array, tokenize  # noqa: E402

RS = "cytodl-build/src/config/yaml.rs"
VERBOSE = "-v" in sys.argv


def typed(v, missing=False):
    """(kind, value) in the test's vocabulary."""
    if missing:
        return ("Missing", v)
    if v is None:
        return ("Null", None)
    if isinstance(v, bool):
        return ("Bool", v)
    if isinstance(v, int):
        return ("Int", v)
    if isinstance(v, float):
        return ("Float", v)
    if isinstance(v, str):
        return ("Str", v)
    return (type(v).__name__, v)


def load_scalar(s):
    cfg = OmegaConf.create(f"v: {s}\n")
    node = cfg._get_node("v")
    return typed(node._value(), OmegaConf.is_missing(cfg, "v"))


def same(a, b):
    if a[0] != b[0]:
        return False
    x, y = a[1], b[1]
    if isinstance(x, float) and isinstance(y, float):
        return (math.isnan(x) and math.isnan(y)) or (x == y and math.copysign(1, x) == math.copysign(1, y))
    return x == y


def rust_number(toks, k):
    """`-`? number at toks[k:] -> (python number, next k)."""
    sign = 1
    if toks[k].value == "-":
        sign, k = -1, k + 1
    t = toks[k].value.replace("_", "")
    t = re.sub(r"(f32|f64|i32|i64|u64|usize)$", "", t)
    v = float(t) if re.search(r"[.eE]", t) else int(t)
    return sign * v, k + 1


def str_num_pairs(text, anchor):
    """`[(STR, NUM), ...]` after `anchor` -> [(str, number)]."""
    arr = block(text, anchor, "[")
    toks = tokenize(arr)
    out = []
    for k in range(len(toks) - 3):
        if toks[k].value == "(" and toks[k + 1].kind == "str" and toks[k + 2].value == ",":
            v, j = rust_number(toks, k + 3)
            out.append((toks[k + 1].value, v))
    return out


class Report:
    def __init__(self):
        self.n = 0
        self.bad = []

    def cmp(self, test, s, want, got, note=""):
        self.n += 1
        ok = same(want, got)
        if not ok:
            self.bad.append(f"{test}: {s!r}: test {want[0]}({want[1]!r}), OmegaConf {got[0]}({got[1]!r})")
        if VERBOSE or not ok:
            print(f"  {'OK ' if ok else 'BAD'} {s!r:14} -> {got[0]}({got[1]!r}){note}")


def main():
    src = read_rs(RS)
    print(f"omegaconf_yaml oracle: omegaconf {omegaconf.__version__}, PyYAML {yaml.__version__}, "
          f"CPython {sys.version.split()[0]}; scalars read from {RS}")
    rep = Report()

    body = block(src, "fn yaml11_scalars_as_omegaconf()")
    for s, i in str_num_pairs(body, "let ints"):
        rep.cmp("ints", s, ("Int", i), load_scalar(s))
    filt = re.search(r'floats\.iter\(\)\.filter\(\|\(s, _\)\| \*s != "([^"]*)"\)', body)
    skipped = filt.group(1) if filt else None
    for s, f in str_num_pairs(body, "let floats"):
        got = load_scalar(s)
        if s == skipped:
            print(f"  --  {s!r:14} -> {got[0]}({got[1]!r})  (filtered out by the test: not asserted)")
            continue
        rep.cmp("floats", s, ("Float", float(f)), got)

    # `for s in [...] { assert_eq!(val(s), <expected>, ...) }`
    for m in re.finditer(r"for s in \[", body):
        arr = str_array(body[m.start():], "for s in")
        tail = body[m.start():][body[m.start():].index("]"):]
        exp = re.search(r"assert_eq!\(val\(s\),\s*(Value::[A-Za-z]+(?:\([^)]*\))?)", tail).group(1)
        for s in arr:
            if exp.startswith("Value::Str"):
                want = ("Str", s)
            elif exp == "Value::Bool(true)":
                want = ("Bool", True)
            elif exp == "Value::Bool(false)":
                want = ("Bool", False)
            elif exp == "Value::Null":
                want = ("Null", None)
            else:
                raise ValueError(exp)
            rep.cmp("strs/bools/nulls", s, want, load_scalar(s))

    consts = {"f64::INFINITY": math.inf, "f64::NEG_INFINITY": -math.inf}
    for m in re.finditer(r'matches!\(val\("([^"]*)"\), Value::Float\(f\) if (f == (f64::\w+)|f\.is_nan\(\))\)', body):
        want = ("Float", math.nan if m.group(2) == "f.is_nan()" else consts[m.group(3)])
        rep.cmp("special floats", m.group(1), want, load_scalar(m.group(1)))
    for m in re.finditer(r'assert_eq!\(val\("([^"]*)"\), Value::Missing\)', body):
        rep.cmp("missing", m.group(1), ("Missing", "???"), load_scalar(m.group(1)))
    n_scalar = rep.n
    print(f"yaml11_scalars_as_omegaconf: {n_scalar} scalars compared")

    # spec_vector_21: a whole document.
    body = block(src, "fn spec_vector_21()")
    doc = [t.value for t in tokenize(body[body.index("load_config("):]) if t.kind == "str"][0]
    cfg = OmegaConf.create(doc)
    for m in re.finditer(r'assert_eq!\(m\["(\w+)"\]\.value, Value::(\w+)\((.*?)\)\);', body):
        key, kind, lit = m.groups()
        if kind == "Str":
            want = ("Str", [t.value for t in tokenize(lit) if t.kind == "str"][0])
        elif kind == "Int":
            want = ("Int", int(lit.replace("_", "")))
        elif kind == "Float":
            want = ("Float", float(lit.replace("_", "")))
        else:
            raise ValueError(kind)
        rep.cmp("spec_vector_21", f"{key}", want, typed(cfg._get_node(key)._value()))
    print(f"spec_vector_21: {rep.n - n_scalar} keys compared")

    print(f"\n{rep.n - len(rep.bad)}/{rep.n} hard-coded values reproduced by OmegaConf {omegaconf.__version__}")
    for b in rep.bad:
        print("  MISMATCH", b)
    return 1 if rep.bad else 0


if __name__ == "__main__":
    sys.exit(main())
