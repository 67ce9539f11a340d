"""A defense that breaks on one victim only, for the failure-isolation tests (loaded as a ``file.py:attr`` spec)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from skelrobust.defense import Defense
from skelrobust.victim import Victim

HERE = Path(__file__).resolve().parent


def spec(attr: str) -> str:
    """``/abs/path/isolation_helpers.py:attr``."""
    return f"{HERE / 'isolation_helpers.py'}:{attr}"


class _Boom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom on\nthis input")


class FailsOnVictimB(Defense):
    """Leaves every victim unchanged except ``victim_b``, whose defended forward raises."""

    name = "fails_on_b"

    def wrap(self, victim: Victim) -> Victim:
        if "victim_b" not in victim.name:
            return victim
        return Victim(
            victim.network, layout=victim.layout, num_classes=victim.num_classes,
            adapter=nn.Sequential(_Boom(), victim.adapter), name=f"{victim.name}+boom",
        )
