"""Training on an exported adversarial set: read any format ``skelrobust export`` writes, check it, mix it in.

``skelrobust train --adversarial-set FILE [--adversarial-ratio R]`` adds the set's adversarial clips, with
their true labels, to every training batch. The set must be made from samples of the *training* split: a
set made from test samples would leak the test set into training, and is refused. Every check happens
before anything is written (one line naming the file, the sample and what was expected):

- the layout and the clip shape ``(C, T, V, M)`` equal the training split's (shorter pyskl clips are padded
  with zeros to the split's length, as their valid frames are all the format stores);
- each sample id belongs to the training split (an id of the test split is refused as a leak);
- each label is the training split's label of that sample id.

Mixing: each step keeps its clean batch of ``B`` samples and adds ``round(B * R / (1 - R))`` clips drawn at
random from the set, so that ``R`` is the adversarial share of the step's batch and every clean sample
is still visited once per epoch. The clips go through the same recipe loss as the clean ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import SkeletonDataset
from ..errors import ConfigError, DataError
from ..io import sha256_file
from ..victim import Victim
from .base import TrainingRecipe


@dataclass
class AdversarialSet:
    """Adversarial clips read from an exported file.

    Attributes:
        data: float32 ``(N, C, T, V, M)`` (canonical layout).
        labels: int64 ``(N,)`` true labels.
        sample_ids: Source sample id of each clip.
        layout: Layout name the file states or its format implies.
        fmt: The export format it was read as.
        path: The file.
    """

    data: np.ndarray
    labels: np.ndarray
    sample_ids: list[str]
    layout: str
    fmt: str
    path: Path


def _npz_keys(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable adversarial set ({type(exc).__name__}: {exc})") from None


def read_adversarial_set(path: str | Path) -> AdversarialSet:
    """Read an adversarial set in any format of :data:`skelrobust.export.FORMATS`, detected from its content.

    Raises:
        DataError: unreadable file, or a file that is none of the export formats.
    """
    path = Path(path).expanduser()
    if path.is_dir() and (path / "classTrain.npz").is_file():
        path = path / "classTrain.npz"
    if not path.is_file():
        raise DataError(f"--adversarial-set {path}: no such file")
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head[:1] == b"\x80":  # a pickle: pyskl annotations
        return _read_pyskl(path)
    z = _npz_keys(path)
    if "data" in z and "sample_ids" in z:
        data = z["data"]
        layout = str(z["layout"]) if "layout" in z else ""
        return AdversarialSet(data, z.get("labels", np.zeros(0)), [str(s) for s in z["sample_ids"]], layout, "npz", path)
    if "x_test" in z and "sample_ids_test" in z:
        x = z["x_test"]
        if x.ndim != 3 or x.shape[2] != 150:
            raise DataError(f"{path}: ctrgcn-npz x_test must be (N, T, 150), got {x.shape}")
        n, t, _ = x.shape
        data = np.ascontiguousarray(x.reshape(n, t, 2, 25, 3).transpose(0, 4, 1, 3, 2))
        y = z["y_test"]
        labels = y.argmax(axis=1) if y.ndim == 2 else y
        return AdversarialSet(data, labels, [str(s) for s in z["sample_ids_test"]], "ntu25", "ctrgcn-npz", path)
    if "clips" in z and "classes" in z and "sample_ids" in z:
        clips = z["clips"]
        if clips.ndim == 3 and clips.shape[2] % 3 == 0:  # hdm05: (N, T, V*3) joint-interleaved xyz
            n, t, d = clips.shape
            data, layout = np.ascontiguousarray(clips.reshape(n, t, d // 3, 3).transpose(0, 3, 1, 2)[..., None]), "hdm05"
        else:
            data, layout = clips, "ntu25"
        return AdversarialSet(data, z["classes"], [str(s) for s in z["sample_ids"]], layout, "robustbenchhar", path)
    raise DataError(
        f"{path}: not an exported adversarial set (expected the keys of one of skelrobust export's formats: "
        f"npz data/sample_ids, ctrgcn-npz x_test/sample_ids_test, robustbenchhar clips/classes/sample_ids, or a pyskl pickle)"
    )


def _read_pyskl(path: Path) -> AdversarialSet:
    from ..data.formats.pyskl import safe_load_pickle

    content = safe_load_pickle(path)
    try:
        wanted = set(content["split"]["adversarial"])
        annotations = [a for a in content["annotations"] if a["frame_dir"] in wanted]
        clips = [np.asarray(a["keypoint"], dtype=np.float32) for a in annotations]  # (M, T, V, C)
        labels = np.asarray([int(a["label"]) for a in annotations], dtype=np.int64)
        ids = [str(a["frame_dir"]) for a in annotations]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a pyskl adversarial set from skelrobust export ({type(exc).__name__}: {exc})") from None
    if not clips or any(c.ndim != 4 for c in clips):
        raise DataError(f"{path}: pyskl keypoints must be (M, T, V, C) arrays, one per adversarial annotation")
    m, v, c = clips[0].shape[0], clips[0].shape[2], clips[0].shape[3]
    t = max(k.shape[1] for k in clips)
    data = np.zeros((len(clips), c, t, v, m), dtype=np.float32)
    for i, k in enumerate(clips):
        if k.shape[0] != m or k.shape[2:] != (v, c):
            raise DataError(f"{path}: sample {ids[i]}: keypoint shape {k.shape} differs from the first clip's (M={m}, V={v}, C={c})")
        data[i, :, : k.shape[1]] = k.transpose(3, 1, 2, 0)
    layout = str(content.get("skelrobust", {}).get("layout") or "")
    return AdversarialSet(data, labels, ids, layout, "pyskl", path)


def check_adversarial_set(adv: AdversarialSet, train: SkeletonDataset, test: SkeletonDataset | None) -> np.ndarray:
    """Check ``adv`` against the training split; return the training-split index of each clip.

    Raises:
        DataError: layout, shape, sample id or label does not fit (one line naming the file and sample).
    """
    where = f"--adversarial-set {adv.path}"
    if adv.layout and adv.layout != train.layout.name:
        raise DataError(f"{where}: layout {adv.layout!r}, but dataset {train.name!r} is {train.layout.name!r}")
    shape = tuple(train.data.shape[1:])
    data = adv.data
    if adv.fmt == "pyskl" and data.ndim == 5 and data.shape[2] < shape[1]:
        data = np.concatenate([data, np.zeros(data.shape[:2] + (shape[1] - data.shape[2],) + data.shape[3:], np.float32)], axis=2)
    if adv.fmt == "ctrgcn-npz" and data.ndim == 5 and data.shape[4] > shape[3] and not data[..., shape[3]:].any():
        data = data[..., : shape[3]]  # the format always holds two persons; the extra one is empty padding
    if data.ndim != 5 or tuple(data.shape[1:]) != shape:
        raise DataError(f"{where}: clips of shape {tuple(data.shape[1:])}, but dataset {train.name!r} has (C, T, V, M) = {shape}")
    if not np.isfinite(data).all():
        raise DataError(f"{where}: holds non-finite coordinates")
    labels = np.asarray(adv.labels)
    if labels.shape != (len(data),) or len(adv.sample_ids) != len(data):
        raise DataError(f"{where}: {len(data)} clips but {labels.shape[0] if labels.ndim else 0} labels and {len(adv.sample_ids)} sample ids")
    position = {sid: i for i, sid in enumerate(train.sample_ids)}
    testing = set(test.sample_ids) if test is not None else set()
    rows = np.empty(len(data), dtype=np.int64)
    for i, sid in enumerate(adv.sample_ids):
        if sid not in position:
            if sid in testing:
                raise DataError(
                    f"{where}: sample {sid} is from the test split of {train.name!r}; training on it would leak the test set (export a set made from the training split)"
                )
            raise DataError(f"{where}: sample {sid} is not in the training split of {train.name!r}")
        rows[i] = position[sid]
        if int(labels[i]) != int(train.labels[rows[i]]):
            raise DataError(f"{where}: sample {sid} has label {int(labels[i])}, but its true label in {train.name!r} is {int(train.labels[rows[i]])}")
    adv.data, adv.labels = np.ascontiguousarray(data, dtype=np.float32), labels.astype(np.int64)
    return rows


class AdversarialSetMixing(TrainingRecipe):
    """Wraps a recipe so that every batch also holds clips of an exported adversarial set (true labels).

    Args:
        base: The recipe whose loss and validation are used (clean, or a hardening recipe).
        adversarial: A checked :class:`AdversarialSet`.
        ratio: Adversarial share of each step's batch, in (0, 1).
        excluded: Training-split indices held out for validation; clips made from them are dropped from the
            mix so validation stays untouched by the set (their count is recorded).
    """

    def __init__(self, base: TrainingRecipe, adversarial: AdversarialSet, ratio: float, rows: np.ndarray, excluded: np.ndarray) -> None:
        if not 0.0 < ratio < 1.0:
            raise ConfigError(f"--adversarial-ratio must be in (0, 1) (the adversarial share of each batch), got {ratio}")
        keep = ~np.isin(rows, excluded)
        if not keep.any():
            raise DataError(f"--adversarial-set {adversarial.path}: every clip comes from the validation samples; none is left to train on")
        self.base = base
        self.name = base.name
        self.selection = base.selection
        self.ratio = float(ratio)
        self._data = torch.from_numpy(adversarial.data[keep])
        self._labels = torch.from_numpy(adversarial.labels[keep])
        self._record = {
            "file": str(adversarial.path), "format": adversarial.fmt, "sha256": sha256_file(adversarial.path),
            "n": int(keep.sum()), "dropped_validation_samples": int((~keep).sum()), "ratio": self.ratio,
        }

    def loss(self, victim: Victim, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        k = max(1, int(round(len(x) * self.ratio / (1 - self.ratio))))
        pick = torch.randint(len(self._data), (k,), generator=generator)
        xa, ya = self._data[pick].to(x.device), self._labels[pick].to(y.device)
        loss, logits = self.base.loss(victim, torch.cat([x, xa]), torch.cat([y, ya]), generator)
        return loss, logits[: len(x)]

    def validate(self, victim: Victim, ds: SkeletonDataset, indices: np.ndarray, batch_size: int) -> dict[str, float]:
        return self.base.validate(victim, ds, indices, batch_size)

    def config(self) -> dict[str, Any]:
        return {**self.base.config(), "adversarial_set": json.loads(json.dumps(self._record))}
