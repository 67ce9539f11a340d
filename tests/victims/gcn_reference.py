"""Shared helpers of the ST-GCN / CTR-GCN reference tests: the deterministic parameter fill and the test input.

The fixture ``fixtures/gcn_reference.pt`` was produced by ``fixtures/make_gcn_reference.py`` from the official
code (yysijie/st-gcn, Uason-Chen/CTR-GCN, open-mmlab/mmskeleton, kennymckormick/pyskl), filling every
parameter and running-statistic tensor with :func:`deterministic_fill` and running :func:`reference_input`.
The tests rebuild skelrobust's networks, apply the same fill by key name and compare the logits.
"""

from __future__ import annotations

from pathlib import Path

import torch

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "gcn_reference.pt"


def deterministic_fill(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fill a state dict deterministically by sorted key name.

    The k-th key in sorted order gets ``sin(arange(numel) * 0.37 + k) * 0.1`` reshaped; BatchNorm running
    variances get ``|.| + 0.5`` so they stay positive; graph buffers (``A`` keys) and integer counters are
    kept, since they encode the graph, not learnt weights.
    """
    out = {}
    for k, key in enumerate(sorted(state)):
        tensor = state[key]
        if not tensor.dtype.is_floating_point or key == "A" or key.endswith(".A"):
            out[key] = tensor.clone()
            continue
        values = (torch.sin(torch.arange(tensor.numel(), dtype=torch.float64) * 0.37 + k) * 0.1).to(tensor.dtype)
        values = values.reshape(tensor.shape)
        out[key] = values.abs() + 0.5 if key.endswith("running_var") else values
    return out


def reference_input(n: int = 2, t: int = 20, v: int = 25, m: int = 2) -> torch.Tensor:
    """The deterministic ``(N, 3, T, V, M)`` network input used for the reference logits."""
    return torch.sin(torch.arange(n * 3 * t * v * m, dtype=torch.float32) * 0.1).reshape(n, 3, t, v, m)
