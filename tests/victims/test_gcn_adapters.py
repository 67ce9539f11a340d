"""Differentiable preprocessing ops: valid lengths, first-frame centring, crop + linear resize, padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skelrobust.adapters import (
    CenterCropResize,
    MinMaxSample,
    PadCrop,
    center_on_first_frame,
    crop_resize,
    linspace_sample,
    minmax_normalize,
    pad_or_crop_time,
    prenormalize_3d,
    person_present,
    valid_lengths,
)


def test_valid_lengths_use_the_last_nonzero_frame() -> None:
    x = torch.zeros(4, 3, 10, 5, 2)
    x[0, :, :7] = 1.0
    x[1, 2, 3, 4, 1] = 0.5  # one coordinate of person 1 in frame 3
    x[2, :, :2] = 1.0
    x[2, :, 6] = 1.0  # an interior gap does not end the sequence
    assert valid_lengths(x).tolist() == [7, 4, 7, 0]


def test_centring_values_and_absent_persons_stay_zero() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 6, 25, 2, generator=g)
    x[0, :, :, :, 1] = 0  # person 1 absent throughout
    x[1, :, :2, :, 0] = 0  # actor 1 appears at frame 2
    x[1, :, 4, :, 1] = 0  # actor 2 missing in frame 4
    x[:, :, 5] = 0  # padded frame
    y = center_on_first_frame(x, joint=1)
    torch.testing.assert_close(y[0, :, :5, :, 0], x[0, :, :5, :, 0] - x[0, :, 0, 1, 0][:, None, None])
    origin = x[1, :, 2, 1, 0]
    torch.testing.assert_close(y[1, :, 2:5, :, 0], x[1, :, 2:5, :, 0] - origin[:, None, None])
    torch.testing.assert_close(y[1, :, :4, :, 1], x[1, :, :4, :, 1] - origin[:, None, None])
    assert not y[0, :, :, :, 1].any()
    assert not y[1, :, :2, :, 0].any() and not y[1, :, 4, :, 1].any() and not y[:, :, 5].any()
    assert y[1, :, 2, 1, 0].abs().max() == 0  # the origin joint itself is at 0


def _official_crop_resize(sample: torch.Tensor, length: int, window: int, p: float) -> torch.Tensor:
    """The official valid_crop_resize semantics for one (C, T, V, M) sample, written from its definition."""
    c, _, v, m = sample.shape
    bias = int((1 - p) * length / 2)
    seg = sample[:, bias:length - bias]
    flat = seg.permute(0, 2, 3, 1).reshape(1, 1, c * v * m, seg.shape[1])
    out = F.interpolate(flat, size=(c * v * m, window), mode="bilinear", align_corners=False)
    return out.reshape(c, v, m, window).permute(0, 3, 1, 2)


@pytest.mark.parametrize("window", [64, 20])
def test_crop_resize_matches_the_official_resize_with_variable_lengths(window: int) -> None:
    lengths = [100, 64, 40, 7, 1]
    x = torch.zeros(len(lengths), 3, 120, 4, 2)
    for i, length in enumerate(lengths):
        ramp = torch.arange(1, length + 1, dtype=torch.float32)
        x[i, :, :length] = ramp.view(1, -1, 1, 1) * (1 + torch.rand(3, 1, 4, 2))
    out = crop_resize(x, window, 0.95)
    assert out.shape == (len(lengths), 3, window, 4, 2)
    for i, length in enumerate(lengths):
        torch.testing.assert_close(out[i], _official_crop_resize(x[i], length, window, 0.95), atol=1e-5, rtol=1e-6)


def test_resize_of_a_ramp_is_linear() -> None:
    x = torch.zeros(1, 1, 60, 1, 1)
    x[0, 0, :40, 0, 0] = torch.arange(1, 41, dtype=torch.float32)  # valid 40, bias int(0.05*40/2)=1: keep 2..39
    out = crop_resize(x, 64, 0.95)[0, 0, :, 0, 0]
    src = ((torch.arange(64) + 0.5) * 38 / 64 - 0.5).clamp(min=0, max=37)  # edges repeat the end frames
    torch.testing.assert_close(out, 2 + src, atol=1e-5, rtol=0)
    assert out[0] == 2 and out[-1] == 39


def test_gradient_reaches_the_canonical_input() -> None:
    x = torch.randn(2, 3, 50, 25, 2)
    x[0, :, 30:] = 0
    x[1, :, :, :, 1] = 0
    x.requires_grad_(True)
    y = CenterCropResize(center_joint=1)(x)
    weights = torch.randn_like(y)
    (y * weights).sum().backward()
    assert x.grad[0, :, :29].abs().sum() > 0 and x.grad[1, :, :, :, 0].abs().sum() > 0
    assert not x.grad[0, :, 30:].any()
    # the absent person's output is zero whatever x is there, so it gets no gradient through the centring
    assert not y[1, :, :, :, 1].any()
    assert torch.autograd.gradcheck(
        lambda z: crop_resize(z, 9, 0.9, lengths=torch.tensor([11, 6])),
        torch.randn(2, 1, 12, 2, 1, dtype=torch.float64, requires_grad=True),
    )


def test_no_parameters_and_padding() -> None:
    assert not list(CenterCropResize(1).parameters()) and not list(PadCrop(300).parameters())
    x = torch.randn(1, 3, 5, 2, 1)
    assert torch.equal(pad_or_crop_time(x, 8)[:, :, :5], x) and not pad_or_crop_time(x, 8)[:, :, 5:].any()
    assert torch.equal(pad_or_crop_time(x, 3), x[:, :, :3])
    assert person_present(torch.zeros(1, 3, 4, 2, 2)).shape == (1, 4, 2)


def test_empty_sample_stays_zero() -> None:
    x = torch.zeros(2, 3, 16, 25, 2)
    x[1] = 1.0
    y = CenterCropResize(1, window=8)(x)
    assert not y[0].any() and y.shape == (2, 3, 8, 25, 2)


def test_ucla_pipeline_matches_the_official_feeder() -> None:
    g = torch.Generator().manual_seed(1)
    lengths = [30, 52, 100, 1]
    x = torch.zeros(len(lengths), 3, 110, 20, 1)
    for i, length in enumerate(lengths):
        x[i, :, :length] = torch.randn(3, length, 20, 1, generator=g) + 2.0
    out = MinMaxSample(window=52)(x)
    for i, length in enumerate(lengths[:3]):
        value = x[i, :, :length, :, 0].permute(1, 2, 0).double().numpy()  # (T, V, C) as the feeder holds it
        value = value - value[0, 1]
        flat = value.reshape(-1, 3)
        flat = (flat - flat.min(axis=0)) / (flat.max(axis=0) - flat.min(axis=0)) * 2 - 1
        idx = np.linspace(0, length - 1, 52).astype(int)
        expected = torch.from_numpy(flat.reshape(-1, 20, 3)[idx]).permute(2, 0, 1).float()
        torch.testing.assert_close(out[i, :, :, :, 0], expected, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(out).all() and out.shape == (4, 3, 52, 20, 1)


def test_ucla_ops_ignore_padding_and_pass_gradients() -> None:
    x = torch.randn(2, 3, 40, 20, 1)
    x[1, :, 25:] = 0
    x.requires_grad_(True)
    y = minmax_normalize(x)
    assert not y[1, :, 25:].any() and y[1, :, :25].amin() == -1 and y[1, :, :25].amax() == 1
    linspace_sample(y, 52).sum().backward()
    assert x.grad[1, :, :25].abs().sum() > 0 and not x.grad[1, :, 25:].any()


def _upright_skeleton(n: int, t: int) -> torch.Tensor:
    """NTU-like skeletons: spine along a random direction, shoulders perpendicular to it, random offset."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, 3, t, 25, 2, generator=g, dtype=torch.float64) * 0.2
    spine = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=1)
    side = torch.nn.functional.normalize(torch.cross(spine, torch.randn(n, 3, generator=g, dtype=torch.float64), dim=1), dim=1)
    offset = torch.randn(n, 3, 1, 1, generator=g, dtype=torch.float64) * 2
    x[:, :, :, 0] = offset
    x[:, :, :, 1] = offset + 0.3 * spine[:, :, None, None]
    x[:, :, :, 8] = x[:, :, :, 1] + 0.2 * side[:, :, None, None]
    x[:, :, :, 4] = x[:, :, :, 1] - 0.2 * side[:, :, None, None]
    return x


def test_prenormalize_3d_aligns_spine_and_shoulders_and_keeps_zeros() -> None:
    x = _upright_skeleton(3, 6)
    x[0, :, :, :, 1] = 0.0  # absent second person
    x[1, :, 4:] = 0.0  # padding
    y = prenormalize_3d(x, spine=(0, 1), shoulders=(8, 4), center=1)
    frame0 = y[:, :, 0, :, 0]
    torch.testing.assert_close(frame0[:, :, 1], torch.zeros(3, 3, dtype=torch.float64))
    spine = torch.nn.functional.normalize(frame0[:, :, 1] - frame0[:, :, 0], dim=1)
    shoulders = torch.nn.functional.normalize(frame0[:, :, 8] - frame0[:, :, 4], dim=1)
    torch.testing.assert_close(spine, torch.tensor([[0.0, 0.0, 1.0]] * 3, dtype=torch.float64))
    torch.testing.assert_close(shoulders, torch.tensor([[1.0, 0.0, 0.0]] * 3, dtype=torch.float64))
    assert (y[0, :, :, :, 1] == 0).all() and (y[1, :, 4:] == 0).all()
    # Rotations preserve every distance within a frame.
    torch.testing.assert_close((y[:, :, :, 3] - y[:, :, :, 7]).norm(dim=1), (x[:, :, :, 3] - x[:, :, :, 7]).norm(dim=1))


def test_prenormalize_3d_is_differentiable() -> None:
    x = _upright_skeleton(2, 4).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: prenormalize_3d(z, (0, 1), (8, 4), 1), (x,))
