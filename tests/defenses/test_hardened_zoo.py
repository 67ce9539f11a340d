"""The hardened lite zoo: every shipped PGD-AT / TRADES checkpoint loads and reproduces its recorded accuracies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelrobust.attack import create_attack
from skelrobust.data import load_dataset
from skelrobust.defense import create_defense
from skelrobust.io import sha256_file
from skelrobust.loading import load_victim
from skelrobust.training import evaluate, predict
from skelrobust.zoo.hardened import find_hardened, hardened_entries, hardened_path

ENTRIES = hardened_entries()
IDS = [f"{e['victim']}-{e['defense']}" for e in ENTRIES]


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_hardened_checkpoint_is_found_and_keeps_its_clean_accuracy(entry: dict) -> None:
    path = hardened_path(entry)
    assert sha256_file(path) == entry["sha256"]
    victim = load_victim(entry["victim"], dataset=entry["dataset"], preset=entry["preset"])
    assert find_hardened(victim.name, victim.preset, victim.layout.name, victim.num_classes, entry["defense"]) == entry
    hardened = create_defense(entry["defense"]).wrap(victim)
    assert hardened.checkpoint_sha256 == entry["sha256"] and victim.checkpoint_sha256 != entry["sha256"]
    accuracy = evaluate(hardened.eval(), load_dataset(entry["dataset"], "test"))
    assert accuracy == pytest.approx(entry["evaluation"]["clean_accuracy_test"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_hardened_checkpoint_reproduces_its_robust_accuracy(entry: dict) -> None:
    evaluation = entry["evaluation"]
    victim = create_defense(entry["defense"]).wrap(load_victim(entry["victim"], dataset=entry["dataset"], preset=entry["preset"])).eval()
    test = load_dataset(entry["dataset"], "test")
    rows = np.sort(np.random.default_rng(evaluation["seed"]).permutation(len(test))[: evaluation["n_samples"]])
    x = torch.from_numpy(np.array(test.data[rows], dtype=np.float32))
    y = torch.from_numpy(np.asarray(test.labels)[rows]).long()
    attack = create_attack("pgd", eps=evaluation["eps"], steps=evaluation["steps"])
    adversarial = torch.cat([
        attack(x[i : i + 32], y[i : i + 32], layout=test.layout, model=victim,
               generator=torch.Generator().manual_seed(evaluation["seed"] * 1000 + i)).adversarial
        for i in range(0, len(y), 32)
    ])
    robust = float((predict(victim, adversarial.numpy(), 64) == y.numpy()).mean())
    assert robust == pytest.approx(evaluation["robust_accuracy"], abs=0.02)
