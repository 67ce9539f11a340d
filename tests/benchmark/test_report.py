"""The report: markdown and a self-contained HTML page whose images load and whose numbers are the table's.

The HTML check runs headless Chromium (installed by .ci/run). Without Chromium the check is skipped with
that reason on a developer's machine, and fails in CI (CI=true), where its absence is a broken setup.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from skelrobust.benchmark import load_leaderboard, load_results
from skelrobust.benchmark.report import format_value
from skelrobust.cli import main

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


class _Tables(HTMLParser):
    """Collects ``(data-column, data-value, text)`` of every cell of the table with id ``table_id``."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.inside, self.cell, self.rows = table_id, False, None, []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "table":
            self.inside = attrs.get("id") == self.table_id
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag == "td":
            self.cell = [attrs["data-column"], attrs["data-value"], ""]

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell[2] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.cell is not None:
            self.rows[-1].append(tuple(self.cell))
            self.cell = None
        elif tag == "table":
            self.inside = False


@pytest.fixture(scope="module")
def report(small_grid: Path) -> Path:
    result = CliRunner().invoke(main, ["report", str(small_grid / "out"), "--out", str(small_grid / "report"), "--frames", "4"])
    assert result.exit_code == 0, result.output
    return small_grid / "report"


def test_markdown_names_every_section_and_its_figures_exist(report: Path) -> None:
    text = (report / "report.md").read_text(encoding="utf-8")
    for title in ("Leaderboard (worst case over attacks)", "Transfer matrices", "Success against budget",
                  "Robust accuracy per defense", "Imperceptibility per attack", "Success per class", "Examples", "Results table"):
        assert f"### {title}" in text or f"## {title}" in text
    figures = re.findall(r"\]\(figures/([^)]+)\)", text)
    assert len(figures) == 7 and sum(f.endswith(".gif") for f in figures) == 2
    assert all((report / "figures" / f).stat().st_size > 1000 for f in figures)


def test_html_is_self_contained(report: Path) -> None:
    page = (report / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)
    assert "http://" not in page and "https://" not in page
    assert page.count('<img src="data:image/') == 7


def test_numbers_shown_equal_the_results_table(small_grid: Path, report: Path) -> None:
    table = load_results(small_grid / "out")
    parser = _Tables("results")
    parser.feed((report / "report.html").read_text(encoding="utf-8"))
    rows = [r for r in parser.rows if r]  # the header row has no td
    assert len(rows) == len(table)
    for row, (_, expected) in zip(rows, table.iterrows()):
        for column, raw, text in row:
            assert text == format_value(column, expected[column])
            if isinstance(expected[column], float):
                assert float(raw) == expected[column]


def test_leaderboard_shown_equals_the_leaderboard_file(small_grid: Path, report: Path) -> None:
    board = load_leaderboard(small_grid / "out")
    parser = _Tables("leaderboard-synthetic")
    parser.feed((report / "report.html").read_text(encoding="utf-8"))
    rows = [r for r in parser.rows if r]
    assert len(rows) == len(board) == 4
    for row, (_, expected) in zip(rows, board.iterrows()):
        shown = {column: text for column, _, text in row}
        assert shown["robust_accuracy"] == format_value("robust_accuracy", expected["robust_accuracy"])
        assert (shown["victim"], shown["defense"]) == (expected["victim"], expected["defense"])


def test_chromium_loads_every_image(report: Path) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium); CI runs this check")
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom",
         (report / "report.html").resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None, dom[:500]
    assert 'data-images="7"' in body.group(1) and 'data-broken="0"' in body.group(1)
