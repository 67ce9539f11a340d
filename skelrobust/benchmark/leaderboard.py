"""The leaderboard: worst case over the grid's attacks, per dataset, budget, victim and defense.

As AutoAttack reports robust accuracy, a sample counts as robust only if the victim classifies it
correctly when clean and **no** attack of the grid broke it (every attack x surrogate of that budget).
The attack sets of different surrogates can differ (each keeps samples its surrogate gets right), so the
worst case is taken over the samples present in every set of the budget (``n``), and ``clean_accuracy`` is
the victim's accuracy on those same samples: with ``selection: correct`` they are samples the surrogates
classify correctly, so it is not the victim's accuracy on the whole test split. For each sample the
first attack (in protocol order, ``attack@surrogate``) that broke it is kept in ``leaderboard_samples.csv``.

A cell that failed is left out of the worst case and counted in ``failed_cells`` (the robust accuracy of
such a row is then an upper bound).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..io import atomic_write_text

LEADERBOARD_CSV = "leaderboard.csv"
LEADERBOARD_SAMPLES_CSV = "leaderboard_samples.csv"


def leaderboard(records: Sequence[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(board, samples)`` from the grid's cell records (as stored in ``DIR/cells``).

    ``board`` has a row per (dataset, budget, victim, defense): ``n``, ``clean_accuracy``,
    ``robust_accuracy`` (worst case), ``attacks`` (those taken), ``strongest_attack`` (the one breaking the
    most samples alone; empty when none broke any), ``failed_cells``. ``samples`` has a row per sample of each of those groups:
    ``sample_id``, ``label``, ``clean_correct``, ``robust``, ``broken_by`` (empty when robust).
    """
    groups: dict[tuple[str, float, str, str], list[dict[str, Any]]] = {}
    for record in records:
        c = record["cell"]
        groups.setdefault((c["dataset"], float(c["budget"]), c["victim"], c["defense"]), []).append(record)
    rows, sample_rows = [], []
    for (dataset, budget, victim, defense), members in groups.items():
        done = [m for m in members if "error" not in m]
        failed = len(members) - len(done)
        row: dict[str, Any] = {"dataset": dataset, "budget": budget, "victim": victim, "defense": defense}
        if not done:
            rows.append({**row, "n": 0, "clean_accuracy": None, "robust_accuracy": None, "attacks": "",
                         "strongest_attack": None, "failed_cells": failed})
            continue
        names = [f"{m['cell']['attack']}@{m['cell']['surrogate']}" for m in done]
        common = set(done[0]["samples"]["sample_id"])
        for m in done[1:]:
            common &= set(m["samples"]["sample_id"])
        ids = [s for s in done[0]["samples"]["sample_id"] if s in common]
        clean_ok = np.ones(len(ids), dtype=bool)
        broken = np.zeros((len(done), len(ids)), dtype=bool)
        labels = np.zeros(len(ids), dtype=np.int64)
        for a, m in enumerate(done):
            s = m["samples"]
            where = {sid: k for k, sid in enumerate(s["sample_id"])}
            pick = np.array([where[i] for i in ids], dtype=np.int64)
            label = np.asarray(s["label"], dtype=np.int64)[pick]
            labels = label
            clean_ok &= np.asarray(s["clean_prediction"], dtype=np.int64)[pick] == label
            broken[a] = np.asarray(s["success"], dtype=bool)[pick]
        robust = clean_ok & ~broken.any(axis=0)
        solo = (broken & clean_ok).sum(axis=1)
        rows.append({
            **row, "n": len(ids),
            "clean_accuracy": float(clean_ok.mean()) if ids else None,
            "robust_accuracy": float(robust.mean()) if ids else None,
            "attacks": ",".join(names),
            "strongest_attack": names[int(np.argmax(solo))] if ids and solo.max() > 0 else None,
            "failed_cells": failed,
        })
        for k, sid in enumerate(ids):
            first = next((names[a] for a in range(len(done)) if broken[a, k]), "") if clean_ok[k] else ""
            sample_rows.append({**row, "sample_id": sid, "label": int(labels[k]), "clean_correct": bool(clean_ok[k]),
                                "robust": bool(robust[k]), "broken_by": first})
    board = pd.DataFrame(rows, columns=["dataset", "budget", "victim", "defense", "n", "clean_accuracy", "robust_accuracy",
                                        "attacks", "strongest_attack", "failed_cells"])
    samples = pd.DataFrame(sample_rows, columns=["dataset", "budget", "victim", "defense", "sample_id", "label",
                                                 "clean_correct", "robust", "broken_by"])
    board = board.sort_values(["dataset", "budget", "robust_accuracy"], ascending=[True, True, False], kind="stable")
    return board.reset_index(drop=True), samples


def save_leaderboard(tables: tuple[pd.DataFrame, pd.DataFrame], folder: str | Path) -> None:
    """Write ``leaderboard.csv`` and ``leaderboard_samples.csv`` atomically."""
    for frame, name in zip(tables, (LEADERBOARD_CSV, LEADERBOARD_SAMPLES_CSV)):
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        atomic_write_text(Path(folder) / name, buffer.getvalue())


def load_leaderboard(folder: str | Path) -> pd.DataFrame:
    """The leaderboard of a grid folder."""
    from ..errors import ConfigError

    path = Path(folder).expanduser() / LEADERBOARD_CSV
    if not path.is_file():
        raise ConfigError(f"{Path(folder)} holds no {LEADERBOARD_CSV}; run `skelrobust benchmark` first")
    return pd.read_csv(path)
