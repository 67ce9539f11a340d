"""The run folder: what it holds once a run is finished, and what happens to it when it is damaged or misplaced."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from h5_helpers import spec, write_split
from skelrobust.benchmark import cell
from skelrobust.cli import main
from skelrobust.benchmark.cell_config import RunConfig
from skelrobust.benchmark.cell import run_cell


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("folderdata")
    write_split(folder, "test", 24)
    return folder


def _config(data_dir: Path) -> RunConfig:
    return RunConfig(attack=spec("SignStep"), victims=[spec("victim_a")], dataset="npz", root=str(data_dir),
                     eps=0.05, steps=2, n_samples=8, batch_size=4, seed=3, device="cpu")


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _one_line_error(output: str) -> str:
    assert "Traceback" not in output, output
    lines = [line for line in output.strip().splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, output
    return lines[0]


@pytest.fixture
def finished(data_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    run_cell(_config(data_dir), out, progress=False)
    return out


def test_finished_run_holds_its_documented_files_and_no_shards(finished: Path) -> None:
    assert sorted(p.name for p in finished.iterdir()) == sorted(
        ["results.json", "samples.jsonl", "adversarial.npz", "attack_set.json", "state.json", "generation.npz"])
    results = json.loads((finished / "results.json").read_text())
    attack_set = json.loads((finished / "attack_set.json").read_text())
    record = results["provenance"]["sample_indices"]
    assert record["file"] == "attack_set.json" and record["indices"] == attack_set["indices"] and record["n"] == 8
    assert record["sha256"] == hashlib.sha256(np.asarray(attack_set["indices"], dtype=np.int64).tobytes()).hexdigest()


def test_rerun_of_a_finished_run_reuses_its_adversarial_set_without_shards(finished: Path, data_dir: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with np.load(finished / "adversarial.npz") as z:
        before = z["adversarial"]
    first = json.loads((finished / "results.json").read_text())

    def no_attack(*args, **kwargs):
        raise AssertionError("a finished run attacked again")

    monkeypatch.setattr(cell, "_attack_batch", no_attack)
    again = run_cell(_config(data_dir), finished, progress=False)
    with np.load(finished / "adversarial.npz") as z:
        assert np.array_equal(z["adversarial"], before)
    assert again["victims"] == first["victims"] and again["timing"]["seconds"] == pytest.approx(first["timing"]["seconds"])
    assert not (finished / "shards").exists()


def test_keep_shards_keeps_them(data_dir: Path, tmp_path: Path) -> None:
    run_cell(_config(data_dir), tmp_path / "kept", progress=False, keep_shards=True)
    assert sorted(p.name for p in (tmp_path / "kept" / "shards").iterdir()) == ["batch_00000.npz", "batch_00001.npz"]


def test_truncated_adversarial_file_is_one_line_for_export_and_show_and_a_rerun_rebuilds_it(
    finished: Path, data_dir: Path, tmp_path: Path
) -> None:
    with np.load(finished / "adversarial.npz") as z:
        before = z["adversarial"]
    blob = (finished / "adversarial.npz").read_bytes()
    (finished / "adversarial.npz").write_bytes(blob[: len(blob) // 2])
    for command in (["export", str(finished), "--format", "npz", "--out", str(tmp_path / "a.npz")],
                    ["show", str(finished), "--index", "0", "--out", str(tmp_path / "a.gif")]):
        code, output = _cli(*command)
        line = _one_line_error(output)
        assert code == 1 and "adversarial.npz is damaged" in line and "--overwrite" in line
        assert not (tmp_path / "a.npz").exists() and not (tmp_path / "a.gif").exists()
    run_cell(_config(data_dir), finished, progress=False)  # recomputed: the same seeds give the same clips
    with np.load(finished / "adversarial.npz") as z:
        assert np.array_equal(z["adversarial"], before)


@pytest.mark.parametrize("content", [b"{\"attack\": ", b"[1, 2, 3]"])
def test_unreadable_results_file_is_one_line(finished: Path, tmp_path: Path, content: bytes) -> None:
    (finished / "results.json").write_bytes(content)
    code, output = _cli("export", str(finished), "--format", "npz", "--out", str(tmp_path / "a.npz"))
    line = _one_line_error(output)
    assert code == 1 and "results.json is damaged" in line and "rerun the same `skelrobust run` command" in line


def test_damaged_samples_file_is_one_line_for_show(finished: Path, tmp_path: Path) -> None:
    (finished / "samples.jsonl").write_text("{not json\n")
    code, output = _cli("show", str(finished), "--index", "0", "--out", str(tmp_path / "a.gif"))
    assert code == 1 and "samples.jsonl is damaged" in _one_line_error(output)


@pytest.mark.parametrize("content", ["{\"indices\": [0, 1", "{\"indices\": [999]}", "[]"])
def test_damaged_attack_set_is_selected_again(finished: Path, data_dir: Path, content: str) -> None:
    reference = json.loads((finished / "attack_set.json").read_text())
    first = json.loads((finished / "results.json").read_text())
    (finished / "attack_set.json").write_text(content)
    again = run_cell(_config(data_dir), finished, progress=False)
    assert json.loads((finished / "attack_set.json").read_text()) == reference
    assert again["victims"] == first["victims"]


def test_attack_set_of_other_samples_is_not_trusted(finished: Path, data_dir: Path) -> None:
    reference = json.loads((finished / "attack_set.json").read_text())
    forged = dict(reference, labels=[(label + 1) % 4 for label in reference["labels"]])
    (finished / "attack_set.json").write_text(json.dumps(forged))
    run_cell(_config(data_dir), finished, progress=False)
    assert json.loads((finished / "attack_set.json").read_text()) == reference


def test_output_that_is_a_file_or_under_a_file_is_one_line(data_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    for output in (blocker, blocker / "run"):
        code, text = _cli("run", "--attack", spec("SignStep"), "--victim", spec("victim_a"), "--dataset", "npz",
                          "--root", str(data_dir), "--eps", "0.1", "--steps", "1", "--n-samples", "4", "--device", "cpu",
                          "--output", str(output), "--quiet")
        line = _one_line_error(text)
        assert code == 1 and f"{blocker} is a file, not a folder" in line
    assert blocker.read_text() == "not a folder"


def test_export_destination_of_the_wrong_kind_is_one_line(finished: Path, tmp_path: Path) -> None:
    folder, file = tmp_path / "folder", tmp_path / "file"
    folder.mkdir()
    file.write_text("x")
    cases = [("npz", folder, "is a folder"), ("pyskl", folder, "is a folder"), ("ctrgcn-npz", folder, "is a folder"),
             ("robustbenchhar", file, "is a file"), ("npz", file / "adv.npz", "is a file, not a folder")]
    for fmt, out, message in cases:
        code, output = _cli("export", str(finished), "--format", fmt, "--out", str(out))
        assert code == 1 and message in _one_line_error(output), (fmt, out)
    assert list(folder.iterdir()) == [] and file.read_text() == "x"
