"""Certification of a dataset's test samples under randomized smoothing (``skelrobust certify``).

Runs :meth:`skelrobust.smoothing.SmoothedClassifier.certify` (Cohen et al., ICML 2019) on ``n_samples`` test
samples and reports certified accuracy against the l2 radius: the share of samples whose smoothed
prediction is correct *and* certified at a radius at least ``r`` (abstentions count as wrong).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ConfigError
from .io import atomic_path, atomic_write_json
from .smoothing import DEFAULT_BATCH_SIZE, NOISE_BLOCK, Certificate, SmoothedClassifier, certified_accuracy, check_sigma, sample_generators

#: Test samples whose noisy copies stream through the model together (bounds the memory held at once).
SAMPLE_GROUP = 64

#: Radii of the table, in multiples of sigma (Cohen et al.'s plots run to about 4 sigma).
RADIUS_MULTIPLES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0)


def certify_dataset(
    victim: str, dataset: str, sigma: float, *, checkpoint: str | None = None, n0: int = 100, n: int = 1000,
    alpha: float = 0.001, n_samples: int = 100, seed: int = 0, batch_size: int = DEFAULT_BATCH_SIZE, root: str | None = None,
    dataset_options: dict[str, Any] | None = None, device: str = "cpu", workers: int = 1,
) -> dict[str, Any]:
    """CERTIFY on ``n_samples`` test samples of ``dataset`` with the smoothed ``victim``; a JSON-able result.

    Each sample's noise comes from its own generator seeded by ``(seed, test row)``, so its certificate is the
    same whatever ``n_samples``, ``batch_size`` and ``workers`` are (up to floating-point ties of the base
    classifier). ``workers > 1`` splits the samples into that many contiguous shares, each certified by its own
    process on one thread: the small forward passes that are fastest on a CPU do not spread over cores, and
    processes do (about ``workers`` times faster on idle cores).
    """
    sigma = check_sigma(sigma, "certify")
    if not 0 < alpha < 1:
        raise ConfigError(f"certify: --alpha must be in (0, 1), got {alpha}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"certify: --workers must be an integer >= 1, got {workers!r}")
    job = _Job(victim, dataset, sigma, checkpoint, n0, n, alpha, seed, batch_size, root, dict(dataset_options or {}), device)
    model, test = _load(job)
    rows = np.sort(np.random.default_rng(seed).permutation(len(test))[:n_samples])
    started, cpu_started = time.perf_counter(), time.process_time()
    shares = [share for share in np.array_split(rows, min(workers, len(rows))) if len(share)]
    worker_cpu = 0.0
    if len(shares) == 1:
        parts = [_certify_rows(job, rows, model, test)]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(len(shares), mp_context=multiprocessing.get_context("spawn")) as pool:
            done = list(pool.map(_certify_share, [job] * len(shares), shares))
        parts, worker_cpu = [part for part, _ in done], sum(cpu for _, cpu in done)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started + worker_cpu
    certificate = _concatenate(parts)
    labels = np.asarray(test.labels)[rows]
    radii = np.array([m * sigma for m in RADIUS_MULTIPLES])
    curve = certified_accuracy(certificate, labels, radii)
    return {
        "victim": victim, "checkpoint": model.checkpoint, "checkpoint_sha256": model.checkpoint_sha256, "dataset": dataset,
        "unit": test.units, "sigma": sigma, "n0": n0, "n": n, "alpha": alpha, "seed": seed, "n_samples": int(len(rows)),
        "method": "CERTIFY of Cohen, Rosenfeld and Kolter (ICML 2019): one-sided Clopper-Pearson bound, radius sigma * Phi^-1(pA)",
        "radius_norm": "l2 over all perturbable entries of a sample, in data units",
        "clean_accuracy_smoothed_certified": float(curve[0]),
        "abstention_rate": float((certificate.prediction < 0).mean()),
        "curve": [{"radius": float(r), "certified_accuracy": float(a)} for r, a in zip(radii, curve)],
        "samples": [{"row": int(r), "label": int(y), "prediction": int(p), "p_lower": float(pl), "radius": float(rad)}
                    for r, y, p, pl, rad in zip(rows, labels, certificate.prediction, certificate.p_lower, certificate.radius)],
        "noise": f"per-sample generator seeded by (seed, test row), drawn in blocks of {NOISE_BLOCK} copies",
        "batch_size": batch_size, "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
        "forward_passes_per_sample": n0 + n, "workers": len(shares),
        "torch_threads": torch.get_num_threads() if len(shares) == 1 else 1,
    }


@dataclass(frozen=True)
class _Job:
    """What a certification worker needs to rebuild the model and data (picklable for spawned processes)."""

    victim: str
    dataset: str
    sigma: float
    checkpoint: str | None
    n0: int
    n: int
    alpha: float
    seed: int
    batch_size: int
    root: str | None
    dataset_options: dict[str, Any]
    device: str


def _load(job: _Job) -> tuple[Any, Any]:
    """The base classifier (eval mode) and the test split of ``job``."""
    from .data import load_dataset
    from .loading import load_victim

    model = load_victim(job.victim, checkpoint=job.checkpoint, dataset=job.dataset, root=job.root, device=job.device).eval()
    return model, load_dataset(job.dataset, "test", root=job.root, **job.dataset_options)


def _certify_rows(job: _Job, rows: np.ndarray, model: Any, test: Any) -> Certificate:
    """CERTIFY the test ``rows``, :data:`SAMPLE_GROUP` samples at a time."""
    smoothed = SmoothedClassifier(model, model.num_classes, job.sigma, job.batch_size)
    parts = []
    for start in range(0, len(rows), SAMPLE_GROUP):
        group = rows[start : start + SAMPLE_GROUP]
        x = torch.from_numpy(np.array(test.data[group], dtype=np.float32)).to(job.device)
        parts.append(smoothed.certify(x, job.n0, job.n, job.alpha, sample_generators(job.seed, group)))
    return _concatenate(parts)


def _concatenate(parts: list[Certificate]) -> Certificate:
    """One certificate from the certificates of consecutive sample groups."""
    return Certificate(*(np.concatenate([getattr(c, f) for c in parts]) for f in ("prediction", "p_lower", "radius")))


def _certify_share(job: _Job, rows: np.ndarray) -> tuple[Certificate, float]:
    """One worker process: rebuild the model and data, certify ``rows`` on one thread; certificate and CPU seconds."""
    torch.set_num_threads(1)
    cpu_started = time.process_time()
    model, test = _load(job)
    return _certify_rows(job, rows, model, test), time.process_time() - cpu_started


def format_certificate_table(result: dict[str, Any]) -> str:
    """Certified accuracy against radius, one row per radius."""
    head = (f"{result['victim']} on {result['dataset']}: sigma {result['sigma']:g} {result['unit']}, {result['n_samples']} samples, "
            f"n0 {result['n0']}, n {result['n']}, alpha {result['alpha']:g}; abstained {result['abstention_rate'] * 100:.1f} %, "
            f"{result['seconds']:.0f} s")
    lines = [head, f"{'l2 radius (' + result['unit'] + ')':>16}  certified accuracy"]
    lines += [f"{row['radius']:>16.4g}  {row['certified_accuracy'] * 100:>17.1f} %" for row in result["curve"]]
    return "\n".join(lines)


def write_certification(result: dict[str, Any], folder: str | Path) -> None:
    """``certify.json`` and ``certified_accuracy.png`` (certified accuracy against radius) in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    radius = np.array([s["radius"] for s in result["samples"]])
    correct = np.array([s["prediction"] == s["label"] for s in result["samples"]])
    grid = np.linspace(0, max(3.0 * result["sigma"], float(radius.max(initial=0.0))), 200)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(grid, [(correct & (radius >= r)).mean() for r in grid])
    ax.set_xlabel(f"l2 radius ({result['unit']})")
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(f"{result['victim']} on {result['dataset']}, sigma {result['sigma']:g}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out / "certified_accuracy.png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    atomic_write_json(out / "certify.json", result)
