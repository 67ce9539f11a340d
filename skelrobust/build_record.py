"""Build records: how to rebuild the victim a checkpoint belongs to, stored beside the checkpoint.

A checkpoint written by ``skelrobust train`` stays a bare state dict (official code loads it unchanged);
what architecture it belongs to goes into a small JSON file next to it, ``<stem>.build.json``
(``OUT/best.pt`` -> ``OUT/best.build.json``)::

    {"format": "skelrobust-victim-build", "version": 1, "victim": "ctrgcn", "preset": "lite",
     "layout": "kinect20", "num_classes": 10, "num_persons": 1, "build_config": {...}, "config": {...},
     "dataset": "nw-ucla"}

``build_config`` holds the options the victim was built with beyond its preset (what ``--config`` gave),
``config`` the resolved configuration (for the record). :func:`skelrobust.load_victim` reads the record of
any checkpoint it loads, so ``run``, ``eval`` and ``export`` rebuild the trained victim with no
``--preset`` or ``--config``; options given explicitly still win.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import CheckpointError
from .io import atomic_write_json
from .victim import Victim

FORMAT = "skelrobust-victim-build"
VERSION = 1
_REQUIRED = ("victim", "preset", "layout", "num_classes", "num_persons", "build_config")


def record_path(checkpoint: str | Path) -> Path:
    """Where the build record of ``checkpoint`` lives: ``<stem>.build.json`` in the same folder."""
    path = Path(checkpoint)
    return path.with_name(f"{path.stem}.build.json")


def build_record(victim: Victim, *, spec: str, build_config: dict[str, Any], dataset: str | None = None) -> dict[str, Any]:
    """The record of ``victim``, built from family or factory ``spec`` with options ``build_config``."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "victim": spec,
        "preset": victim.preset,
        "layout": victim.layout.name,
        "num_classes": victim.num_classes,
        "num_persons": victim.num_persons,
        "build_config": dict(build_config),
        "config": dict(victim.config),
        "dataset": dataset,
    }


def write_build_record(checkpoint: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` beside ``checkpoint`` (atomically) and return its path."""
    path = record_path(checkpoint)
    atomic_write_json(path, record)
    return path


def read_build_record(checkpoint: str | Path) -> dict[str, Any] | None:
    """The build record beside ``checkpoint``, or ``None`` when there is none.

    Raises:
        CheckpointError: the record exists but is not valid JSON or lacks a field.
    """
    path = record_path(checkpoint)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"build record {path} is unreadable ({exc}); delete it to load {Path(checkpoint).name} with explicit --preset/--config") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"build record {path}: expected a JSON object with format {FORMAT!r}")
    missing = [k for k in _REQUIRED if k not in record]
    if missing or not isinstance(record["build_config"], dict):
        raise CheckpointError(f"build record {path} lacks field(s) {', '.join(missing) or 'build_config (an object)'}")
    return record
