"""The benchmark grid: a protocol expanded into adversarial sets, run, tabulated, ranked and reported.

- :mod:`.protocol`: the protocol file (schema, validation with YAML key paths, expansion into sets);
- :mod:`.grid`: runs the missing sets through the one-cell runner (:func:`skelrobust.runner.run_benchmark`),
  resumes, records failures, keeps one file per cell;
- :mod:`.executors`: where sets run (this process, or Ray tasks);
- :mod:`.table`: the tidy results table (parquet + CSV) and :func:`load_results`;
- :mod:`.leaderboard`: worst case over the grid's attacks per victim x defense;
- :mod:`.report`: ``report.md`` and a self-contained ``report.html``.
"""

from .grid import GridReport, run_grid
from .leaderboard import leaderboard, load_leaderboard
from .protocol import AdversarialSet, Cell, Protocol, load_protocol, parse_protocol
from .table import load_results

__all__ = [
    "AdversarialSet", "Cell", "GridReport", "Protocol", "leaderboard", "load_leaderboard", "load_protocol",
    "load_results", "parse_protocol", "run_grid",
]
