"""``nw-ucla``: Northwestern-UCLA Multiview Action3D (Wang et al., CVPR 2014), 10 actions, Kinect v1.

Raw input is the per-sample JSON form the CTR-GCN project distributes (``all_sqe/<name>.json``)::

    {"file_name": "a01_s01_e00_v01", "skeletons": T x 20 x 3, "label": 1..10}

The name encodes action ``aXX`` (original ids 1-6, 8, 9, 11, 12, mapped in that order to labels 1..10),
subject ``sXX``, repetition ``eXX`` and view ``vXX``. ``skelrobust data prepare nw-ucla --raw-dir DIR --out
ROOT`` checks each file (name, label agrees with the action id, 20 joints, finite, non-empty) and writes
the standard cross-view split: views 1 and 2 train (1,020 clips), view 3 test (464 clips). Coordinates
are kept raw (metres, Kinect v1 SDK joint order = layout ``kinect20``, one person); the feeder's centring
and min-max scaling belong to the victim adapter. Both splits are zero-padded to the longest clip of
the whole set, so they share T.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ...layouts import get_layout
from ..base import SkeletonDataset
from ..prepared import SplitWriter, open_split, read_meta, validate_prepared, write_meta
from ..stamp import STAMP_KEY
from ..registry import DatasetSpec, default_root, register_dataset

logger = logging.getLogger(__name__)

NAME = "nw-ucla"
#: Original NW-UCLA action id -> (label 1..10, name).
ACTIONS = {
    1: (1, "pick up with one hand"),
    2: (2, "pick up with two hands"),
    3: (3, "drop trash"),
    4: (4, "walk around"),
    5: (5, "sit down"),
    6: (6, "stand up"),
    8: (7, "donning"),
    9: (8, "doffing"),
    11: (9, "throw"),
    12: (10, "carry"),
}
CLASS_NAMES = [name for _, name in sorted(ACTIONS.values())]
TRAIN_VIEWS = (1, 2)
_NAME_RE = re.compile(r"^a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})$")
_HINT = f"Prepare it with `skelrobust data prepare nw-ucla --raw-dir DIR_WITH_JSON_FILES --out {default_root(NAME)}`."


def read_sample(path: Path) -> tuple[str, np.ndarray, int, int]:
    """``(name, skeleton (3, T, 20, 1) float32, label 0..9, view)`` of one NW-UCLA JSON file."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable NW-UCLA JSON file ({exc})") from exc
    if not isinstance(record, dict) or not {"file_name", "skeletons", "label"} <= set(record):
        raise DataError(f"{path}: expected a JSON object with keys file_name, skeletons, label")
    name = str(record["file_name"])
    m = _NAME_RE.match(name)
    if m is None:
        raise DataError(f"{path}: file_name {name!r} is not of the form aXX_sXX_eXX_vXX")
    action, _, _, view = (int(g) for g in m.groups())
    if action not in ACTIONS:
        raise DataError(f"{path}: action a{action:02d} is not an NW-UCLA action ({', '.join(f'a{a:02d}' for a in ACTIONS)})")
    label = record["label"]
    if not isinstance(label, int) or label != ACTIONS[action][0]:
        raise DataError(f"{path}: label {label!r} does not match action a{action:02d} (expected {ACTIONS[action][0]})")
    try:
        skel = np.asarray(record["skeletons"], dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: skeletons is not a T x 20 x 3 numeric array ({exc})") from None
    if skel.ndim != 3 or skel.shape[1:] != (20, 3):
        raise DataError(f"{path}: skeletons has shape {skel.shape}, expected (T, 20, 3)")
    if skel.shape[0] == 0:
        raise DataError(f"{path}: empty sequence (0 frames)")
    if not np.isfinite(skel).all():
        raise DataError(f"{path}: skeletons contains NaN or infinite values")
    if view not in (1, 2, 3):
        raise DataError(f"{path}: view v{view:02d}, expected v01, v02 or v03")
    return name, skel.astype(np.float32).transpose(2, 0, 1)[..., None], label - 1, view


def prepare(raw_dir: Path, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Read every ``*.json`` under ``raw_dir`` and write the prepared train (views 1, 2) / test (view 3) splits."""
    from tqdm import tqdm

    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if not raw_dir.is_dir():
        raise DataError(f"raw NW-UCLA folder {raw_dir} does not exist")
    paths = sorted(raw_dir.rglob("*.json"))
    if not paths:
        raise DataError(f"no .json files under {raw_dir}; point --raw-dir at CTR-GCN's all_sqe folder")
    samples = [read_sample(p) for p in tqdm(paths, desc="read nw-ucla", unit="file", disable=not progress)]
    seen: dict[str, Path] = {}
    for (name, *_), path in zip(samples, paths):
        if name in seen:
            raise DataError(f"sample {name} appears twice: {seen[name]} and {path}")
        seen[name] = path
    frames = max(s[1].shape[1] for s in samples)
    counts = {}
    for split in ("train", "test"):
        members = sorted((s for s in samples if (s[3] in TRAIN_VIEWS) == (split == "train")), key=lambda s: s[0])
        counts[split] = len(members)
        if not members:
            raise DataError(f"{raw_dir}: no {split} samples (views {TRAIN_VIEWS} train, view 3 test)")
        writer = SplitWriter(out_dir, split, (len(members), 3, frames, 20, 1))
        try:
            for i, (name, seq, label, _) in enumerate(members):
                writer.write(i, seq, label, name)
        except BaseException:
            writer.abort()
            raise
        writer.close()
    meta = {"name": NAME, "layout": "kinect20", "units": "m", "class_names": CLASS_NAMES, "num_frames": frames,
            "splits": counts, "source": str(raw_dir), "skipped": {"count": 0}}
    meta[STAMP_KEY] = validate_prepared(out_dir, [("", "train"), ("", "test")], name=NAME,
                                        layout=get_layout("kinect20"), class_names=list(CLASS_NAMES), units="m")
    write_meta(out_dir, meta)
    logger.info("nw-ucla: %d train / %d test samples, T = %d", counts["train"], counts["test"], frames)
    return meta


def load(split: str, root: Path | None) -> SkeletonDataset:
    root = root if root is not None else default_root(NAME)
    meta = read_meta(root, NAME, _HINT)
    if meta.get("name") != NAME:
        raise DataError(f"{root} holds a prepared {meta.get('name')!r} dataset, not {NAME!r}")
    return open_split(root, "", split, meta.get(STAMP_KEY), name=NAME, layout=get_layout("kinect20"),
                      class_names=list(CLASS_NAMES), units="m", meta={"views": {"train": list(TRAIN_VIEWS), "test": [3]}})


register_dataset(
    DatasetSpec(
        name=NAME,
        loader=load,
        description="NW-UCLA (10 actions, Kinect v1, 1 person); views 1+2 train, view 3 test; bring CTR-GCN's JSON files",
        layout="kinect20",
        num_classes=10,
        units="m",
        needs_root=True,
        prepare=prepare,
        prepare_hint=_HINT,
        num_persons=1,
    )
)
