#!/usr/bin/env python3
"""The oracle of `tests/tests/experiment_binaries.rs::predict_with_a_lightning_checkpoint`.

What cyto_dl's segmentation `predict` writes for the example image `img_000.ome.tif` with the
Lightning checkpoint `cytodl-runtime/tests/fixtures/parity/dynunet3d_seg/lightning_style.ckpt`,
computed with torch + MONAI the way cyto_dl 0.6.2 does it for `configs/experiment/segmentation.yaml`:

    LoadImaged (MonaiBioReader C=0, ZYX, float32) -> EnsureChannelFirstd(no_channel)
    -> NormalizeIntensityd(channel_wise=True) -> DynUNet (the checkpoint's `backbone.*`, eval)
    -> sliding_window_inference(roi (16, 32, 32), sw_batch_size 1, overlap 0.25, gaussian)
    -> ActThreshLabel(activation=Sigmoid, rescale_dtype=uint8)

The example data comes from `cytodl-build example-data` (deterministic). Writes
`tests/fixtures/lightning_predict/`: `seg_img_000.tif` (the expected uint8 ZYX prediction) and
`meta.json` (versions, the input's SHA-256, the command). Needs torch, monai, tifffile,
scikit-image:

    python scripts/oracles/lightning_predict.py --cytodl-build target/debug/cytodl-build
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tifffile
import torch
from monai.inferers import sliding_window_inference
from monai.networks.nets import DynUNet
from monai.transforms import EnsureChannelFirstd, NormalizeIntensityd
from skimage.exposure import rescale_intensity

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
CKPT = os.path.join(ROOT, "cytodl-runtime/tests/fixtures/parity/dynunet3d_seg/lightning_style.ckpt")
OUT = os.path.join(ROOT, "tests/fixtures/lightning_predict")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cytodl-build", default=os.path.join(ROOT, "target/debug/cytodl-build"))
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([args.cytodl_build, "example-data", "data/example", "--files", "5"], cwd=tmp, check=True, capture_output=True)
        path = os.path.join(tmp, "data/example/segmentation/img_000.ome.tif")
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        raw = tifffile.imread(path)[0].astype(np.float32)  # CZYX -> channel 0, ZYX

    sample = {"raw": raw}
    sample = EnsureChannelFirstd(keys="raw", channel_dim="no_channel")(sample)
    sample = NormalizeIntensityd(keys="raw", channel_wise=True)(sample)
    x = torch.as_tensor(np.asarray(sample["raw"]), dtype=torch.float32)[None]  # [1, 1, Z, Y, X]

    net = DynUNet(
        spatial_dims=3, in_channels=1, out_channels=1, kernel_size=[3, 3, 3], strides=[1, 2, 2],
        upsample_kernel_size=[2, 2], filters=[16, 32, 64], dropout=0.0, res_block=True,
    )
    ckpt = torch.load(CKPT, map_location="cpu", weights_only=False)
    state = {k[len("backbone."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("backbone.")}
    net.load_state_dict(state, strict=True)
    net.eval()
    with torch.no_grad():
        pred = sliding_window_inference(x, roi_size=(16, 32, 32), sw_batch_size=1, predictor=net, overlap=0.25, mode="gaussian")
    # ActThreshLabel on one sample [C, Z, Y, X]: activation, then rescale to uint8's range.
    img = torch.sigmoid(pred[0].float()).numpy()
    img = rescale_intensity(img, out_range=np.uint8).astype(np.uint8)
    img = img[0]  # one channel: saved as ZYX

    os.makedirs(OUT, exist_ok=True)
    tifffile.imwrite(os.path.join(OUT, "seg_img_000.tif"), img, compression="zlib")
    meta = {
        "what": "cyto_dl segmentation predict of example img_000 with lightning_style.ckpt",
        "script": "scripts/oracles/lightning_predict.py",
        "input_sha256": sha,
        "shape": list(img.shape),
        "torch": torch.__version__,
        "monai": __import__("monai").__version__,
        "numpy": np.__version__,
        "skimage": __import__("skimage").__version__,
        "tifffile": tifffile.__version__,
    }
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: shape {img.shape}, {int((img > 127).sum())} voxels above 127")


if __name__ == "__main__":
    sys.exit(main())
