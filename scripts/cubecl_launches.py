#!/usr/bin/env python3
"""Kernel launches of one profiled interval from a CubeCL profile log.

CubeCL (`CUBECL_DEBUG_OPTION=profile`, `CUBECL_DEBUG_LOG=FILE`) prints a summary table at each
device sync. `dynunet-bench` syncs after its warm-up steps and after the timed ones, so with
`CYTODL_BENCH_WARMUP=1` and one timed step the last table is exactly one steady train step:

    CUBECL_DEBUG_LOG=/tmp/prof.log CUBECL_DEBUG_OPTION=profile CYTODL_BENCH_WARMUP=1 \
        target/release/examples/dynunet-bench small 1 wgpu
    python3 scripts/cubecl_launches.py /tmp/prof.log

Prints launches per kernel (most first) and the total. Usage: cubecl_launches.py LOG [TABLE]
(TABLE: which summary, 0-based; default the last).
"""
import sys


def tables(lines):
    """Each summary table as (rows, total line): rows are (launches, duration, kernel)."""
    out, rows, inside = [], [], False
    for line in lines:
        if line.startswith("| Name"):
            rows, inside = [], True
        elif inside and line.startswith("| Total"):
            out.append((rows, line))
            inside = False
        elif inside and line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 4 and cells[-2].isdigit():
                rows.append((int(cells[-2]), cells[-3], " | ".join(cells[:-3])))
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    with open(sys.argv[1], errors="replace") as f:
        found = tables(f.read().split("\n"))
    if not found:
        sys.exit(f"{sys.argv[1]}: no CubeCL profile summary (was CUBECL_DEBUG_OPTION=profile set?)")
    which = int(sys.argv[2]) if len(sys.argv) > 2 else -1
    rows, total = found[which]
    for launches, duration, kernel in sorted(rows, reverse=True):
        print(f"{launches:6d}  {duration:>14}  {kernel[:90]}")
    print(f"total launches: {sum(r[0] for r in rows)}   ({total.strip()})")


if __name__ == "__main__":
    main()
