"""Render skeleton sequences as 3-D stick figures: GIF animations or PNG frame grids (matplotlib figures drawn
on an Agg canvas without touching pyplot's global state).

:func:`render_sequences` draws several sequences side by side on shared axes (e.g. a clean sample and its
adversarial version), so a displacement shows at its true scale. Inputs are canonical ``(C, T, V, M)``
arrays or tensors; the data's y axis is drawn vertical and z as depth (Kinect/NTU camera coordinates).
Absent persons and padded frames (exactly zero) are not drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import ConfigError, DataError
from .io import atomic_path
from .layouts import SkeletonLayout, get_layout

_COLORS = ("tab:blue", "tab:red", "tab:green", "tab:purple")


def _as_numpy(seq: Any, i: int, num_joints: int) -> np.ndarray:
    arr = seq.detach().cpu().numpy() if hasattr(seq, "detach") else np.asarray(seq)
    if arr.ndim != 4:
        raise DataError(f"sequence {i} has shape {arr.shape}, expected (C, T, V, M)")
    if arr.shape[2] != num_joints:
        raise DataError(f"sequence {i} has {arr.shape[2]} joints, the layout has {num_joints}")
    if arr.shape[0] < 2:
        raise DataError(f"sequence {i} has {arr.shape[0]} coordinate channels, expected 2 or 3")
    xyz = arr[:3].astype(np.float32)
    if xyz.shape[0] == 2:
        xyz = np.concatenate([xyz, np.zeros_like(xyz[:1])], axis=0)
    return xyz


def _short(title: str, width: int = 36) -> str:
    """``title`` cut to ``width`` characters, so neighbouring panel titles do not overlap."""
    return title if len(title) <= width else title[: width - 3] + "..."


def _valid_frames(seq: np.ndarray) -> int:
    nonzero = np.abs(seq).max(axis=(0, 2, 3)) > 0
    return int(np.flatnonzero(nonzero)[-1]) + 1 if nonzero.any() else 1


def render_sequences(
    sequences: Sequence[Any],
    layout: str | SkeletonLayout,
    out: str | Path,
    titles: Sequence[str] | None = None,
    fps: int = 15,
    frame: int | None = None,
    num_frames: int = 6,
    max_frames: int = 120,
) -> Path:
    """Draw sequences side by side and save a ``.gif`` animation or a ``.png`` image.

    Args:
        sequences: Canonical ``(C, T, V, M)`` arrays or tensors, all in ``layout``.
        layout: Layout name or object (bones come from its parents).
        out: Output path; the suffix chooses the format (``.gif`` animation, ``.png`` still).
        titles: One title per sequence.
        fps: GIF frame rate.
        frame: PNG only: draw this single frame (one row of panels) instead of a grid.
        num_frames: PNG grid: frames sampled evenly over the valid length, one column each.
        max_frames: GIF: at most this many frames, evenly subsampled (keeps files small).

    Returns:
        The written path (written atomically).

    Raises:
        ConfigError: unknown output suffix or mismatched titles. DataError: a sequence of the wrong shape.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state, Agg canvas on save

    lay = get_layout(layout)
    out = Path(out)
    kind = out.suffix.lower()
    if kind not in (".gif", ".png"):
        raise ConfigError(f"cannot render to {out}: use a .gif (animation) or .png (frames) file name")
    if not sequences:
        raise ConfigError("nothing to render: no sequences given")
    seqs = [_as_numpy(s, i, lay.num_joints) for i, s in enumerate(sequences)]
    names = list(titles) if titles is not None else [f"sequence {i}" for i in range(len(seqs))]
    if len(names) != len(seqs):
        raise ConfigError(f"{len(names)} titles for {len(seqs)} sequences")
    length = max(_valid_frames(s) for s in seqs)
    points = np.concatenate([s.transpose(1, 3, 2, 0).reshape(-1, 3) for s in seqs])
    points = points[np.abs(points).max(axis=1) > 0]
    lo, hi = (points.min(axis=0), points.max(axis=0)) if len(points) else (np.full(3, -1.0), np.full(3, 1.0))
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-3) * 1.05

    def draw(ax: Any, seq: np.ndarray, t: int, title: str) -> None:
        ax.cla()
        for m in range(seq.shape[3]):
            pose = seq[:, t, :, m]  # (3, V)
            if not np.abs(pose).max() > 0:
                continue
            color = _COLORS[m % len(_COLORS)]
            for child, parent in lay.bones:
                ax.plot(pose[0, [child, parent]], pose[2, [child, parent]], pose[1, [child, parent]], color=color, lw=1.5)
            ax.scatter(pose[0], pose[2], pose[1], color=color, s=6)
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[2] - half, centre[2] + half)
        ax.set_zlim(centre[1] - half, centre[1] + half)
        ax.set_xlabel("x")
        ax.set_ylabel("z")
        ax.set_zlabel("y")
        ax.set_title(title, fontsize=9)
        ax.view_init(elev=15, azim=-75)

    if kind == ".png":
        if frame is not None:
            if not 0 <= frame < max(s.shape[1] for s in seqs):
                raise ConfigError(f"frame {frame} out of range 0..{max(s.shape[1] for s in seqs) - 1}")
            times = [frame]
        else:
            times = sorted(set(np.linspace(0, length - 1, max(1, min(num_frames, length))).round().astype(int).tolist()))
        fig = Figure(figsize=(2.6 * len(times), 2.6 * len(seqs)))
        for r, (seq, title) in enumerate(zip(seqs, names)):
            for c, t in enumerate(times):
                ax = fig.add_subplot(len(seqs), len(times), r * len(times) + c + 1, projection="3d")
                label = f"{_short(title)}\nt={t}" if c == 0 else f"t={t}"
                draw(ax, seq, min(t, seq.shape[1] - 1), label)
        fig.tight_layout()
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png", dpi=80)
        return out

    from matplotlib.animation import FuncAnimation, PillowWriter

    times = np.unique(np.linspace(0, length - 1, min(length, max_frames)).round().astype(int))
    fig = Figure(figsize=(3.2 * len(seqs), 3.2))
    panels = []
    for i, (seq, title) in enumerate(zip(seqs, names)):
        ax = fig.add_subplot(1, len(seqs), i + 1, projection="3d")
        draw(ax, seq, 0, title)  # axes, labels and limits once; artists below are updated in place
        for artist in list(ax.lines) + list(ax.collections):
            artist.remove()
        people = []
        for m in range(seq.shape[3]):
            color = _COLORS[m % len(_COLORS)]
            bones = [ax.plot([], [], [], color=color, lw=1.5)[0] for _ in lay.bones]
            joints = ax.plot([], [], [], color=color, marker="o", ms=2, ls="none")[0]
            people.append((bones, joints))
        panels.append((ax, seq, title, people))

    def update(k: int) -> list[Any]:
        t = int(times[k])
        changed: list[Any] = []
        for ax, seq, title, people in panels:
            tt = min(t, seq.shape[1] - 1)
            ax.set_title(f"{_short(title)}\nt={t}", fontsize=9)
            for m, (bones, joints) in enumerate(people):
                pose = seq[:, tt, :, m]
                visible = bool(np.abs(pose).max() > 0)
                for line, (child, parent) in zip(bones, lay.bones):
                    line.set_data_3d(pose[0, [child, parent]], pose[2, [child, parent]], pose[1, [child, parent]])
                    line.set_visible(visible)
                joints.set_data_3d(pose[0], pose[2], pose[1])
                joints.set_visible(visible)
                changed.extend(bones + [joints])
        return changed

    anim = FuncAnimation(fig, update, frames=len(times), blit=False)
    with atomic_path(out) as tmp:
        anim.save(str(tmp), writer=PillowWriter(fps=fps), dpi=72)
    return out
