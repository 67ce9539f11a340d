"""Square Attack (Andriushchenko et al., ECCV 2020), linf, adapted to the (C, T, V, M) skeleton tensor."""

from __future__ import annotations

from typing import Any

import torch

from skelrobust.attack import AttackContext, register_attack
from skelrobust.errors import ConfigError
from skelrobust.query_attack import QueryAttack, margin

#: Square Attack's schedule: p is halved after these iterations (of 10,000; rescaled to the query budget).
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def square_fraction(p_init: float, iteration: int, budget: int) -> float:
    """The paper's piecewise-constant schedule of the fraction ``p`` of entries a square covers."""
    it = int(iteration / max(budget, 1) * 10000)
    return p_init / 2 ** sum(it > h for h in _HALVINGS)


@register_attack("square", paper="Andriushchenko, Croce, Flammarion, Hein, ECCV 2020", url="https://arxiv.org/abs/1912.00049")
class SquareAttack(QueryAttack):
    """Square Attack: random square-shaped sign updates accepted when they raise the margin loss.

    "Square Attack: a query-efficient black-box adversarial attack via random search", Andriushchenko,
    Croce, Flammarion and Hein, ECCV 2020. https://arxiv.org/abs/1912.00049

    The paper's linf algorithm on an image ``(c, h, w)``, mapped to the skeleton tensor by reading
    ``(T, V)`` as the image plane and the ``C x M`` (coordinate, person) pairs as its channels:

    - initialisation: "vertical stripes" become stripes along time, every (coordinate, joint, person)
      trajectory offset by a random ``+-eps`` (one query);
    - iteration ``i``: a window of ``s x s`` (frames x joints; ``s = round(sqrt(p_i * T * V))``, capped at
      ``T - 1`` frames and ``V - 1`` joints) at a random position gets a new random ``+-eps`` per channel
      (resampled while it would leave the current iterate unchanged); the candidate is projected onto the
      budget and masks, queried, and kept when its margin loss improves;
    - ``p_i`` follows the paper's schedule (halved after 10, 50, ..., 8,000 of 10,000 iterations, rescaled to
      ``--max-queries``); the paper's ImageNet default ``p_init = 0.05``.

    Differences from the paper: joints have no spatial neighbourhood, so a window covers a run of
    consecutive joint indices (in the NTU order these follow the limbs); frames outside a person's valid
    frames and masked entries never move. Only the linf version is adapted (``l2`` is refused).

    Threat model: query, score-based; untargeted and targeted (margin loss towards the target).

    Args:
        p_init: Initial fraction of the ``T x V`` plane a square covers (default 0.05).
        **kwargs: Common :class:`~skelrobust.attack.Attack` options.
    """

    norms = ("linf",)

    def __init__(self, *, p_init: float = 0.05, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 < p_init <= 1:
            raise ConfigError(f"{self.name}: p_init must be in (0, 1], got {p_init!r}")
        self.p_init = float(p_init)

    def run(self, ctx: AttackContext) -> torch.Tensor:
        x, gen = ctx.x, ctx.generator
        n, c, t, v, m = x.shape
        eps = ctx.budget.eps_tensor(x).expand(1, c, t, v, m)
        budget = ctx.max_queries
        signs = torch.randint(0, 2, (n, c, 1, v, m), generator=gen, device=gen.device).to(x.device, x.dtype) * 2 - 1
        best_x = ctx.project(x + signs * eps)
        all_rows = torch.arange(n)
        best = margin(ctx.query(best_x, all_rows), ctx, all_rows).cpu()
        ctx.iterations += 1
        for i in range(1, budget):
            active = (best <= 0) & (ctx.queries_left > 0)
            if not bool(active.any()):
                break
            rows = active.nonzero().flatten()
            side = max(int(round((square_fraction(self.p_init, i, budget) * t * v) ** 0.5)), 1)
            st, sv = min(side, max(t - 1, 1)), min(side, max(v - 1, 1))
            cand = best_x[rows].clone()
            for j, row in enumerate(rows.tolist()):
                for _ in range(10):  # the paper resamples until the window changes the iterate
                    t0 = int(torch.randint(0, t - st + 1, (1,), generator=gen, device=gen.device))
                    v0 = int(torch.randint(0, v - sv + 1, (1,), generator=gen, device=gen.device))
                    sign = torch.randint(0, 2, (c, 1, 1, m), generator=gen, device=gen.device).to(x.device, x.dtype) * 2 - 1
                    window = (slice(None), slice(t0, t0 + st), slice(v0, v0 + sv))
                    new = x[row][window] + sign * eps[0][window]
                    allowed = ctx.mask[row][window]
                    if bool(((new - best_x[row][window]).abs() * allowed).amax() > 0):
                        cand[j][window] = new
                        break
            cand = ctx.project(cand, rows)
            values = margin(ctx.query(cand, rows), ctx, rows).cpu()
            better = values > best[rows]
            best_x[rows[better]] = cand[better]
            best[rows[better]] = values[better]
            ctx.iterations[rows] += 1
        ctx.final_loss = best.float()
        return best_x
