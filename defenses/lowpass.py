"""``lowpass``: temporal low-pass smoothing of the input, a simple input-transform defense.

Adversarial perturbations of skeleton sequences found by gradient attacks are largely high-frequency in
time (frame-to-frame jitter), whereas human motion is smooth at 30 fps. Smoothing each joint trajectory
along time removes much of the jitter while leaving the motion nearly unchanged.

The smoothing is a *normalised* convolution over each person's valid frames only: a frame where the
person is absent (all coordinates zero, which includes padding) neither receives nor contributes
values, and near the ends of a sequence the kernel is renormalised over the frames that exist instead
of averaging in zeros. So padding stays exactly zero, a motionless sequence is returned unchanged and
a linear motion is unchanged away from its ends.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from skelrobust.adapters import person_present
from skelrobust.defense import InputTransformDefense, register_defense
from skelrobust.errors import ConfigError


@register_defense("lowpass")
class LowPass(InputTransformDefense):
    """Temporal low-pass smoothing of every joint trajectory over the valid frames.

    Differentiable (a fixed linear filter per presence pattern), deterministic: the adaptive attack takes
    gradients through the filter.

    Args:
        kernel: ``gaussian`` (weights ``exp(-k^2 / (2 sigma^2))``) or ``box`` (moving average).
        sigma: Standard deviation of the Gaussian, in frames (default 1.0). Ignored by ``box``.
        radius: Half-width of the kernel in frames: ``2 * radius + 1`` taps. Default ``ceil(3 sigma)``
            for ``gaussian`` and 1 (a 3-frame moving average) for ``box``.

    Shape:
        ``(N, C, T, V, M)`` in, the same out; entries of absent persons / padded frames stay zero.
    """

    def __init__(self, kernel: str = "gaussian", sigma: float = 1.0, radius: int | None = None) -> None:
        if kernel not in ("gaussian", "box"):
            raise ConfigError(f"lowpass: kernel must be 'gaussian' or 'box', got {kernel!r}")
        if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
            raise ConfigError(f"lowpass: sigma must be a positive number of frames, got {sigma!r}")
        if radius is None:
            radius = int(math.ceil(3 * sigma)) if kernel == "gaussian" else 1
        if not isinstance(radius, int) or radius < 0:
            raise ConfigError(f"lowpass: radius must be an integer >= 0, got {radius!r}")
        self.kernel = kernel
        self.sigma = float(sigma)
        self.radius = radius

    def weights(self, like: torch.Tensor) -> torch.Tensor:
        """The ``2 * radius + 1`` filter taps (unnormalised), on ``like``'s device and dtype."""
        k = torch.arange(-self.radius, self.radius + 1, device=like.device, dtype=like.dtype)
        if self.kernel == "box":
            return torch.ones_like(k)
        return torch.exp(-0.5 * (k / self.sigma) ** 2)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        present = person_present(x)[:, None, :, None, :].to(x.dtype)  # (N, 1, T, 1, M)
        w = self.weights(x).view(1, 1, -1)

        def smooth(z: torch.Tensor) -> torch.Tensor:
            rows = z.permute(0, 1, 3, 4, 2).reshape(-1, 1, t)
            out = F.conv1d(rows, w, padding=self.radius)
            return out.reshape(z.shape[0], z.shape[1], z.shape[3], z.shape[4], t).permute(0, 1, 4, 2, 3)

        numerator = smooth(x * present)  # (N, C, T, V, M)
        denominator = smooth(present)  # (N, 1, T, 1, M); >= the centre tap wherever present
        return torch.where(present > 0, numerator / denominator.clamp_min(1e-12), torch.zeros_like(x))
