"""Contract test over every registered defense, plus the behaviour of ``none`` and ``lowpass``."""

from __future__ import annotations

import pytest
import torch

from pathlib import Path

from skelrobust.defense import DEFENSES, Defense, DefenseKind, InputTransformDefense, create_defense
from skelrobust.errors import ConfigError, RegistryError
from skelrobust.victim import Victim


def test_builtin_defenses_are_registered() -> None:
    assert {"none", "lowpass", "bone-length", "pgd-at", "trades", "gaussian-noise", "smoothing", "beat"} <= set(DEFENSES.names())


def contract_options(name: str, victim: Victim, tmp_path: Path) -> dict:
    """Options a defense needs to wrap the tiny victim: hardened weights get a checkpoint of its architecture."""
    cls = DEFENSES.get(name)
    if cls.kind is DefenseKind.HARDENED_WEIGHTS:
        torch.manual_seed(1)
        state = {k: v + 0.01 * torch.randn_like(v) for k, v in victim.network.state_dict().items()}
        torch.save(state, tmp_path / "hardened.pt")
        return {"checkpoint": str(tmp_path / "hardened.pt")}
    if cls.kind is DefenseKind.BAYESIAN_ENSEMBLE:
        from skelrobust.bayesian_heads import init_heads, state_dict_sha256
        from skelrobust.recipes.beat import BEAT_VERSION

        heads = init_heads(3, victim.num_classes, torch.Generator().manual_seed(0))
        torch.save({"version": BEAT_VERSION, "heads": heads, "num_classes": victim.num_classes,
                    "base_sha256": state_dict_sha256(victim.network), "config": {}}, tmp_path / "heads.pt")
        return {"heads": str(tmp_path / "heads.pt")}
    return {}


@pytest.mark.parametrize("name", DEFENSES.names())
def test_defense_contract(name: str, tiny_victim: Victim, canonical_batch: tuple[torch.Tensor, torch.Tensor], tmp_path: Path) -> None:
    x, y = canonical_batch
    defense = create_defense(name, **contract_options(name, tiny_victim, tmp_path))
    assert isinstance(defense, Defense) and defense.name == name
    assert isinstance(defense.kind, DefenseKind) and DEFENSES.entry(name).metadata["kind"] == defense.kind.value
    seen: list[torch.Tensor] = []
    hook = tiny_victim.network.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    try:
        defended = defense.wrap(tiny_victim)
        assert isinstance(defended, Victim)
        assert defended.layout is tiny_victim.layout and defended.num_classes == tiny_victim.num_classes
        x_var = x.clone().requires_grad_(True)
        logits = defended(x_var)
    finally:
        hook.remove()
    assert logits.shape == (x.shape[0], tiny_victim.num_classes) and torch.isfinite(logits).all()
    # What reaches the network keeps absent persons and padded frames exactly zero (randomised defenses
    # may evaluate several copies of each sample, sample-major, over several forward passes).
    absent = (x == 0).all(dim=1, keepdim=True).all(dim=3, keepdim=True).expand_as(x)
    assert seen
    inputs = torch.cat(seen)
    copies = inputs.shape[0] // x.shape[0]
    assert inputs.shape == (x.shape[0] * copies, *x.shape[1:])
    assert (inputs[absent.repeat_interleave(copies, dim=0)] == 0).all()
    if defense.differentiable:
        (grad,) = torch.autograd.grad(logits.sum(), x_var)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # The adaptive attacker always gets gradients, whatever the defense (BPDA / EOT where needed).
    model, method = defense.adaptive_model(tiny_victim)
    x_var = x.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(x_var), y)
    (grad,) = torch.autograd.grad(loss, x_var)
    assert isinstance(method, str) and method and torch.isfinite(grad).all() and grad.abs().sum() > 0
    config = defense.config()
    assert config["name"] == name and config["kind"] == defense.kind.value and isinstance(config["differentiable"], bool)


def test_none_is_identity(tiny_victim: Victim, canonical_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, _ = canonical_batch
    defended = create_defense("none").wrap(tiny_victim)
    assert defended is tiny_victim
    assert torch.equal(defended(x), tiny_victim(x))


def _trajectory(values: torch.Tensor, length: int | None = None) -> torch.Tensor:
    """A (1, 3, T, 25, 1) batch whose joint 0, coordinate 0 follows ``values`` (other entries constant 1)."""
    t = values.shape[0]
    x = torch.ones(1, 3, t, 25, 1)
    x[0, 0, :, 0, 0] = values
    if length is not None:
        x[:, :, length:] = 0
    return x


def test_lowpass_keeps_constant_and_linear_motion_and_padding() -> None:
    lowpass = create_defense("lowpass", sigma=1.5)
    assert isinstance(lowpass, InputTransformDefense)
    constant = _trajectory(torch.full((12,), 0.7), length=9)
    out = lowpass.transform(constant)
    assert torch.allclose(out, constant, atol=1e-6)  # renormalised at the ends, zero after frame 9
    assert (out[:, :, 9:] == 0).all()
    ramp = _trajectory(torch.linspace(0.1, 1.2, 20))
    out = lowpass.transform(ramp)
    r = lowpass.radius
    assert torch.allclose(out[0, 0, r:-r, 0, 0], ramp[0, 0, r:-r, 0, 0], atol=1e-5)


def test_lowpass_removes_frame_jitter_and_ignores_absent_frames() -> None:
    clean = _trajectory(torch.linspace(0.0, 1.0, 30))
    jitter = torch.zeros_like(clean)
    jitter[0, 0, :, 0, 0] = 0.01 * (-1.0) ** torch.arange(30)  # the highest temporal frequency
    out = create_defense("lowpass", kernel="box", radius=2).transform(clean + jitter)
    assert (out - clean).abs()[0, 0, 2:-2, 0, 0].max() <= 0.2 * 0.01 + 1e-6  # a 5-tap average leaves 1/5
    # A person absent in the middle frames: those frames stay zero and do not pull neighbours towards zero.
    gap = _trajectory(torch.full((10,), 0.5))
    gap[:, :, 4:6] = 0
    out = create_defense("lowpass").transform(gap)
    assert (out[:, :, 4:6] == 0).all() and torch.allclose(out[:, :, :4], gap[:, :, :4])


def test_lowpass_defended_victim_differs_from_bare(tiny_victim: Victim, canonical_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, _ = canonical_batch
    defended = create_defense("lowpass").wrap(tiny_victim)
    assert defended.network is tiny_victim.network and defended.name == "tiny+lowpass"
    assert defended.config["defense"]["sigma"] == 1.0
    assert not torch.allclose(defended(x), tiny_victim(x))


@pytest.mark.parametrize(
    "options,match",
    [({"kernel": "median"}, "kernel must be 'gaussian' or 'box'"), ({"sigma": 0}, "sigma must be a positive"),
     ({"radius": -1}, "radius must be an integer >= 0"), ({"width": 3}, "bad options")],
)
def test_lowpass_rejects_bad_options(options: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        create_defense("lowpass", **options)


def test_unknown_defense_lists_known_ones() -> None:
    with pytest.raises(RegistryError, match=r"unknown defense 'blur'; known: .*lowpass"):
        create_defense("blur")
