"""Forward and forward+backward time per sample of every registered victim, per preset, in one run.

The floor of every iterative attack is one forward+backward of the surrogate per step, so this table is the
unit the attack benchmarks divide by. Inputs are canonical ``(N, 3, T, 25, 2)`` tensors in metres (two
persons, camera-like depth): ``T = 64`` for ``lite`` (the synthetic set) and ``T = 300`` for ``full`` (NTU).
Forward runs under ``torch.inference_mode`` (as evaluation does); forward+backward takes the gradient with
respect to the input in eval mode (as a white-box attack does). Median of ``--repeats`` after ``--warmup``.

    python bench/bench_victims.py [--threads 1] [--batch 8] [--full-batch 2] [--repeats 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from skelrobust.io import atomic_write_json
from skelrobust.victim import VICTIMS

FRAMES = {"lite": 64, "full": 300}
CLASSES = {"lite": 16, "full": 60}


def _median_seconds(fn, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_one(name: str, preset: str, batch: int, warmup: int, repeats: int, device: torch.device) -> dict:
    """Per-sample forward and forward+backward milliseconds of one victim preset."""
    family = VICTIMS.get(name)
    torch.manual_seed(0)
    victim = family.build(preset=preset, num_classes=CLASSES.get(preset, 60), layout="ntu25", num_persons=2).to(device).eval()
    t = FRAMES.get(preset, 64)
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(batch, 3, t, 25, 2, generator=g) * 0.2).to(device)
    x[:, 2] += 3.0
    y = torch.zeros(batch, dtype=torch.long, device=device)

    def forward() -> None:
        with torch.inference_mode():
            victim(x)
        if device.type == "cuda":
            torch.cuda.synchronize()

    def forward_backward() -> None:
        xa = x.clone().requires_grad_(True)
        loss = F.cross_entropy(victim(xa), y)
        torch.autograd.grad(loss, xa)
        if device.type == "cuda":
            torch.cuda.synchronize()

    fwd = _median_seconds(forward, warmup, repeats)
    fb = _median_seconds(forward_backward, warmup, repeats)
    return {
        "victim": name,
        "preset": preset,
        "frames": t,
        "batch": batch,
        "num_parameters": sum(p.numel() for p in victim.network.parameters()),
        "forward_ms_per_sample": 1000 * fwd / batch,
        "forward_backward_ms_per_sample": 1000 * fb / batch,
        "backward_over_forward": fb / fwd,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8, help="batch for lite presets")
    parser.add_argument("--full-batch", type=int, default=2, help="batch for full presets (T = 300 is costly on CPU)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--presets", default="lite,full", help="comma-separated presets to time")
    parser.add_argument("--victims", default="*", help="comma-separated fnmatch filters on victim names")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results") / "bench_victims.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    wanted = [p for p in args.presets.split(",") if p]
    rows = []
    names = sorted({n for pattern in args.victims.split(",") if pattern for n in VICTIMS.names(pattern)})
    for name in names:
        for preset in VICTIMS.get(name).presets:
            if preset in wanted:
                batch = args.full_batch if preset == "full" else args.batch
                rows.append(bench_one(name, preset, batch, args.warmup, args.repeats, device))
                row = rows[-1]
                print(
                    f"{name:<12} {preset:<5} T={row['frames']:<4} params {row['num_parameters']:>9,}  "
                    f"fwd {row['forward_ms_per_sample']:9.2f} ms/sample  fwd+bwd {row['forward_backward_ms_per_sample']:9.2f} ms/sample  "
                    f"(x{row['backward_over_forward']:.2f})",
                    flush=True,
                )
    atomic_write_json(
        args.out,
        {
            "threads": args.threads,
            "device": str(device),
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "argv": sys.argv[1:],
            "rows": rows,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
