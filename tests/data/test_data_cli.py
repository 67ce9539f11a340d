"""``skelrobust datasets`` and ``skelrobust data info|prepare|show`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from skelrobust.cli import main
from skelrobust.data.formats.npz import save_npz
from skelrobust.viz import render_sequences


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def npz_folder(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        data = np.zeros((n, 3, 6, 25, 2), np.float32)
        data[:, :, :5, :, 0] = rng.normal(size=(n, 3, 5, 25)) * 0.2
        save_npz(tmp_path / f"{split}.npz", data, list(range(n)), "ntu25", class_names=["a", "b", "c"])
    return tmp_path


def test_datasets_json_lists_every_format(runner):
    result = runner.invoke(main, ["datasets", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    for name in ("ntu60", "ntu120", "nw-ucla", "robustbenchhar-hdm05", "robustbenchhar-ntu60", "pyskl", "npz", "msr-action3d", "utd-mhad"):
        assert rows[name]["needs_root"] is True
    assert rows["ntu60"]["layout"] == "ntu25" and rows["ntu60"]["num_classes"] == 60 and rows["ntu60"]["can_prepare"]
    assert rows["robustbenchhar-hdm05"]["units"] == "std" and rows["msr-action3d"]["layout"] == "msr20"
    assert all(r["description"] for r in rows.values())


def test_data_info_json_on_npz(runner, npz_folder):
    result = runner.invoke(main, ["data", "info", "npz", "--root", str(npz_folder), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["splits"] == {"train": 3, "test": 2} and info["shape"] == [3, 6, 25, 2]
    assert info["layout"] == "ntu25" and info["num_classes"] == 3 and info["class_names"] == ["a", "b", "c"]
    assert info["units"] == "m" and info["name"] == "npz"


def test_data_info_json_on_synthetic(runner):
    result = runner.invoke(main, ["data", "info", "synthetic", "--dataset-option", "num_subjects=4", "--dataset-option", "repetitions=1", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["layout"] == "ntu25" and info["shape"][2:] == [25, 2] and set(info["splits"]) == {"train", "test"}
    assert info["num_classes"] == len(info["class_names"]) and info["units"] == "m"


def test_unprepared_ntu60_is_one_line_with_the_fix(runner, tmp_path):
    result = runner.invoke(main, ["data", "info", "ntu60", "--root", str(tmp_path / "none")])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "skelrobust data prepare ntu60 --raw-dir" in lines[0]
    assert "Traceback" not in result.output


def test_user_errors_are_one_line(runner, tmp_path, npz_folder):
    cases = [
        (["data", "info", "nope"], "unknown dataset 'nope'"),
        (["data", "info", "npz", "--root", str(npz_folder), "--dataset-option", "bad"], "expects KEY=VALUE"),
        (["data", "info", "npz", "--root", str(npz_folder), "--dataset-option", "benchmark=xsub"], "does not take option(s) benchmark"),
        (["data", "prepare", "msr-action3d", "--raw-dir", str(tmp_path)], "needs no preparation"),
        (["data", "prepare", "ntu60", "--raw-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "o")], "does not exist"),
        (["data", "show", "npz", "--root", str(npz_folder), "--index", "7", "--out", str(tmp_path / "x.gif")], "--index 7 out of range"),
        (["data", "show", "npz", "--root", str(npz_folder), "--index", "0", "--out", str(tmp_path / "x.mp4")], "use a .gif"),
    ]
    for args, message in cases:
        result = runner.invoke(main, args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output and "Traceback" not in result.output, (args, result.output)


def test_data_prepare_nw_ucla_cli(runner, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, label in (("a01_s01_e00_v01", 1), ("a02_s01_e00_v03", 2)):
        sk = np.random.default_rng(label).normal(size=(4, 20, 3)).tolist()
        (raw / f"{name}.json").write_text(json.dumps({"file_name": name, "skeletons": sk, "label": label}))
    result = runner.invoke(main, ["data", "prepare", "nw-ucla", "--raw-dir", str(raw), "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["splits"] == {"train": 1, "test": 1}
    info = runner.invoke(main, ["data", "info", "nw-ucla", "--root", str(tmp_path / "out"), "--json"])
    assert json.loads(info.stdout)["splits"] == {"train": 1, "test": 1}


def test_data_show_writes_a_gif_and_a_png(runner, npz_folder, tmp_path):
    gif = tmp_path / "s.gif"
    result = runner.invoke(main, ["data", "show", "npz", "--root", str(npz_folder), "--index", "1", "--split", "train", "--out", str(gif), "--fps", "5"])
    assert result.exit_code == 0, result.output
    assert gif.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 5  # the sample's 5 valid frames
    png = tmp_path / "s.png"
    result = runner.invoke(main, ["data", "show", "npz", "--root", str(npz_folder), "--index", "0", "--out", str(png), "--frame", "2"])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_sequences_side_by_side(tmp_path):
    x = np.zeros((3, 4, 20, 1), np.float32)
    x[:, :3] = np.random.default_rng(0).normal(size=(3, 3, 20, 1))
    out = render_sequences([x, x + 0.01 * (x != 0)], "kinect20", tmp_path / "pair.png", titles=["clean", "adv"], num_frames=2)
    from PIL import Image

    with Image.open(out) as im:
        width, height = im.size
    assert height > width / 2  # two rows (one per sequence) of two frames
    with pytest.raises(Exception, match="2 titles for 1 sequences"):
        render_sequences([x], "kinect20", tmp_path / "a.png", titles=["a", "b"])
    with pytest.raises(Exception, match="has 20 joints, the layout has 25"):
        render_sequences([x], "ntu25", tmp_path / "a.png")
