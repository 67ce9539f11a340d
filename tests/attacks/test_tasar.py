"""TASAR: one backbone pass per iteration, exact Bayesian gradient, compat conventions, generic shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from skelrobust.attack import create_attack
from skelrobust.bayesian_heads import HeadConfig, head_logits, post_train
from skelrobust.data.base import SkeletonDataset
from skelrobust.errors import ConfigError
from skelrobust.layouts import get_layout
from skelrobust.victim import Victim

FAST = dict(num_samples=4, head_epochs=2, head_batch_size=16, tvar_bandwidths=6, progress=False)


class FlatNet(nn.Module):
    """Any (C, T, V, M): temporal mean and max, then an MLP (a stand-in for a custom surrogate)."""

    def __init__(self, c: int, v: int, m: int, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2 * c * v * m, 32), nn.Tanh(), nn.Linear(32, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat((x.mean(2), x.amax(2)), 1).flatten(1))


def _dataset(n: int, c: int, t: int, layout: str, m: int, classes: int, seed: int) -> SkeletonDataset:
    lay = get_layout(layout)
    g = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    data = g.normal(size=(n, c, t, lay.num_joints, m)).cumsum(axis=2).astype(np.float32) * 0.05
    data += labels[:, None, None, None, None].astype(np.float32) * 0.1
    return SkeletonDataset(
        name="tiny", split="train", data=data, labels=labels.astype(np.int64), layout=lay,
        class_names=[f"c{i}" for i in range(classes)], sample_ids=[f"tiny{seed}-{i}" for i in range(n)],
        lengths=np.full(n, t, dtype=np.int64),
    )


class CountingVictim:
    """Counts forward calls of a victim's network."""

    def __init__(self, victim: Victim) -> None:
        self.calls = 0
        victim.network.register_forward_hook(self._hook)

    def _hook(self, *_: object) -> None:
        self.calls += 1


@pytest.fixture
def prepared(tiny_victim: Victim):
    data = _dataset(40, 3, 16, "ntu25", 2, 5, seed=0)
    attack = create_attack("tasar", eps=0.05, steps=6, **FAST)
    attack.prepare(model=tiny_victim, train_data=data, layout=get_layout("ntu25"), device=torch.device("cpu"))
    return attack, tiny_victim


def test_registered_as_transfer_with_training_data() -> None:
    cls = type(create_attack("tasar", **FAST))
    assert cls.threat.value == "transfer" and cls.needs_training_data and "robustbenchhar" in cls.compat_modes


def test_one_backbone_pass_per_iteration(prepared, canonical_batch) -> None:
    attack, victim = prepared
    x, y = canonical_batch
    y = y % 5
    counter = CountingVictim(victim)
    out = attack(x, y, layout=get_layout("ntu25"), model=victim, sample_ids=[f"s{i}" for i in range(4)])
    assert counter.calls == attack.steps + 1  # one per iteration, plus one forward for the final loss
    assert out.iterations.tolist() == [attack.steps] * 4
    assert out.gradient_evaluations.tolist() == [attack.steps] * 4
    assert out.adversarial.shape == x.shape
    delta = out.adversarial - x
    assert delta.abs().max() <= 0.05 + 1e-6
    assert torch.all(delta[0:2, :, :, :, 1] == 0) and torch.all(delta[2, :, 12:] == 0)
    assert torch.isfinite(out.final_loss).all()


def test_bayesian_gradient_equals_average_of_per_sample_passes(prepared, canonical_batch) -> None:
    """One backbone pass with vectorised heads gives exactly the mean of the K x S separate-pass gradients."""
    attack, victim = prepared
    x, y = canonical_batch
    y = y % 5
    heads = attack.posterior.sample(4, 1.5, torch.Generator().manual_seed(1))
    xv = x.clone().requires_grad_(True)
    logits = head_logits(heads, victim(xv))
    ce = nn.functional.cross_entropy(logits.flatten(0, 1), y.repeat(heads.shape[0]), reduction="none")
    (fast,) = torch.autograd.grad(ce.view(heads.shape[0], -1).mean(0).sum(), xv)
    slow = torch.zeros_like(x)
    for p in range(heads.shape[0]):  # the prior code's way: a full backbone pass per head sample
        xp = x.clone().requires_grad_(True)
        loss = nn.functional.cross_entropy(head_logits(heads[p : p + 1], victim(xp))[0], y, reduction="sum")
        slow += torch.autograd.grad(loss, xp)[0] / heads.shape[0]
    assert torch.allclose(fast, slow, atol=1e-6, rtol=1e-4)


def test_lowers_surrogate_accuracy_and_is_deterministic(tiny_victim: Victim) -> None:
    data = _dataset(40, 3, 16, "ntu25", 2, 5, seed=0)
    attack = create_attack("tasar", eps=0.3, steps=10, **FAST)
    attack.prepare(model=tiny_victim, train_data=data, layout=get_layout("ntu25"), device=torch.device("cpu"))
    x = torch.from_numpy(data.data[:20])
    y = torch.from_numpy(data.labels[:20])
    with torch.no_grad():
        clean = (tiny_victim(x).argmax(1) == y).float().mean()
    out = attack(x, y, layout=data.layout, model=tiny_victim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        adv = (tiny_victim(out.adversarial).argmax(1) == y).float().mean()
    assert adv < clean
    again = attack(x, y, layout=data.layout, model=tiny_victim, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out.adversarial, again.adversarial)
    target = (y + 1) % 5
    targeted = attack(x, y, layout=data.layout, model=tiny_victim, target=target)
    with torch.no_grad():
        hit = (tiny_victim(targeted.adversarial).argmax(1) == target).float().mean()
        hit_clean = (tiny_victim(x).argmax(1) == target).float().mean()
    assert hit > hit_clean


def test_generic_shapes_batch_persons_joints_frames() -> None:
    """Batch 3, one person, 20 joints, 11 frames, 4 classes, a custom surrogate: the prior code ran only 8 x 25 x 1."""
    torch.manual_seed(0)
    victim = Victim.wrap(FlatNet(3, 20, 1, 4), layout="kinect20", num_classes=4, name="flat").eval()
    data = _dataset(24, 3, 11, "kinect20", 1, 4, seed=1)
    attack = create_attack("tasar", eps=0.02, steps=3, **FAST)
    attack.prepare(model=victim, train_data=data, layout=data.layout, device=torch.device("cpu"))
    x = torch.from_numpy(data.data[:3]).clone()
    x[1, :, 8:] = 0  # a shorter sample
    out = attack(x, torch.tensor([0, 1, 2]), layout=data.layout, model=victim)
    assert out.adversarial.shape == (3, 3, 11, 20, 1)
    assert torch.all(out.adversarial[1, :, 8:] == 0)
    assert (out.adversarial - x).abs().max() <= 0.02 + 1e-6


def test_default_step_is_sign_of_mixed_direction(prepared, canonical_batch) -> None:
    attack, victim = prepared
    x, y = canonical_batch
    one = create_attack("tasar", eps=0.05, steps=1, temporal=False, **FAST)
    one._posterior, one._surrogate_ref = attack._posterior, attack._surrogate_ref
    out = one(x, y % 5, layout=get_layout("ntu25"), model=victim)
    moved = (out.adversarial - x)[one_mask(x)]
    # eps / steps = 0.05 per coordinate, every perturbable coordinate with a non-zero gradient moves by exactly alpha
    assert torch.allclose(moved.abs()[moved != 0], torch.tensor(0.05))


def one_mask(x: torch.Tensor) -> torch.Tensor:
    present = (x != 0).any(dim=1, keepdim=True).any(dim=3, keepdim=True)
    return present.expand_as(x)


def test_compat_mode_conventions(prepared, canonical_batch) -> None:
    attack, victim = prepared
    x, y = canonical_batch
    y = y % 5
    compat = create_attack("tasar", eps=0.002, steps=4, compat="robustbenchhar", **FAST)
    compat._posterior, compat._surrogate_ref = attack._posterior, attack._surrogate_ref
    assert compat.alpha == 0.01 and attack.alpha == pytest.approx(0.05 / 6)
    with torch.no_grad():
        pred = head_logits(compat.posterior.stage1, victim(x)).sum(0).argmax(1)
    counter = CountingVictim(victim)
    out = compat(x, pred, layout=get_layout("ntu25"), model=victim)  # labels the heads get right: no early stop
    assert counter.calls == 4 + 1
    assert out.gradient_evaluations.tolist() == [8] * 4  # one forward, two backward passes per iteration
    assert (out.adversarial - x).abs().max() <= 0.002 + 1e-7
    loose = create_attack("tasar", eps=1.0, steps=1, compat="robustbenchhar", temporal=False, **FAST)
    loose._posterior, loose._surrogate_ref = attack._posterior, attack._surrogate_ref
    delta = loose(x, pred, layout=get_layout("ntu25"), model=victim).adversarial - x
    # no sign: 0.01 times a mean-|g|-normalised gradient, so coordinates move by different amounts, 0.01 on average
    assert delta[one_mask(x)].abs().unique().numel() > 10
    assert torch.allclose(delta.abs().flatten(1).mean(1), torch.full((4,), 0.01), rtol=1e-4)
    # batch-level early stop on the stage-1 heads: labels they already get wrong stop the attack at once
    stopped = compat(x, (pred + 1) % 5, layout=get_layout("ntu25"), model=victim)
    assert stopped.iterations.tolist() == [0] * 4 and torch.equal(stopped.adversarial, x)
    assert stopped.gradient_evaluations.tolist() == [0] * 4
    assert stopped.extras["tasar"]["stopped_early"]


def test_requires_prepare_and_the_same_surrogate(tiny_victim, canonical_batch) -> None:
    x, y = canonical_batch
    attack = create_attack("tasar", **FAST)
    with pytest.raises(ConfigError, match="call attack.prepare"):
        attack(x, y, layout=get_layout("ntu25"), model=tiny_victim)
    with pytest.raises(ConfigError, match="training split"):
        attack.prepare(model=tiny_victim, train_data=None, layout=get_layout("ntu25"), device=torch.device("cpu"))
    data = _dataset(20, 3, 16, "ntu25", 2, 5, seed=2)
    attack.prepare(model=tiny_victim, train_data=data, layout=data.layout, device=torch.device("cpu"))
    other = Victim.wrap(FlatNet(3, 25, 2, 5), layout="ntu25", num_classes=5)
    with pytest.raises(ConfigError, match="not the surrogate"):
        attack(x, y % 5, layout=get_layout("ntu25"), model=other)


def test_post_training_is_cached(tiny_victim, monkeypatch) -> None:
    data = _dataset(20, 3, 16, "ntu25", 2, 5, seed=4)
    config = HeadConfig(num_heads=2, epochs=1, batch_size=8)
    first = post_train(tiny_victim, data, config, progress=False)
    import skelrobust.bayesian_heads as bh

    def fail(*_: object, **__: object) -> None:
        raise AssertionError("post-training ran again despite a cached artefact")

    monkeypatch.setattr(bh, "train_heads", fail)
    second = post_train(tiny_victim, data, config, progress=False)
    assert torch.equal(first.mean, second.mean) and torch.equal(first.sqmean, second.sqmean)
    with pytest.raises(AssertionError, match="ran again"):  # another config is another key
        post_train(tiny_victim, data, HeadConfig(num_heads=2, epochs=1, batch_size=8, seed=1), progress=False)


def _bayes_grad(attack, victim, x, y, heads):
    xv = x.clone().requires_grad_(True)
    logits = head_logits(heads, victim(xv))
    ce = nn.functional.cross_entropy(logits.flatten(0, 1), y.repeat(heads.shape[0]), reduction="none")
    return torch.autograd.grad(ce.view(heads.shape[0], -1).mean(0).sum(), xv)[0] * one_mask(x)


def _normalise(g):
    return g / g.abs().flatten(1).mean(1).clamp_min(1e-20).view(-1, 1, 1, 1, 1)


def test_bayesian_gradient_accumulates_without_reset(prepared, canonical_batch) -> None:
    """Temporal off. compat: x2 = x1 + 0.01 * norm(G0 + G1), the prior code's un-reset raw S; default: sign steps
    of the accumulated normalised gradients, x2 = x1 + alpha * sign(norm(G0) + norm(G1))."""
    attack, victim = prepared
    x, y = canonical_batch
    with torch.no_grad():
        y = head_logits(attack.posterior.stage1, victim(x)).sum(0).argmax(1)  # no early stop
    for compat in ("robustbenchhar", None):
        a = create_attack("tasar", eps=1.0, steps=2, compat=compat, temporal=False, step_size=0.01, **FAST)
        a._posterior, a._surrogate_ref = attack._posterior, attack._surrogate_ref
        out = a(x, y, layout=get_layout("ntu25"), model=victim, generator=torch.Generator().manual_seed(7))
        gen = torch.Generator().manual_seed(7)
        g0 = _bayes_grad(a, victim, x, y, a.posterior.sample(4, 1.5, gen))
        x1 = x + 0.01 * (_normalise(g0) if compat else g0.sign())
        g1 = _bayes_grad(a, victim, x1, y, a.posterior.sample(4, 1.5, gen))
        x2 = x1 + 0.01 * (_normalise(g0 + g1) if compat else (_normalise(g0) + _normalise(g1)).sign())
        assert torch.allclose(out.adversarial, x2, atol=1e-5), compat
    # bayes_momentum=0: only the current iteration's Bayesian gradient, x2 = x1 + alpha * sign(G1)
    a = create_attack("tasar", eps=1.0, steps=2, temporal=False, step_size=0.01, bayes_momentum=0.0, **FAST)
    a._posterior, a._surrogate_ref = attack._posterior, attack._surrogate_ref
    out = a(x, y, layout=get_layout("ntu25"), model=victim, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(out.adversarial, x1 + 0.01 * g1.sign(), atol=1e-5)


def test_motion_term_filters_the_bayesian_gradient(prepared, canonical_batch) -> None:
    """One step, default: D = w norm(G_B) + (1 - w) norm(G_B + a1 G_B[t+1] + a2 G_B[t+2]); step alpha sign(D)."""
    from skelrobust.tvar import TVARCache, motion_gradient

    attack, victim = prepared
    x, y = canonical_batch
    y = y % 5
    a = create_attack("tasar", eps=1.0, steps=1, step_size=0.01, **FAST)
    a._posterior, a._surrogate_ref = attack._posterior, attack._surrogate_ref
    ids = [f"s{i}" for i in range(len(x))]
    out = a(x, y, layout=get_layout("ntu25"), model=victim, generator=torch.Generator().manual_seed(3), sample_ids=ids)
    g = _bayes_grad(a, victim, x, y, a.posterior.sample(4, 1.5, torch.Generator().manual_seed(3)))
    a1, a2 = TVARCache(num_bandwidths=FAST["tvar_bandwidths"], persist=False).taps(x, ids)
    total = g + motion_gradient(g, a1, a2) * one_mask(x)
    direction = 0.8 * _normalise(g) + 0.2 * _normalise(total)
    assert torch.allclose(out.adversarial, x + 0.01 * direction.sign(), atol=1e-5)


def test_step_rule_options(prepared, canonical_batch) -> None:
    attack, victim = prepared
    x, y = canonical_batch
    with pytest.raises(ConfigError, match="tasar: unknown step_rule 'adam'; expected one of sign, normalised"):
        create_attack("tasar", step_rule="adam", **FAST)
    with pytest.raises(ConfigError, match="step_rule does not apply with compat"):
        create_attack("tasar", step_rule="sign", compat="robustbenchhar", **FAST)
    a = create_attack("tasar", eps=1.0, steps=1, step_rule="normalised", step_size=0.01, temporal=False, **FAST)
    a._posterior, a._surrogate_ref = attack._posterior, attack._surrogate_ref
    delta = a(x, y % 5, layout=get_layout("ntu25"), model=victim).adversarial - x
    assert torch.allclose(delta.abs().flatten(1).mean(1), torch.full((4,), 0.01), rtol=1e-4)  # mean |step| = alpha
    assert a.config()["step_rule"] == "normalised" and a.config()["random_start"] is False


def test_posterior_diagnostics_go_with_the_extras(prepared, canonical_batch) -> None:
    attack, victim = prepared
    x, y = canonical_batch
    out = attack(x, y % 5, layout=get_layout("ntu25"), model=victim)
    diag = out.extras["tasar"]["posterior"]
    assert set(diag) >= {"swag_relative_std", "dlogit_cosine_mean", "ensemble_accuracy", "surrogate_accuracy", "collapsed"}
    assert len(diag["swag_relative_std"]) == attack.num_heads and -1 <= diag["dlogit_cosine_mean"] <= 1 + 1e-6


def test_motion_term_changes_the_default_attack(prepared, canonical_batch) -> None:
    attack, victim = prepared
    x, y = canonical_batch
    outs = []
    for temporal in (True, False):
        a = create_attack("tasar", eps=0.05, steps=3, temporal=temporal, **FAST)
        a._posterior, a._surrogate_ref = attack._posterior, attack._surrogate_ref
        outs.append(a(x, y % 5, layout=get_layout("ntu25"), model=victim, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(outs[0].adversarial, outs[1].adversarial)
