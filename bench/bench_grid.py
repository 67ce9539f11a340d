"""Benchmark of ``skelrobust benchmark``: the grid's own overhead, and the Ray executor against the local one.

Measured in one run on the embedded set (lite zoo, synthetic data):

- ``overhead``: the small protocol of the grid's tests (2 attacks x 1 surrogate x 2 victims x 2 defenses = 8
  cells in 2 adversarial sets) with ``--steps`` and ``--n-samples``, run by the local executor.
  ``overhead_fraction = (grid wall - sum of the sets' runner wall times) / sum of the sets' runner wall
  times``: what the grid adds (protocol, folder, cell files, table, leaderboard) to the cells' ``run`` time.
  Target <= 0.05.
- ``ray_vs_local``: a 4-cell grid (pgd and mifgsm from stgcn, victim ctrgcn, defenses none and lowpass: 2
  sets) run once by the local executor and once by the Ray executor on a local 2-CPU cluster started by the
  call (its start-up included), each into a fresh folder. ``ratio = ray wall / local wall``; target <= 1.2.
  ``identical_tables`` checks that both give the same table (time and source-tree columns aside).

Usage: ``python bench/bench_grid.py [--steps 30] [--n-samples 32] [--out bench/results/grid.json]``.
Prints one JSON object (and writes it to ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--n-samples", type=int, default=32)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from skelrobust.benchmark import load_results, parse_protocol, run_grid
    from skelrobust.benchmark.executors import RayExecutor

    defaults = {"steps": args.steps, "seed": 0, "n_samples": args.n_samples, "batch_size": 32}
    small = parse_protocol({"protocol": "bench-overhead", "defaults": defaults, "datasets": {"synthetic": {
        "attacks": ["pgd", "mifgsm"], "surrogates": ["stgcn"], "victims": ["stgcn", "ctrgcn"], "defenses": ["none", "lowpass"]}}})
    four = parse_protocol({"protocol": "bench-four-cells", "defaults": defaults, "datasets": {"synthetic": {
        "attacks": ["pgd", "mifgsm"], "surrogates": ["stgcn"], "victims": ["ctrgcn"], "defenses": ["none", "lowpass"]}}})
    result: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                "load_average_at_start": os.getloadavg()}, "steps": args.steps, "n_samples": args.n_samples}
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        report = run_grid(small, Path(scratch) / "overhead", progress=False)
        wall = time.perf_counter() - start
        result["overhead"] = {
            "cells": report.cells_total, "sets": len(small.sets), "grid_wall_seconds": round(wall, 2),
            "sum_of_set_run_seconds": round(report.set_seconds, 2),
            "overhead_fraction": round((wall - report.set_seconds) / report.set_seconds, 4),
        }
        start = time.perf_counter()
        run_grid(four, Path(scratch) / "local", progress=False)
        local_wall = time.perf_counter() - start
        start = time.perf_counter()
        run_grid(four, Path(scratch) / "ray", executor=RayExecutor(num_cpus=2), progress=False)
        ray_wall = time.perf_counter() - start
        local, remote = load_results(Path(scratch) / "local"), load_results(Path(scratch) / "ray")
        steady = [c for c in local.columns if c not in ("attack_seconds", "seconds_per_sample", "set_seconds", "git_commit")]
        result["ray_vs_local"] = {
            "cells": len(local), "local_wall_seconds": round(local_wall, 2), "ray_wall_seconds": round(ray_wall, 2),
            "ratio": round(ray_wall / local_wall, 3), "ray_cluster_cpus": 2, "identical_tables": bool(local[steady].equals(remote[steady])),
        }
    result["machine"]["load_average_at_end"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
