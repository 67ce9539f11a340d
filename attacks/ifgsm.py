"""Iterative FGSM / basic iterative method (Kurakin et al. 2017)."""

from __future__ import annotations

from skelrobust.attack import register_attack

from .pgd import PGD


@register_attack("ifgsm", paper="Kurakin et al., ICLR 2017 workshop", url="https://arxiv.org/abs/1607.02533")
class IFGSM(PGD):
    """I-FGSM (basic iterative method): FGSM steps of size ``alpha`` from the clean input, clipped each step.

    "Adversarial Examples in the Physical World", Kurakin, Goodfellow and Bengio, ICLR 2017 workshop.
    https://arxiv.org/abs/1607.02533

    ``x_0 = x``; ``x_{i+1} = Clip_eps(x_i + alpha * sign(grad))`` (``linf``) or ``alpha * g / ||g||_2``
    (``l2``), with ``alpha = eps / steps`` by default, so the steps add up to the budget. No random start.
    Returns the last iterate. The same loop as :class:`~attacks.pgd.PGD` (Madry et al. describe PGD as this
    method from a random start), with the method's own step and start as defaults.

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

    step_multiple = 1.0
    starts_at_random = False
