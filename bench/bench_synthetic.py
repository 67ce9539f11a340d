"""First-use cost and difficulty of the embedded ``synthetic`` dataset, measured in one run.

1. Generation: wall and CPU time of the first ``load_dataset("synthetic", split)`` of each split in a fresh
   ``SKELROBUST_HOME`` (generate + cache), and of a cached reload (memory-mapped). Target: < 60 s on 2 cores.
2. Difficulty probe: a small temporal conv net (3 conv layers, ~60k parameters) on joints centred on person
   0's spine-mid joint at the first frame, Adam + cosine schedule, one thread; reports train/test accuracy
   and the most confused class pairs. The set is meant to be learnable but not trivial (~85-97 %).

    python bench/bench_synthetic.py                       # default options, 40 epochs
    python bench/bench_synthetic.py --epochs 10 --output /tmp/synthetic.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Any

import numpy as np
import torch
from torch import nn


def _timed_load(split: str, options: dict[str, Any]) -> tuple[Any, float, float]:
    from skelrobust.data import load_dataset

    wall, cpu = time.perf_counter(), time.process_time()
    ds = load_dataset("synthetic", split=split, **options)
    return ds, time.perf_counter() - wall, time.process_time() - cpu


def _features(ds) -> tuple[torch.Tensor, torch.Tensor]:
    x = np.asarray(ds.data, dtype=np.float32)  # (N, C, T, V, M)
    tracked = np.abs(x).sum(axis=1, keepdims=True) > 0
    x = (x - x[:, :, :1, 1:2, :1]) * tracked
    n, _, t, _, _ = x.shape
    return torch.from_numpy(x.transpose(0, 1, 3, 4, 2).reshape(n, -1, t).copy()), torch.from_numpy(np.asarray(ds.labels))


def _probe(train, test, epochs: int, seed: int) -> dict[str, Any]:
    torch.manual_seed(seed)
    xtr, ytr = _features(train)
    xte, yte = _features(test)
    k = train.num_classes
    net = nn.Sequential(
        nn.Conv1d(xtr.shape[1], 64, 5, padding=2), nn.ReLU(),
        nn.Conv1d(64, 64, 5, padding=2, stride=2), nn.ReLU(),
        nn.Conv1d(64, 64, 5, padding=2, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(64, k),
    )
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    start = time.perf_counter()
    for _ in range(epochs):
        net.train()
        for batch in torch.randperm(len(ytr)).split(64):
            loss = nn.functional.cross_entropy(net(xtr[batch]), ytr[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    net.eval()
    with torch.inference_mode():
        ptr, pte = net(xtr).argmax(1), net(xte).argmax(1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (yte.numpy(), pte.numpy()), 1)
    off = confusion - np.diag(np.diag(confusion))
    pairs = sorted(((int(off[a, b]), a, b) for a in range(k) for b in range(k) if off[a, b]), reverse=True)[:6]
    return {
        "epochs": epochs,
        "train_accuracy": float((ptr == ytr).float().mean()),
        "test_accuracy": float((pte == yte).float().mean()),
        "per_class_test_accuracy": {
            name: float(confusion[i, i] / max(confusion[i].sum(), 1)) for i, name in enumerate(test.class_names)
        },
        "top_confusions": [f"{test.class_names[a]} -> {test.class_names[b]}: {n}" for n, a, b in pairs],
        "train_seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="dataset seed")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--output", help="write the JSON summary here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    options = {"seed": args.seed}
    with tempfile.TemporaryDirectory() as home:
        os.environ["SKELROBUST_HOME"] = home
        train, train_wall, train_cpu = _timed_load("train", options)
        test, test_wall, test_cpu = _timed_load("test", options)
        _, cached_wall, _ = _timed_load("test", options)
        summary = {
            "options": options,
            "num_samples": {"train": len(train), "test": len(test)},
            "first_use_seconds": {"train_wall": train_wall, "train_cpu": train_cpu, "test_wall": test_wall, "test_cpu": test_cpu},
            "cached_load_seconds": cached_wall,
            "probe": _probe(train, test, args.epochs, seed=0),
        }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.output:
        from skelrobust.io import atomic_write_text

        atomic_write_text(args.output, text + "\n")


if __name__ == "__main__":
    main()
