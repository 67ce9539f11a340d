"""Training recipes of the hardening defenses: PGD-AT, TRADES, Gaussian noise and exported adversarial sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import skelrobust.training as training
from hardening_helpers import learnable
from skelrobust.attack import Budget
from skelrobust.cli import main
from skelrobust.data import DATASETS, DatasetSpec
from skelrobust.errors import ConfigError
from skelrobust.recipes import TrainingRecipe, create_recipe
from skelrobust.recipes.hardening import KLDivergencePGD
from skelrobust.training import TrainConfig, train_victim
from skelrobust.victim import Victim


@pytest.fixture
def learn_dataset(register_temporarily) -> str:
    spec = DatasetSpec(name="hardening-learn", loader=learnable, description="test", layout="ntu25", num_classes=3, needs_root=False)
    return register_temporarily(DATASETS, spec)


def _cfg(dataset: str, **kw: object) -> TrainConfig:
    base = dict(victim="mlp", dataset=dataset, preset="lite", epochs=2, batch_size=8, lr=0.01, optimizer="adamw",
                weight_decay=0.0, val_fraction=0.25, build_config={"hidden": 16, "dropout": 0.0})
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_pgd_at_trains_on_examples_inside_the_budget_and_masks(tiny_victim: Victim, canonical_batch) -> None:
    x, y = canonical_batch
    recipe = create_recipe("pgd-at", eps=0.05, steps=3)
    seen: list[torch.Tensor] = []
    hook = tiny_victim.network.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    try:
        loss, logits = recipe.loss(tiny_victim.train(), x, y, torch.Generator().manual_seed(0))
    finally:
        hook.remove()
    trained_on = seen[-1]  # the last forward is the outer step (the tiny victim's adapter is the identity)
    delta = trained_on - x
    assert Budget(0.05).size(delta).max() <= 1 + 1e-5 and delta.abs().max() > 0.04  # PGD walks to the boundary
    assert (delta[x == 0] == 0).all()  # absent persons and padded frames never move
    clean = F.cross_entropy(tiny_victim(x), y)
    assert float(loss.detach()) > float(clean.detach())  # the inner maximisation raised the loss
    assert logits.shape == (4, 5) and tiny_victim.training  # train mode restored after the inner attack


def test_trades_loss_is_cross_entropy_plus_beta_kl(tiny_victim: Victim, canonical_batch) -> None:
    x, y = canonical_batch
    tiny_victim.eval()  # no dropout/BN in the tiny victim: deterministic forward passes
    g = torch.Generator().manual_seed(3)
    zero, _ = create_recipe("trades", eps=0.05, steps=2, beta=0.0).loss(tiny_victim, x, y, g)
    assert torch.allclose(zero, F.cross_entropy(tiny_victim(x), y))
    adv = KLDivergencePGD(eps=0.05, steps=2)(x, y, layout=tiny_victim.layout, model=tiny_victim,
                                             generator=torch.Generator().manual_seed(3)).adversarial
    six, _ = create_recipe("trades", eps=0.05, steps=2).loss(tiny_victim, x, y, torch.Generator().manual_seed(3))
    clean, robust = tiny_victim(x), tiny_victim(adv)
    kl = F.kl_div(F.log_softmax(robust, 1), F.softmax(clean, 1), reduction="batchmean")
    assert float(kl.detach()) > 0 and torch.allclose(six, F.cross_entropy(clean, y) + 6.0 * kl, atol=1e-5)


@pytest.mark.parametrize(
    "name,options,match",
    [("pgd-at", {"eps": 0.0}, "--eps must be a positive"), ("trades", {"eps": 0.01, "beta": -1.0}, "--beta must be"),
     ("gaussian-noise", {"sigma": -0.1}, "--sigma must be a positive"), ("mixup", {}, "has no training recipe")],
)
def test_recipes_reject_bad_options(name: str, options: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        create_recipe(name, **options)


def test_adversarial_training_selects_by_robust_accuracy_and_resumes(learn_dataset: str, tmp_path: Path, monkeypatch) -> None:
    cfg = _cfg(learn_dataset, epochs=3)
    recipe = create_recipe("pgd-at", eps=0.02, steps=2)
    straight = train_victim(cfg, tmp_path / "a", progress=False, recipe=recipe)
    assert straight["defense"]["name"] == "pgd-at" and straight["defense"]["eps"] == 0.02
    history = straight["history"]
    assert all({"val_accuracy", "val_robust_accuracy"} <= set(h) for h in history)
    best = max(history, key=lambda h: (h["val_robust_accuracy"], -h["epoch"]))
    assert straight["best_epoch"] == best["epoch"] and straight["val_robust_accuracy"] == best["val_robust_accuracy"]
    assert straight["val_accuracy"] == best["val_accuracy"]

    class Stop(Exception):
        pass

    original = training._save_last

    def save_then_stop(path, record, state, *args):  # type: ignore[no-untyped-def]
        original(path, record, state, *args)
        if state["epoch"] == 1:
            raise Stop

    monkeypatch.setattr(training, "_save_last", save_then_stop)
    with pytest.raises(Stop):
        train_victim(cfg, tmp_path / "b", progress=False, recipe=create_recipe("pgd-at", eps=0.02, steps=2))
    monkeypatch.setattr(training, "_save_last", original)
    resumed = train_victim(cfg, tmp_path / "b", progress=False, recipe=create_recipe("pgd-at", eps=0.02, steps=2))
    assert resumed["history"] == history
    with pytest.raises(ConfigError, match="differs in recipe"):
        train_victim(cfg, tmp_path / "b", progress=False, recipe=create_recipe("trades", eps=0.02, steps=2))


def test_gaussian_noise_training_records_noisy_validation(learn_dataset: str, tmp_path: Path) -> None:
    meta = train_victim(_cfg(learn_dataset, epochs=1), tmp_path, progress=False, recipe=create_recipe("gaussian-noise", sigma=0.05))
    assert meta["defense"] == {"name": "gaussian-noise", "selection": "val_noisy_accuracy", "sigma": 0.05}
    assert 0.0 <= meta["val_noisy_accuracy"] <= 1.0 and "val_noisy_accuracy" in meta["history"][0]


def test_clean_recipe_is_the_default(learn_dataset: str, tmp_path: Path) -> None:
    meta = train_victim(_cfg(learn_dataset, epochs=1), tmp_path, progress=False, recipe=TrainingRecipe())
    assert "defense" not in meta and set(meta["history"][0]) == {"epoch", "loss", "train_accuracy", "val_accuracy"}


@pytest.mark.parametrize(
    "args,match",
    [(["--defense", "gaussian-noise", "--sigma", "0"], "--sigma must be a positive noise level"),
     (["--defense", "gaussian-noise"], "needs --sigma"),
     (["--defense", "pgd-at", "--eps", "-0.01"], "--eps must be a positive budget"),
     (["--sigma", "0.1"], "--sigma applies to --defense gaussian-noise only")],
)
def test_train_cli_refuses_bad_hardening_options_with_one_line(args: list[str], match: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--victim", "stgcn", "--dataset", "synthetic", "--epochs", "1", "--out", str(out), *args])
    assert result.exit_code == 1 and match in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_train_cli_runs_trades(learn_dataset: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--victim", "mlp", "--dataset", learn_dataset, "--epochs", "1", "--batch-size", "8",
                                       "--val-fraction", "0.25", "--defense", "trades", "--eps", "0.02", "--attack-steps", "2",
                                       "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    meta = json.loads(result.stdout)
    assert meta["defense"]["name"] == "trades" and meta["defense"]["beta"] == 6.0 and meta["defense"]["steps"] == 2
    assert (out / "best.pt").is_file() and "val_robust_accuracy" in meta
