"""A tiny frame-wise MLP baseline victim (``mlp``).

Not a published recogniser: a fast, layout-agnostic reference model for tests, smoke runs and as the
floor every real architecture should beat. Each person-frame (all joints, centred on the layout's centre
joint of that frame) goes through a two-layer MLP; features are max-pooled over frames and persons and a
linear head produces the logits. Padded frames and absent persons are exactly zero after centring, so
they contribute ``MLP(0)`` which the max pooling can ignore.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from skelrobust.layouts import LAYOUTS, SkeletonLayout, get_layout
from skelrobust.victim import Victim, VictimFamily, register_victim

PRESETS: dict[str, dict[str, Any]] = {
    "lite": {"hidden": 64, "dropout": 0.0},
    "full": {"hidden": 256, "dropout": 0.2},
}


class CentreJoint(nn.Module):
    """Adapter: subtract the layout's centre joint in every frame (translation invariance).

    Shape: ``(N, C, T, V, M)`` -> same. A zero (absent or padded) person-frame stays zero.
    """

    def __init__(self, layout: SkeletonLayout) -> None:
        super().__init__()
        self.center = int(layout.center)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - x[:, :, :, self.center : self.center + 1, :]


class FrameMLP(nn.Module):
    """Per-person-frame MLP, max-pooled over time and persons, with a linear head.

    Args:
        in_channels: Coordinates per joint (3).
        num_joints: Joints per frame (V).
        num_classes: Output logits.
        hidden: Width of both hidden layers.
        dropout: Dropout before the head (training only).
    """

    def __init__(self, in_channels: int, num_joints: int, num_classes: int, hidden: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Sequential(
            nn.Linear(in_channels * num_joints, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        frames = x.permute(0, 4, 2, 1, 3).reshape(n, m * t, c * v)
        feats = self.embed(frames).amax(dim=1)
        return self.fc(self.drop(feats))


def build(
    preset: str = "lite", num_classes: int = 60, layout: str = "ntu25", num_persons: int | None = None, **config: Any
) -> Victim:
    """Build an ``mlp`` victim with random weights (``hidden``/``dropout`` override the preset)."""
    lay = get_layout(layout)
    cfg = {**PRESETS[preset], **config}
    network = FrameMLP(3, lay.num_joints, num_classes, hidden=int(cfg["hidden"]), dropout=float(cfg["dropout"]))
    return Victim(
        network,
        layout=lay,
        num_classes=num_classes,
        adapter=CentreJoint(lay),
        name="mlp",
        preset=preset,
        config=cfg,
        num_persons=num_persons,
    )


register_victim(
    VictimFamily(
        name="mlp",
        build=build,
        presets=tuple(PRESETS),
        layouts=("ntu25", *(n for n in LAYOUTS.names() if n != "ntu25")),
        description="Tiny frame-wise MLP baseline (not a published model): fast tests and a floor for real victims",
        paper="",
    )
)
