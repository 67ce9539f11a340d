"""Per-sample records and the summaries computed from them, and the readable table.

The per-sample records are the unit of truth: every rate in ``results.json`` is computed from the same
prediction arrays that ``samples.jsonl`` lists, never stored alone.

Success of a sample on a model (the runner judges it, never the attack):

- untargeted: the adversarial prediction differs from the true label;
- targeted: the adversarial prediction equals the target class.

Per victim x defense cell, over the attack set:

- ``clean_accuracy``: accuracy on the clean attack-set samples;
- ``robust_accuracy``: accuracy on their adversarial versions;
- ``transfer_success_rate``: fraction of successes over all attacked samples; untargeted this is
  ``1 - robust_accuracy`` (the prior benchmark's definition: the victim's clean errors count);
- ``conditional_transfer_success_rate``: the same over only the samples the victim classifies correctly
  when clean (None when there are none);
- ``fooling_rate``: fraction of all attacked samples whose prediction changed from the victim's own clean
  prediction (Lu et al. 2023, after Liu et al.; needs no label, the success measure of hard no-box attacks);
- ``success_by_class``: the success rate per true class of the attack set (:func:`success_by_class`), the
  same for the white-box model in ``white_box_success_by_class``. An overall rate hides that some classes
  resist: with the lite zoo on the embedded set, whole-body movements (sitting down, jump up) mostly need
  about twice the budget that flips hand gestures.

A cell whose evaluation raised (a defense failing on the input, a victim whose forward fails) is kept in
place, so the other cells stay comparable: its summary has every numeric field None and an ``error``
``{"type": exception class name, "message": str(exception)}``; successful cells have no ``error`` key. In
``samples.jsonl`` its per-sample entry is ``{"victim", "defense", "error": true}`` with no predictions and
no ``success`` (the message is in ``results.json``), so each record's ``victims`` list stays aligned with
the summary's.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def successes(adversarial_predictions: np.ndarray, labels: np.ndarray, targets: np.ndarray | None) -> np.ndarray:
    """Boolean ``(K,)``: the attack succeeded on each sample (see the module docstring)."""
    if targets is not None:
        return adversarial_predictions == targets
    return adversarial_predictions != labels


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def cell_summary(
    victim: str,
    defense: str,
    clean_predictions: np.ndarray,
    adversarial_predictions: np.ndarray,
    labels: np.ndarray,
    targets: np.ndarray | None,
    class_names: Sequence[str],
) -> dict[str, Any]:
    """The summary of one victim x defense cell (rates in ``[0, 1]``)."""
    clean_correct = clean_predictions == labels
    success = successes(adversarial_predictions, labels, targets)
    return {
        "victim": victim,
        "defense": defense,
        "n": int(labels.shape[0]),
        "clean_accuracy": _mean(clean_correct),
        "robust_accuracy": _mean(adversarial_predictions == labels),
        "transfer_success_rate": _mean(success),
        "conditional_transfer_success_rate": _mean(success[clean_correct]),
        "fooling_rate": _mean(adversarial_predictions != clean_predictions),
        "n_clean_correct": int(clean_correct.sum()),
        "success_by_class": success_by_class(success, labels, class_names),
    }


def success_by_class(success: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Success rate per true class, for the classes present in the attack set, in label order.

    Args:
        success: Boolean ``(K,)`` from :func:`successes`.
        labels: True labels ``(K,)``.
        class_names: Names indexed by label.

    Returns:
        ``[{"label", "class_name", "n", "successes", "success_rate"}, ...]``.
    """
    rows = []
    for label in np.unique(labels):
        mask = labels == label
        rows.append({
            "label": int(label),
            "class_name": str(class_names[int(label)]),
            "n": int(mask.sum()),
            "successes": int(success[mask].sum()),
            "success_rate": float(success[mask].mean()),
        })
    return rows


def error_summary(victim: str, defense: str, error: dict[str, str]) -> dict[str, Any]:
    """The summary of a cell whose evaluation failed: the keys of :func:`cell_summary`, numbers None, plus ``error``."""
    return {
        "victim": victim,
        "defense": defense,
        "n": None,
        "clean_accuracy": None,
        "robust_accuracy": None,
        "transfer_success_rate": None,
        "conditional_transfer_success_rate": None,
        "fooling_rate": None,
        "n_clean_correct": None,
        "success_by_class": None,
        "error": dict(error),
    }


def failed_cells(results: dict[str, Any]) -> list[str]:
    """``"victim/defense (Type: message)"`` for every cell of ``results.json`` whose evaluation failed."""
    return [
        f"{c['victim']}/{c['defense']} ({c['error']['type']}: {' '.join(str(c['error']['message']).split())})"
        for c in results.get("victims", []) if c.get("error")
    ]


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def sample_records(
    *,
    indices: np.ndarray,
    sample_ids: Sequence[str],
    labels: np.ndarray,
    targets: np.ndarray | None,
    attacked_model: str | None,
    attacked_predictions: tuple[np.ndarray, np.ndarray] | None,
    cells: Sequence[dict[str, Any]],
    iterations: np.ndarray,
    gradient_evaluations: np.ndarray,
    queries: np.ndarray,
    final_loss: np.ndarray,
    imperceptibility: dict[str, np.ndarray],
) -> list[dict[str, Any]]:
    """One JSON-able record per attacked sample.

    Args:
        cells: Per victim x defense: ``{"victim", "defense", "clean_predictions", "adversarial_predictions"}``,
            or ``{"victim", "defense", "error"}`` for a cell whose evaluation failed (see the module docstring).
        attacked_predictions: Clean and adversarial predictions of the attacked model, if there is one.
        Remaining arrays are ``(K,)`` and aligned with ``indices``.
    """
    cell_success = [None if c.get("error") else successes(c["adversarial_predictions"], labels, targets) for c in cells]
    attacked_success = (
        successes(attacked_predictions[1], labels, targets) if attacked_predictions is not None else None
    )
    records = []
    for k in range(len(indices)):
        record: dict[str, Any] = {
            "position": k,
            "index": int(indices[k]),
            "sample_id": sample_ids[k],
            "label": int(labels[k]),
        }
        if targets is not None:
            record["target"] = int(targets[k])
        if attacked_predictions is not None and attacked_success is not None:
            record["attacked_model"] = {
                "name": attacked_model,
                "clean_prediction": int(attacked_predictions[0][k]),
                "adversarial_prediction": int(attacked_predictions[1][k]),
                "success": bool(attacked_success[k]),
            }
        record["victims"] = [
            {"victim": c["victim"], "defense": c["defense"], "error": True}
            if s is None
            else {
                "victim": c["victim"],
                "defense": c["defense"],
                "clean_prediction": int(c["clean_predictions"][k]),
                "adversarial_prediction": int(c["adversarial_predictions"][k]),
                "success": bool(s[k]),
            }
            for c, s in zip(cells, cell_success)
        ]
        record["iterations"] = int(iterations[k])
        record["gradient_evaluations"] = int(gradient_evaluations[k])
        record["queries"] = int(queries[k])
        record["final_loss"] = _number(float(final_loss[k]))
        record["imperceptibility"] = {name: _number(float(v[k])) for name, v in imperceptibility.items()}
        records.append(record)
    return records


def jsonable(obj: Any) -> Any:
    """``obj`` with non-finite floats replaced by None and numpy scalars by Python numbers (strict JSON)."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _most_resistant(by_class: Sequence[dict[str, Any]], count: int = 3) -> str:
    """``"name k/n, ..."`` for up to ``count`` classes with the lowest success rate below 1."""
    below = sorted((r for r in by_class if r["successes"] < r["n"]), key=lambda r: (r["success_rate"], r["label"]))
    return ", ".join(f"{r['class_name']} {r['successes']}/{r['n']}" for r in below[:count])


def format_table(results: dict[str, Any]) -> str:
    """A readable summary: one header line and a victim x defense table (rates in percent)."""
    budget = f"{results['norm']} eps {results['eps']:g} {results['eps_unit']}"
    query = results.get("query")
    # A query attack's effort is its query budget, not iterations.
    effort = f"at most {query['max_queries']} queries per sample" if query else f"{results['steps']} steps"
    head = (
        f"{results['attack']} ({results['threat_model']}) on {results.get('attacked_model') or 'no model'}, "
        f"{results['dataset']}, {results['n_samples']} samples, {budget}, {effort}"
    )
    if query:
        median = query.get("queries_to_success_median")
        head += (f"\nquery success rate: {_pct(query['success_rate'])}, median queries to success: "
                 f"{'-' if median is None else f'{median:g}'}")
    wb = results.get("white_box_success_rate")
    head += f"\nwhite-box success rate: {_pct(wb)}" if wb is not None else ""
    resisting = _most_resistant(results.get("white_box_success_by_class") or [])
    head += f"\nmost resistant classes (white-box): {resisting}" if resisting else ""
    columns = ("victim", "defense", "clean acc", "robust acc", "transfer SR", "cond. SR", "fooling")
    rows = [
        (str(c["victim"]), str(c["defense"]), *(("error",) * 5))
        if c.get("error")
        else (
            str(c["victim"]), str(c["defense"]), _pct(c["clean_accuracy"]), _pct(c["robust_accuracy"]),
            _pct(c["transfer_success_rate"]), _pct(c["conditional_transfer_success_rate"]), _pct(c.get("fooling_rate")),
        )
        for c in results["victims"]
    ]
    widths = [max(len(columns[i]), *(len(r[i]) for r in rows)) for i in range(len(columns))]
    lines = [head, "  ".join(col.ljust(w) if i < 2 else col.rjust(w) for i, (col, w) in enumerate(zip(columns, widths)))]
    for row in rows:
        lines.append("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))
    lines.extend(f"error: {cell}" for cell in failed_cells(results))
    return "\n".join(lines)
