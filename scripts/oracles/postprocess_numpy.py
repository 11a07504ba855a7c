#!/usr/bin/env python3
"""The oracle of `cytodl-runtime/tests/postprocess.rs`:

- `act_thresh_label_matches_cyto_dl` (SIGMOID_RESCALE_U8 ... CONST_RESCALE_U8, and the number of
  labels of the sigmoid > 0.98 labelling),
- `auto_threshold_matches_skimage` (OTSU_T, OTSU_MASK; the constant-image threshold),
- `legacy_functions_match_cyto_dl` (LEGACY_RESCALE, LEGACY_SIGMOID_RESCALE, LEGACY_LABEL, the
  all-zero `sigmoid_thresh`),
- `numpy_casts` (numpy's float64 -> integer `astype`, out of range and NaN included).

The test's doc comment held this script inline (with `ActThreshLabel.__call__` inlined as `atl`);
here it is a file, and cyto_dl's two classes are reproduced below verbatim from cyto_dl 0.6.2
(`cyto_dl/models/im2im/utils/postprocessing/act_thresh_label.py` and `auto_thresh.py`, checked
against github.com/AllenCellModeling/cyto-dl at 9541a15c) except that `hydra.utils.get_class`
(for dtype strings) is not used, since cyto_dl/hydra are not installed here; the legacy functions
are verbatim from the repository's history (`aics_im2im/models/im2im/utils/postprocessing.py`).

numpy 2.4, scikit-image 0.26, torch 2.5.1. The out-of-range float -> int casts of `numpy_casts`
are platform behaviour (x86-64 here); for uint32 they even depend on numpy's loop (SIMD blocks of
4 vs the scalar tail), so `casts()` prints both, and `--check` reports the test's uint32 row,
which matches neither path (see `casts`).

Run (prints the Rust `const` arrays; `--check` compares them with postprocess.rs exactly):

    /work/venv-torch/bin/python scripts/oracles/postprocess_numpy.py [--check]
"""
import importlib
import os
import sys
import warnings
from typing import Callable, Optional, Union

import numpy as np
import skimage
import torch
from skimage.exposure import rescale_intensity
from skimage.filters import threshold_otsu
from skimage.measure import label

sys.path.insert(0, os.path.dirname(__file__))
from rs_extract import Checker, const, read_rs  # noqa: E402


# ---------------------------------------------------------------- cyto_dl 0.6.2, verbatim


class ActThreshLabel:
    """General-purpose postprocessing transform for applying any of an activation, threshold,
    labeling, and rescaling."""

    def __init__(
        self,
        activation: Callable = torch.nn.Identity(),
        threshold: float = None,
        label: bool = False,
        dtype=np.uint8,
        ch: int = -1,
        rescale_dtype=None,
    ):
        self.activation = activation
        self.threshold = threshold
        self.label = label
        self.dtype = self._get_dtype(dtype)
        self.ch = ch
        self.rescale_dtype = self._get_dtype(rescale_dtype)
        if self.rescale_dtype is not None:
            self.dtype = self.rescale_dtype

    def _get_dtype(self, dtype):
        if isinstance(dtype, str):
            return np.dtype(dtype.split(".")[-1]).type  # cyto_dl: hydra.utils.get_class(dtype)
        elif dtype is None:
            return dtype
        elif isinstance(dtype, type):
            return dtype
        else:
            raise ValueError(f"Expected dtype to be DtypeLike, string, or None, got {type(dtype)}")

    def __call__(self, img: torch.Tensor) -> np.ndarray:
        if self.ch > 0:
            img = img[self.ch]
        img = self.activation(img.detach().cpu().float()).numpy()
        if self.threshold is not None:
            img = img > self.threshold
        if self.label:
            img = label(img)
        if self.rescale_dtype is not None:
            img = rescale_intensity(img, out_range=self.rescale_dtype).astype(self.rescale_dtype)
        return img.astype(self.dtype)


class AutoThreshold:
    def __init__(self, method: Optional[Union[float, str]] = None):
        if isinstance(method, float):

            def thresh_func(image):
                return method

        elif isinstance(method, str):
            try:
                thresh_func = getattr(importlib.import_module("skimage.filters"), method)
            except AttributeError:
                raise AttributeError(f"method {method} not found in skimage.filters")
        elif method is None:
            thresh_func = None
        else:
            raise TypeError("method must be a float or a string")
        self.thresh_func = thresh_func

    def __call__(self, image):
        if not isinstance(image, np.ndarray):
            image = image.detach().cpu().float().numpy()
        if self.thresh_func is None:
            return image
        return (image > self.thresh_func(image)).astype(np.uint8)


# Legacy functions, verbatim from cyto_dl's predecessor `aics_im2im/models/im2im/utils/
# postprocessing.py` (cyto-dl history, the parent of bcebc076ec9595c4a2a8e31629555839a3d98308).


def legacy_rescale(img: torch.Tensor) -> np.ndarray:
    img = img.detach().cpu().numpy()
    return rescale_intensity(img, out_range=np.uint8).astype(np.uint8)


def detach(img: torch.Tensor) -> np.ndarray:
    img = img.detach().cpu()
    if img.dtype == torch.bfloat16:
        img = img.half()
    img = img.numpy()
    return img


def sigmoid_rescale(img: torch.Tensor) -> np.ndarray:
    img = detach(torch.nn.Sigmoid()(img))
    return (img * 255).astype(np.uint8)


def sigmoid_thresh(img: torch.Tensor) -> np.ndarray:
    img = detach(torch.nn.Sigmoid()(img))
    return (img > 123).astype(np.uint8)


def postprocess_label(img: torch.Tensor) -> np.ndarray:
    img = detach(torch.nn.Sigmoid()(img))
    return label(img > 0.5).astype(np.uint16)


# ---------------------------------------------------------------- inputs


def gen(shape, seed):
    """`((i*i*31 + i*7919 + seed*104729) % 1009) / 100 - 5` in float64, then float32."""
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.int64)
    return ((((i * i * 31 + i * 7919 + seed * 104729)) % 1009) / 100.0 - 5.0).astype(np.float32).reshape(shape)


def atl(img, **kw):
    return ActThreshLabel(**kw)(torch.from_numpy(np.ascontiguousarray(img)))


def compute():
    r = {}
    x = gen((2, 3, 4, 5), 1)
    r["SIGMOID_RESCALE_U8"] = atl(x, activation=torch.nn.Sigmoid(), rescale_dtype=np.uint8)
    r["IDENTITY_RESCALE_U16"] = atl(x, rescale_dtype=np.uint16)
    r["CH1_TANH_RESCALE_I16"] = atl(x, activation=torch.nn.Tanh(), ch=1, rescale_dtype=np.int16)
    r["CH1_RELU_RESCALE_I16"] = atl(x, activation=torch.nn.ReLU(), ch=1, rescale_dtype=np.int16)
    r["SOFTMAX0_THRESH"] = atl(x, activation=torch.nn.Softmax(dim=0), threshold=0.5, ch=0)
    x70 = x * np.float32(70.0)  # the test's `scaled(&x, 70.0)`: a float32 product
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "invalid value encountered in cast"
        r["IDENTITY_CAST_U8"] = atl(x70, dtype=np.uint8)
        r["IDENTITY_CAST_I8"] = atl(x70, dtype=np.int8)
    y = gen((1, 6, 7, 8), 2)
    r["SIGMOID_LABEL_U16"] = atl(y, activation=torch.nn.Sigmoid(), threshold=0.98, label=True, dtype=np.uint16)
    r["LABEL_RESCALE_U8"] = atl(y, activation=torch.nn.Sigmoid(), threshold=0.98, label=True, rescale_dtype=np.uint8)
    r["THRESH_RESCALE_U8"] = atl(y, threshold=1.0, rescale_dtype=np.uint8)
    # The test builds `[y, y] * (1/3 as f32)`; the doc comment's script divided by 3. Both printed.
    yy = np.concatenate([y, y])
    r["RAW_LABEL_U8"] = atl(yy * np.float32(1.0 / 3.0), ch=1, label=True)
    r["RAW_LABEL_U8 (y / 3, as the doc comment)"] = atl(yy / np.float32(3.0), ch=1, label=True)
    m = np.zeros((1, 40, 40), np.float32)
    m[0, ::2, ::2] = 1
    r["MANY_LABELS_U8"] = atl(m, threshold=0.5, label=True)
    r["CONST_RESCALE_U8"] = atl(np.full((1, 2, 2), 300.0, np.float32), rescale_dtype=np.uint8)
    try:  # ActThreshLabel(label=True) on a 4-d float image: skimage refuses (the test's LabelDims)
        atl(yy, label=True)
        r["label 4-d"] = "no error (!)"
    except Exception as e:  # noqa: BLE001
        r["label 4-d"] = f"{type(e).__name__}: {e}"

    z = gen((1, 6, 7, 8), 3) ** 2
    t = threshold_otsu(z)
    r["OTSU_T"] = np.array([t], dtype=np.float32)
    r["OTSU_MASK"] = AutoThreshold("threshold_otsu")(z)
    r["fixed mask (AutoThreshold(OTSU_T))"] = AutoThreshold(float(t))(z)
    r["AutoThreshold(None) is the identity"] = np.array([int(np.array_equal(AutoThreshold(None)(z), z))])
    r["otsu of [2.5; 4]"] = np.array([threshold_otsu(np.full(4, 2.5, np.float32))], dtype=np.float32)

    # The legacy functions.
    r["LEGACY_RESCALE"] = legacy_rescale(torch.from_numpy(x))
    r["LEGACY_SIGMOID_RESCALE"] = sigmoid_rescale(torch.from_numpy(x))
    r["sigmoid_thresh max"] = np.array([sigmoid_thresh(torch.from_numpy(x)).max()])
    r["LEGACY_LABEL"] = postprocess_label(torch.from_numpy(y))

    r["labels: sigmoid(y) > 0.98 (full / face connectivity)"] = np.array(
        [label(torch.sigmoid(torch.from_numpy(y)).numpy() > 0.98).max(),
         label(torch.sigmoid(torch.from_numpy(y)).numpy() > 0.98, connectivity=1).max()]
    )
    r["labels: raw y/3 (ch 1), 40x40 grid"] = np.array([label((yy * np.float32(1 / 3))[1]).max(), label(m > 0.5).max()])
    return r


def casts():
    """numpy `astype` of float64 values. For uint32 the out-of-range results depend on the loop
    numpy picks: on x86-64 with AVX2 (numpy 2.4.6 here) contiguous blocks of 4 go through a SIMD
    conversion (5e9 -> 0, -3e9 -> 2147483648, NaN -> 2147483648) and the remainder through the
    scalar C cast (int64 truncation: 5e9 -> 705032704, -3e9 -> 1294967296, NaN -> 0). Both are
    shown: `array` is the test's list cast as one array, `per value` each value alone (scalar
    path), `in bulk` each value inside a 64-element array (SIMD path, as for an image)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = {
            "u8 [300.5, -1.5, 255.9, 70000.7, -70000.2, 3e9, nan]": ([300.5, -1.5, 255.9, 70000.7, -70000.2, 3e9, np.nan], np.uint8),
            "u16 -1.5": ([-1.5], np.uint16),
            "i32 3e9": ([3e9], np.int32),
            "u32 [3e9, 5e9, -3e9, -5, nan, -2147483649]": ([3e9, 5e9, -3e9, -5.0, np.nan, -2147483649.0], np.uint32),
        }
        out = {}
        for k, (v, dt) in rows.items():
            out[k] = {
                "array": np.array(v).astype(dt),
                "per value": np.array([int(np.array([x]).astype(dt)[0]) for x in v]),
                "in bulk": np.array([int(np.full(64, x).astype(dt)[0]) for x in v]),
            }
        return out


def out(name, a):
    a = np.asarray(a)
    if a.dtype.kind == "f":
        print(f"const {name}: f32 = {float(a.ravel()[0])!r};  // f32 {np.float32(a.ravel()[0])}")
    else:
        print(f"const {name}: [i64; {a.size}] = [{', '.join(str(int(v)) for v in a.ravel())}];  // {a.dtype} {list(a.shape)}")


def main():
    check = "--check" in sys.argv
    print(f"numpy {np.__version__}, scikit-image {skimage.__version__}, torch {torch.__version__}")
    r = compute()
    c_ = casts()
    print("\n== act_thresh_label_matches_cyto_dl / auto_threshold_matches_skimage / legacy_functions_match_cyto_dl")
    for k, v in r.items():
        if isinstance(v, str):
            print(f"// {k}: {v}")
        elif k.isupper() or k == "OTSU_T":
            out(k, v)
        else:
            print(f"// {k}: {np.asarray(v).ravel().tolist()}")
    print("\n== numpy_casts")
    for k, v in c_.items():
        print(k)
        for how, a in v.items():
            print(f"    {how:9}: {a.tolist()}")
    if not check:
        return 0

    print("\n== comparison with cytodl-runtime/tests/postprocess.rs")
    rs = read_rs("cytodl-runtime/tests/postprocess.rs")
    c = Checker()
    names = [k for k in r if k.isupper() and " " not in k and k != "OTSU_T"]
    dtypes = {"SIGMOID_RESCALE_U8": np.uint8, "IDENTITY_RESCALE_U16": np.uint16, "CH1_TANH_RESCALE_I16": np.int16,
              "CH1_RELU_RESCALE_I16": np.int16, "SOFTMAX0_THRESH": np.uint8, "IDENTITY_CAST_U8": np.uint8,
              "IDENTITY_CAST_I8": np.int8, "SIGMOID_LABEL_U16": np.uint16, "LABEL_RESCALE_U8": np.uint8,
              "THRESH_RESCALE_U8": np.uint8, "RAW_LABEL_U8": np.uint8, "MANY_LABELS_U8": np.uint8,
              "CONST_RESCALE_U8": np.uint8, "OTSU_MASK": np.uint8, "LEGACY_RESCALE": np.uint8,
              "LEGACY_SIGMOID_RESCALE": np.uint8, "LEGACY_LABEL": np.uint16}
    for n in names:
        c.close(n, r[n].ravel(), const(rs, n), 0, "exact")
        c.n += 1
        if r[n].dtype != dtypes[n]:
            c.bad.append(f"{n}: dtype {r[n].dtype} vs the test's {np.dtype(dtypes[n])}")
    c.close("RAW_LABEL_U8 (y / 3 variant)", r["RAW_LABEL_U8 (y / 3, as the doc comment)"].ravel(),
            const(rs, "RAW_LABEL_U8"), 0, "exact")
    # OTSU_T: the Rust literal is an f32; compare as float32 (the test asserts f32 equality).
    c.close("OTSU_T (as f32)", [np.float32(r["OTSU_T"][0])], [np.float32(const(rs, "OTSU_T")[0])], 0, "exact")
    c.close("fixed mask", r["fixed mask (AutoThreshold(OTSU_T))"].ravel(), const(rs, "OTSU_MASK"), 0, "exact")
    c.close("otsu of [2.5; 4]", r["otsu of [2.5; 4]"], [2.5], 0, "exact")
    c.close("AutoThreshold(None) identity", r["AutoThreshold(None) is the identity"], [1], 0, "exact")
    c.close("sigmoid label max (10)", [r["SIGMOID_LABEL_U16"].max()], [10], 0, "exact")
    c.close("labels full/face connectivity (10, 25)", r["labels: sigmoid(y) > 0.98 (full / face connectivity)"], [10, 25], 0, "exact")
    c.close("sigmoid_thresh max", r["sigmoid_thresh max"], [0], 0, "exact")
    want = {
        "u8 [300.5, -1.5, 255.9, 70000.7, -70000.2, 3e9, nan]": [44, 255, 255, 112, 144, 0, 0],
        "u16 -1.5": [65535],
        "i32 3e9": [-(2**31)],
        "u32 [3e9, 5e9, -3e9, -5, nan, -2147483649]": [3e9, 0, 2147483648, 4294967291, 2147483648, 2147483648],
    }
    # The runtime follows the loop an image goes through (`in bulk`); for uint32 the scalar
    # loop differs out of range, so only the bulk cast is compared there.
    for k, w in want.items():
        for how, a in c_[k].items():
            if k.startswith("u32") and how != "in bulk":
                continue
            c.close(f"numpy {k} ({how})", a, w, 0, "exact")
    return c.report()


if __name__ == "__main__":
    sys.exit(main())
