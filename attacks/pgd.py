"""Projected gradient descent (Madry et al. 2018)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from skelrobust.attack import Attack, AttackContext, ThreatModel, register_attack
from skelrobust.errors import ConfigError
from skelrobust.steps import gradient_ascent, make_step_rule, robustbenchhar_ascent


@register_attack("pgd", paper="Madry et al., ICLR 2018", url="https://arxiv.org/abs/1706.06083")
class PGD(Attack):
    """PGD: iterated steepest-ascent steps on the classification loss, projected onto the budget.

    "Towards Deep Learning Models Resistant to Adversarial Attacks", Madry, Makelov, Schmidt, Tsipras and
    Vladu, ICLR 2018. https://arxiv.org/abs/1706.06083

    Each step ascends the cross-entropy (or descends it towards a target): ``linf`` takes ``alpha * sign(g)``,
    ``l2`` takes ``alpha * g / ||g||_2`` (per sample); then the iterate is projected onto the masks, the
    motion constraints and the budget. Starts from a uniform random point in the budget. Returns the last
    iterate.

    Threat model: white-box (the victim, or a surrogate when the runner uses it for transfer); ``linf`` or
    ``l2`` budget in data units, optionally with motion constraints.

    Args:
        eps: Budget (default 0.01, benchmark.yaml).
        norm: ``linf`` (default) or ``l2``.
        steps: Iterations (default 200, benchmark.yaml).
        step_size: ``alpha`` in data units; default ``2.5 * eps / steps`` (Madry et al.'s rule of thumb, so
            that the iterate can cross the ball and back from any start).
        random_start: Start uniformly inside the budget (default True).
        step_rule: ``sign`` (default: the step of the budget's geometry above) or ``normalised``
            (``alpha g / mean|g|``); with ``step_size`` and ``random_start`` the shared rule of
            :class:`skelrobust.steps.StepRule`, so that PGD runs with the same rule as I-FGSM, MI-FGSM or TASAR.
        compat: ``"robustbenchhar"``: the prior benchmark's update ``x += 0.01 * g / mean|g|`` (per sample, no
            sign; ``step_size`` overrides 0.01) and its batch-level early stop once every sample fools the
            model (checked before each update); the random start follows ``random_start``.
        **kwargs: Common :class:`~skelrobust.attack.Attack` options (constraints, joints, frames, persons, unit).

    Shape:
        ``x``: ``(N, C, T, V, M)`` in data units (metres for NTU); output: the same shape and dtype.

    Example:
        >>> attack = create_attack("pgd", eps=0.01, steps=50)
        >>> out = attack(x, y, layout=victim.layout, model=victim)
        >>> out.adversarial.shape == x.shape
        True
    """

    threat = ThreatModel.WHITE_BOX
    supports_targeted = True
    compat_modes = ("robustbenchhar",)
    #: The default step ``alpha`` is ``step_multiple * eps / steps``.
    step_multiple: ClassVar[float] = 2.5
    #: Where the iterate starts when ``random_start`` is not given.
    starts_at_random: ClassVar[bool] = True

    def __init__(
        self, *, step_size: float | None = None, random_start: bool | None = None, step_rule: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if step_rule is not None and self.compat is not None:
            raise ConfigError(f"{self.name}: step_rule does not apply with compat={self.compat!r} (it has its own update)")
        self._rule = make_step_rule(
            self.name, self.budget, step_rule=step_rule, step_size=step_size, random_start=random_start,
            default_rel=self.step_multiple / self.steps, default_random_start=self.starts_at_random,
        )
        self.step_size = step_size
        self.random_start = self._rule.random_start
        self.step_rule = self._rule.kind

    def run(self, ctx: AttackContext) -> torch.Tensor:
        x0 = self._rule.start(ctx)
        if self.compat == "robustbenchhar":
            return robustbenchhar_ascent(ctx, x0, self.steps, self.step_size)
        return gradient_ascent(ctx, x0, self.steps, lambda g: self._rule.step(g, ctx.budget, ctx.mask))
