"""Render skeleton sequences as 3-D stick figures: GIF animations or PNG frame grids (matplotlib figures drawn
on an Agg canvas without touching pyplot's global state).

:func:`render_comparison` draws a clean sample and its adversarial version overlaid in one view: the clean
body in grey, the adversarial body coloured by each joint's displacement on a colour scale, the body filling
the frame and a title with the predictions (``skelrobust show`` and the grid report use it).
:func:`render_sequences` draws several sequences side by side on shared axes (``skelrobust data show``). Inputs are canonical ``(C, T, V, M)``
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


def displacement(clean: np.ndarray, adversarial: np.ndarray) -> np.ndarray:
    """Per frame, joint and person, ``||adversarial - clean||_2`` ``(T, V, M)``; 0 where the clean person is absent."""
    present = np.abs(clean).max(axis=(0, 2)) > 0  # (T, M)
    return np.linalg.norm(adversarial - clean, axis=0) * present[:, None, :]


def _wrap(text: str, width: int) -> str:
    """``text`` broken into lines of at most ``width`` characters at spaces (a word longer than that is kept
    whole); its own line breaks are kept."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        start = len(lines)
        for word in paragraph.split(" "):
            if len(lines) > start and len(lines[-1]) + 1 + len(word) <= width:
                lines[-1] += " " + word
            else:
                lines.append(word)
    return "\n".join(lines)


def render_comparison(
    clean: Any,
    adversarial: Any,
    layout: str | SkeletonLayout,
    out: str | Path,
    title: str = "",
    units: str = "m",
    fps: int = 15,
    max_frames: int = 60,
    size: float = 4.4,
    dpi: int = 80,
) -> Path:
    """Draw a clean sequence and its adversarial version overlaid in one view; save a ``.gif`` or a ``.png``.

    The clean body is grey; the adversarial body's joints and bones are coloured by their displacement from the
    clean ones (a bone takes the mean of its two joints), on a colour scale from 0 to the largest displacement
    of the clip, shown in centimetres when the data are in metres. The axes fit the bodies' extent in every
    direction (aspect kept), so the body fills the frame; a ``.png`` shows the frame of largest displacement.

    Args:
        clean, adversarial: Canonical ``(C, T, V, M)`` arrays or tensors in ``layout``.
        title: Shown above the view (wrapped, never cut).
        units: The data's length unit (``m`` is drawn in cm).
        max_frames: GIF: at most this many frames, evenly subsampled.
        size: Figure width in inches (height 1.1x); ``dpi`` its resolution.

    Returns:
        The written path (written atomically).
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    lay = get_layout(layout)
    out = Path(out)
    kind = out.suffix.lower()
    if kind not in (".gif", ".png"):
        raise ConfigError(f"cannot render to {out}: use a .gif (animation) or .png (still) file name")
    a, b = _as_numpy(clean, 0, lay.num_joints), _as_numpy(adversarial, 1, lay.num_joints)
    if a.shape != b.shape:
        raise DataError(f"clean {a.shape} and adversarial {b.shape} sequences differ in shape")
    scale, shown_unit = (100.0, "cm") if units == "m" else (1.0, units)
    moved = displacement(a, b) * scale  # (T, V, M)
    length = _valid_frames(a)
    people = [m for m in range(a.shape[3]) if np.abs(a[:, :length, :, m]).max() > 0] or [0]
    points = np.concatenate([s[:, :length][:, :, :, people].transpose(1, 3, 2, 0).reshape(-1, 3) for s in (a, b)])
    points = points[np.abs(points).max(axis=1) > 0]
    lo, hi = (points.min(axis=0), points.max(axis=0)) if len(points) else (np.full(3, -1.0), np.full(3, 1.0))
    extent = np.maximum(hi - lo, 0.05 * max(float((hi - lo).max()), 1e-3))
    lo, hi = lo - 0.04 * extent, hi + 0.04 * extent
    top = float(moved[:length].max()) if moved.size else 0.0
    norm = Normalize(vmin=0.0, vmax=top if top > 0 else 1.0)
    cmap = colormaps["plasma"]

    fig = Figure(figsize=(size, size * 1.1))
    heading = _wrap(title, 58)
    room = 0.035 * (heading.count("\n") + 1) * 4.4 / size  # the title's height, so it never covers the body
    ax = fig.add_axes((-0.03, 0.01, 0.89, min(0.86, 0.97 - room)), projection="3d")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[2], hi[2])
    ax.set_zlim(lo[1], hi[1])
    span = hi - lo
    ax.set_proj_type("ortho")
    ax.set_box_aspect((span[0], span[2], span[1]), zoom=1.12)
    ax.view_init(elev=12, azim=-80)
    ax.set_axis_off()
    cax = fig.add_axes((0.86, 0.12, 0.03, 0.6))
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    bar.set_label(f"joint displacement ({shown_unit})", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    fig.text(0.5, 0.985, heading, ha="center", va="top", fontsize=9)
    counter = fig.text(0.02, 0.02, "", fontsize=8, color="0.35")
    fig.text(0.84, 0.02, "grey: clean", ha="right", fontsize=8, color="0.45")

    clean_bones = [[ax.plot([], [], [], color="0.6", lw=2.0, alpha=0.8)[0] for _ in lay.bones] for _ in people]
    adv_bones = [[ax.plot([], [], [], lw=2.2)[0] for _ in lay.bones] for _ in people]
    adv_joints = [ax.scatter([0.0], [0.0], [0.0], s=14, depthshade=False) for _ in people]

    def update(t: int) -> list[Any]:
        for k, m in enumerate(people):
            p, q, d = a[:, t, :, m], b[:, t, :, m], moved[t, :, m]
            visible = bool(np.abs(p).max() > 0)
            for line, adv_line, (child, parent) in zip(clean_bones[k], adv_bones[k], lay.bones):
                line.set_data_3d(p[0, [child, parent]], p[2, [child, parent]], p[1, [child, parent]])
                adv_line.set_data_3d(q[0, [child, parent]], q[2, [child, parent]], q[1, [child, parent]])
                adv_line.set_color(cmap(norm((d[child] + d[parent]) / 2)))
                line.set_visible(visible)
                adv_line.set_visible(visible)
            adv_joints[k]._offsets3d = (q[0], q[2], q[1])
            adv_joints[k].set_color(cmap(norm(d)))
            adv_joints[k].set_visible(visible)
        counter.set_text(f"frame {t + 1}/{length}")
        return []

    if kind == ".png":
        update(int(np.argmax(moved[:length].max(axis=(1, 2)))))
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
        return out

    from matplotlib.animation import FuncAnimation, PillowWriter

    times = np.unique(np.linspace(0, length - 1, min(length, max_frames)).round().astype(int))
    anim = FuncAnimation(fig, lambda k: update(int(times[k])), frames=len(times), blit=False)
    with atomic_path(out) as tmp:
        anim.save(str(tmp), writer=PillowWriter(fps=fps), dpi=dpi)
    return out
