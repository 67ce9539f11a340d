"""The fooling rate beside the transfer rates: prediction changed from the victim's own clean prediction."""

from __future__ import annotations

import numpy as np

from skelrobust.results import cell_summary, error_summary, format_table


def test_fooling_rate_counts_changed_predictions_whatever_the_label() -> None:
    labels = np.array([0, 1, 2, 3])
    clean = np.array([0, 1, 0, 3])  # sample 2 misclassified when clean
    adv = np.array([0, 2, 0, 1])  # changed on samples 1 and 3; sample 2 wrong but unchanged
    cell = cell_summary("v", "none", clean, adv, labels, None, ["a", "b", "c", "d"])
    assert cell["fooling_rate"] == 0.5
    assert cell["transfer_success_rate"] == 0.75  # the label-based rate counts the clean error too
    assert error_summary("v", "none", {"type": "E", "message": "m"})["fooling_rate"] is None


def test_table_shows_the_fooling_column() -> None:
    labels = np.array([0, 1])
    cell = cell_summary("v", "none", labels, np.array([1, 1]), labels, None, ["a", "b"])
    results = {"attack": "s2i", "threat_model": "hard-no-box", "attacked_model": None, "dataset": "d", "n_samples": 2,
               "norm": "linf", "eps": 0.01, "eps_unit": "m", "steps": 5, "victims": [cell]}
    table = format_table(results)
    assert "fooling" in table.splitlines()[1] and table.splitlines()[2].rstrip().endswith("50.0%")
