"""Cost of the gradient attacks relative to their floor: ``steps x`` one surrogate forward+backward.

For each attack, on one batch of the synthetic test split and one surrogate, measured in one run:

    ratio = wall time of attack(x, y) / (steps x wall time of one forward+backward to the input)

The attack and the floor are timed alternately ``--repeats`` times and the minimum of each is kept, so load
from other processes on a shared machine biases both alike. Both wall time and this process's CPU time are
recorded; on a CPU shared with other jobs, the CPU-time ratio (single thread) is the stable one, and the
one to compare with the target. Early-stopping modes are avoided (the paper
rules run every step; SMART is given labels it cannot reach within the run, see below), so every attack
runs exactly ``steps`` gradient passes. Attacks that need training data are prepared on the synthetic
training split outside the timed region. Surrogate: the zoo's lite ``stgcn`` when shipped, else a lite
ST-GCN with random weights, else a tiny MLP. Prints a table and writes JSON (``--output``).

    python bench/bench_attacks.py                       # pgd, ifgsm, mifgsm, smart; 20 steps; batch 16
    python bench/bench_attacks.py --steps 50 --attacks pgd smart --output /tmp/attacks.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_ATTACKS = ("pgd", "ifgsm", "mifgsm", "smart")
TARGETS = {"pgd": 1.15, "ifgsm": 1.15, "mifgsm": 1.15}


def _surrogate(num_classes: int) -> tuple[torch.nn.Module, str]:
    from skelrobust.errors import SkelRobustError
    from skelrobust.loading import load_victim

    try:
        return load_victim("stgcn", dataset="synthetic"), "stgcn lite (zoo weights)"
    except SkelRobustError as exc:
        print(f"[bench] no zoo weights for stgcn ({exc}); using random lite weights", file=sys.stderr)
    try:
        from skelrobust import VICTIMS

        return VICTIMS.get("stgcn").build(preset="lite", num_classes=num_classes, layout="ntu25"), "stgcn lite (random weights)"
    except SkelRobustError as exc:
        print(f"[bench] stgcn unavailable ({exc}); using the mlp victim", file=sys.stderr)
        return load_victim("mlp", dataset="synthetic", pretrained=False), "mlp (random weights)"


def _timed(fn: Any, sync: Any) -> tuple[float, float, Any]:
    """(wall seconds, process CPU seconds, result) of ``fn()``."""
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    sync()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def _floor(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    """``steps`` forward+backward passes to the input, as an attack does them."""
    for _ in range(steps):
        xv = x.detach().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(xv), y, reduction="none").sum(), xv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attacks", nargs="+", default=list(DEFAULT_ATTACKS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output", type=Path, default=Path("bench/results/bench_attacks.json"))
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    os.environ.setdefault("SKELROBUST_HOME", tempfile.mkdtemp(prefix="bench-attacks-"))
    from skelrobust import create_attack, load_dataset
    from skelrobust.io import atomic_write_json

    test = load_dataset("synthetic", "test")
    device = torch.device(args.device)
    model, surrogate = _surrogate(test.num_classes)
    model = model.to(device).eval()
    x = torch.from_numpy(np.array(test.data[: args.batch_size])).to(device)
    with torch.no_grad():
        pred = model(x).argmax(1)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    rows = []
    for name in args.attacks:
        attack = create_attack(name, steps=args.steps)
        if attack.needs_training_data:
            start = time.perf_counter()
            attack.prepare(model=model, train_data=load_dataset("synthetic", "train"), layout=test.layout, device=device)
            prepare_s = time.perf_counter() - start
        else:
            prepare_s = 0.0
        # SMART freezes fooled samples: a target no sample reaches within the run keeps all of them active.
        labels = pred
        kwargs: dict[str, Any] = {}
        if name == "smart":
            kwargs["target"] = (pred + 1) % test.num_classes
        ids = test.sample_ids[: args.batch_size]
        _floor(model, x, labels, 1)  # warm-up
        walls: dict[str, list[float]] = {"attack": [], "floor": []}
        cpus: dict[str, list[float]] = {"attack": [], "floor": []}
        out = None
        for _ in range(args.repeats):
            wall, cpu, out = _timed(lambda: attack(x, labels, layout=test.layout, model=model, sample_ids=ids, **kwargs), sync)
            walls["attack"].append(wall)
            cpus["attack"].append(cpu)
            wall, cpu, _ = _timed(lambda: _floor(model, x, labels, args.steps), sync)
            walls["floor"].append(wall)
            cpus["floor"].append(cpu)
        wall_ratio = min(walls["attack"]) / min(walls["floor"])
        cpu_ratio = min(cpus["attack"]) / min(cpus["floor"])
        ratio = cpu_ratio if device.type == "cpu" else wall_ratio
        rows.append({
            "attack": name,
            "attack_wall_s": min(walls["attack"]),
            "floor_wall_s": min(walls["floor"]),
            "wall_ratio": wall_ratio,
            "attack_cpu_s": min(cpus["attack"]),
            "floor_cpu_s": min(cpus["floor"]),
            "cpu_ratio": cpu_ratio,
            "ratio": ratio,
            "target": TARGETS.get(name),
            "meets_target": ratio <= TARGETS[name] if name in TARGETS else None,
            "gradient_evaluations_mean": float(out.gradient_evaluations.float().mean()) if out is not None else None,
            "prepare_s": prepare_s,
        })

    result = {
        "benchmark": "attack cost / (steps x forward+backward)",
        "surrogate": surrogate,
        "batch": list(x.shape),
        "steps": args.steps,
        "repeats": args.repeats,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "rows": rows,
    }
    print(f"surrogate: {surrogate}; batch {tuple(x.shape)}; {args.steps} steps; {args.device}, {torch.get_num_threads()} thread(s)")
    print("ratio = CPU-time ratio on CPU (stable under load), wall-time ratio on CUDA")
    print(f"{'attack':<10} {'attack s':>9} {'floor s':>9} {'wall x':>7} {'cpu x':>7} {'ratio':>7} {'target':>7} {'grad evals':>11}")
    for r in rows:
        target = f"{r['target']:.2f}" if r["target"] else "-"
        print(
            f"{r['attack']:<10} {r['attack_wall_s']:>9.3f} {r['floor_wall_s']:>9.3f} {r['wall_ratio']:>7.3f} "
            f"{r['cpu_ratio']:>7.3f} {r['ratio']:>7.3f} {target:>7} {r['gradient_evaluations_mean']:>11.1f}"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.output, result)
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
