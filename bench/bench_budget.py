"""Calibrate a dataset's protocol budget: the smallest l-inf eps on a grid at which white-box PGD fools the
surrogate on at least a target fraction of its test attack set.

The protocol budget of ``synthetic`` in ``benchmark.yaml`` comes from this script: 50-step PGD (its default
step rule, ``2.5 eps / steps`` with a random start) on the zoo ST-GCN, 256 test samples the model gets right,
grid 0.5 cm, target 95 %. The grid is scanned upwards and stops at the first budget that reaches the target,
so every smaller grid value is measured as failing. Each budget is one ``run_cell`` call (the runner's
seeded attack set, the same for every budget); the rate has a 95 % percentile-bootstrap interval.

    python bench/bench_budget.py --dataset synthetic --surrogate stgcn --steps 50 --n-samples 256 \\
        --grid 0.02,0.025,0.03,0.035,0.04,0.045,0.05 --output bench/results/budget_synthetic_stgcn.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from intervals import bootstrap_interval


def _finished(folder: Path, cfg: Any) -> dict[str, Any] | None:
    """A finished run of the same measurement in ``folder`` (same attack, data, budget, steps, set and seed),
    reused as it is even when the recorded attack configuration has since gained fields, else None."""
    path = folder / "results.json"
    if not path.is_file():
        return None
    results = json.loads(path.read_text(encoding="utf-8"))
    same = (results.get("attack"), results.get("dataset"), results.get("eps"), results.get("steps"),
            results.get("n_samples_requested"), results.get("seed"), results.get("attacked_model"))
    return results if same == ("pgd", cfg.dataset, cfg.eps, cfg.steps, cfg.n_samples, cfg.seed, cfg.victims[0]) else None


def measure(args: argparse.Namespace, eps: float) -> dict[str, Any]:
    from skelrobust.benchmark.cell_config import RunConfig
    from skelrobust.benchmark.run_folder import load_run
    from skelrobust.benchmark.cell import run_cell

    cfg = RunConfig(
        attack="pgd", victims=[args.surrogate], dataset=args.dataset, root=args.root, eps=eps, steps=args.steps,
        n_samples=args.n_samples, batch_size=args.batch_size, seed=args.seed, device="cpu",
    )
    folder = Path(args.run_root) / f"pgd-{args.surrogate}-eps{eps:g}-n{args.n_samples}"
    start = time.perf_counter()
    results = _finished(folder, cfg) or run_cell(cfg, folder, progress=False)
    _, arrays = load_run(folder)
    with torch.inference_mode():
        from skelrobust.loading import load_victim

        model = load_victim(args.surrogate, dataset=args.dataset)
        model.eval()
        pred = model(torch.from_numpy(arrays["adversarial"])).argmax(1).numpy()
    fooled = (pred != arrays["labels"]).astype(np.float64)
    return {
        "eps": eps,
        "n_samples": int(results["n_samples"]),
        "white_box_success_rate": float(results["white_box_success_rate"]),
        "recomputed_success_rate": float(fooled.mean()),
        "ci95": bootstrap_interval(fooled),
        "wall_s": time.perf_counter() - start,
        "run": str(folder),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--root", default=None)
    parser.add_argument("--surrogate", default="stgcn")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--n-samples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--grid", default="0.02,0.025,0.03,0.035,0.04,0.045,0.05", help="ascending budgets (data units)")
    parser.add_argument("--run-root", default="runs/bench_budget")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    grid = sorted(float(v) for v in args.grid.split(","))
    rows = []
    chosen = None
    for eps in grid:
        row = measure(args, eps)
        rows.append(row)
        print(f"eps {eps:g}: {100 * row['white_box_success_rate']:.1f} % "
              f"[{100 * row['ci95'][0]:.1f}, {100 * row['ci95'][1]:.1f}] of {row['n_samples']} ({row['wall_s']:.0f} s)",
              file=sys.stderr, flush=True)
        if row["white_box_success_rate"] >= args.target:
            chosen = eps
            break
    result = {
        "dataset": args.dataset, "surrogate": args.surrogate, "attack": "pgd (default step rule: 2.5 eps/steps, random start)",
        "steps": args.steps, "n_samples": args.n_samples, "seed": args.seed, "target": args.target, "grid": grid,
        "rule": "smallest grid budget whose white-box success rate >= target (scanned upwards)",
        "measurements": rows, "calibrated_eps": chosen, "torch_threads": torch.get_num_threads(),
    }
    text = json.dumps(result, indent=2) + "\n"
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    print(text)
    if chosen is None:
        print(f"no budget of the grid reached {args.target:.0%}", file=sys.stderr)


if __name__ == "__main__":
    main()
