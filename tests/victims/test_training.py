"""Training loop, resume, validation split, augmentation and the train / eval / victims commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import skelrobust.training as training
from skelrobust.cli import main
from skelrobust.data import DATASETS, DatasetSpec, SkeletonDataset
from skelrobust.errors import ConfigError
from skelrobust.layouts import get_layout
from skelrobust.training import TrainConfig, augment, train_victim, validation_split

FACTORIES = Path(__file__).resolve().parent / "custom_factories.py"


def _learnable(split: str, root: Path | None, **options: object) -> SkeletonDataset:
    """3 classes told apart by the direction the right hand moves; 8 subjects (train 0-7, test 8-11)."""
    g = np.random.default_rng(10 if split == "train" else 11)
    subjects = np.repeat(np.arange(8) if split == "train" else np.arange(8, 12), 6)
    n = len(subjects)
    labels = np.arange(n, dtype=np.int64) % 3
    lengths = g.integers(6, 9, size=n).astype(np.int64)
    body = g.normal(scale=0.05, size=(12, 3, 1, 25))[subjects % 12] + np.array([0.0, 0.0, 3.0])[None, :, None, None]
    data = np.zeros((n, 3, 8, 25, 2), dtype=np.float32)
    t = np.linspace(0, 1, 8)
    move = np.zeros((n, 3, 8))
    move[np.arange(n), labels] = t
    frames = body + g.normal(scale=0.02, size=(n, 3, 8, 25))
    frames[:, :, :, 11] += move
    data[..., 0] = frames * (np.arange(8)[None, None, :, None] < lengths[:, None, None, None])
    return SkeletonDataset(
        name="learnable-three-class", split=split, data=data, labels=labels, layout=get_layout("ntu25"), class_names=["x", "y", "z"],
        sample_ids=[f"{split}{i}" for i in range(n)], lengths=lengths, meta={"subjects": subjects.tolist()},
    )


@pytest.fixture
def learn_dataset(register_temporarily) -> str:
    spec = DatasetSpec(name="learnable-three-class", loader=_learnable, description="test", layout="ntu25", num_classes=3, needs_root=False)
    return register_temporarily(DATASETS, spec)


def _cfg(dataset: str, **kw: object) -> TrainConfig:
    base = dict(victim="mlp", dataset=dataset, preset="lite", epochs=3, batch_size=8, lr=0.01, optimizer="adamw",
                weight_decay=0.0, val_fraction=0.25, build_config={"hidden": 16, "dropout": 0.1})
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_train_writes_best_last_and_metadata(learn_dataset: str, tmp_path: Path) -> None:
    meta = train_victim(_cfg(learn_dataset, epochs=8, lr=0.1), tmp_path, command="skelrobust train ...", progress=False)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert set(best) == {"embed.0.weight", "embed.0.bias", "embed.2.weight", "embed.2.bias", "fc.weight", "fc.bias"}
    on_disk = json.loads((tmp_path / "metadata.json").read_text())
    assert on_disk["sha256"] == meta["sha256"] and on_disk["command"] == "skelrobust train ..."
    assert meta["test_accuracy"] >= 0.75 and meta["val_accuracy"] >= 0.9  # chance: 1/3
    assert meta["history"][-1]["loss"] < 0.5 * meta["history"][0]["loss"]
    assert meta["num_parameters"] == sum(v.numel() for v in best.values())
    assert meta["validation_split"]["n_train"] + meta["validation_split"]["n_val"] == 48
    assert meta["validation_split"]["rule"].startswith("subjects")
    assert len(meta["history"]) == 8 and meta["best_epoch"] == max(
        meta["history"], key=lambda h: (h["val_accuracy"], -h["epoch"])
    )["epoch"]
    assert {"torch", "numpy", "skelrobust", "python"} <= set(meta["versions"])
    assert (meta["preset"], meta["layout"], meta["num_classes"], meta["config"]["hidden"]) == ("lite", "ntu25", 3, 16)


def test_interrupted_run_resumes_to_identical_result(learn_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(learn_dataset, rotate_deg=20.0, scale=0.1)
    straight = train_victim(cfg, tmp_path / "a", progress=False)

    class Stop(Exception):
        pass

    original = training._save_last

    def save_then_stop(path, record, state, *args):  # type: ignore[no-untyped-def]
        original(path, record, state, *args)
        if state["epoch"] == 2:
            raise Stop

    monkeypatch.setattr(training, "_save_last", save_then_stop)
    with pytest.raises(Stop):
        train_victim(cfg, tmp_path / "b", progress=False)
    assert not (tmp_path / "b" / "metadata.json").exists()
    monkeypatch.setattr(training, "_save_last", original)
    resumed = train_victim(cfg, tmp_path / "b", progress=False)
    assert resumed["history"] == straight["history"]
    a, b = (torch.load(tmp_path / d / "best.pt", weights_only=True) for d in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match=r"belongs to a different training run \(differs in seed\)"):
        train_victim(_cfg(learn_dataset, rotate_deg=20.0, scale=0.1, seed=1), tmp_path / "b", progress=False)


def test_custom_factory_trains(learn_dataset: str, tmp_path: Path) -> None:
    meta = train_victim(_cfg(learn_dataset, victim=f"{FACTORIES}:build_module", epochs=1, build_config={}), tmp_path, progress=False)
    assert meta["num_parameters"] == 12 and meta["preset"] is None
    assert set(torch.load(tmp_path / "best.pt", weights_only=True)) == {"head.weight", "head.bias"}


def test_validation_split_by_subject_and_stratified(learn_dataset: str) -> None:
    ds = _learnable("train", None)
    tr, va, rule = validation_split(ds, 0.25)
    subjects = np.asarray(ds.meta["subjects"])
    assert rule.startswith("subjects") and not set(subjects[tr]) & set(subjects[va])
    assert len(va) == 12 and len(tr) + len(va) == len(ds)
    assert np.array_equal(validation_split(ds, 0.25)[1], va)  # deterministic
    ds.meta = {}
    tr, va, rule = validation_split(ds, 0.25)
    assert rule == "stratified 0.25 per class"
    assert np.bincount(ds.labels[va]).tolist() == [4, 4, 4] and len(set(tr) | set(va)) == len(ds)


def test_augment_keeps_zeros_and_rigid_shape() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3, 6, 25, 2, generator=g) + torch.tensor([0.0, 0.0, 3.0]).view(1, 3, 1, 1, 1)
    x[:, :, 4:] = 0.0
    x[0, :, :, :, 1] = 0.0
    out = augment(x, 45.0, 0.0, torch.Generator().manual_seed(1))
    assert (out[:, :, 4:] == 0).all() and (out[0, :, :, :, 1] == 0).all()
    assert not torch.allclose(out[:, :, :4], x[:, :, :4])
    pair = lambda a: (a[:, :, :4, 0, 0] - a[:, :, :4, 7, 0]).norm(dim=1)  # noqa: E731
    torch.testing.assert_close(pair(out), pair(x))  # rotation preserves distances
    torch.testing.assert_close(out[:, 1], x[:, 1])  # yaw leaves the vertical axis alone
    scaled = augment(x, 0.0, 0.2, torch.Generator().manual_seed(1))
    ratio = pair(scaled) / pair(x)
    assert ((ratio > 0.8) & (ratio < 1.2)).all() and ratio.std() > 0


def test_train_config_validation() -> None:
    with pytest.raises(ConfigError, match="optimizer must be 'sgd' or 'adamw'"):
        TrainConfig(victim="mlp", dataset="x", optimizer="adam")
    with pytest.raises(ConfigError, match="val_fraction must be in"):
        TrainConfig(victim="mlp", dataset="x", val_fraction=1.0)


def test_cli_train_eval_and_victims(learn_dataset: str, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "run"
    args = ["train", "--victim", "mlp", "--dataset", learn_dataset, "--preset", "lite", "--epochs", "2", "--batch-size", "8",
            "--optimizer", "adamw", "--lr", "0.02", "--config", "hidden=16", "--device", "cpu", "--out", str(out), "--json"]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    meta = json.loads(res.stdout)
    assert meta["build_config"] == {"hidden": 16} and meta["command"].startswith("skelrobust")
    res = runner.invoke(main, ["eval", "--victim", "mlp", "--dataset", learn_dataset, "--preset", "lite", "--config", "hidden=16",
                               "--checkpoint", str(out / "best.pt"), "--json"])
    assert res.exit_code == 0, res.output
    ev = json.loads(res.stdout)
    assert (ev["split"], ev["n"], ev["preset"]) == ("test", 24, "lite")
    assert ev["accuracy"] == pytest.approx(meta["test_accuracy"]) and ev["checkpoint_sha256"] == meta["sha256"]
    res = runner.invoke(main, ["eval", "--victim", "mlp", "--dataset", learn_dataset])
    assert res.exit_code == 1 and "no pretrained weights for ('mlp', dataset 'learnable-three-class', preset 'full')" in res.output
    res = runner.invoke(main, ["train", "--victim", "mlp", "--dataset", learn_dataset, "--config", "oops", "--out", str(tmp_path / "x")])
    assert res.exit_code == 1 and "--config expects KEY=VALUE, got 'oops'" in res.output
    res = runner.invoke(main, ["victims", "--json"])
    listing = json.loads(res.stdout)
    mlp = next(v for v in listing["victims"] if v["name"] == "mlp")
    assert mlp["presets"] == ["lite", "full"] and "ntu25" in mlp["layouts"]
    assert isinstance(listing["pretrained"], list)


def test_finished_run_ships_to_the_zoo(learn_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from skelrobust import load_victim, zoo

    meta = train_victim(_cfg(learn_dataset, epochs=1), tmp_path / "run", command="skelrobust train X", progress=False)
    manifest = tmp_path / "zoo" / "manifest.json"
    entry = zoo.add_run(tmp_path / "run", manifest=manifest)
    assert (tmp_path / "zoo" / "learnable-three-class" / "mlp-lite.pt").is_file()
    assert json.loads((tmp_path / "zoo" / "learnable-three-class" / "mlp-lite.json").read_text())["history"] == meta["history"]
    assert entry["file"] == "learnable-three-class/mlp-lite.pt" and entry["sha256"] == meta["sha256"] and entry["command"] == "skelrobust train X"
    assert zoo.add_run(tmp_path / "run", manifest=manifest) == entry  # idempotent: one entry per (victim, dataset, preset)
    assert len(zoo.entries(manifest)) == 1
    monkeypatch.setattr(zoo, "MANIFEST", manifest)
    monkeypatch.setattr(zoo, "ZOO_DIR", manifest.parent)
    victim = load_victim("mlp", dataset=learn_dataset, preset="lite", hidden=16, dropout=0.1)
    assert victim.checkpoint_sha256 == meta["sha256"]


def test_shipped_metadata_thins_a_long_history_keeping_first_best_and_last() -> None:
    from skelrobust import zoo

    history = [{"epoch": e + 1, "val_accuracy": 0.5} for e in range(4000)]
    meta = {"history": history, "best_epoch": 1234, "sha256": "x"}
    shipped = zoo.shipped_metadata(meta)
    epochs = [row["epoch"] for row in shipped["history"]]
    assert shipped["history_stride"] == 40 and len(epochs) <= zoo.SHIPPED_HISTORY_ROWS + 3
    assert {1, 1234, 4000, 40, 80} <= set(epochs) and epochs == sorted(epochs)
    assert shipped["sha256"] == "x" and len(meta["history"]) == 4000  # the run's own record is untouched
    short = {"history": history[:100], "best_epoch": 7}
    assert zoo.shipped_metadata(short) is short
