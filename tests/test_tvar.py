"""TV-AR estimator (local-linear, Triweight, LOO bandwidth) and the motion-gradient taps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelrobust.errors import ConfigError
from skelrobust.tvar import TVARCache, fit_tvar, motion_gradient, motion_taps_from_series, sample_taps, triweight


def _simulate(num: int, n: int, coef: np.ndarray, seed: int) -> np.ndarray:
    """``num`` series of a TV-AR(p) process ``x_t = sum_l coef[t, l] x_{t-1-l} + e_t`` with unit noise."""
    rng = np.random.default_rng(seed)
    p = coef.shape[1]
    x = np.zeros((num, n))
    x[:, :p] = rng.normal(size=(num, p))
    for t in range(p, n):
        x[:, t] = sum(coef[t, lag] * x[:, t - 1 - lag] for lag in range(p)) + rng.normal(size=num)
    return x


def test_triweight_kernel_values() -> None:
    u = torch.tensor([-1.5, -1.0, 0.0, 0.5, 1.0])
    expected = torch.tensor([0.0, 0.0, 35 / 32, 35 / 32 * 0.75**3, 0.0])
    assert torch.allclose(triweight(u), expected)


def test_recovers_time_varying_ar1() -> None:
    n = 300
    tt = np.arange(1, n + 1) / n
    coef = (0.5 + 0.4 * np.sin(2 * np.pi * tt))[:, None]
    fit = fit_tvar(_simulate(12, n, coef, seed=1), 1)
    assert fit.coefficients.shape == (12, n - 1, 1)
    err = np.abs(fit.coefficients[..., 0] - coef[1:, 0]).mean()
    assert err < 0.12, err
    # a constant-coefficient fit could not follow the sine: its error is far larger
    assert np.abs(coef[1:, 0] - coef[1:, 0].mean()).mean() > 2.5 * err


def test_recovers_time_varying_ar2() -> None:
    n = 400
    tt = np.arange(1, n + 1) / n
    coef = np.stack([0.5 * np.cos(2 * np.pi * tt), 0.4 - 0.6 * (tt - 0.5) ** 2], axis=1)
    fit = fit_tvar(_simulate(12, n, coef, seed=2), 2)
    assert fit.coefficients.shape == (12, n - 2, 2)
    err = np.abs(fit.coefficients - coef[None, 2:]).mean(axis=(0, 1))
    assert (err < 0.15).all(), err
    assert np.isfinite(fit.bandwidth).all() and (fit.bandwidth >= 5 / (n - 2)).all()


def test_constant_ar1_gives_constant_tap() -> None:
    n = 200
    coef = np.full((n, 1), 0.7)
    a1, a2 = motion_taps_from_series(_simulate(8, n, coef, seed=3))
    assert abs(np.median(a1[:, 1:-1]) - 0.7) < 0.08
    assert a1.shape == a2.shape == (8, n)
    assert (a1[:, -1] == 0).all() and (a2[:, -2:] == 0).all()


def test_vectorised_equals_per_series() -> None:
    rng = np.random.default_rng(4)
    series = rng.normal(size=(5, 40)).cumsum(axis=1)
    batch = fit_tvar(series, 2)
    for i in range(5):
        single = fit_tvar(series[i : i + 1], 2)
        np.testing.assert_allclose(batch.coefficients[i], single.coefficients[0], rtol=1e-9, atol=1e-12)
        assert batch.bandwidth[i] == single.bandwidth[0]


def test_zero_and_short_series_give_zero_taps() -> None:
    series = np.zeros((2, 30))
    a1, a2 = motion_taps_from_series(series)
    assert np.all(a1 == 0) and np.all(a2 == 0)
    a1, a2 = motion_taps_from_series(np.ones((1, 5)))  # too short to fit: zero taps
    assert np.all(a1 == 0) and np.all(a2 == 0)


def test_bad_input_raises() -> None:
    with pytest.raises(ConfigError, match="series must be"):
        fit_tvar(np.zeros(10), 1)
    with pytest.raises(ConfigError, match="order must be"):
        fit_tvar(np.zeros((1, 10)), 0)


def test_motion_gradient_indexing() -> None:
    g = torch.arange(5, dtype=torch.float32).view(1, 1, 5, 1, 1) + 1  # 1..5
    a1 = torch.full_like(g, 2.0)
    a2 = torch.full_like(g, 10.0)
    out = motion_gradient(g, a1, a2).flatten().tolist()
    # t: 2*g[t+1] + 10*g[t+2]
    assert out == [2 * 2 + 10 * 3, 2 * 3 + 10 * 4, 2 * 4 + 10 * 5, 2 * 5, 0]
    assert torch.equal(motion_gradient(g, torch.zeros_like(g), torch.zeros_like(g)), torch.zeros_like(g))


def test_sample_taps_fit_valid_frames_only() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 3, 30, 4, 2)).cumsum(axis=2).astype(np.float32)
    x[1, :, 20:] = 0  # sample 1 has 20 valid frames
    x[0, :, :, :, 1] = 0  # sample 0 has one person
    a1, a2 = sample_taps(x, [30, 20])
    assert a1.shape == x.shape and a1.dtype == np.float32
    assert np.all(a1[1, :, 20:] == 0) and np.all(a2[1, :, 18:] == 0)
    assert np.all(a1[0, ..., 1] == 0)
    assert np.abs(a1[0, :, 1:-1, :, 0]).mean() > 0.3  # random walks: taps near 1
    # the fit of sample 1 equals a fit of its 20 frames alone
    alone, _ = sample_taps(x[1:2, :, :20], [20])
    np.testing.assert_allclose(a1[1, :, :20], alone[0], rtol=1e-5, atol=1e-6)


def test_cache_is_per_sample_and_aligned(tmp_path) -> None:
    rng = np.random.default_rng(6)
    x = torch.from_numpy(rng.normal(size=(3, 3, 16, 25, 1)).cumsum(axis=2).astype(np.float32))
    cache = TVARCache(num_bandwidths=8, root=tmp_path)
    a1, a2 = cache.taps(x, ["s0", "s1", "s2"])
    assert len(list(tmp_path.glob("*.npz"))) == 3
    # the batch in another order gets the same taps, read back from the cache, aligned with each sample
    order = [2, 0, 1]
    b1, b2 = cache.taps(x[order], ["s2", "s0", "s1"])
    assert torch.equal(b1, a1[order]) and torch.equal(b2, a2[order])
    # a changed sample under the same id is refitted, never served stale taps
    y = x.clone()
    y[0] += torch.from_numpy(rng.normal(size=y[0].shape).astype(np.float32))  # (scaling would not change AR taps)
    c1, _ = cache.taps(y[:1], ["s0"])
    assert len(list(tmp_path.glob("*.npz"))) == 4
    assert not torch.equal(c1[0], a1[0])


@pytest.mark.parametrize("p", [1, 2, 3])
def test_block_solver_matches_lu(p: int) -> None:
    from skelrobust.tvar import _solve_level

    g = torch.Generator().manual_seed(p)
    z = torch.randn(200, 2 * p, 20, generator=g, dtype=torch.float64)
    a = z @ z.transpose(1, 2)  # symmetric positive definite, general off-diagonal block
    b = torch.randn(200, 2 * p, generator=g, dtype=torch.float64)
    ref = torch.linalg.solve(a, b.unsqueeze(-1)).squeeze(-1)[:, :p]
    got = _solve_level(a[:, :p, :p], a[:, :p, p:], a[:, p:, p:], b[:, :p], b[:, p:])
    assert torch.allclose(got, ref, rtol=1e-7, atol=1e-9)
