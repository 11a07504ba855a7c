#!/usr/bin/env python3
"""Cross-checks cytodl-runtime's TIFF reader and OME-TIFF writer against tifffile + numpy.

    tiff_variants.py --stats BIN [--out DIR] [--quick]   # reader: generate variants, compare image-stats
    tiff_variants.py --check-written DIR                  # writer: DIR/manifest.json from the cargo test

Variants: every dtype x compression (none, zlib/8, deflate/32946, lzw, lzw+predictor, packbits,
zstd) x strips/tiles x classic/BigTIFF x little/big endian x samples (none, contiguous,
separate) x kind (generic pages, tifffile-shaped, OME, ImageJ). Combinations tifffile refuses
(e.g. ImageJ int32) are skipped. Axes are compared with tifffile's series[0].axes after the
Q/I renaming bioio-tifffile applies (`_merge_dim_guesses`).

Exits 3 with a SKIP line when tifffile or numpy is missing, and when imagecodecs is missing
under --require-codecs (without it, only the none/zlib/deflate compressions are checked). The
last lines say how many comparisons were made (`reader: N reads match`, `writer: N of M`).
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")  # tifffile warns about nonconformant BigTIFF ImageJ files we ask for

try:
    import numpy as np
    import tifffile
except ImportError as e:  # pragma: no cover
    print(f"SKIP: {e}")
    sys.exit(3)

try:
    import imagecodecs  # noqa: F401  (tifffile needs it for LZW, PackBits, Zstd, predictors)

    HAVE_CODECS = True
except ImportError:
    HAVE_CODECS = False


def bioio_axes(axes, shape):
    """bioio-tifffile Reader._guess_tiff_dim_order: rename tifffile's unknown Q/I axes."""
    if not any(a in "QI" for a in axes):
        return axes
    guess = "TCZYX"[max(0, 5 - len(shape)):]
    best = []
    for a in axes:
        if a not in "QI":
            best.append(a)
            continue
        for g in guess:
            if g not in best and g not in axes:
                best.append(g)
                break
        else:
            best.append(a)
    return "".join(best)


def run_stats(binary, path, sel):
    args = [binary, path] + [f"{k}={v}" for k, v in sel.items()]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr.strip()
    return json.loads(p.stdout), None


def close(a, b, exact):
    if exact:
        return a == b
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def expected_stats(arr, axes, sel):
    idx = []
    out_axes = []
    for a in axes:
        if a in sel:
            idx.append(sel[a])
        else:
            idx.append(slice(None))
            out_axes.append(a)
    sub = arr[tuple(idx)].astype(np.float32).astype(np.float64)
    flat = np.ascontiguousarray(sub).reshape(-1)
    weights = (np.arange(flat.size) % 251 + 1).astype(np.float64)
    return {
        "shape": list(sub.shape),
        "dtype": str(arr.dtype),
        "sum": float(np.sum(sub, dtype=np.float64)),
        "min": float(sub.min()),
        "max": float(sub.max()),
        "wsum": float(np.sum(flat * weights)),
    }


def make_data(dtype, shape, rng):
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt) * 100
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)


DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"]
COMPRESSIONS = [
    ("none", dict()),
    ("zlib", dict(compression="zlib")),  # tag 8
    ("deflate", dict(compression="deflate")),  # tag 32946
    ("lzw", dict(compression="lzw")),
    ("lzw_pred", dict(compression="lzw", predictor=True)),
    ("packbits", dict(compression="packbits")),
    ("zstd", dict(compression="zstd")),
    ("zlib_pred", dict(compression="zlib", predictor=True)),
]
KINDS = ["generic", "shaped", "ome", "imagej"]
SAMPLES = ["none", "contig", "separate"]


def variant(kind, samples, rng, dtype):
    """Returns (data, kwargs) for tifffile.imwrite."""
    Y, X = 37, 21
    kw = {}
    if samples == "none":
        if kind == "generic":
            shape, kw = (3, Y, X), dict(metadata=None)
        elif kind == "shaped":
            shape = (2, 3, Y, X)
        elif kind == "ome":
            shape, kw = (2, 2, 3, Y, X), dict(ome=True, metadata={"axes": "TCZYX"})
        else:
            shape, kw = (2, 3, 2, Y, X), dict(imagej=True, metadata={"axes": "TZCYX"})
        kw["photometric"] = "minisblack"
    elif samples == "contig":
        shape = (3, Y, X, 3)
        kw = dict(photometric="rgb", planarconfig="contig")
        if kind == "generic":
            kw["metadata"] = None
        elif kind == "ome":
            kw.update(ome=True, metadata={"axes": "ZYXS"})
        elif kind == "imagej":
            kw.update(imagej=True)
    else:
        shape = (3, 3, Y, X)
        kw = dict(photometric="minisblack", planarconfig="separate")
        if kind == "generic":
            kw["metadata"] = None
        elif kind == "ome":
            kw.update(ome=True, metadata={"axes": "ZSYX"})
        elif kind == "imagej":
            return None
    return make_data(dtype, shape, rng), kw


def check_reader(binary, out, quick):
    rng = np.random.default_rng(0)
    compressions = COMPRESSIONS if HAVE_CODECS else [c for c in COMPRESSIONS if c[0] in ("none", "zlib", "deflate")]
    if not HAVE_CODECS:
        print("note: imagecodecs missing, checking only none/zlib/deflate")
    n_ok = n_skip = 0
    failures = []
    layouts = list(itertools.product([False, True], [False, True], "<>", SAMPLES, KINDS))
    for dtype, (cname, ckw) in itertools.product(DTYPES, compressions):
        for tiled, bigtiff, order, samples, kind in layouts:
            if quick and rng.random() > 0.15:
                continue
            v = variant(kind, samples, rng, dtype)
            if v is None:
                continue
            data, kw = v
            kw = dict(kw, **ckw)
            if tiled:
                kw["tile"] = (16, 16)
            else:
                kw["rowsperstrip"] = 5
            name = f"{dtype}_{cname}_{'tile' if tiled else 'strip'}_{'big' if bigtiff else 'classic'}_{'le' if order == '<' else 'be'}_{samples}_{kind}.tif"
            path = os.path.join(out, name)
            try:
                tifffile.imwrite(path, data, bigtiff=bigtiff, byteorder=order, **kw)
                with tifffile.TiffFile(path) as t:
                    s = t.series[0]
                    arr = s.asarray()
                    axes = bioio_axes(s.axes, s.shape)
            except Exception as e:  # tifffile refuses the combination
                n_skip += 1
                if os.path.exists(path):
                    os.remove(path)
                continue
            sels = [{}]
            last = {a: arr.shape[i] - 1 for i, a in enumerate(axes) if a in "CZT" and arr.shape[i] > 1}
            if last:
                sels.append(last)
            for sel in sels:
                got, err = run_stats(binary, path, sel)
                want = expected_stats(arr, axes, sel)
                exact = np.dtype(dtype).kind != "f"
                if got is None:
                    failures.append(f"{name} {sel}: image-stats failed: {err}")
                    continue
                bad = [k for k in ("shape", "dtype") if got[k] != want[k]]
                bad += [k for k in ("sum", "min", "max") if not close(got[k], want[k], exact)]
                # the position-weighted sum is a long float sum: equal to rounding, for every dtype
                bad += [k for k in ("wsum",) if not close(got.get(k, float("nan")), want[k], False)]
                if bad:
                    failures.append(f"{name} {sel} axes={axes}: got {got}, want {want}")
                else:
                    n_ok += 1
            os.remove(path)
    print(f"reader: {n_ok} reads match, {n_skip} combinations tifffile refused, {len(failures)} failures")
    for f in failures[:40]:
        print("FAIL", f)
    if n_ok == 0:
        print("FAIL no read was compared")
    return not failures and n_ok > 0


def check_written(directory):
    with open(os.path.join(directory, "manifest.json")) as f:
        manifest = json.load(f)
    failures = []
    for m in manifest:
        path = os.path.join(directory, m["file"])
        with tifffile.TiffFile(path) as t:
            s = t.series[0]
            arr = s.asarray()
            got = {"is_ome": t.is_ome, "axes": s.axes, "shape": list(s.shape), "dtype": str(arr.dtype)}
            meta = tifffile.xml2dict(t.ome_metadata)["OME"]["Image"]["Pixels"]
            sizes = [meta.get(f"PhysicalSize{a}") for a in "ZYX"]
            n_ifd = len(t.pages)
        want = {"is_ome": True, "axes": m["axes"], "shape": m["shape"], "dtype": m["dtype"]}
        if got != want:
            failures.append(f"{m['file']}: got {got}, want {want}")
        a = arr.astype(np.float64)
        if not close(float(a.sum()), m["sum"], False) or float(a.min()) != m["min"] or float(a.max()) != m["max"]:
            failures.append(f"{m['file']}: values sum/min/max {a.sum()}/{a.min()}/{a.max()} != {m['sum']}/{m['min']}/{m['max']}")
        # Every voxel in its place: bring tifffile's axes to the order the values were written in
        # (axes of size 1 may have been dropped), then compare exactly.
        try:
            got_axes = s.axes
            for i, ax in enumerate(m["input_axes"]):
                if ax not in got_axes:
                    a = np.expand_dims(a, axis=min(i, a.ndim))
                    got_axes = got_axes[:i] + ax + got_axes[i:]
            a = np.transpose(a, [got_axes.index(ax) for ax in m["input_axes"]])
            want_values = np.array(m["values"], dtype=np.float64).reshape(m["input_shape"])
            if a.shape != want_values.shape or not np.array_equal(a, want_values):
                failures.append(f"{m['file']}: voxel values differ from what was written")
        except (ValueError, IndexError) as e:
            failures.append(f"{m['file']}: cannot compare voxels: {e}")
        for s_got, s_want in zip(sizes, m["pixel_sizes"]):
            if (s_got is None) != (s_want is None) or (s_want is not None and not close(float(s_got), s_want, False)):
                failures.append(f"{m['file']}: physical sizes {sizes} != {m['pixel_sizes']}")
                break
        if n_ifd != m["planes"]:
            failures.append(f"{m['file']}: {n_ifd} IFDs, expected {m['planes']}")
    print(f"writer: {len(manifest) - len(failures)} of {len(manifest)} written files read back correctly by tifffile")
    for f in failures:
        print("FAIL", f)
    return not failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stats", help="path of the image-stats example binary")
    ap.add_argument("--out", help="folder for generated files (default: a temp folder)")
    ap.add_argument("--quick", action="store_true", help="check a random 15%% of the variants")
    ap.add_argument("--check-written", help="folder with manifest.json from the writer test")
    ap.add_argument("--require-codecs", action="store_true", help="fail (exit 3) without imagecodecs instead of checking fewer compressions")
    args = ap.parse_args()
    if args.require_codecs and not HAVE_CODECS:
        print("SKIP: imagecodecs is not installed (pip install imagecodecs)")
        sys.exit(3)
    ok = True
    if args.stats:
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            ok &= check_reader(args.stats, args.out, args.quick)
        else:
            with tempfile.TemporaryDirectory() as d:
                ok &= check_reader(args.stats, d, args.quick)
    if args.check_written:
        ok &= check_written(args.check_written)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
