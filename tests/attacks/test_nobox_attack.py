"""The hard no-box attacks (s1i, s2i, s1mi, s2mi, nobox-ifgsm, nobox-mifgsm): access, step rules, SMI, negatives.

A fixed tiny encoder (passed as a module, the Python API's user-given encoder) isolates the algorithm from
encoder learning, which tests/nobox covers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from skelrobust.attack import create_attack
from skelrobust.data import SkeletonDataset
from skelrobust.errors import ConfigError, ThreatModelError
from skelrobust.layouts import get_layout
from skelrobust.nobox.access import UnlabelledSamples
from skelrobust.nobox.loss import nobox_loss
from skelrobust.smi import SMIGradient

LAYOUT = get_layout("ntu25")
VARIANTS = ("nobox-ifgsm", "nobox-mifgsm", "s1i", "s2i", "s1mi", "s2mi")


class FrameEncoder(nn.Module):
    """Per-frame features with a time-varying weighting, so input gradients differ between frames."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.frame = nn.Linear(150, 24)
        self.out = nn.Linear(24, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        h = torch.tanh(self.frame(x.permute(0, 2, 1, 3, 4).reshape(n, t, c * v * m)))
        w = torch.linspace(0.2, 1.0, t, device=x.device).view(1, t, 1)
        return self.out((h * w).mean(1) + h.amax(1))


@pytest.fixture
def clip() -> torch.Tensor:
    """8 smooth clips (N, 3, 20, 25, 2); person 1 absent in the first two, sample 2 padded after frame 14."""
    g = torch.Generator().manual_seed(0)
    x = torch.cumsum(torch.randn(8, 3, 20, 25, 2, generator=g) * 0.03, dim=2) + torch.randn(8, 3, 1, 25, 2, generator=g) * 0.3
    x[0:2, :, :, :, 1] = 0.0
    x[2, :, 15:] = 0.0
    return x


def build(name: str, **kwargs):
    options = {"encoder": FrameEncoder(), "tvar_bandwidths": 4, "cache": False, "progress": False, "eps": 0.02, "steps": 5}
    return create_attack(name, **{**options, **kwargs})


def ids(n: int) -> list[str]:
    return [f"c{i}" for i in range(n)]


def test_registered_with_hard_no_box_threat_and_paper_defaults() -> None:
    for name in VARIANTS:
        attack = create_attack(name, encoder=FrameEncoder())
        assert attack.threat.value == "hard-no-box" and not attack.supports_targeted
        assert attack.steps == 400 and attack.batch_negatives is False and attack.temperature == 1.0
    assert create_attack("s2mi", encoder=FrameEncoder(), compat="hardnobox").batch_negatives is True


def test_refuses_labels_model_and_labelled_data(clip, tiny_victim) -> None:
    attack = build("s2i")
    with pytest.raises(ThreatModelError, match="hard no-box"):
        attack(clip, torch.zeros(8, dtype=torch.long), layout=LAYOUT)
    with pytest.raises(ThreatModelError, match="hard no-box"):
        attack(clip, layout=LAYOUT, model=tiny_victim)
    with pytest.raises(ThreatModelError, match="prepare must get no model"):
        attack.prepare(model=tiny_victim, train_data=None, layout=LAYOUT, device=clip.device)
    labelled = SkeletonDataset(
        name="t", split="test", data=clip.numpy(), labels=np.zeros(8, dtype=np.int64), layout=LAYOUT,
        class_names=["a"], sample_ids=ids(8), lengths=np.full(8, 20),
    )
    with pytest.raises(ThreatModelError, match="UnlabelledSamples"):
        attack.prepare(model=None, train_data=labelled, layout=LAYOUT, device=clip.device)


def _first_gradient(attack, x: torch.Tensor) -> torch.Tensor:
    """The raw gradient of Eq. 2 at the clean input, with the attack's own encoder and negatives."""
    z0 = attack._embed(x).detach()
    neg = attack._negatives.select(z0)
    x_var = x.clone().requires_grad_(True)
    loss = nobox_loss(attack._embed(x_var), z0, neg, batch_negatives=attack.batch_negatives)
    (g,) = torch.autograd.grad(loss.sum(), x_var)
    return g


@pytest.mark.parametrize("name,order", [("nobox-ifgsm", 0), ("s1i", 1), ("s2i", 2)])
def test_one_step_is_sign_of_the_smi_gradient(name, order, clip) -> None:
    attack = build(name, steps=1)
    attack.prepare(model=None, train_data=UnlabelledSamples(clip.numpy(), ids(8), "attack", "t"), layout=LAYOUT, device=clip.device)
    out = attack(clip, layout=LAYOUT, sample_ids=ids(8))
    g = _first_gradient(attack, clip)
    mask = (clip != 0).any(dim=1, keepdim=True).any(dim=3, keepdim=True).float()
    expected = 0.02 * SMIGradient(order, num_bandwidths=4, cache=False).taps(clip, ids(8)).apply(g * mask).sign() * mask
    assert torch.allclose(out.adversarial - clip, expected, atol=1e-7)
    assert (out.gradient_evaluations == 1).all() and (out.iterations == 1).all()


def test_smi_changes_the_direction(clip) -> None:
    deltas = {}
    for name in ("nobox-ifgsm", "s1i", "s2i"):
        deltas[name] = build(name)(clip, layout=LAYOUT, sample_ids=ids(8)).adversarial - clip
    assert not torch.equal(deltas["nobox-ifgsm"], deltas["s1i"])
    assert not torch.equal(deltas["s1i"], deltas["s2i"])


def test_compat_steps_are_fixed_and_momentum_accumulates_the_smi_gradient(clip) -> None:
    out = build("nobox-ifgsm", compat="hardnobox", steps=1)(clip, layout=LAYOUT, sample_ids=ids(8))
    moved = (out.adversarial - clip).abs()
    assert torch.allclose(moved[moved > 0], torch.full_like(moved[moved > 0], 1e-4), rtol=0, atol=1e-7)
    attack = build("s2mi", compat="hardnobox", steps=2)
    two = attack(clip, layout=LAYOUT, sample_ids=ids(8)).adversarial - clip
    # after two steps every entry has moved 0, or +-2e-4 (same sign twice), or 0 (signs cancel): never 1e-4 off-grid
    values = torch.unique((two.abs() / 1e-4).round())
    assert set(values.tolist()) <= {0.0, 2.0}


def test_ascends_the_no_box_loss(clip) -> None:
    attack = build("s2mi", steps=20)
    out = attack(clip, layout=LAYOUT, sample_ids=ids(8))
    z0 = attack._embed(clip).detach()
    start = nobox_loss(z0, z0, attack._negatives.select(z0))
    assert (out.final_loss > start).float().mean() >= 0.75
    extras = out.extras["nobox"]
    assert extras["smi_order"] == 2 and extras["momentum"] is True
    assert extras["negatives"]["clusters"] == 4 and extras["negatives"]["per_sample"] == 4 - extras["negatives"]["discard"]


def test_too_small_set_for_explicit_clusters_is_one_line(clip) -> None:
    with pytest.raises(ConfigError, match="120 clusters requested but only 8 unlabelled samples"):
        build("s1i", clusters=120)(clip, layout=LAYOUT, sample_ids=ids(8))


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="manifold_split"):
        create_attack("s2i", manifold_split="val")
    with pytest.raises(ConfigError, match="encoder checkpoint not found"):
        create_attack("s2i", encoder="/nonexistent/encoder.pt")
    with pytest.raises(ConfigError, match="temperature"):
        create_attack("s2i", temperature=0)


def test_default_path_learns_its_encoder_on_the_samples_it_has(clip) -> None:
    attack = create_attack("s2i", eps=0.02, steps=3, pretrain_steps=2, pretrain_batch_size=4, tvar_bandwidths=3,
                           cache=False, progress=False)
    out = attack(clip, layout=LAYOUT, sample_ids=ids(8))
    assert (out.adversarial - clip).abs().max() <= 0.02 + 1e-6 and (out.adversarial != clip).any()
    record = out.extras["nobox"]["encoder"]
    assert record["source"] == "learned" and record["unlabelled_samples"] == 8 and record["config"]["steps"] == 2
