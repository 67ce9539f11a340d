"""Iterative FGSM / basic iterative method (Kurakin et al. 2017)."""

from __future__ import annotations

from typing import Any

import torch

from skelrobust.attack import Attack, AttackContext, ThreatModel, register_attack
from skelrobust.errors import ConfigError
from skelrobust.steps import gradient_ascent, make_step_rule, robustbenchhar_ascent


@register_attack("ifgsm", paper="Kurakin et al., ICLR 2017 workshop", url="https://arxiv.org/abs/1607.02533")
class IFGSM(Attack):
    """I-FGSM (basic iterative method): FGSM steps of size ``alpha`` from the clean input, clipped each step.

    "Adversarial Examples in the Physical World", Kurakin, Goodfellow and Bengio, ICLR 2017 workshop.
    https://arxiv.org/abs/1607.02533

    ``x_0 = x``; ``x_{i+1} = Clip_eps(x_i + alpha * sign(grad))`` (``linf``) or ``alpha * g / ||g||_2``
    (``l2``), with ``alpha = eps / steps`` by default, so the steps add up to the budget. No random start.
    Returns the last iterate.

    Threat model: white-box (the victim, or a surrogate for transfer); ``linf`` or ``l2`` budget in data units.

    Args:
        eps: Budget (default 0.01, benchmark.yaml).
        norm: ``linf`` (default) or ``l2``.
        steps: Iterations (default 200, benchmark.yaml).
        step_size: ``alpha`` in data units; default ``eps / steps``.
        step_rule: ``sign`` (default) or ``normalised`` (``alpha g / mean|g|``), see
            :class:`skelrobust.steps.StepRule`.
        random_start: Start uniformly inside the budget (default False, as the method).
        compat: ``"robustbenchhar"``: the prior benchmark's ``FGSM`` attacker: ``x += 0.01 * g / mean|g|``
            (per sample, not a sign step; ``step_size`` overrides 0.01), batch-level early stop once every
            sample fools the model (checked before each update).
        **kwargs: Common :class:`~skelrobust.attack.Attack` options.

    Shape:
        ``x``: ``(N, C, T, V, M)`` in data units; output: the same shape and dtype.

    Example:
        >>> out = create_attack("ifgsm", eps=0.01, steps=100)(x, y, layout=victim.layout, model=victim)
    """

    threat = ThreatModel.WHITE_BOX
    supports_targeted = True
    compat_modes = ("robustbenchhar",)

    def __init__(
        self, *, step_size: float | None = None, random_start: bool = False, step_rule: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if step_rule is not None and self.compat is not None:
            raise ConfigError(f"ifgsm: step_rule does not apply with compat={self.compat!r} (it has its own update)")
        self._rule = make_step_rule(
            "ifgsm", self.budget, step_rule=step_rule, step_size=step_size, random_start=random_start,
            default_rel=1.0 / self.steps, default_random_start=False,
        )
        self.step_size = step_size
        self.random_start = self._rule.random_start
        self.step_rule = self._rule.kind

    def run(self, ctx: AttackContext) -> torch.Tensor:
        x0 = self._rule.start(ctx)
        if self.compat == "robustbenchhar":
            return robustbenchhar_ascent(ctx, x0, self.steps, self.step_size)
        return gradient_ascent(ctx, x0, self.steps, lambda g: self._rule.step(g, ctx.budget, ctx.mask))
