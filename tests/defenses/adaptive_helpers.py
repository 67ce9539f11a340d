"""Defenses for the adaptive-evaluation tests (loaded as ``file.py:attr`` specs)."""

from __future__ import annotations

from pathlib import Path

import torch

from skelrobust.defense import InputTransformDefense

HERE = Path(__file__).resolve().parent


def spec(attr: str) -> str:
    return f"{HERE / 'adaptive_helpers.py'}:{attr}"


class MasksGradients(InputTransformDefense):
    """Identity forward that claims to be differentiable but passes no gradient: textbook gradient masking."""

    name = "masks_gradients"

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach() + 0 * x  # connected to the graph, zero gradient


class Quantize(InputTransformDefense):
    """Rounds coordinates to a 5 cm grid (absent entries stay zero): not differentiable, so BPDA applies."""

    name = "quantize"
    differentiable = False

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x / 0.05) * 0.05
