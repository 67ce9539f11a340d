"""Benchmark of ``skelrobust run``: wall time, the attack's floor, and the runner's own overhead.

Runs the acceptance command of the runner on the embedded default (lite zoo, synthetic data)::

    skelrobust run --attack pgd --victim ctrgcn --surrogate stgcn --dataset synthetic \\
        --n-samples 64 --steps 50 --output DIR

and reports, measured in this one run:

- ``wall_seconds``: the whole call (loading, attack-set selection, attack, evaluation, writing);
- ``attack_seconds``: time inside the attack, summed over batches;
- ``floor_seconds``: steps x one forward+backward of the surrogate on each batch (the floor of any
  iterative attack), measured here on the same batches;
- ``attack_over_floor`` = attack / floor and ``runner_overhead_fraction`` = (wall - attack) / wall;
- ``white_box_success_rate`` (target >= 0.95 at eps 0.01 m, 50 steps) and the transfer row.

Usage: ``OMP_NUM_THREADS=2 python bench/bench_runner.py [--n-samples 64] [--steps 50] [--threads 2]``.
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--attack", default="pgd")
    parser.add_argument("--victim", default="ctrgcn")
    parser.add_argument("--surrogate", default="stgcn")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from skelrobust.loading import load_victim
    from skelrobust.benchmark.cell_config import RunConfig
    from skelrobust.benchmark.cell import run_cell

    surrogate = load_victim(args.surrogate, dataset="synthetic").eval()

    def floor_seconds(clean: np.ndarray, labels: np.ndarray) -> float:
        """steps x one forward+backward of the surrogate on each attack batch (mean of 3 repeats)."""
        total = 0.0
        for i in range(0, len(labels), args.batch_size):
            x = torch.from_numpy(clean[i : i + args.batch_size]).requires_grad_(True)
            y = torch.from_numpy(labels[i : i + args.batch_size])
            t0 = time.perf_counter()
            for _ in range(3):
                torch.autograd.grad(F.cross_entropy(surrogate(x), y, reduction="none").sum(), x)
            total += (time.perf_counter() - t0) / 3 * args.steps
        return total

    with tempfile.TemporaryDirectory() as out:
        cfg = RunConfig(attack=args.attack, victims=[args.victim], surrogate=args.surrogate, dataset="synthetic",
                        n_samples=args.n_samples, steps=args.steps, batch_size=args.batch_size, device="cpu")
        start = time.perf_counter()
        results = run_cell(cfg, out, progress=False)
        wall = time.perf_counter() - start
        with np.load(f"{out}/adversarial.npz", allow_pickle=False) as z:
            clean, labels = z["clean"], z["labels"]
    # The floor is measured just after the run on the same batches; the machine is shared, so rerun to
    # check that the ratio is stable before trusting it.
    floor = floor_seconds(clean, labels)
    attack_seconds = results["timing"]["seconds"]
    print(json.dumps({
        "command": f"skelrobust run --attack {args.attack} --victim {args.victim} --surrogate {args.surrogate} "
                   f"--dataset synthetic --n-samples {args.n_samples} --steps {args.steps}",
        "threads": args.threads,
        "n_samples": results["n_samples"],
        "wall_seconds": round(wall, 2),
        "attack_seconds": round(attack_seconds, 2),
        "floor_seconds": round(floor, 2),
        "attack_over_floor": round(attack_seconds / floor, 3),
        "runner_overhead_fraction": round((wall - attack_seconds) / wall, 3),
        "selection_seconds": round(results["timing"]["selection_seconds"], 2),
        "evaluation_seconds": round(results["timing"]["evaluation_seconds"], 2),
        "surrogate_clean_accuracy": results["surrogate_clean_accuracy"],
        "white_box_success_rate": results["white_box_success_rate"],
        "victims": results["victims"],
        "imperceptibility": {k: results["imperceptibility"][k] for k in ("linf", "l2", "bone_length_rel_error")},
    }, indent=2))


if __name__ == "__main__":
    main()
