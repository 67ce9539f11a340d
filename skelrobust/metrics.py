"""Imperceptibility metrics of adversarial skeleton sequences (DESIGN section 6, reference/attacks.md section g).

Every metric is computed per sample, per person, over **valid frames only**: a person is present in a frame
when any of its coordinates in that frame is non-zero in the *clean* sequence. Absent persons and padded
frames never count, even if an adversarial tensor moved them. Temporal differences of order ``k`` count only
where all ``k + 1`` frames involved are valid for that person.

With ``x`` clean and ``x'`` adversarial, ``(N, C, T, V, M)``, and ``delta = x' - x``:

- ``linf``: ``max |delta|`` over valid entries (data units);
- ``l2``: ``||delta||_F`` over valid entries (data units);
- ``mean_joint_displacement``: mean over valid ``(t, j, m)`` of ``||x'_tj - x_tj||_2`` (data units);
- ``bone_length_abs_error``: mean over valid ``(t, m)`` and bones of ``| ||B'|| - ||B|| |`` (data units);
- ``bone_length_rel_error``: the same divided by ``||B||``, bones of zero clean length skipped (unitless);
- ``velocity_deviation``: mean over valid differences and joints of ``||d x' - d x||_2`` (units / frame);
- ``acceleration_deviation``: the same with second differences (units / frame^2);
- ``jerk_deviation``: the same with third differences (units / frame^3);
- ``delta_p``: Lu et al. 2023 (hard no-box), three-term reading, see below (data units);
- ``delta_p_two_term``: the same without the acceleration term, as Eq. 15 is printed (data units);
- ``smart_perceptual_loss``: SMART's perceptual loss (variant ``smart``), see below.

Bones are the layout's ``(child, parent)`` pairs, ``B_tj = x_tj - x_t,parent(j)``. Means over an empty set
(a sample with no valid frame, or too few for a difference) are NaN; :func:`summarize` ignores NaNs.

``delta_p`` (Lu et al., ICCV 2023, Eq. 15): the paper's text names three terms (joint position, bone and
acceleration) but its equation shows two; we implement the three-term reading recommended by
reference/attacks.md: per person ``(1/T) [sum_t ||S'_t - S_t||_2 + sum_t ||B'_t - B_t||_2 + sum_t ||A'_t - A_t||_2]``
where ``S_t`` is the frame's ``(V*C)`` coordinate vector, ``B_t`` its stacked bone vectors, ``A_t`` its
second difference, ``T`` the person's valid frames; summed over valid ``(t, m)`` and divided by their count.

``smart_perceptual_loss`` (Wang et al., CVPR 2021, "Understanding the Robustness of Skeleton-based Action
Recognition under Adversarial Attack"; the authors' code ``l2_acc-bone``): per person and summed over persons,

- ``L_pos = sum_t sum_j w_j ||x'_tj - x_tj||^2`` with ``w_j = 0.04`` on the spine (the layout's ``torso``
  part; HDM05 joints 10-14 in the paper's layout) and ``0.02`` elsewhere;
- ``L_bone = sum_t sum_bones (||B'_tj|| - ||B_tj||)^2``;
- ``L_acc = sum_t sum_j ||a'_tj - a_tj||^2 / dt^4``, ``a_t = x_{t+1} - 2 x_t + x_{t-1}``, ``dt = 1/30`` s;
- variant ``smart`` (default, the SMART code): ``L_p = rw L_pos + (1 - rw) [blw L_bone + (1 - blw) L_acc]``
  with ``rw = 0.4``, ``blw = 0.7`` (0.40 / 0.42 / 0.18);
- variant ``robustbenchhar`` (its ``SMART.py``): ``L_p = blw L_bone + (1 - blw) [(1 - rw) L_pos + rw L_acc]``
  (0.18 / 0.70 / 0.12) and the weight 0.04 on tensor joints 10-14 whatever the layout, as that code does.

Its unit mixes squared data units and squared accelerations (data units^2 / s^4); it is a loss, comparable
only between runs on the same data.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import torch

from .adapters import person_present
from .errors import ConfigError
from .layouts import SkeletonLayout, get_layout

#: Names of the per-sample metrics :func:`imperceptibility` returns, in order.
METRICS: tuple[str, ...] = (
    "linf",
    "l2",
    "mean_joint_displacement",
    "bone_length_abs_error",
    "bone_length_rel_error",
    "velocity_deviation",
    "acceleration_deviation",
    "jerk_deviation",
    "delta_p",
    "delta_p_two_term",
    "smart_perceptual_loss",
)

def metric_units(unit: str) -> dict[str, str]:
    """Unit of each metric of :data:`METRICS` for data in ``unit`` (e.g. ``m``), as recorded with results."""
    per_frame = {"velocity_deviation": 1, "acceleration_deviation": 2, "jerk_deviation": 3}
    units = {name: unit for name in METRICS}
    units.update({name: f"{unit}/frame" + (f"^{k}" if k > 1 else "") for name, k in per_frame.items()})
    units["bone_length_rel_error"] = "1"
    units["smart_perceptual_loss"] = f"{unit}^2 and {unit}^2/s^4 mixed (a loss; see skelrobust.metrics)"
    return units


#: SMART perceptual-loss variants accepted by :func:`smart_perceptual_loss`.
SMART_VARIANTS: tuple[str, ...] = ("smart", "robustbenchhar")

_SQRT_EPS = 1e-12  # keeps sqrt differentiable at zero-length bones (SMART adds 1e-8 to bone vectors)


#: Boolean ``(N, T, M)``: person ``m`` is present in frame ``t`` (any non-zero coordinate); the one definition
#: shared with the attack masks, adapters and defenses.
presence = person_present


def valid_windows(present: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean ``(N, T - k, M)``: frames ``t..t+k`` are all valid (where a k-th difference is defined)."""
    t = present.shape[1]
    out = present[:, : t - k]
    for i in range(1, k + 1):
        out = out & present[:, i : t - k + i]
    return out


def bone_vectors(x: torch.Tensor, layout: SkeletonLayout) -> torch.Tensor:
    """``(N, C, T, E, M)`` bone vectors ``x_child - x_parent`` for the layout's bones."""
    child = torch.tensor([c for c, _ in layout.bones], dtype=torch.long, device=x.device)
    parent = torch.tensor([p for _, p in layout.bones], dtype=torch.long, device=x.device)
    return x.index_select(3, child) - x.index_select(3, parent)


def _masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-sample ``sum(values * weights) / sum(weights)`` over all but dim 0; NaN where the weight is zero."""
    total = (values * weights).flatten(1).sum(dim=1)
    count = weights.expand_as(values).flatten(1).sum(dim=1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, math.nan))


def _check_pair(x: torch.Tensor, x_adv: torch.Tensor, layout: SkeletonLayout) -> None:
    if x.ndim != 5 or x_adv.shape != x.shape:
        raise ConfigError(
            f"metrics expect clean and adversarial (N, C, T, V, M) tensors of equal shape, "
            f"got {tuple(x.shape)} and {tuple(x_adv.shape)}"
        )
    layout.check_joints(int(x.shape[3]), "metrics input")


def smart_joint_weights(layout: SkeletonLayout, variant: str = "smart", device: torch.device | None = None) -> torch.Tensor:
    """SMART's per-joint weights ``(V,)``: 0.04 on the spine, 0.02 elsewhere.

    Variant ``smart`` puts 0.04 on the layout's ``torso`` part (the paper's "spinal joints"; exactly joints
    10-14 on ``hdm05``); a layout without a ``torso`` part gets 0.02 everywhere. Variant ``robustbenchhar``
    uses tensor indices 10-14 whatever the layout, as that code does.
    """
    if variant not in SMART_VARIANTS:
        raise ConfigError(f"unknown SMART perceptual-loss variant {variant!r}; choose one of {', '.join(SMART_VARIANTS)}")
    v = layout.num_joints
    w = torch.full((v,), 0.02, dtype=torch.float32, device=device)
    spine = layout.parts.get("torso", ()) if variant == "smart" else tuple(j for j in range(10, 15) if j < v)
    if spine:
        w[list(spine)] = 0.04
    return w


def smart_perceptual_loss(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    layout: SkeletonLayout | str,
    *,
    variant: str = "smart",
    recon_weight: float = 0.4,
    bone_weight: float = 0.7,
    dt: float = 1.0 / 30.0,
    present: torch.Tensor | None = None,
) -> torch.Tensor:
    """SMART's perceptual loss per sample ``(N,)``, differentiable in ``x_adv`` (definitions in the module docstring).

    Args:
        x: Clean batch ``(N, C, T, V, M)``.
        x_adv: Adversarial batch of the same shape.
        layout: Layout of both (its bones and ``torso`` part are used).
        variant: ``smart`` (the SMART code's weighting, default) or ``robustbenchhar`` (the prior benchmark's).
        recon_weight: ``rw`` (SMART's ``reconWeight``), default 0.4.
        bone_weight: ``blw`` (SMART's ``boneLenWeight``), default 0.7.
        dt: Frame interval in seconds for the acceleration term (SMART: 1/30).
        present: Optional precomputed :func:`presence` of ``x`` ``(N, T, M)``.

    Returns:
        ``(N,)`` loss, summed over valid frames and persons (not averaged, as in SMART; SMART's batch mean is
        the mean of this vector).
    """
    layout = get_layout(layout)
    _check_pair(x, x_adv, layout)
    w = smart_joint_weights(layout, variant, device=x.device).to(x_adv.dtype)
    valid = (presence(x) if present is None else present).to(x_adv.dtype)  # (N, T, M)
    delta = x_adv - x
    pos = ((delta**2).sum(dim=1) * w.view(1, 1, -1, 1)).sum(dim=2)  # (N, T, M)
    l_pos = (pos * valid).flatten(1).sum(dim=1)

    def lengths(z: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((bone_vectors(z, layout) ** 2).sum(dim=1) + _SQRT_EPS)  # (N, T, E, M)

    bone = ((lengths(x_adv) - lengths(x)) ** 2).sum(dim=2)  # (N, T, M)
    l_bone = (bone * valid).flatten(1).sum(dim=1)
    if x.shape[2] >= 3:
        acc = torch.diff(delta, n=2, dim=2) / dt**2
        acc_valid = valid_windows(valid.bool(), 2).to(x_adv.dtype)
        l_acc = ((acc**2).sum(dim=(1, 3)) * acc_valid).flatten(1).sum(dim=1)
    else:
        l_acc = torch.zeros_like(l_pos)
    if variant == "smart":
        return recon_weight * l_pos + (1 - recon_weight) * (bone_weight * l_bone + (1 - bone_weight) * l_acc)
    return bone_weight * l_bone + (1 - bone_weight) * ((1 - recon_weight) * l_pos + recon_weight * l_acc)


@torch.no_grad()
def imperceptibility(x: torch.Tensor, x_adv: torch.Tensor, layout: SkeletonLayout | str) -> dict[str, torch.Tensor]:
    """All per-sample imperceptibility metrics of :data:`METRICS` (definitions and units in the module docstring).

    Args:
        x: Clean batch ``(N, C, T, V, M)`` (its non-zero entries define the valid frames of each person).
        x_adv: Adversarial batch, same shape.
        layout: Skeleton layout of both.

    Returns:
        ``{name: (N,) float64 CPU tensor}``. Distances are in the data's units (metres for NTU and the
        synthetic set); ``bone_length_rel_error`` is unitless; temporal deviations are per frame^k.

    Example:
        >>> m = imperceptibility(x, x + 0.01, "ntu25")  # a rigid translation
        >>> float(m["bone_length_abs_error"][0]), float(m["velocity_deviation"][0])
        (0.0, 0.0)
    """
    layout = get_layout(layout)
    _check_pair(x, x_adv, layout)
    x = x.detach().double()
    x_adv = x_adv.detach().to(x.dtype)
    present = presence(x)  # (N, T, M)
    valid = present.to(x.dtype)
    frame_w = valid.unsqueeze(2)  # (N, T, 1, M) broadcast over joints
    delta = (x_adv - x) * frame_w.unsqueeze(1)
    n = x.shape[0]
    out: dict[str, torch.Tensor] = {}

    out["linf"] = delta.abs().flatten(1).amax(dim=1) if delta.numel() else x.new_zeros(n)
    out["l2"] = delta.flatten(1).norm(dim=1)
    disp = delta.norm(dim=1)  # (N, T, V, M)
    out["mean_joint_displacement"] = _masked_mean(disp, frame_w)

    bones_clean = bone_vectors(x, layout)
    bones_adv = bone_vectors(x_adv, layout)
    len_clean = bones_clean.norm(dim=1)  # (N, T, E, M)
    len_adv = bones_adv.norm(dim=1)
    abs_err = (len_adv - len_clean).abs()
    out["bone_length_abs_error"] = _masked_mean(abs_err, frame_w)
    nonzero = len_clean > 0
    rel = torch.where(nonzero, abs_err / torch.where(nonzero, len_clean, torch.ones_like(len_clean)), torch.zeros_like(abs_err))
    out["bone_length_rel_error"] = _masked_mean(rel, frame_w * nonzero.to(x.dtype))

    t = x.shape[2]
    for k, name in ((1, "velocity_deviation"), (2, "acceleration_deviation"), (3, "jerk_deviation")):
        if t > k:
            dev = torch.diff(delta, n=k, dim=2).norm(dim=1)  # (N, T-k, V, M)
            out[name] = _masked_mean(dev, valid_windows(present, k).to(x.dtype).unsqueeze(2))
        else:
            out[name] = x.new_full((n,), math.nan)

    frames = valid.flatten(1).sum(dim=1)
    s_term = (delta.norm(dim=(1, 3)) * valid).flatten(1).sum(dim=1)  # per-frame ||S'_t - S_t||
    b_term = ((bones_adv - bones_clean).norm(dim=(1, 3)) * valid).flatten(1).sum(dim=1)
    if t > 2:
        a_norm = torch.diff(delta, n=2, dim=2).norm(dim=(1, 3))  # (N, T-2, M)
        a_term = (a_norm * valid_windows(present, 2).to(x.dtype)).flatten(1).sum(dim=1)
    else:
        a_term = torch.zeros_like(s_term)
    nan = x.new_full((n,), math.nan)
    out["delta_p"] = torch.where(frames > 0, (s_term + b_term + a_term) / frames.clamp_min(1), nan)
    out["delta_p_two_term"] = torch.where(frames > 0, (s_term + b_term) / frames.clamp_min(1), nan)

    out["smart_perceptual_loss"] = smart_perceptual_loss(x, x_adv, layout, present=present)
    return {k: v.cpu() for k, v in out.items()}


def summarize(per_sample: Mapping[str, torch.Tensor | np.ndarray], where: torch.Tensor | np.ndarray | None = None) -> dict[str, float]:
    """Batch summary of per-sample metrics: ``{name: mean, name + "_median": median}``, NaNs ignored.

    Args:
        per_sample: Output of :func:`imperceptibility` (or any ``{name: (N,)}``), tensors or arrays.
        where: Optional boolean ``(N,)`` selecting the samples to summarise (e.g. successful ones).

    Returns:
        Plain floats; NaN for a metric with no finite value among the selected samples.
    """
    summary: dict[str, float] = {}
    select = None if where is None else np.asarray(torch.as_tensor(where).cpu(), dtype=bool)
    for name, values in per_sample.items():
        arr = np.asarray(torch.as_tensor(values).detach().cpu(), dtype=np.float64).reshape(-1)
        if select is not None:
            if select.shape != arr.shape:
                raise ConfigError(f"summarize: 'where' has shape {select.shape}, metric {name!r} has {arr.shape}")
            arr = arr[select]
        finite = arr[np.isfinite(arr)]
        summary[name] = float(finite.mean()) if finite.size else math.nan
        summary[f"{name}_median"] = float(np.median(finite)) if finite.size else math.nan
    return summary
