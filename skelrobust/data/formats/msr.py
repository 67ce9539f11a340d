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

import re
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..registry import register_dataset
from ._per_file import PerFileFormat

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


FORMAT = PerFileFormat(
    name=NAME,
    suffix="_skeleton3D.txt",
    pattern="aXX_sYY_eZZ_skeleton3D.txt",
    file_re=_FILE_RE,
    class_names=CLASS_NAMES,
    layout="msr20",
    reader=read_msr_file,
    root_hint="the MSR Action3D folder",
    action_format="02d",
)

register_dataset(
    FORMAT.spec(
        description="MSR Action3D (20 actions, Kinect v1, 1 person), original text files; odd subjects train; root = their folder",
        prepare_hint="Pass --root to the folder holding the aXX_sYY_eZZ_skeleton3D.txt files.",
    )
)
