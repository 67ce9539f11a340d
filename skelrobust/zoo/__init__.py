"""The pretrained lite zoo shipped with skelrobust.

No weights can be downloaded at run time, so the package carries small ("lite") victims trained on the
embedded ``synthetic`` dataset. ``manifest.json`` lists them; each entry records

``victim``, ``dataset``, ``preset``, ``file`` (relative to this folder), ``sha256``, ``command`` (the exact
``skelrobust train`` command), ``test_accuracy``, ``val_accuracy``, ``num_parameters``, ``train_seconds``,
``build_config`` (the keyword overrides passed to the family's ``build``; usually empty), ``config`` (the
resolved architecture configuration), ``num_classes`` and ``layout``.

:func:`skelrobust.load_victim` uses :func:`find_entry` when no checkpoint is given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import CheckpointError

ZOO_DIR = Path(__file__).resolve().parent
MANIFEST = ZOO_DIR / "manifest.json"

_REQUIRED = ("victim", "dataset", "preset", "file", "sha256", "num_classes", "layout")


def entries(manifest: str | Path | None = None) -> list[dict[str, Any]]:
    """All zoo entries (empty when no manifest is installed).

    Raises:
        CheckpointError: the manifest is not valid JSON or an entry lacks a required field.
    """
    path = Path(manifest) if manifest is not None else MANIFEST
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"zoo manifest {path} is unreadable: {exc}") from exc
    items = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise CheckpointError(f"zoo manifest {path}: expected {{'entries': [...]}}")
    for i, item in enumerate(items):
        missing = [k for k in _REQUIRED if not isinstance(item, dict) or k not in item]
        if missing:
            raise CheckpointError(f"zoo manifest {path}: entry {i} lacks field(s) {', '.join(missing)}")
    return [dict(item) for item in items]


def find_entry(victim: str, dataset: str, preset: str, manifest: str | Path | None = None) -> dict[str, Any] | None:
    """The zoo entry for ``(victim, dataset, preset)``, or ``None``."""
    for item in entries(manifest):
        if (item["victim"], item["dataset"], item["preset"]) == (victim, dataset, preset):
            return item
    return None


def entry_path(entry: dict[str, Any], manifest: str | Path | None = None) -> Path:
    """Absolute path of an entry's checkpoint (``file`` is relative to the manifest's folder)."""
    base = Path(manifest).resolve().parent if manifest is not None else ZOO_DIR
    return base / entry["file"]
