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

import re
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..registry import register_dataset
from ._per_file import PerFileFormat

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


FORMAT = PerFileFormat(
    name=NAME,
    suffix="_skeleton.mat",
    pattern="aA_sS_tT_skeleton.mat",
    file_re=_FILE_RE,
    class_names=CLASS_NAMES,
    layout="utd20",
    reader=read_utd_file,
    root_hint="UTD-MHAD's Skeleton folder",
    subfolder="Skeleton",
)

register_dataset(
    FORMAT.spec(
        description="UTD-MHAD skeletons (27 actions, Kinect v1, 1 person), original .mat files; odd subjects train; root = their folder",
        prepare_hint="Pass --root to UTD-MHAD's Skeleton folder (aA_sS_tT_skeleton.mat files).",
    )
)
