"""The hard no-box attacks of Lu et al. (ICCV 2023): I-FGSM / MI-FGSM on a contrastive latent space, with the SMI gradient.

Paper: Lu, Wang, Chang, Yang, Shum, "Hard No-Box Adversarial Attack on Skeleton-Based Human Action Recognition
with Skeleton-Motion-Informed Gradient", ICCV 2023, https://arxiv.org/abs/2308.05681 (code:
github.com/luyg45/HardNoBoxAttack).

Threat model: hard no-box. The attack gets the clean samples only: no victim, no surrogate, no labels, no
training data (the runner enforces it, :mod:`skelrobust.nobox.access`). It learns its own manifold:

1. ``prepare`` learns a contrastive encoder on the unlabelled samples it is given (``manifold_split``;
   :mod:`skelrobust.nobox.manifold`, cached by a fingerprint of data and configuration) or loads the
   encoder checkpoint passed as ``encoder``; it embeds those samples and clusters the embeddings with
   K-means (K = 120; the Q = 10 centres nearest to an input are not its negatives;
   :mod:`skelrobust.nobox.negatives`). Called without ``prepare`` (the Python API on one batch), the attack
   learns on the batch it is given: those are the samples it has.
2. Per batch: the TV-AR(1) or TV-AR(2) taps of every clean sample (:mod:`skelrobust.smi`, cached per sample).
3. Per iteration: one encoder forward+backward of the batch gives the gradient ``g`` of the loss of Eq. 2
   (:func:`skelrobust.nobox.loss.nobox_loss`, maximised); the SMI gradient ``g^ = g + a1 g[t+1] + a2 g[t+2]``;
   I variants step ``alpha * sign(g^)``; MI variants accumulate ``m <- mu m + g^ / ||g^||_1`` (Dong et al.)
   and step ``alpha * sign(m)``; then the iterate is projected onto the budget. Returns the last iterate
   (the paper saves the last iteration; no early stop, no best-iterate selection).

Registered variants: ``s1i`` (S1I-FGSM), ``s2i`` (S2I-FGSM), ``s1mi`` (S1MI-FGSM), ``s2mi`` (S2MI-FGSM), and the
paper's baselines with the same loss, ``nobox-ifgsm`` (order 0) and ``nobox-mifgsm``.

Defaults (paper): 400 iterations, linf budget, ``alpha = eps / steps`` (the project's I-FGSM convention, so
the variants compare with the other iterative attacks at equal eps and steps; the paper does not state its
alpha), momentum ``mu = 1`` for MI variants, no temperature, negatives = cluster centres only.

``compat="hardnobox"`` reproduces the released code's conventions: the gradient divided by its per-sample
mean ``|g|`` before the SMI filter, MI variants accumulating the SMI gradient itself with momentum 1
(``m <- m + g^``, no L1 normalisation), a fixed step ``alpha = 1e-4`` whatever eps (``step_size`` overrides),
and the other samples of the batch as extra negatives (the code uses batches of 8; the runner's
``--batch-size`` sets it here). The code's hard-coded batch of 8, its shuffled-loader AR files and the need
for R are not reproduced.

Args:
    encoder: The attacker's own encoder instead of a learned one: a checkpoint file
        (:func:`skelrobust.nobox.manifold.load_encoder`), user code ``module:attr`` / ``file.py:attr`` giving an
        ``nn.Module`` ``(N, C, T, V, M) -> (N, D)`` (or a factory of one), or, from Python, the module itself;
        None (default) learns one.
    manifold_split: Which unlabelled samples the runner gives ``prepare``: ``attack`` (the attack set,
        default), ``test`` (the whole test split, the paper's) or ``train`` (the released code's).
    pretrain_steps, pretrain_batch_size, pretrain_seed: Encoder learning (defaults of
        :class:`~skelrobust.nobox.manifold.ManifoldConfig`).
    clusters: K; None (default) is the paper's 120 under the small-set rule.
    discard: Q; None (default) is the paper's 10, scaled with K under the small-set rule.
    batch_negatives: Add batch-mates as negatives; default off (on in compat mode).
    temperature: Divides the cosine similarities (default 1, none).
    decay: MI momentum ``mu`` (default 1.0).
    step_size: ``alpha`` in data units.
    tvar_bandwidths: Bandwidth grid of the TV-AR fits (default 25).
    kmeans_seed: Seed of the k-means++ seeding (default 0, the released code's ``random_state``).
    cache: Cache encoders and TV-AR taps under ``SKELROBUST_HOME`` (default True).
    progress: Progress bars on stderr while learning the encoder (default True).
    **kwargs: eps, norm, steps, constraints, joints, frames, persons, compat, unit (see :class:`Attack`).

Shape:
    ``(N, C, T, V, M)`` in the data's units, the same out.

Example:
    >>> attack = create_attack("s2i", eps=0.01, steps=400)
    >>> out = attack(x, layout=get_layout("ntu25"))   # learns its encoder on x itself
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from skelrobust.attack import Attack, AttackContext, ThreatModel, register_attack
from skelrobust.errors import ConfigError, ThreatModelError
from skelrobust.layouts import SkeletonLayout
from skelrobust.nobox.access import MANIFOLD_SPLITS, UnlabelledSamples
from skelrobust.nobox.loss import nobox_loss
from skelrobust.nobox.manifold import Manifold, ManifoldConfig, encoder_option, learn_manifold, user_encoder
from skelrobust.nobox.negatives import ClusterNegatives
from skelrobust.smi import SMIGradient
from skelrobust.steps import budget_step, check_step_size, l1_normalise, mean_abs_normalise, relative_step

log = logging.getLogger(__name__)

#: The released code's step size (``compat="hardnobox"``).
HARDNOBOX_STEP = 1e-4
#: Batch size of the embedding pass over the unlabelled samples.
_EMBED_BATCH = 64


class HardNoBoxAttack(Attack):
    """Base of the hard no-box I-FGSM / MI-FGSM family (see the module docstring); subclasses set the variant."""

    threat = ThreatModel.HARD_NO_BOX
    supports_targeted = False
    compat_modes = ("hardnobox",)
    #: SMI order: 0 (raw gradient), 1 (TV-AR(1)) or 2 (TV-AR(2)).
    smi_order: ClassVar[int] = 0
    #: MI-FGSM momentum (True) or I-FGSM (False).
    uses_momentum: ClassVar[bool] = False

    def __init__(
        self,
        *,
        encoder: str | Path | nn.Module | None = None,
        manifold_split: str = "attack",
        pretrain_steps: int | None = None,
        pretrain_batch_size: int | None = None,
        pretrain_seed: int | None = None,
        clusters: int | None = None,
        discard: int | None = None,
        batch_negatives: bool | None = None,
        temperature: float = 1.0,
        decay: float = 1.0,
        step_size: float | None = None,
        tvar_bandwidths: int = 25,
        kmeans_seed: int = 0,
        cache: bool = True,
        progress: bool = True,
        steps: int = 400,
        **kwargs: Any,
    ) -> None:
        super().__init__(steps=steps, **kwargs)
        if manifold_split not in MANIFOLD_SPLITS:
            raise ConfigError(f"{self.name}: manifold_split must be one of {', '.join(MANIFOLD_SPLITS)}, got {manifold_split!r}")
        if not temperature > 0:
            raise ConfigError(f"{self.name}: temperature must be > 0, got {temperature!r}")
        if not decay >= 0:
            raise ConfigError(f"{self.name}: decay must be >= 0, got {decay!r}")
        if clusters is not None and clusters < 2:
            raise ConfigError(f"{self.name}: clusters must be >= 2, got {clusters}")
        if discard is not None and discard < 0:
            raise ConfigError(f"{self.name}: discard must be >= 0, got {discard}")
        self.manifold_split = manifold_split
        self.encoder, self._encoder_module = encoder_option(self.name, encoder)
        self._manifold_config = ManifoldConfig.create(steps=pretrain_steps, batch_size=pretrain_batch_size, seed=pretrain_seed)
        self.pretrain_steps = self._manifold_config.steps
        self.pretrain_batch_size = self._manifold_config.batch_size
        self.pretrain_seed = self._manifold_config.seed
        self.clusters = clusters
        self.discard = discard
        compat = self.compat == "hardnobox"
        self.batch_negatives = bool(batch_negatives) if batch_negatives is not None else compat
        self.temperature = float(temperature)
        self.decay = float(decay)
        self.step_size = check_step_size(self.name, step_size)
        self.tvar_bandwidths = int(tvar_bandwidths)
        self.kmeans_seed = int(kmeans_seed)
        self.cache = bool(cache)
        self.progress = bool(progress)
        self._smi = SMIGradient(self.smi_order, num_bandwidths=self.tvar_bandwidths, cache=self.cache)
        self._manifold: Manifold | None = None
        self._negatives: ClusterNegatives | None = None

    # --- set-up ----------------------------------------------------------------------------------------
    def prepare(self, *, model: nn.Module | None, train_data: Any, layout: SkeletonLayout, device: torch.device) -> None:
        """Learn (or load) the encoder on the unlabelled samples ``train_data`` and cluster their embeddings.

        ``train_data`` is an :class:`~skelrobust.nobox.access.UnlabelledSamples` (the runner's), or None: then
        the attack learns on the first batch it attacks.
        """
        if model is not None:
            raise ThreatModelError(f"attack {self.name!r} is hard no-box: prepare must get no model")
        if train_data is None:
            return
        if not isinstance(train_data, UnlabelledSamples):
            raise ThreatModelError(
                f"attack {self.name!r} is hard no-box: prepare takes UnlabelledSamples (no labels), got {type(train_data).__name__}"
            )
        layout.check_joints(int(train_data.data.shape[3]), f"{self.name} unlabelled samples")
        self._setup(train_data, layout, device)

    def _setup(self, samples: UnlabelledSamples, layout: SkeletonLayout, device: torch.device) -> None:
        if self._encoder_module is not None:
            self._manifold = Manifold(encoder=self._encoder_module.to(device).eval(), record={"source": "module"})
        elif self.encoder is not None:
            self._manifold = user_encoder(self.encoder, layout=layout.name, num_persons=int(samples.data.shape[4]), device=device)
        else:
            self._manifold = learn_manifold(
                samples, self._manifold_config, layout=layout.name, device=device, cache=self.cache, progress=self.progress
            )
        embeddings = self._embed_all(samples.data, device)
        self._negatives = ClusterNegatives.fit(embeddings, clusters=self.clusters, discard=self.discard, seed=self.kmeans_seed)
        self._manifold.record.update({"manifold_split": samples.split, "unlabelled_samples": len(samples)})
        log.info("%s: encoder ready (%s); negatives %s", self.name, self._manifold.record, self._negatives.to_dict())

    @torch.no_grad()
    def _embed_all(self, data: np.ndarray, device: torch.device) -> torch.Tensor:
        assert self._manifold is not None
        out = [self._embed(torch.from_numpy(np.ascontiguousarray(data[i : i + _EMBED_BATCH])).to(device))
               for i in range(0, data.shape[0], _EMBED_BATCH)]
        return torch.cat(out)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        assert self._manifold is not None
        z = self._manifold.encoder(x)
        if z.ndim != 2 or z.shape[0] != x.shape[0]:
            raise ConfigError(f"{self.name}: the encoder must return (N, D) embeddings, got {tuple(z.shape)}")
        return z

    # --- the attack ------------------------------------------------------------------------------------
    @property
    def compat_step(self) -> float:
        return float(self.step_size) if self.step_size is not None else HARDNOBOX_STEP

    def run(self, ctx: AttackContext) -> torch.Tensor:
        x = ctx.x
        if self._negatives is None:
            ids = ctx.sample_ids or [f"batch-{i}" for i in range(x.shape[0])]
            self._setup(UnlabelledSamples(x.detach().cpu().numpy().astype(np.float32), list(ids), "attack", "batch"), ctx.layout, x.device)
        assert self._manifold is not None and self._negatives is not None
        encoder = self._manifold.encoder
        encoder.eval()
        for p in encoder.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            clean = self._embed(x)
        negatives = self._negatives.select(clean)
        taps = self._smi.taps(x, ctx.sample_ids)
        mask = ctx.mask.to(x.dtype)
        compat = self.compat == "hardnobox"
        rel = relative_step(ctx.budget, x, self.step_size, 1.0 / self.steps)
        x_adv = x.clone()
        velocity = torch.zeros_like(x)
        loop_start = time.perf_counter()
        for _ in range(self.steps):
            x_var = x_adv.detach().requires_grad_(True)
            with torch.enable_grad():
                loss = nobox_loss(self._embed(x_var), clean, negatives, batch_negatives=self.batch_negatives, temperature=self.temperature)
                (grad,) = torch.autograd.grad(loss.sum(), x_var)
            ctx.gradient_evaluations += 1
            grad = grad * mask
            if compat:
                smi = taps.apply(mean_abs_normalise(grad)) * mask
                direction = smi
                if self.uses_momentum:
                    velocity = self.decay * velocity + smi
                    direction = velocity
                x_adv = ctx.project(x_adv + self.compat_step * direction.sign() * mask)
            else:
                smi = taps.apply(grad) * mask
                direction = smi
                if self.uses_momentum:
                    velocity = self.decay * velocity + l1_normalise(smi)
                    direction = velocity
                x_adv = ctx.project(x_adv + budget_step(direction, ctx.budget, rel, mask))
            ctx.iterations += 1
        loop_seconds = time.perf_counter() - loop_start
        with torch.no_grad():
            ctx.final_loss = nobox_loss(
                self._embed(x_adv), clean, negatives, batch_negatives=self.batch_negatives, temperature=self.temperature
            )
        ctx.extras["nobox"] = {
            "smi_order": self.smi_order,
            "momentum": self.uses_momentum,
            "step_size": self.compat_step if compat else rel * float(ctx.budget.eps_tensor(x).max()),
            "negatives": {**self._negatives.to_dict(), "batch_negatives": self.batch_negatives, "per_sample": int(negatives.shape[1])},
            "encoder": self._manifold.record,
            "loop_seconds": loop_seconds,
        }
        return x_adv


@register_attack("nobox-ifgsm", paper="Lu et al., ICCV 2023 (baseline)", url="https://arxiv.org/abs/2308.05681")
class NoBoxIFGSM(HardNoBoxAttack):
    """I-FGSM with the hard no-box loss (the paper's plain baseline; see :mod:`skelrobust.attacks.nobox`)."""

    smi_order = 0
    uses_momentum = False


@register_attack("nobox-mifgsm", paper="Lu et al., ICCV 2023 (baseline)", url="https://arxiv.org/abs/2308.05681")
class NoBoxMIFGSM(HardNoBoxAttack):
    """MI-FGSM with the hard no-box loss (the paper's momentum baseline)."""

    smi_order = 0
    uses_momentum = True


@register_attack("s1i", paper="Lu et al., ICCV 2023", url="https://arxiv.org/abs/2308.05681")
class S1I(HardNoBoxAttack):
    """S1I-FGSM: I-FGSM on the first-order (TV-AR(1)) SMI gradient."""

    smi_order = 1
    uses_momentum = False


@register_attack("s2i", paper="Lu et al., ICCV 2023", url="https://arxiv.org/abs/2308.05681")
class S2I(HardNoBoxAttack):
    """S2I-FGSM: I-FGSM on the second-order (TV-AR(2)) SMI gradient."""

    smi_order = 2
    uses_momentum = False


@register_attack("s1mi", paper="Lu et al., ICCV 2023", url="https://arxiv.org/abs/2308.05681")
class S1MI(HardNoBoxAttack):
    """S1MI-FGSM: MI-FGSM on the first-order SMI gradient."""

    smi_order = 1
    uses_momentum = True


@register_attack("s2mi", paper="Lu et al., ICCV 2023", url="https://arxiv.org/abs/2308.05681")
class S2MI(HardNoBoxAttack):
    """S2MI-FGSM: MI-FGSM on the second-order SMI gradient."""

    smi_order = 2
    uses_momentum = True
