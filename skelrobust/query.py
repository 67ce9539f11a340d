"""The query oracle of black-box attacks: the only door to the victim, counting every query per sample.

The runner builds one :class:`QueryOracle` per batch around the victim and hands it to the attack; the
attack reaches it only through :meth:`skelrobust.attack.AttackContext.query`. What the attack sees is set by
its declared feedback:

- ``scores``: the victim's softmax class scores ``(K, num_classes)`` (score-based attacks: bo, square,
  random-search);
- ``label``: the victim's top-1 label ``(K,)`` (decision-based attacks: basar).

Each row of a query is charged to one sample of the batch (its *owner*), so an attack may send several
candidates of one sample at once. A query that would take any sample past ``max_queries`` is refused
whole (:class:`QueryBudgetError`) before the victim sees it. The counter has no public setter and no reset:
the base class starts the oracle once per attack call, and the runner reads the counts from the oracle it
holds, never from the attack's report.

For the success-against-queries curve the oracle also records, per sample, the number of the first
query whose input was feasible (inside the budget and the masks) and fooled the victim
(:attr:`QueryOracle.first_success`): an attack-independent answer to "how many queries did it take".
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .errors import ConfigError, ThreatModelError

#: What an oracle may answer.
FEEDBACKS = ("scores", "label")


class QueryBudgetError(ThreatModelError):
    """An attack asked for more queries than ``--max-queries`` allows for some sample."""


def check_max_queries(max_queries: int | None, what: str = "--max-queries") -> int:
    """``max_queries`` as a positive int, or one clear line naming the option."""
    if max_queries is None or isinstance(max_queries, bool) or int(max_queries) != max_queries or int(max_queries) < 1:
        raise ConfigError(f"{what} must be a positive integer (queries per sample), got {max_queries!r}")
    return int(max_queries)


class QueryOracle:
    """Black-box access to a model for one batch: counted, capped, scores or top-1 label only.

    Args:
        model: The victim, ``(K, C, T, V, M) -> (K, num_classes)`` logits. A model whose output is one label
            per input (``(K,)`` integers) exposes no scores: it serves only ``label`` feedback.
        max_queries: Queries allowed per sample (``--max-queries``), >= 1.
        feedback: ``scores`` (softmax probabilities) or ``label`` (top-1 class).
        name: The victim's name, for error messages.

    The oracle is bound to a batch by :meth:`start` (called by :class:`~skelrobust.attack.Attack`, once).
    """

    def __init__(
        self, model: Callable[[torch.Tensor], torch.Tensor], *, max_queries: int, feedback: str = "scores", name: str = "victim"
    ) -> None:
        if feedback not in FEEDBACKS:
            raise ConfigError(f"oracle feedback must be one of {', '.join(FEEDBACKS)}, got {feedback!r}")
        self._model = model
        self.max_queries = check_max_queries(max_queries)
        self.feedback = feedback
        self.name = name
        self._counts: torch.Tensor | None = None
        self._first_success: torch.Tensor | None = None
        self._success: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        self._feasible: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    # --- binding (the attack base class calls this once per attack call) ---------------------------------
    def start(
        self,
        num_samples: int,
        *,
        success: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        feasible: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> None:
        """Bind the oracle to a batch of ``num_samples``.

        Args:
            success: ``success(predictions (K,), owners (K,)) -> bool (K,)``: the victim is fooled.
            feasible: ``feasible(x (K, ...), owners (K,)) -> bool (K,)``: the input is inside budget and masks.

        Raises:
            ThreatModelError: the oracle was already started (one oracle serves one attack call, so a
                counter can never be restarted).
        """
        if self._counts is not None:
            raise ThreatModelError(f"the query oracle of {self.name!r} already served an attack call; build a new one per batch")
        self._counts = torch.zeros(num_samples, dtype=torch.long)
        self._first_success = torch.zeros(num_samples, dtype=torch.long)
        self._success, self._feasible = success, feasible

    @property
    def started(self) -> bool:
        return self._counts is not None

    @property
    def counts(self) -> torch.Tensor:
        """Queries charged to each sample so far ``(N,)`` (a copy)."""
        return self._require()[0].clone()

    @property
    def remaining(self) -> torch.Tensor:
        """Queries each sample may still make ``(N,)``."""
        return self.max_queries - self._require()[0]

    @property
    def first_success(self) -> torch.Tensor:
        """Per sample, the number of the first feasible query that fooled the victim; 0 when none did ``(N,)``."""
        return self._require()[1].clone()

    def _require(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._counts is None or self._first_success is None:
            raise ThreatModelError(f"the query oracle of {self.name!r} is not bound to a batch (Attack.__call__ starts it)")
        return self._counts, self._first_success

    # --- the query ---------------------------------------------------------------------------------------
    def __call__(self, x: torch.Tensor, owners: torch.Tensor | None = None) -> torch.Tensor:
        """Answer a query: scores ``(K, num_classes)`` or labels ``(K,)`` of the inputs ``x`` ``(K, C, T, V, M)``.

        Args:
            owners: ``(K,)`` sample index of each row; default ``0..N-1`` (one row per sample).

        Raises:
            QueryBudgetError: some sample would exceed ``max_queries`` (nothing is evaluated or counted).
            ThreatModelError: scores asked of a victim that exposes only labels.
        """
        counts, first = self._require()
        n = counts.shape[0]
        if owners is None:
            if x.shape[0] != n:
                raise ConfigError(f"a query without owners must hold one input per sample ({n}), got {x.shape[0]}")
            owners = torch.arange(n)
        owners = torch.as_tensor(owners, dtype=torch.long).cpu().reshape(-1)
        if owners.shape[0] != x.shape[0]:
            raise ConfigError(f"query of {x.shape[0]} inputs with {owners.shape[0]} owners")
        if owners.numel() and (owners.min() < 0 or owners.max() >= n):
            raise ConfigError(f"query owners must be sample indices in [0, {n}), got {owners.tolist()}")
        if owners.numel() == 0:
            return torch.empty(0)
        need = torch.bincount(owners, minlength=n)
        over = (counts + need > self.max_queries).nonzero().flatten()
        if over.numel():
            i = int(over[0])
            raise QueryBudgetError(
                f"query refused: sample {i} would make {int(counts[i] + need[i])} queries, --max-queries is {self.max_queries}"
            )
        # Number of each row's query for its owner: earlier rows of the same owner in this call come first.
        onehot = torch.nn.functional.one_hot(owners, n)
        number = counts[owners] + (onehot.cumsum(dim=0) * onehot).sum(dim=1)
        counts += need
        with torch.no_grad():
            out = self._model(x.detach())
        if out.ndim == 2 and out.is_floating_point():
            predictions = out.argmax(dim=1)
        elif out.ndim == 1 and not out.is_floating_point():
            if self.feedback == "scores":
                counts -= need  # refused before use: the attack learnt nothing
                raise ThreatModelError(
                    f"victim {self.name!r} exposes no class scores (it returns one label per input); "
                    "a score-based attack needs them: use a decision-based attack such as basar"
                )
            predictions = out
        else:
            raise ThreatModelError(f"victim {self.name!r} returned {tuple(out.shape)} {out.dtype}; expected (K, classes) scores or (K,) labels")
        assert self._success is not None and self._feasible is not None
        hit = (self._success(predictions, owners.to(predictions.device)) & self._feasible(x, owners.to(x.device))).cpu()
        for row in hit.nonzero().flatten().tolist():
            i = int(owners[row])
            if first[i] == 0:
                first[i] = number[row]
        if self.feedback == "label":
            return predictions.detach()
        return torch.softmax(out.detach().double(), dim=1).to(out.dtype)


def success_curve(first_success: np.ndarray, budgets: list[int] | np.ndarray) -> list[float]:
    """Fraction of samples fooled within each query budget, from :attr:`QueryOracle.first_success` values."""
    first = np.asarray(first_success, dtype=np.int64)
    if first.size == 0:
        return [float("nan") for _ in budgets]
    return [float(((first > 0) & (first <= b)).mean()) for b in budgets]


def query_summary(queries: np.ndarray, first_success: np.ndarray, max_queries: int, feedback: str) -> dict[str, object]:
    """The runner's query record: budget, queries spent, success against queries, and queries to success.

    ``success_at``: for budgets 1, 2, 5 x 10^k up to ``max_queries`` (and ``max_queries``), the fraction of
    samples for which some feasible query fooled the victim within that many queries.
    """
    queries = np.asarray(queries, dtype=np.int64)
    first = np.asarray(first_success, dtype=np.int64)
    succeeded = first[first > 0]
    budgets = sorted({b for k in range(0, 8) for b in (10**k, 2 * 10**k, 5 * 10**k) if b <= max_queries} | {max_queries})
    return {
        "max_queries": int(max_queries),
        "feedback": feedback,
        "queries_mean": float(queries.mean()) if queries.size else float("nan"),
        "queries_total": int(queries.sum()),
        "success_rate": float((first > 0).mean()) if first.size else float("nan"),
        "queries_to_success_median": float(np.median(succeeded)) if succeeded.size else None,
        "queries_to_success_mean": float(succeeded.mean()) if succeeded.size else None,
        "success_at": {str(b): v for b, v in zip(budgets, success_curve(first, budgets))},
        "definition": "success: some query inside the budget and masks fooled the oracle's victim; "
        "queries to success: the number of that first query (successful samples only)",
    }


def query_access(is_query: bool, attack: str, surrogate: str | None, max_queries: int | None, default: int | None) -> int | None:
    """The run's per-sample query budget, or one clear line when the options do not fit the threat model.

    Args:
        is_query: The attack's threat model is ``query``.
        attack: The attack's name (for messages).
        surrogate: ``--surrogate`` (refused for query attacks: they query the victim and use no surrogate).
        max_queries: ``--max-queries`` (refused for other attacks).
        default: The protocol's budget (benchmark.yaml).
    """
    if not is_query:
        if max_queries is not None:
            raise ConfigError(f"--max-queries is for query attacks; attack {attack!r} makes no queries")
        return None
    if surrogate is not None:
        raise ConfigError(f"attack {attack!r} is a query attack: it queries the victim and uses no surrogate; drop --surrogate")
    value = max_queries if max_queries is not None else default
    if value is None:
        raise ConfigError(f"attack {attack!r} is a query attack: give --max-queries (queries per sample)")
    return check_max_queries(value)
