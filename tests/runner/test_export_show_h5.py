"""``skelrobust export`` round trips for every format, and ``skelrobust show``."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from h5_helpers import array_sha, spec, write_split
from skelrobust.cli import main
from skelrobust.data import load_dataset
from skelrobust.data.formats.ctrgcn_npz import read_ctrgcn_npz
from skelrobust.errors import ConfigError
from skelrobust.export import FORMATS, export_run
from skelrobust.benchmark.cell_config import RunConfig
from skelrobust.benchmark.cell import run_cell


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("h5export")
    write_split(base / "data", "test", 30)
    out = base / "run"
    run_cell(
        RunConfig(attack=spec("SignStep"), victims=[spec("victim_a")], dataset="npz", root=str(base / "data"),
                  eps=0.05, steps=2, n_samples=6, batch_size=4, seed=1, device="cpu"),
        out, progress=False,
    )
    return out


@pytest.fixture(scope="module")
def arrays(run_dir: Path) -> dict[str, np.ndarray]:
    with np.load(run_dir / "adversarial.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_npz_export_reads_back_with_the_generic_loader(run_dir: Path, arrays: dict, tmp_path: Path) -> None:
    out = tmp_path / "adv.npz"
    summary = json.loads(_cli("export", str(run_dir), "--format", "npz", "--out", str(out), "--include-clean", "--json"))
    assert summary["n"] == 6 and summary["checksums_sha256"]["adversarial"] == array_sha(arrays["adversarial"])
    ds = load_dataset("npz", "test", root=out)
    assert np.array_equal(ds.data, arrays["adversarial"]) and list(ds.labels) == list(arrays["labels"])
    assert ds.sample_ids == [str(s) for s in arrays["sample_ids"]] and ds.layout.name == "ntu25"
    assert ds.class_names == [str(c) for c in arrays["class_names"]] and list(ds.lengths) == list(arrays["lengths"])
    with np.load(out, allow_pickle=False) as z:
        assert np.array_equal(z["clean"], arrays["clean"])
        meta = json.loads(str(z["skelrobust_meta"]))
    assert meta["eps"] == 0.05 and meta["attack"] == spec("SignStep") and meta["checksums_sha256"]["clean"] == array_sha(arrays["clean"])


def test_ctrgcn_export_matches_the_ctrgcn_layout(run_dir: Path, arrays: dict, tmp_path: Path) -> None:
    out = tmp_path / "NTU60_adv.npz"
    export_run(run_dir, "ctrgcn-npz", out, include_clean=True)
    n, c, t, v, m = arrays["adversarial"].shape
    with np.load(out, allow_pickle=False) as z:
        assert z["x_test"].shape == (n, t, 150) and z["x_train"].shape == (2 * n, t, 150)
        assert z["y_test"].shape == (n, 4) and (z["y_test"].argmax(1) == arrays["labels"]).all()
        # Frame layout: [person 1: joint 0 xyz, joint 1 xyz, ... | person 2 ...].
        assert np.array_equal(z["x_test"][0, 0, 75 + 3:75 + 6], arrays["adversarial"][0, :, 0, 1, 1])
    data, labels, _, _ = read_ctrgcn_npz(out, "test", 4)
    assert np.array_equal(np.asarray(data), arrays["adversarial"]) and list(labels) == list(arrays["labels"])
    train, _, _, _ = read_ctrgcn_npz(out, "train", 4)
    assert np.array_equal(np.asarray(train)[n:], arrays["clean"])


def test_pyskl_export_is_a_plain_pickle_pyskl_reads(run_dir: Path, arrays: dict, tmp_path: Path) -> None:
    out = tmp_path / "adv.pkl"
    export_run(run_dir, "pyskl", out, include_clean=True)
    content = pickle.loads(out.read_bytes())
    ann = content["annotations"][0]
    length = int(arrays["lengths"][0])
    assert set(ann) == {"frame_dir", "label", "keypoint", "total_frames"} and ann["total_frames"] == length
    assert ann["keypoint"].shape == (2, length, 25, 3) and ann["frame_dir"] == str(arrays["sample_ids"][0])
    assert len(content["split"]["adv_train"]) == 12 and content["split"]["clean"][0].endswith("_clean")
    ds = load_dataset("pyskl", "test", root=out, benchmark="adv")  # reads split adv_val with the safe unpickler
    t = ds.data.shape[2]
    assert np.array_equal(ds.data, arrays["adversarial"][:, :, :t]) and list(ds.labels) == list(arrays["labels"])
    assert ds.sample_ids == [str(s) for s in arrays["sample_ids"]] and list(ds.lengths) == list(arrays["lengths"])


def test_robustbenchhar_export_reads_back(run_dir: Path, arrays: dict, tmp_path: Path) -> None:
    folder = tmp_path / "rbh"
    summary = export_run(run_dir, "robustbenchhar", folder)
    assert summary["path"] == str(folder / "classTrain.npz")
    with np.load(folder / "classTrain.npz", allow_pickle=False) as z:
        assert set(z.files) >= {"clips", "classes"} and z["classes"].dtype == np.int64
    ds = load_dataset("robustbenchhar-ntu60", "train", root=folder)
    assert np.array_equal(ds.data, arrays["adversarial"]) and list(ds.labels) == list(arrays["labels"])


def test_export_errors(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown export format 'csv'"):
        export_run(run_dir, "csv", tmp_path / "x")
    with pytest.raises(ConfigError, match="holds no finished run"):
        export_run(tmp_path, "npz", tmp_path / "x.npz")
    assert set(FORMATS) == {"npz", "ctrgcn-npz", "pyskl", "robustbenchhar"}


def test_show_writes_a_gif(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.gif"
    _cli("show", str(run_dir), "--index", "1", "--out", str(out), "--fps", "5")
    assert out.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    result = CliRunner().invoke(main, ["show", str(run_dir), "--index", "99", "--out", str(out)])
    assert result.exit_code == 1 and "--index 99 is out of range" in result.output
