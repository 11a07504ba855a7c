#!/usr/bin/env bash
# Side-by-side: MONAI's DynUNet train step and eval forward on burn (ours, CPU) and on PyTorch +
# MONAI (`../shared/bench/torch_dynunet_bench.py`), same models, same machine, same run, each
# with its peak RSS. Rounds alternate ours / peer so that machine noise hits both.
# Usage: scripts/bench_dynunet.sh [ROUNDS=2] [STEPS_SMALL=10] [STEPS_MEDIUM=5]
# Needs: pip install torch monai. `CYTODL_BURN_CONV=1` in the environment measures burn's own
# convolution kernels instead of ours (nn::conv_cpu).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_DIR:-$root/../shared}
rounds=${1:-2}
small=${2:-10}
medium=${3:-5}
cargo build --release -q -p cytodl-runtime --example dynunet-bench --manifest-path "$root/Cargo.toml"
ours=$root/target/release/examples/dynunet-bench
# Peak RSS of a child process, from the kernel's accounting (works for Python and Rust alike).
peak() { python3 -c 'import resource,subprocess,sys; r=subprocess.run(sys.argv[1:],capture_output=True,text=True); sys.stdout.write(r.stdout.strip()); sys.stderr.write(r.stderr[-2000:]); print(" peak_rss_mib=%.1f" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024)); sys.exit(r.returncode)' "$@"; }
for r in $(seq "$rounds"); do
  for size in small medium; do
    steps=$small; [ "$size" = medium ] && steps=$medium
    echo "== round $r, $size"
    peak "$ours" "$size" "$steps"
    peak python3 "$shared/bench/torch_dynunet_bench.py" "$size" "$steps"
  done
done
