"""Contract sweep over every registered attack (``ATTACKS.names()``), against the tiny victim.

Each attack is built with few steps and checked for: shape and dtype, the budget (linf and l2), masks
(absent person, padding, joint / frame / person masks), the victim's train/eval flag, determinism under a
seeded generator, targeted mode (or UnsupportedError), and a behavioural effect (adversarial accuracy below
clean accuracy). Access follows each attack's threat model; attacks with ``needs_training_data`` are
prepared on a tiny random-but-valid SkeletonDataset. Attacks that build their own surrogate (threat model
``own-surrogate``) get no model: their behavioural checks are judged on the surrogate they built
(``attack.surrogate``), as a transfer attack's are judged on the surrogate it is given. Per-attack speed options go in ``FAST_OPTIONS``.
Query attacks get a fresh :class:`~skelrobust.query.QueryOracle` of ``QUERIES`` queries per sample (their
budget instead of ``steps``) and must refuse a norm they do not support with UnsupportedError.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from skelrobust.attack import ATTACKS, Attack, Masks, ThreatModel, create_attack
from skelrobust.data import SkeletonDataset
from skelrobust.errors import UnsupportedError
from skelrobust.layouts import get_layout
from skelrobust.query import QueryOracle
from skelrobust.victim import Victim

LAYOUT = get_layout("ntu25")
NAMES = ATTACKS.names()
STEPS = 5
#: Queries per sample of query attacks (their budget in place of STEPS); STRONG_QUERIES for behavioural tests.
QUERIES, STRONG_QUERIES = 40, 120

#: Options that keep an attack's test run small (e.g. fewer posterior samples); merged into every build.
FAST_OPTIONS: dict[str, dict[str, Any]] = {
    "tasar": {"num_heads": 2, "num_samples": 2, "head_epochs": 1, "tvar_bandwidths": 3, "progress": False, "cache": False},
    "bo": {"q": 8, "initial": 8, "raw_samples": 16, "refine_steps": 2, "fit_maxiter": 10},
}


class _TinyEncoder(nn.Module):
    """A fixed per-frame encoder (N, 3, T, 25, 2) -> (N, 8): the hard no-box attacks' user-given encoder."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.frame = nn.Linear(150, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        return torch.tanh(self.frame(x.permute(0, 2, 1, 3, 4).reshape(n, t, c * v * m))).mean(1)


for _name in ("s1i", "s2i", "s1mi", "s2mi", "nobox-ifgsm", "nobox-mifgsm"):
    FAST_OPTIONS[_name] = {"encoder": _TinyEncoder(), "tvar_bandwidths": 3, "progress": False, "cache": False}
FAST_OPTIONS["ssl-attacker"] = {"encoder": _TinyEncoder(), "head_epochs": 20, "progress": False, "cache": False}

#: Options for the behavioural tests (eps 0.2, 10 steps): SMART's fixed 0.01-per-frame step is too short there;
#: BASAR is a minimal-perturbation attack with no budget of its own, so it gets an l2 budget that holds its search.
STRONG_OPTIONS: dict[str, dict[str, Any]] = {"smart": {"step_size": 0.05}, "basar": {"norm": "l2", "eps": 50.0}}


def build(name: str, **kwargs: Any) -> Attack:
    options = {"steps": STEPS, "eps": 0.05, **FAST_OPTIONS.get(name, {}), **kwargs}
    norms = getattr(ATTACKS.get(name), "norms", ("linf", "l2"))
    if options.get("norm", "linf") not in norms:
        with pytest.raises(UnsupportedError, match=str(options["norm"])):
            create_attack(name, **options)
        pytest.skip(f"{name} supports only {norms}")
    return create_attack(name, **options)


@pytest.fixture(scope="module")
def train_split() -> SkeletonDataset:
    """A tiny valid ntu25 training split: 20 samples, 5 classes, 16 frames, 2 persons (second absent in half)."""
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((20, 3, 16, 25, 2)) * 0.3).astype(np.float32)
    data[::2, :, :, :, 1] = 0.0
    data[1::4, :, 12:] = 0.0
    lengths = np.where(np.arange(20) % 4 == 1, 12, 16).astype(np.int64)
    return SkeletonDataset(
        name="tiny", split="train", data=data, labels=(np.arange(20) % 5).astype(np.int64), layout=LAYOUT,
        class_names=[f"c{i}" for i in range(5)], sample_ids=[f"s{i:03d}" for i in range(20)], lengths=lengths,
    )


@pytest.fixture
def batch(tiny_victim: Victim, canonical_batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The canonical batch labelled with the tiny victim's clean predictions (clean accuracy 1)."""
    x, _ = canonical_batch
    with torch.no_grad():
        return x, tiny_victim(x).argmax(dim=1)


def attacked_model(attack: Attack, victim: nn.Module) -> nn.Module:
    """The model whose gradients the attack used: the surrogate it built (own-surrogate), else the one it got."""
    return attack.surrogate if attack.threat is ThreatModel.OWN_SURROGATE else victim


def run_attack(
    attack: Attack, victim: nn.Module, x: torch.Tensor, y: torch.Tensor, train: SkeletonDataset, *,
    target: torch.Tensor | None = None, seed: int = 0, queries: int = QUERIES,
):
    """Prepare and call ``attack`` with exactly the access its threat model grants."""
    threat = attack.threat
    model = victim if threat in (ThreatModel.WHITE_BOX, ThreatModel.TRANSFER) else None
    attack.prepare(model=model, train_data=train if attack.needs_training_data else None, layout=LAYOUT, device=x.device)
    labels = None if threat is ThreatModel.HARD_NO_BOX else y
    oracle = QueryOracle(victim, max_queries=queries, feedback=attack.feedback) if threat is ThreatModel.QUERY else None
    ids = [f"b{i}" for i in range(x.shape[0])]
    return attack(
        x, labels, layout=LAYOUT, model=model, target=target, oracle=oracle,
        generator=torch.Generator().manual_seed(seed), sample_ids=ids,
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.5)])
def test_shape_dtype_budget_and_bookkeeping(name, norm, eps, tiny_victim, batch, train_split) -> None:
    x, y = batch
    out = run_attack(build(name, norm=norm, eps=eps), tiny_victim, x, y, train_split)
    assert out.adversarial.shape == x.shape and out.adversarial.dtype == x.dtype
    delta = out.adversarial - x
    if norm == "linf":
        assert delta.abs().max() <= eps + 1e-6
    else:
        assert (delta.flatten(1).norm(dim=1) <= eps * (1 + 1e-5)).all()
    assert delta.abs().max() > 0, "the attack did not perturb anything"
    n = x.shape[0]
    for field in (out.iterations, out.gradient_evaluations, out.queries, out.final_loss):
        assert field.shape == (n,)
    if out.queries.any():
        assert (out.queries <= QUERIES).all() and (out.gradient_evaluations == 0).all()
    else:
        assert (out.iterations <= STEPS).all()


@pytest.mark.parametrize("name", NAMES)
def test_masks_are_respected(name, tiny_victim, batch, train_split) -> None:
    x, y = batch  # person 1 absent in samples 0-1, frames 12+ padded in sample 2
    out = run_attack(build(name), tiny_victim, x, y, train_split)
    delta = out.adversarial - x
    assert delta[0:2, :, :, :, 1].abs().max() == 0
    assert delta[2, :, 12:].abs().max() == 0
    joints = (0, 3, 7)
    out = run_attack(build(name, joints=joints, frames=tuple(range(8)), persons=(0,)), tiny_victim, x, y, train_split)
    moved = (out.adversarial - x).abs().amax(dim=1) > 0  # (N, T, V, M)
    allowed = Masks(joints=joints, frames=tuple(range(8)), persons=(0,)).tensor(x)[:, 0]
    assert moved.any() and not (moved & ~allowed).any()


class _FlagRecorder(nn.Module):
    """Wraps a victim and records its training flag at every forward."""

    def __init__(self, victim: nn.Module) -> None:
        super().__init__()
        self.victim = victim
        self.flags: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.flags.append(self.training)
        return self.victim(x)


@pytest.mark.parametrize("name", NAMES)
def test_train_flag_restored_and_eval_during_attack(name, tiny_victim, batch, train_split) -> None:
    x, y = batch
    attack = build(name)
    if attack.threat in (ThreatModel.HARD_NO_BOX, ThreatModel.QUERY, ThreatModel.OWN_SURROGATE):
        pytest.skip("the attack receives no model")
    model = _FlagRecorder(tiny_victim).train()
    attack.prepare(model=model, train_data=train_split if attack.needs_training_data else None, layout=LAYOUT, device=x.device)
    model.train()
    model.flags.clear()
    attack(x, y, layout=LAYOUT, model=model, generator=torch.Generator().manual_seed(0), sample_ids=[f"b{i}" for i in range(4)])
    assert model.training and tiny_victim.training
    assert model.flags and not any(model.flags)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_under_seed(name, tiny_victim, batch, train_split) -> None:
    x, y = batch
    first = run_attack(build(name), tiny_victim, x, y, train_split, seed=3)
    second = run_attack(build(name), tiny_victim, x, y, train_split, seed=3)
    assert torch.equal(first.adversarial, second.adversarial)
    assert torch.equal(first.iterations, second.iterations)


@pytest.mark.parametrize("name", NAMES)
def test_targeted_mode(name, tiny_victim, batch, train_split) -> None:
    x, y = batch
    target = (y + 1) % 5
    attack = build(name, **{"eps": 0.2, "steps": 10, **STRONG_OPTIONS.get(name, {})})
    if not attack.supports_targeted:
        with pytest.raises(UnsupportedError, match="targeted"):
            run_attack(attack, tiny_victim, x, y, train_split, target=target)
        return
    out = run_attack(attack, tiny_victim, x, y, train_split, target=target, queries=STRONG_QUERIES)
    judge = attacked_model(attack, tiny_victim)
    with torch.no_grad():
        before = judge(x).log_softmax(1).gather(1, target[:, None])
        after = judge(out.adversarial).log_softmax(1).gather(1, target[:, None])
    assert after.mean() > before.mean(), "targeted mode did not move towards the target"


@pytest.mark.parametrize("name", NAMES)
def test_adversarial_accuracy_below_clean(name, tiny_victim, batch, train_split) -> None:
    x, y = batch  # clean accuracy is 1 by construction
    attack = build(name, **{"eps": 0.2, "steps": 10, **STRONG_OPTIONS.get(name, {})})
    if attack.threat is ThreatModel.OWN_SURROGATE:  # its own surrogate's clean accuracy is not 1: its loss must rise
        out = run_attack(attack, tiny_victim, x, y, train_split)
        with torch.no_grad():
            before = torch.nn.functional.cross_entropy(attack.surrogate(x), y)
            after = torch.nn.functional.cross_entropy(attack.surrogate(out.adversarial), y)
        assert after > before, f"{name}: the loss of its own surrogate did not rise ({before:.4f} -> {after:.4f})"
        return
    for seed in range(3):  # stochastic attacks get three tries
        out = run_attack(attack, tiny_victim, x, y, train_split, seed=seed, queries=STRONG_QUERIES)
        with torch.no_grad():
            acc = (tiny_victim(out.adversarial).argmax(1) == y).float().mean()
        if acc < 1.0:
            return
    pytest.fail(f"{name}: adversarial accuracy stayed at the clean accuracy 1.0")


@pytest.mark.parametrize("name", [n for n in NAMES if ATTACKS.get(n).threat is ThreatModel.OWN_SURROGATE])
def test_own_surrogate_attacks_get_no_model_and_attack_their_own(name, tiny_victim, batch, train_split) -> None:
    from skelrobust.errors import ThreatModelError

    x, y = batch
    attack = build(name)
    with pytest.raises(ThreatModelError, match="no model"):
        attack.prepare(model=tiny_victim, train_data=train_split, layout=LAYOUT, device=x.device)
    attack.prepare(model=None, train_data=train_split, layout=LAYOUT, device=x.device)
    with pytest.raises(ThreatModelError, match="no model"):
        attack(x, y, layout=LAYOUT, model=tiny_victim)
    calls: list[bool] = []
    handle = attack.surrogate.register_forward_hook(lambda module, args, output: calls.append(module.training))
    try:
        attack(x, y, layout=LAYOUT)
    finally:
        handle.remove()
    assert len(calls) >= STEPS and not any(calls)  # it differentiated through its own surrogate, in eval mode
