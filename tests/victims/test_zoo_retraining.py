"""Slow: every shipped zoo entry is reproduced by the training command its manifest records.

Runs ``skelrobust train`` with the manifest's exact arguments (only ``--out`` redirected) and checks the test
accuracy against the recorded one. Minutes per entry on one CPU thread: run with SKELROBUST_RUN_SLOW=1.
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


@pytest.mark.slow
@pytest.mark.parametrize("entry", entries(), ids=lambda e: f"{e['victim']}-{e['dataset']}-{e['preset']}")
def test_manifest_command_reproduces_the_recorded_accuracy(entry: dict, tmp_path: Path) -> None:
    args = shlex.split(entry["command"])
    assert args[:2] == ["skelrobust", "train"], entry["command"]
    args = args[1:]
    args[args.index("--out") + 1] = str(tmp_path / "retrained")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "retrained" / "metadata.json").read_text())
    assert meta["num_parameters"] == entry["num_parameters"]
    assert meta["test_accuracy"] == pytest.approx(entry["test_accuracy"], abs=TOLERANCE)
