"""The SMI gradient transform: orders 0/1/2, its taps (shared TV-AR cache for order 2) and the filter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelrobust.errors import ConfigError
from skelrobust.smi import SMIGradient, first_order_taps_from_series
from skelrobust.tvar import TVARCache


def _ar1(num: int, n: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((num, n))
    x[:, 0] = rng.normal(size=num)
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + rng.normal(size=num)
    return x


def _batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.cumsum(torch.randn(2, 3, 20, 25, 2, generator=g) * 0.05, dim=2)  # smooth random walks
    x[0, :, :, :, 1] = 0.0  # person 1 absent in sample 0
    x[1, :, 15:] = 0.0  # sample 1 padded after frame 15
    return x


def test_first_order_taps_recover_constant_coefficient() -> None:
    a1, a2 = first_order_taps_from_series(_ar1(8, 200, 0.6, seed=0))
    assert a1.shape == a2.shape == (8, 200)
    assert abs(np.median(a1[:, :-1]) - 0.6) < 0.08
    assert (a1[:, -1] == 0).all() and (a2 == 0).all()


def test_order_zero_is_identity_and_bad_order_refused() -> None:
    taps = SMIGradient(0).taps(_batch())
    g = torch.randn(2, 3, 20, 25, 2)
    assert torch.equal(taps.apply(g), g)
    with pytest.raises(ConfigError, match="order must be one of"):
        SMIGradient(3)


@pytest.mark.parametrize("order", [1, 2])
def test_apply_is_the_three_tap_filter(order: int, tmp_path) -> None:
    x = _batch()
    taps = SMIGradient(order, num_bandwidths=4, root=tmp_path).taps(x, ["a", "b"])
    assert taps.a1.shape == x.shape and taps.a1.abs().sum() > 0
    if order == 1:
        assert taps.a2.abs().sum() == 0
    g = torch.randn_like(x)
    expected = g.clone()
    expected[:, :, :-1] += taps.a1[:, :, :-1] * g[:, :, 1:]
    expected[:, :, :-2] += taps.a2[:, :, :-2] * g[:, :, 2:]
    assert torch.allclose(taps.apply(g), expected, atol=1e-6)
    # padded frames and absent persons have zero taps: the filter leaves their gradient alone
    assert taps.a1[1, :, 15:].abs().sum() == 0 and taps.a1[0, :, :, :, 1].abs().sum() == 0


def test_second_order_taps_are_the_shared_tvar_cache(tmp_path) -> None:
    x = _batch()
    smi = SMIGradient(2, num_bandwidths=4, root=tmp_path).taps(x, ["a", "b"])
    files = sorted(p.name for p in tmp_path.iterdir())
    shared = TVARCache(num_bandwidths=4, root=tmp_path).taps(x, ["a", "b"])  # TASAR's cache: reads the same files
    assert torch.equal(smi.a1, shared[0]) and torch.equal(smi.a2, shared[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    first = SMIGradient(1, num_bandwidths=4, root=tmp_path).taps(x, ["a", "b"])
    assert len(list(tmp_path.iterdir())) == 2 * len(files)  # first-order fits are keyed apart
    assert not torch.equal(first.a1, smi.a1)


def test_shape_mismatch_is_one_clear_error(tmp_path) -> None:
    taps = SMIGradient(1, num_bandwidths=3, root=tmp_path).taps(_batch())
    with pytest.raises(ConfigError, match="taps are"):
        taps.apply(torch.zeros(1, 3, 20, 25, 2))
