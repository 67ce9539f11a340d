"""SMART: the authors' optimiser (per-frame normalised gradient mix, frozen fooled samples) and the compat mode."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from skelrobust.attack import create_attack
from skelrobust.errors import ConfigError
from skelrobust.layouts import get_layout
from skelrobust.metrics import smart_perceptual_loss

NTU = get_layout("ntu25")


def _grads(model, x, adv, y, variant="smart"):
    a = adv.detach().requires_grad_(True)
    (gc,) = torch.autograd.grad(-F.cross_entropy(model(a), y), a)  # L_c, minimised
    a = adv.detach().requires_grad_(True)
    (gp,) = torch.autograd.grad(smart_perceptual_loss(x, a, NTU, variant=variant).mean(), a)
    return gc, gp


def _per_frame(g):
    return g / (g.pow(2).sum(dim=(1, 3), keepdim=True).sqrt() + 1e-18)


def test_matches_the_authors_update_rule(tiny_victim, data) -> None:
    x, y, mask = data
    eps, steps, lr, w = 0.05, 4, 0.01, 0.6
    out = create_attack("smart", eps=eps, steps=steps)(x, y, layout=NTU, model=tiny_victim)
    adv, iters = x.clone(), torch.zeros(4, dtype=torch.long)
    for _ in range(steps):
        with torch.no_grad():
            active = tiny_victim(adv).argmax(1) == y
        if not active.any():
            break
        gc, gp = _grads(tiny_victim, x, adv, y)
        new = adv - lr * (w * _per_frame(gc * mask) + (1 - w) * _per_frame(gp * mask))
        new = x + (new - x).clamp(-eps, eps) * mask
        adv = torch.where(active.view(-1, 1, 1, 1, 1), new, adv)
        iters += active.long()
    assert torch.allclose(out.adversarial, adv, atol=1e-6)
    assert torch.equal(out.iterations, iters)
    assert len(out.extras["perceptual_loss"]) == 4 and min(out.extras["perceptual_loss"]) > 0


def test_each_valid_frame_moves_step_size(tiny_victim, data) -> None:
    x, y, mask = data
    out = create_attack("smart", eps=1.0, steps=1, class_weight=1.0, step_size=0.02)(x, y, layout=NTU, model=tiny_victim)
    per_frame = (out.adversarial - x).pow(2).sum(dim=(1, 3)).sqrt()  # (N, T, M)
    valid = mask[:, 0, :, 0, :]
    assert torch.allclose(per_frame[valid], torch.full_like(per_frame[valid], 0.02), atol=1e-6)
    assert per_frame[~valid].abs().max() == 0


def test_fooled_samples_freeze(tiny_victim, data) -> None:
    x, y, _ = data
    labels = y.clone()
    labels[0] = (y[0] + 1) % 5  # sample 0 is misclassified from the start
    out = create_attack("smart", eps=0.05, steps=3)(x, labels, layout=NTU, model=tiny_victim)
    assert torch.equal(out.adversarial[0], x[0])
    assert out.iterations[0] == 0 and out.gradient_evaluations[0] == 1
    assert (out.iterations[1:] > 0).all()


def test_robustbenchhar_compat_normalises_per_sample_and_clips_to_five_eps(tiny_victim, data) -> None:
    x, y, mask = data
    eps = 0.004
    out = create_attack("smart", eps=eps, steps=1, class_weight=1.0, compat="robustbenchhar")(
        x, y, layout=NTU, model=tiny_victim
    )
    gc, _ = _grads(tiny_victim, x, x, y, variant="robustbenchhar")
    gc = gc * mask
    u = -0.01 * gc / gc.flatten(1).norm(dim=1).view(-1, 1, 1, 1, 1)  # norm 0.01 > eps: rescaled to 5 eps
    u = u * 5 * eps / 0.01
    assert torch.allclose(out.adversarial, x + u.clamp(-eps, eps) * mask, atol=1e-7)
    cfg = create_attack("smart", compat="robustbenchhar").config()
    assert cfg["perceptual_variant"] == "robustbenchhar" and cfg["compat"] == "robustbenchhar"


def test_update_clip_caps_each_update(tiny_victim, data) -> None:
    x, y, _ = data
    out = create_attack("smart", eps=1.0, steps=1, update_clip=0.003)(x, y, layout=NTU, model=tiny_victim)
    assert torch.allclose((out.adversarial - x).flatten(1).norm(dim=1), torch.full((4,), 0.003), atol=1e-6)


@pytest.mark.parametrize(
    "options,match",
    [({"class_weight": 1.5}, "class_weight"), ({"step_size": 0.0}, "step_size"), ({"update_clip": -1.0}, "update_clip")],
)
def test_invalid_options(options, match) -> None:
    with pytest.raises(ConfigError, match=match):
        create_attack("smart", **options)
