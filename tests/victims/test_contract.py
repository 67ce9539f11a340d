"""The contract every registered victim family honours (lite preset, tiny batches).

Attacks and the runner rely on these: logits of the right shape, deterministic and finite in eval mode,
per-sample (no cross-talk inside a batch), differentiable down to the canonical input, no mode flips inside
the forward pass, every network parameter trained, and a clear error on a wrong joint count.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from skelrobust.errors import LayoutMismatchError
from skelrobust.layouts import get_layout
from skelrobust.victim import VICTIMS, Victim

NUM_CLASSES = 5
T = 32


def _build(name: str) -> Victim:
    family = VICTIMS.get(name)
    preset = "lite" if "lite" in family.presets else family.presets[0]
    layout = "ntu25" if "ntu25" in family.layouts else family.layouts[0]
    torch.manual_seed(0)
    return family.build(preset=preset, num_classes=NUM_CLASSES, layout=layout, num_persons=2)


def _batch(victim: Victim) -> torch.Tensor:
    """3 samples: two persons; one person absent; 24 of 32 frames valid. Metres, camera-like z offset."""
    g = torch.Generator().manual_seed(1)
    v = victim.layout.num_joints
    x = torch.randn(3, 3, T, v, 2, generator=g) * 0.2
    x[:, 2] += 3.0
    x[1, :, :, :, 1] = 0.0
    x[2, :, 24:] = 0.0
    return x


def _modes(module: torch.nn.Module) -> list[bool]:
    return [m.training for m in module.modules()]


@pytest.fixture(params=VICTIMS.names(), scope="module")
def victim(request: pytest.FixtureRequest) -> Victim:
    torch.set_num_threads(1)
    return _build(request.param)


def test_registered_family_metadata(victim: Victim) -> None:
    family = VICTIMS.get(victim.name)
    assert family.presets and family.layouts and family.description
    assert victim.num_classes == NUM_CLASSES and victim.layout.name in family.layouts
    meta = json.loads(json.dumps(victim.metadata, default=list))
    assert meta["num_parameters"] == sum(p.numel() for p in victim.network.parameters()) > 0


def test_eval_logits_shape_finite_deterministic_per_sample(victim: Victim) -> None:
    victim.eval()
    x = _batch(victim)
    with torch.no_grad():
        a, b = victim(x), victim(x.clone())
        alone = victim(x[1:2])
    assert a.shape == (3, NUM_CLASSES) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    torch.testing.assert_close(alone[0], a[1], rtol=1e-4, atol=1e-5)  # no cross-talk between samples in eval mode
    assert not torch.allclose(a[0], a[1])  # the output depends on the input


def test_gradient_reaches_canonical_input_and_modes_stay(victim: Victim) -> None:
    victim.eval()
    before = _modes(victim)
    x = _batch(victim).requires_grad_(True)
    loss = F.cross_entropy(victim(x), torch.tensor([0, 1, 2]))
    loss.backward()
    assert _modes(victim) == before
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for i in range(3):
        assert x.grad[i].abs().sum() > 0, f"sample {i} gets no gradient"
    victim.zero_grad(set_to_none=True)


def test_training_step_reaches_every_parameter(victim: Victim) -> None:
    """Every parameter is in the graph; after one SGD step every one gets a non-zero gradient.

    (One step first because some official initialisations gate a branch with a zero scalar, e.g.
    CTR-GCN's ``alpha = 0``, which zeroes that branch's gradients at step 0 only.)
    """
    state = {k: v.clone() for k, v in victim.state_dict().items()}
    victim.train()
    x, y = _batch(victim), torch.tensor([0, 1, 2])
    logits = victim(x)
    assert all(_modes(victim)), "the forward pass switched a submodule out of training mode"
    F.cross_entropy(logits, y).backward()
    detached = [n for n, p in victim.network.named_parameters() if p.requires_grad and p.grad is None]
    assert not detached, f"parameters outside the graph: {detached}"
    torch.optim.SGD(victim.parameters(), lr=0.1).step()
    victim.zero_grad(set_to_none=True)
    F.cross_entropy(victim(x), y).backward()
    zero = [n for n, p in victim.network.named_parameters() if p.requires_grad and not p.grad.abs().sum() > 0]
    assert not zero, f"parameters with zero gradient after one step: {zero}"
    assert all(torch.isfinite(p.grad).all() for p in victim.network.parameters() if p.grad is not None)
    victim.zero_grad(set_to_none=True)
    victim.load_state_dict(state)
    victim.eval()


def test_wrong_joint_count_is_a_layout_error(victim: Victim) -> None:
    v = victim.layout.num_joints
    x = torch.zeros(1, 3, T, v - 1, 2)
    with pytest.raises(LayoutMismatchError, match=victim.name):
        victim(x)


def test_every_family_supports_its_declared_layouts() -> None:
    for name in VICTIMS.names():
        family = VICTIMS.get(name)
        preset = "lite" if "lite" in family.presets else family.presets[0]
        for layout in family.layouts:
            v = family.build(preset=preset, num_classes=3, layout=layout, num_persons=2).eval()
            assert v.layout.name == layout
            with torch.no_grad():
                out = v(torch.randn(1, 3, T, get_layout(layout).num_joints, 2) * 0.2)
            assert out.shape == (1, 3), f"{name} on {layout}"
