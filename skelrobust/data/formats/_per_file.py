"""Shared loader for datasets stored as one raw skeleton file per sequence (MSR Action3D, UTD-MHAD).

Both read their original files straight from ``root`` (no prepare step) with the same rules:

- file names ``a<action>_s<subject>_<...><suffix>`` give label ``action - 1`` and the subject;
- frames whose coordinates are all zero (tracking lost) are removed (``meta["dropped_frames"]``);
  a file with no non-zero frame is skipped and listed in ``meta["skipped"]``;
- split = standard cross-subject protocol, odd subjects train, even subjects test;
- every sample is zero-padded to the longest valid sequence of the whole dataset, so both splits share T;
- the parsed folder is cached per folder state (file names, sizes, modification times).

A format module describes itself with one :class:`PerFileFormat` and registers :meth:`PerFileFormat.spec`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from ...errors import DataError, DatasetNotPreparedError
from ...layouts import get_layout
from ..arrays import pad_stack
from ..base import SkeletonDataset
from ..registry import DatasetSpec

#: ``(sample id, (3, t, V, 1) float32, label, subject)``
Sample = tuple[str, np.ndarray, int, int]
Signature = tuple[tuple[str, int, int], ...]


@dataclass
class PerFileFormat:
    """One dataset of per-sequence raw files.

    Attributes:
        name: Registry name (also the logger prefix).
        suffix: File name ending that marks a data file, e.g. ``"_skeleton3D.txt"``; the sample id is the
            file name without it.
        pattern: Human form of the file name used in messages, e.g. ``"aXX_sYY_eZZ_skeleton3D.txt"``.
        file_re: Full-name regex with three integer groups: action (1-based), subject, repetition.
        class_names: Class names in label order; the valid action ids are ``1..len(class_names)``.
        layout: Layout name of the returned data.
        reader: ``reader(path) -> (T, V, 3)`` float32 coordinates, raising :class:`DataError` on damage.
        root_hint: Where ``--root`` should point, completing "pass --root to ...".
        action_format: Format spec of action ids in messages (``"02d"`` gives ``a01``, ``"d"`` gives ``a1``).
        subfolder: When ``root`` holds no data file but has this sub-folder, read the sub-folder instead.
    """

    name: str
    suffix: str
    pattern: str
    file_re: re.Pattern[str]
    class_names: list[str]
    layout: str
    reader: Callable[[Path], np.ndarray]
    root_hint: str
    action_format: str = "d"
    subfolder: str | None = None
    _cached_read: Callable[[Path, Signature], tuple[tuple[Sample, ...], dict]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # One cache per format (4 folder states each), keyed by the folder's signature so edits re-read.
        self._cached_read = lru_cache(maxsize=4)(self._read_all)

    def _files(self, root: Path) -> list[Path]:
        return sorted(p for p in root.iterdir() if p.name.endswith(self.suffix))

    def _signature(self, root: Path) -> Signature:
        """Name, size and modification time of every data file: the cache key of :meth:`_read_all`."""
        return tuple((p.name, st.st_size, st.st_mtime_ns) for p in self._files(root) for st in (p.stat(),))

    def _read_all(self, root: Path, signature: Signature) -> tuple[tuple[Sample, ...], dict]:
        """Every usable sample ``(id, (3, t, V, 1), label, subject)`` plus the report; ``signature`` keys the cache."""
        files = self._files(root)
        if not files:
            raise DatasetNotPreparedError(f"no {self.pattern} files in {root}; pass --root to {self.root_hint}")
        samples, skipped, dropped = [], [], 0
        for path in files:
            m = self.file_re.match(path.name)
            if m is None:
                raise DataError(f"{path}: file name is not of the form {self.pattern}")
            action, subject, _ = (int(g) for g in m.groups())
            if not 1 <= action <= len(self.class_names):
                fmt = self.action_format
                raise DataError(f"{path}: action a{action:{fmt}} out of range, expected a{1:{fmt}}..a{len(self.class_names):{fmt}}")
            seq = self.reader(path)
            tracked = np.abs(seq).max(axis=(1, 2)) > 0
            sample_id = path.name[: -len(self.suffix)]
            if not tracked.any():
                skipped.append(sample_id)
                # log under the format module's logger (e.g. skelrobust.data.formats.msr), where users filter it
                logging.getLogger(self.reader.__module__).info("%s: skipping %s, all coordinates are zero", self.name, sample_id)
                continue
            dropped += int((~tracked).sum())
            samples.append((sample_id, seq[tracked].transpose(2, 0, 1)[..., None], action - 1, subject))
        return tuple(samples), {"skipped": skipped, "dropped_frames": dropped, "files": len(files)}

    def load(self, split: str, root: Path | None) -> SkeletonDataset:
        """The ``split`` (``train`` = odd subjects, ``test`` = even) of the files in ``root``, padded to the longest sample."""
        if root is None or not root.is_dir():
            raise DatasetNotPreparedError(f"{self.name} needs --root: the folder holding the {self.pattern} files")
        if self.subfolder is not None and not any(root.glob(f"*{self.suffix}")) and (root / self.subfolder).is_dir():
            root = root / self.subfolder
        samples, report = self._cached_read(root.resolve(), self._signature(root))
        frames = max(s[1].shape[1] for s in samples)
        chosen = [s for s in samples if (s[3] % 2 == 1) == (split == "train")]
        data = pad_stack([s[1] for s in chosen], frames=frames, persons=1)
        meta = {
            "skipped": {"count": len(report["skipped"]), "samples": list(report["skipped"]), "rule": "all coordinates zero"},
            "dropped_frames": report["dropped_frames"],
            "files": report["files"],
            "subjects": sorted({s[3] for s in chosen}),
        }
        return SkeletonDataset(name=self.name, split=split, data=data, labels=np.array([s[2] for s in chosen], dtype=np.int64),
                               layout=get_layout(self.layout), class_names=list(self.class_names), sample_ids=[s[0] for s in chosen],
                               lengths=np.array([s[1].shape[1] for s in chosen], dtype=np.int64), units="m",
                               source=str(root), meta=meta)

    def spec(self, description: str, prepare_hint: str) -> DatasetSpec:
        """The registry entry: metres, one class per name, root required, no prepare step."""
        return DatasetSpec(name=self.name, loader=self.load, description=description, layout=self.layout,
                           num_classes=len(self.class_names), units="m", needs_root=True, prepare_hint=prepare_hint,
                           num_persons=1)
