"""BEAT: the energy-based head trainer, its replay buffer, the motion term and the ``beat`` defense."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from hardening_helpers import learnable
from skelrobust.cli import main
from skelrobust.data import DATASETS, DatasetSpec
from skelrobust.defense import create_defense
from skelrobust.errors import CheckpointError
from skelrobust.layouts import get_layout
from skelrobust.loading import load_victim
from skelrobust.recipes.beat import BeatConfig, BeatEnsemble, BeatTrainer, motion_loss


@pytest.fixture
def learn_dataset(register_temporarily) -> str:
    spec = DatasetSpec(name="hardening-learn", loader=learnable, description="test", layout="ntu25", num_classes=3, needs_root=False)
    return register_temporarily(DATASETS, spec)


def test_motion_loss_sees_jitter_and_bone_changes() -> None:
    layout = get_layout("ntu25")
    x = learnable("train", None).data[:2]
    x = torch.from_numpy(x.copy())
    assert torch.allclose(motion_loss(x, x, layout), torch.zeros(2))
    shifted = x + 0.05 * (x != 0)  # a rigid translation: no velocity or bone change
    assert motion_loss(x, shifted, layout).abs().max() < 1e-6
    jitter = x.clone()
    jitter[:, :, ::2, 11, 0] += 0.05  # one joint jumps every other frame: velocity, acceleration, jerk and bones change
    assert (motion_loss(x, jitter, layout) > 1e-4).all()


def test_trainer_step_updates_every_head_and_its_replay_buffer(tiny_victim, canonical_batch) -> None:
    x, y = canonical_batch
    config = BeatConfig(num_heads=2, sgld_steps=2, buffer_size=6)
    trainer = BeatTrainer(tiny_victim, tiny_victim.layout, 5, tuple(x.shape[1:]), config)
    heads, buffer = trainer.heads.clone(), trainer.buffer.clone()
    losses = trainer.step(x, y)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert (trainer.heads != heads).any(dim=1).all()  # both heads moved
    changed = (trainer.buffer != buffer).flatten(2).any(dim=2)  # (heads, slots) written back
    assert changed.any(dim=1).all()
    assert not any(p.requires_grad for p in tiny_victim.parameters())  # the base stays frozen
    ensemble = BeatEnsemble(tiny_victim, trainer.heads)
    assert ensemble(x).shape == (4, 5)


def test_train_beat_needs_a_base_and_the_defense_checks_it(learn_dataset: str, tmp_path: Path) -> None:
    base = ["--victim", "mlp", "--dataset", learn_dataset, "--batch-size", "8", "--val-fraction", "0.25", "--config", "hidden=16"]
    missing = CliRunner().invoke(main, ["train", *base, "--defense", "beat", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 1 and "base checkpoint" in missing.output and len(missing.output.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    clean = CliRunner().invoke(main, ["train", *base, "--epochs", "2", "--out", str(tmp_path / "clean")])
    assert clean.exit_code == 0, clean.output
    result = CliRunner().invoke(main, ["train", *base, "--epochs", "1", "--defense", "beat", "--heads", "2",
                                       "--checkpoint", str(tmp_path / "clean" / "best.pt"), "--out", str(tmp_path / "beat"), "--json"])
    assert result.exit_code == 0, result.output
    meta = json.loads(result.stdout)
    assert meta["defense"]["name"] == "beat" and meta["defense"]["num_heads"] == 2 and 0 <= meta["test_accuracy"] <= 1
    victim = load_victim("mlp", checkpoint=tmp_path / "clean" / "best.pt", dataset=learn_dataset, hidden=16)
    defended = create_defense("beat", heads=meta["heads_file"]).wrap(victim)
    x = torch.from_numpy(learnable("test", None).data[:4].copy())
    assert defended(x).shape == (4, 3)
    other = load_victim("mlp", dataset=learn_dataset, pretrained=False, hidden=16)
    with pytest.raises(CheckpointError, match="post-trained over other base weights"):
        create_defense("beat", heads=meta["heads_file"]).wrap(other)
