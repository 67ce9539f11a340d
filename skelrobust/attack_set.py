"""The attack set: which test samples a run attacks, chosen deterministically and saved with the results.

Following the prior benchmark (RobustBenchHAR's ``gatherCorrectPrediction``), the attack set holds test
samples that the attacked model classifies correctly, so every success is a real flip. Unlike it, the
order is a permutation of the test split seeded by the run's seed (not file order), so a small attack set
is a fair sample of all classes, and the index list, sample ids and labels are saved so that every
attack, victim and defense sees identical samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .data import SkeletonDataset
from .errors import ConfigError, DataError

#: Attack-set selection rules: test samples the selection model classifies correctly, or any test samples.
SELECTIONS = ("correct", "all")
#: Orders in which test samples are considered: a permutation seeded by the run's seed, or file order
#: (RobustBenchHAR's ``gatherCorrectPrediction``, used in its compat mode).
ORDERS = ("seeded", "file")


@dataclass
class AttackSet:
    """The samples of one run, in attack order.

    Attributes:
        indices: ``(K,)`` int64 positions in the test split.
        sample_ids: Their dataset ids.
        labels: ``(K,)`` int64 true labels.
        targets: ``(K,)`` int64 target classes (targeted runs), else None.
        selection: ``correct`` or ``all`` (see :data:`SELECTIONS`).
        order: ``seeded`` or ``file`` (see :data:`ORDERS`).
        selection_model: Name of the model that judged correctness (None when no model was used).
        pool_size: Test samples evaluated to find the set (a prefix of the seeded permutation).
        pool_correct: How many of those the selection model classified correctly.
        n_requested: The size asked for (``K`` is smaller only when the test split ran out).
    """

    indices: np.ndarray
    sample_ids: list[str]
    labels: np.ndarray
    targets: np.ndarray | None
    selection: str
    order: str
    selection_model: str | None
    pool_size: int
    pool_correct: int
    n_requested: int

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @property
    def pool_accuracy(self) -> float | None:
        """Clean accuracy of the selection model on the evaluated pool (None without a model)."""
        if self.selection_model is None or self.pool_size == 0:
            return None
        return self.pool_correct / self.pool_size

    def to_dict(self) -> dict[str, Any]:
        return {
            "indices": [int(i) for i in self.indices],
            "sample_ids": list(self.sample_ids),
            "labels": [int(i) for i in self.labels],
            "targets": None if self.targets is None else [int(i) for i in self.targets],
            "selection": self.selection,
            "order": self.order,
            "selection_model": self.selection_model,
            "pool_size": self.pool_size,
            "pool_correct": self.pool_correct,
            "n_requested": self.n_requested,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AttackSet":
        return cls(
            indices=np.asarray(d["indices"], dtype=np.int64),
            sample_ids=list(d["sample_ids"]),
            labels=np.asarray(d["labels"], dtype=np.int64),
            targets=None if d["targets"] is None else np.asarray(d["targets"], dtype=np.int64),
            selection=d["selection"],
            order=d["order"],
            selection_model=d["selection_model"],
            pool_size=int(d["pool_size"]),
            pool_correct=int(d["pool_correct"]),
            n_requested=int(d["n_requested"]),
        )


def predict(model: nn.Module, data: np.ndarray, indices: np.ndarray, batch_size: int, device: torch.device) -> np.ndarray:
    """Arg-max predictions ``(len(indices),)`` of ``model`` on ``data[indices]``, batched, in inference mode."""
    out = np.empty(len(indices), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, len(indices), batch_size):
            chunk = np.sort(indices[start : start + batch_size])  # sorted reads are fastest on a memmap
            order = np.argsort(np.argsort(indices[start : start + batch_size]))
            x = torch.from_numpy(np.ascontiguousarray(data[chunk])).to(device)
            out[start : start + len(chunk)] = model(x).argmax(dim=1).cpu().numpy()[order]
    return out


def permutation(n: int, seed: int) -> np.ndarray:
    """The seeded order in which test samples are considered: ``numpy.random.default_rng(seed).permutation(n)``."""
    return np.random.default_rng(seed).permutation(n).astype(np.int64)


def draw_targets(labels: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
    """One target class per sample, uniform over the classes other than its label, seeded by ``seed``."""
    if num_classes < 2:
        raise ConfigError("a targeted attack needs at least 2 classes")
    offsets = np.random.default_rng([seed, 1]).integers(1, num_classes, size=labels.shape[0])
    return ((labels + offsets) % num_classes).astype(np.int64)


def select_attack_set(
    dataset: SkeletonDataset,
    model: nn.Module | None,
    *,
    n_samples: int,
    seed: int,
    batch_size: int,
    device: torch.device,
    selection: str = "correct",
    order: str = "seeded",
    model_name: str | None = None,
    targeted: bool = False,
) -> AttackSet:
    """Choose the attack set deterministically from ``seed``.

    Test indices are permuted with ``seed`` (or kept in file order with ``order="file"``); with ``selection="correct"`` the model is evaluated on that
    order in batches until ``n_samples`` correctly classified samples are found, and the first
    ``n_samples`` of them (in permutation order) are kept, so the set does not depend on the batch size.
    With ``selection="all"`` the first ``n_samples`` of the permutation are kept (the model, when given,
    only measures its clean accuracy on them).

    Raises:
        ConfigError: bad ``n_samples`` / ``selection``, or ``correct`` without a model.
        DataError: the model classifies no test sample correctly.
    """
    if selection not in SELECTIONS:
        raise ConfigError(f"attack-set selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    if order not in ORDERS:
        raise ConfigError(f"attack-set order must be one of {', '.join(ORDERS)}, got {order!r}")
    if n_samples < 1:
        raise ConfigError(f"n_samples must be >= 1, got {n_samples}")
    if selection == "correct" and model is None:
        raise ConfigError("attack-set selection 'correct' needs a model to judge correctness")
    candidates = permutation(len(dataset), seed) if order == "seeded" else np.arange(len(dataset), dtype=np.int64)
    labels_all = np.asarray(dataset.labels)
    if selection == "all":
        chosen = candidates[:n_samples]
        pool_size = len(chosen)
        pool_correct = 0
        if model is not None:
            pool_correct = int((predict(model, dataset.data, chosen, batch_size, device) == labels_all[chosen]).sum())
    else:
        kept: list[np.ndarray] = []
        found = pool_size = pool_correct = 0
        for start in range(0, len(candidates), batch_size):
            chunk = candidates[start : start + batch_size]
            correct = predict(model, dataset.data, chunk, batch_size, device) == labels_all[chunk]
            pool_size += len(chunk)
            pool_correct += int(correct.sum())
            kept.append(chunk[correct])
            found += int(correct.sum())
            if found >= n_samples:
                break
        chosen = np.concatenate(kept)[:n_samples] if kept else np.zeros(0, dtype=np.int64)
        if len(chosen) == 0:
            raise DataError(
                f"model {model_name!r} classifies none of the {pool_size} test samples of {dataset.name!r} correctly: "
                "nothing to attack (check the checkpoint and the dataset)"
            )
    labels = labels_all[chosen].astype(np.int64)
    return AttackSet(
        indices=chosen.astype(np.int64),
        sample_ids=[dataset.sample_ids[i] for i in chosen],
        labels=labels,
        targets=draw_targets(labels, dataset.num_classes, seed) if targeted else None,
        selection=selection,
        order=order,
        selection_model=model_name if model is not None else None,
        pool_size=int(pool_size),
        pool_correct=int(pool_correct),
        n_requested=int(n_samples),
    )
