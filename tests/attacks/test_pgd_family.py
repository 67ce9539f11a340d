"""PGD, I-FGSM and MI-FGSM: step rules, defaults and the robustbenchhar compat conventions.

Reference loops here are written directly from the papers' update equations (and reference/robustbenchhar.md
section 3 for compat) and compared with the attacks' outputs.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skelrobust.attack import Budget, create_attack
from skelrobust.errors import ConfigError
from skelrobust.layouts import get_layout

NTU = get_layout("ntu25")


class Recorder(nn.Module):
    """Wraps a model and keeps every input it sees."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return self.model(x)


def grad_ce(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
    return g


@pytest.mark.parametrize("name,rel,random", [("pgd", 2.5, True), ("ifgsm", 1.0, False), ("mifgsm", 1.0, False)])
def test_default_linf_step_sizes_and_starts(name, rel, random, tiny_victim, data) -> None:
    x, y, mask = data
    rec = Recorder(tiny_victim)
    eps, steps = 0.5, 10
    create_attack(name, eps=eps, steps=steps)(x, y, layout=NTU, model=rec)
    assert len(rec.inputs) == steps + 1  # steps gradient passes plus one forward for the final loss
    first = rec.inputs[0]
    if random:
        assert (first - x).abs().max() > 0 and (first - x).abs().max() <= eps
    else:
        assert torch.equal(first, x)
    alpha = rel * eps / steps
    step = (rec.inputs[1] - first)[mask.expand_as(x)]
    interior = ((first - x)[mask.expand_as(x)].abs() < eps - alpha)  # where the budget clip cannot act
    assert interior.float().mean() > 0.5
    assert torch.allclose(step[interior].abs(), torch.full_like(step[interior], alpha), atol=1e-6)
    assert (step.abs() <= alpha + 1e-6).all()


def test_pgd_l2_steps_are_normalised_gradients(tiny_victim, data) -> None:
    x, y, mask = data
    rec = Recorder(tiny_victim)
    eps, steps = 2.0, 8
    create_attack("pgd", eps=eps, norm="l2", steps=steps, random_start=False)(x, y, layout=NTU, model=rec)
    step = rec.inputs[1] - rec.inputs[0]
    g = grad_ce(tiny_victim, x, y) * mask
    expected = 2.5 * eps / steps * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1, 1)
    assert torch.allclose(step, expected, atol=1e-6)
    pgd = create_attack("pgd", eps=eps, norm="l2", steps=steps, step_size=0.1, random_start=False)
    rec.inputs.clear()
    pgd(x, y, layout=NTU, model=rec)
    assert torch.allclose((rec.inputs[1] - rec.inputs[0]).flatten(1).norm(dim=1), torch.full((4,), 0.1), atol=1e-6)


def test_mifgsm_matches_dong_et_al_update(tiny_victim, data) -> None:
    x, y, mask = data
    eps, steps, mu = 0.05, 6, 1.0
    out = create_attack("mifgsm", eps=eps, steps=steps)(x, y, layout=NTU, model=tiny_victim)
    alpha, g, adv = eps / steps, torch.zeros_like(x), x.clone()
    for _ in range(steps):
        grad = grad_ce(tiny_victim, adv, y) * mask
        g = mu * g + grad / grad.abs().flatten(1).sum(1).view(-1, 1, 1, 1, 1)
        adv = x + ((adv + alpha * g.sign() - x).clamp(-eps, eps)) * mask
    assert torch.allclose(out.adversarial, adv, atol=1e-6)
    assert out.iterations.tolist() == [steps] * 4 and out.gradient_evaluations.tolist() == [steps] * 4
    with torch.no_grad():
        assert torch.allclose(out.final_loss, F.cross_entropy(tiny_victim(adv), y, reduction="none"), atol=1e-5)


def _robustbenchhar_reference(model, x, y, mask, eps, steps, momentum=None):
    """The prior benchmark's loop: batch early stop before the update, 0.01 g / mean|g|, Clip_eps."""
    adv, big_g, used = x.clone(), torch.zeros_like(x), 0
    for _ in range(steps):
        with torch.no_grad():
            if (model(adv).argmax(1) != y).all():
                break
        g = grad_ce(model, adv, y)
        if momentum is not None:
            big_g = momentum * big_g + g
            g = big_g
        adv = adv + 0.01 * g / g.abs().flatten(1).mean(1).view(-1, 1, 1, 1, 1)
        adv = x + (adv - x).clamp(-eps, eps) * mask
        used += 1
    return adv, used


@pytest.mark.parametrize("name,momentum", [("ifgsm", None), ("mifgsm", 0.1), ("pgd", None)])
def test_robustbenchhar_compat_update(name, momentum, tiny_victim, data) -> None:
    x, y, mask = data
    eps, steps = 0.03, 5
    options = {"random_start": False} if name == "pgd" else {}
    out = create_attack(name, eps=eps, steps=steps, compat="robustbenchhar", **options)(x, y, layout=NTU, model=tiny_victim)
    ref, used = _robustbenchhar_reference(tiny_victim, x, y, mask, eps, steps, momentum)
    assert torch.allclose(out.adversarial, ref, atol=1e-6)
    assert out.iterations.tolist() == [used] * 4


def test_compat_batch_early_stop(tiny_victim, data) -> None:
    x, y, _ = data
    wrong = (y + 1) % 5  # every sample already "fooled": stop before the first update
    out = create_attack("ifgsm", eps=0.03, steps=5, compat="robustbenchhar")(x, wrong, layout=NTU, model=tiny_victim)
    assert torch.equal(out.adversarial, x)
    assert out.iterations.tolist() == [0] * 4 and out.gradient_evaluations.tolist() == [1] * 4
    # the paper rule never stops early
    out = create_attack("ifgsm", eps=0.03, steps=5)(x, wrong, layout=NTU, model=tiny_victim)
    assert out.iterations.tolist() == [5] * 4


def test_mifgsm_compat_carries_momentum_across_calls(tiny_victim, data) -> None:
    x, y, _ = data
    attack = create_attack("mifgsm", eps=0.03, steps=3, compat="robustbenchhar")
    first = attack(x, y, layout=NTU, model=tiny_victim).adversarial
    second = attack(x, y, layout=NTU, model=tiny_victim).adversarial
    assert not torch.allclose(first, second)
    attack.reset_momentum()
    assert torch.allclose(attack(x, y, layout=NTU, model=tiny_victim).adversarial, first)
    assert attack.decay == 0.1 and create_attack("mifgsm").decay == 1.0


def test_tensor_budget_is_followed_per_joint(tiny_victim, data) -> None:
    x, y, _ = data
    eps = torch.full((25, 1), 0.02)
    eps[:5] = 0.0  # torso joints frozen
    eps[10] = 0.05
    out = create_attack("pgd", eps=eps, steps=5)(x, y, layout=NTU, model=tiny_victim)
    delta = (out.adversarial - x).abs()
    assert delta[:, :, :, :5].max() == 0
    assert delta[:, :, :, 10].max() <= 0.05 + 1e-6 and delta[:, :, :, 10].max() > 0.02
    assert (Budget(eps=eps).size(out.adversarial - x) <= 1 + 1e-5).all()


@pytest.mark.parametrize("name", ["pgd", "ifgsm", "mifgsm"])
def test_invalid_options(name) -> None:
    with pytest.raises(ConfigError, match="step_size"):
        create_attack(name, step_size=0.0)
    with pytest.raises(ConfigError, match="compat"):
        create_attack(name, compat="torchattacks")
    with pytest.raises(ConfigError, match="decay"):
        create_attack("mifgsm", decay=-1.0)


def test_config_records_hyper_parameters() -> None:
    cfg = create_attack("pgd", eps=0.02, steps=50, step_size=0.001).config()
    assert cfg["name"] == "pgd" and cfg["threat"] == "white-box" and cfg["step_size"] == 0.001
    assert cfg["random_start"] is True and cfg["budget"] == {"eps": 0.02, "norm": "linf", "unit": "m"}


def test_one_step_rule_makes_attacks_differ_only_in_direction(tiny_victim, data) -> None:
    """PGD and I-FGSM both ascend sign(g): with the same rule (size, no random start) they are the same attack."""
    x, y, _ = data
    rule = dict(step_rule="sign", step_size=0.01, random_start=False)
    pgd = create_attack("pgd", eps=0.05, steps=5, **rule)(x, y, layout=NTU, model=tiny_victim)
    ifgsm = create_attack("ifgsm", eps=0.05, steps=5, **rule)(x, y, layout=NTU, model=tiny_victim)
    assert torch.equal(pgd.adversarial, ifgsm.adversarial)
    started = create_attack("ifgsm", eps=0.05, steps=5, step_size=0.01, random_start=True)
    rec = Recorder(tiny_victim)
    started(x, y, layout=NTU, model=rec, generator=torch.Generator().manual_seed(0))
    assert (rec.inputs[0] - x).abs().max() > 0
    for name in ("pgd", "ifgsm", "mifgsm"):
        cfg = create_attack(name, eps=0.05, steps=5, **rule).config()
        assert (cfg["step_rule"], cfg["step_size"], cfg["random_start"]) == ("sign", 0.01, False)


@pytest.mark.parametrize("name", ["pgd", "ifgsm", "mifgsm"])
def test_normalised_step_rule_keeps_the_gradient_magnitudes(name, tiny_victim, data) -> None:
    x, y, mask = data
    rec = Recorder(tiny_victim)
    create_attack(name, eps=1.0, steps=3, step_rule="normalised", step_size=0.01, random_start=False)(
        x, y, layout=NTU, model=rec)
    g = grad_ce(tiny_victim, x, y) * mask
    expected = 0.01 * g / g.abs().flatten(1).mean(1).view(-1, 1, 1, 1, 1)  # first step: momentum = g / ||g||_1
    assert torch.allclose(rec.inputs[1] - x, expected, atol=1e-6)


@pytest.mark.parametrize("name", ["pgd", "ifgsm", "mifgsm"])
def test_unknown_step_rule_is_one_clear_error(name) -> None:
    with pytest.raises(ConfigError, match=f"{name}: unknown step_rule 'signum'; expected one of sign, normalised"):
        create_attack(name, step_rule="signum")
    with pytest.raises(ConfigError, match="step_rule does not apply with compat"):
        create_attack(name, step_rule="sign", compat="robustbenchhar")
