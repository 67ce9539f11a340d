"""Per-dataset protocol budgets: benchmark.yaml's datasets.<name>.eps, taken by `run` when --eps is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from h5_helpers import spec, write_split

from skelrobust import config
from skelrobust.cli.main import main
from skelrobust.errors import ConfigError
from skelrobust.benchmark.cell_config import RunConfig, resolve_config


def test_field_budgets_are_the_protocol_defaults() -> None:
    for name in ("ntu60", "ntu120", "nw-ucla", "robustbenchhar-ntu60", "robustbenchhar-ntu120"):
        eps, source = config.protocol_budget(name)
        assert eps == 0.01 and source.startswith(f"benchmark.yaml datasets.{name}.eps"), name
    assert config.protocol_budget("robustbenchhar-hdm05")[0] == 0.001
    eps, source = config.protocol_budget("synthetic")
    assert 0.01 < eps <= 0.05 and "bench_budget" in source


def test_a_dataset_without_a_budget_names_the_entry_and_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"datasets\.npz\.eps is not set.*pass --eps"):
        config.protocol_budget("npz")


@pytest.mark.parametrize("value", [0, -0.01, "1cm", float("nan"), True])
def test_a_protocol_budget_that_is_not_a_positive_number_is_refused(value: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "dataset_config", lambda name: {"eps": value})
    with pytest.raises(ConfigError, match=r"datasets\.synthetic\.eps must be a finite number > 0"):
        config.protocol_budget("synthetic")


def test_resolve_config_takes_the_dataset_budget_and_records_its_source() -> None:
    resolved = resolve_config(RunConfig(attack="pgd", victims=["stgcn"], dataset="ntu60"))
    assert resolved.eps == 0.01 and resolved.eps_source.startswith("benchmark.yaml datasets.ntu60.eps")
    explicit = resolve_config(RunConfig(attack="pgd", victims=["stgcn"], dataset="ntu60", eps=0.02))
    assert explicit.eps == 0.02 and explicit.eps_source == "--eps"
    synthetic = resolve_config(RunConfig(attack="pgd", victims=["stgcn"], dataset="synthetic"))
    assert synthetic.eps == config.protocol_budget("synthetic")[0]


def _run(tmp_path: Path, *extra: str) -> tuple[int, str]:
    data = tmp_path / "data"
    if not data.exists():
        write_split(data, "test", 12)
    result = CliRunner().invoke(main, [
        "run", "--quiet", "--json", "--attack", spec("SignStep"), "--victim", spec("victim_a"), "--dataset", "npz",
        "--root", str(data), "--steps", "1", "--n-samples", "2", "--output", str(tmp_path / "out"), *extra,
    ])
    return result.exit_code, result.output


def test_run_without_a_budget_gives_one_clear_line(tmp_path: Path) -> None:
    code, output = _run(tmp_path)
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "datasets.npz.eps is not set" in lines[0] and "--eps" in lines[0], output


def test_results_record_where_the_budget_came_from(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "--eps", "0.05")
    assert code == 0, output
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["eps"] == 0.05 and res["eps_source"] == "--eps"
