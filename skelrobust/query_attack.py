"""The common ground of query (black-box) attacks: base class, margin loss and best-candidate bookkeeping.

A query attack declares ``threat = ThreatModel.QUERY`` and its ``feedback`` (``scores`` or ``label``); the
runner builds the matching :class:`~skelrobust.query.QueryOracle` with ``--max-queries``. The budget of a
query attack is counted in queries, so ``steps`` is not used by these attacks (and not recorded): each
reads its per-sample query budget from :attr:`AttackContext.max_queries`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .attack import Attack, AttackContext, ThreatModel
from .errors import ConfigError, UnsupportedError


class QueryAttack(Attack):
    """Base class of query attacks.

    Class attributes:
        feedback: What the oracle answers: ``scores`` (softmax probabilities) or ``label`` (top-1 class).
        norms: Budget norms the attack supports; another norm is refused at construction.
    """

    threat: ClassVar[ThreatModel] = ThreatModel.QUERY
    feedback: ClassVar[str] = "scores"
    norms: ClassVar[tuple[str, ...]] = ("linf", "l2")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.budget.norm not in self.norms:
            raise UnsupportedError(f"attack {self.name!r} supports the {' and '.join(self.norms)} budget(s), not {self.budget.norm!r}")

    def config(self) -> dict[str, Any]:
        """As :meth:`Attack.config`, without ``steps`` (query attacks spend queries, see ``--max-queries``)."""
        out = super().config()
        out.pop("steps", None)
        out["feedback"] = self.feedback
        return out


def check_positive_int(owner: str, name: str, value: Any) -> int:
    """``value`` as an int >= 1, or one line naming the option."""
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ConfigError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def margin(scores: torch.Tensor, ctx: AttackContext, owners: torch.Tensor) -> torch.Tensor:
    """Margin on log-scores ``(K,)``, positive exactly when the victim is fooled (to maximise).

    Untargeted: ``max_{j != y} log p_j - log p_y``; targeted: ``log p_t - max_{j != t} log p_j``
    (Carlini-Wagner's margin on log-probabilities, as Square Attack and the BO attacks use).
    """
    logp = scores.double().clamp_min(1e-300).log()
    owners = owners.to(scores.device)
    ref = (ctx.target if ctx.target is not None else ctx.labels).to(scores.device)[owners]
    own = logp.gather(1, ref[:, None]).squeeze(1)
    other = logp.scatter(1, ref[:, None], float("-inf")).amax(dim=1)
    return own - other if ctx.target is not None else other - own


class BestSoFar:
    """Per sample, the best candidate seen (largest margin) and whether the victim has been fooled."""

    def __init__(self, ctx: AttackContext) -> None:
        n = ctx.x.shape[0]
        self.x = ctx.x.clone()
        self.value = torch.full((n,), float("-inf"), dtype=torch.float64)
        self.fooled = torch.zeros(n, dtype=torch.bool)

    def update(self, candidates: torch.Tensor, values: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
        """Keep each owner's best row; return the boolean ``(K,)`` of rows that improved their owner's best."""
        values = values.detach().cpu().double()
        owners = owners.cpu()
        improved = torch.zeros(values.shape[0], dtype=torch.bool)
        for i in owners.unique().tolist():
            rows = (owners == i).nonzero().flatten()
            best = rows[values[rows].argmax()]
            if values[best] > self.value[i]:
                self.value[i] = values[best]
                self.x[i] = candidates[best].to(self.x.dtype)
                improved[best] = True
        self.fooled |= self.value > 0
        return improved
