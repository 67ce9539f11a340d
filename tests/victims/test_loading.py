"""load_victim: families, user code, datasets, checkpoints, the zoo and entry points."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import skelrobust
from skelrobust import zoo
from skelrobust.data import DATASETS, DatasetSpec, SkeletonDataset
from skelrobust.errors import CheckpointError, ConfigError, LayoutMismatchError, RegistryError
from skelrobust.io import sha256_file
from skelrobust.layouts import get_layout
from skelrobust.victim import VICTIMS, VictimFamily

HERE = Path(__file__).resolve().parent
FACTORIES = HERE / "custom_factories.py"


def _tiny_loader(split: str, root: Path | None, **options: object) -> SkeletonDataset:
    g = np.random.default_rng(0 if split == "train" else 1)
    n = 6
    return SkeletonDataset(
        name="h3c-tiny",
        split=split,
        data=g.normal(size=(n, 3, 8, 20, 1)).astype(np.float32),
        labels=np.arange(n, dtype=np.int64) % 3,
        layout=get_layout("kinect20"),
        class_names=["a", "b", "c"],
        sample_ids=[f"{split}{i}" for i in range(n)],
        lengths=np.full(n, 8, dtype=np.int64),
    )


@pytest.fixture
def tiny_dataset(register_temporarily) -> str:
    """A 3-class kinect20 dataset registered only for the test (spec leaves num_classes open when asked)."""
    spec = DatasetSpec(name="h3c-tiny", loader=_tiny_loader, description="test", layout="kinect20", num_classes=3, needs_root=False)
    return register_temporarily(DATASETS, spec)


@pytest.fixture
def open_dataset(register_temporarily) -> str:
    """The same data, but the spec does not know the class count: it must be read from the test split."""
    spec = DatasetSpec(name="h3c-open", loader=_tiny_loader, description="test", layout="kinect20", num_classes=None, needs_root=False)
    return register_temporarily(DATASETS, spec)


def _x(v: int = 25, m: int = 2, n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 8, v, m, generator=torch.Generator().manual_seed(3))


def test_family_random_weights_only_on_request() -> None:
    victim = skelrobust.load_victim("mlp", num_classes=5, pretrained=False)
    assert not victim.training
    assert (victim.name, victim.preset, victim.layout.name, victim.num_classes) == ("mlp", "full", "ntu25", 5)
    assert victim(_x()).shape == (2, 5)
    with pytest.raises(CheckpointError, match=r"no pretrained weights for \('mlp', dataset None, preset 'full'\).*--checkpoint"):
        skelrobust.load_victim("mlp", num_classes=5)


def test_unknown_names_presets_and_class_counts() -> None:
    with pytest.raises(RegistryError, match="unknown victim 'nope'.*mlp"):
        skelrobust.load_victim("nope", num_classes=3)
    with pytest.raises(ConfigError, match="no preset 'huge'; presets: lite, full"):
        skelrobust.load_victim("mlp", num_classes=3, preset="huge", pretrained=False)
    with pytest.raises(ConfigError, match="pass dataset= or num_classes="):
        skelrobust.load_victim("mlp", pretrained=False)


def test_checkpoint_roundtrip_records_hash(tmp_path: Path) -> None:
    source = skelrobust.load_victim("mlp", num_classes=5, preset="lite", pretrained=False)
    path = tmp_path / "w.pt"
    torch.save({"state_dict": source.network.state_dict()}, path)
    loaded = skelrobust.load_victim("mlp", checkpoint=path, num_classes=5, preset="lite")
    assert loaded.checkpoint == str(path)
    assert loaded.checkpoint_sha256 == sha256_file(path)
    x = _x()
    torch.testing.assert_close(loaded(x), source(x))


def test_checkpoint_class_count_mismatch_is_named(tmp_path: Path) -> None:
    path = tmp_path / "w5.pt"
    torch.save(skelrobust.load_victim("mlp", num_classes=5, preset="lite", pretrained=False).network.state_dict(), path)
    with pytest.raises(CheckpointError, match=r"classifier has 5 outputs, the victim was built for num_classes=7"):
        skelrobust.load_victim("mlp", checkpoint=path, num_classes=7, preset="lite")
    with pytest.raises(CheckpointError, match=r"mis-shaped \(embed\.0\.bias: checkpoint \(64,\) vs model \(256,\)"):
        skelrobust.load_victim("mlp", checkpoint=path, num_classes=5, preset="full")


def test_dataset_supplies_layout_and_classes(tiny_dataset: str, open_dataset: str) -> None:
    for name in (tiny_dataset, open_dataset):
        victim = skelrobust.load_victim("mlp", dataset=name, pretrained=False)
        assert (victim.layout.name, victim.num_classes, victim.preset) == ("kinect20", 3, "full")
        assert victim(_x(v=20, m=1)).shape == (2, 3)
    with pytest.raises(LayoutMismatchError, match="num_classes=4 disagrees with dataset 'h3c-tiny', which has 3 classes"):
        skelrobust.load_victim("mlp", dataset=tiny_dataset, num_classes=4, pretrained=False)
    with pytest.raises(LayoutMismatchError, match="layout 'ntu25' disagrees with dataset 'h3c-tiny', whose layout is 'kinect20'"):
        skelrobust.load_victim("mlp", dataset=tiny_dataset, layout="ntu25", pretrained=False)


def test_family_layout_support_is_checked(tiny_dataset: str, register_temporarily) -> None:
    mlp = VICTIMS.get("mlp")
    register_temporarily(VICTIMS, VictimFamily(name="h3c-ntuonly", build=mlp.build, presets=("lite",), layouts=("ntu25",)))
    with pytest.raises(LayoutMismatchError, match=r"'h3c-ntuonly' does not support layout 'kinect20' \(the layout of dataset 'h3c-tiny'\); it supports ntu25"):
        skelrobust.load_victim("h3c-ntuonly", dataset=tiny_dataset, pretrained=False)


def _write_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, victim: skelrobust.Victim, **overrides: object) -> Path:
    (tmp_path / "h3c-tiny").mkdir()
    weights = tmp_path / "h3c-tiny" / "mlp-lite.pt"
    torch.save(victim.network.state_dict(), weights)
    entry = {
        "victim": "mlp", "dataset": "h3c-tiny", "preset": "lite", "file": "h3c-tiny/mlp-lite.pt",
        "sha256": sha256_file(weights), "num_classes": 3, "layout": "kinect20", "build_config": {"hidden": 16},
        "test_accuracy": 0.5,
    }
    entry.update(overrides)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"entries": [entry]}))
    monkeypatch.setattr(zoo, "MANIFEST", manifest)
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path)
    return weights


def test_zoo_entry_is_loaded_and_verified(tiny_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = skelrobust.load_victim("mlp", dataset=tiny_dataset, preset="lite", hidden=16, pretrained=False)
    weights = _write_zoo(tmp_path, monkeypatch, source)
    victim = skelrobust.load_victim("mlp", dataset=tiny_dataset, preset="lite")
    x = _x(v=20, m=1)
    torch.testing.assert_close(victim(x), source(x))
    assert victim.checkpoint_sha256 == sha256_file(weights)
    assert victim.config["hidden"] == 16
    # Same config as the entry's build_config still matches; a different one has no pretrained weights.
    skelrobust.load_victim("mlp", dataset=tiny_dataset, preset="lite", hidden=16)
    with pytest.raises(CheckpointError, match=r"no pretrained weights for .*config \{'hidden': 32\}.*shipped: mlp/h3c-tiny/lite"):
        skelrobust.load_victim("mlp", dataset=tiny_dataset, preset="lite", hidden=32)
    # pretrained=False ignores the zoo.
    fresh = skelrobust.load_victim("mlp", dataset=tiny_dataset, preset="lite", hidden=16, pretrained=False)
    assert fresh.checkpoint is None
    # The default preset for an unlisted dataset is "full", which the zoo lacks.
    with pytest.raises(CheckpointError, match="preset 'full'"):
        skelrobust.load_victim("mlp", dataset=tiny_dataset)
    with open(weights, "ab") as fh:
        fh.write(b"x")
    with pytest.raises(CheckpointError, match="corrupt"):
        skelrobust.load_victim("mlp", dataset=tiny_dataset, preset="lite")


def test_zoo_class_count_must_agree(tiny_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = skelrobust.load_victim("mlp", dataset=tiny_dataset, preset="lite", hidden=16, pretrained=False)
    _write_zoo(tmp_path, monkeypatch, source, num_classes=4)
    with pytest.raises(LayoutMismatchError, match="has 4 classes, num_classes=3 requested"):
        skelrobust.load_victim("mlp", dataset=tiny_dataset, preset="lite")


def test_custom_file_factory_is_wrapped(tiny_dataset: str, tmp_path: Path) -> None:
    victim = skelrobust.load_victim(f"{FACTORIES}:build_module", dataset=tiny_dataset, scale=2.0)
    assert (victim.layout.name, victim.num_classes, victim.config) == ("kinect20", 3, {"scale": 2.0})
    assert victim(_x(v=20, m=1)).shape == (2, 3)
    path = tmp_path / "custom.pt"
    trained = {k: torch.full_like(v, 0.5) for k, v in victim.network.state_dict().items()}
    torch.save(trained, path)
    loaded = skelrobust.load_victim(f"{FACTORIES}:build_module", checkpoint=path, num_classes=3, layout="kinect20")
    torch.testing.assert_close(loaded.network.head.weight, torch.full((3, 3), 0.5))
    assert loaded.checkpoint_sha256 == sha256_file(path)


def test_custom_module_factory_and_victim_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    victim = skelrobust.load_victim("custom_factories:build_victim", num_classes=6)
    assert (victim.name, victim.layout.name, victim.num_classes) == ("pooled", "kinect20", 6)
    with pytest.raises(LayoutMismatchError, match="expects layout 'kinect20', requested 'ntu25'"):
        skelrobust.load_victim("custom_factories:build_victim", num_classes=6, layout="ntu25")
    fixed = skelrobust.load_victim("custom_factories:build_fixed")
    assert fixed.num_classes == 3 and fixed.layout.name == "ntu25"
    with pytest.raises(LayoutMismatchError, match="has 3 classes, 5 requested"):
        skelrobust.load_victim("custom_factories:build_fixed", num_classes=5, layout="ntu25")
    with pytest.raises(ConfigError, match="is not callable"):
        skelrobust.load_victim("custom_factories:NOT_CALLABLE")
    with pytest.raises(ConfigError, match="rejected the arguments"):
        skelrobust.load_victim("custom_factories:build_fixed", depth=3)
    with pytest.raises(RegistryError, match="has no attribute 'missing'"):
        skelrobust.load_victim("custom_factories:missing")


def test_entry_point_family(monkeypatch: pytest.MonkeyPatch) -> None:
    import skelrobust.registry as registry

    mlp = VICTIMS.get("mlp")
    family = VictimFamily(name="h3c-plugin", build=mlp.build, presets=("lite",), layouts=("ntu25",))
    fake = SimpleNamespace(name="h3c-plugin", load=lambda: family)
    monkeypatch.setattr(registry, "entry_points", lambda group: [fake] if group == "skelrobust.victims" else [])
    monkeypatch.setattr(VICTIMS, "_entries", dict(VICTIMS._entries))
    monkeypatch.setattr(VICTIMS, "_loaded", False)
    victim = skelrobust.load_victim("h3c-plugin", num_classes=4, pretrained=False)
    assert victim.preset == "lite" and victim(_x()).shape == (2, 4)


def test_device_and_eval_mode() -> None:
    victim = skelrobust.load_victim("mlp", num_classes=2, preset="lite", pretrained=False, device="cpu")
    assert not victim.training and next(victim.parameters()).device.type == "cpu"


@pytest.mark.parametrize("entry", zoo.entries(), ids=lambda e: f"{e['victim']}-{e['dataset']}-{e['preset']}")
def test_shipped_zoo_entry(entry: dict) -> None:
    """Each shipped checkpoint: present, small, hash as recorded, loads by name, and still classifies."""
    from skelrobust.data import load_dataset
    from skelrobust.training import evaluate

    path = zoo.entry_path(entry)
    assert path.stat().st_size < 2 * 1024 * 1024
    assert sha256_file(path) == entry["sha256"]
    # a linear head on a briefly pretrained self-supervised encoder stays below supervised training (README: 85.5 %)
    floor = 0.80 if entry.get("protocol") == "linear-eval" else 0.85
    assert floor <= entry["test_accuracy"] <= 0.999
    assert {"command", "num_parameters", "train_seconds", "config", "val_accuracy"} <= set(entry)
    victim = skelrobust.load_victim(entry["victim"], dataset=entry["dataset"], preset=entry["preset"])
    assert (victim.num_classes, victim.layout.name, victim.checkpoint_sha256) == (entry["num_classes"], entry["layout"], entry["sha256"])
    ds = load_dataset(entry["dataset"], "test")
    idx = np.linspace(0, len(ds) - 1, 96).round().astype(np.int64)
    assert evaluate(victim, ds, 32, idx) >= entry["test_accuracy"] - 0.15


def test_shipped_self_supervised_victim_is_within_15_points_of_its_supervised_twin() -> None:
    """The lite SkeletonCLR (MoCo, then a linear head) against the supervised lite ST-GCN on the same test split."""
    ssl, supervised = zoo.find_entry("skeletonclr", "synthetic", "lite"), zoo.find_entry("stgcn", "synthetic", "lite")
    assert ssl["protocol"] == "linear-eval" and ssl["pretraining"]["command"].startswith("skelrobust pretrain --method moco")
    assert ssl["test_accuracy"] >= supervised["test_accuracy"] - 0.15
    assert ssl["pretraining"]["train_cpu_seconds"] <= 600 and ssl["pretraining"]["torch_threads"] == 1  # <= 10 min idle wall


def test_key_mismatch_is_one_line_with_counts_and_first_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A checkpoint of another architecture: one readable line; the full key lists only in the log (-v)."""
    from skelrobust.checkpoints import SHOWN_KEYS

    lite = skelrobust.load_victim("ctrgcn", num_classes=5, preset="lite", pretrained=False)
    path = tmp_path / "lite.pt"
    torch.save(lite.network.state_dict(), path)
    with caplog.at_level("INFO", logger="skelrobust.checkpoints"):
        with pytest.raises(CheckpointError) as info:
            skelrobust.load_victim("ctrgcn", checkpoint=path, num_classes=5, preset="full")
    message = str(info.value)
    assert "\n" not in message and len(message) < 800
    full = skelrobust.load_victim("ctrgcn", num_classes=5, preset="full", pretrained=False).network.state_dict()
    own = lite.network.state_dict()
    missing = sorted(set(full) - set(own))
    unexpected = sorted(set(own) - set(full))
    misshaped = sorted(k for k in set(full) & set(own) if full[k].shape != own[k].shape)
    assert f"{len(missing)} missing ({'; '.join(missing[:SHOWN_KEYS])}, +{len(missing) - SHOWN_KEYS} more)" in message
    assert f"{len(unexpected)} unexpected ({'; '.join(unexpected[:SHOWN_KEYS])}, +" in message
    assert f"{len(misshaped)} mis-shaped ({misshaped[0]}: checkpoint {tuple(own[misshaped[0]].shape)} vs model" in message
    assert f"[model {len(full)} keys, checkpoint {len(own)}]" in message and "run with -v" in message
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert all(k in logged for k in missing + unexpected + misshaped)


def test_truncated_and_foreign_checkpoints_name_their_keys(tmp_path: Path) -> None:
    victim = skelrobust.load_victim("mlp", num_classes=5, preset="lite", pretrained=False)
    state = victim.network.state_dict()
    truncated = dict(list(state.items())[:1])
    path = tmp_path / "truncated.pt"
    torch.save(truncated, path)
    with pytest.raises(CheckpointError, match=rf"{len(state) - 1} missing \(") as info:
        skelrobust.load_victim("mlp", checkpoint=path, num_classes=5, preset="lite")
    assert f"[model {len(state)} keys, checkpoint 1]" in str(info.value)
    foreign = {**state, "encoder_q.fc.weight": torch.zeros(2, 2), "queue": torch.zeros(3)}
    torch.save(foreign, path)
    with pytest.raises(CheckpointError, match=r"2 unexpected \(encoder_q\.fc\.weight; queue\)"):
        skelrobust.load_victim("mlp", checkpoint=path, num_classes=5, preset="lite")


ONE_AND_TWO_PERSON_DATASETS = ("nw-ucla", "msr-action3d", "utd-mhad", "synthetic")


@pytest.mark.parametrize("dataset", ONE_AND_TWO_PERSON_DATASETS)
def test_victims_built_for_a_dataset_take_its_shape(dataset: str) -> None:
    """Every family and preset takes the dataset's layout, joint and person counts (no --config needed)."""
    spec = DATASETS.get(dataset)
    layout = get_layout(spec.layout)
    for family in ("stgcn", "ctrgcn", "skateformer", "mlp"):
        for preset in VICTIMS.get(family).presets:
            victim = skelrobust.load_victim(family, dataset=dataset, preset=preset, pretrained=False)
            assert (victim.layout.name, victim.num_classes, victim.num_persons) == (layout.name, spec.num_classes, spec.num_persons)
            if preset == "lite":
                x = torch.randn(1, 3, 12, layout.num_joints, spec.num_persons)
                with torch.no_grad():
                    assert victim(x).shape == (1, spec.num_classes)


def test_explicit_person_count_wins_over_the_dataset() -> None:
    assert skelrobust.load_victim("ctrgcn", dataset="nw-ucla", preset="lite", pretrained=False).num_persons == 1
    two = skelrobust.load_victim("ctrgcn", dataset="nw-ucla", preset="lite", pretrained=False, num_persons=2)
    assert two.num_persons == 2 and two.network.data_bn.num_features == 2 * 20 * 3
    assert skelrobust.load_victim("ctrgcn", dataset="nw-ucla", preset="lite", pretrained=False,
                                  **{"num_persons": 2}).num_persons == 2  # as --config num_persons=2 passes it


def _trained(tmp_path: Path, **build: object) -> Path:
    """A checkpoint with its build record, as `skelrobust train` writes them (ctrgcn lite for NW-UCLA)."""
    from skelrobust.build_record import build_record, write_build_record

    victim = skelrobust.load_victim("ctrgcn", dataset="nw-ucla", preset="lite", pretrained=False, **build)
    path = tmp_path / "best.pt"
    torch.save(victim.network.state_dict(), path)
    write_build_record(path, build_record(victim, spec="ctrgcn", build_config=dict(build), dataset="nw-ucla"))
    return path


def test_build_record_rebuilds_the_trained_victim(tmp_path: Path) -> None:
    path = _trained(tmp_path, window=40)
    assert (tmp_path / "best.build.json").is_file()
    loaded = skelrobust.load_victim("ctrgcn", checkpoint=path, dataset="nw-ucla")
    assert (loaded.preset, loaded.num_persons, loaded.config["window"]) == ("lite", 1, 40)
    without_dataset = skelrobust.load_victim("ctrgcn", checkpoint=path)
    assert (without_dataset.layout.name, without_dataset.num_classes) == ("kinect20", 10)
    explicit = skelrobust.load_victim("ctrgcn", checkpoint=path, dataset="nw-ucla", window=52)
    assert explicit.config["window"] == 52  # explicit options win over the record
    with pytest.raises(CheckpointError, match=r"\d+ missing .* \[model \d+ keys, checkpoint \d+\]"):
        skelrobust.load_victim("ctrgcn", checkpoint=path, dataset="nw-ucla", preset="full")


def test_build_record_refuses_another_victim_layout_or_class_count(tmp_path: Path) -> None:
    path = _trained(tmp_path)
    with pytest.raises(CheckpointError, match=r"best\.pt \(build record best\.build\.json\) belongs to victim 'ctrgcn', not 'stgcn'; pass --victim ctrgcn"):
        skelrobust.load_victim("stgcn", checkpoint=path, dataset="nw-ucla")
    with pytest.raises(LayoutMismatchError, match=r"was trained for layout 'kinect20'; the data have layout 'msr20'"):
        skelrobust.load_victim("ctrgcn", checkpoint=path, dataset="msr-action3d")
    with pytest.raises(LayoutMismatchError, match=r"has 10 classes; the data have 7"):
        skelrobust.load_victim("ctrgcn", checkpoint=path, layout="kinect20", num_classes=7)
    (tmp_path / "best.build.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"build record .*best\.build\.json is unreadable"):
        skelrobust.load_victim("ctrgcn", checkpoint=path, dataset="nw-ucla")


def test_checkpoint_without_record_says_what_to_pass(tmp_path: Path) -> None:
    path = _trained(tmp_path)
    (tmp_path / "best.build.json").unlink()
    with pytest.raises(CheckpointError, match=r"built as preset 'full'; no build record best\.build\.json beside it: pass the --preset/--config"):
        skelrobust.load_victim("ctrgcn", checkpoint=path, dataset="nw-ucla")
    assert skelrobust.load_victim("ctrgcn", checkpoint=path, dataset="nw-ucla", preset="lite").preset == "lite"
