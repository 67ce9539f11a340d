"""The grid end to end on the embedded set: the small protocol as written, the table, resume, failures, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import skelrobust
from skelrobust.benchmark import load_protocol, parse_protocol, run_grid
from skelrobust.benchmark.grid import CELLS_DIR, SETS_DIR
from skelrobust.benchmark.protocol import AXES
from skelrobust.cli import main
from skelrobust.errors import ConfigError

from grid_helpers import BUDGET, RUN_VARYING, SMALL


def test_table_has_a_row_per_cell_with_the_runner_numbers(small_grid: Path) -> None:
    table = skelrobust.load_results(small_grid / "out")
    assert len(table) == 8
    assert list(table.columns[:6]) == list(AXES)
    assert set(table["attack"]) == {"pgd", "mifgsm"} and set(table["defense"]) == {"none", "lowpass"}
    assert (table["steps"] == 10).all() and (table["n"] == 16).all() and (table["protocol"] == "small-grid-v1").all()
    for _, row in table.iterrows():
        results = json.loads((small_grid / "out" / SETS_DIR / f"synthetic__{row['attack']}__stgcn__eps{BUDGET:g}" / "results.json").read_text())
        cell = next(c for c in results["victims"] if c["victim"] == row["victim"] and c["defense"] == row["defense"])
        assert row["robust_accuracy"] == cell["robust_accuracy"]
        assert row["transfer_success_rate"] == cell["transfer_success_rate"]
        assert row["imperceptibility_linf"] == pytest.approx(results["imperceptibility"]["linf"])
        assert row["torch"] and row["skelrobust_version"] == skelrobust.__version__
    csv = pd.read_csv(small_grid / "out" / "results.csv")
    assert list(csv.columns) == list(table.columns) and len(csv) == 8


def test_rerun_recomputes_nothing_and_a_lost_cell_is_redone_alone(small_grid: Path) -> None:
    out = small_grid / "out"
    before = pd.read_parquet(out / "results.parquet")
    again = run_grid(load_protocol(small_grid / "small.yaml"), out, progress=False)
    assert (again.cells_run, again.cells_skipped) == (0, 8)
    lost = out / CELLS_DIR / f"synthetic__mifgsm__stgcn__eps{BUDGET:g}__ctrgcn__lowpass.json"
    kept = out / CELLS_DIR / f"synthetic__mifgsm__stgcn__eps{BUDGET:g}__stgcn__none.json"
    kept_stamp = kept.stat().st_mtime_ns
    lost.unlink()
    redone = run_grid(load_protocol(small_grid / "small.yaml"), out, progress=False)
    assert (redone.cells_run, redone.cells_skipped) == (1, 7)
    assert kept.stat().st_mtime_ns == kept_stamp
    after = pd.read_parquet(out / "results.parquet")
    steady = [c for c in before.columns if c not in RUN_VARYING]
    pd.testing.assert_frame_equal(before[steady], after[steady])


def test_a_folder_of_another_protocol_is_refused_with_the_difference(small_grid: Path) -> None:
    changed = yaml.safe_load(SMALL)
    changed["defaults"]["steps"] = 20
    with pytest.raises(ConfigError, match=r"different protocol .*defaults\.steps: 10 -> 20"):
        run_grid(parse_protocol(changed), small_grid / "out", progress=False)


def test_results_command_prints_every_format(small_grid: Path) -> None:
    runner = CliRunner()
    markdown = runner.invoke(main, ["results", str(small_grid / "out")])
    assert markdown.exit_code == 0 and markdown.output.count("| synthetic |") == 8
    as_json = json.loads(runner.invoke(main, ["results", str(small_grid / "out"), "--format", "json"]).output)
    assert len(as_json) == 8 and {"robust_accuracy", "protocol_digest"} <= set(as_json[0])
    board = runner.invoke(main, ["results", str(small_grid / "out"), "--leaderboard", "--format", "csv"])
    assert board.exit_code == 0 and board.output.splitlines()[0].startswith("dataset,budget,victim,defense,n,")
    missing = runner.invoke(main, ["results", str(small_grid)])
    assert missing.exit_code == 1 and "holds no results table" in missing.output


def test_a_failed_set_is_recorded_the_rest_goes_on_and_the_exit_status_is_2(tmp_path: Path) -> None:
    protocol = tmp_path / "broken.yaml"
    protocol.write_text(yaml.safe_dump({
        "protocol": "broken-v1",
        "defaults": {"steps": 2, "n_samples": 4, "batch_size": 4},
        "victims": {"ctrgcn": {"checkpoint": "missing.pt"}},
        "datasets": {"synthetic": {"attacks": ["pgd"], "surrogates": ["stgcn", "ctrgcn"], "victims": ["stgcn"]}},
    }), encoding="utf-8")
    result = CliRunner().invoke(main, ["benchmark", str(protocol), "--output", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 2, result.output
    assert f"1 cell(s) failed: synthetic/pgd/ctrgcn/{BUDGET:g}/stgcn/none: ConfigError: checkpoint for 'ctrgcn' not found" in result.output
    table = skelrobust.load_results(tmp_path / "out")
    failed = table[table["surrogate"] == "ctrgcn"].iloc[0]
    assert failed["error_type"] == "ConfigError" and pd.isna(failed["robust_accuracy"])
    assert table[table["surrogate"] == "stgcn"]["robust_accuracy"].notna().all()


def test_slices_and_an_unrelated_folder(tmp_path: Path) -> None:
    (tmp_path / "small.yaml").write_text(SMALL, encoding="utf-8")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    runner = CliRunner()
    busy = runner.invoke(main, ["benchmark", str(tmp_path / "small.yaml"), "--output", str(tmp_path / "busy")])
    assert busy.exit_code == 1 and "is not a grid folder" in busy.output
    bad = runner.invoke(main, ["benchmark", str(tmp_path / "small.yaml"), "--output", str(tmp_path / "o"), "--only", "attack"])
    assert bad.exit_code == 1 and "--only expects KEY=VALUE" in bad.output
    assert not (tmp_path / "o").exists()
    (tmp_path / "bad.yaml").write_text(SMALL.replace("[none, lowpass]", "[none, lowpass, jpeg]"), encoding="utf-8")
    malformed = runner.invoke(main, ["benchmark", str(tmp_path / "bad.yaml"), "--output", str(tmp_path / "o")])
    assert malformed.exit_code == 1 and "datasets.synthetic.defenses[2]: unknown defense 'jpeg'" in malformed.output
    assert not (tmp_path / "o").exists()


def test_each_set_gets_only_the_settings_its_protocol_sets() -> None:
    from skelrobust.benchmark.grid import run_config

    document = yaml.safe_load(SMALL)
    document["defaults"].update({"device": "auto", "selection": "all"})
    document["victims"] = {"ctrgcn": {"checkpoint": "/weights/ctrgcn.pt"}, "stgcn": {"checkpoint": "/weights/stgcn.pt"}}
    document["defenses"] = {"lowpass": {"sigma": 2.0}}
    chosen = parse_protocol(document).sets[1]
    cfg = run_config(chosen, ["ctrgcn"], ["lowpass"])
    assert (cfg.attack, cfg.surrogate, cfg.eps, cfg.steps, cfg.n_samples, cfg.seed) == ("mifgsm", "stgcn", BUDGET, 10, 16, 0)
    assert cfg.selection == "all" and cfg.device is None and cfg.batch_size is None and cfg.norm is None
    assert cfg.victims == ["ctrgcn"] and cfg.defenses == ["lowpass"] and cfg.defense_options == {"lowpass": {"sigma": 2.0}}
    assert cfg.checkpoints == {"ctrgcn": "/weights/ctrgcn.pt", "stgcn": "/weights/stgcn.pt"}
