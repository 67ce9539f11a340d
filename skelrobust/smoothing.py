"""Randomized smoothing (Cohen, Rosenfeld and Kolter, "Certified Adversarial Robustness via Randomized
Smoothing", ICML 2019, arXiv 1902.02918): a smoothed classifier and its l2 certificate.

The smoothed classifier ``g(x) = argmax_c P(f(x + delta) = c)``, ``delta ~ N(0, sigma^2 I)``, is estimated by
Monte Carlo over noisy copies of the input. Noise is added in data units to the entries where the person is
present (absent persons and padded frames stay exactly zero, as for every attack and defense).

- :meth:`SmoothedClassifier.predict` is the paper's PREDICT: majority vote over ``n`` copies; abstain
  (``-1``) unless a two-sided binomial test of the top two counts rejects a tie at level ``alpha``.
- :meth:`SmoothedClassifier.certify` is the paper's CERTIFY: the top class from ``n0`` copies, then a
  one-sided Clopper-Pearson lower bound ``pA`` of its probability from ``n`` fresh copies at level
  ``alpha``; abstain if ``pA <= 1/2``, else certify the l2 radius ``sigma * Phi^-1(pA)`` (in data units,
  over all perturbable entries of the sample).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import beta as beta_distribution
from scipy.stats import binomtest, norm
from torch import nn

from .adapters import person_present
from .errors import ConfigError

#: Prediction / certificate of an abstaining smoothed classifier.
ABSTAIN = -1


def check_sigma(sigma: float, owner: str = "smoothing") -> float:
    """``sigma`` as a float when it is a finite number > 0.

    Raises:
        ConfigError: otherwise (one line naming ``owner``).
    """
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not (math.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"{owner}: --sigma must be a positive noise standard deviation in data units, got {sigma!r}")
    return float(sigma)


def lower_confidence_bound(successes: int, trials: int, alpha: float) -> float:
    """One-sided ``(1 - alpha)`` Clopper-Pearson lower bound of a binomial proportion."""
    if successes <= 0:
        return 0.0
    return float(beta_distribution.ppf(alpha, successes, trials - successes + 1))


@dataclass
class Certificate:
    """CERTIFY's output for a batch: predicted class (``-1`` abstains), ``pA`` lower bound and l2 radius (0 when abstaining)."""

    prediction: np.ndarray
    p_lower: np.ndarray
    radius: np.ndarray


class SmoothedClassifier:
    """Monte-Carlo smoothed version of a base classifier ``f`` on canonical ``(N, C, T, V, M)`` input.

    Args:
        base: The base classifier (logits ``(N, K)``); put in eval mode by the caller.
        num_classes: ``K``.
        sigma: Noise standard deviation in data units (> 0).
        batch_size: Noisy copies evaluated per forward pass.
    """

    def __init__(self, base: nn.Module, num_classes: int, sigma: float, batch_size: int = 500) -> None:
        self.base = base
        self.num_classes = int(num_classes)
        self.sigma = check_sigma(sigma)
        self.batch_size = int(batch_size)

    def noise(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``x`` plus ``N(0, sigma^2)`` on its present entries."""
        present = person_present(x)[:, None, :, None, :].to(x.dtype)
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device if generator is None else generator.device)
        return x + self.sigma * eps.to(x.device) * present

    @torch.no_grad()
    def counts(self, x: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(N, K)`` int64 counts of the base classifier's votes over ``n`` noisy copies of each sample."""
        out = torch.zeros(x.shape[0], self.num_classes, dtype=torch.long, device=x.device)
        per_sample = max(1, self.batch_size // max(1, x.shape[0]))
        done = 0
        while done < n:
            k = min(per_sample, n - done)
            copies = x.repeat_interleave(k, dim=0)  # (N * k, C, T, V, M), sample-major
            votes = self.base(self.noise(copies, generator)).argmax(dim=1).view(x.shape[0], k)
            out += torch.nn.functional.one_hot(votes, self.num_classes).sum(dim=1)
            done += k
        return out

    def predict(self, x: torch.Tensor, n: int, alpha: float = 0.001, generator: torch.Generator | None = None) -> np.ndarray:
        """PREDICT: ``(N,)`` classes, ``-1`` where the top-two binomial test does not reject a tie at ``alpha``."""
        counts = self.counts(x, n, generator).cpu().numpy()
        top2 = np.argsort(-counts, axis=1, kind="stable")[:, :2]
        out = np.full(x.shape[0], ABSTAIN, dtype=np.int64)
        for i, (a, b) in enumerate(top2):
            na, nb = int(counts[i, a]), int(counts[i, b])
            if na + nb > 0 and binomtest(na, na + nb, 0.5).pvalue <= alpha:
                out[i] = a
        return out

    def certify(self, x: torch.Tensor, n0: int, n: int, alpha: float = 0.001, generator: torch.Generator | None = None) -> Certificate:
        """CERTIFY: class from ``n0`` copies, ``pA`` lower bound from ``n`` fresh copies, radius ``sigma * Phi^-1(pA)``."""
        guess = self.counts(x, n0, generator).argmax(dim=1)
        counts = self.counts(x, n, generator)
        hits = counts.gather(1, guess[:, None]).squeeze(1).cpu().numpy()
        p_lower = np.array([lower_confidence_bound(int(k), n, alpha) for k in hits])
        certified = p_lower > 0.5
        radius = np.where(certified, self.sigma * norm.ppf(np.clip(p_lower, 0.5, 1.0)), 0.0)
        prediction = np.where(certified, guess.cpu().numpy(), ABSTAIN)
        return Certificate(prediction=prediction.astype(np.int64), p_lower=p_lower, radius=radius.astype(np.float64))


def certified_accuracy(certificate: Certificate, labels: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Certified accuracy at each radius: share of samples predicted correctly with a radius >= r."""
    correct = certificate.prediction == labels
    return np.array([float((correct & (certificate.radius >= r)).mean()) for r in radii])
