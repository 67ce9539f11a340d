"""A low-dimensional motion subspace for query attacks: low-frequency temporal DCT per joint group.

A point ``z`` in ``[-1, 1]^d`` is decoded into a perturbation

    delta[c, t, v, m] = scale * sum_{g, k} z[c, g, k, p(m)] * A[g, v] * cos(pi * (r_m(t) + 1/2) * k / L_m)

where ``k < K`` are the lowest DCT-II frequencies over the valid frames of each person (``r_m(t)`` is the
rank of frame ``t`` among person ``m``'s valid frames, ``L_m`` their number), ``A`` assigns each joint to a
group (``part``: the layout's body parts, every joint of a part moves together; ``joint``: one group per
joint) and ``p(m)`` numbers the persons present in the sample (a batch uses as many person slots as its
most populated sample). Every candidate is therefore smooth in time by construction: with ``K = 3`` (the
default) the fastest component has one period over the clip, so velocity and acceleration deviations stay small
without a separate constraint (the design of Ru et al.'s BayesOpt attack, ICLR 2020, of searching a
low-dimensional space that is upsampled to the input, with a temporal DCT as the upsampler).

Dimension ``d = C * G * K * P``: for ntu25 (5 parts) and K = 3, d = 45 with one person, 90 with two.

``scale``: ``eps`` for an linf budget (so a corner of the cube reaches the budget; larger values are
clipped by the budget projection), ``2 * eps / sqrt(#perturbable entries)`` per sample for l2 (the l2
projection then keeps the direction). The decoded example always goes through the attack context's
projection (masks, constraints, budget), so the subspace never decides feasibility.
"""

from __future__ import annotations

import math

import torch

from .adapters import person_present
from .attack import AttackContext
from .errors import ConfigError

GROUPINGS = ("part", "joint")


class MotionSubspace:
    """The decoder of one batch: ``z (K, d)`` with owners ``(K,)`` -> feasible examples ``(K, C, T, V, M)``.

    Args:
        ctx: The attack context (clean batch, layout, masks, budget, projection).
        frequencies: Temporal DCT frequencies ``K`` kept per person (>= 1).
        grouping: ``part`` (the layout's body parts; falls back to ``joint`` for a layout without parts)
            or ``joint``.
    """

    def __init__(self, ctx: AttackContext, *, frequencies: int = 3, grouping: str = "part") -> None:
        if grouping not in GROUPINGS:
            raise ConfigError(f"subspace grouping must be one of {', '.join(GROUPINGS)}, got {grouping!r}")
        if int(frequencies) != frequencies or frequencies < 1:
            raise ConfigError(f"subspace frequencies must be a positive integer, got {frequencies!r}")
        self.ctx = ctx
        x = ctx.x
        n, c, t, v, m = x.shape
        dtype = x.dtype
        parts = list(ctx.layout.parts.values()) if grouping == "part" and ctx.layout.parts else [(j,) for j in range(v)]
        self.grouping = grouping if ctx.layout.parts else "joint"
        groups = torch.zeros(len(parts), v, dtype=dtype, device=x.device)
        for g, joints in enumerate(parts):
            groups[g, list(joints)] = 1.0
        self.groups = groups  # (G, V)

        present = person_present(x).permute(0, 2, 1)  # (N, M, T)
        rank = present.cumsum(dim=2) - 1
        length = present.sum(dim=2, keepdim=True).clamp_min(1).to(dtype)  # (N, M, 1)
        k = torch.arange(int(frequencies), device=x.device, dtype=dtype)
        angle = math.pi * (rank.to(dtype).unsqueeze(-1) + 0.5) * k / length.unsqueeze(-1)
        self.basis = torch.cos(angle) * present.unsqueeze(-1)  # (N, M, T, K), max |.| = 1

        # Person slots: slot p of sample i is its p-th person with any valid frame.
        any_frame = present.any(dim=2)  # (N, M)
        slots = max(int(any_frame.sum(dim=1).max().item()), 1)
        slot_of = any_frame.long().cumsum(dim=1) - 1  # (N, M)
        assign = torch.zeros(n, slots, m, dtype=dtype, device=x.device)
        for i in range(n):
            for person in any_frame[i].nonzero().flatten().tolist():
                assign[i, int(slot_of[i, person]), person] = 1.0
        self.assign = assign  # (N, P, M)

        eps = ctx.budget.eps_tensor(x)
        if ctx.budget.norm == "linf":
            self.scale = eps.expand(1, c, t, v, m) if eps.ndim else eps.reshape(()).expand(1, c, t, v, m)
            self.scale = self.scale.expand(n, c, t, v, m)
        else:
            entries = (ctx.mask.expand(n, c, t, v, m)).flatten(1).sum(dim=1).clamp_min(1).to(dtype)
            size = eps.max() if eps.ndim else eps
            self.scale = (2 * size / entries.sqrt()).view(n, 1, 1, 1, 1).expand(n, c, t, v, m)
        self.shape = (c, len(parts), int(frequencies), slots)
        self.dim = c * len(parts) * int(frequencies) * slots

    def decode(self, z: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
        """Feasible examples ``(K, C, T, V, M)`` for subspace points ``z (K, d)`` of samples ``owners (K,)``."""
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise ConfigError(f"subspace points must have shape (K, {self.dim}), got {tuple(z.shape)}")
        owners = owners.to(self.basis.device)
        coeff = z.to(self.basis.dtype).reshape(z.shape[0], *self.shape)  # (K, C, G, F, P)
        delta = torch.einsum("kcgfp,gv,kpm,kmtf->kctvm", coeff, self.groups, self.assign[owners], self.basis[owners])
        delta = delta * self.scale[owners]
        return self.ctx.project(self.ctx.x[owners] + delta, owners)
