"""A small learnable dataset for training tests: 3 classes told apart by the right hand's direction of motion."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skelrobust.data import SkeletonDataset
from skelrobust.layouts import get_layout


def learnable(split: str, root: Path | None, **options: object) -> SkeletonDataset:
    """8 training subjects, 4 test subjects, 6 clips each; (N, 3, 8, 25, 2) in metres, person 2 absent."""
    g = np.random.default_rng(20 if split == "train" else 21)
    subjects = np.repeat(np.arange(8) if split == "train" else np.arange(8, 12), 6)
    n = len(subjects)
    labels = np.arange(n, dtype=np.int64) % 3
    body = g.normal(scale=0.05, size=(12, 3, 1, 25))[subjects % 12] + np.array([0.0, 0.0, 3.0])[None, :, None, None]
    move = np.zeros((n, 3, 8))
    move[np.arange(n), labels] = np.linspace(0, 0.5, 8)
    frames = body + g.normal(scale=0.02, size=(n, 3, 8, 25))
    frames[:, :, :, 11] += move
    data = np.zeros((n, 3, 8, 25, 2), dtype=np.float32)
    data[..., 0] = frames
    return SkeletonDataset(
        name="hardening-learn", split=split, data=data, labels=labels, layout=get_layout("ntu25"), class_names=["x", "y", "z"],
        sample_ids=[f"{split}{i:02d}" for i in range(n)], lengths=np.full(n, 8, dtype=np.int64), meta={"subjects": subjects.tolist()},
    )
