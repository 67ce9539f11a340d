"""``msr-action3d``: MSR Action3D (Li, Zhang & Liu, CVPRW 2010), 20 actions, 10 subjects, Kinect v1.

Reads the original ``aXX_sYY_eZZ_skeleton3D.txt`` files (Vemulapalli et al.'s ``real_world_coordinates``
release) from ``root`` directly; there is no prepare step and no default root. Each file holds one line
``x y z c`` per joint, 20 lines per frame (layout ``msr20``), world coordinates in metres with the sensor
at the origin; the confidence ``c`` is dropped. Label = ``XX - 1``.

Rules (all counted in ``meta`` and logged, nothing is dropped silently):

- frames whose coordinates are all zero (tracking lost) are removed (``meta["dropped_frames"]``);
- a file with no non-zero frame is skipped (``meta["skipped"]``; in the public release that is
  ``a13_s09_e02``). ``a13_s09_e03`` keeps its 196 tracked frames of 936.

Split: the standard cross-subject protocol, odd subjects (1, 3, 5, 7, 9) train, even subjects test.
Every sample is zero-padded to the longest valid sequence of the whole dataset, so both splits share T.
The left/right joint names were checked against the data: in "high arm wave" (performed with the right
arm) the joints this layout names ``*_right`` move.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...errors import DataError, DatasetNotPreparedError
from ...layouts import get_layout
from ..arrays import pad_stack
from ..base import SkeletonDataset
from ..registry import DatasetSpec, register_dataset

logger = logging.getLogger(__name__)

NAME = "msr-action3d"
CLASS_NAMES = [
    "high arm wave", "horizontal arm wave", "hammer", "hand catch", "forward punch", "high throw", "draw x",
    "draw tick", "draw circle", "hand clap", "two hand wave", "side boxing", "bend", "forward kick", "side kick",
    "jogging", "tennis swing", "tennis serve", "golf swing", "pickup and throw",
]
NUM_JOINTS = 20
_FILE_RE = re.compile(r"^a(\d+)_s(\d+)_e(\d+)_skeleton3D\.txt$")


def read_msr_file(path: Path) -> np.ndarray:
    """``(T, 20, 3)`` float32 coordinates of one MSR Action3D skeleton file (confidence dropped).

    Raises:
        DataError: empty or truncated file, a line without 4 values, non-finite values.
    """
    try:
        lines = [ln.split() for ln in Path(path).read_text(encoding="ascii").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read MSR Action3D file ({exc})") from exc
    if not lines:
        raise DataError(f"{path}: empty file, expected lines 'x y z c', 20 per frame")
    bad = next((i for i, ln in enumerate(lines) if len(ln) != 4), None)
    if bad is not None:
        raise DataError(f"{path}: line {bad + 1} has {len(lines[bad])} values, expected 4 (x y z confidence)")
    if len(lines) % NUM_JOINTS:
        raise DataError(f"{path}: {len(lines)} joint lines is not a multiple of {NUM_JOINTS} joints (truncated file?)")
    try:
        values = np.array(lines, dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"{path}: non-numeric value ({exc})") from None
    if not np.isfinite(values).all():
        raise DataError(f"{path}: contains NaN or infinite values")
    return values.reshape(-1, NUM_JOINTS, 4)[:, :, :3].astype(np.float32)


def _signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of every data file: the cache key of :func:`_read_all`."""
    return tuple(
        (p.name, st.st_size, st.st_mtime_ns)
        for p in sorted(root.iterdir()) if p.name.endswith("_skeleton3D.txt") for st in (p.stat(),)
    )


@lru_cache(maxsize=4)
def _read_all(root: Path, signature: tuple[tuple[str, int, int], ...]) -> tuple[tuple[tuple[str, np.ndarray, int, int], ...], dict]:
    """Every usable sample ``(id, (3, t, 20, 1), label, subject)`` plus the report; cached per folder state."""
    files = sorted(p for p in root.iterdir() if p.name.endswith("_skeleton3D.txt"))
    if not files:
        raise DatasetNotPreparedError(f"no aXX_sYY_eZZ_skeleton3D.txt files in {root}; pass --root to the MSR Action3D folder")
    samples, skipped, dropped = [], [], 0
    for path in files:
        m = _FILE_RE.match(path.name)
        if m is None:
            raise DataError(f"{path}: file name is not of the form aXX_sYY_eZZ_skeleton3D.txt")
        action, subject, _ = (int(g) for g in m.groups())
        if not 1 <= action <= len(CLASS_NAMES):
            raise DataError(f"{path}: action a{action:02d} out of range, expected a01..a{len(CLASS_NAMES):02d}")
        seq = read_msr_file(path)
        tracked = np.abs(seq).max(axis=(1, 2)) > 0
        sample_id = path.name[: -len("_skeleton3D.txt")]
        if not tracked.any():
            skipped.append(sample_id)
            logger.info("%s: skipping %s, all coordinates are zero", NAME, sample_id)
            continue
        dropped += int((~tracked).sum())
        samples.append((sample_id, seq[tracked].transpose(2, 0, 1)[..., None], action - 1, subject))
    return tuple(samples), {"skipped": skipped, "dropped_frames": dropped, "files": len(files)}


def load(split: str, root: Path | None) -> SkeletonDataset:
    if root is None or not root.is_dir():
        raise DatasetNotPreparedError(f"{NAME} needs --root: the folder holding the aXX_sYY_eZZ_skeleton3D.txt files")
    samples, report = _read_all(root.resolve(), _signature(root))
    frames = max(s[1].shape[1] for s in samples)
    chosen = [s for s in samples if (s[3] % 2 == 1) == (split == "train")]
    data = pad_stack([s[1] for s in chosen], frames=frames, persons=1)
    meta = {
        "skipped": {"count": len(report["skipped"]), "samples": list(report["skipped"]), "rule": "all coordinates zero"},
        "dropped_frames": report["dropped_frames"],
        "files": report["files"],
        "subjects": sorted({s[3] for s in chosen}),
    }
    return SkeletonDataset(name=NAME, split=split, data=data, labels=np.array([s[2] for s in chosen], dtype=np.int64),
                           layout=get_layout("msr20"), class_names=list(CLASS_NAMES), sample_ids=[s[0] for s in chosen],
                           lengths=np.array([s[1].shape[1] for s in chosen], dtype=np.int64), units="m",
                           source=str(root), meta=meta)


register_dataset(
    DatasetSpec(
        name=NAME,
        loader=load,
        description="MSR Action3D (20 actions, Kinect v1, 1 person), original text files; odd subjects train; root = their folder",
        layout="msr20",
        num_classes=20,
        units="m",
        needs_root=True,
        prepare_hint="Pass --root to the folder holding the aXX_sYY_eZZ_skeleton3D.txt files.",
    )
)
