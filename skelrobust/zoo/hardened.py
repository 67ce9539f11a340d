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


def add_hardened_run(
    run_dir: str | Path, evaluation: dict[str, Any], manifest: str | Path | None = None, command: str | None = None
) -> dict[str, Any]:
    """Ship a hardening run (``skelrobust train --defense pgd-at|trades``) with its evaluation.

    Copies ``best.pt`` to ``<dataset>/<victim>-<preset>-<defense>.pt`` beside the manifest and (re)writes the
    entry. ``evaluation`` holds the measured clean and robust accuracy (see ``bench/bench_hardened_zoo.py``)
    and must give ``clean_accuracy_test``. A run stopped before its last epoch (no ``metadata.json``) can be
    shipped from its ``last.pt`` with the ``command`` that started it; the entry then says how many of the
    planned epochs ran (rerunning the command resumes and finishes the schedule).
    """
    run = Path(run_dir)
    if (run / "metadata.json").is_file():
        try:
            meta = json.loads((run / "metadata.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{run}: unreadable metadata.json ({exc})") from exc
    else:
        meta = _unfinished_metadata(run, evaluation, command)
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
        "epochs": meta["epochs"], "epochs_completed": meta.get("epochs_completed", meta["epochs"]),
        "best_epoch": meta["best_epoch"], "seed": meta["seed"], "history": meta.get("history", []),
        "train_seconds": meta["train_seconds"], "train_cpu_seconds": meta.get("train_cpu_seconds"),
        "num_parameters": meta["num_parameters"], "build_config": meta.get("build_config", {}), "config": meta["config"],
        "num_classes": meta["num_classes"], "layout": meta["layout"], "versions": meta.get("versions", {}),
    }
    kept = [e for e in hardened_entries(path) if (e["victim"], e["dataset"], e["preset"], e["defense"]) != (entry["victim"], entry["dataset"], entry["preset"], defense)]
    kept.append(entry)
    kept.sort(key=lambda e: (e["dataset"], e["victim"], e["preset"], e["defense"]))
    atomic_write_json(path, {"entries": kept})
    return entry


def _unfinished_metadata(run: Path, evaluation: dict[str, Any], command: str | None) -> dict[str, Any]:
    """What ``metadata.json`` would hold, rebuilt from ``last.pt`` of a run stopped early."""
    import torch

    from ..checkpoints import read_state_dict
    from ..loading import load_victim

    if command is None:
        raise CheckpointError(f"{run}: the run has no metadata.json; give the command that started it")
    try:
        payload = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
        record, state = payload["config"], payload["state"]
    except Exception as exc:  # a missing or foreign file
        raise CheckpointError(f"{run}: no readable last.pt ({type(exc).__name__}: {exc})") from None
    victim = load_victim(record["victim"], checkpoint=run / "best.pt", dataset=record["dataset"], preset=record["preset"], **record["build_config"])
    best = state["history"][state["best_epoch"] - 1]
    recipe = record.get("recipe") or {}
    return {
        "victim": record["victim"], "dataset": record["dataset"], "preset": record["preset"], "command": command,
        "defense": recipe, "training": record, "val_accuracy": best["val_accuracy"],
        recipe.get("selection", "val_accuracy"): state["best_val"], "test_accuracy": evaluation["clean_accuracy_test"],
        "epochs": record["epochs"], "epochs_completed": state["epoch"], "best_epoch": state["best_epoch"], "seed": record["seed"],
        "train_seconds": round(state["train_seconds"], 2), "train_cpu_seconds": round(state["train_cpu_seconds"], 2),
        "num_parameters": sum(v.numel() for v in read_state_dict(run / "best.pt").values()), "build_config": record["build_config"],
        "config": victim.config, "num_classes": victim.num_classes, "layout": victim.layout.name, "sha256": sha256_file(run / "best.pt"),
        "history": state["history"],
    }
