"""The dataset object every loader returns, and its validation.

Canonical layout: ``data`` is float32 ``(N, C, T, V, M)`` (coordinates, frames, joints, persons).
Frames at or beyond a sample's valid length are padding and are exactly zero; an absent person is
exactly zero. Attacks never perturb those entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import DataError
from ..layouts import SkeletonLayout

#: Rows validated per chunk, so memory-mapped sets are checked without loading them whole.
_VALIDATE_CHUNK = 256
#: Version of :func:`validate_content`. Validation stamps recorded by an older version are not trusted,
#: so bump it whenever the content checks become stricter.
CONTENT_VALIDATOR_VERSION = 2  # 2: an all-zero (empty) sample is refused


@dataclass
class SkeletonDataset:
    """One split of a skeleton action dataset in the canonical layout.

    Attributes:
        name: Registry name of the dataset (``synthetic``, ``ntu60``...).
        split: ``train`` or ``test`` (or another split name the loader defines).
        data: float32 array ``(N, C, T, V, M)``; may be a read-only ``np.memmap``.
        labels: int64 ``(N,)`` class indices in ``[0, num_classes)``.
        layout: The skeleton layout of the joint axis.
        class_names: One name per class.
        sample_ids: One unique string per sample (e.g. ``S001C001P001R001A001``).
        lengths: int64 ``(N,)`` number of valid frames of each sample (``1..T``).
        units: Unit of the coordinates (``m`` for metres, ``std`` for z-scored data...).
        source: File or folder the data came from, used in error messages.
        meta: Loader-specific extras (benchmark, subjects, skipped-sample report...).
        content_checked: True only when the loader knows that exactly these arrays already passed
            :func:`validate_content` (a prepared folder or cache whose validation stamp matches the files on
            disk, see :mod:`skelrobust.data.stamp`): construction then runs the cheap structural checks only,
            instead of re-reading every sample of a multi-GB memory map. Default False: full validation.
    """

    name: str
    split: str
    data: np.ndarray
    labels: np.ndarray
    layout: SkeletonLayout
    class_names: list[str]
    sample_ids: list[str]
    lengths: np.ndarray
    units: str = "m"
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    content_checked: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_dataset(self, content=not self.content_checked)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(C, T, V, M)`` of one sample."""
        return tuple(int(s) for s in self.data.shape[1:])  # type: ignore[return-value]

    def subset(self, indices: Sequence[int] | np.ndarray) -> "SkeletonDataset":
        """A new dataset holding the given samples, in the given order (data copied into memory)."""
        idx = np.asarray(indices, dtype=np.int64)
        return SkeletonDataset(
            name=self.name,
            split=self.split,
            data=np.ascontiguousarray(self.data[idx]),
            labels=self.labels[idx],
            layout=self.layout,
            class_names=list(self.class_names),
            sample_ids=[self.sample_ids[i] for i in idx],
            lengths=self.lengths[idx],
            units=self.units,
            source=self.source,
            meta=dict(self.meta),
        )

    def info(self) -> dict[str, Any]:
        """A JSON-able summary (used by ``skelrobust data info``)."""
        return {
            "name": self.name,
            "split": self.split,
            "layout": self.layout.name,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "num_samples": len(self),
            "shape": list(self.shape),
            "units": self.units,
        }


def _where(ds: SkeletonDataset) -> str:
    return f"dataset {ds.name!r} ({ds.split}{', ' + ds.source if ds.source else ''})"


def validate_dataset(ds: SkeletonDataset, content: bool = True) -> None:
    """Check a dataset; raise :class:`DataError` naming the dataset and the first bad sample.

    Args:
        ds: The dataset.
        content: Also run :func:`validate_content` (reads every sample). False only for data whose content
            is known to have been checked already (see ``SkeletonDataset.content_checked``).
    """
    validate_structure(ds)
    if content:
        validate_content(ds)


def validate_structure(ds: SkeletonDataset) -> None:
    """Cheap checks that read no sample data: shapes, dtypes, label range, lengths range, unique ids."""
    where = _where(ds)
    if ds.data.ndim != 5:
        raise DataError(f"{where}: data must be (N, C, T, V, M), got shape {tuple(ds.data.shape)}")
    if ds.data.dtype != np.float32:
        raise DataError(f"{where}: data must be float32, got {ds.data.dtype}")
    n, _, t, v, _ = ds.data.shape
    if v != ds.layout.num_joints:
        raise DataError(f"{where}: data has {v} joints but layout {ds.layout.name!r} has {ds.layout.num_joints}")
    for field_name, arr in (("labels", ds.labels), ("lengths", ds.lengths)):
        if arr.shape != (n,):
            raise DataError(f"{where}: {field_name} has shape {arr.shape}, expected ({n},) to match the data")
        if arr.dtype != np.int64:
            raise DataError(f"{where}: {field_name} must be int64, got {arr.dtype}")
    if len(ds.sample_ids) != n:
        raise DataError(f"{where}: {len(ds.sample_ids)} sample ids for {n} samples")
    if len(set(ds.sample_ids)) != n:
        raise DataError(f"{where}: sample ids are not unique")
    if not ds.class_names:
        raise DataError(f"{where}: no class names")
    bad = np.flatnonzero((ds.labels < 0) | (ds.labels >= len(ds.class_names)))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{where}: sample {ds.sample_ids[i]!r} has label {int(ds.labels[i])}, expected 0..{len(ds.class_names) - 1}"
        )
    bad = np.flatnonzero((ds.lengths < 1) | (ds.lengths > t))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{where}: sample {ds.sample_ids[i]!r} has {int(ds.lengths[i])} valid frames, expected 1..{t}")


def validate_content(ds: SkeletonDataset) -> None:
    """Scan every sample (in chunks, memory maps stay unloaded): finite coordinates, zero padding, not empty.

    An empty sample (every coordinate zero: no tracked person in any frame) is refused, as a loader that
    skips such files by a documented rule (MSR's all-zero file) does before building the dataset.

    Assumes :func:`validate_structure` passed. Cost: one full read of ``ds.data``.
    """
    where = _where(ds)
    n, t = ds.data.shape[0], ds.data.shape[2]
    frame = np.arange(t)
    for start in range(0, n, _VALIDATE_CHUNK):
        block = np.asarray(ds.data[start : start + _VALIDATE_CHUNK])
        finite = np.isfinite(block).all(axis=(1, 2, 3, 4))
        if not finite.all():
            i = start + int(np.flatnonzero(~finite)[0])
            raise DataError(f"{where}: sample {ds.sample_ids[i]!r} contains NaN or infinite coordinates")
        padded = frame[None, :] >= ds.lengths[start : start + _VALIDATE_CHUNK, None]  # (n, T)
        magnitude = np.abs(block).max(axis=(1, 3, 4))  # (n, T)
        empty = ~(magnitude > 0).any(axis=1)
        if empty.any():
            i = start + int(np.flatnonzero(empty)[0])
            raise DataError(f"{where}: sample {ds.sample_ids[i]!r} is empty: every coordinate is zero (no tracked person in any frame)")
        leak = (magnitude * padded).any(axis=1)
        if leak.any():
            i = start + int(np.flatnonzero(leak)[0])
            raise DataError(
                f"{where}: sample {ds.sample_ids[i]!r} has non-zero coordinates after its {int(ds.lengths[i])} valid frames"
            )


def valid_lengths(data: np.ndarray) -> np.ndarray:
    """Number of frames up to and including the last frame with any non-zero coordinate, per sample (>= 1)."""
    nonzero = np.abs(data).max(axis=(1, 3, 4)) > 0  # (N, T)
    t = data.shape[2]
    last = t - np.argmax(nonzero[:, ::-1], axis=1)
    return np.where(nonzero.any(axis=1), last, 1).astype(np.int64)
