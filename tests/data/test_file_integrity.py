"""Damaged dataset files and misdirected roots: checked bytes, refused empty samples, no leftovers."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from skelrobust.cli import main
from skelrobust.data import load_dataset
from skelrobust.data import arrays as arrays_module
from skelrobust.data.formats.npz import save_npz
from skelrobust.data.ntu import prepare_ntu
from skelrobust.errors import ConfigError, DataError


def _npz(path: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((n, 3, 8, 25, 1)) * 0.1).astype(np.float32)
    return save_npz(path, data=data, labels=np.arange(n) % 3, layout="ntu25", lengths=np.full(n, 8))


def _replace_one_float(path: Path, value: float) -> None:
    """Overwrite the first coordinate of 'data' inside the (stored) zip member with another finite float."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("data.npy")
    blob = bytearray(path.read_bytes())
    name_len = int.from_bytes(blob[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(blob[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    header_len = int.from_bytes(blob[start + 8 : start + 10], "little")  # .npy v1.0: magic(6) + version(2) + len(2)
    first = start + 10 + header_len
    blob[first : first + 4] = np.float32(value).tobytes()
    path.write_bytes(bytes(blob))


def test_a_finite_but_corrupted_coordinate_is_caught_by_the_crc(tmp_path: Path) -> None:
    path = _npz(tmp_path / "set.npz")
    assert abs(float(load_dataset("npz", "test", root=path).data[0, 0, 0, 0, 0])) < 1
    _replace_one_float(path, 7.5)
    with pytest.raises(DataError, match=r"set\.npz: array 'data' is damaged .*Bad CRC-32"):
        load_dataset("npz", "test", root=path)
    result = CliRunner().invoke(main, ["data", "info", "npz", "--root", str(path)])
    assert result.exit_code == 1 and "is damaged" in result.output and "Traceback" not in result.output


def test_the_crc_is_read_once_per_file_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _npz(tmp_path / "set.npz")
    load_dataset("npz", "test", root=path)
    reads = []
    original = zipfile.ZipFile.open

    def counting(self, name, *args, **kwargs):
        reads.append(getattr(name, "filename", name))
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", counting)
    load_dataset("npz", "test", root=path)
    assert "data.npy" not in reads  # stamped: the memory map is trusted without a second full read
    _npz(path, n=7)  # rewritten: new size and mtime
    assert len(load_dataset("npz", "test", root=path)) == 7
    assert "data.npy" in reads


def test_crc_stamp_lives_in_the_cache_not_beside_the_data(tmp_path: Path) -> None:
    path = _npz(tmp_path / "set.npz")
    load_dataset("npz", "test", root=path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set.npz"]
    assert arrays_module._crc_stamp_file(path).is_file()


def test_an_all_zero_sample_is_refused(tmp_path: Path) -> None:
    data = np.random.default_rng(0).standard_normal((4, 3, 8, 25, 1)).astype(np.float32)
    data[2] = 0.0
    ids = ["a", "b", "c", "d"]
    save_npz(tmp_path / "z.npz", data=data, labels=[0, 1, 0, 1], layout="ntu25", sample_ids=ids)
    with pytest.raises(DataError, match="sample 'c' is empty: every coordinate is zero"):
        load_dataset("npz", "test", root=tmp_path / "z.npz")


def test_builtin_dataset_refuses_a_root_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'synthetic' is built in and needs no --root"):
        load_dataset("synthetic", "test", root=tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()
    result = CliRunner().invoke(main, ["data", "info", "synthetic", "--root", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "needs no --root" in result.output and not (tmp_path / "nowhere").exists()


def test_failed_preparation_removes_its_partial_arrays(write_skeleton, ntu_pose, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_skeleton(raw / "S001C001P001R001A001.skeleton", [[("1", ntu_pose(0, 0))]] * 4)
    (raw / "S001C001P002R001A002.skeleton").write_text("4\r\n1\r\n")  # truncated after the first frame's body count
    result = CliRunner().invoke(main, ["data", "prepare", "ntu60", "--raw-dir", str(raw), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "S001C001P002R001A002" in result.output and "Traceback" not in result.output
    leftovers = [p.name for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert leftovers == []
    with pytest.raises(DataError):
        prepare_ntu("ntu60", raw, tmp_path / "out2", progress=False)
    assert [p for p in (tmp_path / "out2").rglob("*.partial")] == []


def test_failed_training_leaves_no_empty_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "never"
    result = CliRunner().invoke(main, ["train", "--victim", "mlp", "--dataset", "npz", "--root", str(tmp_path / "absent.npz"),
                                       "--epochs", "1", "--out", str(out)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert not out.exists()
    (tmp_path / "afile").write_text("x")
    result = CliRunner().invoke(main, ["train", "--victim", "mlp", "--dataset", "synthetic", "--epochs", "1",
                                       "--out", str(tmp_path / "afile")])
    assert result.exit_code == 1 and "Traceback" not in result.output and (tmp_path / "afile").read_text() == "x"


def test_training_on_one_npz_file_reports_no_test_accuracy(tmp_path: Path) -> None:
    path = _npz(tmp_path / "one.npz", n=12)
    result = CliRunner().invoke(main, ["train", "--victim", "mlp", "--dataset", "npz", "--root", str(path), "--epochs", "1",
                                       "--val-fraction", "0.25", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "test n/a (every test clip is also a training clip)" in result.output
    import json

    meta = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert meta["test_accuracy"] is None and meta["n_test"] == 0 and meta["n_test_in_train"] == 12
    assert meta["preset"] == "lite"


@pytest.mark.parametrize("how", ["truncated", "retyped"])
def test_damaged_training_state_is_one_line(tmp_path: Path, how: str) -> None:
    import torch

    path = _npz(tmp_path / "one.npz", n=12)
    args = ["train", "--victim", "mlp", "--dataset", "npz", "--root", str(path), "--epochs", "2", "--val-fraction", "0.25",
            "--out", str(tmp_path / "run")]
    assert CliRunner().invoke(main, args).exit_code == 0
    last = tmp_path / "run" / "last.pt"
    if how == "truncated":
        last.write_bytes(last.read_bytes()[:100])
    else:
        torch.save([1, 2, 3], last)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), repr(result.exception)
    assert "cannot resume from" in result.output and "delete it to start over" in result.output
    assert "weights_only=False" not in result.output and "Traceback" not in result.output
