"""The run's protocol defaults come from benchmark.yaml (n_samples, selection, order, device too)."""

from __future__ import annotations

import pytest

from skelrobust import config as protocol
from skelrobust.errors import ConfigError
from skelrobust.benchmark.cell_config import RunConfig, default_selection, resolve_config


def _resolve(**overrides) -> RunConfig:
    return default_selection(resolve_config(RunConfig(attack="pgd", victims=["stgcn"], dataset="synthetic", **overrides)))


def test_packaged_protocol_states_every_run_default() -> None:
    defaults = protocol.defaults()
    assert "eps" not in defaults  # the budget is per dataset: datasets.<name>.eps
    assert {"norm", "steps", "targeted", "seed", "batch_size", "n_samples", "selection", "order", "device"} <= set(defaults)
    cfg = _resolve()
    assert (cfg.n_samples, cfg.selection, cfg.order) == (defaults["n_samples"], defaults["selection"], defaults["order"])
    assert cfg.device in ("cpu", "cuda")


def test_defaults_follow_the_protocol_file(monkeypatch: pytest.MonkeyPatch) -> None:
    changed = {**protocol.defaults(), "n_samples": 17, "selection": "all", "order": "file", "device": "cpu"}
    monkeypatch.setattr(protocol, "defaults", lambda: dict(changed))
    cfg = _resolve()
    assert (cfg.n_samples, cfg.selection, cfg.order, cfg.device) == (17, "all", "file", "cpu")
    assert _resolve(n_samples=3, selection="correct", order="seeded").n_samples == 3


def test_robustbenchhar_compat_walks_the_file_in_order() -> None:
    assert _resolve(compat="robustbenchhar").order == "file"
    assert _resolve(compat="robustbenchhar", order="seeded").order == "seeded"


def test_bad_protocol_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "defaults", lambda: {"selection": "most"})
    with pytest.raises(ConfigError, match="defaults.selection must be correct or all, got 'most'"):
        _resolve()
