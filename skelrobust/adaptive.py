"""Adaptive white-box evaluation of defended victims, and the gradient-masking sanity flags.

The runner makes one adversarial set against the attacked model and evaluates it on every victim x
defense. For a defended copy of the attacked model that number is *naive*: the attacker never saw the
defense, so it is a transfer from the undefended model. A white-box attacker knows the defense, so for
each such cell this module re-runs the same attack (same samples, budget, steps, per-batch seeds) against
:meth:`~skelrobust.defense.Defense.adaptive_model` — gradients through a differentiable defense, BPDA
through a non-differentiable transform, EOT over a randomised one, the hardened weights themselves — and
evaluates the result on the defended victim: the *adaptive* robust accuracy (Athalye, Carlini and Wagner,
ICML 2018; Tramer, Carlini, Brendel and Madry, NeurIPS 2020).

Two signs of gradient masking are flagged (the checks of AutoAttack, Croce and Hein ICML 2020, and
RobustBench), each with a paired test on the same samples (McNemar's normal approximation,
``b - c > 2 sqrt(b + c)`` with ``b``, ``c`` the discordant counts), so that sampling noise does not raise them:

- ``white-box weaker than transfer``: more samples resist the adaptive white-box attack than the naive
  transfer from the undefended model;
- ``robust accuracy rises with the budget``: more samples resist at ``eps`` than at ``eps / 2``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import numpy as np
import torch

from .attack import Attack
from .attack_set import AttackSet, predict
from .defense import Defense, DefenseKind
from .layouts import SkeletonLayout
from .results import successes
from .victim import Victim

#: Budget fractions at which the adaptive attack also runs, for the "rises with the budget" check.
SANITY_FRACTIONS = (0.5,)


def paired_excess(a: np.ndarray, b: np.ndarray) -> bool:
    """True when boolean ``a`` holds on significantly more samples than ``b`` (McNemar, about 2 sigma)."""
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    return only_a - only_b > 2.0 * math.sqrt(only_a + only_b) and only_a > only_b


def _generate(attack: Attack, model: torch.nn.Module, clean: np.ndarray, attack_set: AttackSet, layout: SkeletonLayout,
              batch_size: int, seed: int, device: torch.device) -> np.ndarray:
    """The attack on every batch against ``model``, with the runner's per-batch seeds."""
    from .benchmark.cell import batch_seed

    out = []
    for b, start in enumerate(range(0, len(attack_set), batch_size)):
        stop = min(start + batch_size, len(attack_set))
        x = torch.from_numpy(clean[start:stop]).to(device)
        labels = torch.from_numpy(attack_set.labels[start:stop]).to(device)
        targets = torch.from_numpy(attack_set.targets[start:stop]).to(device) if attack_set.targets is not None else None
        generator = torch.Generator(device=device).manual_seed(batch_seed(seed, b))
        result = attack(x, labels, layout=layout, model=model, target=targets, generator=generator,
                        sample_ids=attack_set.sample_ids[start:stop])
        out.append(result.adversarial.detach().cpu().numpy().astype(np.float32))
    return np.concatenate(out)


def adaptive_cell(
    attack: Attack, defense: Defense, victim: Victim, clean: np.ndarray, attack_set: AttackSet, naive_predictions: np.ndarray,
    *, layout: SkeletonLayout, batch_size: int, seed: int, device: torch.device,
) -> dict[str, Any]:
    """Adaptive robust accuracy of ``defense.wrap(victim)`` and the sanity flags, for one cell.

    Returns:
        ``{"adaptive_method", "robust_accuracy_naive", "robust_accuracy_adaptive", "adaptive_success_rate",
        "robust_accuracy_by_budget", "sanity_flags"}`` (accuracies over the attack set, in ``[0, 1]``).
    """
    labels, targets = attack_set.labels, attack_set.targets
    model, method = defense.adaptive_model(victim)
    model.eval()
    defended = defense.wrap(victim).eval()
    everything = np.arange(len(attack_set))
    eps = attack.budget.eps
    by_budget: dict[str, float] = {}
    resisted: dict[float, np.ndarray] = {}
    for fraction in (*SANITY_FRACTIONS, 1.0):
        current = attack
        if fraction != 1.0:
            current = copy.copy(attack)
            current.budget = dataclasses.replace(attack.budget, eps=eps * fraction if isinstance(eps, (int, float)) else torch.as_tensor(eps) * fraction)
        adversarial = _generate(current, model, clean, attack_set, layout, batch_size, seed, device)
        torch.manual_seed(seed)  # randomised defenses evaluate reproducibly
        predictions = predict(defended, adversarial, everything, batch_size, device)
        resisted[fraction] = predictions == labels
        by_budget[f"{float(torch.as_tensor(eps).max()) * fraction:g}"] = float(resisted[fraction].mean())
        if fraction == 1.0:
            final = predictions
    naive = naive_predictions == labels
    flags = []
    if paired_excess(resisted[1.0], naive):
        flags.append("white-box weaker than transfer: more samples resist the adaptive white-box attack than the transfer from the undefended model (gradient masking?)")
    if any(paired_excess(resisted[1.0], resisted[f]) for f in SANITY_FRACTIONS):
        flags.append("robust accuracy rises with the budget: more samples resist at eps than at a smaller budget (gradient masking?)")
    return {
        "adaptive_method": method,
        "robust_accuracy_naive": float(naive.mean()),
        "robust_accuracy_adaptive": float(resisted[1.0].mean()),
        "adaptive_success_rate": float(successes(final, labels, targets).mean()),
        "robust_accuracy_by_budget": by_budget,
        "sanity_flags": flags,
    }


def add_adaptive_results(
    summaries: list[dict[str, Any]], cells: list[dict[str, Any]], attack: Attack, defenses: dict[str, Defense],
    models: dict[str, Victim], attacked: str, clean: np.ndarray, attack_set: AttackSet, *, layout: SkeletonLayout,
    batch_size: int, seed: int, device: torch.device,
) -> None:
    """Add the adaptive figures to every cell summary of a white-box run whose victim is the attacked model.

    Cells of other victims (the attack never saw them: transfer), undefended cells and defenses that return the
    victim unchanged are left as they are.
    """
    for summary, cell in zip(summaries, cells):
        defense = defenses[cell["defense"]]
        if cell["victim"] != attacked or "error" in cell or defense.kind is DefenseKind.NONE:
            continue
        if defense.wrap(models[attacked]) is models[attacked]:  # the defense leaves this victim as it is: naive is adaptive
            continue
        summary.update(adaptive_cell(
            attack, defense, models[attacked], clean, attack_set, cell["adversarial_predictions"],
            layout=layout, batch_size=batch_size, seed=seed, device=device,
        ))


def format_adaptive(results: dict[str, Any]) -> str:
    """Lines for the cells with an adaptive evaluation (empty when there are none)."""
    lines = []
    for cell in results.get("victims", []):
        if "robust_accuracy_adaptive" not in cell:
            continue
        lines.append(
            f"adaptive: {cell['victim']} + {cell['defense']}: robust accuracy {cell['robust_accuracy_adaptive'] * 100:.1f} % "
            f"(naive {cell['robust_accuracy_naive'] * 100:.1f} %) by {cell['adaptive_method']}"
        )
        lines.extend(f"  sanity flag: {flag}" for flag in cell["sanity_flags"])
    return "\n".join(lines)
