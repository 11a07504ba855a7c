#!/usr/bin/env python3
"""The oracle of `cytodl-build/src/config/override_parser/tests.rs`, tests `table_matches_hydra`
(`CASES`) and `error_messages_match_hydra` (`ERROR_CASES`); also `float_repr_like_python`.

Every override string of the two tables is parsed with hydra-core's own parser,
`OverridesParser.create().parse_override(s)`, and rendered exactly as the Rust test's `render()`
(the element is `override._value`, the parsed value with QuotedString kept):

    KIND|key_or_group|PKG|VALUE|STR
    KIND   CHANGE, ADD, FORCE_ADD, DEL (override.type)
    PKG    `-` when override.package is None, else `@` + package (`@` alone for `db@=x`)
    VALUE  NONE (no `=`: `~x`), SWEEP (override.is_sweep_override()), or the element:
           N (None), B(true|false), I(n), F(repr(float)), Q«text» (QuotedString),
           S«text» (str), [a,b], {K«key»:v,...}
    STR    override.get_value_element_as_str() with every QuotedString forced to single quotes
           (empty for NONE and SWEEP)

or `ERR` when parse_override raises. Dict keys are Python values in Hydra (`{1: a}` has the int
key 1, `{null: y}` the key None); K«...» shows a non-str key as Hydra's own
`_get_value_element_as_str` writes it (`null`, `1`, `1.5`, `True`/`False`), a str key raw.

For ERROR_CASES the oracle is `str(e)` of the HydraException parse_override raises; the Rust
test compares its message with `"Error parsing override '<s>'\\n" + that`, which is what
`parse_overrides([s])` (the path Hydra's command line takes) reports before its "See https://..."
line, except when the cause is an ANTLR RecognitionException: then Hydra prints `str(e)` alone.
Those rows are listed for information (`-v`).

`shuffle([...])` is random in Hydra; the oracle replaces `random.shuffle` with the identity (the
permutation the Rust test expects) and says so.

The tables are read from override_parser/tests.rs itself (scripts/oracles/rs_strings.py). On a mismatch
the comment written above that row in the table (if any, within 8 rows) is printed with it, since
several rows document a deliberate difference from Hydra.

Versions: hydra-core 1.3.2 (antlr4-python3-runtime 4.9.3), omegaconf 2.3.0, CPython 3.11.

    python3 -m venv /work/venv-hydra && /work/venv-hydra/bin/pip install hydra-core==1.3.2 omegaconf==2.3.0
    /work/venv-hydra/bin/python scripts/oracles/hydra_overrides.py [-v]

Exit status 1 on any mismatch.
"""
import math
import os
import random
import re
import sys

import hydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType, Quote, QuotedString
from hydra.errors import HydraException

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rs_strings import block, read_rs, str_pairs, tokenize  # noqa: E402

RS = "cytodl-build/src/config/override_parser/tests.rs"
VERBOSE = "-v" in sys.argv

random.shuffle = lambda lst, *a, **k: None  # Hydra's shuffle([...]) is random; see the docstring

KIND = {OverrideType.CHANGE: "CHANGE", OverrideType.ADD: "ADD",
        OverrideType.FORCE_ADD: "FORCE_ADD", OverrideType.DEL: "DEL"}


def render_key(k):
    if isinstance(k, str):
        return k
    return Override._get_value_element_as_str(k)


def render_el(v):
    if v is None:
        return "N"
    if isinstance(v, bool):
        return f"B({'true' if v else 'false'})"
    if isinstance(v, int):
        return f"I({v})"
    if isinstance(v, float):
        return f"F({v!r})"
    if isinstance(v, QuotedString):
        return f"Q«{v.text}»"
    if isinstance(v, str):
        return f"S«{v}»"
    if isinstance(v, list):
        return "[" + ",".join(render_el(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"K«{render_key(k)}»:{render_el(x)}" for k, x in v.items()) + "}"
    return f"<{type(v).__name__} inside an element>"


def single_quoted(v):
    if isinstance(v, QuotedString):
        return QuotedString(text=v.text, quote=Quote.single)
    if isinstance(v, list):
        return [single_quoted(x) for x in v]
    if isinstance(v, dict):
        return {k: single_quoted(x) for k, x in v.items()}
    return v


def render(parser, line):
    try:
        o = parser.parse_override(line)
    except HydraException:
        return "ERR"
    except Exception as e:  # noqa: BLE001 - would be a Hydra bug; keep it visible
        return f"ERR({type(e).__name__})"
    pkg = "-" if o.package is None else "@" + o.package
    if o.value_type is None:
        val, s = "NONE", ""
    elif o.is_sweep_override():
        val, s = "SWEEP", ""
    else:
        # o._value: the parsed element with QuotedString kept (o.value() turns them into str).
        val = render_el(o._value)
        try:
            s = Override._get_value_element_as_str(single_quoted(o._value))
        except Exception as e:  # noqa: BLE001 - a sweep nested in a list/dict cannot be written
            s = f"<get_value_element_as_str raises {type(e).__name__}>"
    return f"{KIND[o.type]}|{o.key_or_group}|{pkg}|{val}|{s}"


def table_rows(text):
    """(line, want, comment-above-or-None) for each row, the comment carried for 8 rows."""
    rows, last, age = [], None, 99
    for a, b, com in str_pairs(text):
        if com:
            last, age = com, 0
        rows.append((a, b, last if age <= 8 else None))
        age += 1
    return rows


def main():
    src = read_rs(RS)
    parser = OverridesParser.create()
    print(f"hydra_overrides oracle: hydra-core {hydra.__version__}, CPython {sys.version.split()[0]}; "
          f"tables read from {RS}")
    bad, n = [], 0

    # table_matches_hydra
    rows = table_rows(block(src, "const CASES", "["))
    for line, want, com in rows:
        got = render(parser, line)
        n += 1
        ok = got == want
        if not ok:
            bad.append(("table_matches_hydra", line, want, got, com))
        if VERBOSE or not ok:
            print(f"  {'OK ' if ok else 'BAD'} {line!r:34} {got}")
    print(f"table_matches_hydra: {len(rows)} rows")

    # error_messages_match_hydra
    rows = table_rows(block(src, "const ERROR_CASES", "["))
    bare = []
    for line, want, com in rows:
        n += 1
        try:
            o = parser.parse_override(line)
            got = f"<parsed: {render(parser, line)}>"
        except HydraException as e:
            got = str(e)
            try:
                parser.parse_overrides([line])
            except HydraException as e2:
                if not str(e2).startswith(f"Error parsing override '{line}'\n"):
                    bare.append((line, str(e2).split("\n")[0]))
        ok = got == want
        if not ok:
            bad.append(("error_messages_match_hydra", line, want, got, com))
        if VERBOSE or not ok:
            print(f"  {'OK ' if ok else 'BAD'} {line!r:34} {got!r}")
    print(f"error_messages_match_hydra: {len(rows)} rows")
    print(f"  {len(bare)} of them reach the command line (parse_overrides) without the "
          f"\"Error parsing override '<s>'\" prefix (ANTLR RecognitionException causes)")
    if VERBOSE:
        for line, first in bare:
            print(f"    {line!r:24} {first!r}")

    # float_repr_like_python: (f64, "repr") pairs.
    body = block(src, "fn float_repr_like_python()")
    toks = tokenize(body)
    consts = {"f64::NAN": math.nan, "f64::NEG_INFINITY": -math.inf, "f64::INFINITY": math.inf,
              "f64::MAX": sys.float_info.max}
    m_float = 0
    for k in range(len(toks) - 3):
        if toks[k].value != "(":
            continue
        j, sign = k + 1, 1.0
        if toks[j].value == "-":
            sign, j = -1.0, j + 1
        t = toks[j]
        if t.kind == "ident" and t.value in consts:
            f = sign * consts[t.value]
        elif t.kind == "num":
            f = sign * float(re.sub(r"f64$", "", t.value).replace("_", ""))
            if toks[j + 1].value == "+" and toks[j + 2].kind == "num":  # `(0.1 + 0.2, ...)`
                f = f + float(toks[j + 2].value)
                j += 2
        else:
            continue
        if toks[j + 1].value == "," and toks[j + 2].kind == "str" and toks[j + 3].value == ")":
            n += 1
            m_float += 1
            if repr(f) != toks[j + 2].value:
                bad.append(("float_repr_like_python", f, toks[j + 2].value, repr(f), None))
    print(f"float_repr_like_python: {m_float} values")

    print(f"\n{n - len(bad)}/{n} hard-coded values reproduced by hydra-core {hydra.__version__}")
    # A row whose difference the test documents (a comment above it) is a deliberate difference;
    # any other is a mismatch.
    undocumented = 0
    for test, line, want, got, com in bad:
        label = "DIFFERS (documented)" if com else "MISMATCH"
        undocumented += 0 if com else 1
        print(f"  {label} {test}: {line!r}\n      test  {want!r}\n      hydra {got!r}")
        if com:
            print(f"      (comment above the row: {com})")
    print(f"{len(bad) - undocumented} documented differences, {undocumented} mismatches")
    return 1 if undocumented else 0


if __name__ == "__main__":
    sys.exit(main())
