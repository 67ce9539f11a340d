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
from collections.abc import Iterator, Sequence
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


#: Noisy copies drawn per call of the noise generator for one sample. Fixed (not the forward batch size), so
#: the noise a sample receives, hence its votes, does not depend on how copies are grouped into forward passes.
NOISE_BLOCK = 1000

#: Default noisy copies per forward pass, for the CPU. Small batches keep a lite model's activations in cache: on
#: the lite ST-GCN (one thread) a copy costs about half as much in passes of 8 copies as in passes of 32 or more
#: (bench/bench_certify.py). On a GPU, pass a larger batch size.
DEFAULT_BATCH_SIZE = 8

Generators = torch.Generator | Sequence[torch.Generator] | None


def sample_generators(seed: int, ids: Sequence[int]) -> list[torch.Generator]:
    """One noise generator per sample, seeded from ``(seed, id)``: a sample's noise depends on nothing else."""
    return [torch.Generator().manual_seed(int(np.random.SeedSequence([int(seed), int(i)]).generate_state(1, np.uint64)[0] >> 1))
            for i in ids]


class SmoothedClassifier:
    """Monte-Carlo smoothed version of a base classifier ``f`` on canonical ``(N, C, T, V, M)`` input.

    Noisy copies of consecutive samples share forward passes of ``batch_size`` copies (sample-major), votes
    are tallied with one ``bincount`` per pass, under ``torch.inference_mode``: no Python loop over copies.

    Args:
        base: The base classifier (logits ``(N, K)``); put in eval mode by the caller.
        num_classes: ``K``.
        sigma: Noise standard deviation in data units (> 0).
        batch_size: Noisy copies evaluated per forward pass.
    """

    def __init__(self, base: nn.Module, num_classes: int, sigma: float, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.base = base
        self.num_classes = int(num_classes)
        self.sigma = check_sigma(sigma)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"smoothing: batch size must be an integer >= 1, got {batch_size!r}")
        self.batch_size = batch_size

    def noise(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``x`` plus ``N(0, sigma^2)`` on its present entries."""
        present = person_present(x)[:, None, :, None, :].to(x.dtype)
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device if generator is None else generator.device)
        return x + self.sigma * eps.to(x.device) * present

    def _noisy_blocks(self, x: torch.Tensor, n: int, generators: Generators) -> Iterator[tuple[int, torch.Tensor]]:
        """``(sample, copies)`` blocks of at most :data:`NOISE_BLOCK` noisy copies, sample after sample."""
        for i in range(x.shape[0]):
            generator = generators[i] if isinstance(generators, Sequence) else generators
            present = person_present(x[i : i + 1])[:, None, :, None, :].to(x.dtype)
            for start in range(0, n, NOISE_BLOCK):
                k = min(NOISE_BLOCK, n - start)
                eps = torch.randn((k, *x.shape[1:]), generator=generator, dtype=x.dtype,
                                  device=x.device if generator is None else generator.device)
                yield i, x[i : i + 1] + self.sigma * eps.to(x.device) * present

    def _batches(self, blocks: Iterator[tuple[int, torch.Tensor]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Regroup ``(sample, copies)`` blocks into forward batches of ``batch_size`` copies and their owners."""
        parts: list[torch.Tensor] = []
        owners: list[torch.Tensor] = []
        size = 0
        for i, copies in blocks:
            start = 0
            while start < copies.shape[0]:
                take = min(self.batch_size - size, copies.shape[0] - start)
                parts.append(copies[start : start + take])
                owners.append(torch.full((take,), i, dtype=torch.long, device=copies.device))
                size, start = size + take, start + take
                if size == self.batch_size:
                    yield torch.cat(parts), torch.cat(owners)
                    parts, owners, size = [], [], 0
        if size:
            yield torch.cat(parts), torch.cat(owners)

    def counts(self, x: torch.Tensor, n: int, generator: Generators = None) -> torch.Tensor:
        """``(N, K)`` int64 counts of the base classifier's votes over ``n`` noisy copies of each sample.

        ``generator``: one generator for all samples (drawn sample after sample), one per sample (see
        :func:`sample_generators`; a sample's votes then depend only on its own generator), or ``None``.
        """
        if isinstance(generator, Sequence) and len(generator) != x.shape[0]:
            raise ConfigError(f"smoothing: {len(generator)} noise generators for {x.shape[0]} samples")
        k = self.num_classes
        with torch.inference_mode():
            votes = torch.zeros(x.shape[0] * k, dtype=torch.long, device=x.device)
            for batch, owner in self._batches(self._noisy_blocks(x, n, generator)):
                votes.add_(torch.bincount(owner * k + self.base(batch).argmax(dim=1), minlength=votes.numel()))
        return votes.view(x.shape[0], k).clone()

    def predict(self, x: torch.Tensor, n: int, alpha: float = 0.001, generator: Generators = None) -> np.ndarray:
        """PREDICT: ``(N,)`` classes, ``-1`` where the top-two binomial test does not reject a tie at ``alpha``."""
        counts = self.counts(x, n, generator).cpu().numpy()
        top2 = np.argsort(-counts, axis=1, kind="stable")[:, :2]
        out = np.full(x.shape[0], ABSTAIN, dtype=np.int64)
        for i, (a, b) in enumerate(top2):
            na, nb = int(counts[i, a]), int(counts[i, b])
            if na + nb > 0 and binomtest(na, na + nb, 0.5).pvalue <= alpha:
                out[i] = a
        return out

    def certify(self, x: torch.Tensor, n0: int, n: int, alpha: float = 0.001, generator: Generators = None) -> Certificate:
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
