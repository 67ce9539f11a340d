"""``bone-length``: frames re-projected onto the person's median bone lengths, directions and root kept."""

from __future__ import annotations

import pytest
import torch

from skelrobust.defense import create_defense
from skelrobust.errors import ConfigError
from skelrobust.kinematics import forward_kinematics
from skelrobust.layouts import get_layout
from skelrobust.victim import Victim

NTU = get_layout("ntu25")


def _motion(t: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A one-person ``(1, 3, T, 25, 2)`` motion with constant bone lengths, and its root / directions / lengths."""
    g = torch.Generator().manual_seed(seed)
    root = torch.randn(1, 3, t, generator=g) * 0.1 + torch.tensor([0.2, 0.9, 3.0])[None, :, None]
    directions = torch.randn(1, 3, t, 25, generator=g)
    lengths = (0.05 + 0.25 * torch.rand(1, 1, 25, generator=g)).expand(1, t, 25)
    x = torch.zeros(1, 3, t, 25, 2)
    x[..., 0] = forward_kinematics(root, directions, lengths, NTU)
    return x, directions, lengths


def test_constant_bone_lengths_are_left_unchanged() -> None:
    x, _, _ = _motion()
    out = create_defense("bone-length", layout="ntu25").transform(x)
    assert torch.allclose(out, x, atol=1e-5)
    assert (out[..., 1] == 0).all()  # the absent second person stays exactly zero


def test_bones_stretched_in_a_few_frames_get_their_length_back() -> None:
    x, directions, lengths = _motion(t=15)
    stretched = lengths.clone()
    stretched[:, 3:6] *= 1.0 + 0.3 * torch.rand(1, 3, 25, generator=torch.Generator().manual_seed(1))  # 3 of 15 frames
    attacked = x.clone()
    attacked[..., 0] = forward_kinematics(x[:, :, :, 0, 0], directions, stretched, NTU)
    assert (attacked - x).abs().max() > 0.01
    out = create_defense("bone-length", layout="ntu25").transform(attacked)
    assert torch.allclose(out, x, atol=1e-5)  # median lengths are the clean ones; directions were never changed


def test_padding_stays_zero_and_the_root_and_bone_directions_are_kept() -> None:
    x, _, _ = _motion(t=10)
    x[:, :, 7:] = 0  # padded frames
    noisy = x + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2)) * (x != 0)
    out = create_defense("bone-length", layout="ntu25").transform(noisy)
    assert (out[:, :, 7:] == 0).all() and (out[..., 1] == 0).all()
    assert torch.equal(out[:, :, :7, NTU.root, 0], noisy[:, :, :7, NTU.root, 0])
    for child, parent in NTU.bones:
        before = noisy[0, :, :7, child, 0] - noisy[0, :, :7, parent, 0]
        after = out[0, :, :7, child, 0] - out[0, :, :7, parent, 0]
        cosine = torch.nn.functional.cosine_similarity(before, after, dim=0)
        assert (cosine > 1 - 1e-4).all()
        assert torch.allclose(after.norm(dim=0), after.norm(dim=0)[0].expand(7), atol=1e-6)  # one length per bone


def test_bone_length_needs_the_layout_of_its_victim(tiny_victim: Victim) -> None:
    with pytest.raises(ConfigError, match="no skeleton layout"):
        create_defense("bone-length").transform(torch.zeros(1, 3, 4, 25, 2))
    other = "ntu25" if tiny_victim.layout.name != "ntu25" else "hdm05"
    with pytest.raises(ConfigError, match=f"layout '{other}' given, but victim"):
        create_defense("bone-length", layout=other).wrap(tiny_victim)
