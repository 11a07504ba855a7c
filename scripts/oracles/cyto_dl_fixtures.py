#!/usr/bin/env python3
"""The oracle of `tests/tests/cyto_dl_checkpoints.rs`: real cyto_dl 0.6.2 trains an experiment of
its own config tree (`../shared/reference/cyto_dl-configs`, unmodified, a few command-line
overrides for size) on small synthetic data, then predicts with the checkpoint it saved. The
checkpoint (optimizer state dropped), the input image and cyto_dl's prediction become a fixture:

    tests/fixtures/cyto_dl/<experiment>/
        img.ome.tif        the input field of view, CZYX uint16, channels as the config reads them
        model.ckpt         cyto_dl's Lightning checkpoint (state_dict and loop state)
        overrides.txt      the size overrides, one per line (cyto_dl's run and our build)
        pred/<head>/img.ome.tif   what cyto_dl's predict wrote
        meta.json          versions, overrides, commands, SHA-256 of each file

Our test builds the experiment from the same YAML with the same overrides and predicts the same
input with the same checkpoint. cyto_dl is installed as `../shared/bench/run_cyto_dl.sh` does:

    python3 -m venv VENV && VENV/bin/pip install -c ../shared/bench/cyto_dl_constraints.txt cyto-dl==0.6.2
    VENV/bin/python scripts/oracles/cyto_dl_fixtures.py segmentation_superres
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import tifffile
import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIGS = os.path.normpath(os.path.join(ROOT, "..", "shared", "reference", "cyto_dl-configs"))

# Per experiment: the image channels its config reads (column -> channel), the field-of-view
# shape (Z, Y, X), and the size overrides shared by cyto_dl's run and our build.
EXPERIMENTS = {
    "segmentation_superres": {
        # cyto_dl's config: the raw is channel 5 (zoomed to 1/4), the segmentation channel 0.
        "channels": {"raw": 5, "seg": 0},
        "n_channels": 6,
        "shape": (16, 32, 32),
        "heads": ["seg"],
        "overrides": ["data._aux.patch_shape=[4,8,8]", "model.backbone.filters=[8,16,32]"],
        "epochs": 3,
    },
    "gan": {
        # cyto_dl's config: the target raw is channel 5, the source segmentation channel 0, both
        # zoomed to 1/4; the discriminator's one strided and two 4-wide layers need Z >= 6.
        "channels": {"raw": 5, "seg": 0},
        "n_channels": 6,
        "shape": (32, 64, 64),
        "heads": ["raw"],
        "overrides": ["data._aux.patch_shape=[8,16,16]", "model.backbone.filters=[8,16,32]"],
        "epochs": 3,
    },
    "instance_seg": {
        # cyto_dl's config: raw channel 5, instance labels channel 0, both zoomed to 1/4
        # (labels by nearest neighbour), InstanceSegPreprocessd targets, clustering (min_size 100).
        "channels": {"raw": 5, "seg": 0},
        "n_channels": 6,
        "shape": (32, 128, 128),
        "instances": True,
        "blobs": 10,
        "radius": (24, 40),
        "heads": ["seg"],
        "overrides": ["data._aux.patch_shape=[8,32,32]", "model.backbone.filters=[8,16,32]", "model.optimizer.generator.lr=0.003"],
        "epochs": 12,
        "cpu_half_target_fix": True,
    },
    "gan_superres": {
        # cyto_dl's config: the source segmentation (channel 0) zoomed to 1/4, the target raw
        # (channel 5) at full size; the target's patch is 4x the source's.
        "channels": {"raw": 5, "seg": 0},
        "n_channels": 6,
        "shape": (16, 64, 64),
        "heads": ["raw"],
        "overrides": ["data._aux.patch_shape=[4,8,8]", "model.backbone.filters=[8,16,32]"],
        "epochs": 3,
    },
}


CPU_HALF_TARGET_FIX = """
import runpy, sys, torch
from cyto_dl.nn.losses import loss_wrapper
def _call(self, y_hat, y, cmap=None):
    self.loss = self.loss.to(y_hat.device)
    y = y.half().to(y_hat.dtype)
    if cmap is None:
        return torch.mean(self.loss(y_hat, y))
    if len(y_hat.shape) == 4 and len(cmap.shape) == 5:
        cmap, _ = torch.max(cmap, dim=2)
    return torch.mean(torch.mul(self.loss(y_hat, y), cmap))
loss_wrapper.CMAP_loss.__call__ = _call
sys.argv = ["cyto_dl.train"] + sys.argv[1:]
runpy.run_module("cyto_dl.train", run_name="__main__", alter_sys=True)
"""


def blobs(rng, shape, n=6, radius=(3, 7)):
    """Ellipsoids: instance labels (later ones over earlier ones), and a blurred, noisy signal
    of them (uint16)."""
    z, y, x = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    labels = np.zeros(shape, np.uint16)
    signal = np.zeros(shape, np.float64)
    for lab in range(1, n + 1):
        c = [rng.uniform(0, s) for s in shape]
        r = rng.uniform(*radius)
        d2 = ((z - c[0]) / 0.6) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2
        labels[d2 <= r * r] = lab
        signal += np.exp(-d2 / (2 * r * r))
    raw = 200 + 2000 * signal + rng.normal(0, 50, shape)
    return labels, np.clip(raw, 0, 65535).astype(np.uint16)


def write_fov(path, spec, rng):
    labels, raw = blobs(rng, spec["shape"], spec.get("blobs", 6), spec.get("radius", (3, 7)))
    data = np.zeros((spec["n_channels"],) + spec["shape"], np.uint16)
    data[spec["channels"]["raw"]] = raw
    # the segmentation column: instance labels, or a binary mask (255)
    data[spec["channels"]["seg"]] = labels if spec.get("instances") else (labels > 0).astype(np.uint16) * 255
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "CZYX"}, photometric="minisblack", compression="zlib")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run(cmd, cwd, env):
    print("+", " ".join(cmd), flush=True)
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-8000:])
        raise SystemExit(f"cyto_dl failed: {' '.join(cmd)}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("experiment", choices=sorted(EXPERIMENTS))
    ap.add_argument("--keep", help="keep cyto_dl's work folder here")
    args = ap.parse_args()
    spec = EXPERIMENTS[args.experiment]
    out = os.path.join(ROOT, "tests", "fixtures", "cyto_dl", args.experiment)
    work = args.keep or tempfile.mkdtemp(prefix="cyto_dl_fixture_")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "data")
    os.makedirs(data, exist_ok=True)

    # Four fields of view: three train, the same three validate; the fixture's image is tested
    # and predicted (it is never trained on).
    rng = np.random.default_rng(7)
    names = [f"fov_{i}.ome.tif" for i in range(3)] + ["img.ome.tif"]
    for name in names:
        write_fov(os.path.join(data, name), spec, rng)
    cols = list(spec["channels"])

    def csv(split, files):
        with open(os.path.join(data, f"{split}.csv"), "w") as f:
            f.write(",".join(cols) + "\n")
            for n in files:
                f.write(",".join(os.path.join(data, n) for _ in cols) + "\n")

    csv("train", names[:3])
    csv("valid", names[:3])
    csv("test", names[3:])

    env = dict(os.environ, CYTODL_CONFIG_PATH=CONFIGS, PROJECT_ROOT=work, PYTHONHASHSEED="0")
    common = [f"experiment=im2im/{args.experiment}", "trainer=cpu", f"data.path={data}", "trainer.precision=32", "extras.print_config=False"]
    common += spec["overrides"]
    train_args = [*common, f"data.cache_dir={work}/cache", f"trainer.max_epochs={spec['epochs']}", "logger=csv", "test=False"]
    train = [sys.executable, "-m", "cyto_dl.train", *train_args]
    if spec.get("cpu_half_target_fix"):
        # cyto_dl 0.6.2's CMAP_loss compares a float32 prediction with `y.half()`, which torch's
        # CPU backward refuses ("Found dtype Half but expected Float"); cyto_dl trains this on GPUs
        # under autocast. The same arithmetic, float32 against the half-rounded target:
        train = [sys.executable, "-c", CPU_HALF_TARGET_FIX, *train_args]
    run(train, work, env)
    run(train, work, env)
    ckpts = sorted(
        (os.path.join(d, f) for d, _, fs in os.walk(os.path.join(work, "logs")) for f in fs if f == "last.ckpt"), key=os.path.getmtime
    )
    if not ckpts:
        raise SystemExit("cyto_dl saved no last.ckpt")
    pred = os.path.join(work, "pred")
    predict = [sys.executable, "-m", "cyto_dl.eval", *common, f"checkpoint.ckpt_path={ckpts[-1]}", f"model.save_dir={pred}",
               "callbacks.saving.stages=[predict]", "callbacks.saving.save_input=False"]
    run(predict, work, env)

    # The fixture: the checkpoint without optimizer state (our predict reads `state_dict`).
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    ckpt = torch.load(ckpts[-1], map_location="cpu")
    small = {k: ckpt[k] for k in ("epoch", "global_step", "pytorch-lightning_version", "state_dict") if k in ckpt}
    torch.save(small, os.path.join(out, "model.ckpt"))
    shutil.copy(os.path.join(data, "img.ome.tif"), os.path.join(out, "img.ome.tif"))
    files = ["img.ome.tif", "model.ckpt"]
    for head in spec["heads"]:
        # cyto_dl names a prediction after the input's stem (`img.ome` -> `img.ome.tif`).
        src = os.path.join(pred, head, "img.ome.tif")
        if not os.path.isfile(src):
            raise SystemExit(f"cyto_dl wrote no {src}: {os.listdir(pred)}")
        os.makedirs(os.path.join(out, "pred", head))
        shutil.copy(src, os.path.join(out, "pred", head, "img.ome.tif"))
        files.append(f"pred/{head}/img.ome.tif")

    import cyto_dl.utils  # noqa: F401  (the version below is the installed package's)
    from importlib.metadata import version

    meta = {
        "experiment": f"{CONFIGS}/experiment/im2im/{args.experiment}.yaml",
        "overrides": spec["overrides"],
        "epochs": spec["epochs"],
        "versions": {p: version(p) for p in ("cyto-dl", "torch", "monai", "lightning", "tifffile", "numpy")},
        "train": " ".join(train[1:]) if not spec.get("cpu_half_target_fix") else "-m cyto_dl.train (CMAP_loss: y.half().float()) " + " ".join(train_args),
        "predict": " ".join(predict[1:]),
        "sha256": {f: sha256(os.path.join(out, f)) for f in files},
    }
    with open(os.path.join(out, "overrides.txt"), "w") as f:
        f.write("".join(o + "\n" for o in spec["overrides"]))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(meta, indent=1))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
