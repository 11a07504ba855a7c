#!/usr/bin/env bash
# Side-by-side: resolving cyto_dl's experiment/im2im/segmentation with `cytodl-build resolve`
# and with real Hydra 1.3.2 + OmegaConf 2.3.0 (the oracle), on the same machine, same run.
# Usage: scripts/bench_resolve.sh [RUNS]   (needs ../shared and `pip install hydra-core==1.3.2 omegaconf==2.3.0 hydra-colorlog`)
set -euo pipefail
runs=${1:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_DIR:-$root/../shared}
cfg=$shared/reference/cyto_dl-configs
oracle=$shared/tools/hydra_oracle.py
ovs=(experiment=im2im/segmentation paths.output_dir=/out paths.work_dir=/wd)
cargo build --release -q -p cytodl-build --manifest-path "$root/Cargo.toml"
bin=$root/target/release/cytodl-build
export PROJECT_ROOT=/proj
tmp=$(mktemp -d)
ms() { python3 -c "import sys; print(f'{float(sys.argv[1])/1e6:.1f}')" "$1"; }
time_runs() { # command... -> mean nanoseconds per run
  local start end
  "$@" > /dev/null 2>&1  # warm-up (page cache, pyc files)
  start=$(date +%s%N)
  for _ in $(seq "$runs"); do "$@" > /dev/null 2>&1; done
  end=$(date +%s%N)
  echo $(( (end - start) / runs ))
}
ours=$(time_runs "$bin" resolve --config-dir "$cfg" "${ovs[@]}")
theirs=$(time_runs python3 "$oracle" "$cfg" train.yaml "$tmp/out.yaml" "${ovs[@]}")
# In-process: the compose + resolve call alone, without interpreter or process start-up.
ours_inproc=$(cargo bench -q -p cytodl-build --bench resolve --manifest-path "$root/Cargo.toml" -- "$cfg" 2>/dev/null | sed -n 's/^mean_ns=//p')
theirs_inproc=$(python3 - "$cfg" "$runs" <<'PY'
import os, sys, time
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from hydra.core.global_hydra import GlobalHydra
OmegaConf.register_new_resolver("kv_to_dict", lambda kv: OmegaConf.create({i[0]: OmegaConf.to_container(i[1], resolve=True) for i in kv}))
OmegaConf.register_new_resolver("eval", eval)
cfg_dir, runs = sys.argv[1], int(sys.argv[2])
ovs = ["experiment=im2im/segmentation", "paths.output_dir=/out", "paths.work_dir=/wd"]
with initialize_config_dir(version_base="1.3", config_dir=os.path.abspath(cfg_dir)):
    OmegaConf.to_yaml(OmegaConf.create(OmegaConf.to_container(compose("train.yaml", overrides=ovs), resolve=True)))
    t = time.perf_counter_ns()
    for _ in range(runs):
        c = compose("train.yaml", overrides=ovs)
        OmegaConf.resolve(c)
        OmegaConf.to_yaml(c)
    print((time.perf_counter_ns() - t) // runs)
PY
)
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.1f}x')" "$1" "$2"; }
echo "| measure | cytodl-build | Hydra 1.3.2 + OmegaConf 2.3.0 | speed-up |"
echo "|---|---|---|---|"
echo "| whole command (process start to YAML out), mean of $runs | $(ms "$ours") ms | $(ms "$theirs") ms | $(ratio "$theirs" "$ours") |"
echo "| compose + resolve + to_yaml in process | $(ms "$ours_inproc") ms | $(ms "$theirs_inproc") ms | $(ratio "$theirs_inproc" "$ours_inproc") |"
rm -rf "$tmp"
