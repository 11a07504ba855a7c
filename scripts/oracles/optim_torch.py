#!/usr/bin/env python3
"""The oracle of `cytodl-runtime/tests/optim.rs`:

- `global_norm_and_value_clipping_match_torch` (G0, `clip_grad_norm_`, `clip_grad_value_`),
- `adam_matches_torch`, `adamw_matches_torch`, `sgd_matches_torch`,
- `chainable_schedules_match_torch` (ExponentialLR, StepLR, MultiStepLR, CosineAnnealingLR),
- `one_cycle_matches_torch` (OneCycleLR: lr and Adam beta1, three-phase linear, the MAE config,
  the zero-length-phase error).

Computed with torch 2.5.1 (CPU, float32 for the model; schedules in Python floats). The model is
the test's tiny linear map `Y^ = X W + b` (W 2x2 row-major, b 2), loss `mean((Y^ - Y)^2)`, with
W0 = [[0.5, -0.3], [0.2, 0.8]], b0 = [0.1, -0.2], X = [[1, 2], [-1, 0.5], [0.3, -2]],
Y = [[1, 0], [0, 1], [-1, 0.5]]; each optimizer takes three steps at lr 0.1 and the parameters
are printed as `[W00, W01, W10, W11, b0, b1]` after each step.

Run (prints every expected number; `--check` also compares with the literals in optim.rs at the
test's tolerance and exits 1 on a mismatch):

    /work/venv-torch/bin/python scripts/oracles/optim_torch.py [--check]
"""
import sys

import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
from rs_extract import Checker, after, before, let_before, read_rs  # noqa: E402

torch.set_default_dtype(torch.float32)

W0 = [[0.5, -0.3], [0.2, 0.8]]
B0 = [0.1, -0.2]
X = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.3, -2.0]])
Y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5]])


def model():
    w = torch.nn.Parameter(torch.tensor(W0))
    b = torch.nn.Parameter(torch.tensor(B0))
    return w, b


def loss(w, b):
    return ((X @ w + b - Y) ** 2).mean()


def flat(w, b):
    return [float(v) for v in torch.cat([w.detach().flatten(), b.detach().flatten()])]


def fmt(v):
    return "[" + ", ".join(repr(float(x)) for x in v) + "]"


def run(make_opt, steps=3, lr=0.1):
    w, b = model()
    opt = make_opt([w, b], lr)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss(w, b).backward()
        opt.step()
        out.append(flat(w, b))
    return out


OPTIMIZERS = [
    # (test label in optim.rs, constructor)
    ("adam", lambda p, lr: torch.optim.Adam(p, lr=lr)),
    ("adam wd amsgrad", lambda p, lr: torch.optim.Adam(p, lr=lr, betas=(0.5, 0.9), weight_decay=0.1, amsgrad=True)),
    ("adamw", lambda p, lr: torch.optim.AdamW(p, lr=lr)),
    ("adamw wd 0.5", lambda p, lr: torch.optim.AdamW(p, lr=lr, weight_decay=0.5)),
    ("sgd", lambda p, lr: torch.optim.SGD(p, lr=lr)),
    ("sgd momentum", lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9)),
    (
        "sgd momentum dampening wd",
        lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, dampening=0.5, weight_decay=0.01),
    ),
    ("sgd nesterov", lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True, weight_decay=0.01)),
]


def clipping():
    res = {}
    w, b = model()
    loss(w, b).backward()
    res["G0"] = flat(w.grad, b.grad)
    total = torch.nn.utils.clip_grad_norm_([w, b], max_norm=0.5)
    res["total norm"] = [float(total)]
    res["clip by norm (torch)"] = flat(w.grad, b.grad)
    w, b = model()
    loss(w, b).backward()
    torch.nn.utils.clip_grad_norm_([w, b], max_norm=10.0)
    res["no clipping below max_norm"] = flat(w.grad, b.grad)
    w, b = model()
    loss(w, b).backward()
    torch.nn.utils.clip_grad_value_([w, b], 0.5)
    res["clip by value"] = flat(w.grad, b.grad)
    # SGD(lr=0.1) on the norm-clipped gradient.
    w, b = model()
    opt = torch.optim.SGD([w, b], lr=0.1)
    loss(w, b).backward()
    torch.nn.utils.clip_grad_norm_([w, b], max_norm=0.5)
    opt.step()
    res["sgd with clipping"] = flat(w, b)
    return res


def lrs(make_sched, base, n, opt_cls=torch.optim.SGD):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = opt_cls([p], lr=base)
    s = make_sched(opt)
    out, mom = [], []
    for e in range(n):
        if e:
            opt.step()
            s.step()
        g = opt.param_groups[0]
        out.append(g["lr"])
        mom.append(g["betas"][0] if "betas" in g else g.get("momentum"))
    return out, mom, s, opt


def schedules():
    S = torch.optim.lr_scheduler
    res = {}
    res["exponential"] = lrs(lambda o: S.ExponentialLR(o, 0.995), 0.1, 12)[0]
    res["step"] = lrs(lambda o: S.StepLR(o, 3, 0.5), 0.1, 12)[0]
    res["multistep"] = lrs(lambda o: S.MultiStepLR(o, [5, 2, 9, 5], 0.1), 0.1, 12)[0]
    res["multistep milestone 0, lr 1.0, epoch 0"] = lrs(lambda o: S.MultiStepLR(o, [0], 0.5), 1.0, 1)[0]
    res["cosine T=4"] = lrs(lambda o: S.CosineAnnealingLR(o, T_max=4, eta_min=1e-3), 0.1, 14)[0]
    res["cosine T=10"] = lrs(lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.0), 0.1, 12)[0]
    res["constant"] = [0.3, 0.3, 0.3]

    # OneCycleLR with Adam: the optimizer's lr (123) is replaced by max_lr / div_factor.
    lr, beta1, s, opt = lrs(lambda o: S.OneCycleLR(o, max_lr=0.01, total_steps=10), 123.0, 11, torch.optim.Adam)
    res["one cycle (optimizer lr ignored)"] = lr
    res["one cycle beta1"] = beta1
    try:
        opt.step()
        s.step()
        res["one cycle step 11"] = "no error (!)"
    except ValueError as e:
        res["one cycle step 11"] = f"ValueError: {e}"
    res["one cycle three-phase linear"] = lrs(
        lambda o: S.OneCycleLR(
            o, max_lr=0.01, total_steps=10, anneal_strategy="linear", three_phase=True, pct_start=0.25
        ),
        0.1,
        11,
        torch.optim.Adam,
    )[0]
    lr = lrs(
        lambda o: S.OneCycleLR(o, max_lr=0.001, epochs=100, steps_per_epoch=1, pct_start=0.1),
        1.0,
        101,
        torch.optim.Adam,
    )[0]
    res["one cycle 100 epochs"] = [lr[e] for e in [0, 5, 9, 10, 50, 99, 100]]
    try:
        lrs(lambda o: S.OneCycleLR(o, max_lr=0.001, epochs=10, steps_per_epoch=1, pct_start=0.1), 1.0, 1, torch.optim.Adam)
        res["one cycle 10 epochs"] = "no error (!)"
    except ZeroDivisionError as e:
        res["one cycle 10 epochs"] = f"ZeroDivisionError: {e}"
    # one_cycle_momentum_drives_the_optimizer: beta1 at epoch 2.
    res["one cycle beta1 at epoch 2"] = [res["one cycle beta1"][2]]
    return res


def main():
    check = "--check" in sys.argv
    print(f"torch {torch.__version__}")
    opt_res = {name: run(make) for name, make in OPTIMIZERS}
    clip = clipping()
    sched = schedules()

    print("\n== global_norm_and_value_clipping_match_torch")
    for k, v in clip.items():
        print(f"{k}: {fmt(v)}")
    print("\n== adam_matches_torch / adamw_matches_torch / sgd_matches_torch (after steps 1, 2, 3)")
    for k, v in opt_res.items():
        print(f"{k}:")
        for row in v:
            print(f"    {fmt(row)},")
    print("\n== chainable_schedules_match_torch / one_cycle_matches_torch")
    for k, v in sched.items():
        print(f"{k}: {v if isinstance(v, str) else fmt(v)}")

    if not check:
        return 0
    print("\n== comparison with cytodl-runtime/tests/optim.rs")
    rs = read_rs("cytodl-runtime/tests/optim.rs")
    c = Checker()
    c.close("G0", clip["G0"], after(rs, "const G0")[0], 2e-6)
    c.close("total norm", clip["total norm"], [2.433783531188965], 1e-6)
    c.close("clip by norm (torch)", clip["clip by norm (torch)"], after(rs, "let torch = ")[0], 2e-6)
    c.close("no clipping below max_norm", clip["no clipping below max_norm"], after(rs, "const G0")[0], 2e-6)
    g0 = after(rs, "const G0")[0]
    c.close("clip by value", clip["clip by value"], [g0[0], g0[1], -0.5, 0.5, g0[4], -0.5], 1e-7)
    sgd_clip = [p - 0.1 * g for p, g in zip(sum(W0, []) + B0, after(rs, "let torch = ")[0])]
    c.close("sgd with clipping", clip["sgd with clipping"], sgd_clip, 2e-6)
    sgd1 = [p - 0.1 * g for p, g in zip(sum(W0, []) + B0, g0)]
    c.close("sgd by hand", opt_res["sgd"][0], sgd1, 2e-6)
    for name, got in opt_res.items():
        # The array literal just before the label string `"name",` in a check(...) call.
        want = before(rs, f'"{name}",\n    );')
        c.close(name, sum(got, []), want, 2e-6)
    for name in ["exponential", "step", "multistep", "cosine T=4", "cosine T=10",
                 "one cycle (optimizer lr ignored)", "one cycle three-phase linear", "one cycle 100 epochs"]:
        want = let_before(rs, f'"{name}");')
        c.close(name, sched[name], want, 1e-14)
    c.close("one cycle beta1", sched["one cycle beta1"], after(rs, "let beta1 = ")[0], 1e-14)
    c.close("multistep milestone 0", sched["multistep milestone 0, lr 1.0, epoch 0"], [0.5], 0, "exact")
    c.close("one cycle beta1 at epoch 2", sched["one cycle beta1 at epoch 2"], [0.85], 0, "exact")
    ok_err = sched["one cycle step 11"].startswith("ValueError") and sched["one cycle 10 epochs"].startswith(
        "ZeroDivisionError"
    )
    c.n += 1
    if not ok_err:
        c.bad.append("error cases: " + sched["one cycle step 11"] + " / " + sched["one cycle 10 epochs"])
    print(f"  check {'OK ' if ok_err else 'BAD'} PastEnd at step 11 / ZeroLengthPhase with 10 epochs")
    return c.report()


if __name__ == "__main__":
    sys.exit(main())
