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

Every sample is validated once, when it is prepared (:func:`validate_prepared`), and ``meta.json`` records
a validation stamp of the split files (:mod:`.stamp`); :func:`open_split` then skips the full content
scan while the files still match that stamp, so loading a 10 GB NTU split no longer reads it whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import DataError, DatasetNotPreparedError
from ..io import atomic_path, atomic_write_json, atomic_write_text
from .base import SkeletonDataset
from .stamp import make_stamp, stamp_matches

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

    def abort(self) -> None:
        """Drop the half-filled split: its hidden ``.partial`` array is allocated full size (GBs on NTU)."""
        if hasattr(self, "data"):
            del self.data
        self._tmp.unlink(missing_ok=True)

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
    if not isinstance(meta, dict):
        raise DataError(f"{path}: expected a JSON object of prepared-dataset metadata, found {type(meta).__name__}; prepare the dataset again")
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
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"prepared split {split!r} in {folder}: unreadable array ({exc}); prepare the dataset again") from exc
    for kind, arr, ok in (("data", data, data.dtype == np.float32 and data.ndim == 5),
                          ("labels", labels, labels.dtype.kind in "iu"), ("lengths", lengths, lengths.dtype.kind in "iu")):
        if not ok:
            raise DataError(f"prepared split {split!r} in {folder}: {kind} has dtype {arr.dtype} shape {arr.shape}, "
                            "not what `data prepare` writes; prepare the dataset again")
    try:
        ids = ids_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"prepared split {split!r} in {folder}: unreadable {ids_path.name} ({exc}); prepare the dataset again") from exc
    n = data.shape[0]
    if labels.shape != (n,) or lengths.shape != (n,) or len(ids) != n:
        raise DataError(
            f"prepared split {split!r} in {folder}: {n} samples in data but {labels.shape[0]} labels, "
            f"{lengths.shape[0]} lengths and {len(ids)} ids"
        )
    return data, labels.astype(np.int64), lengths.astype(np.int64), ids


def split_files(split: str, group: str = "") -> list[str]:
    """The files of one prepared split, relative to the dataset root (the names a validation stamp uses)."""
    prefix = f"{group}/" if group else ""
    return [f"{prefix}{split}_{suffix}" for suffix in ("data.npy", "labels.npy", "lengths.npy", "ids.txt")]


def validate_prepared(
    root: Path, splits: Iterable[tuple[str, str]], previous: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    """Fully validate freshly written splits and return the validation stamp to store in ``meta.json``.

    The stamp is taken before the scan, so a file changed meanwhile does not match it later.

    Args:
        root: The dataset root.
        splits: ``(group, split)`` pairs just written (group ``""`` when the dataset has none).
        previous: The stamp of an earlier ``meta.json`` of the same root, whose entries for splits not
            written now are kept.
        **fields: ``name``, ``layout``, ``class_names``, ``units`` of the :class:`SkeletonDataset`.

    Raises:
        DataError: a sample is non-finite or has non-zero padding (naming it); nothing is stamped.
    """
    root = Path(root)
    splits = list(splits)
    stamp = make_stamp(root, [name for group, split in splits for name in split_files(split, group)], previous)
    for group, split in splits:
        folder = root / group if group else root
        data, labels, lengths, ids = read_split(folder, split)
        SkeletonDataset(split=split, data=data, labels=labels, lengths=lengths, sample_ids=ids, source=str(folder),
                        **fields)
    return stamp


def open_split(root: Path, group: str, split: str, stamp: Any, **fields: Any) -> SkeletonDataset:
    """The :class:`SkeletonDataset` of one prepared split, memory-mapped.

    When ``stamp`` (``meta.json``'s validation stamp) matches the split's files, the dataset is built with
    ``content_checked=True`` (structural checks only); otherwise every sample is scanned.

    Args:
        root: The dataset root. group: Benchmark sub-folder or ``""``. split: Split name.
        stamp: The stamp from ``meta.json`` (None when absent).
        **fields: The other :class:`SkeletonDataset` fields (name, layout, class_names, units, meta).
    """
    root = Path(root)
    folder = root / group if group else root
    data, labels, lengths, ids = read_split(folder, split)
    # stat after opening: a file replaced after this point cannot be mistaken for the stamped one
    checked = stamp_matches(root, stamp, split_files(split, group))
    return SkeletonDataset(split=split, data=data, labels=labels, lengths=lengths, sample_ids=ids, source=str(folder),
                           content_checked=checked, **fields)
