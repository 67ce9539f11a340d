"""User-style victim factories for the load_victim / CLI tests (imported by spec, not collected by pytest)."""

from __future__ import annotations

import torch
from torch import nn

from skelrobust.victim import Victim


class PoolNet(nn.Module):
    """Mean over frames, joints and persons of the coordinates, then a linear head: (N, 3, T, V, M) -> (N, K)."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.head = nn.Linear(3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.mean(dim=(2, 3, 4)))


def build_module(num_classes: int = 4, scale: float = 1.0) -> nn.Module:
    """A plain module; load_victim wraps it."""
    torch.manual_seed(1)
    net = PoolNet(num_classes)
    with torch.no_grad():
        net.head.weight.mul_(scale)
    return net


def build_victim(num_classes: int = 4) -> Victim:
    """A ready Victim on kinect20."""
    torch.manual_seed(2)
    return Victim.wrap(PoolNet(num_classes), layout="kinect20", num_classes=num_classes, name="pooled")


def build_any_layout(num_classes: int = 4, layout: str = "kinect20", num_persons: int = 2) -> Victim:
    """A Victim for whatever layout and person count it is asked for (load_victim passes the data's)."""
    return Victim.wrap(PoolNet(num_classes), layout=layout, num_classes=num_classes, name="any-layout", num_persons=num_persons)


def build_fixed() -> nn.Module:
    """A factory with no num_classes argument (3 classes)."""
    return PoolNet(3)


NOT_CALLABLE = 42
