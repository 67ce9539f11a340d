"""Clean and robust accuracy of the lite victims with and without adversarial training, on the same samples.

Why: the hardened lite zoo (``skelrobust/zoo/hardened.json``) records, for each PGD-AT / TRADES checkpoint,
its clean test accuracy and its robust accuracy under adaptive white-box PGD at the protocol budget; this
script measures them, beside the undefended model, on identical samples so the comparison is paired.

For each ``--model NAME=CHECKPOINT`` (``NAME=zoo`` for the shipped clean weights) it reports

- clean accuracy on the whole test split;
- robust accuracy on ``--n-samples`` test samples (the first ones of a permutation seeded by ``--seed``; *all*
  samples, correct or not, as RobustBench counts robust accuracy) under l-inf PGD with ``--steps`` steps of
  ``2.5 eps / steps`` and a random start, attacking the model itself (white-box: for hardened weights the
  adaptive attack is the attack on those weights), for each ``--eps``;
- 95 % percentile-bootstrap intervals (2,000 resamples) of every rate, and the per-sample outcomes so that
  models can be compared pairwise (``--compare``).

Run one process per model (they write separate JSON files), then merge::

    python bench/bench_hardened_zoo.py --model stgcn-pgd-at=RUN/best.pt --eps 0.03 --steps 50 --output A.json
    python bench/bench_hardened_zoo.py --merge A.json B.json C.json --output bench/results/hardened_zoo_synthetic_stgcn.json

A model measured in several runs (``--eps`` values run apart) is given once per file; ``--merge`` combines them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from skelrobust.attack import create_attack
from skelrobust.data import load_dataset
from skelrobust.loading import load_victim
from skelrobust.training import evaluate, predict
from intervals import bootstrap_interval


def measure(args: argparse.Namespace, save=lambda report: None) -> dict:
    name, _, checkpoint = args.model.partition("=")
    victim = load_victim(args.victim, checkpoint=None if checkpoint == "zoo" else checkpoint, dataset=args.dataset,
                         preset=args.preset).eval()
    test = load_dataset(args.dataset, "test")
    rows = np.sort(np.random.default_rng(args.seed).permutation(len(test))[: args.n_samples])
    x = torch.from_numpy(np.array(test.data[rows], dtype=np.float32))
    y = torch.from_numpy(np.asarray(test.labels)[rows]).long()
    report = {
        "model": name, "victim": args.victim, "checkpoint": checkpoint,
        "checkpoint_sha256": victim.checkpoint_sha256 or (hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest() if checkpoint != "zoo" else None),
        "clean_accuracy_test": evaluate(victim, test), "n_test": len(test), "n_samples": len(rows),
        "sample_rows": rows.tolist(), "clean_correct": (predict(victim, x.numpy(), 64) == y.numpy()).astype(int).tolist(),
        "robust": {},
    }
    for eps in args.eps:
        attack = create_attack("pgd", eps=eps, steps=args.steps)
        start = time.perf_counter()
        adversarial = torch.cat([
            attack(x[i : i + args.batch_size], y[i : i + args.batch_size], layout=test.layout, model=victim,
                   generator=torch.Generator().manual_seed(args.seed * 1000 + i)).adversarial
            for i in range(0, len(y), args.batch_size)
        ])
        resisted = (predict(victim, adversarial.numpy(), 64) == y.numpy()).astype(int)
        report["robust"][f"{eps:g}"] = {
            "robust_accuracy": float(resisted.mean()), "interval95": bootstrap_interval(resisted), "resisted": resisted.tolist(),
            "attack_seconds": round(time.perf_counter() - start, 1),
        }
        save(report)  # after every budget, so a long run keeps what it measured
    return report


def merge(paths: list[str]) -> dict:
    """Models side by side, with paired differences of robust accuracy against the first model.

    Several files of one model (same name, checkpoint and samples, other budgets) are combined into one entry.
    """
    models: list[dict] = []
    for path in paths:
        run = json.loads(Path(path).read_text())
        same = next((m for m in models if m["model"] == run["model"]), None)
        if same is None:
            models.append(run)
        elif (same["checkpoint_sha256"], same["sample_rows"]) != (run["checkpoint_sha256"], run["sample_rows"]):
            raise SystemExit(f"{path}: model {run['model']} with other weights or samples than before")
        else:
            same["robust"].update(run["robust"])
    reference = models[0]
    for m in models[1:]:
        if m["sample_rows"] != reference["sample_rows"]:
            raise SystemExit(f"{m['model']}: evaluated on other samples than {reference['model']}")
        m["paired_vs_" + reference["model"]] = {
            eps: {"difference": float(np.mean(m["robust"][eps]["resisted"]) - np.mean(reference["robust"][eps]["resisted"])),
                  "interval95": _paired_interval(np.array(m["robust"][eps]["resisted"]), np.array(reference["robust"][eps]["resisted"]))}
            for eps in m["robust"] if eps in reference["robust"]
        }
    return {"models": models}


def _paired_interval(a: np.ndarray, b: np.ndarray, reps: int = 2000) -> list[float]:
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(a), size=(reps, len(a)))
    diffs = a[idx].mean(1) - b[idx].mean(1)
    return [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="NAME=CHECKPOINT (or NAME=zoo)")
    parser.add_argument("--victim", default="stgcn")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.03])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--n-samples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--merge", nargs="+", help="merge per-model JSON files (the first is the reference)")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)

    def save(result: dict) -> None:
        Path(args.output).write_text(json.dumps(result, indent=1))

    save(merge(args.merge) if args.merge else measure(args, save))


if __name__ == "__main__":
    main()
