"""MSR Action3D and UTD-MHAD: the real files in ../shared/data (skipped when absent) and small written fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from skelrobust.data import load_dataset
from skelrobust.errors import DataError, DatasetNotPreparedError

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def msr(shared_data) -> dict:
    root = shared_data / "MSRAction3D"
    return {split: load_dataset("msr-action3d", split, root=root) for split in ("train", "test")}


@pytest.fixture(scope="module")
def utd(shared_data) -> dict:
    root = shared_data / "UTD-MHAD" / "Skeleton"
    return {split: load_dataset("utd-mhad", split, root=root) for split in ("train", "test")}


@pytest.fixture(scope="module")
def shared_data() -> Path:  # module-scoped twin of the conftest fixture, so the real files load once
    path = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"real data folder {path} is absent")
    return path


def test_msr_counts_split_and_skip_report(msr):
    train, test = msr["train"], msr["test"]
    assert train.meta["files"] == 567
    assert train.meta["skipped"]["samples"] == ["a13_s09_e02"]  # the all-zero file
    assert len(train) + len(test) == 567 - 1
    assert train.meta["subjects"] == [1, 3, 5, 7, 9] and test.meta["subjects"] == [2, 4, 6, 8, 10]
    counts = np.bincount(np.concatenate([train.labels, test.labels]), minlength=20)
    assert counts.min() == 20 and counts[14] == 20 and counts.max() == 30
    assert np.delete(counts, 14).min() == 26
    assert train.layout.name == "msr20" and train.units == "m" and train.shape[1:] == test.shape[1:] == (196, 20, 1)
    assert "a13_s09_e02" not in train.sample_ids + test.sample_ids


def test_msr_drops_untracked_frames_and_keeps_metres(msr):
    train = msr["train"]
    i = train.sample_ids.index("a13_s09_e03")
    assert train.lengths[i] == 196  # 936 frames, 740 of them untracked (all zero)
    valid = train.data[i, :, : train.lengths[i], :, 0]
    assert (np.abs(valid).max(axis=(0, 2)) > 0).all()
    z = train.data[:, 2, 0, :, 0]
    assert 1.5 < float(np.median(z)) < 4.0  # depth in metres


def test_msr_left_right_names_match_the_data(msr):
    """In high arm wave (right arm) the joints msr20 names *_right move; the left ones barely do."""
    ds = msr["train"]
    lay = ds.layout
    moves = {"left": [], "right": []}
    for i in np.flatnonzero(ds.labels == 0):
        seq = ds.data[i, :, : ds.lengths[i], :, 0]  # (3, T, V)
        spread = seq.std(axis=1).sum(axis=0)
        for side in moves:
            moves[side].append(spread[lay.index(f"hand_{side}")])
    assert np.median(moves["right"]) > 3 * np.median(moves["left"])


def test_utd_counts_and_split(utd):
    train, test = utd["train"], utd["test"]
    assert len(train) + len(test) == 861 and train.meta["skipped"]["count"] == 0
    assert train.meta["subjects"] == [1, 3, 5, 7] and test.meta["subjects"] == [2, 4, 6, 8]
    counts = np.bincount(np.concatenate([train.labels, test.labels]), minlength=27)
    assert sorted(np.flatnonzero(counts == 31).tolist()) == [7, 22, 26] and (np.delete(counts, [7, 22, 26]) == 32).all()
    assert train.layout.name == "utd20" and train.shape == (3, 125, 20, 1)
    assert train.lengths.min() >= 41 and max(train.lengths.max(), test.lengths.max()) == 125


def test_utd_right_hand_wave_moves_the_right_hand(utd):
    ds = utd["train"]
    rows = np.flatnonzero(ds.labels == 2)
    spread = np.stack([ds.data[i, :, : ds.lengths[i], :, 0].std(axis=1).sum(axis=0) for i in rows])
    assert np.median(spread[:, ds.layout.index("hand_right")]) > 3 * np.median(spread[:, ds.layout.index("hand_left")])


# ---------------------------------------------------------------- written fixtures (always run)


def _msr_file(folder: Path, name: str, frames: int, zero_frames: tuple[int, ...] = ()) -> Path:
    rng = np.random.default_rng(len(name))
    arr = np.concatenate([rng.normal(size=(frames, 20, 3)), rng.uniform(size=(frames, 20, 1))], axis=2)
    arr[list(zero_frames), :, :3] = 0.0
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}_skeleton3D.txt"
    np.savetxt(path, arr.reshape(-1, 4), fmt="%.6f")
    return path


def test_msr_fixture_skip_rule_and_padding(tmp_path):
    _msr_file(tmp_path, "a01_s01_e01", 5, zero_frames=(2,))
    _msr_file(tmp_path, "a20_s02_e01", 7)
    _msr_file(tmp_path, "a13_s09_e02", 3, zero_frames=(0, 1, 2))
    train = load_dataset("msr-action3d", "train", root=tmp_path)
    test = load_dataset("msr-action3d", "test", root=tmp_path)
    assert train.sample_ids == ["a01_s01_e01"] and train.lengths.tolist() == [4] and train.meta["dropped_frames"] == 1
    assert test.sample_ids == ["a20_s02_e01"] and test.labels.tolist() == [19]
    assert train.shape == test.shape == (3, 7, 20, 1)
    assert train.meta["skipped"] == {"count": 1, "samples": ["a13_s09_e02"], "rule": "all coordinates zero"}


def test_msr_fixture_errors(tmp_path):
    path = _msr_file(tmp_path, "a01_s01_e01", 2)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(DataError, match="a01_s01_e01_skeleton3D.txt: 37 joint lines is not a multiple of 20"):
        load_dataset("msr-action3d", "train", root=tmp_path)
    path.write_text("\n".join(lines[:-1] + ["1 2 3"]) + "\n")
    with pytest.raises(DataError, match="line 40 has 3 values, expected 4"):
        load_dataset("msr-action3d", "train", root=tmp_path)
    path.write_text("\n".join(lines[:-1] + ["1 nan 3 1"]) + "\n")
    with pytest.raises(DataError, match="NaN or infinite"):
        load_dataset("msr-action3d", "train", root=tmp_path)
    path.write_text("")
    with pytest.raises(DataError, match="empty file"):
        load_dataset("msr-action3d", "train", root=tmp_path)
    path.unlink()
    (tmp_path / "empty").mkdir()
    _msr_file(tmp_path, "a21_s01_e01", 2)
    with pytest.raises(DataError, match="action a21 out of range, expected a01..a20"):
        load_dataset("msr-action3d", "train", root=tmp_path)
    with pytest.raises(DatasetNotPreparedError, match="no aXX_sYY_eZZ_skeleton3D.txt files"):
        load_dataset("msr-action3d", "train", root=tmp_path / "empty")


def test_utd_fixture_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    scipy.io.savemat(tmp_path / "a3_s1_t1_skeleton.mat", {"d_skel": rng.normal(size=(20, 3, 9))})
    scipy.io.savemat(tmp_path / "a27_s2_t4_skeleton.mat", {"d_skel": rng.normal(size=(20, 3, 6))})
    train = load_dataset("utd-mhad", "train", root=tmp_path)
    assert train.labels.tolist() == [2] and train.shape == (3, 9, 20, 1)
    mat = scipy.io.loadmat(tmp_path / "a3_s1_t1_skeleton.mat")["d_skel"]
    np.testing.assert_allclose(train.data[0, :, :, :, 0], mat.transpose(1, 2, 0), rtol=1e-6)
    scipy.io.savemat(tmp_path / "a3_s1_t1_skeleton.mat", {"d_skel": rng.normal(size=(25, 3, 9))})
    with pytest.raises(DataError, match=r"a3_s1_t1_skeleton.mat: d_skel has shape \(25, 3, 9\), expected \(20, 3, T\)"):
        load_dataset("utd-mhad", "train", root=tmp_path)
    scipy.io.savemat(tmp_path / "a3_s1_t1_skeleton.mat", {"other": np.zeros(3)})
    with pytest.raises(DataError, match="no variable 'd_skel'"):
        load_dataset("utd-mhad", "train", root=tmp_path)
    (tmp_path / "a3_s1_t1_skeleton.mat").write_bytes(b"MATLAB 5.0 truncated")
    with pytest.raises(DataError, match="a3_s1_t1_skeleton.mat: cannot read MATLAB file"):
        load_dataset("utd-mhad", "train", root=tmp_path)


def test_utd_root_may_be_the_folder_above_skeleton(tmp_path):
    """A root without .mat files but with a Skeleton/ sub-folder reads the sub-folder (source says so)."""
    rng = np.random.default_rng(1)
    (tmp_path / "Skeleton").mkdir()
    scipy.io.savemat(tmp_path / "Skeleton" / "a5_s3_t2_skeleton.mat", {"d_skel": rng.normal(size=(20, 3, 4))})
    train = load_dataset("utd-mhad", "train", root=tmp_path)
    assert train.sample_ids == ["a5_s3_t2"] and train.labels.tolist() == [4] and train.shape == (3, 4, 20, 1)
    assert train.source == str(tmp_path / "Skeleton") and train.meta["subjects"] == [3]
