"""The embedded synthetic dataset: determinism, caching, statistics, realism and option validation."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from skelrobust.data import load_dataset
from skelrobust.data.formats import synthetic as fmt
from skelrobust.data import synthesis
from skelrobust.errors import ConfigError, DataError
from skelrobust.layouts import get_layout

SMALL = {"num_subjects": 4, "repetitions": 1}
#: sha256 of (data, labels, lengths) bytes of the test split of SMALL with seed 0. Changing the generator's
#: output must bump GENERATOR_VERSION and update this constant.
SMALL_TEST_SHA256 = "ae33d62c0e16aafa00f758af0a147a467660781e0c488be39b8e0c039331f78a"

SINGLE = [i for i, (_, _, _, persons) in enumerate(synthesis.ACTIONS) if persons == 1]
PAIRS = [i for i, (_, _, _, persons) in enumerate(synthesis.ACTIONS) if persons == 2]
#: Non-hand bones (child, parent) of ntu25: the hand bones are noisier, as in Kinect data.
BODY_BONES = [(c, p) for c, p in get_layout("ntu25").bones if c not in (6, 7, 10, 11, 21, 22, 23, 24)]


def _digest(ds) -> str:
    h = hashlib.sha256()
    for arr in (np.ascontiguousarray(ds.data), ds.labels, ds.lengths):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def full() -> dict:
    """Both splits at the default size (generated once per test session, then memory-mapped)."""
    return {split: load_dataset("synthetic", split=split) for split in ("train", "test")}


def test_small_set_bytes_are_pinned() -> None:
    ds = load_dataset("synthetic", split="test", **SMALL)
    assert ds.data.shape == (2 * 16, 3, 64, 25, 2)
    assert _digest(ds) == SMALL_TEST_SHA256


def test_same_seed_same_bytes_and_other_seed_differs() -> None:
    a = synthesis.generate(seed=3, split="train", **SMALL)
    b = synthesis.generate(seed=3, split="train", **SMALL)
    c = synthesis.generate(seed=4, split="train", **SMALL)
    assert a.data.tobytes() == b.data.tobytes()
    assert np.array_equal(a.lengths, b.lengths)
    assert not np.array_equal(a.data, c.data)


def test_output_is_quantised_to_the_grid() -> None:
    data = synthesis.generate(seed=0, split="test", **SMALL).data
    snapped = (np.round(data.astype(np.float64) / synthesis.QUANTUM) * synthesis.QUANTUM).astype(np.float32)
    assert np.array_equal(data, snapped)


def test_a_sample_does_not_depend_on_how_many_repetitions_are_generated() -> None:
    one = synthesis.generate(seed=0, num_subjects=4, repetitions=1, split="train")
    three = synthesis.generate(seed=0, num_subjects=4, repetitions=3, split="train")
    index = {sid: i for i, sid in enumerate(three.sample_ids)}
    for i, sid in enumerate(one.sample_ids):
        assert np.array_equal(one.data[i], three.data[index[sid]]), sid


def test_default_size_statistics(full: dict) -> None:
    train, test = full["train"], full["test"]
    assert len(train) + len(test) >= 2000
    assert train.class_names == test.class_names == synthesis.class_names()
    assert len(train.class_names) >= 14 and "hand waving" in train.class_names and "handshaking" in train.class_names
    for ds in (train, test):
        counts = np.bincount(ds.labels, minlength=ds.num_classes)
        assert counts.min() == counts.max() > 0  # balanced
        assert ds.units == "m" and ds.layout.name == "ntu25" and ds.data.dtype == np.float32
        assert isinstance(ds.data, np.memmap)
        assert ds.shape == (3, synthesis.FRAMES, 25, 2)
    subjects_train = set(train.meta["subjects"].tolist())
    subjects_test = set(test.meta["subjects"].tolist())
    assert len(subjects_train | subjects_test) >= 40
    assert not subjects_train & subjects_test
    assert subjects_train == set(train.meta["train_subjects"]) and subjects_test == set(test.meta["test_subjects"])
    partners = test.meta["partners"][np.isin(test.labels, PAIRS)]
    assert set(partners.tolist()) <= subjects_test  # partners stay in their split


def test_lengths_vary_and_padding_is_zero(full: dict) -> None:
    ds = full["test"]
    assert ds.lengths.min() >= synthesis.MIN_LENGTH and ds.lengths.max() <= synthesis.MAX_LENGTH
    assert len(np.unique(ds.lengths)) > 15
    frame = np.arange(ds.data.shape[2])
    data = np.asarray(ds.data)
    padded = frame[None, :] >= ds.lengths[:, None]
    assert not np.abs(data).max(axis=(1, 3, 4))[padded].any()
    last = data[np.arange(len(ds)), :, ds.lengths - 1, :, 0]  # last valid frame of person 0
    assert (np.abs(last).max(axis=(1, 2)) > 0).all()


def test_second_person_only_in_interactions(full: dict) -> None:
    ds = full["train"]
    data = np.asarray(ds.data)
    person1 = np.abs(data[..., 1]).max(axis=(1, 2, 3))
    assert (person1[np.isin(ds.labels, SINGLE)] == 0).all()
    assert (person1[np.isin(ds.labels, PAIRS)] > 0).all()
    frac_valid = (np.abs(data[..., 1]).max(axis=(1, 3)) > 0).sum(axis=1) / ds.lengths
    assert frac_valid[np.isin(ds.labels, PAIRS)].min() > 0.85  # only short dropouts


def _median_bone_lengths(data: np.ndarray) -> np.ndarray:
    """Median over tracked frames of each body bone of person 0: (N, bones)."""
    x = data[..., 0]  # (N, C, T, V)
    bones = np.stack([np.linalg.norm(x[:, :, :, c] - x[:, :, :, p], axis=1) for c, p in BODY_BONES], -1)
    tracked = np.abs(x).max(axis=(1, 3)) > 0  # (N, T)
    bones = np.where(tracked[..., None], bones, np.nan)
    return np.nanmedian(bones, axis=1)


def test_bone_lengths_constant_per_subject_and_differ_between_subjects(full: dict) -> None:
    ds = full["test"]
    med = _median_bone_lengths(np.asarray(ds.data))
    subjects = ds.meta["subjects"]
    per_subject = np.stack([med[subjects == s].mean(axis=0) for s in np.unique(subjects)])
    within = np.concatenate([np.abs(med[subjects == s] - med[subjects == s].mean(axis=0)) for s in np.unique(subjects)])
    assert within.max() < 0.015 and within.mean() < 0.003  # constant up to sensor noise (medians over frames)
    assert per_subject.std(axis=0).min() > 0.005  # each bone differs between subjects
    # realistic sizes: upper arm (elbow <- shoulder) and thigh (knee <- hip) in metres
    upper_arm = per_subject[:, BODY_BONES.index((9, 8))]
    thigh = per_subject[:, BODY_BONES.index((17, 16))]
    assert 0.22 < upper_arm.min() and upper_arm.max() < 0.36
    assert 0.33 < thigh.min() and thigh.max() < 0.55


def test_camera_frame_is_ntu_like(full: dict) -> None:
    ds = full["test"]
    data = np.asarray(ds.data)
    valid = np.abs(data[:, :, :, :, 0]).max(axis=(1, 3)) > 0  # (N, T) tracked frames of person 0
    head_y = data[:, 1, :, 3, 0][valid]
    foot_y = data[:, 1, :, 15, 0][valid]
    depth = data[:, 2, :, 1, 0][valid]
    assert np.mean(head_y > foot_y) > 0.99  # y is up
    assert 2.0 < depth.min() and depth.max() < 5.5  # metres in front of the camera
    yaw = ds.meta["yaw_deg"]
    assert yaw.min() < -40 and yaw.max() > 40 and np.abs(yaw).max() <= synthesis.MAX_YAW_DEG
    # at yaw 0 the subject faces the camera: the right shoulder is at larger x (the camera's left)
    near = np.abs(yaw) < 15
    sh = data[near][:, 0, :, 8, 0] - data[near][:, 0, :, 4, 0]
    assert np.median(sh[valid[near]]) > 0.2


def test_left_handed_samples_are_mirrored(full: dict) -> None:
    ds = full["train"]
    wave = ds.class_names.index("hand waving")
    data = np.asarray(ds.data)
    hands = data[ds.labels == wave][:, 1, :, :, 0]  # y of every joint, (n, T, V)
    raised_left = (hands[:, :, 7] - hands[:, :, 11]).max(axis=1) > 0.3
    left = ds.meta["left_handed"][ds.labels == wave]
    assert left.any() and (~left).any()
    assert np.array_equal(raised_left, left)


def test_tracking_dropouts_occur_inside_valid_frames(full: dict) -> None:
    ds = full["train"]
    data = np.asarray(ds.data[..., 0])
    missing = np.abs(data).max(axis=(1, 3)) == 0  # (N, T)
    inside = missing & (np.arange(data.shape[2])[None, :] < ds.lengths[:, None])
    assert 0.05 < inside.any(axis=1).mean() < 0.3
    frozen = (np.abs(np.diff(data, axis=2)).max(axis=(1, 3)) == 0) & ~missing[:, 1:] & ~missing[:, :-1]
    assert frozen.any(axis=1).mean() > 0.03


def test_sample_ids_and_meta(full: dict) -> None:
    ds = full["test"]
    assert len(set(ds.sample_ids)) == len(ds)
    first = ds.sample_ids[0]
    assert first.startswith("synth_P002_A") and first.endswith("_R001")
    meta = ds.meta
    assert meta["seed"] == 0 and meta["generator_version"] == synthesis.GENERATOR_VERSION
    assert "odd" in meta["split_rule"] and len(meta["subjects"]) == len(ds)
    ntu = meta["ntu_action_ids"]
    assert ntu[ds.class_names.index("salute")] == 38 and ntu[ds.class_names.index("handshaking")] == 58


def test_cache_is_reused_and_keyed_by_options(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SKELROBUST_HOME", str(tmp_path))
    a = load_dataset("synthetic", split="train", **SMALL)
    folder = fmt.cache_folder(0, **SMALL)
    assert folder.parent == tmp_path / "datasets" / "synthetic"
    assert folder.name.startswith(f"v{synthesis.GENERATOR_VERSION}-")
    stamp = (folder / "train" / "data.npy").stat().st_mtime_ns
    b = load_dataset("synthetic", split="train", **SMALL)
    assert (folder / "train" / "data.npy").stat().st_mtime_ns == stamp
    assert np.array_equal(a.data, b.data) and a.sample_ids == b.sample_ids
    assert not (folder / "test").exists()  # splits are generated on demand
    assert fmt.cache_folder(1, **SMALL) != folder
    assert [p.name for p in folder.iterdir()] == ["train"]  # no temporary leftovers


def test_concurrent_first_use_does_not_corrupt_the_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SKELROBUST_HOME", str(tmp_path))
    with ThreadPoolExecutor(3) as pool:
        sets = list(pool.map(lambda _: load_dataset("synthetic", split="test", **SMALL), range(3)))
    reference = synthesis.generate(seed=0, split="test", **SMALL)
    for ds in sets:
        assert np.array_equal(ds.data, reference.data)
    # a late writer that lost the race leaves the finished split in place
    folder = fmt.cache_folder(0, **SMALL)
    fmt._write_split(folder, "test", 0, SMALL["num_subjects"], SMALL["repetitions"])
    assert [p.name for p in folder.iterdir()] == ["test"]
    assert np.array_equal(load_dataset("synthetic", split="test", **SMALL).data, reference.data)


def test_corrupt_cache_is_reported(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SKELROBUST_HOME", str(tmp_path))
    load_dataset("synthetic", split="test", **SMALL)
    meta = fmt.cache_folder(0, **SMALL) / "test" / "meta.json"
    meta.write_text(json.dumps({"options": {"seed": 9}}))
    with pytest.raises(DataError, match="generated with options"):
        load_dataset("synthetic", split="test", **SMALL)
    (meta.parent / "labels.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match="delete the folder"):
        load_dataset("synthetic", split="test", **SMALL)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": -1}, "'seed' must be >= 0"),
        ({"seed": "a"}, "'seed' must be an integer"),
        ({"seed": 1.5}, "'seed' must be an integer"),
        ({"num_subjects": 1}, "'num_subjects' must be >= 2"),
        ({"repetitions": 0}, "'repetitions' must be >= 1"),
        ({"repetitions": True}, "'repetitions' must be an integer"),
        ({"subjects": 4}, "does not take option"),
    ],
)
def test_option_validation(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_dataset("synthetic", split="train", **options)


def test_unknown_split_is_rejected() -> None:
    with pytest.raises(ConfigError, match="no split 'val'"):
        load_dataset("synthetic", split="val")
    with pytest.raises(ConfigError, match="no split 'val'"):
        synthesis.generate(split="val")


def test_cache_key_follows_the_generator_source(monkeypatch) -> None:
    """An edited generator must never be served data cached by the previous one."""
    from skelrobust.data.formats import synthetic as fmt

    before = fmt.cache_key(0, 40, 4)
    monkeypatch.setattr(fmt, "generator_fingerprint", lambda: "0" * 64)
    assert fmt.cache_key(0, 40, 4) != before
    assert fmt.cache_key(0, 40, 4).startswith(f"v{fmt.synthesis.GENERATOR_VERSION}-")
