"""Motion constraints: bone-length projection/penalty, temporal low-pass projection/acceleration penalty."""

from __future__ import annotations

import pytest
import torch

from skelrobust.attack import Masks, create_attack
from skelrobust.constraints import BoneLengthConstraint, SmoothnessConstraint
from skelrobust.errors import ConfigError
from skelrobust.layouts import get_layout
from skelrobust.metrics import imperceptibility

NTU = get_layout("ntu25")


@pytest.fixture
def clip() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, delta, mask): 3 samples (N, 3, 24, 25, 2); person 1 absent in 0, frames 18+ padded in 1."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 3, 24, 25, 2, generator=g) * 0.3
    x[0, :, :, :, 1] = 0.0
    x[1, :, 18:] = 0.0
    mask = Masks().tensor(x)
    delta = torch.randn(x.shape, generator=g) * 0.02 * mask
    return x, delta, mask


def test_bone_projection_restores_clean_lengths_and_keeps_invalid_entries(clip) -> None:
    x, delta, mask = clip
    projected = BoneLengthConstraint().project(delta, x, NTU, mask=mask)
    m = imperceptibility(x, x + projected, NTU)
    assert m["bone_length_abs_error"].max() < 1e-6
    assert imperceptibility(x, x + delta, NTU)["bone_length_abs_error"].min() > 1e-3
    assert projected[0, :, :, :, 1].abs().max() == 0 and projected[1, :, 18:].abs().max() == 0
    # the root keeps its adversarial position; a projection of a projection changes nothing
    assert torch.allclose(projected[:, :, :, NTU.root], delta[:, :, :, NTU.root], atol=1e-7)
    again = BoneLengthConstraint().project(projected, x, NTU, mask=mask)
    assert torch.allclose(again, projected, atol=1e-6)


def test_bone_projection_respects_joint_mask_and_handles_degenerate_direction(clip) -> None:
    x, delta, _ = clip
    mask = Masks(joints=(5, 6, 7)).tensor(x)  # left elbow, wrist, hand; their parent (shoulder) is fixed
    projected = BoneLengthConstraint().project(delta * mask, x, NTU, mask=mask)
    moved = projected.abs().amax(dim=1, keepdim=True) > 0
    assert moved.any() and not (moved & ~mask).any()
    adv = x + projected
    bones = [(5, 4), (6, 5), (7, 6)]
    for child, parent in bones:  # the moved chain keeps its bone lengths from the fixed shoulder outwards
        clean = (x[..., child, :] - x[..., parent, :]).norm(dim=1)
        new = (adv[..., child, :] - adv[..., parent, :]).norm(dim=1)
        assert torch.allclose(new, clean, atol=1e-5)
    # a child pushed exactly onto its parent takes the clean bone direction
    d = torch.zeros_like(x)
    d[:, :, :, 1] = x[:, :, :, 0] - x[:, :, :, 1]  # spine_mid onto spine_base
    out = BoneLengthConstraint().project(d * Masks().tensor(x), x, NTU)
    assert torch.allclose(out[:, :, :, 1], torch.zeros_like(out[:, :, :, 1]), atol=1e-6)


def test_bone_penalty_values_and_gradient(clip) -> None:
    x, delta, _ = clip
    c = BoneLengthConstraint("penalty", weight=2.0)
    assert torch.allclose(c.penalty(x, x, NTU), torch.zeros(3), atol=1e-9)
    # scaling the whole skeleton about the root by (1 + s) changes every bone length by s |B|
    root = x[:, :, :, NTU.root : NTU.root + 1]
    scaled = (root + (x - root) * 1.1) * (x != 0)
    lengths = torch.stack([(x[:, :, :, j] - x[:, :, :, p]).norm(dim=1) for j, p in NTU.bones], dim=2)  # (N, T, E, M)
    valid = (x != 0).any(dim=1).any(dim=2).unsqueeze(2).float()
    expected = 2.0 * ((0.1 * lengths) ** 2 * valid).flatten(1).sum(1) / (valid.flatten(1).sum(1) * len(NTU.bones))
    assert torch.allclose(c.penalty(scaled, x, NTU), expected, rtol=1e-4)
    adv = (x + delta).requires_grad_(True)
    c.penalty(adv, x, NTU).sum().backward()
    assert torch.isfinite(adv.grad).all() and adv.grad.abs().sum() > 0
    assert BoneLengthConstraint("project").penalty(adv, x, NTU).abs().sum() == 0
    assert torch.equal(BoneLengthConstraint("penalty").project(delta, x, NTU), delta)


def test_lowpass_is_an_idempotent_projection_on_valid_frames(clip) -> None:
    x, delta, mask = clip
    c = SmoothnessConstraint("lowpass", cutoff=0.25)
    p = c.project(delta, x, NTU, mask=mask)
    assert torch.allclose(c.project(p, x, NTU, mask=mask), p, atol=1e-6)
    assert p[0, :, :, :, 1].abs().max() == 0 and p[1, :, 18:].abs().max() == 0
    # orthogonal: the residual is orthogonal to the kept part and the norm does not grow
    assert abs(float((p * (delta - p)).sum())) < 1e-4
    assert (p.flatten(1).norm(dim=1) <= delta.flatten(1).norm(dim=1) + 1e-6).all()
    before = imperceptibility(x, x + delta, NTU)["acceleration_deviation"]
    after = imperceptibility(x, x + p, NTU)["acceleration_deviation"]
    assert (after < 0.2 * before).all()
    # a perturbation constant in time passes unchanged; cutoff 1 keeps everything
    const = (torch.ones(1, 3, 1, 25, 2) * 0.01).expand_as(x) * mask
    assert torch.allclose(c.project(const, x, NTU, mask=mask), const, atol=1e-6)
    assert torch.allclose(SmoothnessConstraint(cutoff=1.0).project(delta, x, NTU, mask=mask), delta, atol=1e-5)


def test_smoothness_penalty_value(clip) -> None:
    x, _, mask = clip
    c = SmoothnessConstraint("penalty", weight=3.0)
    ramp = torch.arange(24, dtype=torch.float32).view(1, 1, 24, 1, 1) * 0.01 * mask  # constant velocity: no acceleration
    assert torch.allclose(c.penalty(x + ramp, x, NTU)[[0, 2]], torch.zeros(2), atol=1e-9)
    bump = torch.zeros_like(x)
    bump[2, 0, 10, 4, 0] = 0.1  # one joint coordinate in one frame: second differences 0.1, -0.2, 0.1
    expected = 3.0 * (0.01 + 0.04 + 0.01) / (22 * 2 * 25)
    assert c.penalty(x + bump, x, NTU)[2].item() == pytest.approx(expected, rel=1e-4)


def test_attack_with_constraints_stays_in_budget_and_reduces_violations(tiny_victim, canonical_batch) -> None:
    x, _ = canonical_batch
    with torch.no_grad():
        y = tiny_victim(x).argmax(1)
    plain = create_attack("pgd", eps=0.02, steps=5)(x, y, layout=NTU, model=tiny_victim).adversarial
    results = {}
    for rounds in (1, 5):
        attack = create_attack("pgd", eps=0.02, steps=5, constraints=[BoneLengthConstraint(rounds=rounds)])
        results[rounds] = attack(x, y, layout=NTU, model=tiny_victim).adversarial
        assert (results[rounds] - x).abs().max() <= 0.02 + 1e-6
    err = {k: imperceptibility(x, v, NTU)["bone_length_abs_error"].mean() for k, v in results.items()}
    base = imperceptibility(x, plain, NTU)["bone_length_abs_error"].mean()
    assert err[1] < 0.7 * base and err[5] < 0.5 * err[1]
    smooth = create_attack("pgd", eps=0.02, steps=5, constraints=[SmoothnessConstraint()])(x, y, layout=NTU, model=tiny_victim)
    acc = imperceptibility(x, smooth.adversarial, NTU)["acceleration_deviation"].mean()
    assert acc < 0.5 * imperceptibility(x, plain, NTU)["acceleration_deviation"].mean()


def test_penalties_enter_the_objective(tiny_victim, canonical_batch) -> None:
    x, _ = canonical_batch
    with torch.no_grad():
        y = tiny_victim(x).argmax(1)
    plain = create_attack("ifgsm", eps=0.05, steps=10)(x, y, layout=NTU, model=tiny_victim)
    penalty = SmoothnessConstraint("penalty", weight=1e3)
    soft = create_attack("ifgsm", eps=0.05, steps=10, constraints=[penalty])(x, y, layout=NTU, model=tiny_victim)
    dev = lambda out: imperceptibility(x, out.adversarial, NTU)["acceleration_deviation"].mean()  # noqa: E731
    assert dev(soft) < 0.5 * dev(plain)
    # the recorded objective is cross-entropy minus the penalty at the returned example
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy(tiny_victim(soft.adversarial), y, reduction="none")
    expected = ce - penalty.penalty(soft.adversarial, x, NTU)
    assert torch.allclose(soft.final_loss, expected, atol=1e-5)


@pytest.mark.parametrize(
    "factory,match",
    [
        (lambda: BoneLengthConstraint("smooth"), "mode"),
        (lambda: BoneLengthConstraint(weight=-1.0), "weight"),
        (lambda: BoneLengthConstraint(rounds=0), "rounds"),
        (lambda: SmoothnessConstraint(cutoff=0.0), "cutoff"),
        (lambda: SmoothnessConstraint("project"), "mode"),
        (lambda: SmoothnessConstraint(weight=float("nan")), "SmoothnessConstraint: weight must be finite"),
        (lambda: SmoothnessConstraint(rounds=0), "SmoothnessConstraint: rounds must be >= 1"),
    ],
)
def test_invalid_options(factory, match) -> None:
    with pytest.raises(ConfigError, match=match):
        factory()


def test_to_dict_records_parameters() -> None:
    d = SmoothnessConstraint("lowpass", cutoff=0.3).to_dict()
    assert d == {"type": "SmoothnessConstraint", "mode": "lowpass", "cutoff": 0.3, "weight": 1e5, "rounds": 1}


def test_lowpass_basis_follows_the_batch_not_the_buffer(clip) -> None:
    x, delta, mask = clip
    c = SmoothnessConstraint()
    c.project(delta, x, NTU, mask=mask)
    y = x.clone()
    y[2, :, 10:] = 0.0  # same shape, different valid frames
    reused = c.project(delta * Masks().tensor(y), y, NTU)
    fresh = SmoothnessConstraint().project(delta * Masks().tensor(y), y, NTU)
    assert torch.allclose(reused, fresh) and reused[2, :, 10:].abs().max() == 0
