#!/bin/bash
# Every GPU check in one call on a lent device (it has no Rust toolchain). Prepare here first:
#   LIBTORCH=<site-packages>/torch scripts/gpu_check.sh --prepare
#       (builds with --features cuda,libtorch against the device's torch — 2.11.0+cu130, from
#        `pip install torch==2.11.0` — strips, gzips into .devcarry/, downloads MONAI's wheel)
# then call the device with carry [".devcarry"] and the command `bash scripts/gpu_check.sh [quick]`, and
# record the log ($OUT/gpu_check.log) in BENCHMARKS.md. In order of importance (each step has its
# own timeout, so a slow one loses only itself):
# 1. parity of output, loss and every gradient on the four DynUNet fixtures, exact f32 kernels;
# 2. train-step speed of the small and medium DynUNet beside PyTorch + MONAI in the same call:
#    the exact kernels (our gather kernel, and burn's direct kernels with CYTODL_GPU_GATHER=off),
#    implicit GEMM on tensor cores (CYTODL_GPU_CONV=implicit-gemm), and that with
#    bf16 / fp16 mixed precision;
# 3. the generated segmentation binary training (f32, 16-mixed with loss scaling, bf16-mixed),
#    predicting and benchmarking on CUDA;
# 4. parity with tensor cores and with mixed precision (how far from f32, not held to its bar);
# 5. the LibTorch backend (cuDNN) against the device's own torch: parity (TF32 off), speed beside
#    PyTorch, the segmentation binary;
# 6. burn's operation fusion (the gpu-fusion build): parity, and the train step beside PyTorch;
# 7. kernel launches per medium train step (CubeCL profile), without and with fusion.
set -u
if [ "${1:-}" = "--prepare" ]; then
  set -e
  : "${LIBTORCH:?set LIBTORCH to the torch folder of pip install torch==2.11.0, the version on the device}"
  export LIBTORCH LIBTORCH_BYPASS_VERSION_CHECK=1
  # One package set for both builds, so that cargo unifies features once and builds burn once.
  pkgs=(-p cytodl-runtime --features cuda,libtorch -p cytodl-exp-segmentation --features cytodl-exp-segmentation/cuda,cytodl-exp-segmentation/libtorch -p cytodl-build)
  cargo build --release "${pkgs[@]}" --example parity --example dynunet-bench
  cargo build --release "${pkgs[@]}" --bins
  # burn's operation fusion (feature gpu-fusion) in a target dir of its own: burn built twice.
  cargo build --release --target-dir target/gpu-fusion -p cytodl-runtime --features cuda,gpu-fusion --example parity --example dynunet-bench
  rm -rf .devcarry && mkdir -p .devcarry
  cp target/release/examples/parity target/release/examples/dynunet-bench target/release/segmentation target/release/cytodl-build .devcarry/
  cp target/gpu-fusion/release/examples/parity .devcarry/parity-fusion
  cp target/gpu-fusion/release/examples/dynunet-bench .devcarry/dynunet-bench-fusion
  strip .devcarry/* && gzip .devcarry/*
  cp ../shared/bench/torch_dynunet_bench.py scripts/cubecl_launches.py .devcarry/
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 -d .devcarry monai==1.5.2
  grep -qx '/.devcarry/' .git/info/exclude 2>/dev/null || echo '/.devcarry/' >> .git/info/exclude
  du -sh .devcarry
  exit 0
fi

OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
R=$PWD; D=$R/.devcarry
cd "$D" && for f in *.gz; do gunzip -f "$f"; done; chmod +x parity dynunet-bench segmentation cytodl-build parity-fusion dynunet-bench-fusion; cd "$R"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$D"/monai-*.whl && export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, monai; print('torch', torch.__version__, 'monai', monai.__version__, 'cudnn.allow_tf32', torch.backends.cudnn.allow_tf32)"
t0=$SECONDS
stamp() { echo "   [$((SECONDS - t0)) s]"; }

P=cytodl-runtime/tests/fixtures/parity
parity() {
  echo "## 1. parity, exact f32 kernels (CPU bar: out <= 1e-4, loss <= 1e-5, max_rel_grad <= 1e-3)"
  for f in ${PARITY_FIXTURES:-dynunet3d_seg dynunet2d_res dynunet3d_basic_4lvl dynunet2d_aniso_basic}; do
    echo "== parity cuda $f"
    timeout 60 "$D/parity" --device cuda --per-param "$P/$f" > "/tmp/parity_$f.log" 2>&1
    tail -1 "/tmp/parity_$f.log"; grep -m3 "worst\|error" "/tmp/parity_$f.log"; stamp
  done
}

# $1: the variants to time besides PyTorch ("direct burn-direct tc tc-bf16 tc-fp16"; direct = our
# gather kernel, burn-direct = burn's direct kernels in its place, tc = implicit GEMM).
speed() {
  echo "## 2. train step beside PyTorch (ms; same call)"
  for s in small medium; do
    echo "== bench $s"
    timeout 60 python3 "$D/torch_dynunet_bench.py" $s 20 2>&1 | tail -1
    for v in $1; do
      case $v in
        direct) n=20; [ $s = medium ] && n=10; timeout 60 "$D/dynunet-bench" $s $n cuda 2>&1 | tail -1 ;;
        burn-direct) n=20; [ $s = medium ] && n=10; CYTODL_GPU_GATHER=off timeout 60 "$D/dynunet-bench" $s $n cuda 2>&1 | tail -1 ;;
        tc) CYTODL_GPU_CONV=implicit-gemm timeout 60 "$D/dynunet-bench" $s 20 cuda 2>&1 | tail -3 ;;
        tc-bf16) CYTODL_GPU_CONV=implicit-gemm timeout 60 "$D/dynunet-bench" $s 20 cuda bf16-mixed 2>&1 | tail -1 ;;
        tc-fp16) CYTODL_GPU_CONV=implicit-gemm timeout 60 "$D/dynunet-bench" $s 20 cuda 16-mixed 2>&1 | tail -1 ;;
      esac
    done
    stamp
  done
}

binary() {
  echo "## 3. the generated segmentation binary on CUDA"
  mkdir -p /tmp/run && cd /tmp/run
  "$D/cytodl-build" example-data data/example --files 5 | tail -1
  timeout 90 "$D/segmentation" train --device cuda trainer.max_epochs=2 --output-dir run 2>&1 | grep -v "step" | tail -4; stamp
  CYTODL_GPU_CONV=implicit-gemm timeout 90 "$D/segmentation" train --device cuda trainer.max_epochs=2 trainer.precision=16-mixed --output-dir run_fp16 2>&1 | grep -v "step" | tail -4; stamp
  CYTODL_GPU_CONV=implicit-gemm timeout 90 "$D/segmentation" train --device cuda trainer.max_epochs=2 trainer.precision=bf16-mixed --output-dir run_bf16 2>&1 | grep -v "step" | tail -4; stamp
  timeout 60 "$D/segmentation" predict --device cuda --ckpt run/checkpoints/last.ckpt --output-dir pred 2>&1 | tail -1
  # No --device: cyto_dl's `trainer: gpu` (and Lightning's default `auto`) pick CUDA themselves.
  for acc in gpu auto; do
    timeout 60 "$D/segmentation" train trainer.accelerator=$acc trainer.max_epochs=1 trainer.limit_train_batches=1 --output-dir run_$acc 2>&1 | grep -E "^(device|error|note):" | tail -2
  done
  CYTODL_GPU_CONV=implicit-gemm timeout 60 "$D/segmentation" bench --device cuda --iters 5 2>&1 | tail -1; stamp
  # Data parallel on every GPU the machine has (issue 14): the same global batch, epoch times.
  gpus=$(nvidia-smi --list-gpus | wc -l)
  if [ "$gpus" -gt 1 ]; then
    echo "== data parallel: 1 GPU batch 4 vs $gpus GPUs batch $(( (4 + gpus - 1) / gpus )) each"
    timeout 120 "$D/segmentation" train --device cuda trainer.max_epochs=3 data.batch_size=4 --output-dir dp1 2>&1 | grep "done in" | tail -2; stamp
    timeout 120 "$D/segmentation" train --device cuda trainer.max_epochs=3 trainer.devices=-1 data.batch_size=$(( (4 + gpus - 1) / gpus )) --output-dir dpn 2>&1 | grep -E "data parallel|done in" | tail -3; stamp
  else
    echo "== data parallel: one GPU only, skipped"
  fi
  cd "$R"
}

numerics() {
  echo "## 4. parity with tensor cores / mixed precision (distance from f32, informative)"
  CYTODL_GPU_CONV=implicit-gemm timeout 60 "$D/parity" --device cuda --per-param "$P/dynunet3d_seg" > /tmp/parity_tc.log 2>&1
  tail -1 /tmp/parity_tc.log; grep -m1 "worst" /tmp/parity_tc.log
  CYTODL_GPU_CONV=implicit-gemm timeout 60 "$D/parity" --device cuda "$P/dynunet3d_basic_4lvl" 2>&1 | tail -1
  timeout 60 "$D/parity" --device cuda --precision bf16-mixed "$P/dynunet3d_seg" 2>&1 | tail -1
  timeout 60 "$D/parity" --device cuda --precision 16-mixed "$P/dynunet3d_seg" 2>&1 | tail -1
  echo "== parity cuda lightning checkpoint"
  timeout 60 "$D/parity" --device cuda --ckpt "$P/dynunet3d_seg/lightning_style.ckpt" "$P/dynunet3d_seg" 2>&1 | tail -1
  stamp
}

libtorch() {
  echo "## 5. LibTorch backend (cuDNN) on the device's torch"
  TL=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  export LD_LIBRARY_PATH=$TL${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  for f in dynunet3d_seg dynunet2d_res dynunet3d_basic_4lvl dynunet2d_aniso_basic; do
    echo "== parity libtorch $f (NVIDIA_TF32_OVERRIDE=0: exact f32)"
    NVIDIA_TF32_OVERRIDE=0 timeout 60 "$D/parity" --device libtorch --per-param "$P/$f" > "/tmp/parity_lt_$f.log" 2>&1
    tail -1 "/tmp/parity_lt_$f.log"; grep -m3 "worst\|error" "/tmp/parity_lt_$f.log"
  done
  NVIDIA_TF32_OVERRIDE=0 timeout 60 "$D/parity" --device libtorch --ckpt "$P/dynunet3d_seg/lightning_style.ckpt" "$P/dynunet3d_seg" 2>&1 | tail -1
  echo "== parity libtorch dynunet3d_seg, TF32 as PyTorch's default"
  timeout 60 "$D/parity" --device libtorch "$P/dynunet3d_seg" 2>&1 | tail -1; stamp
  for s in small medium; do
    echo "== bench $s"
    timeout 60 python3 "$D/torch_dynunet_bench.py" $s 20 2>&1 | tail -1
    for p in 32 bf16-mixed 16-mixed; do timeout 60 "$D/dynunet-bench" $s 20 libtorch $p 2>&1 | tail -1; done
    timeout 60 python3 "$D/torch_dynunet_bench.py" $s 20 2>&1 | tail -1
    CYTODL_GPU_CONV=implicit-gemm timeout 60 "$D/dynunet-bench" $s 20 cuda 2>&1 | tail -1
    stamp
  done
  mkdir -p /tmp/run && cd /tmp/run
  [ -d data/example ] || "$D/cytodl-build" example-data data/example --files 5 | tail -1
  timeout 90 "$D/segmentation" train --device libtorch trainer.max_epochs=2 --output-dir run_lt 2>&1 | grep -v "step" | tail -4; stamp
  timeout 90 "$D/segmentation" train --device libtorch trainer.max_epochs=2 trainer.precision=16-mixed --output-dir run_lt16 2>&1 | grep -v "step" | tail -4; stamp
  timeout 60 "$D/segmentation" predict --device libtorch --ckpt run_lt/checkpoints/last.ckpt --output-dir pred_lt 2>&1 | tail -1
  timeout 60 "$D/segmentation" bench --device libtorch --iters 5 2>&1 | tail -1; stamp
  cd "$R"
}

fusion() {
  echo "## 6. burn's operation fusion (gpu-fusion build): parity and train step beside PyTorch"
  for f in dynunet3d_seg dynunet3d_basic_4lvl; do
    echo "== parity cuda+fusion $f"
    timeout 90 "$D/parity-fusion" --device cuda --per-param "$P/$f" > "/tmp/parity_fu_$f.log" 2>&1
    tail -1 "/tmp/parity_fu_$f.log"; grep -m3 "worst\|error" "/tmp/parity_fu_$f.log"
  done
  echo "== parity cuda+fusion dynunet3d_seg, implicit GEMM (TF32; informative)"
  CYTODL_GPU_CONV=implicit-gemm timeout 90 "$D/parity-fusion" --device cuda "$P/dynunet3d_seg" 2>&1 | tail -1; stamp
  for s in small medium; do
    echo "== bench $s: PyTorch, then fusion with the direct kernels, implicit GEMM, implicit GEMM bf16"
    timeout 60 python3 "$D/torch_dynunet_bench.py" $s 20 2>&1 | tail -1
    timeout 90 "$D/dynunet-bench-fusion" $s 20 cuda 2>&1 | tail -1
    CYTODL_GPU_CONV=implicit-gemm timeout 90 "$D/dynunet-bench-fusion" $s 20 cuda 2>&1 | tail -1
    CYTODL_GPU_CONV=implicit-gemm timeout 90 "$D/dynunet-bench-fusion" $s 20 cuda bf16-mixed 2>&1 | tail -1
    stamp
  done
}

launches() {
  echo "## 7. kernel launches per steady medium train step (CubeCL profile; scripts/cubecl_launches.py)"
  for v in "dynunet-bench direct" "dynunet-bench implicit-gemm" "dynunet-bench-fusion implicit-gemm"; do
    set -- $v
    echo "== $1, CYTODL_GPU_CONV=$2"
    rm -f /tmp/prof.log
    CUBECL_DEBUG_LOG=/tmp/prof.log CUBECL_DEBUG_OPTION=profile CYTODL_BENCH_WARMUP=1 CYTODL_GPU_CONV=$2 timeout 90 "$D/$1" medium 1 cuda > /dev/null 2>&1
    python3 "$D/cubecl_launches.py" /tmp/prof.log > /tmp/launches.txt
    head -14 /tmp/launches.txt; tail -1 /tmp/launches.txt
  done
  stamp
}

# Sections to run: all by default; `quick` is parity on two fixtures, the exact and tensor-core timings
# (for a second call when little device time is left).
case "${1:-all}" in
  quick) PARITY_FIXTURES="dynunet3d_seg dynunet3d_basic_4lvl" parity; speed "direct burn-direct tc tc-bf16"; fusion ;;
  all) parity; speed "direct burn-direct tc tc-bf16 tc-fp16"; fusion; binary; numerics; libtorch; launches ;;
  *) for section in "$@"; do $section; done ;;
esac
