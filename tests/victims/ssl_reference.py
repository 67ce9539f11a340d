"""Shared helpers of the SSL-encoder reference tests: a realistic-scale random fill and the test inputs.

``fixtures/ssl_reference.pt`` was produced by ``fixtures/make_ssl_reference.py`` from the official code
(LinguoLi/CrosSCLR, Levigty/AimCLR, LanglandsLin/ActCLR, JHang2020/HiCLR): each method's linear-evaluation
encoder filled with :func:`realistic_fill`, its logits on :func:`network_input`, and the official
``NTUMotionProcessor`` output (cv2 resize, ``parallel_skeleton``) on :func:`raw_input`.
"""

from __future__ import annotations

from pathlib import Path

import torch

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "ssl_reference.pt"
METHODS = ("skeletonclr", "crossclr", "aimclr", "actclr", "hiclr")


def realistic_fill(state: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random-normal weights at the scale of trained ST-GCN-16 checkpoints, keyed by sorted name.

    Conv/linear weights ~ N(0, 1/fan_in), biases ~ N(0, 0.05); BatchNorm weight ~ 1 + N(0, 0.2), bias ~ N(0, 0.3),
    running mean ~ N(0, 0.3), running var ~ U(0.2, 1.5); edge importances ~ 1 + N(0, 0.3); buffers ``A`` and
    integer counters are kept. (The ActCLR release has BN variances 0.04-23 and weight stds 0.04-0.9.)
    """
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key in sorted(state):
        t = state[key]
        if not t.dtype.is_floating_point or key.endswith(".A") or key == "A":
            out[key] = t.clone()
            continue
        r = torch.randn(t.shape, generator=g, dtype=torch.float64)
        name = key.rsplit(".", 1)[-1]
        if "edge_importance" in key:
            v = 1 + 0.3 * r
        elif name == "running_var":
            v = 0.2 + 1.3 * torch.rand(t.shape, generator=g, dtype=torch.float64)
        elif name == "running_mean":
            v = 0.3 * r
        elif t.ndim == 1 and name == "weight":
            v = 1 + 0.2 * r
        elif name == "bias":
            v = (0.3 if "bn" in key or ".tcn.0." in key or ".tcn.3." in key or "residual.1" in key else 0.05) * r
        else:
            fan_in = t[0].numel() if t.ndim > 1 else 1
            v = r / fan_in ** 0.5
        out[key] = v.to(t.dtype)
    return out


def network_input(n: int = 2, t: int = 50) -> torch.Tensor:
    """A preprocessed-scale ``(N, 3, T, 25, 2)`` input (metres relative to SpineShoulder), person 2 absent in sample 1."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(n, 3, t, 25, 2, generator=g) * 0.3
    x[1, :, :, :, 1] = 0
    return x


def raw_input() -> torch.Tensor:
    """Raw camera-like ``(3, 3, 80, 25, 2)`` samples: valid lengths 80, 37 (zero-padded) and 64 (one person)."""
    g = torch.Generator().manual_seed(11)
    base = torch.randn(3, 3, 1, 25, 2, generator=g) * 0.3
    drift = torch.cumsum(torch.randn(3, 3, 80, 25, 2, generator=g) * 0.02, dim=2)
    x = base + drift
    x[:, 2] += 3.0
    x[1, :, 37:] = 0
    x[2, :, 64:] = 0
    x[2, :, :, :, 1] = 0
    return x


PCM3_FIXTURE = FIXTURE.parent / "pcm3_reference.pt"
MACDIFF_FIXTURE = FIXTURE.parent / "macdiff_reference.pt"
CROSSCLR3_FIXTURE = FIXTURE.parent / "crossclr3_reference.pt"


def gru_realistic_fill(state: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """:func:`realistic_fill` with recurrent-network biases at a trained GRU's scale, N(0, 0.1^2).

    GRU matrices are N(0, 1 / fan_in) there already (``weight_hh``: 1 / hidden, a recurrent map of spectral
    radius about 1, as trained GRUs have); :func:`realistic_fill` would draw the GRU's 1-D biases at N(0, 1).
    The head ``fc.weight`` is scaled by 5 (a linear probe trained at lr 0.1-30 ends far above its N(0, 0.01^2)
    start), so the logits spread over several units and small feature errors show.
    """
    out = realistic_fill(state, seed)
    for key in out:
        if ".gru.bias_" in key:
            out[key] = out[key] * 0.1
        elif key.endswith("fc.weight"):
            out[key] = out[key] * 5
    return out


def agcn_raw_input() -> torch.Tensor:
    """Raw camera-like ``(4, 3, 80, 25, 2)`` clips exercising 2s-AGCN's null-frame padding.

    0: two persons for 80 frames; 1: valid 60 frames, person 2 leaves at frame 40 (its frames 40-59 are
    refilled from its start); 2: valid 70 frames, person 1 enters at frame 10 (moved to the start) and has a
    gap at frames 30-34 (kept empty), person 2 absent; 3: one person for 50 frames.
    """
    g = torch.Generator().manual_seed(13)
    base = torch.randn(4, 3, 1, 25, 2, generator=g) * 0.3
    x = base + torch.cumsum(torch.randn(4, 3, 80, 25, 2, generator=g) * 0.02, dim=2)
    x[:, 1] += 0.8
    x[:, 2] += 3.0
    x[1, :, 60:] = 0
    x[1, :, 40:, :, 1] = 0
    x[2, :, 70:] = 0
    x[2, :, :10, :, 0] = 0
    x[2, :, 30:35, :, 0] = 0
    x[2, :, :, :, 1] = 0
    x[3, :, 50:] = 0
    x[3, :, :, :, 1] = 0
    return x


def transformer_realistic_fill(state: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """:func:`realistic_fill` with position tables at a trained ViT's scale (``temp_embed``/``pos_embed`` about
    N(0, 0.35^2) instead of N(0, 1 / 7680)), so that the temporal embedding, and its interpolation, matter."""
    out = realistic_fill(state, seed)
    for key in ("temp_embed", "pos_embed"):
        if key in out:
            out[key] = out[key] * 30
    return out
