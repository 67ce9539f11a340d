"""``npz``: the generic skeleton-dataset file, for bringing any dataset (and skelrobust's own exports).

``load_dataset("npz", split, root=PATH)``: ``PATH`` is one ``.npz`` file (used for whichever split is asked)
or a folder holding ``<split>.npz`` (``train.npz``, ``test.npz``). Read with ``np.load(allow_pickle=False)``;
``data`` is memory-mapped when stored uncompressed (``np.savez``), so large files load lazily.

Keys (exact names; strings are numpy unicode arrays, never object arrays):

=============== ========================= ===================================================================
key             dtype / shape             meaning
=============== ========================= ===================================================================
``data``        float32 (N, C, T, V, M)   canonical tensor; padded frames and absent persons exactly zero
                                          (float16/float64 are accepted and converted)
``labels``      integer (N,)              class indices 0..K-1
``layout``      str, 0-d                  registered layout name (``ntu25``, ``kinect20``...); V must match
``class_names`` str (K,), optional        default ``class_0 .. class_{K-1}`` with K = max label + 1
``sample_ids``  str (N,), optional        unique ids; default ``<file stem>:<index>``
``lengths``     integer (N,), optional    valid frames per sample; default: up to the last non-zero frame
``units``       str, 0-d, optional        coordinate units, default ``m``
``name``        str, 0-d, optional        dataset name recorded in ``meta['name']`` (the registry name stays ``npz``)
=============== ========================= ===================================================================

Other keys (an export's ``clean``, ``indices``, ``skelrobust_meta``...) are ignored. :func:`save_npz` writes exactly
this format (atomically).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import DataError, DatasetNotPreparedError, RegistryError
from ...io import atomic_path
from ...layouts import get_layout
from ..arrays import npz_keys, npz_member
from ..base import SkeletonDataset, valid_lengths
from ..registry import DatasetSpec, register_dataset

REQUIRED = ("data", "labels", "layout")
OPTIONAL = ("class_names", "sample_ids", "lengths", "units", "name")


def _string(path: Path, key: str) -> str:
    arr = npz_member(path, key, mmap=False)
    if arr.ndim != 0 or arr.dtype.kind != "U":
        raise DataError(f"{path}: {key!r} must be a 0-d unicode string array, got dtype {arr.dtype} shape {arr.shape}")
    return str(arr)


def _strings(path: Path, key: str, n: int | None) -> list[str]:
    arr = npz_member(path, key, mmap=False)
    if arr.ndim != 1 or arr.dtype.kind != "U" or (n is not None and arr.shape[0] != n):
        want = f"({n},)" if n is not None else "(K,)"
        raise DataError(f"{path}: {key!r} must be a unicode array of shape {want}, got dtype {arr.dtype} shape {arr.shape}")
    return [str(s) for s in arr]


def read_npz(path: Path, split: str) -> SkeletonDataset:
    """Read one generic skeleton ``.npz`` file (format in the module docstring).

    Raises:
        DataError: a required key is missing or any key has the wrong dtype or shape (the message names the
            file and key); the dataset's own validation (labels in range, zero padding...) follows.
    """
    keys = npz_keys(path)
    absent = [k for k in REQUIRED if k not in keys]
    if absent:
        raise DataError(f"{path}: missing key(s) {', '.join(absent)}; a skeleton npz needs {', '.join(REQUIRED)}")
    data = npz_member(path, "data")
    if data.ndim != 5:
        raise DataError(f"{path}: 'data' has shape {data.shape}, expected (N, C, T, V, M)")
    if data.dtype != np.float32:
        if data.dtype.kind != "f":
            raise DataError(f"{path}: 'data' has dtype {data.dtype}, expected float32")
        data = np.asarray(data, dtype=np.float32)
    n = data.shape[0]
    if n == 0:
        raise DataError(f"{path}: 'data' holds no samples")
    labels = npz_member(path, "labels", mmap=False)
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise DataError(f"{path}: 'labels' has dtype {labels.dtype} shape {labels.shape}, expected ({n},) integers")
    layout_name = _string(path, "layout")
    try:
        layout = get_layout(layout_name)
    except RegistryError as exc:
        raise DataError(f"{path}: {exc}") from None
    if data.shape[3] != layout.num_joints:
        raise DataError(f"{path}: 'data' has {data.shape[3]} joints but layout {layout_name!r} has {layout.num_joints}")
    if "class_names" in keys:
        class_names = _strings(path, "class_names", None)
    else:
        class_names = [f"class_{i}" for i in range(int(labels.max()) + 1)]
    ids = _strings(path, "sample_ids", n) if "sample_ids" in keys else [f"{path.stem}:{i}" for i in range(n)]
    if "lengths" in keys:
        lengths = npz_member(path, "lengths", mmap=False)
        if lengths.shape != (n,) or lengths.dtype.kind not in "iu":
            raise DataError(f"{path}: 'lengths' has dtype {lengths.dtype} shape {lengths.shape}, expected ({n},) integers")
    else:
        lengths = np.concatenate([valid_lengths(np.asarray(data[i : i + 512])) for i in range(0, n, 512)])
    units = _string(path, "units") if "units" in keys else "m"
    meta = {"format": "npz", "name": _string(path, "name") if "name" in keys else path.stem}
    return SkeletonDataset(name="npz", split=split, data=data, labels=labels.astype(np.int64), layout=layout,
                           class_names=class_names, sample_ids=ids, lengths=lengths.astype(np.int64), units=units,
                           source=str(path), meta=meta)


def save_npz(
    path: str | Path,
    data: np.ndarray,
    labels: np.ndarray | Sequence[int],
    layout: str,
    class_names: Sequence[str] | None = None,
    sample_ids: Sequence[str] | None = None,
    lengths: np.ndarray | Sequence[int] | None = None,
    units: str = "m",
    name: str | None = None,
) -> Path:
    """Write a generic skeleton ``.npz`` (uncompressed, so readers can memory-map ``data``); atomic.

    Args:
        path: Output file (``.npz`` is appended by nobody: give the full name).
        data: ``(N, C, T, V, M)``, stored as float32. Other arguments: the keys of the module docstring.
    """
    arrays: dict[str, np.ndarray] = {
        "data": np.ascontiguousarray(data, dtype=np.float32),
        "labels": np.asarray(labels, dtype=np.int64),
        "layout": np.array(get_layout(layout).name),
        "units": np.array(units),
    }
    if class_names is not None:
        arrays["class_names"] = np.array([str(c) for c in class_names])
    if sample_ids is not None:
        arrays["sample_ids"] = np.array([str(s) for s in sample_ids])
    if lengths is not None:
        arrays["lengths"] = np.asarray(lengths, dtype=np.int64)
    if name is not None:
        arrays["name"] = np.array(name)
    path = Path(path)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return path


def load(split: str, root: Path | None) -> SkeletonDataset:
    if root is None:
        raise DatasetNotPreparedError("dataset 'npz' needs --root: an .npz file or a folder holding <split>.npz")
    path = root / f"{split}.npz" if root.is_dir() else root
    if not path.is_file():
        raise DatasetNotPreparedError(f"{path} does not exist; a folder given as npz root must hold {split}.npz")
    return read_npz(path, split)


register_dataset(
    DatasetSpec(
        name="npz",
        loader=load,
        description=(
            "Any dataset as a generic .npz (data, labels, layout, optional class_names, sample_ids, lengths); "
            "root = file or folder of <split>.npz"
        ),
        layout="(from file)",
        num_classes=None,
        units="(from file)",
        needs_root=True,
        prepare_hint="Pass --root to an .npz file or to a folder holding train.npz / test.npz.",
    )
)
