"""NTU RGB+D: raw .skeleton reader, actor selection, preparation, CTR-GCN npz and error paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skelrobust.data import load_dataset
from skelrobust.data.ntu import (
    SampleName,
    class_names,
    missing_samples,
    prepare_ntu,
    read_skeleton_file,
    select_actors,
)
from skelrobust.errors import ConfigError, DataError, DatasetNotPreparedError


def test_read_skeleton_file_two_bodies_crlf(write_skeleton, ntu_pose, tmp_path):
    a, b = ntu_pose(0.0, 1), ntu_pose(1.0, 2)
    frames = [[("72057594037931101", a)], [("72057594037931101", a + 0.01), ("72057594037931102", b)], [], [("72057594037931102", b)]]
    path = write_skeleton(tmp_path / "S001C001P001R001A001.skeleton", frames, newline="\r\n")
    assert b"\r\n" in path.read_bytes()
    x = read_skeleton_file(path)
    assert x.dtype == np.float32 and x.shape == (2, 4, 25, 3)
    np.testing.assert_allclose(x[0, 0], a, atol=1e-6)
    np.testing.assert_allclose(x[0, 1], a + 0.01, atol=1e-6)
    np.testing.assert_allclose(x[1, 1], b, atol=1e-6)  # body IDs differing in the last digit stay distinct
    assert not x[0, 2:].any() and not x[1, 0].any() and not x[:, 2].any()


def test_read_skeleton_file_lf_matches_crlf(write_skeleton, ntu_pose, tmp_path):
    frames = [[("7", ntu_pose(0.0, t))] for t in range(3)]
    lf = read_skeleton_file(write_skeleton(tmp_path / "lf.skeleton", frames, newline="\n"))
    crlf = read_skeleton_file(write_skeleton(tmp_path / "crlf.skeleton", frames, newline="\r\n"))
    np.testing.assert_array_equal(lf, crlf)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda t: t[: len(t) // 2], "truncated"),
        (lambda t: t.replace("\n25\n", "\n24\n", 1), "has 24 joints, expected 25"),
        (lambda t: t.replace("\n25\n", "\n25\nabc ", 1), "non-numeric"),
        (lambda t: t + "1\n", "unexpected tokens"),
        (lambda t: "", "empty file"),
    ],
)
def test_read_skeleton_file_errors_name_the_file(ntu_text, ntu_pose, tmp_path, mutate, match):
    path = tmp_path / "S001C001P001R001A001.skeleton"
    text = mutate(ntu_text([[("7", ntu_pose())]] * 2, "\n"))
    path.write_text(text)
    with pytest.raises(DataError, match=match) as info:
        read_skeleton_file(path)
    assert "S001C001P001R001A001.skeleton" in str(info.value)


def test_read_skeleton_file_rejects_non_finite(write_skeleton, ntu_pose, tmp_path):
    p = ntu_pose()
    p[3, 1] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        read_skeleton_file(write_skeleton(tmp_path / "S001C001P001R001A001.skeleton", [[("7", p)]]))


def _present(joints: np.ndarray) -> np.ndarray:
    return np.abs(joints).max(axis=(2, 3)) > 0


def test_select_actors_orders_by_motion_and_packs_non_overlapping_bodies(ntu_pose):
    t = 30
    joints = np.zeros((4, t, 25, 3), np.float32)
    for f in range(t):
        joints[0, f] = ntu_pose(0.0, 0) + 0.001 * f  # E: whole clip, moves most
        if f < 15:
            joints[1, f] = ntu_pose(1.0, 1)  # C: first half, static
        else:
            joints[2, f] = ntu_pose(1.0, 2)  # D: second half, static
    joints[3, :5] = ntu_pose(2.0, 3)  # short (5 frames <= 11): noise, dropped
    seq, dropped = select_actors(joints, _present(joints))
    assert seq.shape == (3, t, 25, 2) and dropped == 0
    np.testing.assert_allclose(seq[:, :, :, 0], joints[0].transpose(2, 0, 1))
    np.testing.assert_allclose(seq[:, :15, :, 1], joints[1, :15].transpose(2, 0, 1))
    np.testing.assert_allclose(seq[:, 15:, :, 1], joints[2, 15:].transpose(2, 0, 1))


def test_select_actors_prefers_larger_motion_and_drops_spread_noise(ntu_pose):
    t = 20
    joints = np.zeros((3, t, 25, 3), np.float32)
    for f in range(t):
        joints[0, f] = ntu_pose(0.0, 0)  # static person, appears first
        joints[1, f] = ntu_pose(1.0, 1) + [0.02 * f, 0.0, 0.0]  # moving person, appears second
        wide = ntu_pose(-1.0, 2)
        wide[:, 0] *= 20  # x-range >> 0.8 * y-range in every frame: a noisy detection
        joints[2, f] = wide + 0.5 * f
    seq, _ = select_actors(joints, _present(joints))
    np.testing.assert_allclose(seq[:, :, :, 0], joints[1].transpose(2, 0, 1))  # most motion = actor 1
    np.testing.assert_allclose(seq[:, :, :, 1], joints[0].transpose(2, 0, 1))  # the noisy body is gone


def test_select_actors_drops_empty_frames():
    joints = np.zeros((1, 6, 25, 3), np.float32)
    joints[0, [0, 1, 4]] = 1.0
    seq, dropped = select_actors(joints, _present(joints))
    assert seq.shape == (3, 3, 25, 2) and dropped == 3
    assert not seq[..., 1].any()


def test_missing_lists_are_the_official_ones():
    m60, m120 = missing_samples("ntu60"), missing_samples("ntu120")
    assert len(m60) == 302 and len(m120) == 535
    assert m60 <= m120
    assert {"S001C002P005R002A008", "S017C003P020R001A059"} <= m60
    assert "S032C003P067R002A077" in m120
    assert len(class_names("ntu60")) == 60 and len(class_names("ntu120")) == 120
    assert class_names("ntu60")[0] == "drink water" and class_names("ntu120")[-1].startswith("finger-guessing")


def test_sample_name_parsing():
    s = SampleName.parse("S017C003P020R001A059")
    assert (s.setup, s.camera, s.performer, s.replication, s.action) == (17, 3, 20, 1, 59)
    with pytest.raises(DataError, match="not an NTU sample name"):
        SampleName.parse("a01_s01_e01")


@pytest.fixture
def ntu_raw(write_skeleton, ntu_pose, tmp_path) -> Path:
    raw = tmp_path / "raw"
    one = [[("1", ntu_pose(0, 0) + 0.01 * f)] for f in range(15)]
    one[7] = []  # a frame without a body is dropped
    write_skeleton(raw / "S001C001P001R001A001.skeleton", one)
    two = [[("1", ntu_pose(0, 1)), ("2", ntu_pose(1, 2) + 0.03 * f)] for f in range(20)]
    write_skeleton(raw / "sub" / "S001C002P003R001A050.skeleton", two, newline="\n")
    write_skeleton(raw / "S001C003P002R001A010.skeleton", [[("9", ntu_pose(0, 3) * (1 + 0.01 * f))] for f in range(12)])
    write_skeleton(raw / "S001C002P005R002A008.skeleton", [[("1", ntu_pose())]] * 3)  # on the missing list
    write_skeleton(raw / "S018C001P045R001A061.skeleton", [[("1", ntu_pose())]] * 3)  # NTU-120 only
    return raw


def test_prepare_ntu60_and_load_both_benchmarks(ntu_raw, tmp_path):
    out = tmp_path / "ntu60"
    meta = prepare_ntu("ntu60", ntu_raw, out, progress=False)
    assert meta["skipped"]["missing_skeleton"] == {"count": 1, "samples": ["S001C002P005R002A008"]}
    assert meta["skipped"]["not_in_variant"]["count"] == 1
    assert meta["benchmarks"] == {"xsub": {"train": 2, "test": 1}, "xview": {"train": 2, "test": 1}}
    train = load_dataset("ntu60", "train", root=out, benchmark="xsub")
    assert isinstance(train.data, np.memmap) and train.shape == (3, 300, 25, 2)
    assert train.sample_ids == ["S001C001P001R001A001", "S001C003P002R001A010"]
    assert train.labels.tolist() == [0, 9] and train.lengths.tolist() == [14, 12]
    assert train.num_classes == 60 and train.meta["skipped"]["missing_skeleton"]["count"] == 1
    test = load_dataset("ntu60", "test", root=out, benchmark="xsub")
    assert test.sample_ids == ["S001C002P003R001A050"] and test.labels.tolist() == [49]
    assert test.data[0, :, :20, :, 1].any() and not test.data[0, :, 20:].any()
    xview = load_dataset("ntu60", "test", root=out, benchmark="xview")
    assert xview.sample_ids == ["S001C001P001R001A001"]
    np.testing.assert_allclose(np.asarray(xview.data[0]), np.asarray(train.data[0]))
    raw = read_skeleton_file(ntu_raw / "S001C001P001R001A001.skeleton")
    np.testing.assert_allclose(np.asarray(train.data[0, :, 7, :, 0]), raw[0, 8].T)  # frame 7 was empty: shifted up


def test_prepare_ntu120_keeps_the_extra_setups(ntu_raw, tmp_path):
    meta = prepare_ntu("ntu120", ntu_raw, tmp_path / "ntu120", benchmarks="xset", progress=False)
    assert meta["benchmarks"] == {"xset": {"train": 1, "test": 3}}  # setup 18 (even) trains, setup 1 tests
    ds = load_dataset("ntu120", "train", root=tmp_path / "ntu120", benchmark="xset")
    assert ds.num_classes == 120 and ds.sample_ids == ["S018C001P045R001A061"] and ds.labels.tolist() == [60]
    prepare_ntu("ntu120", ntu_raw / "sub", tmp_path / "one", benchmarks="xset", progress=False)  # setup 1 only
    with pytest.raises(DataError, match="the xset train split is empty"):
        load_dataset("ntu120", "train", root=tmp_path / "one", benchmark="xset")


def test_unprepared_ntu60_says_how_to_prepare(tmp_path):
    with pytest.raises(DatasetNotPreparedError, match="skelrobust data prepare ntu60"):
        load_dataset("ntu60", "train", root=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotPreparedError, match="no meta.json.*skelrobust data prepare ntu60"):
        load_dataset("ntu60", "train", root=tmp_path / "empty")


def test_unprepared_benchmark_and_bad_options(ntu_raw, tmp_path):
    out = tmp_path / "ntu60"
    prepare_ntu("ntu60", ntu_raw, out, benchmarks=["xsub"], progress=False)
    with pytest.raises(DatasetNotPreparedError, match="benchmark 'xview' was not prepared"):
        load_dataset("ntu60", "train", root=out, benchmark="xview")
    meta = prepare_ntu("ntu60", ntu_raw, out, benchmarks=["xview"], progress=False)  # adds to the same folder
    assert set(meta["benchmarks"]) == {"xsub", "xview"}
    assert len(load_dataset("ntu60", "train", root=out, benchmark="xsub")) == 2
    assert len(load_dataset("ntu60", "train", root=out, benchmark="xview")) == 2
    with pytest.raises(ConfigError, match="no benchmark 'xset'"):
        load_dataset("ntu60", "train", root=out, benchmark="xset")
    with pytest.raises(ConfigError, match="unknown benchmark 'xview' for ntu120"):
        prepare_ntu("ntu120", ntu_raw, tmp_path / "o", benchmarks=["xview"], progress=False)


def test_prepare_errors_name_the_offending_file(write_skeleton, ntu_pose, tmp_path):
    with pytest.raises(DataError, match="no .skeleton files"):
        prepare_ntu("ntu60", tmp_path, tmp_path / "out", progress=False)
    write_skeleton(tmp_path / "raw" / "notntu.skeleton", [[("1", ntu_pose())]])
    with pytest.raises(DataError, match="'notntu' is not an NTU sample name"):
        prepare_ntu("ntu60", tmp_path / "raw", tmp_path / "out", progress=False)
    (tmp_path / "raw" / "notntu.skeleton").unlink()
    write_skeleton(tmp_path / "raw" / "S001C001P001R001A002.skeleton", [[], []])
    with pytest.raises(DataError, match="S001C001P001R001A002.skeleton: no frame holds a body"):
        prepare_ntu("ntu60", tmp_path / "raw", tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "meta.json").exists()  # a failed preparation is never marked complete


def _ctrgcn_file(path: Path, n_train: int = 3, n_test: int = 2, classes: int = 60) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = {}
    for split, n in (("train", n_train), ("test", n_test)):
        arr = rng.normal(size=(n, 300, 150)).astype(np.float32)
        arr[:, 40:] = 0.0  # 40 valid frames
        arr[:, :, 75:] = 0.0  # single actor
        x[split] = arr
    y_train = np.eye(classes)[np.arange(n_train) % classes]
    y_test = np.eye(classes)[np.arange(n_test) + 5]
    np.savez(path, x_train=x["train"], y_train=y_train, x_test=x["test"], y_test=y_test)
    return x["test"]


def test_ctrgcn_npz_is_memory_mapped_and_reshaped(tmp_path):
    x_test = _ctrgcn_file(tmp_path / "NTU60_CS.npz")
    ds = load_dataset("ntu60", "test", root=tmp_path, benchmark="xsub")
    assert ds.shape == (3, 300, 25, 2) and len(ds) == 2
    assert isinstance(ds.data.base, np.memmap) or isinstance(ds.data, np.memmap)
    assert ds.labels.tolist() == [5, 6] and ds.lengths.tolist() == [40, 40]
    # frame 3 of sample 1: joint 7 of actor 1 = columns 21..23
    np.testing.assert_allclose(ds.data[1, :, 3, 7, 0], x_test[1, 3, 21:24])
    assert not np.asarray(ds.data[:, :, :, :, 1]).any()
    direct = load_dataset("ntu60", "train", root=tmp_path / "NTU60_CS.npz")
    assert len(direct) == 3 and direct.meta["format"] == "ctrgcn-npz"
    with pytest.raises(DatasetNotPreparedError):  # xview file absent, no prepared data either
        load_dataset("ntu60", "test", root=tmp_path, benchmark="xview")


def test_ctrgcn_npz_rejects_labels_that_are_not_one_hot(tmp_path):
    path = tmp_path / "NTU60_CS.npz"
    np.savez(path, x_train=np.zeros((2, 300, 150), np.float32), y_train=np.ones((2, 60)),
             x_test=np.zeros((1, 300, 150), np.float32), y_test=np.eye(60)[:1])
    with pytest.raises(DataError, match="y_train row 0 is not one-hot"):
        load_dataset("ntu60", "train", root=path)
    np.savez(path, x_train=np.zeros((2, 300, 100), np.float32), y_train=np.eye(60)[:2])
    with pytest.raises(DataError, match=r"x_train has shape \(2, 300, 100\), expected \(N, T, 150\)"):
        load_dataset("ntu60", "train", root=path)
