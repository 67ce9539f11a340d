"""The on-disk format ``skelrobust data prepare`` writes, and its reader.

A prepared dataset is a folder::

    meta.json                     written last: its presence marks a complete preparation
    [<group>/]<split>_data.npy    float32 (N, C, T, V, M), read as a read-only memory map
    [<group>/]<split>_labels.npy  int64 (N,)
    [<group>/]<split>_lengths.npy int64 (N,) valid frames
    [<group>/]<split>_ids.txt     one sample id per line

``<group>`` is a benchmark (``xsub``, ``xview``...) for datasets with several split protocols, empty
otherwise. Arrays are written to temporary names and renamed into place, so an interrupted preparation
never leaves a half-written file under a final name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, DatasetNotPreparedError
from ..io import atomic_path, atomic_write_json, atomic_write_text

FORMAT = "skelrobust-prepared-v1"


class SplitWriter:
    """Fill one split row by row into a memory-mapped ``.npy`` file.

    Args:
        folder: Output folder (created).
        split: Split name (file prefix).
        shape: ``(N, C, T, V, M)`` of the split.
    """

    def __init__(self, folder: Path, split: str, shape: tuple[int, int, int, int, int]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.split = split
        self._tmp = self.folder / f".{split}_data.npy.partial"
        self.data = np.lib.format.open_memmap(self._tmp, mode="w+", dtype=np.float32, shape=shape)
        n = shape[0]
        self.labels = np.zeros(n, dtype=np.int64)
        self.lengths = np.zeros(n, dtype=np.int64)
        self.ids = [""] * n

    def write(self, i: int, sample: np.ndarray, label: int, sample_id: str) -> None:
        """Store sample ``i`` (``(C, t, V, m)``, ``t <= T``, ``m <= M``); the rest of the row stays zero."""
        t, m = sample.shape[1], sample.shape[3]
        self.data[i, :, :t, :, :m] = sample
        self.labels[i] = label
        self.lengths[i] = t
        self.ids[i] = sample_id

    def close(self) -> None:
        """Flush and move every file of the split into place."""
        self.data.flush()
        del self.data
        for suffix, arr in (("labels", self.labels), ("lengths", self.lengths)):
            with atomic_path(self.folder / f"{self.split}_{suffix}.npy") as tmp:
                np.save(tmp, arr)
        atomic_write_text(self.folder / f"{self.split}_ids.txt", "".join(f"{s}\n" for s in self.ids))
        os.replace(self._tmp, self.folder / f"{self.split}_data.npy")


def write_meta(root: Path, meta: dict[str, Any]) -> None:
    """Write ``meta.json`` (atomically, last) with the format tag."""
    atomic_write_json(Path(root) / "meta.json", {"format": FORMAT, **meta})


def read_meta(root: Path, name: str, hint: str) -> dict[str, Any]:
    """``meta.json`` of a prepared dataset; :class:`DatasetNotPreparedError` with ``hint`` when absent."""
    path = Path(root) / "meta.json"
    if not path.is_file():
        raise DatasetNotPreparedError(f"dataset {name!r} is not prepared in {root} (no meta.json). {hint}".strip())
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable prepared-dataset metadata ({exc}); prepare the dataset again") from exc
    if meta.get("format") != FORMAT:
        raise DataError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}; prepare the dataset again")
    return meta


def read_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``(data memmap, labels, lengths, sample_ids)`` of one prepared split.

    Raises:
        DataError: a file is missing, truncated or inconsistent with the others.
    """
    folder = Path(folder)
    files = {k: folder / f"{split}_{k}.npy" for k in ("data", "labels", "lengths")}
    ids_path = folder / f"{split}_ids.txt"
    for path in (*files.values(), ids_path):
        if not path.is_file():
            raise DataError(f"prepared split {split!r} is incomplete: {path} is missing; prepare the dataset again")
    try:
        data = np.load(files["data"], mmap_mode="r", allow_pickle=False)
        labels = np.load(files["labels"], allow_pickle=False)
        lengths = np.load(files["lengths"], allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"prepared split {split!r} in {folder}: unreadable array ({exc})") from exc
    ids = ids_path.read_text(encoding="utf-8").splitlines()
    n = data.shape[0]
    if labels.shape != (n,) or lengths.shape != (n,) or len(ids) != n:
        raise DataError(
            f"prepared split {split!r} in {folder}: {n} samples in data but {labels.shape[0]} labels, "
            f"{lengths.shape[0]} lengths and {len(ids)} ids"
        )
    return data, labels.astype(np.int64), lengths.astype(np.int64), ids
