#!/usr/bin/env python3
"""The oracle of `cytodl-runtime/tests/sliding_window.rs`:

- `gaussian_importance_map_matches_monai`: monai.data.utils.compute_importance_map((3, 4),
  "gaussian", 0.125) (float32),
- `window_grid_matches_monai`: monai.inferers.utils._get_scan_interval and
  monai.data.utils.dense_patch_slices for image (13, 37, 42), roi (8, 16, 16), overlap 0.25, and
  for image (8, 20), roi (8, 16), overlap (0.5, 0.0),
- `multi_head_superres_padding_matches_monai`: sliding_window_inference with a dict-valued
  predictor (a `seg` head and a 2x Y/X nearest-upsampled `sr` head), batch 2, roi (3, 5, 3),
  sw_batch_size 3, overlap 0.5, gaussian, padding_mode replicate and reflect. This is the script of
  the test's doc comment, made a file; it prints the Rust `const` arrays (`{:.8e}` of the float32
  values, as the doc comment's script did).

(`monai_fixture_cases` reads `tests/fixtures/monai/*.safetensors`, whose generator is not part of
this script.)

torch 2.5.1, MONAI 1.5.2. Run (`--check` compares with the literals in sliding_window.rs at the
test's tolerances: 1e-7 relative for the map, exact for the grid, 1e-6 absolute for the heads):

    /work/venv-torch/bin/python scripts/oracles/sliding_window_monai.py [--check]
"""
import os
import sys

import monai
import numpy as np
import torch
import torch.nn.functional as F
from monai.data.utils import compute_importance_map, dense_patch_slices
from monai.inferers import sliding_window_inference
from monai.inferers.utils import _get_scan_interval

sys.path.insert(0, os.path.dirname(__file__))
from rs_extract import Checker, after, const, read_rs  # noqa: E402


def importance():
    m = compute_importance_map((3, 4), "gaussian", 0.125)
    return [float(v) for v in m.flatten()]


def grid():
    r = {}
    iv = _get_scan_interval((13, 37, 42), (8, 16, 16), 3, (0.25, 0.25, 0.25))
    r["interval (13,37,42)"] = list(iv)
    starts = [[int(s.start) for s in sl] for sl in dense_patch_slices((13, 37, 42), (8, 16, 16), iv)]
    r["starts (13,37,42)"] = starts
    r["interval (8,20)"] = list(_get_scan_interval((8, 20), (8, 16), 2, (0.5, 0.0)))
    r["starts (8,20)"] = [[int(s.start) for s in sl] for sl in dense_patch_slices((8, 20), (8, 16), (8, 16))]
    return r


def multi_head():
    x = (torch.arange(2 * 1 * 3 * 3 * 4, dtype=torch.float32).reshape(2, 1, 3, 3, 4) * 37 % 101) / 100

    def pred(b):
        a = F.avg_pool3d(b, 3, stride=1, padding=1, count_include_pad=True)
        return {"seg": a, "sr": F.interpolate(a * 2 + 1, scale_factor=(1, 2, 2), mode="nearest")}

    out = {}
    for pm in ["replicate", "reflect"]:
        y = sliding_window_inference(
            x, roi_size=(3, 5, 3), sw_batch_size=3, predictor=pred, overlap=0.5, mode="gaussian", padding_mode=pm
        )
        for k, v in y.items():
            out[f"{pm.upper()}_{k.upper()}"] = (list(v.shape), v.flatten().tolist())
    return out


def main():
    check = "--check" in sys.argv
    print(f"torch {torch.__version__}, monai {monai.__version__}")
    imp = importance()
    g = grid()
    mh = multi_head()
    print("\n== gaussian_importance_map_matches_monai: compute_importance_map((3, 4), 'gaussian', 0.125)")
    print("[" + ", ".join(str(np.float32(v)) for v in imp) + "]  (float32, shortest repr)")
    print("\n== window_grid_matches_monai")
    for k, v in g.items():
        if k.startswith("starts"):
            zs = [s[0] for s in v]
            print(f"{k}: {len(v)} windows, first 5 {v[:5]}, last {v[-1]}, z==5: {zs.count(5)}")
            print(f"    all: {v}")
        else:
            print(f"{k}: {v}")
    print("\n== multi_head_superres_padding_matches_monai")
    for name, (shape, vals) in mh.items():
        print(f"// shape {shape}")
        print(f"const {name}: [f32; {len(vals)}] = [{', '.join(f'{t:.8e}' for t in vals)}];")
    if not check:
        return 0

    print("\n== comparison with cytodl-runtime/tests/sliding_window.rs")
    rs = read_rs("cytodl-runtime/tests/sliding_window.rs")
    c = Checker()
    # The Rust literals are f32: compare with them rounded to float32, as the test does.
    f32 = lambda v: [float(np.float32(x)) for x in v]  # noqa: E731
    c.close("importance map (3, 4)", imp, f32(after(rs, "let want = [", 1, rs.index("fn gaussian_importance"))[0]), 1e-7, "relw")
    s = g["starts (13,37,42)"]
    c.close("scan_interval (13,37,42)", g["interval (13,37,42)"], [6, 12, 12], 0, "exact")
    c.close("window count", [len(s)], [2 * 3 * 4], 0, "exact")
    c.close("first 5 starts", sum(s[:5], []), [0, 0, 0, 0, 0, 12, 0, 0, 24, 0, 0, 26, 0, 12, 0], 0, "exact")
    c.close("last start", s[-1], [5, 21, 26], 0, "exact")
    c.close("windows at z == 5", [[v[0] for v in s].count(5)], [12], 0, "exact")
    c.close("scan_interval (8,20)", g["interval (8,20)"], [8, 16], 0, "exact")
    c.close("starts (8,20)", sum(g["starts (8,20)"], []), [0, 0, 0, 4], 0, "exact")
    for name, (shape, vals) in mh.items():
        try:
            want = const(rs, name)
        except KeyError:
            print(f"  ({name}: not in the test)")
            continue
        c.close(name, vals, f32(want), 1e-6, "abs")
    return c.report()


if __name__ == "__main__":
    sys.exit(main())
