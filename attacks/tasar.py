"""TASAR: the transfer attack with a dual-Bayesian surrogate and the motion gradient.

Paper: Diao, Wu, Zhang, Liu, Hao, Wei, Wang, Wang, "TASAR: Transfer-based Attack on Skeletal Action
Recognition", ICLR 2025, https://arxiv.org/abs/2409.02483 (code: yunfengdiao/Skeleton-Robustness-Benchmark).

Threat model: transfer. The attack gets a surrogate (and, through :meth:`TASAR.prepare`, the surrogate's
training split) and the true labels; never the victim.

Algorithm (default):

1. ``prepare`` post-trains K Bayesian heads over the frozen surrogate (stage-1 SG-AdaHMC, then the dual-
   Bayesian stage with flatness-aware gradients and diagonal SWAG moments, 6,250 sampler steps each; see
   :mod:`skelrobust.bayesian_heads`). Cached per surrogate weights, configuration and training data. Its
   diagnostics (SWAG width, gradient diversity of sampled heads, ensemble accuracy, ``collapsed``) go with
   every batch's extras (``results.json`` ``attack_extras[*].tasar.posterior``); a collapsed posterior is
   also a warning on stderr.
2. Per batch, time-varying AR(1)/AR(2) coefficients of every clean sample (per coordinate, joint and
   person, on its valid frames; :mod:`skelrobust.tvar`) give the motion taps ``a1, a2``. Cached per sample.
3. Per iteration: the surrogate runs **once** on ``x'``; K x S SWAG head samples act on its logits,
   vectorised, and one backward pass gives the Bayesian gradient
   ``G_B = (1/KS) sum_{k,s} grad_x L(heads_{k,s}(f(x')))`` (exactly the average of the KS per-sample
   gradients, since the heads share the backbone: ``J_f^T sum_{k,s} dL_{k,s}/dz``). Then

   - accumulated Bayesian gradient ``A <- mu_B A + G_B / mean|G_B|`` (``mu_B = 1``: the prior code's sum
     ``S`` that is never reset within a batch);
   - motion gradient of the Bayesian gradient ``G_T = G_B + a1 * G_B[t+1] + a2 * G_B[t+2]`` and its momentum
     ``M <- mu M + G_T / mean|G_T|``;
   - direction ``D = w A / mean|A| + (1 - w) M / mean|M|`` (w = 0.8, the prior code's mix);
   - step ``x' <- Proj(x' + alpha sign(D))``, ``alpha = eps / steps`` (the I-FGSM convention, so TASAR
     compares with I-FGSM, MI-FGSM and PGD at equal eps and steps; ``step_rule``, ``step_size`` and
     ``random_start`` give any :class:`skelrobust.steps.StepRule`).

   ``temporal=False`` drops the motion term (``D = A``).

   Where this differs from the prior code, and why: (a) the motion term filters the *Bayesian* gradient, as
   the paper states ("incorporates motion dynamics into the Bayesian attack gradient"); the code filters the
   gradient of the summed stage-1 heads, which costs a second backward pass per iteration and mixes in heads
   that are not the posterior; (b) each iteration's gradient is normalised by its mean ``|.|`` before it is
   accumulated (Dong et al.'s MI-FGSM convention): the code sums raw gradients, whose scale grows by orders
   of magnitude as the loss rises, so the sum is in effect the last few iterations' gradient; (c) the step is
   a sign step of ``eps / steps`` instead of ``0.01 D`` whatever the budget (with ``eps = 0.01`` one such
   step saturates the ball), so the step rule can be the same as the attacks TASAR is compared with.

``compat="robustbenchhar"`` reproduces the prior code's deliberate conventions: the base gradient ``g``
of the summed stage-1 heads drives the motion term and the momentum ``M <- g + AR(g) + M`` (unnormalised);
the SWAG gradients accumulate in ``S`` that is **never reset** within a batch (``G_B = S / KS``); the step is
``x' <- Clip(x' + 0.01 (0.8 S^ + 0.2 M^))`` with ``^`` the per-sample mean-|.| normalisation, no sign, the
0.01 fixed whatever eps (``step_size`` overrides it); ``temporal=False`` steps ``0.01 S^``; and the whole
batch stops once the stage-1 heads misclassify every sample. It needs one forward and two backward passes per
iteration (two gradients of one forward) and counts two gradient evaluations. ``step_rule`` does not apply.

Bugs of the prior code that are not reproduced, in any mode: AR coefficients belonged to random other
samples (a shuffled loader; here they are keyed by sample and content), the AR fit used padded frames,
only batch 8 / one person / 25 joints ran, each posterior sample cost a full backbone pass plus two deep
copies (60 passes per iteration), one SWAG counter was shared across heads and epochs, stage-1 heads were
selected on test accuracy, and R was required.

Args:
    num_heads: K (default 3).
    num_samples: S SWAG samples per head per iteration (default 20).
    scale: SWAG sampling scale (default 1.5).
    bayes_weight: w, weight of the accumulated Bayesian gradient in the step direction (default 0.8).
    bayes_momentum: mu_B, decay of the accumulated Bayesian gradient (default 1.0; 0 uses only the current
        iteration's ``G_B``).
    momentum: mu, decay of the motion momentum (default 1.0, as the paper's code).
    temporal: Use the motion term (default True).
    step_size: ``alpha`` in data units; default ``eps / steps`` (``0.01`` in compat mode).
    step_rule: ``sign`` (default) or ``normalised``; see :class:`skelrobust.steps.StepRule`.
    random_start: Start uniformly inside the budget (default False).
    head_steps: SG-AdaHMC steps per post-training stage (default 6,250, the prior code's count on NTU-60).
    head_epochs: When set, the prior code's schedule instead (``epochs x batches per epoch`` steps per stage).
    head_batch_size, head_lr, head_temperature, head_seed: Post-training (defaults 32, 2e-3, 0.3, 0; the prior
        code's temperature 1e-5 gives a collapsed posterior, see :mod:`skelrobust.bayesian_heads`).
    tvar_bandwidths: Bandwidth grid size of the TV-AR leave-one-out search (default 25).
    cache: Cache post-trained heads and TV-AR taps under ``SKELROBUST_HOME`` (default True).
    progress: tqdm bars on stderr during post-training (default True).
    **kwargs: eps, norm, steps, constraints, joints, frames, persons, compat, unit (see :class:`Attack`).

Shape:
    ``(N, C, T, V, M)`` in, same out; any N, C, T, V, M and any surrogate returning ``(N, classes)`` logits.

Example:
    >>> attack = create_attack("tasar", eps=0.01, steps=200)
    >>> attack.prepare(model=surrogate, train_data=train_split, layout=layout, device=device)
    >>> out = attack(x, y, layout=layout, model=surrogate, sample_ids=ids)
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from skelrobust.attack import Attack, AttackContext, ThreatModel, register_attack
from skelrobust.bayesian_heads import (
    DEFAULT_STAGE_STEPS,
    HeadConfig,
    HeadPosterior,
    head_logits,
    post_train,
    state_dict_sha256,
)
from skelrobust.errors import ConfigError, LayoutMismatchError
from skelrobust.layouts import SkeletonLayout
from skelrobust.steps import ROBUSTBENCHHAR_STEP, fooled, make_step_rule, mean_abs_normalise
from skelrobust.smi import SMIGradient

log = logging.getLogger(__name__)

#: Floor of ``mean|g|`` in the per-sample normalisation (TASAR's own, smaller than the steps default).
_MEAN_ABS_FLOOR = 1e-20


def _mean_abs_normalise(g: torch.Tensor) -> torch.Tensor:
    """``g / mean|g|`` per sample over (C, T, V, M) (zero stays zero)."""
    return mean_abs_normalise(g, floor=_MEAN_ABS_FLOOR)


@register_attack("tasar", paper="Diao et al., ICLR 2025", needs_training_data=True)
class TASAR(Attack):
    """TASAR (see the module docstring)."""

    threat = ThreatModel.TRANSFER
    supports_targeted = True
    compat_modes = ("robustbenchhar",)
    needs_training_data = True

    def __init__(
        self,
        *,
        num_heads: int = 3,
        num_samples: int = 20,
        scale: float = 1.5,
        bayes_weight: float = 0.8,
        bayes_momentum: float = 1.0,
        momentum: float = 1.0,
        temporal: bool = True,
        step_size: float | None = None,
        step_rule: str | None = None,
        random_start: bool = False,
        head_steps: int = DEFAULT_STAGE_STEPS,
        head_epochs: int | None = None,
        head_batch_size: int = 32,
        head_lr: float = 2e-3,
        head_temperature: float = 0.3,
        head_seed: int = 0,
        tvar_bandwidths: int = 25,
        cache: bool = True,
        progress: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_samples < 1:
            raise ConfigError(f"tasar: num_samples must be >= 1, got {num_samples}")
        if not 0.0 <= bayes_weight <= 1.0:
            raise ConfigError(f"tasar: bayes_weight must be in [0, 1], got {bayes_weight}")
        for label, value in (("scale", scale), ("bayes_momentum", bayes_momentum), ("momentum", momentum)):
            if not value >= 0:
                raise ConfigError(f"tasar: {label} must be >= 0, got {value}")
        if step_rule is not None and self.compat is not None:
            raise ConfigError(f"tasar: step_rule does not apply with compat={self.compat!r} (it has its own update)")
        self._rule = make_step_rule(
            "tasar", self.budget, step_rule=step_rule, step_size=step_size, random_start=random_start,
            default_rel=1.0 / self.steps, default_random_start=False,
        )
        self.num_heads = int(num_heads)
        self.num_samples = int(num_samples)
        self.scale = float(scale)
        self.bayes_weight = float(bayes_weight)
        self.bayes_momentum = float(bayes_momentum)
        self.momentum = float(momentum)
        self.temporal = bool(temporal)
        self.step_size = step_size
        self.step_rule = self._rule.kind
        self.random_start = self._rule.random_start
        self.head_steps = int(head_steps)
        self.head_epochs = head_epochs
        self.head_batch_size = int(head_batch_size)
        self.head_lr = float(head_lr)
        self.head_temperature = float(head_temperature)
        self.head_seed = int(head_seed)
        self.tvar_bandwidths = int(tvar_bandwidths)
        self.cache = bool(cache)
        self.progress = bool(progress)
        self._head_config = HeadConfig(
            num_heads=self.num_heads, steps=self.head_steps, epochs=head_epochs, batch_size=self.head_batch_size,
            lr=self.head_lr, temperature=self.head_temperature, seed=self.head_seed,
        )
        self._smi = SMIGradient(2, num_bandwidths=self.tvar_bandwidths, cache=self.cache)
        self._posterior: HeadPosterior | None = None
        self._surrogate_ref: weakref.ReferenceType[nn.Module] | None = None
        self._surrogate_sha: str | None = None

    @property
    def alpha(self) -> float:
        """The step actually used: ``step_size``, else 0.01 in compat mode, else ``eps / steps`` (max eps)."""
        if self.step_size is not None:
            return float(self.step_size)
        if self.compat == "robustbenchhar":
            return ROBUSTBENCHHAR_STEP
        return float(torch.as_tensor(self.budget.eps).max()) * self._rule.rel_size

    @property
    def posterior(self) -> HeadPosterior:
        """The post-trained heads (after :meth:`prepare`)."""
        if self._posterior is None:
            raise ConfigError(
                "tasar: call attack.prepare(model=surrogate, train_data=<surrogate training split>, layout=..., "
                "device=...) before attacking (it post-trains the Bayesian heads)"
            )
        return self._posterior

    def prepare(self, *, model: nn.Module | None, train_data: Any, layout: SkeletonLayout, device: torch.device) -> None:
        """Post-train (or load from the cache) the Bayesian heads of ``model`` on ``train_data``."""
        if model is None:
            raise ConfigError("tasar: prepare needs the surrogate model")
        if train_data is None or not hasattr(train_data, "data") or not hasattr(train_data, "labels"):
            raise ConfigError("tasar: prepare needs the surrogate's training split (a SkeletonDataset) as train_data")
        if train_data.data.shape[3] != layout.num_joints:
            raise LayoutMismatchError(
                f"tasar: training data has {train_data.data.shape[3]} joints, layout {layout.name!r} has {layout.num_joints}"
            )
        was_training = model.training
        try:
            self._posterior = post_train(
                model, train_data, self._head_config, device=device, cache=self.cache, progress=self.progress
            )
        finally:
            model.train(was_training)
        self._surrogate_ref = weakref.ref(model)
        self._surrogate_sha = state_dict_sha256(model) if self.cache else None
        log.info("tasar: heads ready (%s)", self._posterior.stats)

    def _check_surrogate(self, model: nn.Module) -> None:
        if self._surrogate_ref is not None and self._surrogate_ref() is model:
            return
        if self._surrogate_sha is not None and state_dict_sha256(model) == self._surrogate_sha:
            return
        raise ConfigError("tasar: the model given to the attack is not the surrogate its heads were post-trained on")

    def _objective(self, logits: torch.Tensor, ctx: AttackContext) -> torch.Tensor:
        """``(P, N)`` per-head objective to maximise (CE, or minus CE to the target)."""
        p, n, c = logits.shape
        target = ctx.target if ctx.target is not None else ctx.labels
        ce = F.cross_entropy(logits.reshape(p * n, c), target.repeat(p), reduction="none").view(p, n)
        return -ce if ctx.target is not None else ce

    def run(self, ctx: AttackContext) -> torch.Tensor:
        model = ctx.model
        posterior = self.posterior
        self._check_surrogate(model)
        x = ctx.x
        posterior = posterior.to(x.device)
        compat = self.compat == "robustbenchhar"
        taps = self._smi.taps(x, ctx.sample_ids) if self.temporal else None
        mask = ctx.mask.to(x.dtype)
        step = self.alpha
        x_adv = self._rule.start(ctx)
        velocity = torch.zeros_like(x)
        accum = torch.zeros_like(x)
        evals_per_iter = 2 if compat and self.temporal else 1
        iterations = 0
        for _ in range(self.steps):
            heads = posterior.sample(self.num_samples, self.scale, ctx.generator).to(x.dtype)
            x_var = x_adv.detach().requires_grad_(True)
            with torch.enable_grad():
                features = model(x_var)  # the one backbone pass of this iteration
                if features.ndim != 2 or features.shape[1] != posterior.num_classes:
                    raise LayoutMismatchError(
                        f"tasar: surrogate returned {tuple(features.shape)} logits, heads expect {posterior.num_classes} classes"
                    )
                bayes = self._objective(head_logits(heads, features), ctx).mean(0)  # (N,)
                if not compat:
                    bayes = bayes - ctx.penalty(x_var)
                if compat:
                    base_logits = head_logits(posterior.stage1.to(x.dtype), features).sum(0)
                    if bool(fooled(ctx, base_logits.detach()).all()):
                        break  # the prior code stops the whole batch once the surrogate is fooled everywhere
                    ctx.gradient_evaluations += evals_per_iter
                    (grad_b,) = torch.autograd.grad(bayes.sum(), x_var, retain_graph=self.temporal)
                    if self.temporal:
                        (grad_base,) = torch.autograd.grad(self._objective(base_logits[None], ctx).sum(), x_var)
                else:
                    ctx.gradient_evaluations += 1
                    (grad_b,) = torch.autograd.grad(bayes.sum(), x_var)
            grad_b = grad_b * mask
            if compat:
                accum = accum + grad_b  # never reset within the batch (the prior code's S); G_B = S / KS
                bayes_dir = _mean_abs_normalise(accum)
                if self.temporal:
                    grad_base = grad_base * mask
                    velocity = taps.apply(grad_base) * mask + velocity
                    direction = self.bayes_weight * bayes_dir + (1 - self.bayes_weight) * _mean_abs_normalise(velocity)
                else:
                    direction = bayes_dir
                x_adv = ctx.project(x_adv + step * direction)
            else:
                accum = self.bayes_momentum * accum + _mean_abs_normalise(grad_b)
                direction = _mean_abs_normalise(accum)
                if self.temporal:
                    total = taps.apply(grad_b) * mask
                    velocity = self.momentum * velocity + _mean_abs_normalise(total)
                    direction = self.bayes_weight * direction + (1 - self.bayes_weight) * _mean_abs_normalise(velocity)
                x_adv = ctx.project(x_adv + self._rule.step(direction, ctx.budget, mask))
            iterations += 1
        ctx.iterations += iterations
        with torch.no_grad():
            final = self._objective(head_logits(posterior.mean.to(x.dtype), model(x_adv)), ctx).mean(0)
        ctx.final_loss = final
        ctx.extras["tasar"] = {
            "step_size": step,
            "step_rule": self._rule.to_dict(),
            "head_samples_per_iteration": self.num_heads * self.num_samples,
            "backbone_passes_per_iteration": 1,
            "stopped_early": iterations < self.steps,
            "heads_cache_key": posterior.stats.get("cache_key"),
            "posterior": posterior.stats.get("diagnostics"),
        }
        return x_adv
