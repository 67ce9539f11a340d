"""``smoothing`` and ``gaussian-noise``: randomized smoothing (Cohen et al., ICML 2019) and its base classifier.

``smoothing`` evaluates the smoothed classifier: each prediction is the majority vote of the base victim over
``n`` noisy copies ``x + N(0, sigma^2 I)`` (noise in data units, on present entries only). Inside the runner
the defended victim returns the vote frequencies, so its argmax is the majority vote; PREDICT's abstention
test and the certificate are :class:`skelrobust.smoothing.SmoothedClassifier` and ``skelrobust certify``.
The adaptive white-box attack is EOT in the form SmoothAdv uses against smoothed classifiers (Salman et al.,
NeurIPS 2019): the attacker ascends the cross-entropy of ``log E[softmax f(x + noise)]``, estimated with
``eot_samples`` fresh draws at every step.

``gaussian-noise`` is the base classifier trained with Gaussian augmentation (``skelrobust train --defense
gaussian-noise --sigma S``), evaluated on its own, without the vote: hardened weights.
"""

from __future__ import annotations


import torch
from torch import nn

from skelrobust.defense import Defense, DefenseKind, register_defense
from skelrobust.errors import ConfigError
from skelrobust.smoothing import DEFAULT_BATCH_SIZE, SmoothedClassifier, check_sigma
from skelrobust.victim import Victim

from .adversarial_training import HardenedWeights


class _Votes(nn.Module):
    """Vote frequencies ``(N, K)`` of a base victim over ``n`` noisy copies (non-differentiable)."""

    def __init__(self, smoothed: SmoothedClassifier, n: int) -> None:
        super().__init__()
        self.base = smoothed.base
        self.smoothed = smoothed
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.smoothed.counts(x, self.n).to(x.dtype) / self.n


class _ExpectedSoftmax(nn.Module):
    """``log`` of the mean softmax over ``k`` noisy copies: differentiable, fresh noise every call (EOT)."""

    def __init__(self, smoothed: SmoothedClassifier, k: int) -> None:
        super().__init__()
        self.base = smoothed.base
        self.smoothed = smoothed
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        copies = self.smoothed.noise(x.repeat_interleave(self.k, dim=0))
        probs = torch.softmax(self.base(copies), dim=1).view(x.shape[0], self.k, -1).mean(dim=1)
        return torch.log(probs.clamp_min(1e-12))


@register_defense("smoothing")
class RandomizedSmoothing(Defense):
    """Randomized smoothing: the majority vote of the victim over Gaussian-noised copies of the input.

    Args:
        sigma: Noise standard deviation in data units (default 0.01; certify with ``skelrobust certify``).
        n: Noisy copies per prediction (default 100).
        eot_samples: Noisy copies per gradient step of the adaptive (EOT) attack (default 8).
        batch_size: Noisy copies per forward pass (default 8, see :data:`skelrobust.smoothing.DEFAULT_BATCH_SIZE`).
    """

    kind = DefenseKind.RANDOMIZED
    differentiable = False
    randomized = True
    paper = "Cohen, Rosenfeld and Kolter, ICML 2019 (arXiv 1902.02918)"

    def __init__(self, sigma: float = 0.01, n: int = 100, eot_samples: int = 8, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.sigma = check_sigma(sigma)
        for label, value in (("n", n), ("eot_samples", eot_samples), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"smoothing: {label} must be an integer >= 1, got {value!r}")
        self.n = n
        self.eot_samples = eot_samples
        self.batch_size = batch_size

    def _wrapped(self, victim: Victim, module: nn.Module, suffix: str) -> Victim:
        out = Victim(
            module, layout=victim.layout, num_classes=victim.num_classes, name=f"{victim.name}+{suffix}", preset=victim.preset,
            config={**victim.config, "defense": self.config()}, checkpoint=victim.checkpoint,
            checkpoint_sha256=victim.checkpoint_sha256, num_persons=victim.num_persons,
        )
        return out.train(victim.training)

    def wrap(self, victim: Victim) -> Victim:
        smoothed = SmoothedClassifier(victim, victim.num_classes, self.sigma, self.batch_size)
        return self._wrapped(victim, _Votes(smoothed, self.n), self.name)

    def adaptive_model(self, victim: Victim) -> tuple[Victim, str]:
        smoothed = SmoothedClassifier(victim, victim.num_classes, self.sigma, self.batch_size)
        model = self._wrapped(victim, _ExpectedSoftmax(smoothed, self.eot_samples), f"{self.name}(eot)")
        return model, f"EOT over {self.eot_samples} noise draws per step (log mean softmax, as SmoothAdv)"


@register_defense("gaussian-noise")
class GaussianNoiseTraining(HardenedWeights):
    """Gaussian-augmentation training: weights trained on x + N(0, sigma^2), the base classifier of smoothing."""

    paper = "Cohen, Rosenfeld and Kolter, ICML 2019 (arXiv 1902.02918)"


