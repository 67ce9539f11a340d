"""Cost of one adversarial-training step against one clean training step, measured in one run.

Why: the target is "one adversarial-training epoch costs at most (k + 1.3) x a clean epoch for k inner steps".
An epoch is the same number of identical steps, so the ratio of per-step costs is the ratio of epoch costs.
This script times ``--batches`` training steps of each recipe (clean, ``pgd-at``, ``trades``) on the same
batches of the embedded training split, interleaved (clean, PGD-AT, TRADES, clean, ...) so that a changing
machine load hits every recipe alike, and reports process CPU seconds (robust to other processes sharing the
cores) and wall seconds per step, and their ratios to the clean step.

    python bench/bench_adversarial_training_cost.py --victim stgcn --batches 6 --output bench/results/adversarial_training_cost_stgcn.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from skelrobust.data import load_dataset
from skelrobust.loading import load_victim
from skelrobust.recipes import TrainingRecipe, create_recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--victim", default="stgcn")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--eps", type=float, default=0.03)
    parser.add_argument("--steps", type=int, default=10, help="k, inner PGD steps")
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train = load_dataset(args.dataset, "train")
    victim = load_victim(args.victim, dataset=args.dataset)
    optimizer = torch.optim.AdamW(victim.parameters(), lr=1e-4)
    recipes = {"clean": TrainingRecipe(), "pgd-at": create_recipe("pgd-at", eps=args.eps, steps=args.steps),
               "trades": create_recipe("trades", eps=args.eps, steps=args.steps)}
    cpu = {name: [] for name in recipes}
    wall = {name: [] for name in recipes}
    rng = np.random.default_rng(0)
    for b in range(args.batches + 1):  # batch 0 warms up every recipe and is not counted
        rows = np.sort(rng.choice(len(train), args.batch_size, replace=False))
        x, y = torch.as_tensor(np.asarray(train.data[rows])), torch.as_tensor(train.labels[rows])
        for name, recipe in recipes.items():
            victim.train()
            c0, w0 = time.process_time(), time.perf_counter()
            loss, _ = recipe.loss(victim, x, y, torch.Generator().manual_seed(b))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if b > 0:
                cpu[name].append(time.process_time() - c0)
                wall[name].append(time.perf_counter() - w0)
    clean_cpu, clean_wall = float(np.mean(cpu["clean"])), float(np.mean(wall["clean"]))
    result = {
        "victim": args.victim, "dataset": args.dataset, "eps": args.eps, "inner_steps": args.steps, "batches": args.batches,
        "batch_size": args.batch_size, "torch_threads": args.threads,
        "target": f"<= k + 1.3 = {args.steps + 1.3:g} x a clean step",
        "per_step_cpu_seconds": {k: float(np.mean(v)) for k, v in cpu.items()},
        "per_step_wall_seconds": {k: float(np.mean(v)) for k, v in wall.items()},
        "ratio_cpu": {k: float(np.mean(v)) / clean_cpu for k, v in cpu.items()},
        "ratio_wall": {k: float(np.mean(v)) / clean_wall for k, v in wall.items()},
    }
    Path(args.output).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
