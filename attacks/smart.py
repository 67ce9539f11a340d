"""SMART: perceptually constrained white-box attack on skeleton motion (Wang et al., CVPR 2021)."""

from __future__ import annotations

import math
from typing import Any

import torch

from skelrobust.attack import Attack, AttackContext, ThreatModel, register_attack
from skelrobust.errors import ConfigError
from skelrobust.metrics import presence, smart_perceptual_loss
from skelrobust.steps import fooled, final_objective, frame_normalise, l2_normalise, objective_grad_logits


@register_attack("smart", paper="Wang et al., CVPR 2021", url="https://arxiv.org/abs/2103.05347")
class SMART(Attack):
    """SMART: gradient descent on ``w * L_c + (1 - w) * L_p`` with separately normalised gradients.

    "Understanding the Robustness of Skeleton-based Action Recognition under Adversarial Attack", Wang, He,
    Peng, Shao, Yang, Zhou and Hogg, CVPR 2021. https://arxiv.org/abs/2103.05347

    ``L_c`` is the classification loss (minus cross-entropy to the true label; cross-entropy to the target
    when targeted; constraint penalties added), ``L_p`` the perceptual loss of joint positions, bone lengths
    and accelerations (:func:`skelrobust.metrics.smart_perceptual_loss`, variant ``smart``). As in the
    authors' code, each step computes both gradients, normalises each per frame (l2 over the frame's
    joints and coordinates), and moves ``x <- x - step_size * (w * g_c + (1 - w) * g_p)``; only samples the
    model still classifies correctly (not yet at the target) are updated, so fooled samples freeze, and the
    loop ends when the whole batch is fooled. Each step is then projected onto the masks, constraints and
    the budget (SMART's own safeguard is ``update_clip``; the budget is skelrobust's hard guarantee).

    Threat model: white-box (the victim; a surrogate when used for transfer); ``linf`` or ``l2`` budget in
    data units plus the soft perceptual loss.

    Args:
        eps: Budget (default 0.01, benchmark.yaml).
        norm: ``linf`` (default) or ``l2``.
        steps: Iterations (default 200, benchmark.yaml; the SMART demo uses 1000).
        class_weight: ``w`` (SMART ``classWeight``), default 0.6.
        recon_weight: ``rw`` (``reconWeight``), default 0.4.
        bone_weight: ``blw`` (``boneLenWeight``), default 0.7.
        step_size: Learning rate of the ``gd`` update rule, default 0.01 (data units per frame).
        update_clip: Optional per-sample l2 cap on each update (SMART ``clippingThreshold``; its repo uses 100,
            i.e. inactive; BEAT's uses 0.005); default None.
        dt: Frame interval of the acceleration term, default 1/30 s.
        compat: ``"robustbenchhar"``: the prior benchmark's ``SMART.py``: both gradients l2-normalised per
            sample (not per frame), its perceptual weighting (``0.7 L_bone + 0.18 L_pos + 0.12 L_acc`` with
            weights 0.04 on tensor joints 10-14), step 0.01, and its clip of an update longer than ``eps``
            to ``5 eps``. It perturbs padded frames, which skelrobust never does.
        **kwargs: Common :class:`~skelrobust.attack.Attack` options.

    Shape:
        ``x``: ``(N, C, T, V, M)`` in data units; output: the same shape and dtype.

    Example:
        >>> out = create_attack("smart", eps=0.01, steps=200)(x, y, layout=victim.layout, model=victim)
        >>> out.extras["perceptual_loss"]  # SMART's L_p per sample at the returned example
    """

    threat = ThreatModel.WHITE_BOX
    supports_targeted = True
    compat_modes = ("robustbenchhar",)

    def __init__(
        self,
        *,
        class_weight: float = 0.6,
        recon_weight: float = 0.4,
        bone_weight: float = 0.7,
        step_size: float = 0.01,
        update_clip: float | None = None,
        dt: float = 1.0 / 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for label, value in (("class_weight", class_weight), ("recon_weight", recon_weight), ("bone_weight", bone_weight)):
            if not 0 <= value <= 1:
                raise ConfigError(f"smart: {label} must be in [0, 1], got {value!r}")
        for label, value in (("step_size", step_size), ("dt", dt)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"smart: {label} must be > 0, got {value!r}")
        if update_clip is not None and not update_clip > 0:
            raise ConfigError(f"smart: update_clip must be > 0, got {update_clip!r}")
        self.class_weight = float(class_weight)
        self.recon_weight = float(recon_weight)
        self.bone_weight = float(bone_weight)
        self.step_size = float(step_size)
        self.update_clip = update_clip
        self.dt = float(dt)
        self.perceptual_variant = "robustbenchhar" if self.compat == "robustbenchhar" else "smart"

    def perceptual_loss(self, ctx: AttackContext, x_adv: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """SMART's ``L_p`` per sample ``(N,)`` of ``x_adv`` against the clean batch (differentiable)."""
        return smart_perceptual_loss(
            ctx.x, x_adv, ctx.layout, variant=self.perceptual_variant, recon_weight=self.recon_weight,
            bone_weight=self.bone_weight, dt=self.dt, present=present,
        )

    def run(self, ctx: AttackContext) -> torch.Tensor:
        present = presence(ctx.x)
        normalise = l2_normalise if self.compat == "robustbenchhar" else frame_normalise
        eps_max = float(ctx.budget.eps_tensor(ctx.x).max())
        x_adv = ctx.x.clone()
        active = torch.ones(ctx.x.shape[0], dtype=torch.bool, device=ctx.x.device)
        final = None
        for _ in range(self.steps):
            value, grad_obj, logits = objective_grad_logits(ctx, x_adv, active=active)
            active = active & ~fooled(ctx, logits)
            if not bool(active.any()):
                final = value
                break
            with torch.enable_grad():
                x_var = x_adv.detach().requires_grad_(True)
                (grad_p,) = torch.autograd.grad(self.perceptual_loss(ctx, x_var, present).sum(), x_var)
            # L_c = -objective, so its gradient is -grad_obj; descend w * L_c + (1 - w) * L_p.
            direction = self.class_weight * normalise(-grad_obj * ctx.mask) + (1 - self.class_weight) * normalise(grad_p * ctx.mask)
            update = -self.step_size * direction
            norms = update.flatten(1).norm(dim=1).view(-1, 1, 1, 1, 1)
            if self.compat == "robustbenchhar":
                update = torch.where(norms > eps_max, update * 5 * eps_max / norms.clamp_min(1e-12), update)
            elif self.update_clip is not None:
                update = update * (self.update_clip / norms.clamp_min(1e-12)).clamp(max=1.0)
            stepped = ctx.project(x_adv + update)
            x_adv = torch.where(active.view(-1, 1, 1, 1, 1), stepped, x_adv)
            ctx.iterations += active.long().cpu()
        if final is None:
            final = final_objective(ctx, x_adv)[0]
        ctx.final_loss = final
        with torch.no_grad():
            ctx.extras["perceptual_loss"] = [float(v) for v in self.perceptual_loss(ctx, x_adv, present).cpu()]
        return x_adv
