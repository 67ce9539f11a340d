"""Slow: every shipped zoo entry is reproduced by the training command its manifest records.

Runs ``skelrobust train`` with the manifest's exact arguments (only ``--out`` redirected; a self-supervised
entry runs its ``skelrobust pretrain`` command first and reads that encoder) and checks the test accuracy
against the recorded one. Minutes per entry on one CPU thread: run with SKELROBUST_RUN_SLOW=1.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from skelrobust.cli import main
from skelrobust.zoo import entries

#: Accuracy the retrained model may differ by: thread scheduling and BLAS builds change float summation order.
TOLERANCE = 0.02


def _redirected(command: str, verb: str, out: Path) -> list[str]:
    """The manifest command's arguments (without ``skelrobust``) with ``--out`` sent to ``out``."""
    args = shlex.split(command)
    assert args[:2] == ["skelrobust", verb], command
    args = args[1:]
    args[args.index("--out") + 1] = str(out)
    return args


@pytest.mark.slow
@pytest.mark.parametrize("entry", entries(), ids=lambda e: f"{e['victim']}-{e['dataset']}-{e['preset']}")
def test_manifest_command_reproduces_the_recorded_accuracy(entry: dict, tmp_path: Path) -> None:
    args = _redirected(entry["command"], "train", tmp_path / "retrained")
    if entry.get("protocol") == "linear-eval":  # pretrain the encoder first; the linear evaluation reads it
        pretrain = _redirected(entry["pretraining"]["command"], "pretrain", tmp_path / "pretrained")
        result = CliRunner().invoke(main, pretrain)
        assert result.exit_code == 0, result.output
        args[args.index("--encoder") + 1] = str(tmp_path / "pretrained" / "encoder.pt")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "retrained" / "metadata.json").read_text())
    assert meta["num_parameters"] == entry["num_parameters"]
    assert meta["test_accuracy"] == pytest.approx(entry["test_accuracy"], abs=TOLERANCE)
