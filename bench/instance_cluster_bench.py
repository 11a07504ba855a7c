"""Peer of `cargo run --release -p cytodl-runtime --example instance-cluster-bench`: cyto_dl
0.6.2's InstanceSegCluster (its slowest step) on a larger 3-D prediction. Makes the prediction
once (cyto_dl's InstanceSegPreprocessd targets of seeded touching instances, with noise, as
`cytodl-runtime/tests/fixtures/instance_seg/make_cluster_fixtures.py`), writes it and cyto_dl's
labels to OUT_DIR, and prints one JSON line with the median milliseconds of RUNS clusterings.

    VENV/bin/python bench/instance_cluster_bench.py OUT_DIR [RUNS]
"""

import json
import os
import sys
import time

import numpy as np
import tifffile
import torch

from cyto_dl.models.im2im.utils.instance_seg import InstanceSegCluster, InstanceSegPreprocessd

out_dir = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
os.makedirs(out_dir, exist_ok=True)
pred_path = os.path.join(out_dir, "pred.tif")
shape = (32, 192, 192)
if not os.path.isfile(pred_path):
    rng = np.random.default_rng(5)
    grids = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    truth = np.zeros(shape, np.int32)
    for lab in range(1, 61):
        c = [rng.uniform(0.1 * s, 0.9 * s) for s in shape]
        r = rng.uniform(8, 14)
        d2 = ((grids[0] - c[0]) / (0.4 * r)) ** 2 + ((grids[1] - c[1]) / r) ** 2 + ((grids[2] - c[2]) / r) ** 2
        truth[d2 <= 1.0] = lab
    target = InstanceSegPreprocessd(label_keys="seg", dim=3)({"seg": torch.from_numpy(truth[None])})["seg"].numpy()
    pred = np.concatenate([target[:5], target[-2:-1]]).astype(np.float32)
    pred[0] += rng.normal(0, 0.3, shape)
    pred[1] = np.where(pred[1] > 0, 1.0, -1.0) + rng.normal(0, 0.3, shape)
    pred[2:5] += rng.normal(0, 0.3, (3,) + shape)
    tifffile.imwrite(pred_path, pred)
pred = torch.from_numpy(tifffile.imread(pred_path))
cluster = InstanceSegCluster(dim=3, min_size=100, progress=False)
times = []
for _ in range(runs):
    t = time.perf_counter()
    labels = cluster(pred)
    times.append((time.perf_counter() - t) * 1e3)
tifffile.imwrite(os.path.join(out_dir, "labels_cyto_dl.tif"), labels.astype(np.uint16))
times.sort()
print(json.dumps({"impl": "cyto_dl 0.6.2", "median_ms": round(times[len(times) // 2], 1), "runs": runs,
                  "instances": int(labels.max()), "shape": list(pred.shape)}))
