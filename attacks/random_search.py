"""Random search in the motion subspace: the baselines that Bayesian optimisation must beat."""

from __future__ import annotations

from typing import Any

import torch

from skelrobust.attack import AttackContext, register_attack
from skelrobust.errors import ConfigError
from skelrobust.query_attack import BestSoFar, QueryAttack, check_positive_int, margin
from skelrobust.subspace import GROUPINGS, MotionSubspace

#: How ``random-search`` draws its subspace points.
POINTS = ("uniform", "vertex")


@register_attack("random-search", paper="baseline: uniform random search in the BO attack's subspace")
class RandomSearch(QueryAttack):
    """Random search over the same low-dimensional motion subspace as ``bo``.

    Every query decodes an independent point ``z`` of :class:`skelrobust.subspace.MotionSubspace`
    (temporal DCT per body part, projected onto budget and masks), scores it with the margin loss on the
    oracle's class scores, keeps the best, and stops a sample at its first success or when its query budget
    (``--max-queries``) is spent. It shares ``bo``'s decoder and margin, so ``bo`` vs ``random-search`` at an
    equal query budget isolates what the GP surrogate and its acquisition add.

    ``points`` chooses how ``z`` is drawn: ``uniform`` in ``[-1, 1]^d`` (default), or ``vertex``, a uniform
    corner of the cube (every coordinate +-1 with probability 1/2). Strong perturbations sit at large
    subspace amplitudes, which uniform points rarely reach in 90 dimensions; the vertex search puts every
    coordinate at full amplitude, as Square Attack and sign-based black-box attacks do in the input space,
    so it is the stronger baseline of the two.

    Threat model: query, score-based. Budget: ``linf`` or ``l2``.

    Args:
        points: ``uniform`` (default) or ``vertex``: how each query's subspace point is drawn.
        frequencies: Temporal DCT frequencies per joint group (default 3).
        grouping: ``part`` (default) or ``joint``.
        batch: Candidates per sample sent in one oracle call (default 8, as ``bo``'s q; only the grouping of
            forward passes changes with it, each candidate is one query).
        **kwargs: Common :class:`~skelrobust.attack.Attack` options.

    Shape: ``(N, C, T, V, M)`` in, same out.
    """

    def __init__(
        self, *, points: str = "uniform", frequencies: int = 3, grouping: str = "part", batch: int = 8, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if points not in POINTS:
            raise ConfigError(f"{self.name}: points must be one of {', '.join(POINTS)}, got {points!r}")
        self.points = str(points)
        self.frequencies = check_positive_int(self.name, "frequencies", frequencies)
        if grouping not in GROUPINGS:
            raise ConfigError(f"{self.name}: grouping must be one of {', '.join(GROUPINGS)}, got {grouping!r}")
        self.grouping = str(grouping)
        self.batch = check_positive_int(self.name, "batch", batch)

    def run(self, ctx: AttackContext) -> torch.Tensor:
        space = MotionSubspace(ctx, frequencies=self.frequencies, grouping=self.grouping)
        best = BestSoFar(ctx)
        gen = ctx.generator
        while True:
            left = ctx.queries_left.clamp(max=self.batch)
            left[best.fooled] = 0
            if int(left.sum()) == 0:
                break
            owners = torch.repeat_interleave(torch.arange(ctx.x.shape[0]), left)
            z = torch.rand(owners.shape[0], space.dim, generator=gen, device=gen.device).to(ctx.x.device) * 2 - 1
            if self.points == "vertex":
                z = torch.where(z < 0, -1.0, 1.0).to(z.dtype)
            candidates = space.decode(z, owners)
            values = margin(ctx.query(candidates, owners), ctx, owners)
            best.update(candidates, values, owners)
            ctx.iterations[left > 0] += 1
        ctx.final_loss = best.value.float()
        ctx.extras = {"subspace_dim": space.dim, "grouping": space.grouping, "points": self.points}
        return best.x
