"""The pretrained lite zoo shipped with skelrobust.

No weights can be downloaded at run time, so the package carries small ("lite") victims trained on the
embedded ``synthetic`` dataset. ``manifest.json`` lists them; each entry records

``victim``, ``dataset``, ``preset``, ``file`` (relative to this folder), ``sha256``, ``command`` (the exact
``skelrobust train`` command; for self-supervised victims ``protocol: linear-eval`` and ``pretraining`` with
the ``skelrobust pretrain`` command and its time), ``test_accuracy``, ``val_accuracy``, ``num_parameters``, ``train_seconds`` (wall clock on the shared
2-core build machine) and ``train_cpu_seconds``,
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


SHIPPED_HISTORY_ROWS = 100


def shipped_metadata(meta: dict[str, Any], max_rows: int = SHIPPED_HISTORY_ROWS) -> dict[str, Any]:
    """A run's ``metadata.json`` as shipped beside its zoo checkpoint: full provenance, history thinned.

    A linear evaluation of thousands of epochs would put megabytes of per-epoch rows into the installed
    package, so a history longer than ``max_rows`` keeps every ``k``-th epoch, the first, the best and the
    last (``history_stride`` says ``k``; the run folder keeps every row). Everything else is unchanged.
    """
    history = meta.get("history") or []
    if len(history) <= max_rows:
        return meta
    stride = -(-len(history) // max_rows)
    best = int(meta.get("best_epoch") or 0)
    keep = {0, len(history) - 1, *range(stride - 1, len(history), stride)}
    if 1 <= best <= len(history):
        keep.add(best - 1)
    return {**meta, "history": [history[i] for i in sorted(keep)], "history_stride": stride}


def add_run(run_dir: str | Path, manifest: str | Path | None = None) -> dict[str, Any]:
    """Ship a finished ``skelrobust train`` run: copy its ``best.pt`` into the zoo and (re)write its entry.

    The checkpoint lands at ``<dataset>/<victim>-<preset>.pt`` next to the manifest, the run's full
    ``metadata.json`` beside it as ``<victim>-<preset>.json`` (history thinned, :func:`shipped_metadata`); the manifest entry carries the run's metadata (command, accuracies, parameter count, training time, configuration). Used by the
    maintainers when the lite zoo is retrained.
    """
    import shutil

    from ..io import atomic_path, atomic_write_json, sha256_file

    run = Path(run_dir)
    try:
        meta = json.loads((run / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{run}: no readable metadata.json ({exc}); is the training run finished?") from exc
    path = Path(manifest) if manifest is not None else MANIFEST
    rel = f"{meta['dataset']}/{meta['victim']}-{meta['preset']}.pt"
    with atomic_path(path.parent / rel) as tmp:
        shutil.copyfile(run / "best.pt", tmp)
        tmp.chmod(0o644)  # package data: world-readable like any installed file
    atomic_write_json(path.parent / rel.replace(".pt", ".json"), shipped_metadata(meta))
    (path.parent / rel.replace(".pt", ".json")).chmod(0o644)
    digest = sha256_file(path.parent / rel)
    if digest != meta["sha256"]:
        raise CheckpointError(f"{run}/best.pt changed after training (sha256 {digest} != metadata {meta['sha256']})")
    entry = {
        "victim": meta["victim"],
        "dataset": meta["dataset"],
        "preset": meta["preset"],
        "file": rel,
        "sha256": digest,
        "command": meta["command"],
        "test_accuracy": meta["test_accuracy"],
        "val_accuracy": meta["val_accuracy"],
        "num_parameters": meta["num_parameters"],
        "train_seconds": meta["train_seconds"],
        "train_cpu_seconds": meta.get("train_cpu_seconds"),
        "torch_threads": meta.get("torch_threads"),
        "epochs": meta["epochs"],
        "best_epoch": meta["best_epoch"],
        "seed": meta["seed"],
        "build_config": meta.get("build_config", {}),
        "config": meta["config"],
        "num_classes": meta["num_classes"],
        "layout": meta["layout"],
        "versions": meta.get("versions", {}),
    }
    if meta.get("protocol") == "linear-eval":  # a self-supervised victim: its pretraining belongs to its provenance
        entry["protocol"] = "linear-eval"
        entry["pretraining"] = meta.get("pretraining", {})
    kept = [e for e in entries(path) if (e["victim"], e["dataset"], e["preset"]) != (entry["victim"], entry["dataset"], entry["preset"])]
    kept.append(entry)
    kept.sort(key=lambda e: (e["dataset"], e["victim"], e["preset"]))
    atomic_write_json(path, {"entries": kept})
    return entry
