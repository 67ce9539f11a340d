"""Benchmarking: one cell as ``skelrobust run`` runs it, and the grid of cells a protocol names.

One cell (one attack from one surrogate at one budget, evaluated on every victim x defense):

- :mod:`.cell_config`: :class:`RunConfig` and its resolution against ``benchmark.yaml``, the attack, the models
  and the roles the threat model gives them;
- :mod:`.cell`: :func:`run_cell` selects the attack set, generates the adversarial set once and evaluates it;
- :mod:`.run_folder`: the cell's files, resume state and :func:`load_run`.

The grid:

- :mod:`.protocol`: the protocol file (schema, validation with YAML key paths, expansion into sets);
- :mod:`.grid`: runs the missing sets through :func:`run_cell`, resumes, records failures, keeps one file per cell;
- :mod:`.executors`: where sets run (this process, or Ray tasks);
- :mod:`.table`: the tidy results table (parquet + CSV) and :func:`load_results`;
- :mod:`.leaderboard`: worst case over the grid's attacks per victim x defense;
- :mod:`.report`: ``report.md`` and a self-contained ``report.html``.
"""

from .cell import run_cell
from .cell_config import RunConfig, resolve_config
from .grid import GridReport, run_grid
from .leaderboard import leaderboard, load_leaderboard
from .protocol import AdversarialSet, Cell, Protocol, load_protocol, parse_protocol
from .run_folder import load_run
from .table import load_results

__all__ = [
    "AdversarialSet", "Cell", "GridReport", "Protocol", "RunConfig", "leaderboard", "load_leaderboard", "load_protocol",
    "load_results", "load_run", "parse_protocol", "resolve_config", "run_cell", "run_grid",
]
