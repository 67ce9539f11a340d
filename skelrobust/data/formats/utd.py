"""``utd-mhad``: UTD-MHAD skeleton modality (Chen, Jafari & Kehtarnavaz, ICIP 2015), 27 actions, 8 subjects.

Reads the original ``aA_sS_tT_skeleton.mat`` files (MATLAB v5, variable ``d_skel`` of shape 20 x 3 x T,
metres, layout ``utd20``) from ``root`` directly; there is no prepare step and no default root.
Label = ``A - 1``. The public release has 861 sequences (``a8_s1_t4``, ``a23_s6_t4``, ``a27_s8_t4`` were
never recorded). Frames whose coordinates are all zero are removed and counted in
``meta["dropped_frames"]``; a file with no non-zero frame would be skipped and listed in ``meta["skipped"]``.

Split: the standard cross-subject protocol, odd subjects train, even subjects test. Every sample is
zero-padded to the longest sequence of the whole dataset, so both splits share T.
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

NAME = "utd-mhad"
CLASS_NAMES = [
    "right arm swipe to the left", "right arm swipe to the right", "right hand wave", "two hand front clap",
    "right arm throw", "cross arms in the chest", "basketball shoot", "right hand draw x",
    "right hand draw circle (clockwise)", "right hand draw circle (counter clockwise)", "draw triangle",
    "bowling (right hand)", "front boxing", "baseball swing from right", "tennis right hand forehand swing",
    "arm curl (two arms)", "tennis serve", "two hand push", "right hand knock on door", "right hand catch an object",
    "right hand pick up and throw", "jogging in place", "walking in place", "sit to stand", "stand to sit",
    "forward lunge (left foot forward)", "squat (two arms stretch out)",
]
NUM_JOINTS = 20
_FILE_RE = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_skeleton\.mat$")


def read_utd_file(path: Path) -> np.ndarray:
    """``(T, 20, 3)`` float32 coordinates of one UTD-MHAD skeleton ``.mat`` file.

    Raises:
        DataError: unreadable or truncated file, no ``d_skel`` variable, wrong shape, non-finite values.
    """
    import scipy.io

    try:
        content = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises a zoo of types (ValueError, MatReadError, OSError...) on damage
        raise DataError(f"{path}: cannot read MATLAB file ({type(exc).__name__}: {exc})") from None
    if "d_skel" not in content:
        raise DataError(f"{path}: no variable 'd_skel' (found {', '.join(k for k in content if not k.startswith('__'))})")
    skel = np.asarray(content["d_skel"])
    if skel.ndim == 2 and skel.shape == (NUM_JOINTS, 3):  # MATLAB drops a trailing singleton frame axis
        skel = skel[:, :, None]
    if skel.ndim != 3 or skel.shape[:2] != (NUM_JOINTS, 3):
        raise DataError(f"{path}: d_skel has shape {skel.shape}, expected ({NUM_JOINTS}, 3, T)")
    if skel.shape[2] == 0:
        raise DataError(f"{path}: empty sequence (0 frames)")
    if skel.dtype.kind not in "fiu" or not np.isfinite(skel).all():
        raise DataError(f"{path}: d_skel must hold finite numbers")
    return skel.transpose(2, 0, 1).astype(np.float32)


def _signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of every data file: the cache key of :func:`_read_all`."""
    return tuple(
        (p.name, st.st_size, st.st_mtime_ns)
        for p in sorted(root.iterdir()) if p.name.endswith("_skeleton.mat") for st in (p.stat(),)
    )


@lru_cache(maxsize=4)
def _read_all(root: Path, signature: tuple[tuple[str, int, int], ...]) -> tuple[tuple[tuple[str, np.ndarray, int, int], ...], dict]:
    files = sorted(p for p in root.iterdir() if p.name.endswith("_skeleton.mat"))
    if not files:
        raise DatasetNotPreparedError(f"no aA_sS_tT_skeleton.mat files in {root}; pass --root to UTD-MHAD's Skeleton folder")
    samples, skipped, dropped = [], [], 0
    for path in files:
        m = _FILE_RE.match(path.name)
        if m is None:
            raise DataError(f"{path}: file name is not of the form aA_sS_tT_skeleton.mat")
        action, subject, _ = (int(g) for g in m.groups())
        if not 1 <= action <= len(CLASS_NAMES):
            raise DataError(f"{path}: action a{action} out of range, expected a1..a{len(CLASS_NAMES)}")
        seq = read_utd_file(path)
        tracked = np.abs(seq).max(axis=(1, 2)) > 0
        sample_id = path.name[: -len("_skeleton.mat")]
        if not tracked.any():
            skipped.append(sample_id)
            logger.info("%s: skipping %s, all coordinates are zero", NAME, sample_id)
            continue
        dropped += int((~tracked).sum())
        samples.append((sample_id, seq[tracked].transpose(2, 0, 1)[..., None], action - 1, subject))
    return tuple(samples), {"skipped": skipped, "dropped_frames": dropped, "files": len(files)}


def load(split: str, root: Path | None) -> SkeletonDataset:
    if root is None or not root.is_dir():
        raise DatasetNotPreparedError(f"{NAME} needs --root: the folder holding the aA_sS_tT_skeleton.mat files")
    if not any(root.glob("*_skeleton.mat")) and (root / "Skeleton").is_dir():
        root = root / "Skeleton"
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
                           layout=get_layout("utd20"), class_names=list(CLASS_NAMES), sample_ids=[s[0] for s in chosen],
                           lengths=np.array([s[1].shape[1] for s in chosen], dtype=np.int64), units="m",
                           source=str(root), meta=meta)


register_dataset(
    DatasetSpec(
        name=NAME,
        loader=load,
        description="UTD-MHAD skeletons (27 actions, Kinect v1, 1 person), original .mat files; odd subjects train; root = their folder",
        layout="utd20",
        num_classes=27,
        units="m",
        needs_root=True,
        prepare_hint="Pass --root to UTD-MHAD's Skeleton folder (aA_sS_tT_skeleton.mat files).",
    )
)
