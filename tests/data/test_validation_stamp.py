"""Validation stamps: prepared folders and the synthetic cache are content-scanned once, when written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from skelrobust.data import base, load_dataset
from skelrobust.data.formats import synthetic as synth
from skelrobust.data.formats.npz import save_npz
from skelrobust.data.formats.nwucla import prepare as prepare_ucla
from skelrobust.data.ntu import prepare_ntu
from skelrobust.errors import DataError

SMALL = {"num_subjects": 4, "repetitions": 1}


@pytest.fixture
def scans(monkeypatch) -> list[str]:
    """Records the source of every full content scan (which still runs)."""
    calls: list[str] = []
    real = base.validate_content

    def counting(ds):
        calls.append(ds.source)
        real(ds)

    monkeypatch.setattr(base, "validate_content", counting)
    return calls


def _corrupt(path: Path, index: tuple, value: float) -> None:
    """Write ``value`` into a stored ``.npy`` in place (size unchanged) and move its mtime on."""
    arr = np.load(path, mmap_mode="r+")
    arr[index] = value
    arr.flush()
    del arr
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_synthetic_cache_is_scanned_once_then_trusted_until_changed(tmp_path, monkeypatch, scans) -> None:
    monkeypatch.setenv("SKELROBUST_HOME", str(tmp_path))
    first = load_dataset("synthetic", "test", **SMALL)
    assert len(scans) == 1 and first.content_checked  # generation scanned the files; the load trusted that
    where = synth.cache_folder(0, **SMALL) / "test"
    stamp = json.loads((where / "meta.json").read_text())["content_validated"]
    assert stamp["validator_version"] == base.CONTENT_VALIDATOR_VERSION
    assert stamp["files"]["data.npy"] == {"size": (where / "data.npy").stat().st_size,
                                          "mtime_ns": (where / "data.npy").stat().st_mtime_ns}
    again = load_dataset("synthetic", "test", **SMALL)
    assert len(scans) == 1 and again.content_checked
    np.testing.assert_array_equal(np.asarray(again.data), np.asarray(first.data))

    _corrupt(where / "data.npy", (2, 1, 0, 3, 0), np.nan)
    with pytest.raises(DataError, match=rf"sample {again.sample_ids[2]!r} contains NaN"):
        load_dataset("synthetic", "test", **SMALL)
    assert len(scans) == 2


def test_synthetic_cache_without_a_current_stamp_is_scanned(tmp_path, monkeypatch, scans) -> None:
    monkeypatch.setenv("SKELROBUST_HOME", str(tmp_path))
    load_dataset("synthetic", "train", **SMALL)
    meta_path = synth.cache_folder(0, **SMALL) / "train" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["content_validated"]["validator_version"] = base.CONTENT_VALIDATOR_VERSION - 1
    meta_path.write_text(json.dumps(meta))
    assert not load_dataset("synthetic", "train", **SMALL).content_checked
    del meta["content_validated"]
    meta_path.write_text(json.dumps(meta))
    assert not load_dataset("synthetic", "train", **SMALL).content_checked
    assert len(scans) == 3  # generation + both loads


@pytest.fixture
def ntu_raw(write_skeleton, ntu_pose, tmp_path) -> Path:
    raw = tmp_path / "raw"
    write_skeleton(raw / "S001C001P001R001A001.skeleton", [[("1", ntu_pose(0, 0) + 0.01 * f)] for f in range(6)])
    write_skeleton(raw / "S001C002P003R001A050.skeleton", [[("1", ntu_pose(0, 1) + 0.02 * f)] for f in range(5)])
    return raw


def test_prepared_ntu_is_scanned_at_preparation_only(ntu_raw, tmp_path, scans) -> None:
    out = tmp_path / "ntu60"
    meta = prepare_ntu("ntu60", ntu_raw, out, benchmarks="xsub", progress=False)
    assert len(scans) == 2  # xsub train + test, scanned as written
    assert sorted(meta["content_validated"]["files"]) == sorted(
        f"xsub/{s}_{f}" for s in ("train", "test") for f in ("data.npy", "labels.npy", "lengths.npy", "ids.txt")
    )
    train = load_dataset("ntu60", "train", root=out, benchmark="xsub")
    assert train.content_checked and train.sample_ids == ["S001C001P001R001A001"] and len(scans) == 2

    prepare_ntu("ntu60", ntu_raw, out, benchmarks="xview", progress=False)  # the xsub stamp entries are kept
    assert len(scans) == 4
    assert load_dataset("ntu60", "test", root=out, benchmark="xsub").content_checked
    assert load_dataset("ntu60", "train", root=out, benchmark="xview").content_checked
    assert len(scans) == 4

    _corrupt(out / "xsub" / "test_data.npy", (0, 2, 1, 4, 0), np.inf)
    with pytest.raises(DataError, match="sample 'S001C002P003R001A050' contains NaN or infinite"):
        load_dataset("ntu60", "test", root=out, benchmark="xsub")
    # a replaced lengths file changes what counts as padding: the stamp covers it too
    np.save(out / "xview" / "train_lengths.npy", np.array([4], dtype=np.int64))
    with pytest.raises(DataError, match="'S001C002P003R001A050' has non-zero coordinates after its 4 valid frames"):
        load_dataset("ntu60", "train", root=out, benchmark="xview")


def test_failed_preparation_scan_writes_no_meta(ntu_raw, tmp_path, monkeypatch) -> None:
    def reject(ds):
        raise DataError(f"sample {ds.sample_ids[0]!r} contains NaN or infinite coordinates")

    monkeypatch.setattr(base, "validate_content", reject)
    with pytest.raises(DataError, match="contains NaN"):
        prepare_ntu("ntu60", ntu_raw, tmp_path / "out", benchmarks="xsub", progress=False)
    assert not (tmp_path / "out" / "meta.json").exists()  # the folder does not count as prepared


def test_prepared_nwucla_is_trusted_until_truncated(tmp_path, scans) -> None:
    raw = tmp_path / "all_sqe"
    rng = np.random.default_rng(0)
    for name, label, frames in (("a01_s01_e00_v01", 1, 4), ("a02_s01_e00_v03", 2, 3)):
        record = {"file_name": name, "skeletons": rng.normal(size=(frames, 20, 3)).round(3).tolist(), "label": label}
        raw.mkdir(exist_ok=True)
        (raw / f"{name}.json").write_text(json.dumps(record))
    prepare_ucla(raw, tmp_path / "ucla", progress=False)
    assert len(scans) == 2
    assert load_dataset("nw-ucla", "test", root=tmp_path / "ucla").content_checked and len(scans) == 2
    data = tmp_path / "ucla" / "test_data.npy"
    data.write_bytes(data.read_bytes()[:-4])  # truncated: unreadable, never trusted
    with pytest.raises(DataError, match="unreadable array"):
        load_dataset("nw-ucla", "test", root=tmp_path / "ucla")


def test_user_files_keep_the_full_scan(tmp_path, scans) -> None:
    data = np.zeros((2, 3, 4, 25, 1), dtype=np.float32)
    data[:, :, :2] = 1.0
    save_npz(tmp_path / "set.npz", data, [0, 1], "ntu25", class_names=["a", "b"], lengths=[2, 2])
    for _ in range(2):
        assert not load_dataset("npz", "test", root=tmp_path / "set.npz").content_checked
    assert len(scans) == 2
