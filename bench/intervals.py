"""Percentile-bootstrap intervals shared by the bench scripts (they run as ``python bench/NAME.py``, so this
module imports as ``intervals``)."""

from __future__ import annotations

import numpy as np


def bootstrap_interval(values: np.ndarray, reps: int = 2000, seed: int = 0) -> list[float]:
    """95 % percentile-bootstrap interval of the mean of ``values`` ``(K,)`` (0/1 outcomes or paired
    differences), from ``reps`` resamples of its entries; NaNs when ``values`` is empty."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(reps, len(values)))].mean(1)
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]
