"""Failure isolation: one failing victim x defense cell is recorded as an error; the rest of the run stands."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from h5_helpers import spec, write_split
from isolation_helpers import spec as iso_spec
from skelrobust.cli import main
from skelrobust.benchmark.cell_config import RunConfig
from skelrobust.benchmark.cell import run_cell

BOOM = iso_spec("FailsOnVictimB")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("isodata")
    write_split(folder, "test", 40)
    return folder


def _config(data_dir: Path, defenses: list[str]) -> RunConfig:
    return RunConfig(
        attack=spec("SignStep"), victims=[spec("victim_a"), spec("victim_b")], dataset="npz", root=str(data_dir),
        defenses=defenses, eps=0.05, steps=3, n_samples=10, batch_size=4, seed=7, device="cpu",
    )


def test_failing_cell_is_recorded_and_the_others_are_intact(data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    reference = run_cell(_config(data_dir, ["none"]), tmp_path / "ref", progress=False)
    with caplog.at_level(logging.WARNING, logger="skelrobust.benchmark.cell"):
        res = run_cell(_config(data_dir, ["none", BOOM]), tmp_path / "iso", progress=False)
    assert any("failed" in r.getMessage() and r.exc_info for r in caplog.records if r.levelno == logging.WARNING)

    cells = {(c["victim"], c["defense"]): c for c in res["victims"]}
    assert list(cells) == [(spec("victim_a"), "none"), (spec("victim_a"), BOOM), (spec("victim_b"), "none"), (spec("victim_b"), BOOM)]
    bad = cells[(spec("victim_b"), BOOM)]
    assert bad["error"] == {"type": "RuntimeError", "message": "boom on\nthis input"}
    assert all(bad[k] is None for k in ("n", "clean_accuracy", "robust_accuracy", "transfer_success_rate",
                                        "conditional_transfer_success_rate", "n_clean_correct"))
    # The defense is the identity on victim_a, and the undefended cells equal a run without the broken defense.
    for ref_cell in reference["victims"]:
        assert cells[(ref_cell["victim"], "none")] == ref_cell
    assert {k: v for k, v in cells[(spec("victim_a"), BOOM)].items() if k != "defense"} == \
        {k: v for k, v in reference["victims"][0].items() if k != "defense"}
    assert sum("error" in c for c in res["victims"]) == 1

    # samples.jsonl agrees with results.json, and carries no prediction for the failed cell.
    records = [json.loads(line) for line in (tmp_path / "iso" / "samples.jsonl").read_text().splitlines()]
    assert len(records) == res["n_samples"]
    for i, summary in enumerate(res["victims"]):
        entries = [r["victims"][i] for r in records]
        assert all((e["victim"], e["defense"]) == (summary["victim"], summary["defense"]) for e in entries)
        if "error" in summary:
            assert all(e == {"victim": summary["victim"], "defense": summary["defense"], "error": True} for e in entries)
        else:
            assert summary["clean_accuracy"] == sum(e["clean_prediction"] == r["label"] for e, r in zip(entries, records)) / len(records)
            assert summary["transfer_success_rate"] == sum(e["success"] for e in entries) / len(records)
    saved = json.loads((tmp_path / "iso" / "results.json").read_text())
    assert saved["victims"] == res["victims"]

    # Resume: the failed cell is evaluated again (not cached); successful cells are reproduced exactly.
    again = run_cell(_config(data_dir, ["none", BOOM]), tmp_path / "iso", progress=False)
    assert again["victims"] == res["victims"]


def test_cli_exits_2_naming_the_failed_cell_after_writing_outputs(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "run", "--attack", spec("SignStep"), "--victim", f"{spec('victim_a')},{spec('victim_b')}", "--dataset", "npz",
        "--root", str(data_dir), "--defense", f"none,{BOOM}", "--eps", "0.05", "--steps", "3", "--n-samples", "10",
        "--batch-size", "4", "--seed", "7", "--output", str(out), "--quiet",
    ])
    assert result.exit_code == 2, result.output
    for name in ("results.json", "samples.jsonl", "adversarial.npz"):
        assert (out / name).is_file()
    err_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(err_lines) == 1
    assert f"{spec('victim_b')}/{BOOM} (RuntimeError: boom on this input)" in err_lines[0]
    assert spec("victim_a") + "/" not in err_lines[0]
    table = [line for line in result.stdout.splitlines() if line.startswith(spec("victim_b")) and BOOM in line]
    assert len(table) == 1 and table[0].split()[2:] == ["error"] * 5
    assert "clean acc" in result.stdout and "%" in result.stdout
