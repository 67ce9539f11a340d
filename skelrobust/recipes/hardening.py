"""Hardening recipes: adversarial training (PGD-AT, TRADES) and Gaussian-noise augmentation.

- ``pgd-at`` — Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning Models Resistant to
  Adversarial Attacks", ICLR 2018: each step minimises the cross-entropy on PGD examples of the batch.
- ``trades`` — Zhang, Yu, Jiao, Xing, El Ghaoui and Jordan, "Theoretically Principled Trade-off between
  Robustness and Accuracy", ICML 2019: ``CE(f(x), y) + beta * KL(f(x) || f(x'))`` with ``x'`` maximising the
  KL term (beta 6, the paper's default).
- ``gaussian-noise`` — Cohen, Rosenfeld and Kolter, "Certified Adversarial Robustness via Randomized
  Smoothing", ICML 2019: cross-entropy on ``x + N(0, sigma^2 I)``, the base classifier of smoothing.

The inner maximisation is the project's own PGD (:mod:`skelrobust.attacks.pgd`, or its KL variant for
TRADES) through :class:`~skelrobust.attack.Attack`, so it honours exactly the budget, the masks (absent
persons and padded frames never move) and the "no clamp to an invented data range" rule of every attack.
Defaults: the budget of the dataset's protocol (``eps``), 10 steps of ``2.5 * eps / steps``, a random start.
The attack runs with the model in eval mode (batch-norm statistics frozen during the inner loop, as in the
TRADES reference code), the outer step in train mode. Model selection is by validation robust accuracy
under the same inner attack (PGD-AT and TRADES) with a fixed seed, so epochs are compared on identical
perturbation draws.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..attack import Attack, AttackContext, create_attack
from ..data import SkeletonDataset
from ..errors import ConfigError
from ..steps import budget_step, check_step_size, relative_step
from ..victim import Victim
from .base import TrainingRecipe

#: Seed of the validation attack's random starts (fixed so that epochs are compared on the same draws).
VALIDATION_SEED = 12345


class KLDivergencePGD(Attack):
    """TRADES' inner maximisation: PGD ascending ``KL(softmax f(x) || softmax f(x'))`` within the budget.

    Same step rule, projection and masks as ``pgd``; the start is ``x + 0.001 * eps/0.031 * N(0, I)`` (the
    TRADES code's ``0.001 * randn`` at its CIFAR budget 0.031, kept relative to ``eps``). Used by the
    ``trades`` recipe; not a registered attack (it needs no label, and is no benchmark method of its own).
    """

    name = "trades-kl"

    def __init__(self, *, step_size: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step_size = check_step_size("trades", step_size)

    def run(self, ctx: AttackContext) -> torch.Tensor:
        with torch.no_grad():
            clean = F.softmax(ctx.model(ctx.x), dim=1)
        eps = ctx.budget.eps_tensor(ctx.x)
        noise = torch.randn(ctx.x.shape, generator=ctx.generator, device=ctx.x.device, dtype=ctx.x.dtype)
        start = ctx.project(ctx.x + (0.001 / 0.031) * eps * noise * ctx.mask)
        rel = relative_step(ctx.budget, ctx.x, self.step_size, 2.5 / self.steps)

        def kl(logits: torch.Tensor, _x: torch.Tensor) -> torch.Tensor:
            return F.kl_div(F.log_softmax(logits, dim=1), clean, reduction="none").sum(dim=1)

        x_adv = start
        for _ in range(self.steps):
            _, grad = ctx.objective_and_grad(x_adv, objective=kl)
            x_adv = ctx.project(x_adv + budget_step(grad, ctx.budget, rel, ctx.mask))
            ctx.iterations += 1
        return x_adv


class AdversarialRecipe(TrainingRecipe):
    """Shared part of PGD-AT and TRADES: the inner attack and selection by validation robust accuracy."""

    selection: ClassVar[str] = "val_robust_accuracy"

    def __init__(
        self, *, eps: float, norm: str = "linf", steps: int = 10, step_size: float | None = None, label_smoothing: float = 0.0
    ) -> None:
        super().__init__(label_smoothing)
        if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
            raise ConfigError(f"{self.name}: --eps must be a positive budget in data units, got {eps!r}")
        if steps < 1:
            raise ConfigError(f"{self.name}: --attack-steps must be >= 1, got {steps}")
        self.eps = float(eps)
        self.norm = norm
        self.steps = int(steps)
        self.step_size = check_step_size(self.name, step_size)
        self._pgd = create_attack("pgd", eps=self.eps, norm=norm, steps=self.steps, step_size=step_size)

    def validate(self, victim: Victim, ds: SkeletonDataset, indices: np.ndarray, batch_size: int) -> dict[str, float]:
        """Clean and PGD robust accuracy on the validation samples (same attack as the inner loop)."""
        device = next(victim.parameters()).device
        was_training = victim.training
        victim.eval()
        generator = torch.Generator(device=device).manual_seed(VALIDATION_SEED)
        clean = robust = 0
        try:
            for start in range(0, len(indices), batch_size):
                idx = np.asarray(indices[start : start + batch_size])
                x = torch.as_tensor(np.asarray(ds.data[idx]), device=device)
                y = torch.as_tensor(ds.labels[idx], device=device)
                with torch.no_grad():
                    clean += int((victim(x).argmax(1) == y).sum())
                adv = self._pgd(x, y, layout=victim.layout, model=victim, generator=generator).adversarial
                with torch.no_grad():
                    robust += int((victim(adv).argmax(1) == y).sum())
        finally:
            victim.train(was_training)
        return {"val_accuracy": clean / len(indices), "val_robust_accuracy": robust / len(indices)}


class PGDAdversarialTraining(AdversarialRecipe):
    """PGD-AT (Madry et al., ICLR 2018): cross-entropy on the PGD examples of each batch."""

    name = "pgd-at"

    def loss(self, victim: Victim, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        adv = self._pgd(x, y, layout=victim.layout, model=victim, generator=generator).adversarial
        logits = victim(adv)
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing), logits


class TRADES(AdversarialRecipe):
    """TRADES (Zhang et al., ICML 2019): ``CE(f(x), y) + beta * KL(f(x) || f(x'))``, beta 6 by default."""

    name = "trades"

    def __init__(self, *, beta: float = 6.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not (math.isfinite(beta) and beta >= 0):
            raise ConfigError(f"trades: --beta must be a number >= 0, got {beta!r}")
        self.beta = float(beta)
        self._kl = KLDivergencePGD(eps=self.eps, norm=self.norm, steps=self.steps, step_size=self.step_size)

    def loss(self, victim: Victim, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        adv = self._kl(x, y, layout=victim.layout, model=victim, generator=generator).adversarial
        logits = victim(torch.cat([x, adv]))  # one pass: batch-norm sees clean and adversarial together
        clean, robust = logits[: len(x)], logits[len(x) :]
        natural = F.cross_entropy(clean, y, label_smoothing=self.label_smoothing)
        kl = F.kl_div(F.log_softmax(robust, dim=1), F.softmax(clean, dim=1), reduction="batchmean")
        return natural + self.beta * kl, clean


class GaussianNoiseTraining(TrainingRecipe):
    """Gaussian augmentation (Cohen et al., ICML 2019): cross-entropy on ``x + N(0, sigma^2)`` per present entry.

    The base classifier of randomized smoothing must be accurate under the noise it will be smoothed with.
    Noise is in data units and never touches absent persons or padded frames. Selection by validation
    accuracy under one fixed noise draw.
    """

    name = "gaussian-noise"
    selection: ClassVar[str] = "val_noisy_accuracy"

    def __init__(self, *, sigma: float, label_smoothing: float = 0.0) -> None:
        super().__init__(label_smoothing)
        if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
            raise ConfigError(f"gaussian-noise: --sigma must be a positive noise level in data units, got {sigma!r}")
        self.sigma = float(sigma)

    def noisy(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from ..adapters import person_present

        present = person_present(x)[:, None, :, None, :].to(x.dtype)
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return x + self.sigma * noise * present

    def loss(self, victim: Victim, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        logits = victim(self.noisy(x, generator))
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing), logits

    def validate(self, victim: Victim, ds: SkeletonDataset, indices: np.ndarray, batch_size: int) -> dict[str, float]:
        device = next(victim.parameters()).device
        generator = torch.Generator().manual_seed(VALIDATION_SEED)
        was_training = victim.training
        victim.eval()
        clean = noisy = 0
        try:
            with torch.no_grad():
                for start in range(0, len(indices), batch_size):
                    idx = np.asarray(indices[start : start + batch_size])
                    x = torch.as_tensor(np.asarray(ds.data[idx]), device=device)
                    y = torch.as_tensor(ds.labels[idx], device=device)
                    clean += int((victim(x).argmax(1) == y).sum())
                    noisy += int((victim(self.noisy(x, generator)).argmax(1) == y).sum())
        finally:
            victim.train(was_training)
        return {"val_accuracy": clean / len(indices), "val_noisy_accuracy": noisy / len(indices)}


_RECIPES = {"pgd-at": PGDAdversarialTraining, "trades": TRADES, "gaussian-noise": GaussianNoiseTraining}


def create_recipe(name: str, **options: Any) -> TrainingRecipe:
    """The recipe of hardening defense ``name`` with its options (``eps``, ``steps``, ``beta``, ``sigma``...).

    Raises:
        ConfigError: an unknown name, an option the recipe does not take, or a bad value.
    """
    if name not in _RECIPES:
        raise ConfigError(f"--defense {name!r} has no training recipe; choose one of: {', '.join(_RECIPES)}")
    try:
        return _RECIPES[name](**options)
    except TypeError as exc:
        raise ConfigError(f"--defense {name}: bad options {sorted(options)} ({exc})") from exc
