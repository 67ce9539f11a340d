"""Train, then attack, evaluate and export the written checkpoint with no --preset or --config.

``skelrobust train`` writes ``best.build.json`` beside ``best.pt``; ``run`` and ``eval`` rebuild the same
victim from it, and victims built for a dataset take its person count and layout. Checked on a few samples
of MSR Action3D (one person, 20 joints, from the shared data folder; skipped when absent) and of the
embedded synthetic set (two persons, NTU layout), through the command line as a user runs it.

The default run covers the lite presets of the families the issue was found with; every registered family
and preset (full models included) runs with ``SKELROBUST_RUN_SLOW=1``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from skelrobust.cli import main
from skelrobust.data import DATASETS, load_dataset
from skelrobust.layouts import get_layout
from skelrobust.victim import VICTIMS

SOURCES = {"msr-action3d": "MSRAction3D", "synthetic": None}  # real data: a folder of ../shared/data
FAST = [("ctrgcn", "lite"), ("skateformer", "lite"), ("stgcn", "lite")]


def _few(name: str, root: Path | None, n_train: int = 6, n_test: int = 4):
    """A loader serving a few samples of a real dataset: two classes x 3 for training, ``n_test`` for testing."""

    def load(split: str, _root: Path | None, **options: object):
        ds = load_dataset(name, split, root=root)
        if split == "train":
            idx = np.concatenate([np.flatnonzero(ds.labels == c)[:3] for c in np.unique(ds.labels)[:2]])[:n_train]
        else:
            idx = np.arange(n_test)
        return dataclasses.replace(ds.subset(idx), name=f"{name}-few")

    return load


@pytest.fixture(params=[pytest.param("msr-action3d", marks=pytest.mark.realdata), "synthetic"])
def few_dataset(request: pytest.FixtureRequest, register_temporarily) -> str:
    """A registered few-sample copy of a real dataset, with the real spec's layout, class and person counts."""
    name = request.param
    root = request.getfixturevalue("shared_data") / SOURCES[name] if SOURCES[name] else None  # skips when absent
    spec = DATASETS.get(name)
    few = dataclasses.replace(spec, name=f"{name}-few", loader=_few(name, root), needs_root=False, prepare=None)
    return register_temporarily(DATASETS, few)


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _train_run_eval_export(victim: str, preset: str, dataset: str, tmp_path: Path) -> None:
    out = tmp_path / "train"
    meta = json.loads(_cli(
        "train", "--victim", victim, "--dataset", dataset, "--preset", preset, "--epochs", "1", "--batch-size", "6",
        "--val-fraction", "0.34", "--device", "cpu", "--out", str(out), "--json",
    ))
    record = json.loads((out / "best.build.json").read_text())
    spec = DATASETS.get(dataset)
    assert (record["victim"], record["preset"], record["layout"]) == (victim, preset, spec.layout)
    assert record["num_persons"] == spec.num_persons and record["num_classes"] == spec.num_classes
    assert set(torch.load(out / "best.pt", weights_only=True)) == _fresh_keys(record)  # a bare state dict

    evaluated = json.loads(_cli("eval", "--victim", victim, "--dataset", dataset, "--checkpoint", str(out / "best.pt"),
                                "--device", "cpu", "--json"))
    assert evaluated["preset"] == preset and evaluated["accuracy"] == pytest.approx(meta["test_accuracy"])

    run = tmp_path / "run"
    _cli("run", "--attack", "ifgsm", "--victim", victim, "--dataset", dataset, "--checkpoint", str(out / "best.pt"),
         "--eps", "0.01", "--steps", "1", "--n-samples", "2", "--batch-size", "2", "--selection", "all", "--device", "cpu",
         "--output", str(run), "--quiet", "--json")
    results = json.loads((run / "results.json").read_text())
    model = results["provenance"]["models"][victim]
    assert (model["preset"], model["layout"], model["checkpoint_sha256"]) == (preset, spec.layout, meta["sha256"])

    exported = json.loads(_cli("export", str(run), "--format", "npz", "--out", str(tmp_path / "adv.npz"), "--json"))
    with np.load(tmp_path / "adv.npz") as npz:
        assert npz["data"].shape[0] == exported["n"] == 2
        assert npz["data"].shape[3:] == (get_layout(spec.layout).num_joints, spec.num_persons)


def _fresh_keys(record: dict) -> set[str]:
    """The state-dict keys of a victim built afresh as the build record describes."""
    built = VICTIMS.get(record["victim"]).build(
        preset=record["preset"], num_classes=record["num_classes"], layout=record["layout"],
        num_persons=record["num_persons"], **record["build_config"],
    )
    return set(built.network.state_dict())


@pytest.mark.parametrize(("victim", "preset"), FAST)
def test_train_then_attack_without_preset_or_config(victim: str, preset: str, few_dataset: str, tmp_path: Path) -> None:
    _train_run_eval_export(victim, preset, few_dataset, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("victim", "preset"),
    [(e.name, p) for e in VICTIMS.entries() for p in e.obj.presets if (e.name, p) not in FAST],
)
def test_train_then_attack_every_family_and_preset(victim: str, preset: str, few_dataset: str, tmp_path: Path) -> None:
    if DATASETS.get(few_dataset).layout not in VICTIMS.get(victim).layouts:
        pytest.skip(f"{victim} does not support layout {DATASETS.get(few_dataset).layout}")
    _train_run_eval_export(victim, preset, few_dataset, tmp_path)


def test_run_takes_preset_and_config_for_a_checkpoint_without_build_record(tmp_path: Path, register_temporarily) -> None:
    """Weights from elsewhere (no build record): one line saying what to pass, then --preset/--config work."""
    spec = DATASETS.get("synthetic")
    dataset = register_temporarily(DATASETS, dataclasses.replace(spec, name="synthetic-few", loader=_few("synthetic", None)))
    victim = VICTIMS.get("ctrgcn").build(preset="lite", num_classes=spec.num_classes, layout="ntu25", num_persons=2, window=32)
    path = tmp_path / "foreign.pt"
    torch.save(victim.network.state_dict(), path)
    common = ["run", "--attack", "ifgsm", "--victim", "ctrgcn", "--dataset", dataset, "--checkpoint", str(path), "--eps", "0.01", "--steps", "1",
              "--n-samples", "2", "--batch-size", "2", "--selection", "all", "--device", "cpu", "--quiet"]
    failed = CliRunner().invoke(main, [*common, "--output", str(tmp_path / "a")])
    assert failed.exit_code == 1
    error = failed.stderr.strip()
    assert error.startswith("Error: victim 'ctrgcn': checkpoint") and "\n" not in error
    assert "no build record foreign.build.json beside it: pass the --preset/--config it was trained with" in error
    _cli(*common, "--preset", "lite", "--config", "window=32", "--output", str(tmp_path / "b"))
    model = json.loads((tmp_path / "b" / "results.json").read_text())["provenance"]["models"]["ctrgcn"]
    assert (model["preset"], model["config"]["window"]) == ("lite", 32)
