"""SkateFormer victim (``skateformer``): Do et al., "SkateFormer: Skeletal-Temporal Transformer for Human
Action Recognition", ECCV 2024 (KAIST-VICLab/SkateFormer).

``victim.network`` is :class:`SkateFormer` with the official module/parameter names and input signature
``forward(x (N, 3, 64, 24, 2), index_t (N, 64))``, so the authors' released ``SkateFormer_j.pt`` files (bare
state dicts) load with ``strict=True``. The adapter reproduces the official *test* pipeline on the canonical
tensor, differentiably:

- ``ntu25`` (``feeders/feeder_ntu.py`` with ``p_interval=[0.95]``, ``window_size=64``, ``thres=64``,
  ``uniform=True``, ``partition=True``): first-frame SpineMid centring (the NTU npz preprocessing,
  ``seq_translation``; a no-op on data that is already centred that way), uniform sampling of each
  sample's valid frames (``tools.valid_crop_uniform``), ``index_t`` and the 24-joint body-part reorder that
  drops SpineShoulder (joint 20).
- ``kinect20`` (NW-UCLA, ``feeders/feeder_ucla.py`` test path): centring on joint 1 of frame 0, per-axis
  min-max scaling of the sequence to [-1, 1], ``linspace`` sampling to 64 frames, ``index_t`` and the
  20-joint body-part reorder.
- ``msr20`` and ``utd20`` (MSR Action3D, UTD-MHAD): the same 20 Kinect v1 joints in other orders. No official
  SkateFormer configuration exists for them; they get the NW-UCLA pipeline and partition with the joints
  matched by name (centring on ``spine``), so a clip means the same to the network in any of the three orders.
- ``compat="robustbenchhar"`` (``ntu25`` or ``hdm05``): the prior benchmark's variant (RobustBenchHAR
  ``classifiers/skateformer``): no centring, zero-padding of ``T <= 64`` frames to 64, the NTU reorder
  (applied to HDM05 too, as that code does), a fixed ``index_t = 2 * arange(64) / 64 - 1`` and its window
  sizes ((8, 4), (8, 12) on NTU; one person and (8, 4), (8, 6) on HDM05). Its plain state dicts load
  unchanged.

Presets: ``full`` is the official ``config/*/SkateFormer_j.yaml`` architecture (3.6 M parameters for NTU-60,
a GPU model); ``lite`` is a ~71 k-parameter configuration of the same module classes (two one-block
stages of 32/64 channels, 8 heads, 24 frames, 6-frame attention windows) for the embedded synthetic dataset
on CPU.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from skelrobust.adapters import center_on_first_frame, valid_lengths
from skelrobust.errors import ConfigError, LayoutMismatchError, UnsupportedError
from skelrobust.layouts import get_layout
from skelrobust.victim import Victim, VictimFamily, register_victim

from ._skateformer_blocks import SkateFormer

# feeder_ntu.py ``partition=True``: right_arm, left_arm, right_leg, left_leg, h_torso, w_torso (1-based
# 7,8,22,23 | 11,12,24,25 | 13-16 | 17-20 | 5,9,6,10 | 2,3,1,4). SpineShoulder (0-based 20) is dropped.
# The code's "right arm" is Kinect's left wrist/hand/tip/thumb; the names are the code's, the order is what matters.
NTU_PARTITION: tuple[int, ...] = (6, 7, 21, 22, 10, 11, 23, 24, 12, 13, 14, 15, 16, 17, 18, 19, 4, 8, 5, 9, 1, 2, 0, 3)
# feeder_ucla.py ``partition=True`` (Kinect v1 order): arms, legs, torso (1-based 5-8 | 9-12 | 13-16 | 17-20 | 2,3,1,4).
UCLA_PARTITION: tuple[int, ...] = (4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 1, 2, 0, 3)

ARCHITECTURE_PRESETS: dict[str, dict[str, Any]] = {
    # config/train/ntu_cs/SkateFormer_j.yaml + the SkateFormer_ factory.
    "full": dict(
        depths=(2, 2, 2, 2), channels=(96, 192, 192, 192), embed_dim=96, kernel_size=7, num_heads=32,
        attn_drop=0.5, head_drop=0.0, drop=0.0, drop_path=0.2, mlp_ratio=4.0, rel=True, window=64,
    ),
    # Same classes, small: two one-block stages (32, 64 channels), 8 heads, 24 frames, 6-frame windows;
    # ~71 k parameters. No attention dropout: on CPU it costs a third of the training step.
    "lite": dict(
        depths=(1, 1), channels=(32, 64), embed_dim=32, kernel_size=7, num_heads=8,
        attn_drop=0.0, head_drop=0.0, drop=0.0, drop_path=0.1, mlp_ratio=2.0, rel=True, window=24,
    ),
}
# The lite preset's (frames, points) windows: 6 frames instead of 8 (24 -> 12 frames over its two stages).
_LITE_FRAMES = 6



def _kinect_v1_partition(layout: str) -> tuple[int, ...]:
    """:data:`UCLA_PARTITION` for a layout holding the Kinect v1 joints in another order (matched by name)."""
    kinect, target = get_layout("kinect20"), get_layout(layout)
    return tuple(target.index(kinect.joint_names[j]) for j in UCLA_PARTITION)


# (type_1, type_2, type_3, type_4) window sizes (frames, points) and default persons per layout.
_UCLA_WINDOWS = ((8, 4), (8, 5), (8, 4), (8, 5))
_LAYOUT_SETUP: dict[str, dict[str, Any]] = {
    "ntu25": dict(num_persons=2, windows=((8, 8), (8, 12), (8, 8), (8, 12)), order=NTU_PARTITION),
    "kinect20": dict(num_persons=1, windows=_UCLA_WINDOWS, order=UCLA_PARTITION),
    "msr20": dict(num_persons=1, windows=_UCLA_WINDOWS, order=_kinect_v1_partition("msr20")),
    "utd20": dict(num_persons=1, windows=_UCLA_WINDOWS, order=_kinect_v1_partition("utd20")),
}
_RBH_SETUP: dict[str, dict[str, Any]] = {
    "ntu25": dict(num_persons=2, windows=((8, 4), (8, 12), (8, 4), (8, 12)), order=NTU_PARTITION),
    "hdm05": dict(num_persons=1, windows=((8, 4), (8, 6), (8, 4), (8, 6)), order=NTU_PARTITION),
}
COMPAT_MODES = ("robustbenchhar",)
_NETWORK_KEYS = (
    "depths", "channels", "embed_dim", "kernel_size", "num_heads", "attn_drop", "head_drop", "drop", "drop_path",
    "mlp_ratio", "rel", "type_1_size", "type_2_size", "type_3_size", "type_4_size", "global_pool",
)
_ADAPTER_KEYS = ("window", "p_interval", "thres", "center")
_OTHER_KEYS = ("num_persons", "compat")

PAPER = (
    "Do, J., Kim, M.: SkateFormer: Skeletal-Temporal Transformer for Human Action Recognition. ECCV 2024. "
    "https://github.com/KAIST-VICLab/SkateFormer"
)


def uniform_sampling_plan(
    lengths: torch.Tensor, window: int, p_interval: float = 0.95, thres: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample frame plan of the official test-time ``tools.valid_crop_uniform`` (single ``p_interval``).

    With ``valid`` frames: ``L = min(max(floor(valid * p), thres), valid)`` and ``bias = int((1 - p) * valid / 2)``.
    If ``L >= window`` the frames ``bias + floor(i * L / window)`` are taken as they are; otherwise frames
    ``bias .. bias + L - 1`` are linearly resized to ``window`` (``F.interpolate``, ``align_corners=False``).
    ``index_t = 2 * source_position / valid - 1``. As in the official code, short sequences with
    ``bias = 1`` (40..64 valid frames) read one frame past the valid ones, i.e. a zero frame.

    Args:
        lengths: ``(N,)`` valid lengths (values below 1 are treated as 1).
        window: Output frames (64 official).
        p_interval: Kept fraction (0.95 at test time).
        thres: Lower bound of the kept length (official: 64 = ``window``); ``window`` when omitted.

    Returns:
        ``(first, second, weight, index_t)``: frame indices ``(N, window)`` int64 into the sequence, the
        interpolation weight of ``second`` ``(N, window)`` float32 (0 where frames are taken as they are) and
        ``index_t`` ``(N, window)`` float32. Output frame ``i`` is ``(1 - w) * x[first] + w * x[second]``.
    """
    thres = window if thres is None else int(thres)
    valid = lengths.to(torch.int64).clamp(min=1)
    vd = valid.to(torch.float64)
    kept = torch.minimum(torch.floor(vd * p_interval).to(torch.int64).clamp(min=thres), valid)  # (N,)
    bias = torch.floor((1 - p_interval) * vd / 2).to(torch.int64)
    i = torch.arange(window, device=lengths.device)
    # uniform branch (kept >= window): floor(i * kept / window)
    uniform = (i[None, :] * kept[:, None]) // window
    # resize branch (kept < window): ATen's linear source index in float32
    scale = kept.to(torch.float32) / window
    src = (scale[:, None] * (i[None, :].to(torch.float32) + 0.5) - 0.5).clamp(min=0.0)
    lower = src.to(torch.int64)
    weight = (src - lower.to(torch.float32)).clamp(0.0, 1.0)
    upper = torch.minimum(lower + 1, kept[:, None] - 1)
    resize = (kept < window)[:, None]
    first = torch.where(resize, lower, uniform) + bias[:, None]
    second = torch.where(resize, upper, uniform) + bias[:, None]
    weight = torch.where(resize, weight, torch.zeros_like(weight))
    position = (1 - weight) * first.to(torch.float32) + weight * second.to(torch.float32)
    index_t = 2 * position / valid[:, None].to(torch.float32) - 1
    return first, second, weight, index_t


def gather_frames(x: torch.Tensor, first: torch.Tensor, second: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``(1 - w) * x[:, :, first] + w * x[:, :, second]`` per sample; indices may reach ``T`` (a zero frame)."""
    n, c, _, v, m = x.shape
    window = first.shape[1]
    padded = torch.nn.functional.pad(x, (0, 0, 0, 0, 0, 1))  # one zero frame past the end

    def take(idx: torch.Tensor) -> torch.Tensor:
        return padded.gather(2, idx.view(n, 1, window, 1, 1).expand(n, c, window, v, m))

    w = weight.to(x.dtype).view(n, 1, window, 1, 1)
    return take(first) * (1 - w) + take(second) * w


class SkateFormerAdapter(nn.Module):
    """Canonical NTU tensor -> official SkateFormer test input ``(x (N, 3, window, 24, M), index_t (N, window))``.

    Steps (official ``feeder_ntu.py`` test path on the ``NTU60_CS.npz`` representation):
    1. optional first-frame centring (``center``): SpineMid (joint 1) of actor 1 in its first present frame
       is subtracted wherever a person is present (``seq_translation``; absent persons stay zero);
    2. per-sample valid length = one past the last frame with any non-zero coordinate (the official feeder
       counts frames whose coordinate sum is non-zero; both agree when padding is only at the end);
    3. :func:`uniform_sampling_plan` and :func:`gather_frames` (differentiable w.r.t. every read frame);
    4. joint reorder by gather (:data:`NTU_PARTITION`; SpineShoulder gets no gradient).

    ``index_t`` depends only on the valid lengths: it is piecewise-constant metadata with no gradient.

    Args:
        joint_order: Canonical joint index of each network point.
        window: Output frames (official 64).
        p_interval: Kept fraction of the valid frames (official test value 0.95).
        thres: Minimum kept length (official 64); ``window`` when omitted.
        center: Apply the first-frame SpineMid centring.
        center_joint: The centring joint (SpineMid, 1).
    """

    def __init__(
        self,
        joint_order: tuple[int, ...] = NTU_PARTITION,
        window: int = 64,
        p_interval: float = 0.95,
        thres: int | None = None,
        center: bool = True,
        center_joint: int = 1,
    ) -> None:
        super().__init__()
        self.register_buffer("joint_order", torch.tensor(joint_order, dtype=torch.int64), persistent=False)
        self.window = int(window)
        self.p_interval = float(p_interval)
        self.thres = self.window if thres is None else int(thres)
        self.center = bool(center)
        self.center_joint = int(center_joint)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = valid_lengths(x)
        if self.center:
            x = center_on_first_frame(x, self.center_joint, person=0)
        first, second, weight, index_t = uniform_sampling_plan(lengths, self.window, self.p_interval, self.thres)
        frames = gather_frames(x, first, second, weight)
        return frames.index_select(3, self.joint_order.to(x.device)), index_t.to(x.dtype)

    def extra_repr(self) -> str:
        return f"window={self.window}, p_interval={self.p_interval}, thres={self.thres}, center={self.center}"


class SkateFormerUCLAAdapter(nn.Module):
    """Canonical NW-UCLA (``kinect20``) tensor -> official SkateFormer input, as ``feeder_ucla.py`` tests.

    Joint 1 of frame 0 becomes the origin; each axis is min-max scaled to [-1, 1] over the valid frames and
    all joints; frames ``floor(linspace(0, valid - 1, window))`` are taken; ``index_t = 2 * frame / valid - 1``;
    joints are reordered by :data:`UCLA_PARTITION`. An axis with zero range is left at -1 (the official code
    would divide by zero).
    """

    def __init__(self, joint_order: tuple[int, ...] = UCLA_PARTITION, window: int = 64, center_joint: int = 1) -> None:
        super().__init__()
        self.register_buffer("joint_order", torch.tensor(joint_order, dtype=torch.int64), persistent=False)
        self.window = int(window)
        self.center_joint = int(center_joint)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, t, _, _ = x.shape
        lengths = valid_lengths(x).clamp(min=1)
        x = x - x[:, :, :1, self.center_joint : self.center_joint + 1, :]
        valid = (torch.arange(t, device=x.device)[None, :] < lengths[:, None]).view(n, 1, t, 1, 1)
        inf = torch.tensor(float("inf"), dtype=x.dtype, device=x.device)
        low = torch.where(valid, x, inf).amin(dim=(2, 3, 4), keepdim=True)
        high = torch.where(valid, x, -inf).amax(dim=(2, 3, 4), keepdim=True)
        span = high - low
        span = torch.where(span > 0, span, torch.ones_like(span))
        x = (x - low) / span * 2 - 1
        step = (lengths.to(torch.float64) - 1) / (self.window - 1)
        pos = torch.arange(self.window, device=x.device, dtype=torch.float64)[None, :] * step[:, None]
        pos[:, -1] = lengths.to(torch.float64) - 1  # numpy.linspace pins the endpoint
        frames = pos.to(torch.int64)
        out = gather_frames(x, frames, frames, torch.zeros_like(pos, dtype=torch.float32))
        index_t = 2 * frames.to(torch.float32) / lengths[:, None].to(torch.float32) - 1
        return out.index_select(3, self.joint_order.to(x.device)), index_t.to(x.dtype)

    def extra_repr(self) -> str:
        return f"window={self.window}"


class RobustBenchHARSkateAdapter(nn.Module):
    """The prior benchmark's SkateFormer input (``compat="robustbenchhar"``), labelled as such.

    RobustBenchHAR's datasets zero-pad the time axis at the end to 64 frames and apply the NTU reorder
    (also to HDM05 joints); its model ignores the sequence and uses ``index_t = 2 * arange(64) / 64 - 1``.
    No centring and no resampling. Inputs longer than 64 frames are rejected (that code cannot take them).
    """

    window = 64

    def __init__(self, joint_order: tuple[int, ...] = NTU_PARTITION) -> None:
        super().__init__()
        self.register_buffer("joint_order", torch.tensor(joint_order, dtype=torch.int64), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, _, t, _, _ = x.shape
        if t > self.window:
            raise LayoutMismatchError(
                f"skateformer compat='robustbenchhar' zero-pads inputs to {self.window} frames; got T={t}. "
                "Use the default (official) adapter, which resamples any length"
            )
        x = torch.nn.functional.pad(x, (0, 0, 0, 0, 0, self.window - t))
        index_t = 2 * torch.arange(self.window, device=x.device, dtype=torch.float32) / self.window - 1
        return x.index_select(3, self.joint_order.to(x.device)), index_t.to(x.dtype).expand(n, -1)


def _resolve(preset: str, layout: str, num_persons: int | None, config: dict[str, Any]) -> dict[str, Any]:
    """Merge preset, layout defaults and user overrides into one JSON-friendly configuration; validate it."""
    if preset not in ARCHITECTURE_PRESETS:
        raise ConfigError(f"skateformer has no preset {preset!r}; presets: {', '.join(ARCHITECTURE_PRESETS)}")
    unknown = sorted(set(config) - set(_NETWORK_KEYS) - set(_ADAPTER_KEYS) - set(_OTHER_KEYS))
    if unknown:
        raise ConfigError(
            f"skateformer: unknown option(s) {', '.join(unknown)}; valid: {', '.join(_NETWORK_KEYS + _ADAPTER_KEYS + _OTHER_KEYS)}"
        )
    compat = config.get("compat")
    if compat is not None and compat not in COMPAT_MODES:
        raise ConfigError(f"skateformer: compat must be one of {COMPAT_MODES} or None, got {compat!r}")
    setups = _RBH_SETUP if compat else _LAYOUT_SETUP
    if layout not in setups:
        if compat:
            raise LayoutMismatchError(
                f"skateformer compat={compat!r} supports layouts {', '.join(setups)}, not {layout!r}"
            )
        hint = " (the prior benchmark's HDM05 variant needs compat='robustbenchhar')" if layout == "hdm05" else ""
        raise LayoutMismatchError(
            f"skateformer needs the official body-part partition of its input joints, defined for "
            f"{', '.join(setups)}; layout {layout!r} has none{hint}"
        )
    if compat and preset != "full":
        raise UnsupportedError(f"skateformer compat={compat!r} reproduces the prior benchmark's full model; use preset='full'")
    setup = setups[layout]
    cfg: dict[str, Any] = dict(ARCHITECTURE_PRESETS[preset])
    for i, (frames, points) in enumerate(setup["windows"]):
        cfg[f"type_{i + 1}_size"] = (_LITE_FRAMES if preset == "lite" else frames, points)
    cfg.update(num_persons=setup["num_persons"], compat=compat, global_pool="avg", p_interval=0.95, thres=None, center=True)
    cfg.update(config)
    if num_persons is not None:
        cfg["num_persons"] = int(num_persons)
    if compat and cfg["window"] != RobustBenchHARSkateAdapter.window:
        raise ConfigError(f"skateformer compat={compat!r} uses 64 frames; window={cfg['window']} given")
    cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
    for i in range(1, 5):
        cfg[f"type_{i}_size"] = [int(s) for s in cfg[f"type_{i}_size"]]
    points = len(setup["order"]) * cfg["num_persons"]
    frames = cfg["window"]
    for stage in range(len(cfg["depths"])):
        for i in range(1, 5):
            st, sv = cfg[f"type_{i}_size"]
            if frames % st or points % sv:
                raise ConfigError(
                    f"skateformer: stage {stage} sees {frames} frames x {points} points, not divisible into "
                    f"type_{i} windows of {st} x {sv}; adjust window or type_{i}_size"
                )
        frames = (frames + 1) // 2  # stride-2 temporal downsampling before each later stage
    return cfg


def build(
    preset: str = "full",
    num_classes: int = 60,
    layout: str = "ntu25",
    num_persons: int | None = None,
    **config: Any,
) -> Victim:
    """Build a SkateFormer victim with random weights.

    Args:
        preset: ``full`` (official architecture) or ``lite`` (small CPU configuration).
        num_classes: Output logits.
        layout: ``ntu25``, ``kinect20``, ``msr20`` or ``utd20`` (``hdm05`` only with ``compat="robustbenchhar"``).
        num_persons: Persons ``M`` (default 2 on ``ntu25``, 1 on the others); a dataset's count when
            built through :func:`skelrobust.load_victim`.
        **config: Overrides of the network (``depths``, ``channels``, ``embed_dim``, ``num_heads``,
            ``type_k_size``, dropouts...) or of the adapter (``window``, ``p_interval``, ``thres``,
            ``center``), or ``compat="robustbenchhar"``.
    """
    lay = get_layout(layout)
    cfg = _resolve(preset, lay.name, num_persons, config)
    setup = (_RBH_SETUP if cfg["compat"] else _LAYOUT_SETUP)[lay.name]
    network = SkateFormer(
        num_classes=num_classes,
        num_people=cfg["num_persons"],
        num_points=len(setup["order"]),
        **{k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items() if k in _NETWORK_KEYS},
    )
    adapter: nn.Module
    if cfg["compat"]:
        adapter = RobustBenchHARSkateAdapter(setup["order"])
    elif lay.name in ("kinect20", "msr20", "utd20"):
        adapter = SkateFormerUCLAAdapter(setup["order"], window=cfg["window"], center_joint=lay.index("spine"))
    else:
        adapter = SkateFormerAdapter(
            setup["order"], window=cfg["window"], p_interval=cfg["p_interval"], thres=cfg["thres"], center=cfg["center"]
        )
    return Victim(
        network,
        layout=lay,
        num_classes=num_classes,
        adapter=adapter,
        name="skateformer",
        preset=preset,
        config=cfg,
        num_persons=cfg["num_persons"],
    )


register_victim(
    VictimFamily(
        name="skateformer",
        build=build,
        presets=("full", "lite"),
        layouts=("ntu25", "kinect20", "msr20", "utd20"),
        description="SkateFormer (ECCV'24) skeletal-temporal transformer; official NTU/NW-UCLA test pipelines, index_t input",
        paper=PAPER,
        # hdm05 exists only as the prior benchmark's variant (no official partition): build(..., compat="robustbenchhar").
        extra={"compat_layouts": {"robustbenchhar": ("ntu25", "hdm05")}},
    )
)
