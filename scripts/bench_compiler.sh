#!/usr/bin/env bash
# The compiler's own costs: `cytodl-build check` and `generate` (mean over RUNS), the incremental
# build of a new experiment binary (after the runtime's first build), a rebuild after a config
# edit, and `cytodl_experiment!` expansion (the tests crate, which expands two experiments).
# Usage: scripts/bench_compiler.sh [RUNS]
set -euo pipefail
runs=${1:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release -q -p cytodl-build
bin=$root/target/release/cytodl-build
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
mean_ms() { # command... -> mean milliseconds per run
  "$@" > /dev/null 2>&1
  local t; t=$(date +%s%N)
  for _ in $(seq "$runs"); do "$@" > /dev/null 2>&1; done
  echo $(( ($(date +%s%N) - t) / runs / 1000000 ))
}
check_ms=$(mean_ms "$bin" check configs/experiment/segmentation.yaml)
tmp=$(mktemp -d)
generate_ms=$(mean_ms "$bin" generate configs/experiment/segmentation.yaml --out "$tmp/gen")
# Make sure the runtime is built (release), then time a brand-new experiment's binary.
"$bin" configs/experiment/segmentation.yaml > /dev/null 2>&1
exp=configs/experiment/bench_new_tmp.yaml
trap 'rm -rf "$exp" generated/bench_new_tmp "$tmp"' EXIT
sed -e 's/experiment_name: segmentation/experiment_name: bench_new_tmp/' -e 's/  max_epochs: 20/  max_epochs: 3/' configs/experiment/segmentation.yaml > "$exp"
t=$(date +%s%N); "$bin" "$exp" > /dev/null 2>&1; new_ms=$(ms_since "$t")
sed -i 's/  max_epochs: 3/  max_epochs: 4/' "$exp"
t=$(date +%s%N); "$bin" "$exp" > /dev/null 2>&1; edit_ms=$(ms_since "$t")
rm -rf "$exp" generated/bench_new_tmp
# Macro expansion: rebuild the tests crate's library after touching it (expansion + its compile).
cargo build -q -p cytodl-tests
touch tests/src/lib.rs
t=$(date +%s%N); cargo build -q -p cytodl-tests; macro_ms=$(ms_since "$t")
inproc=$(cargo bench -q -p cytodl-build --bench expand 2>/dev/null | sed -n 's/^mean_ns=//p')
echo "| step | time |"
echo "| --- | --- |"
echo "| \`cytodl-build check configs/experiment/segmentation.yaml\` (mean of $runs) | ${check_ms} ms |"
echo "| \`cytodl-build generate\` (mean of $runs) | ${generate_ms} ms |"
echo "| new experiment binary, runtime already built (\`cytodl-build build\`, release) | ${new_ms} ms |"
echo "| rebuild after editing one value of the experiment | ${edit_ms} ms |"
echo "| tests crate rebuild: 2 × \`cytodl_experiment!\` expansion + compile of the modules | ${macro_ms} ms |"
echo "| \`cytodl_experiment!\` expansion alone, in process (compose, resolve, check, codegen) | $(( ${inproc:-0} / 1000000 )) ms |"
