#!/usr/bin/env python3
"""The oracle of `cytodl-runtime/tests/losses.rs`:

- `bce_with_logits_by_hand_and_reference` (torch.nn.BCEWithLogitsLoss, with pos_weight=[3.0]),
- `dice_vs_monai` (monai.losses.DiceLoss: sigmoid / batch / squared_pred / jaccard / reductions,
  softmax with to_onehot_y and include_background=False),
- `dice_ce_vs_monai` (monai.losses.DiceCELoss, torch CrossEntropy with index and one-hot targets),
- `masked_dice_and_tversky_vs_monai` (monai.losses.MaskedDiceLoss, monai.losses.TverskyLoss),
- `focal_vs_monai` (monai.losses.FocalLoss: sigmoid with gamma / alpha / sum, softmax with
  to_onehot_y, alpha, include_background=False and class weights),
- `gradients_flow_and_match_torch` (float32 autograd of DiceCE(sigmoid), DiceCE(softmax),
  MaskedDice w.r.t. the prediction).

torch 2.5.1, MONAI 1.5.2. Loss values are computed in float64 (inputs built in float64 from the
formulas, which are exact in float32 too), gradients in float32, as the test says. Inputs:

    P1[i] = ((7 i) mod 11 - 5) / 3, shape [2, 1, 1, 2, 3]; T1[i] = 1 if (3 i) mod 5 < 2 else 0;
    M1[i] = 0 if i mod 4 == 0 else 1; P3 = the P formula with 24 values, shape [2, 3, 1, 2, 2];
    TI[i] = (5 i + 1) mod 3 (class indices), shape [2, 1, 1, 2, 2].

Note the Rust test builds P1/P3 as float32 (`x as f32`), so its inputs are the float32-rounded
thirds; the float64 references differ from float32-input ones by ~1e-9, far inside its 2e-6.

Run (`--check` compares with the literals in losses.rs at the test's tolerances):

    /work/venv-torch/bin/python scripts/oracles/losses_monai.py [--check]
"""
import os
import sys
import warnings

import monai
import torch
from monai.losses import DiceCELoss, DiceLoss, FocalLoss, MaskedDiceLoss, TverskyLoss

sys.path.insert(0, os.path.dirname(__file__))
from rs_extract import Checker, let_before, numbers, read_rs  # noqa: E402


def gen(n):
    return [((7 * i) % 11 - 5) / 3 for i in range(n)]


def inputs(dtype):
    t = lambda v, s: torch.tensor(v, dtype=dtype).reshape(s)  # noqa: E731
    p1 = t(gen(12), (2, 1, 1, 2, 3))
    t1 = t([1.0 if (3 * i) % 5 < 2 else 0.0 for i in range(12)], (2, 1, 1, 2, 3))
    m1 = t([0.0 if i % 4 == 0 else 1.0 for i in range(12)], (2, 1, 1, 2, 3))
    p3 = t(gen(24), (2, 3, 1, 2, 2))
    ti = t([float((5 * i + 1) % 3) for i in range(8)], (2, 1, 1, 2, 2))
    onehot = torch.nn.functional.one_hot(ti[:, 0].long(), 3).permute(0, 4, 1, 2, 3).to(dtype)
    return p1, t1, m1, p3, ti, onehot


def flat(x):
    return [float(v) for v in x.detach().flatten()]


def values():
    p1, t1, m1, p3, ti, onehot = inputs(torch.float64)
    r = {}
    # bce_with_logits_by_hand_and_reference
    r["bce ref"] = flat(torch.nn.BCEWithLogitsLoss()(p1, t1))
    r["bce pw ref"] = flat(torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0], dtype=torch.float64))(p1, t1))
    x = torch.tensor([0.0, 2.0, -30.0, 30.0], dtype=torch.float64)
    t = torch.tensor([1.0, 0.0, 1.0, 0.5], dtype=torch.float64)
    r["bce none (large |x| stays finite)"] = flat(torch.nn.BCEWithLogitsLoss(reduction="none")(x, t))
    r["bce pos_weight"] = flat(
        torch.nn.BCEWithLogitsLoss(reduction="none", pos_weight=torch.tensor([3.0], dtype=torch.float64))(x, t)
    )
    # dice_vs_monai
    r["sigmoid"] = flat(DiceLoss(sigmoid=True)(p1, t1))
    r["sigmoid none"] = flat(DiceLoss(sigmoid=True, reduction="none")(p1, t1))
    r["batch"] = flat(DiceLoss(sigmoid=True, batch=True)(p1, t1))
    r["squared"] = flat(DiceLoss(sigmoid=True, squared_pred=True)(p1, t1))
    r["jaccard"] = flat(DiceLoss(sigmoid=True, jaccard=True)(p1, t1))
    r["sum"] = flat(DiceLoss(sigmoid=True, reduction="sum")(p1, t1))
    r["no activation"] = flat(DiceLoss()(torch.sigmoid(p1), t1))
    r["softmax onehot"] = flat(DiceLoss(softmax=True, to_onehot_y=True)(p3, ti))
    r["softmax no background"] = flat(DiceLoss(softmax=True, to_onehot_y=True, include_background=False)(p3, ti))
    r["softmax no background none ([N, C-1] flattened)"] = flat(
        DiceLoss(softmax=True, to_onehot_y=True, include_background=False, reduction="none")(p3, ti)
    )
    # dice_ce_vs_monai
    r["dicece sigmoid"] = flat(DiceCELoss(sigmoid=True)(p1, t1))
    r["lambdas, sum"] = flat(DiceCELoss(sigmoid=True, reduction="sum", lambda_dice=0.3, lambda_ce=2.0)(p1, t1))
    r["softmax index target"] = flat(DiceCELoss(softmax=True, to_onehot_y=True)(p3, ti))
    r["ce"] = flat(torch.nn.CrossEntropyLoss()(p3, ti[:, 0].long()))
    r["softmax one-hot target"] = flat(DiceCELoss(softmax=True)(p3, onehot))
    # masked_dice_and_tversky_vs_monai
    r["masked dice"] = flat(MaskedDiceLoss(sigmoid=True)(p1, t1, m1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no mask value specified for the MaskedLoss"
        r["masked dice, no mask"] = flat(MaskedDiceLoss(sigmoid=True)(p1, t1))
    r["tversky"] = flat(TverskyLoss(sigmoid=True)(p1, t1))
    r["tversky a.3 b.7"] = flat(TverskyLoss(sigmoid=True, alpha=0.3, beta=0.7)(p1, t1))
    r["tversky softmax"] = flat(
        TverskyLoss(softmax=True, to_onehot_y=True, include_background=False, alpha=0.7, beta=0.3)(p3, ti)
    )
    # focal_vs_monai
    r["focal sigmoid"] = flat(FocalLoss()(p1, t1))
    r["focal gamma 0 (= bce)"] = flat(FocalLoss(gamma=0.0)(p1, t1))
    r["focal alpha .25, sum"] = flat(FocalLoss(alpha=0.25, reduction="sum")(p1, t1))
    r["focal sigmoid weights"] = flat(FocalLoss(gamma=1.5, weight=[1.0, 2.0, 0.5])(p3, onehot))
    r["focal softmax"] = flat(FocalLoss(use_softmax=True, to_onehot_y=True)(p3, ti))
    r["focal softmax alpha"] = flat(FocalLoss(use_softmax=True, to_onehot_y=True, alpha=0.75)(p3, ti))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "`include_background=False`, `alpha` ignored when using softmax."
        r["focal softmax no background, weight, sum"] = flat(
            FocalLoss(use_softmax=True, to_onehot_y=True, include_background=False, alpha=0.75, weight=2.0, reduction="sum")(p3, ti)
        )
    return r


def gradients():
    p1, t1, m1, p3, ti, _ = inputs(torch.float32)
    r = {}

    def grad(loss, p, *rest):
        p = p.clone().requires_grad_(True)
        loss(p, *rest).backward()
        return flat(p.grad)

    r["d DiceCE(sigmoid) / d pred"] = grad(DiceCELoss(sigmoid=True), p1, t1)
    r["d DiceCE(softmax) / d pred"] = grad(DiceCELoss(softmax=True, to_onehot_y=True), p3, ti)
    r["d MaskedDice / d pred (zero where masked)"] = grad(MaskedDiceLoss(sigmoid=True), p1, t1, m1)
    r["d Focal(alpha .25) / d pred"] = grad(FocalLoss(alpha=0.25), p1, t1)
    r["d Focal(softmax) / d pred"] = grad(FocalLoss(use_softmax=True, to_onehot_y=True), p3, ti)
    # The loop of the test only asks for non-zero, finite gradients; shown for completeness.
    r["(finite) mse mean"] = grad(torch.nn.MSELoss(), p1, t1)
    r["(finite) l1 sum"] = grad(torch.nn.L1Loss(reduction="sum"), p1, t1)
    r["(finite) bce"] = grad(torch.nn.BCEWithLogitsLoss(), p1, t1)
    r["(finite) tversky sigmoid"] = grad(TverskyLoss(sigmoid=True), p1, t1)
    return r


def fmt(v):
    return "[" + ", ".join(repr(x) for x in v) + "]"


# (oracle key, label in losses.rs) for the `&[...], TOL, "label"` asserts.
TOL_LABELS = [
    ("bce ref", "bce ref"),
    ("bce pw ref", "bce pw ref"),
    ("sigmoid", "sigmoid"),
    ("sigmoid none", "sigmoid none"),
    ("batch", "batch"),
    ("squared", "squared"),
    ("jaccard", "jaccard"),
    ("sum", "sum"),
    ("no activation", "no activation"),
    ("softmax onehot", "softmax onehot"),
    ("softmax no background", "softmax no background"),
    ("softmax no background none ([N, C-1] flattened)", "softmax no background none ([N, C-1] flattened)"),
    ("dicece sigmoid", "sigmoid"),  # second `"sigmoid"` label: in dice_ce_vs_monai
    ("lambdas, sum", "lambdas, sum"),
    ("softmax index target", "softmax index target"),
    ("ce", "ce"),
    ("softmax one-hot target", "softmax one-hot target"),
    ("masked dice", "masked dice"),
    ("masked dice, no mask", "masked dice, no mask"),
    ("tversky", "tversky"),
    ("tversky a.3 b.7", "tversky a.3 b.7"),
    ("tversky softmax", "tversky softmax"),
    ("focal sigmoid", "focal sigmoid"),
    ("focal gamma 0 (= bce)", "focal gamma 0 (= bce)"),
    ("focal alpha .25, sum", "focal alpha .25, sum"),
    ("focal sigmoid weights", "focal sigmoid weights"),
    ("focal softmax", "focal softmax"),
    ("focal softmax alpha", "focal softmax alpha"),
    ("focal softmax no background, weight, sum", "focal softmax no background, weight, sum"),
]


def tol_literal(rs, label, key):
    """The `&[...]` literal right before `TOL, "label"` (in the right test function)."""
    start = 0
    if key == "dicece sigmoid":
        start = rs.index("fn dice_ce_vs_monai")
    elif key.startswith("tversky") or key.startswith("masked"):
        start = rs.index("fn masked_dice_and_tversky_vs_monai")
    anchor = f'TOL,\n        "{label}",' if f'TOL,\n        "{label}",' in rs[start:] else f'TOL, "{label}")'
    i = rs.index(anchor, start)
    j = rs.rindex("&[", 0, i)
    return numbers(rs[j + 2 : rs.index("]", j)])


def main():
    check = "--check" in sys.argv
    print(f"torch {torch.__version__}, monai {monai.__version__}")
    v = values()
    g = gradients()
    print("\n== loss values (float64)")
    for k, x in v.items():
        print(f"{k}: {fmt(x)}")
    print("\n== gradients (float32 autograd)")
    for k, x in g.items():
        print(f"{k}: {fmt(x)}")
    if not check:
        return 0
    print("\n== comparison with cytodl-runtime/tests/losses.rs")
    rs = read_rs("cytodl-runtime/tests/losses.rs")
    c = Checker()
    for key, label in TOL_LABELS:
        c.close(key, v[key], tol_literal(rs, label, key), 2e-6)
    # The test's by-hand bce formulas against torch (tolerance 1e-6 in the test).
    c.close("bce by hand [ln2, 2.126928011042972, 30, 15]", v["bce none (large |x| stays finite)"],
            [0.6931471805599453, 2.126928011042972, 30.0, 15.0], 1e-12)
    for key in ["d DiceCE(sigmoid) / d pred", "d DiceCE(softmax) / d pred", "d MaskedDice / d pred (zero where masked)",
                "d Focal(alpha .25) / d pred", "d Focal(softmax) / d pred"]:
        c.close(key, g[key], let_before(rs, f'"{key}");'), 1e-5)
    for key in [k for k in g if k.startswith("(finite)")]:
        ok = any(x != 0 for x in g[key]) and all(abs(x) < float("inf") for x in g[key])
        c.n += 1
        if not ok:
            c.bad.append(f"{key}: gradient zero or not finite")
    return c.report()


if __name__ == "__main__":
    sys.exit(main())
