"""The embedded ``synthetic`` dataset: generated on first use, cached, memory-mapped afterwards.

``load_dataset("synthetic", split="test")`` needs no files. The first call for a given option set runs
:func:`skelrobust.data.synthesis.generate` (about a second per split on one core) and caches the split under
``$SKELROBUST_HOME/datasets/synthetic/<key>/<split>/`` where ``key`` = generator version + a hash of the
options and of the generator's source code, so an edited generator can never be served a stale cache. Every split is written to a private temporary folder and renamed into place in one step, so
concurrent first uses never expose a half-written cache: the loser of the race discards its copy.
Each split is fully validated once, before it is renamed into place, and its ``meta.json`` records a
validation stamp of the array files (:mod:`skelrobust.data.stamp`); later loads skip the content scan
while the files still match it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError, DataError
from ...io import atomic_write_json
from ...layouts import get_layout
from ...paths import skelrobust_home
from ..base import SkeletonDataset
from ..registry import DatasetSpec, register_dataset
from ..stamp import STAMP_KEY, make_stamp, stamp_matches
from .. import synthesis

#: Loader options and their defaults: 40 subjects x 16 classes x 4 repetitions = 2560 sequences.
OPTIONS: dict[str, Any] = {"seed": 0, "num_subjects": 40, "repetitions": 4}
_ARRAYS = ("data", "labels", "lengths", "subjects", "partners", "repetitions", "yaw_deg", "left_handed")
#: Files of a split covered by its validation stamp.
_FILES = tuple(f"{name}.npy" for name in _ARRAYS)


def _check_options(seed: Any, num_subjects: Any, repetitions: Any) -> tuple[int, int, int]:
    def integer(name: str, value: Any, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ConfigError(f"synthetic dataset option {name!r} must be an integer, got {value!r}")
        if value < low:
            raise ConfigError(f"synthetic dataset option {name!r} must be >= {low}, got {value}")
        return int(value)

    seed_ = integer("seed", seed, 0)
    if seed_ >= 2**63:
        raise ConfigError(f"synthetic dataset option 'seed' must be < 2**63, got {seed_}")
    return seed_, integer("num_subjects", num_subjects, 2), integer("repetitions", repetitions, 1)


def generator_fingerprint() -> str:
    """SHA-256 of the generator's source (synthesis and motion scripts): part of every cache key."""
    from .. import motions

    digest = hashlib.sha256()
    for module in (synthesis, motions):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def cache_key(seed: int, num_subjects: int, repetitions: int) -> str:
    """Folder name of a cached option set: generator version + hash of the options and the generator source."""
    options = json.dumps({"seed": seed, "num_subjects": num_subjects, "repetitions": repetitions}, sort_keys=True)
    digest = hashlib.sha256(options.encode() + generator_fingerprint().encode()).hexdigest()[:16]
    return f"v{synthesis.GENERATOR_VERSION}-{digest}"


def cache_folder(seed: int = 0, num_subjects: int = 40, repetitions: int = 4) -> Path:
    """Where the option set is (or will be) cached."""
    return skelrobust_home() / "datasets" / "synthetic" / cache_key(seed, num_subjects, repetitions)


def _write_split(folder: Path, split: str, seed: int, num_subjects: int, repetitions: int) -> None:
    """Generate one split into a temporary sibling folder and rename it into place."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{split}.", dir=folder))
    try:
        out = synthesis.generate(seed=seed, num_subjects=num_subjects, repetitions=repetitions, split=split)
        for name in _ARRAYS:
            np.save(tmp / f"{name}.npy", getattr(out, name))
        meta = {
            "generator_version": synthesis.GENERATOR_VERSION,
            "generator_sha256": generator_fingerprint(),
            "options": {"seed": seed, "num_subjects": num_subjects, "repetitions": repetitions},
            "split": split,
            "sample_ids": out.sample_ids,
        }
        # the one full content scan of this cache (stamp taken first; renaming the folder keeps mtimes)
        stamp = make_stamp(tmp, _FILES)
        _build(tmp, split, meta, _read_arrays(tmp), seed, num_subjects, repetitions, content_checked=False)
        meta[STAMP_KEY] = stamp
        atomic_write_json(tmp / "meta.json", meta)
        try:
            os.rename(tmp, folder / split)
        except OSError:
            if not (folder / split / "meta.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load_synthetic(split: str, root: Path | None, seed: int = 0, num_subjects: int = 40, repetitions: int = 4) -> SkeletonDataset:
    """Load (generating and caching on first use) one split of the synthetic dataset.

    Args:
        split: ``train`` (odd subject ids) or ``test`` (even subject ids).
        root: Cache folder of this option set; default :func:`cache_folder`.
        seed: Generator seed.
        num_subjects: Subjects in the whole set (half per split).
        repetitions: Samples per (subject, class).
    """
    seed, num_subjects, repetitions = _check_options(seed, num_subjects, repetitions)
    synthesis.split_subjects(num_subjects, split)  # validates the split name
    folder = Path(root) if root is not None else cache_folder(seed, num_subjects, repetitions)
    if not (folder / split / "meta.json").exists():
        _write_split(folder, split, seed, num_subjects, repetitions)
    where = folder / split
    try:
        meta = json.loads((where / "meta.json").read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("meta.json is not the generator's record")
        arrays = _read_arrays(where)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"synthetic dataset cache {where} is unreadable ({exc}); delete the folder to regenerate it") from exc
    if meta.get("options") != {"seed": seed, "num_subjects": num_subjects, "repetitions": repetitions}:
        raise DataError(f"synthetic dataset cache {where} was generated with options {meta.get('options')}, not the requested ones")
    if not isinstance(meta.get("sample_ids"), list) or "generator_version" not in meta:
        raise DataError(f"synthetic dataset cache {where} is unreadable (meta.json lacks its sample ids); delete the folder to regenerate it")
    # stat after opening: a file replaced after this point cannot be mistaken for the stamped one
    checked = stamp_matches(where, meta.get(STAMP_KEY), _FILES)
    return _build(where, split, meta, arrays, seed, num_subjects, repetitions, content_checked=checked)


def _read_arrays(where: Path) -> dict[str, np.ndarray]:
    """The arrays of one split folder, ``data`` as a read-only memory map."""
    return {name: np.load(where / f"{name}.npy", mmap_mode="r" if name == "data" else None) for name in _ARRAYS}


def _build(
    where: Path, split: str, meta: dict[str, Any], arrays: dict[str, np.ndarray], seed: int, num_subjects: int,
    repetitions: int, content_checked: bool,
) -> SkeletonDataset:
    """The dataset of one split folder; ``content_checked`` as in :class:`SkeletonDataset`."""
    train = synthesis.split_subjects(num_subjects, "train")
    return SkeletonDataset(
        name="synthetic",
        split=split,
        data=arrays["data"],
        labels=arrays["labels"],
        layout=get_layout("ntu25"),
        class_names=synthesis.class_names(),
        sample_ids=list(meta["sample_ids"]),
        lengths=arrays["lengths"],
        units="m",
        source=str(where),
        meta={
            "generator_version": meta["generator_version"],
            "seed": seed,
            "num_subjects": num_subjects,
            "repetitions": repetitions,
            "split_rule": "cross-subject: odd subject ids train, even ids test",
            "train_subjects": train,
            "test_subjects": synthesis.split_subjects(num_subjects, "test"),
            "ntu_action_ids": synthesis.ntu_action_ids(),
            "subjects": arrays["subjects"],
            "partners": arrays["partners"],
            "repetitions_index": arrays["repetitions"],
            "yaw_deg": arrays["yaw_deg"],
            "left_handed": arrays["left_handed"],
            "fps": synthesis.FPS,
            "quantum_m": synthesis.QUANTUM,
        },
        content_checked=content_checked,
    )


SPEC = register_dataset(
    DatasetSpec(
        name="synthetic",
        loader=load_synthetic,
        description="embedded procedural NTU-layout set (16 NTU classes incl. 3 interactions, 40 subjects, generated on first use)",
        layout="ntu25",
        num_classes=len(synthesis.class_names()),
        units="m",
        needs_root=False,
        options=dict(OPTIONS),
        num_persons=2,
    )
)
