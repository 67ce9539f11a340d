"""The CLI's exit codes (the README's table): 1 bad input, 2 failed evaluation cells, 130 interrupted."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from skelrobust.benchmark import cell
from skelrobust.cli import main
from skelrobust.cli.main import EXIT_BAD_INPUT, EXIT_FAILED_CELLS, EXIT_INTERRUPTED


def test_codes_are_the_documented_ones() -> None:
    assert (EXIT_BAD_INPUT, EXIT_FAILED_CELLS, EXIT_INTERRUPTED) == (1, 2, 130)


@pytest.mark.parametrize("args, message", [
    (["run", "--attack", "pgd", "--victim", "stgcn", "--dataset", "synthetic", "--norm", "l3", "--output", "x"], "'l3' is not one of"),
    (["run", "--attack", "pgd", "--victim", "stgcn", "--dataset", "synthetic", "--steps", "abc", "--output", "x"], "'abc' is not a valid integer"),
    (["run", "--attack", "pgd", "--victim", "stgcn", "--dataset", "synthetic"], "Missing option '--output'"),
    (["no-such-command"], "No such command"),
    (["run", "--attack", "nosuchattack", "--victim", "stgcn", "--dataset", "synthetic", "--output", "x"], "unknown attack 'nosuchattack'"),
])
def test_bad_input_of_either_kind_exits_1(args: list[str], message: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert message in result.output and "Traceback" not in result.output


def test_help_and_version_exit_0() -> None:
    assert CliRunner().invoke(main, ["--help"]).exit_code == 0
    assert CliRunner().invoke(main, ["--version"]).exit_code == 0


def test_ctrl_c_exits_130_and_says_rerunning_resumes(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cell, "run_cell", interrupted)
    result = CliRunner().invoke(main, ["run", "--attack", "pgd", "--victim", "stgcn", "--dataset", "synthetic",
                                       "--output", str(tmp_path / "r")])
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    assert "Rerun the same command to resume" in result.output and "Traceback" not in result.output

