"""Cost of ``skelrobust certify`` (randomized smoothing, Cohen et al. 2019) on the lite ST-GCN of the embedded set.

Why: certifying 100 samples with n = 1,000 used to take 22 CPU-minutes (forward passes of 1,000 noisy copies);
the target is under 5 minutes on 2 cores. This script measures, in one run and on one thread:

- the CPU cost of one noisy copy's forward pass against the number of copies per pass (``--batch-sizes``);
- CERTIFY with the default batch size on ``--n-samples`` test samples (n0 ``--n0``, n ``--n``), CPU-seconds
  per sample, and the projection to 100 samples on 2 cores: samples are independent (each has its own noise
  generator seeded by its test row), so two processes certifying half the samples each give the same
  certificates in half the time;
- the old setting (1,000 copies per pass) on the first ``--baseline-samples`` of the same samples, the
  per-sample speed-up, and whether the certificates of those samples are identical under both batch sizes.

    python bench/bench_certify.py --output bench/results/certify_cost_synthetic_stgcn.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from skelrobust.certification import certify_dataset
from skelrobust.data import load_dataset
from skelrobust.loading import load_victim
from skelrobust.smoothing import DEFAULT_BATCH_SIZE, SmoothedClassifier


def forward_cost(victim: str, dataset: str, sigma: float, batch_sizes: list[int], copies: int, rounds: int) -> list[dict]:
    """CPU milliseconds per noisy copy when ``batch`` copies share a forward pass (inference mode).

    The batch sizes are timed in interleaved rounds, so that the load of a shared machine, which changes over
    minutes, weighs on all of them alike.
    """
    model = load_victim(victim, dataset=dataset).eval()
    x = torch.from_numpy(np.array(load_dataset(dataset, "test").data[:1], dtype=np.float32))
    smoothed = SmoothedClassifier(model, model.num_classes, sigma)
    cpu = dict.fromkeys(batch_sizes, 0.0)
    timed = dict.fromkeys(batch_sizes, 0)
    with torch.inference_mode():
        for _ in range(rounds):
            for batch in batch_sizes:
                noisy = smoothed.noise(x.expand(batch, *x.shape[1:]).contiguous(), torch.Generator().manual_seed(0))
                model(noisy)  # warm-up
                passes = max(1, copies // (batch * rounds))
                started = time.process_time()
                for _ in range(passes):
                    model(noisy)
                cpu[batch] += time.process_time() - started
                timed[batch] += passes * batch
    rows = [{"batch_size": b, "copies": timed[b], "cpu_ms_per_copy": round(1000 * cpu[b] / timed[b], 3)} for b in batch_sizes]
    print(rows, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--victim", default="stgcn")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--sigma", type=float, default=0.01)
    parser.add_argument("--n0", type=int, default=100)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--n-samples", type=int, default=20)
    parser.add_argument("--baseline-samples", type=int, default=4)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8, 16, 32, 64, 256, 1000])
    parser.add_argument("--copies", type=int, default=2000, help="copies timed per batch size, over all rounds")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)

    scan = forward_cost(args.victim, args.dataset, args.sigma, args.batch_sizes, args.copies, args.rounds)
    common = dict(n0=args.n0, n=args.n, seed=args.seed)
    new = certify_dataset(args.victim, args.dataset, args.sigma, n_samples=args.n_samples, batch_size=DEFAULT_BATCH_SIZE, **common)
    print({k: new[k] for k in ("n_samples", "cpu_seconds", "seconds", "abstention_rate")}, flush=True)
    old = _certify_rows(args, [s["row"] for s in new["samples"][: args.baseline_samples]])
    new_per_sample = new["cpu_seconds"] / new["n_samples"]
    old_per_sample = old["cpu_seconds"] / old["n_samples"]
    by_row = {s["row"]: s for s in new["samples"]}
    identical = all(by_row[s["row"]]["prediction"] == s["prediction"] and by_row[s["row"]]["p_lower"] == s["p_lower"] for s in old["samples"])
    result = {
        "victim": args.victim, "dataset": args.dataset, "sigma": args.sigma, "n0": args.n0, "n": args.n, "alpha": new["alpha"],
        "torch_threads": 1, "forward_cost_by_batch_size": scan,
        "default_batch_size": DEFAULT_BATCH_SIZE,
        "certify": {k: new[k] for k in ("n_samples", "cpu_seconds", "seconds", "abstention_rate", "clean_accuracy_smoothed_certified", "curve", "noise")},
        "cpu_seconds_per_sample": round(new_per_sample, 3),
        "projected_100_samples": {
            "cpu_seconds": round(100 * new_per_sample, 1),
            "wall_seconds_on_2_cores": round(50 * new_per_sample, 1),
            "how": "CPU-seconds per sample x 100, split over two single-thread processes of 50 samples (samples are independent)",
        },
        "baseline_batch_1000": {"n_samples": old["n_samples"], "cpu_seconds": old["cpu_seconds"],
                                "cpu_seconds_per_sample": round(old_per_sample, 3)},
        "speedup_per_sample": round(old_per_sample / new_per_sample, 2),
        "certificates_identical_across_batch_sizes": bool(identical),
        "samples": new["samples"],
        "note": "CPU time under a shared machine (other jobs running); ratios come from this one run",
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1))
    print({k: result[k] for k in ("cpu_seconds_per_sample", "projected_100_samples", "speedup_per_sample", "certificates_identical_across_batch_sizes")})


def _certify_rows(args: argparse.Namespace, rows: list[int]) -> dict:
    """CERTIFY of the given test rows with 1,000 copies per forward pass (the old default)."""
    from skelrobust.smoothing import sample_generators

    model = load_victim(args.victim, dataset=args.dataset).eval()
    test = load_dataset(args.dataset, "test")
    smoothed = SmoothedClassifier(model, model.num_classes, args.sigma, batch_size=1000)
    x = torch.from_numpy(np.array(test.data[rows], dtype=np.float32))
    started = time.process_time()
    cert = smoothed.certify(x, args.n0, args.n, 0.001, sample_generators(args.seed, rows))
    cpu = time.process_time() - started
    return {"n_samples": len(rows), "cpu_seconds": round(cpu, 2),
            "samples": [{"row": int(r), "prediction": int(p), "p_lower": float(pl)} for r, p, pl in zip(rows, cert.prediction, cert.p_lower)]}


if __name__ == "__main__":
    main()
