"""Differentiable input preprocessing shared by victim adapters.

Each op maps a canonical ``(N, C, T, V, M)`` tensor to what an official test-time pipeline would feed its
network, with gradients flowing back to every canonical coordinate. Per-sample quantities that decide
*where* to read (valid length, presence of a person in a frame) are derived from the tensor itself and are
piecewise constant, so they carry no gradient; the values read are differentiable. No op loops over samples.

Conventions: a frame is *valid* up to the last frame with any non-zero coordinate (padding is exactly zero);
a person is *present* in a frame when any of its coordinates is non-zero.
"""

from __future__ import annotations

import torch
from torch import nn


def valid_lengths(x: torch.Tensor) -> torch.Tensor:
    """Per-sample valid length ``(N,)`` int64: one past the last frame with any non-zero coordinate (0 if none)."""
    n, _, t = x.shape[:3]
    frame_used = (x != 0).flatten(3).any(dim=3).any(dim=1)  # (N, T)
    idx = torch.arange(1, t + 1, device=x.device).expand(n, t)
    return torch.where(frame_used, idx, torch.zeros_like(idx)).amax(dim=1)


def person_present(x: torch.Tensor) -> torch.Tensor:
    """``(N, T, M)`` bool: person ``m`` has a non-zero coordinate in frame ``t``."""
    return (x != 0).any(dim=3).any(dim=1)


def pad_or_crop_time(x: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad at the end or keep the first ``length`` frames (ST-GCN's fixed 300-frame input)."""
    t = x.shape[2]
    if t >= length:
        return x[:, :, :length]
    return nn.functional.pad(x, (0, 0, 0, 0, 0, length - t))


def center_on_first_frame(x: torch.Tensor, joint: int, person: int = 0) -> torch.Tensor:
    """Subtract the position of ``joint`` of ``person`` in its first present frame, where persons are present.

    This is CTR-GCN's ``seq_translation`` (data/ntu/seq_transformation.py): the origin is SpineMid of actor 1
    in actor 1's first non-zero frame, subtracted from every frame of every actor, then frames where an actor
    is missing are re-zeroed. Absent persons and padded frames therefore stay exactly zero. A sample whose
    ``person`` is absent throughout is left unchanged.
    """
    present = person_present(x)  # (N, T, M)
    first = present[:, :, person].to(torch.int8).argmax(dim=1)  # first present frame (0 when never present)
    index = first.view(-1, 1, 1).expand(-1, x.shape[1], 1)
    origin = x[:, :, :, joint, person].gather(2, index)  # (N, C, 1)
    mask = present.unsqueeze(1).unsqueeze(3).to(x.dtype)  # (N, 1, T, 1, M)
    return x - origin[:, :, :, None, None] * mask


def crop_resize(
    x: torch.Tensor,
    window: int,
    p: float = 0.95,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Central crop of each sample's valid frames and linear temporal resize to ``window`` frames.

    Reproduces CTR-GCN's test-time ``valid_crop_resize`` (feeders/tools.py) per sample: with ``L`` valid
    frames, ``bias = int((1 - p) * L / 2)``, keep frames ``[bias, L - bias)`` and resize them to ``window``
    with ``F.interpolate(mode='bilinear', align_corners=False)`` along time, i.e. source position
    ``(i + 0.5) * L' / window - 0.5`` clamped at 0, linear between its two neighbouring frames. Implemented as
    a gather with per-sample indices, so it is differentiable w.r.t. ``x``.

    Args:
        x: ``(N, C, T, V, M)``.
        window: Output frames.
        p: Kept fraction of the valid frames (0.95 at test time in CTR-GCN).
        lengths: Per-sample valid lengths ``(N,)``; derived with :func:`valid_lengths` when omitted.

    Returns:
        ``(N, C, window, V, M)``. A sample with no valid frame comes out all zero.
    """
    n, c, _, v, m = x.shape
    if lengths is None:
        lengths = valid_lengths(x)
    lengths = lengths.to(x.device)
    bias = ((1 - p) * lengths.double() / 2).floor().long()  # int() truncation of a non-negative value
    cropped = (lengths - 2 * bias).clamp(min=1)
    scale = cropped.to(torch.float32) / window  # float32 like ATen's CPU/GPU kernels
    dst = torch.arange(window, device=x.device, dtype=torch.float32)
    src = (scale[:, None] * (dst[None, :] + 0.5) - 0.5).clamp(min=0)  # (N, window)
    i0 = src.floor().long()
    lam = (src - i0.to(torch.float32)).to(x.dtype)
    i1 = torch.minimum(i0 + 1, (cropped - 1)[:, None])
    i0 = i0 + bias[:, None]
    i1 = i1 + bias[:, None]

    def take(idx: torch.Tensor) -> torch.Tensor:
        return x.gather(2, idx.view(n, 1, window, 1, 1).expand(n, c, window, v, m))

    out = take(i0) * (1 - lam).view(n, 1, window, 1, 1) + take(i1) * lam.view(n, 1, window, 1, 1)
    return out * (lengths > 0).to(x.dtype).view(n, 1, 1, 1, 1)


class PadCrop(nn.Module):
    """Zero-pad or crop the time axis to a fixed length (no parameters)."""

    def __init__(self, length: int) -> None:
        super().__init__()
        self.length = int(length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pad_or_crop_time(x, self.length)

    def extra_repr(self) -> str:
        return f"length={self.length}"


class CenterCropResize(nn.Module):
    """First-frame centring on a joint, then central valid-frame crop and linear resize (CTR-GCN test pipeline).

    Args:
        center_joint: Joint whose first-frame position of ``person`` becomes the origin (NTU: 1, SpineMid).
        window: Output frames (CTR-GCN: 64).
        p: Kept fraction of the valid frames (test: 0.95).
        person: Person whose joint defines the origin (actor 1 = 0).
    """

    def __init__(self, center_joint: int, window: int = 64, p: float = 0.95, person: int = 0) -> None:
        super().__init__()
        self.center_joint = int(center_joint)
        self.window = int(window)
        self.p = float(p)
        self.person = int(person)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lengths = valid_lengths(x)
        centred = center_on_first_frame(x, self.center_joint, self.person)
        return crop_resize(centred, self.window, self.p, lengths)

    def extra_repr(self) -> str:
        return f"center_joint={self.center_joint}, window={self.window}, p={self.p}, person={self.person}"


def minmax_normalize(x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample, per-axis min-max scaling of the valid frames to ``[-1, 1]`` (CTR-GCN's NW-UCLA feeder).

    Minimum and maximum run over the valid frames, all joints and all persons of each sample; frames past the
    valid length stay zero. An axis with no spread maps to -1 (the official code divides by zero there).
    """
    n, c, t = x.shape[:3]
    if lengths is None:
        lengths = valid_lengths(x)
    valid = (torch.arange(t, device=x.device)[None, :] < lengths.to(x.device)[:, None]).view(n, 1, t, 1, 1)
    inf = torch.tensor(float("inf"), dtype=x.dtype, device=x.device)
    lo = torch.where(valid, x, inf).amin(dim=(2, 3, 4), keepdim=True)
    hi = torch.where(valid, x, -inf).amax(dim=(2, 3, 4), keepdim=True)
    span = (hi - lo).clamp(min=torch.finfo(x.dtype).tiny)
    scaled = ((x - torch.where(valid.any(dim=2, keepdim=True), lo, torch.zeros_like(lo))) / span) * 2 - 1
    return torch.where(valid, scaled, torch.zeros_like(scaled))


def linspace_sample(x: torch.Tensor, window: int, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Pick ``window`` frames at ``floor(linspace(0, L - 1, window))`` of each sample's ``L`` valid frames.

    CTR-GCN's NW-UCLA test-time sampling (``np.linspace(0, length - 1, T).astype(int)``), as a per-sample gather.
    A sample with no valid frame comes out all zero.
    """
    n, c, _, v, m = x.shape
    if lengths is None:
        lengths = valid_lengths(x)
    lengths = lengths.to(x.device)
    last = (lengths - 1).clamp(min=0).double()
    steps = torch.arange(window, device=x.device, dtype=torch.float64)
    pos = steps[None, :] * (last[:, None] / max(window - 1, 1))  # numpy: arange * step, endpoint set exactly
    pos[:, -1] = last
    idx = pos.floor().long()
    out = x.gather(2, idx.view(n, 1, window, 1, 1).expand(n, c, window, v, m))
    return out * (lengths > 0).to(x.dtype).view(n, 1, 1, 1, 1)


class MinMaxSample(nn.Module):
    """CTR-GCN's NW-UCLA test pipeline: per-axis min-max scaling to ``[-1, 1]``, then ``window`` linspace frames.

    (The feeder also subtracts joint 1 of frame 0 first, which min-max scaling cancels.)
    """

    def __init__(self, window: int = 52) -> None:
        super().__init__()
        self.window = int(window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lengths = valid_lengths(x)
        return linspace_sample(minmax_normalize(x, lengths), self.window, lengths)

    def extra_repr(self) -> str:
        return f"window={self.window}"


def _rotation_onto(v: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(N, 3, 3)`` rotations taking each row of ``v`` (N, 3) onto the direction ``target`` (3,).

    Rodrigues' formula about ``v x target`` by the angle between them (pyskl's ``rotation_matrix`` with
    ``angle_between``); the identity where ``v`` is zero or already parallel, as pyskl returns.
    """
    target = target / target.norm()
    axis = torch.cross(v, target.expand_as(v), dim=1)
    sin_norm = axis.norm(dim=1)  # |v| sin(theta)
    cos_norm = (v * target).sum(dim=1)  # |v| cos(theta)
    degenerate = sin_norm < 1e-9
    safe = torch.where(degenerate, torch.ones_like(sin_norm), sin_norm)
    k = axis / safe[:, None]
    theta = torch.atan2(sin_norm, cos_norm)
    zero = torch.zeros_like(theta)
    kx, ky, kz = k.unbind(dim=1)
    big_k = torch.stack(
        [torch.stack([zero, -kz, ky], 1), torch.stack([kz, zero, -kx], 1), torch.stack([-ky, kx, zero], 1)], 1
    )
    eye = torch.eye(3, dtype=v.dtype, device=v.device).expand_as(big_k)
    rot = eye + torch.sin(theta)[:, None, None] * big_k + (1 - torch.cos(theta))[:, None, None] * (big_k @ big_k)
    return torch.where(degenerate[:, None, None], eye, rot)


def prenormalize_3d(x: torch.Tensor, spine: tuple[int, int], shoulders: tuple[int, int], center: int) -> torch.Tensor:
    """pyskl's ``PreNormalize3D``: centre, then rotate spine onto +z and the shoulder line onto +x.

    From the first frame of person 0 (its first present frame): subtract joint ``center`` where persons are
    present (:func:`center_on_first_frame`), rotate every frame so that ``spine[0] -> spine[1]`` points along
    +z, then rotate so that ``shoulders[0] - shoulders[1]`` (right minus left) points along +x, about the axis
    perpendicular to both (pyskl's second rotation, which may tilt the spine slightly; reproduced as is).
    Rotations are linear, so absent persons and padded frames stay exactly zero. Differentiable: gradients
    also reach the first-frame joints that define the rotations, as they would through pyskl's data step.
    """
    x = center_on_first_frame(x, center, person=0)
    first = person_present(x)[:, :, 0].to(torch.int8).argmax(dim=1)  # (N,)
    index = first.view(-1, 1, 1).expand(-1, x.shape[1], x.shape[3])
    frame0 = x[:, :, :, :, 0].gather(2, index.unsqueeze(2)).squeeze(2)  # (N, C, V)
    rot_z = _rotation_onto(frame0[:, :, spine[1]] - frame0[:, :, spine[0]], x.new_tensor([0.0, 0.0, 1.0]))
    frame0 = rot_z @ frame0
    rot_x = _rotation_onto(frame0[:, :, shoulders[0]] - frame0[:, :, shoulders[1]], x.new_tensor([1.0, 0.0, 0.0]))
    return torch.einsum("nij,njtvm->nitvm", rot_x @ rot_z, x)


class PreNormalize3D(nn.Module):
    """:func:`prenormalize_3d` as an adapter module (no parameters).

    Args:
        spine: (bottom, top) joints aligned with +z (NTU: SpineBase 0 -> SpineMid 1).
        shoulders: (right, left) shoulder joints aligned with +x (NTU: 8, 4).
        center: The centring joint (NTU: SpineMid 1).
    """

    def __init__(self, spine: tuple[int, int], shoulders: tuple[int, int], center: int) -> None:
        super().__init__()
        self.spine, self.shoulders, self.center = tuple(spine), tuple(shoulders), int(center)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return prenormalize_3d(x, self.spine, self.shoulders, self.center)


def _agcn_frame_index(present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Source frame of every output frame after 2s-AGCN's null-frame padding, per sample and person.

    ``present`` is ``(N, T, M)``. A person absent in frame 0 first has its present frames moved to the
    start (in order); then the frames after the last present one repeat the sequence from frame 0 (``t mod
    e``, ``e`` one past the last present frame); gaps in the middle stay empty. Returns ``(index (N, T, M),
    used (N, T, M) bool)``: ``used`` is false where the output frame is empty (gaps, absent persons).
    """
    n, t, m = present.shape
    frames = torch.arange(t, device=present.device)
    # frames in order, present ones first (stable): the compaction of a person absent in frame 0
    key = (~present).to(torch.int64) * t + frames.view(1, t, 1)
    order = key.argsort(dim=1)
    count = present.sum(dim=1, keepdim=True)  # (N, 1, M)
    late = ~present[:, :1]  # (N, 1, M): absent in frame 0 -> compacted
    last = torch.where(present, frames.view(1, t, 1) + 1, torch.zeros_like(frames).view(1, t, 1)).amax(dim=1, keepdim=True)
    end = torch.where(late, count, last).clamp(min=1)  # one past the last present frame after compaction
    wrapped = frames.view(1, t, 1) % end
    index = torch.where(late, order.gather(1, wrapped), wrapped)
    used = present.gather(1, index) & (count > 0)
    return index, used


def agcn_prenormalize(
    x: torch.Tensor, center: int = 1, spine: tuple[int, int] = (0, 1), shoulders: tuple[int, int] = (8, 4)
) -> torch.Tensor:
    """2s-AGCN's ``pre_normalization`` (data_gen/preprocess.py), used by PCM3's and skeleton-contrast's NTU data.

    Per sample ``(C, T, V, M)``:

    1. null frames: a person absent in frame 0 has its present frames moved to the start; the frames after
       its last present frame repeat its sequence from frame 0 (:func:`_agcn_frame_index`);
    2. every joint of every person minus joint ``center`` of person 0 **in the same frame**, joints with all
       coordinates zero kept at zero;
    3. from frame 0 of person 0, a rotation taking ``spine[0] -> spine[1]`` onto +z, then one taking the
       shoulder line ``shoulders[0] - shoulders[1]`` onto +x (Rodrigues about the cross product, the identity
       when already parallel), applied to every frame.

    Differentiable in the coordinates (the frame bookkeeping of step 1 is piecewise constant).
    """
    n, c, t, v, m = x.shape
    present = person_present(x)  # (N, T, M)
    index, used = _agcn_frame_index(present)
    gather = index.view(n, 1, t, 1, m).expand(n, c, t, v, m)
    padded = x.gather(2, gather) * used.view(n, 1, t, 1, m).to(x.dtype)
    joint_used = (padded != 0).any(dim=1, keepdim=True).to(x.dtype)  # (N, 1, T, V, M)
    origin = padded[:, :, :, center : center + 1, 0:1]  # (N, C, T, 1, 1): person 0, per frame
    centred = (padded - origin) * joint_used
    frame0 = centred[:, :, 0, :, 0]  # (N, C, V)
    rot_z = _rotation_onto(frame0[:, :, spine[1]] - frame0[:, :, spine[0]], x.new_tensor([0.0, 0.0, 1.0]))
    frame0 = rot_z @ frame0
    rot_x = _rotation_onto(frame0[:, :, shoulders[0]] - frame0[:, :, shoulders[1]], x.new_tensor([1.0, 0.0, 0.0]))
    return torch.einsum("nij,njtvm->nitvm", rot_x @ rot_z, centred)


class AGCNCropResize(nn.Module):
    """2s-AGCN pre-normalisation (:func:`agcn_prenormalize`), then the central crop and linear resize.

    The test pipeline of PCM3 / skeleton-contrast: ``*_data_joint.npy`` made by 2s-AGCN's ``ntu_gendata``
    with ``*_num_frame.npy`` (the file's frame count, here each sample's valid length before padding), then
    ``crop_subsequence`` with ``l_ratio=[0.95]``: ``start = int(0.05 * L / 2)``, frames ``[start, L - start)``
    resized to ``window`` (:func:`crop_resize`).

    Args:
        window: Output frames (PCM3: 64).
        p: Kept fraction of the valid frames (0.95).
        center, spine, shoulders: Joints of the pre-normalisation (NTU: 1, (0, 1), (8, 4)).
    """

    def __init__(
        self, window: int = 64, p: float = 0.95, center: int = 1, spine: tuple[int, int] = (0, 1), shoulders: tuple[int, int] = (8, 4)
    ) -> None:
        super().__init__()
        self.window, self.p, self.center = int(window), float(p), int(center)
        self.spine, self.shoulders = (int(spine[0]), int(spine[1])), (int(shoulders[0]), int(shoulders[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lengths = valid_lengths(x)
        return crop_resize(agcn_prenormalize(x, self.center, self.spine, self.shoulders), self.window, self.p, lengths)

    def extra_repr(self) -> str:
        return f"window={self.window}, p={self.p}, center={self.center}, spine={self.spine}, shoulders={self.shoulders}"
