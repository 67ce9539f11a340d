"""CTR-GCN's prepared NTU files (``NTU60_CS.npz``, ``NTU60_CV.npz``, ``NTU120_CSub.npz``, ``NTU120_CSet.npz``).

Written by CTR-GCN's ``seq_transformation.py`` (also used by SkateFormer and MacDiff, which name them
``NTU60_XSub.npz`` / ``NTU60_XView.npz``): keys ``x_train`` / ``x_test`` float32 ``(N, 300, 150)`` with each
frame ``[actor1 25 x xyz | actor2 25 x xyz]`` and ``y_train`` / ``y_test`` one-hot ``(N, classes)``.
The coordinates are already translated (SpineMid of actor 1 in its first frame at the origin), in metres.

The ``x`` arrays are memory-mapped straight out of the archive (``np.savez`` stores them uncompressed) and
exposed as a ``(N, 3, 300, 25, 2)`` view, so the multi-GB file is never read eagerly. Valid lengths are
the frames up to the last non-zero one (the reference feeder's ``valid_frame_num`` counts non-zero frames,
which is the same because the pipeline drops empty frames). These files carry no sample names: sample ids
are ``<file stem>:<split>:<index>``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DataError
from ..arrays import npz_keys, npz_member

#: File names CTR-GCN (first) and MacDiff (second) give each (variant, benchmark).
FILE_NAMES = {
    ("ntu60", "xsub"): ("NTU60_CS.npz", "NTU60_XSub.npz"),
    ("ntu60", "xview"): ("NTU60_CV.npz", "NTU60_XView.npz"),
    ("ntu120", "xsub"): ("NTU120_CSub.npz", "NTU120_XSub.npz"),
    ("ntu120", "xset"): ("NTU120_CSet.npz", "NTU120_XSet.npz"),
}

_LENGTH_CHUNK = 512


def find_ctrgcn_file(folder: Path, variant: str, benchmark: str) -> Path | None:
    """The CTR-GCN file for ``(variant, benchmark)`` inside ``folder``, if there is one."""
    for name in FILE_NAMES.get((variant, benchmark), ()):
        if (folder / name).is_file():
            return folder / name
    return None


def read_ctrgcn_npz(path: Path, split: str, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``(data (N, 3, 300, 25, 2) view, labels, lengths, sample_ids)`` of one split of a CTR-GCN file.

    Raises:
        DataError: missing keys, a frame width other than 150, labels that are not one-hot over
            ``num_classes`` classes, or x/y sample counts that disagree.
    """
    keys = npz_keys(path)
    xk, yk = f"x_{split}", f"y_{split}"
    for k in (xk, yk):
        if k not in keys:
            raise DataError(f"{path}: no array {k!r} (CTR-GCN files hold x_train, y_train, x_test, y_test); found {', '.join(keys)}")
    x = npz_member(path, xk)
    y = npz_member(path, yk, mmap=False)
    if x.ndim != 3 or x.shape[2] != 150:
        raise DataError(f"{path}: {xk} has shape {x.shape}, expected (N, T, 150) = 2 actors x 25 joints x xyz")
    if y.ndim != 2 or y.shape != (x.shape[0], num_classes):
        raise DataError(f"{path}: {yk} has shape {y.shape}, expected ({x.shape[0]}, {num_classes}) one-hot labels")
    hot = y > 0
    bad = np.flatnonzero(hot.sum(axis=1) != 1)
    if bad.size:
        raise DataError(f"{path}: {yk} row {int(bad[0])} is not one-hot (it has {int(hot[bad[0]].sum())} positive entries)")
    labels = np.argmax(hot, axis=1).astype(np.int64)
    if x.dtype != np.float32:
        x = np.asarray(x, dtype=np.float32)
    n, t, _ = x.shape
    data = x.reshape(n, t, 2, 25, 3).transpose(0, 4, 1, 3, 2)  # (N, 3, T, 25, 2), a view
    lengths = np.empty(n, dtype=np.int64)
    for start in range(0, n, _LENGTH_CHUNK):
        block = np.abs(np.asarray(x[start : start + _LENGTH_CHUNK])).max(axis=2) > 0  # (n, T)
        last = t - np.argmax(block[:, ::-1], axis=1)
        lengths[start : start + _LENGTH_CHUNK] = np.where(block.any(axis=1), last, 1)
    ids = [f"{path.stem}:{split}:{i}" for i in range(n)]
    return data, labels, lengths, ids
