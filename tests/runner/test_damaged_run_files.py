"""Damaged versions of every file of a run folder: one clear line or a correct recomputation, never a traceback.

Each file a finished run leaves (and a shard kept with ``--keep-shards``) is in turn emptied, truncated,
bit-flipped or replaced by content of the wrong types. Then ``skelrobust export`` either exports exactly the
run's clips or fails with one ``Error:`` line and writes nothing, and rerunning the same ``skelrobust run``
either rebuilds the same results (what can be recomputed is) or fails with one line saying what to do.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from h5_helpers import spec, write_split
from skelrobust.cli import main


def _damage(path: Path, how: str) -> None:
    blob = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif how == "bit-flipped":
        flipped = bytearray(blob)
        flipped[int(len(blob) * 0.6)] ^= 0x10
        path.write_bytes(bytes(flipped))
    elif path.suffix == ".npz":  # retyped: every array replaced by a string
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
        with open(path, "wb") as fh:
            np.savez(fh, **{k: np.array("text") for k in keys})
    elif path.suffix == ".jsonl":
        path.write_text("[1, 2]\n[3]\n")
    else:
        path.write_text(json.dumps(["not", "an", "object"]))


def _run_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--attack", spec("SignStep"), "--victim", spec("victim_a"), "--dataset", "npz", "--root", str(data),
            "--eps", "0.05", "--steps", "2", "--n-samples", "6", "--batch-size", "4", "--seed", "5", "--device", "cpu",
            "--output", str(out), "--quiet", *extra]


def _one_line(result) -> None:
    """A handled failure: exit 1 and exactly one ``Error:`` line (CliRunner records an unhandled exception)."""
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, repr(result.exception)
    assert "Traceback" not in result.output, result.output
    assert len([line for line in result.output.splitlines() if line.startswith("Error:")]) == 1, result.output


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, np.ndarray]:
    base = tmp_path_factory.mktemp("damagedrun")
    data = write_split(base / "data", "test", 20).parent
    result = CliRunner().invoke(main, _run_args(data, base / "run", "--keep-shards"))
    assert result.exit_code == 0, result.output
    with np.load(base / "run" / "adversarial.npz") as z:
        adversarial = z["adversarial"]
    (base / "run" / "generation.npz").unlink(missing_ok=True)
    finished = base / "finished"
    assert CliRunner().invoke(main, _run_args(data, finished)).exit_code == 0
    return data, base, json.loads((finished / "results.json").read_text())["victims"], adversarial


FILES = ["results.json", "samples.jsonl", "adversarial.npz", "attack_set.json", "state.json", "generation.npz",
         "shards/batch_00001.npz"]


@pytest.mark.parametrize("name", FILES)
def test_each_damaged_run_file(reference, tmp_path: Path, name: str) -> None:
    data, base, victims, adversarial = reference
    for how in ("empty", "truncated", "bit-flipped", "retyped"):
        run = tmp_path / how
        source = base / ("run" if name.startswith("shards/") else "finished")
        shutil.copytree(source, run)
        _damage(run / name, how)

        exported = tmp_path / f"{how}.npz"
        result = CliRunner().invoke(main, ["export", str(run), "--format", "npz", "--out", str(exported)])
        if result.exit_code == 0:
            with np.load(exported) as z:
                assert np.array_equal(z["data"], adversarial), f"{how} {name}: exported other clips"
        else:
            _one_line(result)
            assert not exported.exists()

        result = CliRunner().invoke(main, _run_args(data, run, *(["--keep-shards"] if name.startswith("shards/") else [])))
        if result.exit_code == 0:
            assert json.loads((run / "results.json").read_text())["victims"] == victims, f"{how} {name}"
            with np.load(run / "adversarial.npz") as z:
                assert np.array_equal(z["adversarial"], adversarial), f"{how} {name}: rebuilt other clips"
        else:
            _one_line(result)
            assert "--overwrite" in result.output, f"{how} {name}: the error does not say what to do"
