"""The skeleton-motion-informed (SMI) gradient: a reusable gradient transform built on TV-AR fits.

Lu, Wang, Chang, Yang, Shum, "Hard No-Box Adversarial Attack on Skeleton-Based Human Action Recognition
with Skeleton-Motion-Informed Gradient", ICCV 2023 (arXiv 2308.05681), section 4.

A raw input gradient treats frames as independent. The SMI gradient is the total derivative of the loss
through an explicit, time-varying autoregressive model of the clean clip, fitted per coordinate, joint and
person on the sample's valid frames (:mod:`skelrobust.tvar`):

- first order, TV-AR(1) ``S_t = A_t S_{t-1} + B_t``: ``g^_t = g_t + A_{t+1} g_{t+1}`` (paper Eq. 5, 9);
- second order, TV-AR(2) ``S_t = C_t S_{t-1} + D_t S_{t-2} + E_t``:
  ``g^_t = g_t + C_{t+1} g_{t+1} + (C_{t+1} C_{t+2} + D_{t+2}) g_{t+2}`` (Eq. 6, 10, re-indexed per frame;
  the first frame's one-step tap is the AR(1) coefficient, as the released code does).

Both are the same anti-causal 3-tap time-varying filter ``g + a1 * g[t+1] + a2 * g[t+2]``
(:func:`skelrobust.tvar.motion_gradient`) with different taps; order 0 is the identity (plain gradient).

Usage (any iterative attack; TASAR's motion term is the second-order transform)::

    smi = SMIGradient(order=2)
    taps = smi.taps(x_clean, sample_ids)     # fitted once per clean sample, cached on disk
    for step in range(steps):
        g = ...                              # raw gradient (N, C, T, V, M)
        g_hat = taps.apply(g)                # SMI gradient

Second-order taps are :class:`~skelrobust.tvar.TVARCache`'s, in the same cache files TASAR uses; first-order
taps come from a TV-AR(1) fit with the same estimator, cached beside them under their own key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .data.base import valid_lengths
from .errors import ConfigError
from .tvar import TVARCache, fit_tvar, motion_gradient, sample_taps

#: SMI orders: 0 (raw gradient), 1 (TV-AR(1)), 2 (TV-AR(2)).
ORDERS = (0, 1, 2)


def first_order_taps_from_series(series: np.ndarray, *, num_bandwidths: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """First-order SMI taps of equal-length series ``(S, n)``: ``a1[t] = A_{t+1}``, ``a2 = 0``.

    ``A_{t+1}`` is the TV-AR(1) coefficient of the row predicting ``x[t+1]`` from ``x[t]``; the last frame
    has no successor and gets 0. NaN coefficients become 0 (as the released code does).
    """
    num, n = series.shape
    a1 = np.zeros((num, n))
    a2 = np.zeros((num, n))
    if n >= 2:
        ar1 = fit_tvar(series, 1, num_bandwidths=num_bandwidths).coefficients  # (S, n-1, 1)
        if ar1.shape[1]:
            a1[:, : n - 1] = ar1[..., 0]
    return np.nan_to_num(a1), a2


class FirstOrderTVARCache(TVARCache):
    """:class:`~skelrobust.tvar.TVARCache` holding first-order SMI taps (TV-AR(1) fits), keyed apart."""

    kind = "tvar-order1"

    def fit(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return sample_taps(
            data, valid_lengths(data), num_bandwidths=self.num_bandwidths, series_taps=first_order_taps_from_series
        )


@dataclass
class SMITaps:
    """The taps of one clean batch: ``a1``, ``a2`` ``(N, C, T, V, M)`` (None for order 0)."""

    order: int
    a1: torch.Tensor | None
    a2: torch.Tensor | None

    def apply(self, grad: torch.Tensor) -> torch.Tensor:
        """The SMI gradient ``g + a1 * g[t+1] + a2 * g[t+2]`` of ``grad`` ``(N, C, T, V, M)`` (order 0: ``grad``)."""
        if self.a1 is None or self.a2 is None:
            return grad
        if grad.shape != self.a1.shape:
            raise ConfigError(f"SMI gradient: taps are {tuple(self.a1.shape)}, gradient is {tuple(grad.shape)}")
        return grad + motion_gradient(grad, self.a1, self.a2)


class SMIGradient:
    """The SMI gradient transform of a given order, with its per-sample TV-AR taps cached.

    Args:
        order: 0 (identity), 1 (TV-AR(1), S1 attacks) or 2 (TV-AR(2), S2 attacks and TASAR's motion term).
        num_bandwidths: Bandwidth grid of the leave-one-out TV-AR fit (default 25).
        cache: Keep the taps on disk under ``SKELROBUST_HOME`` (keyed by sample content and settings).
        root: Cache folder (default: the TV-AR cache shared with TASAR).
    """

    def __init__(self, order: int, *, num_bandwidths: int = 25, cache: bool = True, root: str | Path | None = None) -> None:
        if order not in ORDERS:
            raise ConfigError(f"SMI gradient: order must be one of {ORDERS}, got {order!r}")
        if num_bandwidths < 1:
            raise ConfigError(f"SMI gradient: num_bandwidths must be >= 1, got {num_bandwidths}")
        self.order = int(order)
        cls = FirstOrderTVARCache if order == 1 else TVARCache
        self._cache = cls(num_bandwidths=num_bandwidths, root=root, persist=cache) if order else None

    def taps(self, x: torch.Tensor, sample_ids: Sequence[str] | None = None) -> SMITaps:
        """The taps of the clean batch ``x`` ``(N, C, T, V, M)``, fitted once per sample (cached)."""
        if self._cache is None:
            return SMITaps(order=0, a1=None, a2=None)
        a1, a2 = self._cache.taps(x, sample_ids)
        return SMITaps(order=self.order, a1=a1, a2=a2)
