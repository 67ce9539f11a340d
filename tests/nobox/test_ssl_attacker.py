"""The self-supervised attacker: its linear head, its cache and its own-surrogate access through the runner."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from skelrobust.benchmark.cell import run_cell
from skelrobust.benchmark.cell_config import RunConfig
from skelrobust.errors import ConfigError, ThreatModelError
from skelrobust.nobox.probe import ProbeConfig, linear_probe, train_head
from user_encoder_source import FRAME_ENCODER_SOURCE


class _Mean(nn.Module):
    """Embedding = the clip's mean coordinate per channel (N, 3): enough to separate shifted clips."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3, 4))


def _shifted_clips(n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 3
    data = rng.standard_normal((n, 3, 4, 25, 1)).astype(np.float32) * 0.1
    data[:, 0] += labels[:, None, None, None] * 2.0  # class k sits at x = 2k
    return data, labels


def test_head_separates_separable_features_and_is_frozen() -> None:
    data, labels = _shifted_clips()
    head, record = train_head(_Mean()(torch.from_numpy(data)), torch.from_numpy(labels), 3, ProbeConfig(epochs=30, lr=0.5))
    assert record["train_accuracy"] == 1.0 and record["train_loss"] < 0.5
    assert not any(p.requires_grad for p in head.parameters())


def test_head_is_cached_by_encoder_data_and_labels(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SKELROBUST_HOME", str(tmp_path))
    data, labels = _shifted_clips()
    cfg = ProbeConfig(epochs=5)
    first, rec1 = linear_probe(_Mean(), {"id": "a"}, data, labels, 3, cfg)
    again, rec2 = linear_probe(_Mean(), {"id": "a"}, data, labels, 3, cfg)
    assert (rec1["cache"], rec2["cache"]) == ("trained now", "disk") and rec1["fingerprint"] == rec2["fingerprint"]
    assert torch.equal(first.head.weight, again.head.weight)
    _, other_labels = linear_probe(_Mean(), {"id": "a"}, data, (labels + 1) % 3, 3, cfg)
    _, other_encoder = linear_probe(_Mean(), {"id": "b"}, data, labels, 3, cfg)
    assert len({rec1["fingerprint"], other_labels["fingerprint"], other_encoder["fingerprint"]}) == 3
    with pytest.raises(ConfigError, match=r"labels must be in \[0, 3\)"):
        linear_probe(_Mean(), {"id": "a"}, data, labels + 1, 3, cfg)


def test_runner_gives_the_training_split_and_no_model(tmp_path) -> None:
    (tmp_path / "enc.py").write_text(FRAME_ENCODER_SOURCE)
    spec = f"{tmp_path / 'enc.py'}:FrameEncoder"
    cfg = RunConfig(
        attack="ssl-attacker", victims=["stgcn"], dataset="synthetic", eps=0.05, steps=2, n_samples=4, batch_size=4, device="cpu",
        selection="all", attack_options={"encoder": spec, "head_epochs": 2, "progress": False},
    )
    results = run_cell(cfg, tmp_path / "run", progress=False)
    assert results["threat_model"] == "own-surrogate" and results["surrogate"] is None and results["n_samples"] == 4
    extras = results["attack_extras"][0]["ssl_attacker"]
    assert extras["encoder"]["source"] == "user code" and extras["head"]["training_clips"] == 1280  # the whole train split
    assert extras["head"]["cache"] == "trained now" and extras["method"] == "ifgsm"
    assert 0.0 <= results["victims"][0]["fooling_rate"] <= 1.0
    with pytest.raises(ThreatModelError, match="--surrogate stgcn is refused"):
        run_cell(RunConfig(**{**cfg.__dict__, "surrogate": "stgcn"}), tmp_path / "refused", progress=False)


def test_options_are_checked_in_one_line() -> None:
    from skelrobust.attack import create_attack

    with pytest.raises(ConfigError, match="method must be one of ifgsm, mifgsm"):
        create_attack("ssl-attacker", method="pgd")
    with pytest.raises(ConfigError, match="decay applies to method=mifgsm only"):
        create_attack("ssl-attacker", decay=0.5)
    attack = create_attack("ssl-attacker", method="mifgsm", decay=0.5, eps=0.02, steps=7)
    assert attack._attack.name == "mifgsm" and attack._attack.steps == 7 and attack._attack.budget.eps == 0.02
    with pytest.raises(ConfigError, match="call attack.prepare"):
        attack.surrogate
