"""``bone-length``: re-projection of every frame onto the person's constant bone lengths, an input transform.

A person's bones do not change length during an action, but a joint-space perturbation changes them in every
frame; bone-length consistency is the "spatial integrity" constraint that CIASA restores by realigning the
skeleton after each attack step (Liu, Akhtar and Mian, "Adversarial Attack on Skeleton-based Human Action
Recognition", IEEE TNNLS 2020, arXiv 1909.06500), and bone lengths alone are an attack surface (Tanaka, Kera
and Kawamoto, "Adversarial Bone Length Attack on Action Recognition", AAAI 2022, arXiv 2109.05830). Used as a
defense, the same realignment runs on the input: each bone keeps its direction in each frame, its length
becomes the person's median length over the frames where the person is present (the robust estimate of the
clean constant length), and the joints are rebuilt by forward kinematics from the unchanged root. It removes
the part of a perturbation that stretches bones frame by frame, not the part that rotates them.

Differentiable (directions, the median and forward kinematics all pass gradients), deterministic: the adaptive
attack takes gradients through it.
"""

from __future__ import annotations

import copy

import torch

from skelrobust.adapters import person_present
from skelrobust.defense import InputTransformDefense, register_defense
from skelrobust.errors import ConfigError
from skelrobust.kinematics import forward_kinematics
from skelrobust.layouts import SkeletonLayout, get_layout
from skelrobust.victim import Victim


@register_defense("bone-length")
class BoneLengthProjection(InputTransformDefense):
    """Re-projection onto constant bone lengths: each bone keeps its direction, its length becomes the person's median.

    Args:
        layout: Skeleton layout name; by default the wrapped victim's (needed to call :meth:`transform`
            directly).

    Shape:
        ``(N, C, T, V, M)`` in, the same out; the root joint, absent persons and padded frames are unchanged.
    """

    differentiable = True
    paper = ("spatial skeleton realignment of CIASA (Liu, Akhtar and Mian, IEEE TNNLS 2020, arXiv 1909.06500), "
             "applied to the input")

    def __init__(self, layout: str | None = None) -> None:
        self.layout = layout
        self._layout: SkeletonLayout | None = get_layout(layout) if layout is not None else None

    def wrap(self, victim: Victim) -> Victim:
        if self._layout is not None and self._layout.name != victim.layout.name:
            raise ConfigError(f"bone-length: layout {self._layout.name!r} given, but victim {victim.name!r} uses {victim.layout.name!r}")
        bound = copy.copy(self)
        bound._layout = victim.layout
        return InputTransformDefense.wrap(bound, victim)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        layout = self._layout
        if layout is None:
            raise ConfigError("bone-length: no skeleton layout (wrap a victim, or pass the option layout=NAME)")
        layout.check_joints(int(x.shape[3]), "bone-length input")
        n, c, t, v, m = x.shape
        present = person_present(x)  # (N, T, M)
        persons = x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)  # (B, C, T, V), one row per person
        seen = present.permute(0, 2, 1).reshape(n * m, t)  # (B, T)
        parents = torch.tensor([max(p, 0) for p in layout.parents], device=x.device)
        bones = persons - persons.index_select(3, parents)  # (B, C, T, V); zero at the root
        lengths = bones.norm(dim=1)  # (B, T, V)
        # Median over present frames; a person never present has only zero lengths (and stays zero below).
        counted = (seen | ~seen.any(dim=1, keepdim=True))[:, :, None].expand_as(lengths)
        median = torch.nanmedian(torch.where(counted, lengths, torch.full_like(lengths, float("nan"))), dim=1).values  # (B, V)
        root = persons[:, :, :, layout.root]
        rebuilt = forward_kinematics(root, bones, median[:, None, :].expand(-1, t, -1), layout)  # (B, C, T, V)
        rebuilt = torch.where(seen[:, None, :, None], rebuilt, torch.zeros_like(rebuilt))
        return rebuilt.reshape(n, m, c, t, v).permute(0, 2, 3, 4, 1)
