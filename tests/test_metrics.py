"""Imperceptibility metrics: hand-computed values on tiny tensors, valid-frame handling, summaries."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from skelrobust.errors import ConfigError, LayoutMismatchError
from skelrobust.layouts import SkeletonLayout, get_layout
from skelrobust.metrics import METRICS, imperceptibility, metric_units, presence, smart_joint_weights, smart_perceptual_loss, summarize

# A 3-joint chain 0 <- 1 <- 2 (root 0); joint 1 is the only torso joint.
CHAIN = SkeletonLayout(
    name="chain3", joint_names=("a", "b", "c"), parents=(-1, 0, 1), center=0,
    parts={"torso": (1,), "rest": (0, 2)},
)


def _clip(t: int = 5, m: int = 1) -> torch.Tensor:
    """(1, 3, T, 3, M): joints at x = 1, 2, 4 (bone lengths 1 and 2), moving +0.5 per frame along y."""
    x = torch.zeros(1, 3, t, 3, m)
    for f in range(t):
        x[0, 0, f, :, 0] = torch.tensor([1.0, 2.0, 4.0])
        x[0, 1, f, :, 0] = 0.5 * f
    return x


def test_rigid_translation_has_no_bone_or_temporal_error_but_positive_l2() -> None:
    x = _clip()
    adv = x.clone()
    adv[..., 0] += torch.tensor([0.1, -0.2, 0.3]).view(1, 3, 1, 1)
    m = imperceptibility(x, adv, CHAIN)
    assert set(m) == set(METRICS)
    assert all(v.shape == (1,) and v.dtype == torch.float64 for v in m.values())
    norm = math.sqrt(0.01 + 0.04 + 0.09)
    assert m["linf"].item() == pytest.approx(0.3)
    assert m["l2"].item() == pytest.approx(norm * math.sqrt(15))
    assert m["mean_joint_displacement"].item() == pytest.approx(norm)
    for name in ("bone_length_abs_error", "bone_length_rel_error", "velocity_deviation", "acceleration_deviation", "jerk_deviation"):
        assert m[name].item() == pytest.approx(0.0, abs=1e-6), name  # float32 input rounding
    # delta_p: per frame ||S'-S|| = sqrt(3)*norm, bones and accelerations unchanged
    assert m["delta_p"].item() == pytest.approx(math.sqrt(3) * norm)


def test_single_joint_bump_hand_computed() -> None:
    x = _clip()
    adv = x.clone()
    adv[0, 0, 2, 2, 0] += 0.5  # joint 2 (tip) moves +0.5 along x in frame 2: bone 1->2 from 2.0 to 2.5
    m = imperceptibility(x, adv, CHAIN)
    assert m["linf"].item() == pytest.approx(0.5)
    assert m["l2"].item() == pytest.approx(0.5)
    assert m["mean_joint_displacement"].item() == pytest.approx(0.5 / 15)
    assert m["bone_length_abs_error"].item() == pytest.approx(0.5 / 10)  # 5 frames x 2 bones
    assert m["bone_length_rel_error"].item() == pytest.approx(0.25 / 10)
    # first differences of delta along t at joint 2: 0, +0.5, -0.5, 0 -> mean over 4 x 3
    assert m["velocity_deviation"].item() == pytest.approx(1.0 / 12)
    # second differences: 0.5, -1, 0.5 over 3 x 3
    assert m["acceleration_deviation"].item() == pytest.approx(2.0 / 9)
    # third differences: -1.5, 1.5 over 2 x 3
    assert m["jerk_deviation"].item() == pytest.approx(3.0 / 6)
    # delta_p: S term 0.5; bone-vector term 0.5; acceleration term 0.5+1+0.5; over 5 frames
    assert m["delta_p"].item() == pytest.approx((0.5 + 0.5 + 2.0) / 5)
    assert m["delta_p_two_term"].item() == pytest.approx((0.5 + 0.5) / 5)
    # SMART (variant smart): L_pos = 0.02*0.25; L_bone = 0.25; L_acc = (0.25+1+0.25)*30**4
    l_pos, l_bone, l_acc = 0.02 * 0.25, 0.25, 1.5 * 30**4
    expected = 0.4 * l_pos + 0.6 * (0.7 * l_bone + 0.3 * l_acc)
    assert m["smart_perceptual_loss"].item() == pytest.approx(expected, rel=1e-6)


def test_padded_frames_and_absent_persons_do_not_count() -> None:
    x = _clip(t=6, m=2)
    x[:, :, 4:] = 0.0  # frames 4, 5 padded; person 1 absent everywhere
    adv = x.clone()
    adv[0, :, 5, :, 0] += 1.0  # garbage in a padded frame
    adv[0, :, :, :, 1] -= 2.0  # and on the absent person
    m = imperceptibility(x, adv, CHAIN)
    for name in METRICS:
        assert m[name].item() == pytest.approx(0.0, abs=1e-12), name
    # a real change in a valid frame is averaged over valid frames only (4 frames x 3 joints x 1 person)
    adv[0, 0, 1, 0, 0] += 0.3
    m = imperceptibility(x, adv, CHAIN)
    assert m["mean_joint_displacement"].item() == pytest.approx(0.3 / 12)
    assert m["linf"].item() == pytest.approx(0.3)


def test_differences_need_all_frames_valid_and_empty_means_are_nan() -> None:
    x = _clip(t=3)
    x[:, :, 1] = 0.0  # middle frame missing: no first difference is defined
    adv = x + 0.1 * presence(x).view(1, 1, 3, 1, 1)
    m = imperceptibility(x, adv, CHAIN)
    assert math.isnan(m["velocity_deviation"].item())
    assert math.isnan(m["acceleration_deviation"].item())
    assert m["mean_joint_displacement"].item() == pytest.approx(0.1 * math.sqrt(3), rel=1e-6)
    empty = torch.zeros(1, 3, 4, 3, 1)
    e = imperceptibility(empty, empty, CHAIN)
    assert e["l2"].item() == 0.0 and math.isnan(e["mean_joint_displacement"].item())


def test_zero_length_bones_skipped_in_relative_error() -> None:
    x = _clip(t=2)
    x[0, :, :, 1, 0] = x[0, :, :, 0, 0]  # joint 1 on top of joint 0: bone 0-1 has zero length
    adv = x.clone()
    adv[0, 0, :, 1, 0] += 0.1  # bone 0-1 grows to 0.1, bone 1-2 shrinks from 3 to 2.9
    m = imperceptibility(x, adv, CHAIN)
    assert m["bone_length_abs_error"].item() == pytest.approx(0.1)
    assert m["bone_length_rel_error"].item() == pytest.approx(0.1 / 3.0)


def test_smart_loss_is_differentiable_and_variants_differ() -> None:
    x = _clip()
    adv = (x + 0.01 * torch.randn_like(x, generator=torch.Generator().manual_seed(0))).requires_grad_(True)
    loss = smart_perceptual_loss(x, adv, CHAIN)
    loss.sum().backward()
    assert torch.isfinite(adv.grad).all() and adv.grad.abs().sum() > 0
    other = smart_perceptual_loss(x, adv.detach(), CHAIN, variant="robustbenchhar")
    assert not torch.allclose(loss.detach(), other)
    assert torch.equal(smart_joint_weights(CHAIN), torch.tensor([0.02, 0.04, 0.02]))
    ntu_rbh = smart_joint_weights(get_layout("ntu25"), "robustbenchhar")
    assert ntu_rbh[10:15].eq(0.04).all() and ntu_rbh[:10].eq(0.02).all()
    with pytest.raises(ConfigError, match="variant"):
        smart_perceptual_loss(x, adv, CHAIN, variant="nope")


def test_batch_is_per_sample_and_shape_errors(canonical_batch) -> None:
    x, _ = canonical_batch
    adv = x + 0.01 * (x != 0)
    m = imperceptibility(x, adv, "ntu25")
    assert m["l2"].shape == (4,)
    assert torch.allclose(m["linf"], torch.full((4,), 0.01, dtype=torch.float64))
    single = imperceptibility(x[2:3], adv[2:3], "ntu25")
    for name in METRICS:
        assert torch.allclose(single[name], m[name][2:3], equal_nan=True), name
    assert presence(x).shape == (4, 16, 2)
    with pytest.raises(ConfigError, match="equal shape"):
        imperceptibility(x, adv[:2], "ntu25")
    with pytest.raises(LayoutMismatchError, match="metrics input"):
        imperceptibility(x, adv, CHAIN)


def test_summarize_mean_median_nan_and_where() -> None:
    per = {"a": torch.tensor([1.0, 2.0, 6.0, math.nan]), "b": np.array([0.0, 0.0, 0.0, 4.0])}
    s = summarize(per)
    assert s["a"] == pytest.approx(3.0) and s["a_median"] == pytest.approx(2.0)
    assert s["b"] == pytest.approx(1.0) and s["b_median"] == 0.0
    s = summarize(per, where=torch.tensor([False, False, False, True]))
    assert math.isnan(s["a"]) and s["b"] == 4.0
    with pytest.raises(ConfigError, match="where"):
        summarize(per, where=np.array([True]))


def test_metric_units() -> None:
    units = metric_units("m")
    assert set(units) == set(METRICS)
    assert units["l2"] == "m" and units["bone_length_rel_error"] == "1"
    assert units["velocity_deviation"] == "m/frame" and units["jerk_deviation"] == "m/frame^3"
