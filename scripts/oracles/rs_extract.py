"""Read the expected numbers a Rust test hard-codes, so an oracle script can compare itself with
them (`--check`). Shared by the `*_torch.py` / `*_monai.py` / `*_numpy.py` oracles in this folder.

Only the literal forms the tests use are understood: `[1.0, -2e-3, 0.5f32, ...]` array literals
(optionally nested one level), `const NAME: [T; N] = [...];` and `const NAME: T = v;`.
"""
import math
import os
import re

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

_NUM = re.compile(r"-?(?:\d[\d_]*\.?\d*(?:e[-+]?\d+)?|\.\d+)(?:f32|f64|i64|u8|usize)?")


def read_rs(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return f.read()


def numbers(s):
    """Every numeric literal in `s`, as floats (Rust suffixes and `_` dropped)."""
    out = []
    for tok in _NUM.findall(s):
        tok = re.sub(r"(f32|f64|i64|u8|usize)$", "", tok).replace("_", "")
        out.append(float(tok))
    return out


def const(text, name):
    """`const NAME: ... = <value>;` -> list of numbers (a scalar const gives a 1-list)."""
    m = re.search(r"^[ \t]*(?:pub\s+)?const\s+" + re.escape(name) + r"\s*:[^=]*=\s*([^;]*);", text, re.S | re.M)
    if not m:
        raise KeyError(name)
    return numbers(m.group(1))


def after(text, anchor, count=1, start=0):
    """The first `count` bracketed `[...]` literals after the first occurrence of `anchor`
    (at or after `start`), each as a list of numbers; nested brackets are flattened."""
    i = text.index(anchor, start)
    out = []
    j = i
    while len(out) < count:
        j = text.index("[", j)
        depth, k = 0, j
        while True:
            if text[k] == "[":
                depth += 1
            elif text[k] == "]":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        if ";" not in text[j:k]:  # `[f64; 6]` is a type, not a literal
            out.append(numbers(text[j + 1 : k]))
        j = k + 1
    return out


def before(text, anchor, start=0):
    """The bracketed literal that ends closest before `anchor` (searching from `start`)."""
    i = text.index(anchor, start)
    k = text.rindex("]", 0, i)
    depth, j = 0, k
    while True:
        if text[j] == "]":
            depth += 1
        elif text[j] == "[":
            depth -= 1
            if depth == 0:
                break
        j -= 1
    return numbers(text[j + 1 : k])


class Checker:
    """Collects comparisons; `report()` prints a summary and returns the process exit code."""

    def __init__(self):
        self.bad = []
        self.n = 0

    def close(self, what, got, want, tol, mode="rel1"):
        """mode rel1: |g - w| <= tol * (1 + |w|) (the tests' `assert_close`);
        relw: |g - w| <= tol * |w|; abs: |g - w| <= tol; exact: g == w."""
        got = [float(g) for g in got]
        want = [float(w) for w in want]
        self.n += 1
        if len(got) != len(want):
            self.bad.append(f"{what}: length {len(got)} (oracle) vs {len(want)} (test)")
            return
        worst = None
        for i, (g, w) in enumerate(zip(got, want)):
            if mode == "exact":
                ok = g == w or (math.isnan(g) and math.isnan(w))
            else:
                bound = {"rel1": tol * (1 + abs(w)), "relw": tol * abs(w), "abs": tol}[mode]
                ok = abs(g - w) <= bound
            if not ok and worst is None:
                worst = (i, g, w)
        if worst:
            i, g, w = worst
            self.bad.append(f"{what}[{i}]: oracle {g!r} vs test {w!r} (mode {mode}, tol {tol})")
        maxd = max((abs(g - w) for g, w in zip(got, want)), default=0.0)
        print(f"  check {'OK ' if not worst else 'BAD'} {what}: {len(got)} values, max |diff| {maxd:.3g}")

    def report(self):
        print(f"\n{self.n - len(self.bad)}/{self.n} comparisons agree with the Rust test")
        for b in self.bad:
            print("  MISMATCH", b)
        return 1 if self.bad else 0


def let_before(text, anchor, var="want"):
    """The literal of the last `let <var> ... = [...]` before `anchor`."""
    i = text.index(anchor)
    j = text.rindex(f"let {var}", 0, i)
    return after(text, f"let {var}", 1, j)[0]
