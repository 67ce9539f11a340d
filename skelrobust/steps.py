"""Shared pieces of iterative gradient attacks: step rules, gradient normalisations and the ascent loop.

Used by ``pgd``, ``ifgsm``, ``mifgsm``, ``smart`` and ``tasar`` (and available to any attack plugin). All functions
work batch-wise on ``(N, C, T, V, M)`` tensors, per sample where a norm is involved, on the input's device.

Step rules:

- :func:`budget_step`: the paper rule of the budget's geometry: ``sign(g)`` for ``linf`` and the
  l2-normalised gradient for ``l2`` (Madry et al. 2018; Kurakin et al. 2017), scaled per coordinate by
  ``eps`` so that tensor budgets (per joint / frame / coordinate) are followed.
- :func:`robustbenchhar_step`: the prior benchmark's rule (RobustBenchHAR ``FGSM``/``MI-FGSM``/``TASAR``
  attackers): ``0.01 * g / mean|g|`` with the mean over all entries of each sample, no sign.
- :class:`StepRule`: the step rule every iterative attack (``pgd``, ``ifgsm``, ``mifgsm``, ``tasar``) takes
  through the same three options, ``step_rule`` (``sign`` or ``normalised``), ``step_size`` and
  ``random_start``, so that a transfer study can run them all with one rule and they differ only in their
  ascent direction (the attacks' own defaults differ: PGD 2.5 eps/steps with a random start, the others
  eps/steps from the clean input).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from .attack import AttackContext, Budget
from .errors import ConfigError

#: The prior benchmark's hard-coded step size (reference/robustbenchhar.md section 3.0).
ROBUSTBENCHHAR_STEP = 0.01

_TINY = 1e-12


def _per_sample(values: torch.Tensor) -> torch.Tensor:
    """``(N,)`` values reshaped to broadcast against ``(N, C, T, V, M)``."""
    return values.view(-1, 1, 1, 1, 1)


def l1_normalise(grad: torch.Tensor) -> torch.Tensor:
    """``grad / ||grad||_1`` per sample (MI-FGSM, Dong et al. 2018); zero gradients stay zero."""
    return grad / _per_sample(grad.abs().flatten(1).sum(dim=1).clamp_min(_TINY))


def l2_normalise(grad: torch.Tensor) -> torch.Tensor:
    """``grad / ||grad||_2`` per sample; zero gradients stay zero."""
    return grad / _per_sample(grad.flatten(1).norm(dim=1).clamp_min(_TINY))


def mean_abs_normalise(grad: torch.Tensor, floor: float = _TINY) -> torch.Tensor:
    """``grad / mean|grad|`` per sample over all its entries (RobustBenchHAR's normalisation).

    ``mean|grad|`` is clamped at ``floor`` so that zero gradients stay zero.
    """
    return grad / _per_sample(grad.abs().flatten(1).mean(dim=1).clamp_min(floor))


def frame_normalise(grad: torch.Tensor, eps: float = 1e-18) -> torch.Tensor:
    """``grad`` divided per frame and person by its l2 norm over coordinates and joints (SMART's rule).

    SMART normalises each frame's gradient over its ``V * C`` coordinates (``(T, 75)`` for HDM05) with
    ``+1e-18``; frames with zero gradient stay zero.
    """
    return grad / (grad.pow(2).sum(dim=(1, 3), keepdim=True).sqrt() + eps)


def check_step_size(owner: str, step_size: float | None) -> float | None:
    """``step_size`` itself when it is None (the attack's default rule) or > 0.

    Raises:
        ConfigError: any other value, naming ``owner`` (the attack).
    """
    if step_size is not None and not step_size > 0:
        raise ConfigError(f"{owner}: step_size must be > 0, got {step_size!r}")
    return step_size


def relative_step(budget: Budget, like: torch.Tensor, step_size: float | None, default_rel: float) -> float:
    """Step size as a fraction of the budget: ``step_size / max(eps)`` when given, else ``default_rel``."""
    if step_size is None:
        return default_rel
    eps_max = float(budget.eps_tensor(like).max())
    return step_size / eps_max if eps_max > 0 else 0.0


def budget_step(grad: torch.Tensor, budget: Budget, rel_step: float, mask: torch.Tensor) -> torch.Tensor:
    """An ascent step of size ``rel_step * eps`` in the budget's geometry.

    ``linf``: ``rel_step * eps * sign(g)``. ``l2``: ``rel_step * eps * (g eps) / ||g eps||_2`` per sample,
    i.e. a normalised-gradient step in the eps-scaled coordinates where the budget is the unit ball (for a
    scalar eps: ``rel_step * eps * g / ||g||_2``). Entries outside ``mask`` get no step.
    """
    eps = budget.eps_tensor(grad)
    g = grad * mask
    if budget.norm == "linf":
        return rel_step * eps * g.sign()
    return rel_step * eps * l2_normalise(g * eps)


#: Step kinds of :class:`StepRule`.
STEP_KINDS = ("sign", "normalised")


@dataclass(frozen=True)
class StepRule:
    """How an iterative attack turns its ascent direction ``d`` into a step, and where it starts.

    Attributes:
        kind: ``sign``: :func:`budget_step` (``alpha sign(d)`` for ``linf``, ``alpha d / ||d||_2`` for ``l2``),
            the papers' rule; ``normalised``: ``alpha d / mean|d|`` per sample (the direction's magnitudes kept,
            the prior benchmark's normalisation scaled to the budget; the projection bounds it).
        rel_size: ``alpha / max(eps)``.
        random_start: Start uniformly inside the budget instead of at the clean input.
    """

    kind: str
    rel_size: float
    random_start: bool

    def step(self, direction: torch.Tensor, budget: Budget, mask: torch.Tensor) -> torch.Tensor:
        """The step to add for ascent direction ``direction`` ``(N, C, T, V, M)``."""
        if self.kind == "sign":
            return budget_step(direction, budget, self.rel_size, mask)
        eps_max = budget.eps_tensor(direction).max()
        return self.rel_size * eps_max * mean_abs_normalise(direction * mask)

    def start(self, ctx: AttackContext) -> torch.Tensor:
        """The first iterate: a uniform random point of the budget, or the clean input."""
        return ctx.random_start() if self.random_start else ctx.x

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rel_size": self.rel_size, "random_start": self.random_start}


def make_step_rule(
    owner: str,
    budget: Budget,
    *,
    step_rule: str | None,
    step_size: float | None,
    random_start: bool | None,
    default_rel: float,
    default_random_start: bool,
) -> StepRule:
    """The :class:`StepRule` of an attack from its options (``None`` = the attack's own default).

    Args:
        owner: Attack name, for messages.
        budget: The attack's budget (``step_size`` is converted to a fraction of its largest eps).
        step_rule: ``sign`` (default) or ``normalised``.
        step_size: ``alpha`` in data units; default ``default_rel * eps``.
        random_start: Default ``default_random_start``.
        default_rel: The attack's own step as a fraction of eps (e.g. ``1 / steps``).
        default_random_start: The attack's own start.

    Raises:
        ConfigError: an unknown ``step_rule`` or a ``step_size`` that is not > 0, naming the attack.
    """
    kind = "sign" if step_rule is None else str(step_rule)
    if kind not in STEP_KINDS:
        raise ConfigError(f"{owner}: unknown step_rule {step_rule!r}; expected one of {', '.join(STEP_KINDS)}")
    check_step_size(owner, step_size)
    eps_max = float(torch.as_tensor(budget.eps, dtype=torch.float64).max())
    if step_size is None:
        rel = default_rel
    else:
        rel = step_size / eps_max if eps_max > 0 else 0.0
    start = default_random_start if random_start is None else bool(random_start)
    return StepRule(kind=kind, rel_size=float(rel), random_start=start)


def robustbenchhar_step(grad: torch.Tensor, step_size: float = ROBUSTBENCHHAR_STEP) -> torch.Tensor:
    """RobustBenchHAR's update ``step_size * g / mean|g|`` (not a sign step; only the budget clip bounds it)."""
    return step_size * mean_abs_normalise(grad)


def fooled(ctx: AttackContext, logits: torch.Tensor) -> torch.Tensor:
    """Boolean ``(N,)``: the granted model's prediction differs from the label (or equals the target).

    Only for an attack's own stopping rules; the runner, not the attack, judges success.
    """
    pred = logits.argmax(dim=1)
    if ctx.target is not None:
        return pred == ctx.target
    return pred != ctx.labels


def objective_grad_logits(
    ctx: AttackContext, x_adv: torch.Tensor, active: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:meth:`AttackContext.objective_and_grad` with the default objective, also returning the logits."""
    seen: list[torch.Tensor] = []

    def objective(logits: torch.Tensor, x_var: torch.Tensor) -> torch.Tensor:
        seen.append(logits.detach())
        return ctx.objective(logits) - ctx.penalty(x_var)

    value, grad = ctx.objective_and_grad(x_adv, objective=objective, active=active)
    return value, grad, seen[0]


@torch.no_grad()
def final_objective(ctx: AttackContext, x_adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Objective (minus penalties) and logits at ``x_adv``: one forward pass, no gradient."""
    logits = ctx.model(x_adv)
    return ctx.objective(logits) - ctx.penalty(x_adv), logits


def gradient_ascent(
    ctx: AttackContext,
    x_start: torch.Tensor,
    steps: int,
    update: Callable[[torch.Tensor], torch.Tensor],
    *,
    stop_when_all_fooled: bool = False,
) -> torch.Tensor:
    """The iterative loop shared by the PGD family: ``x <- project(x + update(grad))`` ``steps`` times.

    Args:
        ctx: The attack context (model, projection, bookkeeping).
        x_start: First iterate (feasible).
        steps: Maximum number of updates.
        update: Maps the objective's gradient ``(N, C, T, V, M)`` to the step to add.
        stop_when_all_fooled: RobustBenchHAR's batch-level early stop: before each update, stop when every
            sample of the batch fools the model; the current iterate is returned.

    Fills ``ctx.iterations`` (updates applied per sample) and ``ctx.final_loss`` (objective at the returned
    iterate; one extra forward pass when the loop runs to the end); gradient evaluations are counted by
    the context.
    """
    x_adv = x_start
    for _ in range(steps):
        value, grad, logits = objective_grad_logits(ctx, x_adv)
        if stop_when_all_fooled and bool(fooled(ctx, logits).all()):
            ctx.final_loss = value
            return x_adv
        x_adv = ctx.project(x_adv + update(grad))
        ctx.iterations += 1
    ctx.final_loss = final_objective(ctx, x_adv)[0]
    return x_adv


def robustbenchhar_ascent(
    ctx: AttackContext,
    x_start: torch.Tensor,
    steps: int,
    step_size: float | None = None,
    accumulate: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """RobustBenchHAR's loop (its ``FGSM``/``PGD``/``MI-FGSM`` attackers): ``x += step_size * d / mean|d|``.

    ``d`` is the gradient, or ``accumulate(grad)`` when given (MI-FGSM's momentum); ``step_size`` defaults
    to :data:`ROBUSTBENCHHAR_STEP`. No sign step; the whole batch stops once every sample fools the model
    (checked before each update), as in that code.
    """
    size = step_size if step_size is not None else ROBUSTBENCHHAR_STEP

    def update(grad: torch.Tensor) -> torch.Tensor:
        return robustbenchhar_step(grad if accumulate is None else accumulate(grad), size)

    return gradient_ascent(ctx, x_start, steps, update, stop_when_all_fooled=True)
