#!/usr/bin/env python3
"""The oracle of the unit tests of `cytodl-build/src/interp/eval.rs` (`mod tests`):

- `cyto_dl_examples`, `arithmetic`, `comparisons_and_logic`, `containers_and_subscripts`,
  `strings`, `builtins`: `r(E)` must equal `repr(eval(E))`, i.e. what
  `python3 -c 'print(repr(eval(E)))'` prints;
- `errors`: the first table must equal `"ERR " + str(exc)` for the exception `eval(E)` raises;
  every expression of the `for bad in [...]` list must be an error in Rust. Python rejects most
  of them too; the rest are valid Python that the Rust evaluator refuses by design (no names,
  attributes, calls beyond a few pure builtins, i64 ints, bounded sizes; see the module doc);
  they are listed as such, not as mismatches;
- `float_formatting`: `py_str(Float(f))` must equal `str(f)`;
- `bounded_and_no_panic`: shows what CPython does with the deep / long / i64-edge inputs (the
  Rust test only asserts "is an error" / "does not panic", except `1+1+...+1` (50000 terms) ==
  `50000`).

The expressions and expected strings are read from eval.rs itself (scripts/oracles/rs_strings.py),
so the oracle follows the test as it is edited.

Versions: CPython 3.11 (checked with 3.11.7). The exception texts are version dependent; with
3.11 every hard-coded message is reproduced. Known differences elsewhere: 3.10 says
"integer division or modulo by zero" for `1 % 0`; 3.12+ says "max() iterable argument is empty";
3.13+ says "float modulo by zero". Needs only the standard library.

Run (exit status 1 on any mismatch):

    /work/venv-hydra/bin/python scripts/oracles/python_eval.py          # summary + mismatches
    /work/venv-hydra/bin/python scripts/oracles/python_eval.py -v       # every case

Expressions that could have effects or use much memory (`open('f')`, `'a' * 10**9`, the 100000-deep
nestings) are evaluated in a child interpreter, in an empty temporary directory, with a 1 GiB
address-space limit and a timeout.
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rs_strings import block, read_rs, str_array, str_pairs, tokenize  # noqa: E402

RS = "cytodl-build/src/interp/eval.rs"
VERBOSE = "-v" in sys.argv


def py_r(expr):
    """`repr(eval(expr))`, or `ERR <message>` as the Rust test's `r()` renders errors, plus the
    exception class for information."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # `None[0]`, `1 is not None`
            return repr(eval(expr, {})), None
    except Exception as e:  # noqa: BLE001 - the message is the point
        return f"ERR {e}", type(e).__name__


_CHILD = r"""
import json, resource, sys, warnings
warnings.simplefilter("ignore", SyntaxWarning)
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
sys.setrecursionlimit(1000)
expr = sys.stdin.read()
try:
    code = compile(expr, "<expr>", "eval")
except BaseException as e:
    out = {"stage": "compile", "cls": type(e).__name__, "msg": str(e)[:200]}
else:
    try:
        v = eval(code, {})
        r = repr(v)
        out = {"stage": "value", "repr": r if len(r) <= 80 else r[:77] + "...", "type": type(v).__name__}
    except BaseException as e:
        out = {"stage": "eval", "cls": type(e).__name__, "msg": str(e)[:200]}
sys.stdout.flush()
print("\n@@RESULT " + json.dumps(out))
"""


def py_child(expr, timeout=60):
    """Evaluate in a sandboxed child interpreter; a dict with stage compile/eval (an exception:
    cls, msg), value (repr, type), or crash/timeout."""
    with tempfile.TemporaryDirectory() as d:
        try:
            p = subprocess.run([sys.executable, "-c", _CHILD], input=expr, capture_output=True,
                               text=True, cwd=d, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"stage": "timeout", "after_s": timeout}
    m = re.search(r"^@@RESULT (.*)$", p.stdout, re.M)
    if not m:
        return {"stage": "crash", "rc": p.returncode, "stderr": p.stderr.strip()[-200:]}
    return json.loads(m.group(1))


def describe(res):
    st = res["stage"]
    if st == "value":
        return f"returns {res['repr']} ({res['type']})"
    if st in ("compile", "eval"):
        return f"raises {res['cls']} at {st}: {res['msg']}"
    if st == "timeout":
        return f"does not finish within {res['after_s']} s"
    return f"{st} {res}"


class Report:
    def __init__(self):
        self.n = 0
        self.bad = []
        self.notes = []

    def cmp(self, test, inp, want, got, extra=""):
        self.n += 1
        ok = want == got
        if not ok:
            self.bad.append(f"{test}: {inp!r}\n      test   {want!r}\n      python {got!r}{extra}")
        if VERBOSE or not ok:
            print(f"  {'OK ' if ok else 'BAD'} {test:26} {inp!r:40.40} -> {got!r}{extra}")


def rust_float(toks, k):
    """A float written at toks[k:] as the tests do (`-`? number | f64::CONST); (value, next k)."""
    sign = 1.0
    if toks[k].value == "-":
        sign, k = -1.0, k + 1
    t = toks[k]
    consts = {"f64::INFINITY": math.inf, "f64::NEG_INFINITY": -math.inf, "f64::NAN": math.nan,
              "f64::MAX": sys.float_info.max}
    if t.kind == "ident" and t.value in consts:
        return sign * consts[t.value], k + 1
    if t.kind == "num":
        return sign * float(re.sub(r"(f32|f64)$", "", t.value).replace("_", "")), k + 1
    raise ValueError(f"not a float literal: {t}")


def r_calls(text):
    """Every `assert_eq!(r(STR), STR)` in `text`."""
    toks = tokenize(text)
    out = []
    for k in range(len(toks) - 5):
        a = toks[k : k + 6]
        if (a[0].kind == "ident" and a[0].value == "r" and a[1].value == "(" and a[2].kind == "str"
                and a[3].value == ")" and a[4].value == "," and a[5].kind == "str"):
            out.append((a[2].value, a[5].value))
    return out


def pyvalue_to_python(s):
    """`PyValue::Str("x".into())`, `PyValue::Bool(true)`, `PyValue::Tuple(vec![PyValue::Int(1)])`
    -> the Python value (only these shapes)."""
    s = re.sub(r'PyValue::Str\(("(?:[^"\\]|\\.)*")\.into\(\)\)', r"\1", s)
    s = re.sub(r"PyValue::Bool\((true|false)\)", lambda m: m.group(1).capitalize(), s)
    s = re.sub(r"PyValue::Int\((-?\d+)\)", r"\1", s)
    s = re.sub(r"PyValue::Float\(([^)]*)\)", r"float(\1)", s)
    s = re.sub(r"PyValue::None\b", "None", s)
    s = re.sub(r"PyValue::Tuple\(vec!\[(.*)\]\)", r"(\1,)", s)
    s = re.sub(r"PyValue::List\(vec!\[(.*)\]\)", r"[\1]", s)
    if "PyValue" in s or "vec!" in s:
        raise ValueError(f"cannot convert {s}")
    return eval(s, {})


def main():
    src = read_rs(RS)
    tests_mod = src[src.index("#[cfg(test)]"):]
    rep = Report()
    print(f"python_eval oracle: CPython {sys.version.split()[0]}, expressions read from {RS}")
    if sys.version_info[:2] != (3, 11):
        print("  WARNING: the hard-coded messages are CPython 3.11's; expect message mismatches")

    # Value / error tables.
    for test in ["cyto_dl_examples", "arithmetic", "errors", "comparisons_and_logic",
                 "containers_and_subscripts", "strings", "builtins"]:
        body = block(tests_mod, f"fn {test}()")
        cases = [(a, b) for a, b, _ in str_pairs(body)] + r_calls(body)
        n0 = rep.n
        for expr, want in cases:
            got, cls = py_r(expr)
            rep.cmp(test, expr, want, got, f"   [{cls}]" if cls and VERBOSE else "")
        print(f"{test}: {rep.n - n0} cases")

    # errors: the `for bad in [...]` list (Rust asserts an error).
    body = block(tests_mod, "fn errors()")
    bad_list = str_array(body, "for bad in")
    also_py, subset = [], []
    for expr in bad_list:
        res = py_child(expr)
        (subset if res["stage"] == "value" else also_py).append((expr, describe(res)))
    print(f"errors/bad list: {len(bad_list)} expressions; Python also rejects {len(also_py)}, "
          f"accepts {len(subset)} (refused by the Rust subset by design):")
    for expr, d in (also_py if VERBOSE else []) + subset:
        print(f"    {expr!r:28} python {d}")

    # float_formatting: (f64, "str") pairs, then r(...) calls and py_str(PyValue) asserts.
    body = block(tests_mod, "fn float_formatting()")
    toks = tokenize(body)
    n0 = rep.n
    for k in range(len(toks) - 4):
        if toks[k].value != "(" or toks[k + 1].kind not in ("num", "ident", "punct"):
            continue
        try:
            f, j = rust_float(toks, k + 1)
        except (ValueError, IndexError):
            continue
        if toks[j].value == "," and toks[j + 1].kind == "str" and toks[j + 2].value == ")":
            rep.cmp("float_formatting", f, toks[j + 1].value, str(f))
    for expr, want in r_calls(body):
        got, _ = py_r(expr)
        rep.cmp("float_formatting", expr, want, got)
    for m in re.finditer(r'assert_eq!\(py_str\(&(PyValue::.*?)\),\s*("(?:[^"\\]|\\.)*")\);', body):
        if "PyValue::Float(f)" in m.group(1):
            continue
        v = pyvalue_to_python(m.group(1))
        want = [t.value for t in tokenize(m.group(2))][0]
        rep.cmp("float_formatting", m.group(1), want, str(v))
    print(f"float_formatting: {rep.n - n0} cases")

    # bounded_and_no_panic: the inputs rebuilt as the test's format!/repeat/join build them.
    print("bounded_and_no_panic (Rust: error / no panic; shown: what CPython does):")
    deep = [
        ("'(' * 100000 + '1' + ')' * 100000", "(" * 100_000 + "1" + ")" * 100_000),
        ("'-' * 100000 + '1'", "-" * 100_000 + "1"),
        ("'not ' * 100000 + '1'", "not " * 100_000 + "1"),
        ("'[' * 100000", "[" * 100_000),
        ("'2**' * 100000 + '1'", "2**" * 100_000 + "1"),
        ("'[0]' + '[0]' * 10", "[0]" + "[0]" * 10),
    ]
    for label, expr in deep:
        print(f"    {label:36} python {describe(py_child(expr))}")
    body = block(tests_mod, "fn bounded_and_no_panic()")
    long_chain = "+".join(["1"] * 50_000)
    res = py_child(long_chain)
    got = res.get("repr") if res["stage"] == "value" else describe(res)
    print(f"    {'+'.join(['1'] * 3)}...+1 (50000 terms): python {describe(res)}")
    m = re.search(r'let long = vec!\["1"; 50_000\]\.join\("\+"\);\s*assert_eq!\(r\(&long\), "(\d+)"\);', body)
    if m:
        rep.n += 1
        if got != m.group(1):
            rep.notes.append(f"bounded_and_no_panic: '1+1+...+1' (50000 terms): test {m.group(1)!r}, "
                             f"CPython {got!r} (the Rust evaluator is deliberately iterative here)")
    for expr in str_array(body, "for e in"):
        print(f"    {expr:52} python {describe(py_child(expr, timeout=10))}")

    print(f"\n{rep.n - len(rep.bad)}/{rep.n} hard-coded values reproduced by CPython {sys.version.split()[0]}")
    for b in rep.bad:
        print("  MISMATCH", b)
    for n in rep.notes:
        print("  NOTE", n)
    return 1 if rep.bad else 0


if __name__ == "__main__":
    sys.exit(main())
