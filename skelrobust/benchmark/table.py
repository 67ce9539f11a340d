"""The tidy results table: one row per (dataset, attack, surrogate, budget, victim, defense).

Each row holds every metric of its cell (rates in ``[0, 1]``), the attack's mean imperceptibility
(``imperceptibility_<metric>``, the dataset's units), its cost and the provenance keys. Failed cells are
rows too, with the numbers empty and ``error_type`` / ``error_message`` set. The table is written as
``results.parquet`` (columnar, typed; pyarrow) and ``results.csv`` beside it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ..errors import ConfigError
from ..io import atomic_path, atomic_write_text
from .protocol import AXES

TABLE_PARQUET = "results.parquet"
TABLE_CSV = "results.csv"

#: Metric columns of a cell, in table order (rates in [0, 1]).
METRIC_COLUMNS = ("n", "clean_accuracy", "robust_accuracy", "transfer_success_rate", "conditional_transfer_success_rate",
                  "n_clean_correct", "white_box_success_rate", "surrogate_clean_accuracy")


def cell_row(cell: dict[str, Any], results: dict[str, Any], protocol: dict[str, str], set_seconds: float) -> dict[str, Any]:
    """The table row of one victim x defense cell of a runner ``results.json``.

    Args:
        cell: The cell's axes (:data:`AXES`).
        results: The runner's results of the adversarial set.
        protocol: ``{"name", "digest"}`` of the grid's protocol.
        set_seconds: Wall time of the set's run in this grid (generation and evaluation).
    """
    summary = next(c for c in results["victims"] if c["victim"] == cell["victim"] and c["defense"] == cell["defense"])
    prov = results.get("provenance", {})
    packages = prov.get("packages", {})
    config = prov.get("config", {})
    row: dict[str, Any] = {axis: cell[axis] for axis in AXES}
    row.update({
        "threat_model": results["threat_model"],
        "norm": results["norm"],
        "eps_unit": results["eps_unit"],
        "steps": results["steps"],
        "targeted": bool(results["targeted"]),
        "n_samples": results["n_samples"],
    })
    for column in METRIC_COLUMNS:
        row[column] = results.get(column) if column in ("white_box_success_rate", "surrogate_clean_accuracy") else summary.get(column)
    for metric, value in (results.get("imperceptibility") or {}).items():
        row[f"imperceptibility_{metric}"] = value
    timing = results.get("timing", {})
    row.update({
        "attack_seconds": timing.get("seconds"),
        "seconds_per_sample": timing.get("seconds_per_sample"),
        "gradient_evaluations": timing.get("surrogate_gradient_evaluations"),
        "queries": timing.get("queries"),
        "set_seconds": set_seconds,
        "error_type": (summary.get("error") or {}).get("type"),
        "error_message": (summary.get("error") or {}).get("message"),
        "protocol": protocol["name"],
        "protocol_digest": protocol["digest"],
        "skelrobust_version": prov.get("skelrobust"),
        "git_commit": prov.get("git_commit"),
        "python": prov.get("python"),
        "torch": packages.get("torch"),
        "platform": prov.get("platform"),
        "device": config.get("device"),
        "seed": results.get("seed"),
        "batch_size": results.get("batch_size"),
        "attack_config": json.dumps(results.get("attack_config"), sort_keys=True, default=str),
        "checkpoints": json.dumps(prov.get("checkpoints"), sort_keys=True, default=str),
    })
    return row


def error_row(cell: dict[str, Any], error: dict[str, str], protocol: dict[str, str]) -> dict[str, Any]:
    """The row of a cell whose adversarial set could not be made (numbers empty, the error kept)."""
    row: dict[str, Any] = {axis: cell[axis] for axis in AXES}
    row.update({"error_type": error["type"], "error_message": error["message"],
                "protocol": protocol["name"], "protocol_digest": protocol["digest"]})
    return row


def build_table(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The DataFrame of ``rows``, key columns first, ``budget`` a float, counts nullable integers."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return pd.DataFrame(columns=list(AXES))
    frame["budget"] = frame["budget"].astype(float)
    for column in ("n", "n_clean_correct", "n_samples", "steps", "gradient_evaluations", "queries", "seed", "batch_size"):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    for column in ("error_type", "error_message"):
        if column in frame:
            frame[column] = frame[column].astype("string")
    return frame.reset_index(drop=True)


def save_table(frame: pd.DataFrame, folder: str | Path) -> None:
    """Write ``results.parquet`` and ``results.csv`` atomically."""
    folder = Path(folder)
    with atomic_path(folder / TABLE_PARQUET) as tmp:
        frame.to_parquet(tmp, index=False)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    atomic_write_text(folder / TABLE_CSV, buffer.getvalue())


def load_results(folder: str | Path) -> pd.DataFrame:
    """The results table of a grid folder (``skelrobust benchmark ... --output FOLDER``).

    Raises:
        ConfigError: the folder holds no results table.
    """
    path = Path(folder).expanduser() / TABLE_PARQUET
    if not path.is_file():
        raise ConfigError(f"{Path(folder)} holds no results table ({TABLE_PARQUET}); run `skelrobust benchmark PROTOCOL --output {folder}`")
    return pd.read_parquet(path)


def to_markdown(frame: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A GitHub-flavoured markdown table of ``frame`` (empty cells for missing values)."""

    def text(value: Any) -> str:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return ""
        if isinstance(value, float):
            return format(value, floatfmt)
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(text(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
