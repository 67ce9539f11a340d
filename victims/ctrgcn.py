"""CTR-GCN (Chen et al., ICCV 2021), with the parameter names of the official release (Uason-Chen/CTR-GCN).

``network`` is the official ``model.ctrgcn.Model``: ``data_bn`` over ``M·V·C`` (per-person channels, so the
person count is fixed), units ``l1 … l10`` (``gcn1``: three channel-wise topology refinement convolutions
``convs.k`` around a learnable adjacency ``PA`` initialised from :func:`skelrobust.graph.ctrgcn_adjacency`,
``alpha``, ``down``, ``bn``; ``tcn1``: multi-scale temporal convolution with four branches; ``residual``)
and a linear head ``fc``. It takes ``(N, 3, T, V, M)`` and returns ``(N, num_class)``; official NTU-60
releases and the prior benchmark's (RobustBenchHAR) ``CTRGCN`` state dicts load with ``strict=True`` (no
key conversion: both are bare state dicts with the official names; RobustBenchHAR's HDM05 models use the
NTU graph, but ``PA`` is learnt and loaded, so only its initial value differs).

Adapter (the official test-time pipeline, made differentiable), ``pipeline="ntu"``: the canonical tensor is
centred on the first-frame position of the layout's centre joint of actor 1 (NTU: SpineMid, as
``seq_translation`` does when the NTU npz is generated; absent persons and padded frames stay zero), the
central 95 % of each sample's valid frames is kept and linearly resized to 64 frames (``valid_crop_resize``
with ``p_interval=[0.95]``). ``pipeline="ucla"`` (default for ``kinect20``, CTR-GCN's NW-UCLA feeder): per-axis
min-max scaling of the valid frames to [-1, 1], then 52 frames at ``floor(linspace(0, L - 1, 52))``.

Presets:
    ``full``: the official NTU-60 configuration (base 64 channels, ten units, strides 2 at l5 and l8,
    dropout 0, adaptive graph).
    ``lite``: the same module classes with four narrow units l1-l4 (16, 32, 64, 64; strides 2 at l1 and l2,
    about 59k parameters) for the embedded synthetic dataset on CPU. Same adapter (64 frames).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from skelrobust.adapters import CenterCropResize, MinMaxSample
from skelrobust.checkpoints import add_missing_bn_counters
from skelrobust.errors import ConfigError
from skelrobust.graph import ctrgcn_adjacency, inward_edges
from skelrobust.layouts import get_layout
from skelrobust.victim import Victim, VictimFamily, preset_config, register_victim

PAPER = (
    "Chen, Zhang, Yuan, Li, Deng, Hu. Channel-wise Topology Refinement Graph Convolution for "
    "Skeleton-Based Action Recognition. ICCV 2021."
)

PRESETS: dict[str, dict[str, Any]] = {
    "full": {
        "channels": (64, 64, 64, 64, 128, 128, 128, 256, 256, 256),
        "strides": (1, 1, 1, 1, 2, 1, 1, 2, 1, 1),
        "drop_out": 0.0,
        "pipeline": None,
        "window": None,
        "p": 0.95,
    },
    "lite": {
        "channels": (16, 32, 64, 64),
        "strides": (2, 2, 1, 1),
        "drop_out": 0.0,
        "pipeline": None,
        "window": None,
        "p": 0.95,
    },
}


def _conv_init(conv: nn.Conv2d) -> None:
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    if conv.bias is not None:
        nn.init.constant_(conv.bias, 0)


def _bn_init(bn: nn.modules.batchnorm._BatchNorm, scale: float) -> None:
    nn.init.constant_(bn.weight, scale)
    nn.init.constant_(bn.bias, 0)


class TemporalConv(nn.Module):
    """Dilated temporal convolution ``(k, 1)`` + BN."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size=(kernel_size, 1), padding=(pad, 0), stride=(stride, 1), dilation=(dilation, 1)
        )
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class MultiScale_TemporalConv(nn.Module):  # noqa: N801 - official class name
    """Multi-scale temporal convolution: one dilated branch per dilation, a max-pool branch and a 1x1 branch.

    Each branch has ``out_channels / (len(dilations) + 2)`` channels; the outputs are concatenated. Used with
    ``residual=False`` inside CTR-GCN units (the unit adds its own residual).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 1, dilations: Sequence[int] = (1, 2)) -> None:
        super().__init__()
        num_branches = len(dilations) + 2
        if out_channels % num_branches:
            raise ConfigError(f"CTR-GCN: {out_channels} output channels are not divisible by {num_branches} temporal branches")
        bc = out_channels // num_branches
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(in_channels, bc, kernel_size=1, padding=0),
                nn.BatchNorm2d(bc),
                nn.ReLU(inplace=True),
                TemporalConv(bc, bc, kernel_size=kernel_size, stride=stride, dilation=d),
            )
            for d in dilations
        )
        self.branches.append(
            nn.Sequential(
                nn.Conv2d(in_channels, bc, kernel_size=1, padding=0),
                nn.BatchNorm2d(bc),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=(3, 1), stride=(stride, 1), padding=(1, 0)),
                nn.BatchNorm2d(bc),
            )
        )
        self.branches.append(
            nn.Sequential(nn.Conv2d(in_channels, bc, kernel_size=1, padding=0, stride=(stride, 1)), nn.BatchNorm2d(bc))
        )
        for m in self.modules():  # official weights_init
            if isinstance(m, nn.Conv2d):
                _conv_init(m)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.normal_(1.0, 0.02)
                m.bias.data.fill_(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class CTRGC(nn.Module):
    """Channel-wise topology refinement graph convolution.

    ``M = conv4(tanh(mean_T conv1 x [..., None] - mean_T conv2 x [..., None, :])) · alpha + A`` refines the shared
    topology per channel; the output is ``einsum('ncuv,nctv->nctu', M, conv3 x)``.
    """

    def __init__(self, in_channels: int, out_channels: int, rel_reduction: int = 8) -> None:
        super().__init__()
        rel = 8 if in_channels in (3, 9) else in_channels // rel_reduction
        self.conv1 = nn.Conv2d(in_channels, rel, kernel_size=1)
        self.conv2 = nn.Conv2d(in_channels, rel, kernel_size=1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.conv4 = nn.Conv2d(rel, out_channels, kernel_size=1)
        self.tanh = nn.Tanh()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                _conv_init(m)

    def forward(self, x: torch.Tensor, a: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        x1, x2, x3 = self.conv1(x).mean(-2), self.conv2(x).mean(-2), self.conv3(x)
        rel = self.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))
        topo = self.conv4(rel) * alpha + a[None, None]
        return torch.einsum("ncuv,nctv->nctu", topo, x3)


class unit_tcn(nn.Module):  # noqa: N801 - official class name
    """Temporal convolution + BN (the strided 1x1 residual of CTR-GCN units)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 9, stride: int = 1) -> None:
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=(kernel_size, 1), padding=(pad, 0), stride=(stride, 1))
        self.bn = nn.BatchNorm2d(out_channels)
        _conv_init(self.conv)
        _bn_init(self.bn, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class unit_gcn(nn.Module):  # noqa: N801 - official class name
    """Sum of one :class:`CTRGC` per adjacency subset, BN (initial scale 1e-6), ``down`` residual, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor) -> None:
        super().__init__()
        self.convs = nn.ModuleList(CTRGC(in_channels, out_channels) for _ in range(A.shape[0]))
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        else:
            self.down = None
        self.PA = nn.Parameter(torch.as_tensor(A, dtype=torch.float32).clone())
        self.alpha = nn.Parameter(torch.zeros(1))
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                _conv_init(m)
            elif isinstance(m, nn.BatchNorm2d):
                _bn_init(m, 1)
        _bn_init(self.bn, 1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convs[0](x, self.PA[0], self.alpha)
        for k in range(1, len(self.convs)):
            y = y + self.convs[k](x, self.PA[k], self.alpha)
        y = self.bn(y)
        y = y + (self.down(x) if self.down is not None else x)
        return self.relu(y)


class TCN_GCN_unit(nn.Module):  # noqa: N801 - official class name
    """``ReLU(tcn1(gcn1(x)) + residual(x))``; residual none (first unit), identity, or strided ``unit_tcn``."""

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, stride: int = 1, residual: bool = True) -> None:
        super().__init__()
        self.gcn1 = unit_gcn(in_channels, out_channels, A)
        self.tcn1 = MultiScale_TemporalConv(out_channels, out_channels, kernel_size=5, stride=stride, dilations=(1, 2))
        self.relu = nn.ReLU(inplace=True)
        self.residual_mode = "none" if not residual else ("identity" if in_channels == out_channels and stride == 1 else "conv")
        if self.residual_mode == "conv":
            self.residual = unit_tcn(in_channels, out_channels, kernel_size=1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn1(self.gcn1(x))
        if self.residual_mode == "identity":
            y = y + x
        elif self.residual_mode == "conv":
            y = y + self.residual(x)
        return self.relu(y)


class Model(nn.Module):
    """CTR-GCN network (official ``model.ctrgcn.Model``, adaptive graph, configurable unit widths).

    Args:
        num_class: Output logits.
        num_point: Joints ``V``.
        num_person: Persons ``M`` (fixed: ``data_bn`` has ``M·V·C`` channels, channel = m·V·C + v·C + c).
        A: Initial adjacency ``(3, V, V)`` indexed ``[k, target, source]`` (:func:`skelrobust.graph.ctrgcn_adjacency`).
        in_channels: Coordinates per joint (3).
        drop_out: Dropout before ``fc`` (official NTU: 0).
        channels: Output channels of units ``l1, l2, ...`` (official: 64x4, 128x3, 256x3).
        strides: Temporal stride of each unit (official: 2 at l5 and l8).

    Shape:
        ``(N, in_channels, T, V, M)`` -> ``(N, num_class)``.
    """

    def __init__(
        self,
        num_class: int,
        num_point: int,
        num_person: int,
        A: torch.Tensor,
        in_channels: int = 3,
        drop_out: float = 0.0,
        channels: Sequence[int] = PRESETS["full"]["channels"],
        strides: Sequence[int] = PRESETS["full"]["strides"],
    ) -> None:
        super().__init__()
        if len(channels) != len(strides) or not channels:
            raise ConfigError(f"CTR-GCN: channels {tuple(channels)} and strides {tuple(strides)} must be non-empty and of equal length")
        self.num_class = num_class
        self.num_point = num_point
        self.data_bn = nn.BatchNorm1d(num_person * in_channels * num_point)
        self.num_units = len(channels)
        c_in = in_channels
        for i, (c_out, stride) in enumerate(zip(channels, strides)):
            setattr(self, f"l{i + 1}", TCN_GCN_unit(c_in, c_out, A, stride=stride, residual=i > 0))
            c_in = c_out
        self.fc = nn.Linear(c_in, num_class)
        nn.init.normal_(self.fc.weight, 0, math.sqrt(2.0 / num_class))
        _bn_init(self.data_bn, 1)
        self.drop_out = nn.Dropout(drop_out) if drop_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).contiguous().view(n, m * v * c, t)
        x = self.data_bn(x)
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).contiguous().view(n * m, c, t, v)
        for i in range(self.num_units):
            x = getattr(self, f"l{i + 1}")(x)
        x = x.view(n, m, x.shape[1], -1).mean(3).mean(1)
        return self.fc(self.drop_out(x))


def build(
    preset: str = "full",
    num_classes: int = 60,
    layout: str = "ntu25",
    num_persons: int | None = 2,
    **config: Any,
) -> Victim:
    """Build a CTR-GCN victim with random weights.

    Args:
        preset: ``full`` (official NTU-60 configuration) or ``lite``.
        num_classes: Output classes.
        layout: Skeleton layout; its graph follows :mod:`skelrobust.graph`, the adapter centres on its centre joint.
        num_persons: Persons ``M`` (fixed by ``data_bn``; default 2 as on NTU).
        **config: Overrides of the preset (``channels``, ``strides``, ``drop_out``; ``pipeline``: ``ntu`` or
            ``ucla``, by default ``ucla`` for ``kinect20`` and ``ntu`` otherwise; ``window``: frames fed to the
            network, 64 for ``ntu`` and 52 for ``ucla`` by default; ``p``: kept fraction of the valid frames, ``ntu``).
    """
    cfg = preset_config("ctrgcn", PRESETS, preset, config)
    if num_persons is None or num_persons < 1:
        raise ConfigError(f"ctrgcn: num_persons must be a positive integer (data_bn is per person), got {num_persons!r}")
    lay = get_layout(layout)
    a = torch.from_numpy(ctrgcn_adjacency(lay.num_joints, inward_edges(lay)))
    network = Model(
        num_classes, lay.num_joints, num_persons, a, drop_out=cfg["drop_out"],
        channels=tuple(cfg["channels"]), strides=tuple(cfg["strides"]),
    )
    if cfg["pipeline"] is None:
        cfg["pipeline"] = "ucla" if lay.name == "kinect20" else "ntu"
    if cfg["pipeline"] == "ntu":
        cfg["window"] = cfg["window"] or 64
        adapter: nn.Module = CenterCropResize(lay.center, window=cfg["window"], p=cfg["p"])
    elif cfg["pipeline"] == "ucla":
        cfg["window"] = cfg["window"] or 52
        adapter = MinMaxSample(window=cfg["window"])
    else:
        raise ConfigError(f"ctrgcn: pipeline {cfg['pipeline']!r}: expected 'ntu' or 'ucla'")
    record = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
    return Victim(
        network, layout=lay, num_classes=num_classes, adapter=adapter, name="ctrgcn", preset=preset,
        config=record, num_persons=num_persons,
    )


def convert_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official and RobustBenchHAR CTR-GCN checkpoints use the official names; only BatchNorm counters that
    predate PyTorch 0.4.1 are filled in (:func:`skelrobust.checkpoints.add_missing_bn_counters`)."""
    return add_missing_bn_counters(state)


FAMILY = register_victim(
    VictimFamily(
        name="ctrgcn",
        build=build,
        presets=("full", "lite"),
        layouts=("ntu25", "kinect20", "msr20", "utd20", "hdm05"),
        description="CTR-GCN (ICCV'21), official Uason-Chen/CTR-GCN names; RobustBenchHAR checkpoints",
        convert_state_dict=convert_state_dict,
        paper=PAPER,
    )
)
