"""`--dataset-option` and file roots on the commands that load datasets (eval, train)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from skelrobust.cli import main
from skelrobust.data.formats.npz import save_npz


def test_eval_passes_dataset_options() -> None:
    result = CliRunner().invoke(main, ["eval", "--victim", "stgcn", "--dataset", "synthetic", "--json",
                                       "--dataset-option", "seed=0", "--dataset-option", "num_subjects=4"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dataset"] == "synthetic" and report["n"] == 2 * 16 * 4  # 2 test subjects x 16 classes x 4 repetitions
    assert 0.0 <= report["accuracy"] <= 1.0


def test_eval_rejects_an_unknown_dataset_option() -> None:
    result = CliRunner().invoke(main, ["eval", "--victim", "stgcn", "--dataset", "synthetic", "--dataset-option", "split_rule=odd"])
    assert result.exit_code == 1
    assert "does not take option(s) split_rule" in result.output


def test_train_accepts_a_file_root(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((12, 3, 8, 25, 1)) * 0.1).astype(np.float32)
    path = tmp_path / "mine.npz"
    save_npz(path, data=data, labels=np.arange(12) % 3, layout="ntu25")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--victim", "mlp", "--dataset", "npz", "--root", str(path),
                                       "--epochs", "1", "--val-fraction", "0.25", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["dataset"] == "npz" and (out / "best.pt").is_file()
