"""TASAR post-training: head architecture, SG-AdaHMC step, SWAG moments, sampling, caching keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from skelrobust.bayesian_heads import (
    HEADS_VERSION,
    HeadConfig,
    HeadPosterior,
    dataset_fingerprint,
    head_logits,
    num_head_params,
    sgadahmc_step,
    train_heads,
)
from skelrobust.errors import CheckpointError, ConfigError, DataError


def _features(n: int = 300, c: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g)
    f = torch.randn(n, c, generator=g) * 0.5
    f[torch.arange(n), y] += 1.5
    return f, y


def _reference_head(flat: torch.Tensor, c: int) -> nn.Module:
    """The paper's code's head: Sequential(Linear(C, C), Linear(C, C), ReLU), logits = z + head(z)."""
    head = nn.Sequential(nn.Linear(c, c), nn.Linear(c, c), nn.ReLU())
    sizes = [c * c, c, c * c, c]
    chunks = torch.split(flat, sizes)
    with torch.no_grad():
        head[0].weight.copy_(chunks[0].view(c, c))
        head[0].bias.copy_(chunks[1])
        head[1].weight.copy_(chunks[2].view(c, c))
        head[1].bias.copy_(chunks[3])
    return head


def test_vectorised_heads_equal_a_loop_over_the_reference_module() -> None:
    c = 7
    flat = torch.randn(5, num_head_params(c))
    feats = torch.randn(4, c)
    fast = head_logits(flat, feats)
    assert fast.shape == (5, 4, c)
    for p in range(5):
        z = torch.relu(feats)
        assert torch.allclose(fast[p], z + _reference_head(flat[p], c)(z), atol=1e-6)


def test_sgadahmc_step_equals_the_released_inner_loop_without_noise() -> None:
    config = HeadConfig(temperature=0.0, langevin_steps=30, lr=2e-3)
    params = torch.randn(3, 10)
    grad = torch.randn(3, 10) * 1e-2
    ref = params.clone()
    for _ in range(config.langevin_steps):  # every inner step restarts from momentum 0 and v = 1e-5
        v = 1e-5 - 1e-5 / config.tau + grad * grad / config.tau
        ref = ref + (-(config.lr**2) * grad / v.sqrt())
    out = sgadahmc_step(params, grad, config, torch.Generator().manual_seed(0))
    assert torch.allclose(out, ref, atol=1e-7)
    # the step is about -L * sqrt(2) * lr^2 * sign(g) for large gradients
    big = sgadahmc_step(params, torch.full((3, 10), 5.0), config, torch.Generator())
    assert torch.allclose(big - params, torch.full((3, 10), -30 * 2**0.5 * 4e-6), rtol=1e-3)


def test_post_training_moments_shapes_and_positivity() -> None:
    f, y = _features()
    config = HeadConfig(num_heads=3, epochs=2, batch_size=32)
    post = train_heads(f, y, config, progress=False)
    d = num_head_params(6)
    assert post.stage1.shape == post.mean.shape == post.sqmean.shape == (3, d)
    steps = 2 * 10  # 2 epochs x ceil(300 / 32)
    assert post.snapshots.tolist() == [steps] * 3  # one counter per head (period 1 here: 20 steps < swa_n)
    std = post.std()
    assert (std > 0).all() and torch.isfinite(std).all()
    assert (post.sqmean - post.mean**2 > -1e-6).all()
    assert min(post.stats["swag_mean_train_accuracy"]) > 0.85
    assert not torch.equal(post.stage1[0], post.stage1[1])  # heads start and shuffle independently


def test_swag_period_follows_swa_n() -> None:
    f, y = _features(n=64)
    post = train_heads(f, y, HeadConfig(num_heads=2, epochs=3, batch_size=8, swa_n=6), progress=False)
    # 3 epochs x 8 steps = 24 steps, period floor(24 / 6) = 4 -> snapshots at steps 0, 4, ..., 20
    assert post.snapshots.tolist() == [6, 6]


def test_sampling_is_head_major_and_scaled() -> None:
    f, y = _features(n=64)
    post = train_heads(f, y, HeadConfig(num_heads=2, epochs=1, batch_size=16), progress=False)
    samples = post.sample(500, 1.5, torch.Generator().manual_seed(0))
    assert samples.shape == (1000, post.mean.shape[1])
    per_head = samples.view(2, 500, -1)
    assert torch.allclose(per_head.mean(1), post.mean, atol=6 * 1.5 * post.std().max().item() / 500**0.5)
    ratio = per_head.std(1) / (1.5 * post.std())
    assert 0.85 < ratio.median().item() < 1.15
    zero = post.sample(3, 0.0, torch.Generator())
    assert torch.equal(zero.view(2, 3, -1), post.mean.unsqueeze(1).expand(2, 3, -1))


def test_state_round_trip_and_errors() -> None:
    f, y = _features(n=40)
    post = train_heads(f, y, HeadConfig(num_heads=1, epochs=1, batch_size=8), progress=False)
    back = HeadPosterior.from_state_dict(post.state_dict())
    assert torch.equal(back.mean, post.mean) and back.num_classes == 6
    with pytest.raises(CheckpointError, match="not a TASAR heads artefact"):
        HeadPosterior.from_state_dict({"version": HEADS_VERSION})
    with pytest.raises(CheckpointError, match="version 1, expected"):
        HeadPosterior.from_state_dict({"version": 1})
    with pytest.raises(ConfigError, match="num_heads"):
        HeadConfig(num_heads=0)
    with pytest.raises(DataError, match="labels"):
        train_heads(f, y[:5], progress=False)


def test_dataset_fingerprint_changes_with_content() -> None:
    class Split:
        name, split = "d", "train"

        def __init__(self, data: np.ndarray) -> None:
            self.data = data
            self.labels = np.zeros(len(data), dtype=np.int64)
            self.sample_ids = [str(i) for i in range(len(data))]

    data = np.random.default_rng(0).normal(size=(10, 3, 4, 5, 1)).astype(np.float32)
    a = dataset_fingerprint(Split(data))
    assert a == dataset_fingerprint(Split(data.copy()))
    other = data.copy()
    other[9] += 1
    assert a != dataset_fingerprint(Split(other))


def test_stages_run_the_configured_number_of_sampler_steps() -> None:
    f, y = _features(n=40)
    post = train_heads(f, y, HeadConfig(num_heads=2, steps=25, batch_size=16, swa_n=5), progress=False)
    # 25 steps per stage whatever the data size (3 batches per epoch); SWAG every floor(25 / 5) = 5 steps
    assert post.stats["stage_steps"] == 25 and post.snapshots.tolist() == [5, 5]
    assert HeadConfig().stage_steps(1280) == 6250 == HeadConfig().stage_steps(40_000)
    assert HeadConfig(epochs=5, batch_size=32).stage_steps(1280) == 200  # the prior code's schedule
    with pytest.raises(ConfigError, match="steps must be >= 1"):
        HeadConfig(steps=0)


def test_heads_move_away_from_their_initialisation_with_the_default_schedule() -> None:
    """The epoch schedule on a small set leaves heads at their initialisation; the step schedule does not."""
    f, y = _features(n=64, c=5)
    cold = dict(num_heads=1, batch_size=32, temperature=1e-5)  # the prior code's sampler: the drift alone
    short = train_heads(f, y, HeadConfig(epochs=1, **cold), progress=False)
    long = train_heads(f, y, HeadConfig(steps=300, **cold), progress=False)
    assert short.stats["stage1_mean_abs_move"] < 1e-3 < 0.01 < long.stats["stage1_mean_abs_move"]


def test_diagnostics_flag_a_collapsed_posterior(caplog: pytest.LogCaptureFixture) -> None:
    from skelrobust.bayesian_heads import COLLAPSE_COSINE, posterior_diagnostics, warn_if_collapsed

    f, y = _features(n=80)
    post = train_heads(f, y, HeadConfig(num_heads=1, steps=20, batch_size=16), progress=False)
    narrow = HeadPosterior(post.num_classes, post.stage1, post.mean, post.mean**2, post.snapshots, post.config, {})
    diag = posterior_diagnostics(narrow, f, y, num_samples=5)
    assert diag["dlogit_cosine_mean"] == pytest.approx(1.0, abs=1e-5) and diag["collapsed"]
    assert diag["ensemble_accuracy"] == pytest.approx(float((head_logits(post.mean[:1], f)[0].argmax(1) == y).float().mean()), abs=0.05)
    narrow.stats["diagnostics"] = diag
    with caplog.at_level("WARNING", logger="skelrobust.bayesian_heads"):
        assert warn_if_collapsed(narrow)
    assert any("TASAR posterior collapsed" in r.getMessage() for r in caplog.records)
    wide = HeadPosterior(post.num_classes, post.stage1, post.mean, post.mean**2 + 0.25, post.snapshots, post.config, {})
    spread = posterior_diagnostics(wide, f, y, num_samples=5, scale=1.5)
    assert spread["dlogit_cosine_mean"] < COLLAPSE_COSINE and not spread["collapsed"]
    assert min(spread["swag_relative_std"]) > 1.0
