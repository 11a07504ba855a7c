#!/usr/bin/env bash
# README's test command on fresh clones, as a new user runs it: `cargo test --workspace` in a new
# clone of HEAD with an empty target dir, RUNS times in a row (../shared linked beside each clone,
# as in CI). Prints one line per run: pass/fail and minutes; logs in $OUT (default /tmp/fresh-clones).
# Usage: scripts/fresh_clone_test.sh [RUNS]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
out=${OUT:-/tmp/fresh-clones}
mkdir -p "$out"
commit=$(git -C "$root" rev-parse --short HEAD)
echo "fresh clones of $commit: $runs runs, logs in $out"
for i in $(seq 1 "$runs"); do
  dir=$(mktemp -d /tmp/fresh-clone-XXXXXX)
  git clone -q "$root" "$dir/main" && git -C "$dir/main" checkout -q "$commit"
  [ -d "$root/../shared" ] && ln -s "$(cd "$root/../shared" && pwd)" "$dir/shared"
  start=$(date +%s)
  (cd "$dir/main" && env -u CARGO_TARGET_DIR cargo test --workspace) > "$out/run$i.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  passed=$(grep -c "^test result: ok" "$out/run$i.log")
  failed=$(grep -c "^test result: FAILED" "$out/run$i.log")
  skips=$(grep -c "^SKIP" "$out/run$i.log")
  echo "run $i: exit $rc, $passed test binaries ok, $failed failed, $skips skip lines, $((secs / 60)) min $((secs % 60)) s"
  rm -rf "$dir"
done
