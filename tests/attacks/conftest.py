"""Fixtures shared by the attack tests."""

from __future__ import annotations

import pytest
import torch

from skelrobust.attack import Masks


@pytest.fixture
def data(tiny_victim, canonical_batch):
    """``(x, y, mask)``: the canonical batch labelled with the tiny victim's own predictions, and its mask."""
    x, _ = canonical_batch
    with torch.no_grad():
        y = tiny_victim(x).argmax(1)
    return x, y, Masks().tensor(x)
