"""NW-UCLA JSON, RobustBenchHAR npz, pyskl pickle and generic npz loaders, with their error paths."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from skelrobust.data import load_dataset
from skelrobust.data.arrays import npz_member
from skelrobust.data.formats.npz import save_npz
from skelrobust.data.formats.nwucla import prepare as prepare_ucla
from skelrobust.data.formats.pyskl import safe_load_pickle
from skelrobust.errors import ConfigError, DataError, DatasetNotPreparedError, LayoutMismatchError

# ---------------------------------------------------------------- NW-UCLA


def _ucla_json(folder: Path, name: str, label: int, frames: int, seed: int = 0, **override) -> Path:
    rng = np.random.default_rng(seed)
    record = {"file_name": name, "skeletons": rng.normal(size=(frames, 20, 3)).round(4).tolist(), "label": label}
    record.update(override)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(record))
    return path


@pytest.fixture
def ucla_raw(tmp_path) -> Path:
    raw = tmp_path / "all_sqe"
    _ucla_json(raw, "a01_s01_e00_v01", 1, 10, 0)
    _ucla_json(raw, "a12_s02_e01_v02", 10, 7, 1)
    _ucla_json(raw, "a08_s03_e02_v03", 7, 12, 2)
    return raw


def test_nwucla_prepare_and_load_views(ucla_raw, tmp_path):
    meta = prepare_ucla(ucla_raw, tmp_path / "ucla", progress=False)
    assert meta["splits"] == {"train": 2, "test": 1} and meta["num_frames"] == 12
    train = load_dataset("nw-ucla", "train", root=tmp_path / "ucla")
    assert train.layout.name == "kinect20" and train.shape == (3, 12, 20, 1)
    assert train.sample_ids == ["a01_s01_e00_v01", "a12_s02_e01_v02"]
    assert train.labels.tolist() == [0, 9] and train.lengths.tolist() == [10, 7]
    raw = json.loads((ucla_raw / "a12_s02_e01_v02.json").read_text())["skeletons"]
    np.testing.assert_allclose(train.data[1, :, :7, :, 0], np.asarray(raw).transpose(2, 0, 1), atol=1e-6)
    test = load_dataset("nw-ucla", "test", root=tmp_path / "ucla")
    assert test.sample_ids == ["a08_s03_e02_v03"] and test.labels.tolist() == [6]
    assert test.class_names[6] == "donning"


@pytest.mark.parametrize(
    "name, label, override, match",
    [
        ("a01_s01_e00_v01", 2, {}, "label 2 does not match action a01"),
        ("a07_s01_e00_v01", 7, {}, "action a07 is not an NW-UCLA action"),
        ("bad_name", 1, {}, "file_name 'bad_name' is not of the form"),
        ("a01_s01_e00_v01", 1, {"skeletons": [[[0.0, 0.0, 0.0]] * 19]}, r"shape \(1, 19, 3\), expected \(T, 20, 3\)"),
        ("a01_s01_e00_v01", 1, {"skeletons": []}, r"shape \(0,\)|empty sequence"),
        ("a01_s01_e00_v01", 1, {"skeletons": [[[float("nan"), 0.0, 0.0]] * 20]}, "NaN or infinite"),
    ],
)
def test_nwucla_bad_files_are_named(tmp_path, name, label, override, match):
    path = _ucla_json(tmp_path / "raw", name, label, 4, **override)
    with pytest.raises(DataError, match=match) as info:
        prepare_ucla(tmp_path / "raw", tmp_path / "out", progress=False)
    assert path.name in str(info.value)


def test_nwucla_truncated_json(tmp_path):
    path = _ucla_json(tmp_path / "raw", "a01_s01_e00_v01", 1, 4)
    path.write_text(path.read_text()[:50])
    with pytest.raises(DataError, match="a01_s01_e00_v01.json: not a readable NW-UCLA JSON"):
        prepare_ucla(tmp_path / "raw", tmp_path / "out", progress=False)


def test_nwucla_unprepared_says_how(tmp_path):
    with pytest.raises(DatasetNotPreparedError, match="skelrobust data prepare nw-ucla"):
        load_dataset("nw-ucla", "train", root=tmp_path)


# ---------------------------------------------------------------- RobustBenchHAR


def test_robustbenchhar_hdm05_interleaved_layout(tmp_path):
    rng = np.random.default_rng(0)
    clips = rng.normal(size=(4, 60, 75)).astype(np.float32)
    np.savez(tmp_path / "classTrain.npz", clips=clips, classes=np.array([0, 3, 64, 2]))
    np.savez(tmp_path / "classTest.npz", clips=clips[:2], classes=np.array([1, 1]))
    ds = load_dataset("robustbenchhar-hdm05", "train", root=tmp_path)
    assert ds.layout.name == "hdm05" and ds.units == "std" and ds.shape == (3, 60, 25, 1)
    assert ds.num_classes == 65 and ds.labels.tolist() == [0, 3, 64, 2] and ds.lengths.tolist() == [60] * 4
    # clip 2, frame 5, joint 7 = columns 21..23 (x, y, z interleaved per joint)
    np.testing.assert_array_equal(ds.data[2, :, 5, 7, 0], clips[2, 5, 21:24])
    assert len(load_dataset("robustbenchhar-hdm05", "test", root=tmp_path)) == 2


def test_robustbenchhar_ntu_is_memory_mapped(tmp_path):
    clips = np.random.default_rng(1).normal(size=(3, 3, 60, 25, 2)).astype(np.float32)
    clips[0, :, :, :, 1] = 0.0
    clips[1, :, 50:] = 0.0
    np.savez(tmp_path / "classTrain.npz", clips=clips, classes=np.array([0, 59, 7]))
    ds = load_dataset("robustbenchhar-ntu60", "train", root=tmp_path)
    assert isinstance(ds.data, np.memmap) and ds.layout.name == "ntu25" and ds.units == "m"
    assert ds.lengths.tolist() == [60, 50, 60] and ds.class_names[0] == "drink water"
    np.testing.assert_array_equal(np.asarray(ds.data), clips)


def test_robustbenchhar_errors(tmp_path):
    np.savez(tmp_path / "classTrain.npz", clips=np.zeros((2, 60, 72), np.float32), classes=np.array([0, 1]))
    with pytest.raises(DataError, match=r"classTrain.npz: clips has shape \(2, 60, 72\), expected \(N, T, 75\)"):
        load_dataset("robustbenchhar-hdm05", "train", root=tmp_path)
    np.savez(tmp_path / "classTrain.npz", clips=np.ones((2, 3, 60, 25, 2), np.float32), classes=np.array([0, 60]))
    with pytest.raises(DataError, match="label 60, expected 0..59"):
        load_dataset("robustbenchhar-ntu60", "train", root=tmp_path)
    np.savez(tmp_path / "classTrain.npz", clips=np.ones((2, 3, 60, 25, 2), np.float32), classes=np.array([0]))
    with pytest.raises(DataError, match=r"classes has shape \(1,\)"):
        load_dataset("robustbenchhar-ntu60", "train", root=tmp_path)
    np.savez(tmp_path / "classTrain.npz", clips=np.ones((2, 3, 60, 25, 2), np.float32))
    with pytest.raises(DataError, match="no array 'classes'"):
        load_dataset("robustbenchhar-ntu60", "train", root=tmp_path)
    with pytest.raises(DataError, match="classTest.npz does not exist"):
        load_dataset("robustbenchhar-ntu60", "test", root=tmp_path)


# ---------------------------------------------------------------- pyskl


def _pyskl_file(path: Path, protocol: int = 4) -> dict:
    rng = np.random.default_rng(0)
    anns = [
        {"frame_dir": "S001C001P001R001A001", "label": 0, "keypoint": rng.normal(size=(1, 10, 25, 3)).astype(np.float16), "total_frames": 10},
        {"frame_dir": "S001C001P003R001A050", "label": np.int64(49), "keypoint": rng.normal(size=(2, 14, 25, 3)).astype(np.float16), "total_frames": 14},
        {"frame_dir": "S001C002P002R001A003", "label": 2, "keypoint": rng.normal(size=(1, 8, 25, 3)).astype(np.float16), "total_frames": 8},
        {"frame_dir": "S001C001P004R001A060", "label": 59, "keypoint": rng.normal(size=(1, 5, 25, 3)).astype(np.float16), "total_frames": 5},
    ]
    content = {"split": {"xsub_train": ["S001C001P001R001A001", "S001C002P002R001A003"], "xsub_val": ["S001C001P003R001A050", "S001C001P004R001A060"],
                         "xview_train": ["S001C002P002R001A003"], "xview_val": ["S001C001P001R001A001"]}, "annotations": anns}
    path.write_bytes(pickle.dumps(content, protocol=protocol))
    return content


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pyskl_pickle_loads_with_the_safe_unpickler(tmp_path, protocol):
    content = _pyskl_file(tmp_path / "ntu60_3danno.pkl", protocol)
    train = load_dataset("pyskl", "train", root=tmp_path / "ntu60_3danno.pkl")
    assert train.shape == (3, 14, 25, 2) and train.sample_ids == ["S001C001P001R001A001", "S001C002P002R001A003"]
    assert train.labels.tolist() == [0, 2] and train.lengths.tolist() == [10, 8] and train.num_classes == 60
    kp = content["annotations"][0]["keypoint"].astype(np.float32)  # (M, T, V, C)
    np.testing.assert_array_equal(train.data[0, :, :10, :, 0], kp[0].transpose(2, 0, 1))
    assert not train.data[0, :, 10:].any() and not train.data[0, :, :, :, 1].any()
    test = load_dataset("pyskl", "test", root=tmp_path / "ntu60_3danno.pkl")
    assert test.labels.tolist() == [49, 59] and test.data[0, :, :14, :, 1].any()
    xview = load_dataset("pyskl", "test", root=tmp_path / "ntu60_3danno.pkl", benchmark="xview")
    assert xview.sample_ids == ["S001C001P001R001A001"]


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pyskl_refuses_a_malicious_pickle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"split": {}, "annotations": [_Exploit()]}))
    with pytest.raises(DataError, match=r"evil.pkl: not a plain pyskl annotation pickle \(refusing to load global (posix|nt)\.system\)"):
        load_dataset("pyskl", "train", root=path)
    assert not (tmp_path / "pwned").exists()
    path.write_bytes(pickle.dumps({"a": _Exploit.__reduce__}))  # any non-numpy global, even harmless ones
    with pytest.raises(DataError, match="refusing to load global"):
        safe_load_pickle(path)


def test_pyskl_errors(tmp_path):
    path = tmp_path / "a.pkl"
    _pyskl_file(path)
    with pytest.raises(ConfigError, match="no split 'xset_train'"):
        load_dataset("pyskl", "train", root=path, benchmark="xset")
    with pytest.raises(LayoutMismatchError, match="has 25 joints, expected 20"):
        load_dataset("pyskl", "train", root=path, layout="kinect20")
    content = pickle.loads(path.read_bytes())
    content["annotations"][0]["total_frames"] = 11
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(DataError, match="'S001C001P001R001A001': total_frames 11 but keypoint has 10 frames"):
        load_dataset("pyskl", "train", root=path)
    path.write_bytes(pickle.dumps(content)[:100])
    with pytest.raises(DataError, match="a.pkl: damaged or truncated pickle"):
        load_dataset("pyskl", "train", root=path)
    content["annotations"][0]["total_frames"] = 10
    content["split"]["xsub_train"].append("S009C001P001R001A001")
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(DataError, match="without annotation, e.g. 'S009C001P001R001A001'"):
        load_dataset("pyskl", "train", root=path)


# ---------------------------------------------------------------- generic npz


def test_generic_npz_round_trip_file_and_folder(tmp_path):
    data = np.zeros((3, 3, 8, 25, 2), np.float32)
    data[:, :, :6] = np.random.default_rng(0).normal(size=(3, 3, 6, 25, 2))
    data[2, :, 4:] = 0.0
    save_npz(tmp_path / "train.npz", data, [0, 2, 1], "ntu25", class_names=["a", "b", "c"],
             sample_ids=["x0", "x1", "x2"], units="m", name="mine")
    ds = load_dataset("npz", "train", root=tmp_path)
    assert isinstance(ds.data, np.memmap)
    np.testing.assert_array_equal(np.asarray(ds.data), data)
    assert ds.class_names == ["a", "b", "c"] and ds.sample_ids == ["x0", "x1", "x2"]
    assert ds.lengths.tolist() == [6, 6, 4] and ds.meta["name"] == "mine" and ds.layout.name == "ntu25"
    same = load_dataset("npz", "test", root=tmp_path / "train.npz")  # a file serves whichever split is asked
    assert same.split == "test" and len(same) == 3
    save_npz(tmp_path / "bare.npz", data[:, :, :, :20, :1], [4, 0, 0], "kinect20", lengths=[8, 8, 8])
    bare = load_dataset("npz", "train", root=tmp_path / "bare.npz")
    assert bare.class_names == [f"class_{i}" for i in range(5)] and bare.sample_ids[0] == "bare:0"
    assert bare.lengths.tolist() == [8, 8, 8]


def test_generic_npz_errors(tmp_path):
    good = {"data": np.zeros((2, 3, 4, 25, 1), np.float32), "labels": np.array([0, 1]), "layout": np.array("ntu25")}
    cases = [
        ({"data": None}, "missing key\\(s\\) data"),
        ({"data": np.zeros((2, 3, 4, 25), np.float32)}, r"'data' has shape \(2, 3, 4, 25\), expected \(N, C, T, V, M\)"),
        ({"data": np.zeros((2, 3, 4, 20, 1), np.float32)}, "'data' has 20 joints but layout 'ntu25' has 25"),
        ({"data": np.zeros((2, 3, 4, 25, 1), np.int32)}, "'data' has dtype int32, expected float32"),
        ({"labels": np.array([0.0, 1.0])}, "'labels' has dtype float64"),
        ({"labels": np.array([0, 1, 2])}, r"expected \(2,\) integers"),
        ({"layout": np.array("nope")}, "unknown layout 'nope'"),
        ({"class_names": np.array(["only"])}, "label 1, expected 0..0"),
        ({"sample_ids": np.array(["a", "a"])}, "sample ids are not unique"),
        ({"lengths": np.array([4, 9])}, "has 9 valid frames, expected 1..4"),
        ({"data": np.full((2, 3, 4, 25, 1), np.inf, np.float32)}, "NaN or infinite"),
    ]
    for change, match in cases:
        arrays = {**good, **change}
        arrays = {k: v for k, v in arrays.items() if v is not None}
        np.savez(tmp_path / "f.npz", **arrays)
        with pytest.raises(DataError, match=match):
            load_dataset("npz", "train", root=tmp_path / "f.npz")
    with pytest.raises(DatasetNotPreparedError, match="must hold test.npz"):
        load_dataset("npz", "test", root=tmp_path)
    (tmp_path / "f.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="f.npz: not a readable .npz archive"):
        load_dataset("npz", "train", root=tmp_path / "f.npz")


def test_npz_member_reads_compressed_members_eagerly(tmp_path):
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.savez_compressed(tmp_path / "c.npz", a=arr)
    out = npz_member(tmp_path / "c.npz", "a")
    assert not isinstance(out, np.memmap)
    np.testing.assert_array_equal(out, arr)
