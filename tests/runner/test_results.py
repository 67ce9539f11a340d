"""Summaries of ``results.py``: the per-class breakdown and the readable table built from it."""

from __future__ import annotations

import numpy as np
import pytest

from skelrobust.results import cell_summary, format_table, success_by_class, successes

NAMES = ["wave", "sit down", "jump up", "clap"]


def test_success_by_class_counts_each_present_class() -> None:
    labels = np.array([0, 0, 1, 1, 1, 3])
    adversarial = np.array([2, 0, 1, 1, 0, 0])  # wave 1/2, sit down 1/3, clap 1/1; class 2 absent
    rows = success_by_class(successes(adversarial, labels, None), labels, NAMES)
    assert [(r["label"], r["class_name"], r["n"], r["successes"]) for r in rows] == [
        (0, "wave", 2, 1), (1, "sit down", 3, 1), (3, "clap", 1, 1)]
    assert [r["success_rate"] for r in rows] == pytest.approx([0.5, 1 / 3, 1.0])


def test_targeted_success_by_class_counts_hits_on_the_target() -> None:
    labels, targets = np.array([0, 0, 1]), np.array([2, 3, 0])
    rows = success_by_class(successes(np.array([2, 1, 0]), labels, targets), labels, NAMES)
    assert [(r["label"], r["successes"]) for r in rows] == [(0, 1), (1, 1)]


def test_table_names_the_classes_that_resist_most() -> None:
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 3])
    adversarial = np.array([1, 1, 1, 0, 1, 2, 0, 0])  # wave 2/2, sit down 1/3, jump up 1/2, clap 1/1
    cell = cell_summary("m", "none", labels, adversarial, labels, None, NAMES)
    results = {
        "attack": "pgd", "threat_model": "white-box", "attacked_model": "m", "dataset": "d", "n_samples": 8,
        "norm": "linf", "eps": 0.01, "eps_unit": "m", "steps": 5, "white_box_success_rate": cell["transfer_success_rate"],
        "white_box_success_by_class": cell["success_by_class"], "victims": [cell],
    }
    assert "most resistant classes (white-box): sit down 1/3, jump up 1/2\n" in format_table(results)
    results["white_box_success_by_class"] = success_by_class(successes(np.ones_like(labels), labels, None), labels, NAMES)[:1]  # wave 2/2 only
    assert "most resistant" not in format_table(results)
