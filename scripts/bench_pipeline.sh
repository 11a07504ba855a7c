#!/usr/bin/env bash
# Side-by-side: cyto_dl's segmentation train pipeline in cytodl-runtime and in MONAI + tifffile
# (`../shared/bench/monai_pipeline_bench.py`), on the same data, in the same run.
# Usage: scripts/bench_pipeline.sh [DATA_DIR] [EPOCHS=3]
# Needs: pip install torch==2.5.1 monai==1.5.2 tifffile numpy (the data is made with
# ../shared/bench/make_bench_data.py when DATA_DIR does not exist yet).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_DIR:-$root/../shared}
data=${1:-/tmp/cytodl-bench-data}
epochs=${2:-3}
[ -f "$data/train.csv" ] || python3 "$shared/bench/make_bench_data.py" "$data" 8 > /dev/null
cargo build --release -q -p cytodl-runtime --example pipeline-bench --manifest-path "$root/Cargo.toml"
ours=$root/target/release/examples/pipeline-bench
# Peak RSS of a child process, from the kernel's accounting (works for Python and Rust alike).
peak() { python3 -c 'import resource,subprocess,sys; r=subprocess.run(sys.argv[1:],capture_output=True,text=True); sys.stdout.write(r.stdout); sys.stderr.write(r.stderr[-2000:]); print("peak_rss_mib=%.1f" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024)); sys.exit(r.returncode)' "$@"; }
cache=$(mktemp -d)
for w in 0 2; do
  echo "== workers=$w"
  peak python3 "$shared/bench/monai_pipeline_bench.py" "$data" "$epochs" "$w"
  peak "$ours" "$data" "$epochs" "$w"
  rm -rf "$cache"; mkdir -p "$cache"
  peak "$ours" "$data" 1 "$w" --cache "$cache" > /dev/null   # fills the cache
  peak "$ours" "$data" "$epochs" "$w" --cache "$cache"
done
rm -rf "$cache"
