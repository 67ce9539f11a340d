"""Momentum iterative FGSM (Dong et al. 2018)."""

from __future__ import annotations

from typing import Any

import torch

from skelrobust.attack import Attack, AttackContext, ThreatModel, register_attack
from skelrobust.errors import ConfigError
from skelrobust.steps import gradient_ascent, l1_normalise, make_step_rule, robustbenchhar_ascent

#: RobustBenchHAR's momentum decay (``MI-FGSM`` attacker), applied to raw gradients.
ROBUSTBENCHHAR_MOMENTUM = 0.1


@register_attack("mifgsm", paper="Dong et al., CVPR 2018", url="https://arxiv.org/abs/1710.06081")
class MIFGSM(Attack):
    """MI-FGSM: I-FGSM with an accumulated, L1-normalised gradient (momentum).

    "Boosting Adversarial Attacks with Momentum", Dong, Liao, Pang, Su, Zhu, Hu and Li, CVPR 2018.
    https://arxiv.org/abs/1710.06081

    ``g_0 = 0``; ``g_{t+1} = mu * g_t + grad / ||grad||_1`` (per sample); ``x_{t+1} = Clip_eps(x_t + alpha *
    sign(g_{t+1}))`` for ``linf`` (``alpha * g_{t+1} / ||g_{t+1}||_2`` for ``l2``), ``alpha = eps / steps``,
    starting from the clean input. Returns the last iterate.

    Threat model: white-box (the victim, or a surrogate for transfer, its usual use); ``linf`` or ``l2``
    budget in data units.

    Args:
        eps: Budget (default 0.01, benchmark.yaml).
        norm: ``linf`` (default) or ``l2``.
        steps: Iterations (default 200, benchmark.yaml).
        decay: Momentum ``mu`` (default 1.0, the paper's).
        step_size: ``alpha`` in data units; default ``eps / steps``.
        step_rule: ``sign`` (default) or ``normalised`` (``alpha g_t / mean|g_t|``), see
            :class:`skelrobust.steps.StepRule`.
        random_start: Start uniformly inside the budget (default False, as the method).
        compat: ``"robustbenchhar"``: the prior benchmark's ``MI-FGSM`` attacker: ``G <- 0.1 G + g`` on raw
            gradients (``decay`` overrides 0.1 only if given explicitly), ``x += 0.01 * G / mean|G|`` (no
            sign), batch-level early stop, and, as in that code, the momentum carried over from the previous
            call of the same attack object when the batch shape matches (:meth:`reset_momentum` clears it).
        **kwargs: Common :class:`~skelrobust.attack.Attack` options.

    Shape:
        ``x``: ``(N, C, T, V, M)`` in data units; output: the same shape and dtype.

    Example:
        >>> out = create_attack("mifgsm", eps=0.01, steps=100)(x, y, layout=surrogate.layout, model=surrogate)
    """

    threat = ThreatModel.WHITE_BOX
    supports_targeted = True
    compat_modes = ("robustbenchhar",)

    def __init__(
        self,
        *,
        decay: float | None = None,
        step_size: float | None = None,
        random_start: bool = False,
        step_rule: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if decay is not None and not decay >= 0:
            raise ConfigError(f"mifgsm: decay must be >= 0, got {decay!r}")
        if step_rule is not None and self.compat is not None:
            raise ConfigError(f"mifgsm: step_rule does not apply with compat={self.compat!r} (it has its own update)")
        default = ROBUSTBENCHHAR_MOMENTUM if self.compat == "robustbenchhar" else 1.0
        self.decay = float(decay) if decay is not None else default
        self._rule = make_step_rule(
            "mifgsm", self.budget, step_rule=step_rule, step_size=step_size, random_start=random_start,
            default_rel=1.0 / self.steps, default_random_start=False,
        )
        self.step_size = step_size
        self.random_start = self._rule.random_start
        self.step_rule = self._rule.kind
        self._carried: torch.Tensor | None = None

    def reset_momentum(self) -> None:
        """Forget the momentum carried between calls (``compat="robustbenchhar"`` only)."""
        self._carried = None

    def run(self, ctx: AttackContext) -> torch.Tensor:
        if self.compat == "robustbenchhar":
            carried = self._carried
            momentum = carried if carried is not None and carried.shape == ctx.x.shape else torch.zeros_like(ctx.x)

            def accumulate(grad: torch.Tensor) -> torch.Tensor:
                nonlocal momentum
                momentum = self.decay * momentum.to(grad.device) + grad
                self._carried = momentum
                return momentum

            return robustbenchhar_ascent(ctx, self._rule.start(ctx), self.steps, self.step_size, accumulate)

        velocity = torch.zeros_like(ctx.x)

        def update(grad: torch.Tensor) -> torch.Tensor:
            nonlocal velocity
            velocity = self.decay * velocity + l1_normalise(grad * ctx.mask)
            return self._rule.step(velocity, ctx.budget, ctx.mask)

        return gradient_ascent(ctx, self._rule.start(ctx), self.steps, update)
