"""The query oracle: per-sample counting, the cap, feedback, first-success record, and access rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelrobust.attack import Attack, AttackContext, ThreatModel
from skelrobust.errors import ConfigError, ThreatModelError
from skelrobust.layouts import get_layout
from skelrobust.query import QueryBudgetError, QueryOracle, check_max_queries, query_access, query_summary

LAYOUT = get_layout("ntu25")


class FixedLogits(torch.nn.Module):
    """Predicts class 1 when the mean coordinate exceeds 0.5, else class 0 (3 classes)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hot = (x.flatten(1).mean(dim=1) > 0.5).long()
        return torch.nn.functional.one_hot(hot, 3).float() * 5.0


class LabelsOnly(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], dtype=torch.long)


def _started(model: torch.nn.Module, n: int = 3, max_queries: int = 5, feedback: str = "scores") -> QueryOracle:
    oracle = QueryOracle(model, max_queries=max_queries, feedback=feedback, name="v")
    oracle.start(n, success=lambda pred, owners: pred != 0, feasible=lambda x, owners: x.flatten(1).abs().amax(dim=1) <= 1.0)
    return oracle


def test_counts_per_owner_and_first_success_number() -> None:
    oracle = _started(FixedLogits())
    x = torch.zeros(4, 3, 2, 25, 1)
    x[2] = 0.9  # the second row of sample 1 fools the model and is feasible
    scores = oracle(x, torch.tensor([0, 1, 1, 2]))
    assert scores.shape == (4, 3) and torch.allclose(scores.sum(dim=1), torch.ones(4))
    assert oracle.counts.tolist() == [1, 2, 1] and oracle.remaining.tolist() == [4, 3, 4]
    assert oracle.first_success.tolist() == [0, 2, 0]
    far = torch.full((1, 3, 2, 25, 1), 2.0)  # fools the model but is outside the feasible set: not a success
    oracle(far, torch.tensor([0]))
    assert oracle.first_success.tolist() == [0, 2, 0] and oracle.counts.tolist() == [2, 2, 1]


def test_cap_refuses_the_whole_query_before_the_model_sees_it() -> None:
    calls = []

    class Spy(FixedLogits):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(x.shape[0])
            return super().forward(x)

    oracle = _started(Spy(), max_queries=2)
    oracle(torch.zeros(2, 3, 2, 25, 1), torch.tensor([0, 0]))
    with pytest.raises(QueryBudgetError, match="sample 0 would make 3 queries, --max-queries is 2"):
        oracle(torch.zeros(2, 3, 2, 25, 1), torch.tensor([0, 1]))
    assert calls == [2] and oracle.counts.tolist() == [2, 0, 0]


def test_label_feedback_and_label_only_victims() -> None:
    oracle = _started(FixedLogits(), feedback="label")
    labels = oracle(torch.full((3, 3, 2, 25, 1), 0.9))
    assert labels.tolist() == [1, 1, 1] and labels.dtype == torch.long
    assert _started(LabelsOnly(), feedback="label")(torch.zeros(3, 3, 2, 25, 1)).tolist() == [0, 0, 0]
    scores_oracle = _started(LabelsOnly(), feedback="scores")
    with pytest.raises(ThreatModelError, match="exposes no class scores.*decision-based attack"):
        scores_oracle(torch.zeros(3, 3, 2, 25, 1))
    assert scores_oracle.counts.tolist() == [0, 0, 0]


def test_oracle_cannot_be_restarted_and_checks_owners() -> None:
    oracle = _started(FixedLogits())
    with pytest.raises(ThreatModelError, match="already served"):
        oracle.start(3, success=lambda p, o: p != 0, feasible=lambda x, o: torch.ones(len(o), dtype=torch.bool))
    with pytest.raises(ConfigError, match="owners must be sample indices"):
        oracle(torch.zeros(1, 3, 2, 25, 1), torch.tensor([3]))
    with pytest.raises(ConfigError, match="one input per sample"):
        oracle(torch.zeros(2, 3, 2, 25, 1))
    with pytest.raises(ThreatModelError, match="not bound"):
        QueryOracle(FixedLogits(), max_queries=1)(torch.zeros(1, 3, 2, 25, 1))


@pytest.mark.parametrize("value", [0, -3, 1.5, None, True])
def test_max_queries_must_be_positive(value) -> None:
    with pytest.raises(ConfigError, match="--max-queries must be a positive integer"):
        check_max_queries(value)


def test_query_access_rules() -> None:
    assert query_access(True, "bo", None, None, 1000) == 1000 and query_access(True, "bo", None, 7, 1000) == 7
    assert query_access(False, "pgd", None, None, 1000) is None
    with pytest.raises(ConfigError, match="uses no surrogate; drop --surrogate"):
        query_access(True, "bo", "stgcn", 10, 1000)
    with pytest.raises(ConfigError, match="--max-queries is for query attacks"):
        query_access(False, "pgd", None, 10, 1000)
    with pytest.raises(ConfigError, match="must be a positive integer"):
        query_access(True, "bo", None, 0, 1000)


def test_query_summary_figures() -> None:
    s = query_summary(np.array([10, 4, 10, 7]), np.array([0, 4, 0, 7]), 10, "scores")
    assert s["success_rate"] == 0.5 and s["queries_to_success_median"] == 5.5 and s["queries_to_success_mean"] == 5.5
    assert s["success_at"] == {"1": 0.0, "2": 0.0, "5": 0.25, "10": 0.5} and s["queries_mean"] == 7.75


class _Greedy(Attack):
    """Queries one sample three times, then tries to reset the context's counter."""

    threat = ThreatModel.QUERY
    name = "greedy"
    feedback = "scores"

    def run(self, ctx: AttackContext) -> torch.Tensor:
        for _ in range(3):
            ctx.query(ctx.x[:1], torch.tensor([0]))
        ctx.queries.zero_()
        return ctx.x


def test_attack_cannot_hide_queries_and_oracle_is_required() -> None:
    x = torch.rand(2, 3, 4, 25, 1)
    attack = _Greedy(eps=0.1)
    oracle = QueryOracle(FixedLogits(), max_queries=5)
    out = attack(x, torch.zeros(2, dtype=torch.long), layout=LAYOUT, oracle=oracle)
    assert out.queries.tolist() == [3, 0] and oracle.counts.tolist() == [3, 0]
    with pytest.raises(ThreatModelError, match="already served a batch"):
        attack(x, torch.zeros(2, dtype=torch.long), layout=LAYOUT, oracle=oracle)
    with pytest.raises(ThreatModelError, match="must be a skelrobust.query.QueryOracle"):
        attack(x, torch.zeros(2, dtype=torch.long), layout=LAYOUT, oracle=lambda z: z)
