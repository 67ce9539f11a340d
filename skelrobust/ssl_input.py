"""The "NTU60_frame50" input pipeline of the ST-GCN-16 self-supervised encoders, as a differentiable adapter.

SkeletonCLR/CrosSCLR (``feeder/preprocess_ntu.py`` + ``feeder/NTUDatasets.py: NTUMotionProcessor(data_type=
'relative', t_length=50, y_rotation=True, sampling='resize')``) preprocess every sample once before training;
AimCLR, ActCLR and HiCLR reuse the files. Per sample ``(C, T, V, M)``:

1. ``length`` = number of frames in which joint 0 of person 0 is non-zero (``get_length``);
2. every frame of every person becomes relative to that person's SpineShoulder (joint 20) in the same frame;
3. frames ``[0, length)`` of each person are resized to 50 with ``cv2.resize(INTER_LINEAR)`` (half-pixel
   centres, clamped at the ends: :func:`skelrobust.adapters.crop_resize` with ``p = 1``);
4. per person, each frame is rotated about the vertical y axis so that the shoulder vector
   (ShoulderRight 8 - ShoulderLeft 4, with y zeroed) points along +x: the angle is
   ``arccos(v_x / (|v| + 1e-4))``, negated when the z components of the shoulder vector summed over the
   frames are ``>= 0`` (one sign per person and sequence, as ``parallel_skeleton`` chooses it).

Absolute position and body yaw are thus removed frame by frame: an attacker perturbing raw coordinates acts
through this input-dependent transform, so gradients flow through all of it (only ``length`` and the sign
choice are piecewise constant). The cosine/sine of the angle are computed without ``arccos`` (``cos = r``,
``sin = +-sqrt(1 - r^2)``), which is the same rotation with a bounded gradient.
"""

from __future__ import annotations

import torch
from torch import nn

from .adapters import crop_resize


def frame_count(x: torch.Tensor, joint: int = 0, person: int = 0) -> torch.Tensor:
    """``(N,)`` number of frames where ``joint`` of ``person`` is non-zero (CrosSCLR's ``get_length``)."""
    return (x[:, :, :, joint, person].abs().sum(dim=1) != 0).sum(dim=1)


def _safe_norm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sqrt(a^2 + b^2)`` with a zero (not NaN) gradient where both are zero (absent persons)."""
    sq = a * a + b * b
    positive = sq > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, sq, torch.ones_like(sq))), torch.zeros_like(sq))


def align_shoulders_y(x: torch.Tensor, right: int, left: int, eps: float = 1e-4) -> torch.Tensor:
    """Per-frame rotation about y turning each person's shoulder line onto +x (``parallel_skeleton``).

    Args:
        x: ``(N, 3, T, V, M)``, coordinates (x, y, z) with y vertical.
        right, left: Shoulder joints (NTU: 8, 4).
        eps: The official ``+ 0.0001`` in the cosine's denominator.
    """
    vec = x[:, :, :, right, :] - x[:, :, :, left, :]  # (N, 3, T, M)
    vx, vz = vec[:, 0], vec[:, 2]
    ratio = vx / (_safe_norm(vx, vz) + eps)  # cos(theta), |ratio| < 1
    negate = vz.sum(dim=1, keepdim=True) >= 0  # (N, 1, M): one sign per person and sequence
    sin = torch.sqrt(1 - ratio * ratio) * torch.where(negate, -1.0, 1.0).to(x.dtype)
    cos = ratio
    px, py, pz = x[:, 0], x[:, 1], x[:, 2]  # (N, T, V, M)
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    # tm = [[cos, 0, -sin], [0, 1, 0], [sin, 0, cos]] applied to (x, y, z)
    return torch.stack([cos * px - sin * pz, py, sin * px + cos * pz], dim=1)


def frame50(
    x: torch.Tensor,
    frames: int = 50,
    center: int = 20,
    shoulders: tuple[int, int] = (8, 4),
    length_joint: int = 0,
    rotate: bool = True,
) -> torch.Tensor:
    """The whole pipeline (see the module docstring): ``(N, 3, T, V, M) -> (N, 3, frames, V, M)``."""
    lengths = frame_count(x, length_joint)
    relative = x - x[:, :, :, center : center + 1, :]
    resized = crop_resize(relative, frames, p=1.0, lengths=lengths)
    return align_shoulders_y(resized, *shoulders) if rotate else resized


class Frame50(nn.Module):
    """:func:`frame50` as a victim adapter (no parameters).

    Args:
        frames: Output frames (50).
        center: Joint every frame is made relative to (NTU SpineShoulder, 20).
        shoulders: (right, left) shoulder joints of the y-rotation (NTU: 8, 4).
        length_joint: Joint of person 0 whose non-zero frames define the length (0).
        rotate: Apply the per-frame y-rotation (``y_rotation=True`` in the official files).
    """

    def __init__(
        self, frames: int = 50, center: int = 20, shoulders: tuple[int, int] = (8, 4), length_joint: int = 0, rotate: bool = True
    ) -> None:
        super().__init__()
        self.frames, self.center, self.shoulders = int(frames), int(center), (int(shoulders[0]), int(shoulders[1]))
        self.length_joint, self.rotate = int(length_joint), bool(rotate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return frame50(x, self.frames, self.center, self.shoulders, self.length_joint, self.rotate)

    def extra_repr(self) -> str:
        return f"frames={self.frames}, center={self.center}, shoulders={self.shoulders}, rotate={self.rotate}"
