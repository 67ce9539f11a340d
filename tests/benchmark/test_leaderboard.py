"""The worst case over attacks: robust only if clean-correct and no attack broke the sample."""

from __future__ import annotations

import pytest

from skelrobust.benchmark.leaderboard import leaderboard


def record(attack: str, surrogate: str, ids: list[str], clean: list[int], adversarial: list[int], labels: list[int], **cell: object) -> dict:
    axes = {"dataset": "synthetic", "attack": attack, "surrogate": surrogate, "budget": 0.01, "victim": "ctrgcn", "defense": "none", **cell}
    return {"cell": axes, "samples": {
        "sample_id": ids, "label": labels, "clean_prediction": clean, "adversarial_prediction": adversarial,
        "success": [a != y for a, y in zip(adversarial, labels)]}}


def test_worst_case_over_attacks_keeps_the_attack_that_broke_each_sample() -> None:
    ids, labels = ["a", "b", "c", "d", "e"], [0, 1, 2, 3, 4]
    records = [
        # pgd breaks b; clean error on e (its adversarial prediction is wrong too)
        record("pgd", "stgcn", ids, [0, 1, 2, 3, 0], [0, 0, 2, 3, 0], labels),
        # mifgsm breaks b and c
        record("mifgsm", "stgcn", ids, [0, 1, 2, 3, 0], [0, 2, 0, 3, 0], labels),
    ]
    board, samples = leaderboard(records)
    row = board.iloc[0]
    assert (row["n"], row["clean_accuracy"], row["robust_accuracy"]) == (5, pytest.approx(0.8), pytest.approx(0.4))
    assert row["attacks"] == "pgd@stgcn,mifgsm@stgcn" and row["strongest_attack"] == "mifgsm@stgcn"
    assert dict(zip(samples["sample_id"], samples["broken_by"])) == {"a": "", "b": "pgd@stgcn", "c": "mifgsm@stgcn", "d": "", "e": ""}
    assert dict(zip(samples["sample_id"], samples["robust"])) == {"a": True, "b": False, "c": False, "d": True, "e": False}


def test_the_worst_case_is_taken_over_samples_every_set_attacked_and_failures_are_counted() -> None:
    records = [
        record("pgd", "stgcn", ["a", "b", "c"], [0, 1, 2], [0, 1, 0], [0, 1, 2]),
        record("pgd", "ctrgcn", ["b", "c", "d"], [1, 2, 3], [0, 2, 3], [1, 2, 3]),
        {"cell": {"dataset": "synthetic", "attack": "mifgsm", "surrogate": "stgcn", "budget": 0.01, "victim": "ctrgcn",
                  "defense": "none"}, "error": {"type": "RuntimeError", "message": "boom"}},
    ]
    board, samples = leaderboard(records)
    row = board.iloc[0]
    assert (row["n"], row["robust_accuracy"], row["failed_cells"]) == (2, 0.0, 1)  # b broken via ctrgcn, c via stgcn
    assert list(samples["sample_id"]) == ["b", "c"] and list(samples["broken_by"]) == ["pgd@ctrgcn", "pgd@stgcn"]
