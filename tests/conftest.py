"""Shared fixtures: an isolated SKELROBUST_HOME, a tiny victim and a small canonical batch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from skelrobust.victim import Victim

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``slow`` unless SKELROBUST_RUN_SLOW=1."""
    if os.environ.get("SKELROBUST_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow; set SKELROBUST_RUN_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test session gets its own cache unless SKELROBUST_HOME is set (CI sets it to a fresh folder)."""
    if "SKELROBUST_HOME" not in os.environ:
        os.environ["SKELROBUST_HOME"] = str(tmp_path_factory.mktemp("skelrobust-home"))
    torch.set_num_threads(1)


class TinyNet(nn.Module):
    """A few-thousand-parameter recogniser on (N, 3, T, 25, 2): per-frame linear map, temporal mean, linear head."""

    def __init__(self, num_classes: int = 5, hidden: int = 16) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.frame = nn.Linear(3 * 25 * 2, hidden)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(n, t, c * v * m)
        return self.head(torch.tanh(self.frame(frames)).mean(dim=1))


@pytest.fixture
def tiny_victim() -> Victim:
    """A deterministic tiny victim on ntu25 with 5 classes, in eval mode."""
    torch.manual_seed(0)
    return Victim.wrap(TinyNet(), layout="ntu25", num_classes=5, name="tiny").eval()


@pytest.fixture
def canonical_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y): 4 samples (N, 3, 16, 25, 2) in metres; person 1 absent in samples 0-1, frames 12+ padded in sample 2."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 16, 25, 2, generator=g) * 0.3
    x[0:2, :, :, :, 1] = 0.0
    x[2, :, 12:] = 0.0
    y = torch.tensor([0, 1, 2, 3])
    return x, y


@pytest.fixture
def register_temporarily(monkeypatch: pytest.MonkeyPatch):
    """``register(registry, obj, name=None)``: add a plugin for this test only (removed afterwards)."""
    from skelrobust.registry import Entry

    def register(registry, obj, name: str | None = None) -> str:
        name = name or obj.name
        registry.names()  # load the built-ins first, so the test entry is not overwritten by them
        monkeypatch.setitem(registry._entries, name, Entry(name, obj, {}))
        return name

    return register


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (MSR Action3D, UTD-MHAD); tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA
