"""``train --adversarial-set``: every export format is read back, checked against the training split and mixed in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import skelrobust.export as export
from hardening_helpers import learnable
from skelrobust.cli import main
from skelrobust.data import DATASETS, DatasetSpec
from skelrobust.errors import DataError
from skelrobust.recipes import TrainingRecipe
from skelrobust.recipes.adversarial_set import AdversarialSetMixing, check_adversarial_set, read_adversarial_set


@pytest.fixture
def learn_dataset(register_temporarily) -> str:
    spec = DatasetSpec(name="hardening-learn", loader=learnable, description="test", layout="ntu25", num_classes=3, needs_root=False)
    return register_temporarily(DATASETS, spec)


def _write(fmt: str, path: Path, split: str = "train", rows: list[int] | None = None, labels: np.ndarray | None = None,
           data: np.ndarray | None = None, layout: str = "ntu25") -> Path:
    """An exported set of ``split`` samples ``rows`` (perturbed by 1 cm), written by skelrobust's own exporters."""
    ds = learnable(split, None)
    rows = rows if rows is not None else [0, 1, 2, 5]
    clean = ds.data[rows]
    adversarial = data if data is not None else clean + 0.01
    writer = {"npz": export._npz, "ctrgcn-npz": export._ctrgcn, "pyskl": export._pyskl, "robustbenchhar": export._robustbenchhar}[fmt]
    out = writer(path, adversarial=adversarial.astype(np.float32), clean=None,
                 labels=ds.labels[rows] if labels is None else labels, ids=[ds.sample_ids[i] for i in rows],
                 layout=layout, class_names=ds.class_names, lengths=ds.lengths[rows], meta={"layout": layout},
                 results={"dataset": ds.name, "attack": "pgd"}, z={"indices": np.asarray(rows)})
    return Path(out)


@pytest.mark.parametrize("fmt,name", [("npz", "adv.npz"), ("ctrgcn-npz", "adv_ctr.npz"), ("pyskl", "adv.pkl"), ("robustbenchhar", "rb")])
def test_every_export_format_reads_back_to_the_same_clips(fmt: str, name: str, tmp_path: Path) -> None:
    path = _write(fmt, tmp_path / name)
    adv = read_adversarial_set(path)
    train = learnable("train", None)
    rows = check_adversarial_set(adv, train, learnable("test", None))
    assert rows.tolist() == [0, 1, 2, 5] and adv.fmt == fmt
    np.testing.assert_allclose(adv.data, train.data[[0, 1, 2, 5]] + 0.01, atol=1e-6)
    assert adv.labels.tolist() == train.labels[[0, 1, 2, 5]].tolist()


@pytest.mark.parametrize(
    "kwargs,match",
    [({"split": "test"}, "is from the test split of 'hardening-learn'; training on it would leak the test set"),
     ({"labels": np.array([1, 1, 2, 2])}, "sample train00 has label 1, but its true label in 'hardening-learn' is 0"),
     ({"data": np.zeros((4, 3, 6, 25, 2))}, r"clips of shape \(3, 6, 25, 2\), but dataset 'hardening-learn' has"),
     ({"layout": "kinect20"}, "layout 'kinect20', but dataset 'hardening-learn' is 'ntu25'")],
)
def test_bad_sets_are_refused_with_one_line(kwargs: dict, match: str, tmp_path: Path) -> None:
    path = _write("npz", tmp_path / "bad.npz", **kwargs)
    with pytest.raises(DataError, match=match):
        check_adversarial_set(read_adversarial_set(path), learnable("train", None), learnable("test", None))


def test_an_unknown_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(DataError, match="not an exported adversarial set"):
        read_adversarial_set(path)


def test_mixing_adds_the_adversarial_share_to_each_batch(tiny_victim, tmp_path: Path) -> None:
    path = _write("npz", tmp_path / "adv.npz", rows=[0, 1, 2, 3, 4, 5])
    adv = read_adversarial_set(path)
    rows = check_adversarial_set(adv, learnable("train", None), None)
    mixing = AdversarialSetMixing(TrainingRecipe(), adv, ratio=0.5, rows=rows, excluded=np.array([4, 5]))
    seen: list[torch.Tensor] = []
    hook = tiny_victim.network.register_forward_pre_hook(lambda _m, a: seen.append(a[0]))
    x = torch.from_numpy(learnable("train", None).data[10:14].copy())
    y = torch.tensor([1, 2, 0, 1])
    try:
        _, logits = mixing.loss(tiny_victim, x, y, torch.Generator().manual_seed(0))
    finally:
        hook.remove()
    assert logits.shape == (4, 5) and seen[0].shape[0] == 8  # 4 clean + 4 adversarial (ratio 0.5)
    pool = adv.data[:4]  # clips of validation samples 4 and 5 were dropped from the mix
    assert all(any(np.allclose(c, p) for p in pool) for c in seen[0][4:].numpy())
    assert mixing.config()["adversarial_set"]["n"] == 4 and mixing.config()["adversarial_set"]["dropped_validation_samples"] == 2


def test_train_cli_mixes_a_training_set_and_refuses_a_test_set(learn_dataset: str, tmp_path: Path) -> None:
    base = ["train", "--victim", "mlp", "--dataset", learn_dataset, "--epochs", "1", "--batch-size", "8", "--val-fraction", "0.25"]
    good = _write("pyskl", tmp_path / "train.pkl", rows=list(range(12)))
    result = CliRunner().invoke(main, [*base, "--adversarial-set", str(good), "--adversarial-ratio", "0.25", "--out", str(tmp_path / "a"), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["defense"]["adversarial_set"]
    assert record["format"] == "pyskl" and record["ratio"] == 0.25 and record["n"] + record["dropped_validation_samples"] == 12
    leak = _write("npz", tmp_path / "test.npz", split="test")
    out = tmp_path / "b"
    result = CliRunner().invoke(main, [*base, "--adversarial-set", str(leak), "--out", str(out)])
    assert result.exit_code == 1 and "would leak the test set" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_run_on_the_training_split_exports_a_set_that_train_accepts(learn_dataset: str, tmp_path: Path) -> None:
    common = ["--dataset", learn_dataset]
    trained = CliRunner().invoke(main, ["train", "--victim", "mlp", *common, "--epochs", "2", "--batch-size", "8", "--val-fraction", "0.25",
                                        "--out", str(tmp_path / "clean")])
    assert trained.exit_code == 0, trained.output
    checkpoint = str(tmp_path / "clean" / "best.pt")
    run = CliRunner().invoke(main, ["run", "--attack", "pgd", "--victim", "mlp", *common, "--checkpoint", checkpoint, "--split", "train",
                                    "--selection", "all", "--eps", "0.02", "--steps", "2", "--n-samples", "8", "--output", str(tmp_path / "run"), "--quiet"])
    assert run.exit_code == 0, run.output
    assert json.loads((tmp_path / "run" / "results.json").read_text())["split"] == "train"
    exported = CliRunner().invoke(main, ["export", str(tmp_path / "run"), "--format", "npz", "--out", str(tmp_path / "adv.npz")])
    assert exported.exit_code == 0, exported.output
    result = CliRunner().invoke(main, ["train", "--victim", "mlp", *common, "--epochs", "1", "--batch-size", "8", "--val-fraction", "0.25",
                                       "--checkpoint", checkpoint, "--adversarial-set", str(tmp_path / "adv.npz"),
                                       "--out", str(tmp_path / "hardened"), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["defense"]["adversarial_set"]
    assert record["format"] == "npz" and record["n"] + record["dropped_validation_samples"] == 8
