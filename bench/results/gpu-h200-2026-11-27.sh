#!/bin/bash
# Device checks, round 2: f32-exact CUDA build (no autotune; direct transposed conv on GPU) for
# parity, the autotuned build (TF32 tensor cores) for speed, PyTorch+MONAI beside them, and the
# generated segmentation binary training on the GPU.
cd .devcarry
for f in exact/*.gz fast/*.gz; do gunzip -f "$f"; done
chmod +x exact/* fast/*
cd ..
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .devcarry/*.whl && export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
P=cytodl-runtime/tests/fixtures/parity
for f in dynunet3d_seg dynunet2d_res dynunet3d_basic_4lvl dynunet2d_aniso_basic; do
  echo "== parity exact $f"; timeout 100 .devcarry/exact/parity --device cuda $P/$f 2>&1 | tail -1
done
for f in dynunet3d_seg dynunet3d_basic_4lvl; do
  echo "== parity fast $f"; timeout 100 .devcarry/fast/parity --device cuda $P/$f 2>&1 | tail -1
done
echo "== parity exact lightning"; timeout 60 .devcarry/exact/parity --device cuda --ckpt $P/dynunet3d_seg/lightning_style.ckpt $P/dynunet3d_seg 2>&1 | tail -1
for s in small medium; do
  echo "== bench $s"
  timeout 100 python3 .devcarry/torch_dynunet_bench.py $s 20 2>&1 | tail -1
  timeout 100 .devcarry/fast/dynunet-bench $s 20 cuda 2>&1 | tail -1
  timeout 100 .devcarry/exact/dynunet-bench $s 10 cuda 2>&1 | tail -1
done
python3 - <<'PY'
import torch
print("torch cudnn.allow_tf32 =", torch.backends.cudnn.allow_tf32, "matmul.allow_tf32 =", torch.backends.cuda.matmul.allow_tf32)
PY
echo "== segmentation binary on cuda"
R=$PWD; mkdir -p /tmp/run && cd /tmp/run
gunzip -f $R/.devcarry/cytodl-build.gz 2>/dev/null; chmod +x $R/.devcarry/cytodl-build
$R/.devcarry/cytodl-build example-data data/example --files 5
timeout 200 $R/.devcarry/exact/segmentation train --device cuda trainer.max_epochs=2 --output-dir run 2>&1 | grep -v "step" | tail -8
cat run/csv/version_0/metrics.csv
timeout 100 $R/.devcarry/exact/segmentation predict --device cuda --ckpt run/checkpoints/last.ckpt --output-dir pred 2>&1 | tail -2
timeout 100 $R/.devcarry/exact/segmentation bench --device cuda --iters 5 2>&1 | tail -1
