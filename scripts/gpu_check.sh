#!/bin/bash
# Every GPU check in one call on the lent device (no Rust toolchain there). Prepare here first:
#   cargo build --release -p cytodl-runtime --features cuda --example parity --example dynunet-bench
#   target/release/cytodl-build build --features cuda configs/experiment/segmentation.yaml
#   mkdir -p .devcarry && cp target/release/examples/{parity,dynunet-bench} target/release/segmentation \
#     target/release/cytodl-build ../shared/bench/torch_dynunet_bench.py .devcarry/ && strip .devcarry/* ; gzip .devcarry/*[^y]
# then run it with carry [".devcarry"] and record its output in BENCHMARKS.md. What it checks:
# parity of output, loss and every gradient on the four fixtures (per parameter when one fails;
# CI checks the same kernels on wgpu), train-step speed beside PyTorch, and the generated binary
# training, predicting and benchmarking on CUDA.
set -u
cd .devcarry && for f in *.gz; do gunzip -f "$f"; done; chmod +x parity dynunet-bench segmentation cytodl-build; cd ..
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
P=cytodl-runtime/tests/fixtures/parity
for f in dynunet3d_seg dynunet2d_res dynunet3d_basic_4lvl dynunet2d_aniso_basic; do
  echo "== parity cuda $f"
  out=$(timeout 120 .devcarry/parity --device cuda --per-param $P/$f 2>&1)
  echo "$out" | tail -1
  echo "$out" | grep -q '"max_rel_grad": [0-9.]*e-\(4\|5\|6\|7\|8\)' || echo "$out" | head -12
done
echo "== parity cuda lightning checkpoint"; timeout 60 .devcarry/parity --device cuda --ckpt $P/dynunet3d_seg/lightning_style.ckpt $P/dynunet3d_seg 2>&1 | tail -1
for s in small medium; do
  echo "== bench $s (torch, then ours)"
  timeout 100 python3 .devcarry/torch_dynunet_bench.py $s 20 2>&1 | tail -1
  timeout 100 .devcarry/dynunet-bench $s 20 cuda 2>&1 | tail -1
done
echo "== segmentation binary on cuda"
R=$PWD; mkdir -p /tmp/run && cd /tmp/run
$R/.devcarry/cytodl-build example-data data/example --files 5
timeout 200 $R/.devcarry/segmentation train --device cuda trainer.max_epochs=2 --output-dir run 2>&1 | grep -v "step" | tail -6
timeout 200 $R/.devcarry/segmentation train --device cuda trainer.max_epochs=1 trainer.precision=bf16-mixed --output-dir run_bf16 2>&1 | grep -v "step" | tail -4
timeout 100 $R/.devcarry/segmentation predict --device cuda --ckpt run/checkpoints/last.ckpt --output-dir pred 2>&1 | tail -1
timeout 100 $R/.devcarry/segmentation bench --device cuda --iters 5 2>&1 | tail -1
