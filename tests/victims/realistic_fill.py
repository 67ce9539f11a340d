"""Random-normal weights at the scale of trained networks, for logit comparisons with the official code.

Smooth, small fills (``sin(...) / 10``) hide layout bugs: a mis-laid relative position bias changed
SkateFormer's logits by 7e-7 under such a fill and by 0.18 with trained-scale bias tables (0.02-0.16 on
the reference cases under this fill). This fill draws
every floating tensor from its own seeded normal (seed = the key's index in the sorted state dict, so two
implementations with the same key names get the same values):

- ``relative_position_bias_table``: N(0, 0.5^2), the spread of trained tables;
- matrices and kernels (ndim >= 2): N(0, 1 / fan_in) with ``fan_in = numel / shape[0]`` (He-like scale);
  SkateFormer's ``gconv`` and CTR-GCN's ``PA`` (learnt joint mixing) and ST-GCN's ``edge_importance`` are
  matrices too, except that ``edge_importance`` is centred on 1 (its initial value);
- norm scales (1-D ``weight``): 1 + N(0, 0.1^2); biases, running means and other 1-D parameters (CTR-GCN's
  ``alpha``): N(0, 0.1^2); running variances: 0.5 + |N(0, 0.5^2)| (or calibrated, see :func:`fill_module`);
- integer buffers and graph buffers (``A``) are kept.

Used by the tests and by the fixture scripts under ``fixtures/`` (which run the official code).
"""

from __future__ import annotations

import torch


def realistic_fill(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of ``state`` with every learnt floating tensor replaced as described in the module docstring."""
    out: dict[str, torch.Tensor] = {}
    for k, key in enumerate(sorted(state)):
        tensor = state[key]
        leaf = key.rsplit(".", 1)[-1]
        if not tensor.dtype.is_floating_point or leaf == "A":
            out[key] = tensor.clone()
            continue
        noise = torch.randn(tensor.shape, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
        if "relative_position_bias_table" in key:
            values = noise * 0.5
        elif leaf == "running_var":
            values = 0.5 + noise.abs() * 0.5
        elif "edge_importance" in key:
            values = 1.0 + noise * 0.1
        elif tensor.ndim >= 2:
            values = noise / (tensor.numel() / tensor.shape[0]) ** 0.5
        elif leaf == "weight":
            values = 1.0 + noise * 0.1
        else:
            values = noise * 0.1
        out[key] = values.to(tensor.dtype)
    return out


def fill_module(module: torch.nn.Module, calibration: tuple[torch.Tensor, ...] | None = None) -> torch.nn.Module:
    """Load :func:`realistic_fill` of ``module``'s own state dict into it (strict) and return it in eval mode.

    With ``calibration`` (network inputs), BatchNorm running statistics are then set to the batch statistics
    of one forward pass on them, as training leaves them: without this, deep GCNs with random weights grow
    their activations layer by layer (CTR-GCN's logits reach 1e3). Only BatchNorm layers run in train mode
    for that pass, so dropout stays off and the result is deterministic.
    """
    module.load_state_dict(realistic_fill(module.state_dict()))
    module.eval()
    if calibration is not None:
        norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average: after one batch, exactly its statistics
            norm.train()
        with torch.no_grad():
            module(*calibration)
        module.eval()
    return module


def realistic_input(n: int = 2, t: int = 20, v: int = 25, m: int = 2, seed: int = 0) -> torch.Tensor:
    """A seeded standard-normal ``(N, 3, T, V, M)`` network input (no zero frames or persons)."""
    return torch.randn(n, 3, t, v, m, generator=torch.Generator().manual_seed(seed))
