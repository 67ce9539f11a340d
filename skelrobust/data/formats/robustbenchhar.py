"""The prior benchmark's data files (RobustBenchHAR / TASAR, data "adopted from BEAT").

``root`` is the folder holding ``classTrain.npz`` and ``classTest.npz``, each with ``clips`` and ``classes``
(integer labels):

- ``robustbenchhar-hdm05``: ``clips`` ``(N, 60, 75)`` = per frame 25 joints x xyz interleaved, layout
  ``hdm05``, one person, 65 classes. The values are z-scored with one global std (BEAT preprocessing),
  so units are ``"std"``, not metres.
- ``robustbenchhar-ntu60`` / ``robustbenchhar-ntu120``: ``clips`` ``(N, 3, 60, 25, 2)``, layout ``ntu25``,
  metres (MS-G3D pre-normalised: centred on the spine and rotated, then every 5th frame).

Arrays are memory-mapped when stored uncompressed and float32. Valid lengths are the frames up to the
last non-zero one (normally all 60: short takes were padded by repetition).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DataError, DatasetNotPreparedError
from ...layouts import get_layout
from .. import ntu
from ..arrays import npz_member
from ..base import SkeletonDataset, valid_lengths
from ..registry import DatasetSpec, register_dataset

FILES = {"train": "classTrain.npz", "test": "classTest.npz"}


def _load(name: str, split: str, root: Path, layout: str, class_names: list[str], units: str) -> SkeletonDataset:
    path = root / FILES[split] if root.is_dir() else root
    if not path.is_file():
        raise DataError(f"{path} does not exist; {name} expects a folder holding classTrain.npz and classTest.npz")
    clips = npz_member(path, "clips")
    classes = npz_member(path, "classes", mmap=False)
    n = clips.shape[0] if clips.ndim else 0
    if classes.shape != (n,) or not np.issubdtype(classes.dtype, np.integer):
        raise DataError(f"{path}: classes has shape {classes.shape} and dtype {classes.dtype}, expected ({n},) integers")
    if layout == "hdm05":
        if clips.ndim != 3 or clips.shape[2] != 75:
            raise DataError(f"{path}: clips has shape {clips.shape}, expected (N, T, 75) = 25 HDM05 joints x xyz")
        clips = np.asarray(clips, dtype=np.float32).reshape(n, clips.shape[1], 25, 3).transpose(0, 3, 1, 2)[..., None]
    else:
        if clips.ndim != 5 or clips.shape[1] != 3 or clips.shape[3] != 25:
            raise DataError(f"{path}: clips has shape {clips.shape}, expected (N, 3, T, 25, M) in the NTU layout")
        if clips.dtype != np.float32:
            clips = np.asarray(clips, dtype=np.float32)
    if n == 0:
        raise DataError(f"{path}: no clips")
    lengths = np.concatenate([valid_lengths(np.asarray(clips[i : i + 512])) for i in range(0, n, 512)])
    ids = [f"{path.stem}:{i}" for i in range(n)]
    return SkeletonDataset(name=name, split=split, data=clips, labels=classes.astype(np.int64), layout=get_layout(layout),
                           class_names=class_names, sample_ids=ids, lengths=lengths, units=units, source=str(path),
                           meta={"format": "robustbenchhar"})


def _register(name: str, layout: str, num_classes: int, units: str, class_names: list[str], what: str) -> None:
    def load(split: str, root: Path | None) -> SkeletonDataset:
        if root is None:
            raise DatasetNotPreparedError(f"{name} needs --root: the folder holding classTrain.npz and classTest.npz")
        return _load(name, split, root, layout, class_names, units)

    register_dataset(
        DatasetSpec(
            name=name,
            loader=load,
            description=f"RobustBenchHAR {what} (classTrain.npz / classTest.npz; clips, classes); root = their folder",
            layout=layout,
            num_classes=num_classes,
            units=units,
            needs_root=True,
            prepare_hint="Pass --root to the folder holding the benchmark's classTrain.npz and classTest.npz.",
            num_persons=1 if layout == "hdm05" else None,  # HDM05 clips are (N, T, 75); NTU clips carry M
        )
    )


_register("robustbenchhar-hdm05", "hdm05", 65, "std", [f"hdm05_class_{i:02d}" for i in range(65)],
          "HDM05 (65 classes, 60 frames, z-scored)")
_register("robustbenchhar-ntu60", "ntu25", 60, "m", ntu.class_names("ntu60"), "NTU-60 (60 frames)")
_register("robustbenchhar-ntu120", "ntu25", 120, "m", ntu.class_names("ntu120"), "NTU-120 (60 frames)")
