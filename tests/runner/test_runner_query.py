"""Query attacks through the runner: the oracle's records in the outputs, and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from h5_helpers import spec, write_split
from skelrobust.cli import main
from skelrobust.benchmark.cell_config import RunConfig
from skelrobust.benchmark.cell import run_cell
from skelrobust.results import format_table


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("querydata")
    write_split(folder, "test", 24)
    return folder


def test_runner_records_the_oracles_queries(data_dir: Path, tmp_path: Path) -> None:
    cfg = RunConfig(attack="random-search", victims=[spec("victim_a")], dataset="npz", root=str(data_dir), eps=0.3,
                    n_samples=6, batch_size=4, seed=1, device="cpu", max_queries=20)
    res = run_cell(cfg, tmp_path / "rs", progress=False)
    query = res["query"]
    records = [json.loads(line) for line in (tmp_path / "rs" / "samples.jsonl").read_text().splitlines()]
    first = [r["first_success_query"] for r in records]
    assert query["max_queries"] == 20 and query["feedback"] == "scores" and len(first) == 6
    assert all(0 <= f <= 20 for f in first) and query["success_rate"] == sum(f > 0 for f in first) / 6
    assert all(r["queries"] <= 20 for r in records) and query["queries_total"] == sum(r["queries"] for r in records)
    assert query["success_at"]["20"] == query["success_rate"]
    assert "steps" not in res["attack_config"]
    head = format_table(res).splitlines()
    assert head[0].endswith("at most 20 queries per sample") and "steps" not in head[0]
    assert head[1].startswith(f"query success rate: {100 * query['success_rate']:.1f}%, median queries to success: ")
    # The shards are gone once the run is finished; a rerun evaluates again from generation.npz with the same counts.
    assert not (tmp_path / "rs" / "shards").exists()
    again = run_cell(cfg, tmp_path / "rs", progress=False)
    assert again["query"] == query


@pytest.mark.parametrize(
    "args,message",
    [
        (["--attack", "bo", "--surrogate", spec("victim_b")], "uses no surrogate; drop --surrogate"),
        (["--attack", "bo", "--max-queries", "0"], "--max-queries must be a positive integer"),
        (["--attack", "pgd", "--max-queries", "10"], "--max-queries is for query attacks"),
    ],
)
def test_query_errors_are_one_clear_line(data_dir: Path, tmp_path: Path, args: list[str], message: str) -> None:
    base = {"--victim": spec("victim_a"), "--dataset": "npz", "--root": str(data_dir), "--eps": "0.3", "--n-samples": "2",
            "--max-queries": "5", "--output": str(tmp_path / "bad")}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    result = CliRunner().invoke(main, ["run", "--quiet"] + [item for pair in base.items() for item in pair])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
