"""The small grid of the protocol tests, run once per session and shared by the grid, report and Ray tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from skelrobust.benchmark import load_protocol, run_grid

from grid_helpers import SMALL


@pytest.fixture(scope="session")
def small_grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``small.yaml`` (the small protocol, as written) and its grid run in ``out`` (8 cells)."""
    folder = tmp_path_factory.mktemp("grid")
    (folder / "small.yaml").write_text(SMALL, encoding="utf-8")
    report = run_grid(load_protocol(folder / "small.yaml"), folder / "out", progress=False)
    assert report.failed == [] and report.cells_run == 8
    return folder
