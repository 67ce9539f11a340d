"""Hardened checkpoints of the lite zoo: adversarially trained versions of shipped victims.

``hardened.json`` (next to ``manifest.json``) lists them, one entry per (victim, dataset, preset, defense)
with the fields of a zoo entry plus ``defense`` (``pgd-at`` / ``trades``), ``defense_config`` (the training
recipe: budget, inner steps, beta), ``base`` (the clean checkpoint it was fine-tuned from, with its
SHA-256) and ``evaluation`` (clean and robust accuracy on the test split at the protocol budget, with the
attack that measured them). A hardened-weights defense (:mod:`skelrobust.defenses.adversarial_training`)
looks its checkpoint up here. Kept apart from ``manifest.json`` so that a clean lookup never returns
hardened weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..io import atomic_path, atomic_write_json, sha256_file
from . import ZOO_DIR, entries

HARDENED_MANIFEST = ZOO_DIR / "hardened.json"


def hardened_entries(manifest: str | Path | None = None) -> list[dict[str, Any]]:
    """All hardened entries (empty when none are shipped)."""
    return entries(manifest if manifest is not None else HARDENED_MANIFEST)


def find_hardened(
    victim: str, preset: str | None, layout: str, num_classes: int, defense: str, dataset: str | None = None,
    manifest: str | Path | None = None,
) -> dict[str, Any] | None:
    """The hardened entry for a victim's architecture and a defense, or ``None``.

    Matches family name, preset, layout, class count and defense (and ``dataset`` when given).

    Raises:
        CheckpointError: several datasets match and ``dataset`` does not say which.
    """
    found = [
        e for e in hardened_entries(manifest)
        if (e["victim"], e["preset"], e["layout"], int(e["num_classes"]), e.get("defense")) == (victim, preset, layout, num_classes, defense)
        and (dataset is None or e["dataset"] == dataset)
    ]
    if len(found) > 1:
        names = ", ".join(sorted(e["dataset"] for e in found))
        raise CheckpointError(f"hardened {defense} checkpoints of {victim} ({preset}) exist for several datasets ({names}); pass the defense option dataset=NAME")
    return found[0] if found else None


def hardened_path(entry: dict[str, Any], manifest: str | Path | None = None) -> Path:
    """Absolute path of a hardened entry's checkpoint."""
    base = Path(manifest).resolve().parent if manifest is not None else ZOO_DIR
    return base / entry["file"]


def add_hardened_run(run_dir: str | Path, evaluation: dict[str, Any], manifest: str | Path | None = None) -> dict[str, Any]:
    """Ship a finished hardening run (``skelrobust train --defense pgd-at|trades``) with its evaluation.

    Copies ``best.pt`` to ``<dataset>/<victim>-<preset>-<defense>.pt`` beside the manifest and (re)writes the
    entry. ``evaluation`` holds the measured clean and robust accuracy (see ``bench/bench_hardened_zoo.py``).
    """
    run = Path(run_dir)
    try:
        meta = json.loads((run / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{run}: no readable metadata.json ({exc}); is the training run finished?") from exc
    defense = (meta.get("defense") or {}).get("name")
    if defense not in ("pgd-at", "trades"):
        raise CheckpointError(f"{run}: not an adversarial-training run (metadata defense {defense!r})")
    path = Path(manifest) if manifest is not None else HARDENED_MANIFEST
    rel = f"{meta['dataset']}/{meta['victim']}-{meta['preset']}-{defense}.pt"
    with atomic_path(path.parent / rel) as tmp:
        shutil.copyfile(run / "best.pt", tmp)
        tmp.chmod(0o644)
    digest = sha256_file(path.parent / rel)
    if digest != meta["sha256"]:
        raise CheckpointError(f"{run}/best.pt changed after training (sha256 {digest} != metadata {meta['sha256']})")
    init = meta["training"].get("init_checkpoint")
    entry = {
        "victim": meta["victim"], "dataset": meta["dataset"], "preset": meta["preset"], "defense": defense,
        "file": rel, "sha256": digest, "command": meta["command"], "defense_config": meta["defense"],
        "base": {"checkpoint": Path(init).name if init else None, "sha256": sha256_file(init) if init and Path(init).is_file() else None},
        "val_accuracy": meta["val_accuracy"], "val_robust_accuracy": meta.get("val_robust_accuracy"),
        "test_accuracy": meta["test_accuracy"], "evaluation": evaluation,
        "epochs": meta["epochs"], "best_epoch": meta["best_epoch"], "seed": meta["seed"],
        "train_seconds": meta["train_seconds"], "train_cpu_seconds": meta.get("train_cpu_seconds"),
        "num_parameters": meta["num_parameters"], "build_config": meta.get("build_config", {}), "config": meta["config"],
        "num_classes": meta["num_classes"], "layout": meta["layout"], "versions": meta.get("versions", {}),
    }
    kept = [e for e in hardened_entries(path) if (e["victim"], e["dataset"], e["preset"], e["defense"]) != (entry["victim"], entry["dataset"], entry["preset"], defense)]
    kept.append(entry)
    kept.sort(key=lambda e: (e["dataset"], e["victim"], e["preset"], e["defense"]))
    atomic_write_json(path, {"entries": kept})
    return entry
