"""The benchmark grid: expand a protocol into adversarial sets, run the missing ones, keep every cell.

A grid folder holds::

    DIR/grid.json              the protocol (name, digest, normalised document) the folder belongs to
    DIR/sets/<set>/            one runner folder per adversarial set (results.json, samples.jsonl, shards...)
    DIR/cells/<cell>.json      one file per finished or failed cell: its table row and per-sample predictions
    DIR/results.parquet, .csv  the tidy table (:mod:`skelrobust.benchmark.table`)
    DIR/leaderboard.csv        worst case over attacks per victim x defense (:mod:`skelrobust.benchmark.leaderboard`)

Each adversarial set is generated once per (dataset, attack, surrogate, budget) by the one-cell runner and
evaluated there on every victim x defense. A cell whose file holds no error is finished and never
recomputed; a rerun makes only the sets with missing or failed cells (the runner resumes a set from its
finished batches). A set that fails is recorded as an error in each of its cells and the grid goes on;
:func:`run_grid` reports the failures (the CLI exits 2). A folder made from another protocol is refused,
with the differences listed.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from ..errors import ConfigError
from ..io import atomic_write_json
from .executors import Job, LocalExecutor, Outcome, RayExecutor
from .protocol import AXES, AdversarialSet, Cell, Protocol, differences
from .table import build_table, cell_row, error_row, save_table

GRID_FILE = "grid.json"
SETS_DIR = "sets"
CELLS_DIR = "cells"


@dataclass
class GridReport:
    """What a grid invocation did.

    Attributes:
        table: The results table of every finished or failed cell in the folder.
        cells_total: Cells of the slice; ``cells_run`` of them were made now, ``cells_skipped`` were finished.
        failed: ``"cell: Type: message"`` for every failed cell of the slice.
        wall_seconds: This invocation's wall time; ``set_seconds`` the sum of its sets' runner wall times.
    """

    table: Any
    cells_total: int
    cells_run: int
    cells_skipped: int
    failed: list[str]
    wall_seconds: float
    set_seconds: float


class GridDirectory:
    """The grid's output folder (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    def claim(self, protocol: Protocol) -> None:
        """Take the folder for ``protocol``; refuse one made from a different protocol."""
        stamp = self.path / GRID_FILE
        if stamp.exists():
            try:
                held = json.loads(stamp.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"{stamp} is unreadable ({exc}); choose another --output") from exc
            if held.get("digest") != protocol.digest:
                changed = list(differences(held.get("document"), protocol.document))
                shown = "; ".join(changed[:8]) + (f"; and {len(changed) - 8} more" if len(changed) > 8 else "")
                raise ConfigError(
                    f"{self.path} holds a grid made from a different protocol ({held.get('name')!r}): {shown or 'different content'}; "
                    "choose another --output (or delete the folder)"
                )
            return
        if self.path.exists() and any(self.path.iterdir()):
            raise ConfigError(f"{self.path} exists and is not a grid folder (no {GRID_FILE}); choose another --output")
        atomic_write_json(stamp, {"name": protocol.name, "digest": protocol.digest, "source": protocol.source, "document": protocol.document})

    def set_folder(self, s: AdversarialSet) -> Path:
        return self.path / SETS_DIR / s.slug

    def cell_file(self, cell: Cell) -> Path:
        return self.path / CELLS_DIR / f"{cell.slug}.json"

    def finished(self, cell: Cell) -> bool:
        path = self.cell_file(cell)
        if not path.exists():
            return False
        try:
            return "error" not in json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return False

    def load_cells(self, cells: Sequence[Cell]) -> list[dict[str, Any]]:
        """The stored records of ``cells`` that exist, in the order given."""
        out = []
        for cell in cells:
            path = self.cell_file(cell)
            if path.exists():
                out.append(json.loads(path.read_text(encoding="utf-8")))
        return out


def run_config(s: AdversarialSet, victims: Sequence[str], defenses: Sequence[str]) -> Any:
    """The one-cell runner's configuration of set ``s`` for ``victims`` x ``defenses``.

    Only the settings the protocol sets are passed; the others keep :class:`RunConfig`'s defaults, which the
    runner resolves from the packaged ``benchmark.yaml`` exactly as for ``skelrobust run``.
    """
    from ..benchmark.cell_config import RunConfig

    settings = {k: v for k, v in s.settings.items() if v is not None}
    if settings.get("device") == "auto":
        settings.pop("device")  # the runner's default: CUDA when available
    unknown = sorted(set(settings) - set(RunConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"the protocol sets {', '.join(unknown)}, which this skelrobust's runner does not support")
    return RunConfig(
        **settings, attack=s.attack, victims=list(victims), dataset=s.dataset, surrogate=s.surrogate, root=s.root,
        defenses=list(defenses), defense_options={d: dict(o) for d, o in s.defense_options.items() if d in defenses},
        attack_options=dict(s.attack_options), eps=s.budget,
        checkpoints={m: p for m, p in s.checkpoints.items() if m in {*victims, s.surrogate}},
        dataset_options=dict(s.dataset_options),
    )


def _cell_axes(cell: Cell) -> dict[str, Any]:
    return {axis: getattr(cell, axis) for axis in AXES}


def _per_sample(records: list[dict[str, Any]], victim: str, defense: str) -> dict[str, list[Any]]:
    """Per attacked sample: id, label, (target), clean and adversarial prediction and success of one cell."""
    out: dict[str, list[Any]] = {"sample_id": [], "label": [], "clean_prediction": [], "adversarial_prediction": [], "success": []}
    if records and "target" in records[0]:
        out["target"] = []
    for record in records:
        entry = next(v for v in record["victims"] if v["victim"] == victim and v["defense"] == defense)
        out["sample_id"].append(record["sample_id"])
        out["label"].append(record["label"])
        if "target" in out:
            out["target"].append(record["target"])
        out["clean_prediction"].append(entry["clean_prediction"])
        out["adversarial_prediction"].append(entry["adversarial_prediction"])
        out["success"].append(entry["success"])
    return out


def run_grid(
    protocol: Protocol,
    output: str | Path,
    *,
    only: dict[str, list[str]] | None = None,
    executor: LocalExecutor | RayExecutor | None = None,
    progress: bool = True,
) -> GridReport:
    """Run (or resume) the grid of ``protocol`` (or its slice ``only``) into ``output``.

    Returns:
        A :class:`GridReport`; ``failed`` lists the failed cells (their errors are in the table too).

    Raises:
        ConfigError: a bad slice, or ``output`` made from another protocol (before anything runs).
    """
    wall = time.perf_counter()
    sets = protocol.select(only or {})
    folder = GridDirectory(output)
    folder.claim(protocol)
    executor = executor or LocalExecutor(progress=progress)
    meta = {"name": protocol.name, "digest": protocol.digest}

    slice_cells = [c for s in sets for c in s.cells()]
    jobs: list[Job] = []
    pending_cells: dict[tuple[str, str, str, float], list[Cell]] = {}
    for s in sets:
        pending = [c for c in s.cells() if not folder.finished(c)]
        if not pending:
            continue
        victims = [v for v in s.victims if any(c.victim == v for c in pending)]
        defenses = [d for d in s.defenses if any(c.defense == d for c in pending)]
        pending_cells[s.key] = pending
        label = f"{s.dataset}/{s.attack}/{s.surrogate}/eps {s.budget:g}"
        jobs.append(Job(key=s.key, config=run_config(s, victims, defenses), folder=folder.set_folder(s), label=label))
    skipped = len(slice_cells) - sum(len(v) for v in pending_cells.values())
    set_seconds = 0.0

    with tqdm(total=len(slice_cells), initial=skipped, desc="grid", unit="cell", file=sys.stderr,
              disable=not progress, position=0, dynamic_ncols=True) as bar:

        def record(outcome: Outcome) -> None:
            nonlocal set_seconds
            set_seconds += outcome.seconds
            cells = pending_cells[outcome.job.key]
            if outcome.error is not None:
                for cell in cells:
                    atomic_write_json(folder.cell_file(cell), {
                        "cell": _cell_axes(cell), "error": outcome.error, "row": error_row(_cell_axes(cell), outcome.error, meta),
                    })
            else:
                results = json.loads((outcome.job.folder / "results.json").read_text(encoding="utf-8"))
                records = [json.loads(line) for line in (outcome.job.folder / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
                for cell in cells:
                    summary = next(c for c in results["victims"] if c["victim"] == cell.victim and c["defense"] == cell.defense)
                    content: dict[str, Any] = {
                        "cell": _cell_axes(cell),
                        "set": outcome.job.folder.name,
                        "row": cell_row(_cell_axes(cell), results, meta, outcome.seconds),
                    }
                    if summary.get("error"):
                        content["error"] = summary["error"]
                    else:
                        content["samples"] = _per_sample(records, cell.victim, cell.defense)
                        content["success_by_class"] = summary["success_by_class"]
                    atomic_write_json(folder.cell_file(cell), content)
            bar.update(len(cells))

        executor.run(jobs, record)

    table = write_table(folder, protocol)
    failed = [
        f"{'/'.join(str(record['cell'][a]) for a in AXES)}: {record['error']['type']}: {record['error']['message']}"
        for record in folder.load_cells(slice_cells) if "error" in record
    ]
    return GridReport(table=table, cells_total=len(slice_cells), cells_run=len(slice_cells) - skipped, cells_skipped=skipped,
                      failed=failed, wall_seconds=time.perf_counter() - wall, set_seconds=set_seconds)


def write_table(folder: GridDirectory, protocol: Protocol) -> Any:
    """Rebuild the results table and leaderboard from every stored cell of the protocol, and save them."""
    from .leaderboard import leaderboard, save_leaderboard

    records = folder.load_cells(protocol.cells())
    table = build_table(r["row"] for r in records)
    save_table(table, folder.path)
    save_leaderboard(leaderboard(records), folder.path)
    return table
