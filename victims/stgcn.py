"""ST-GCN (Yan, Xiong & Lin, AAAI 2018), with the parameter names of the authors' release (yysijie/st-gcn).

``network`` is the official ``net.st_gcn.Model`` architecture: a persistent ``A`` buffer (the spatial-partition
adjacency, :func:`skelrobust.graph.stgcn_adjacency`), ``data_bn`` over ``V·C`` shared by persons, ten
``st_gcn_networks`` blocks (graph conv -> BN, ReLU, temporal conv 9x1, BN, dropout; residual), learnable
``edge_importance`` masks and a 1x1 ``Conv2d`` head ``fcn``. It takes ``(N, 3, T, V, M)`` and returns
``(N, num_class)``; official NTU-60 releases load with ``strict=True``.

Presets:
    ``full``: the official NTU-60 configuration (channels 64x4, 128x3, 256x3, strides 2 at blocks 4 and 7,
    dropout 0.5, edge importance). Adapter: raw camera coordinates zero-padded / cropped to 300 frames, as
    the official feeder (``feeder/feeder.py``) produces them.
    ``lite``: the same module classes with four narrow blocks (16, 32, 32, 64; strides 2 at blocks 0 and 2,
    about 82k parameters) for the embedded synthetic dataset on CPU. Adapter: pyskl's ST-GCN preprocessing
    (``PreNormalize3D``: first-frame SpineMid centring, spine onto +z, shoulders onto +x; the canonical T is
    kept). On raw camera coordinates, whose position and distance vary by metres between samples, the lite
    network trained several times slower on CPU (65 % vs 90 % test accuracy after 6 epochs).

Pipelines (``pipeline`` option): ``official`` = raw camera coordinates as yysijie/st-gcn's feeder gives them;
``pyskl`` = :class:`skelrobust.adapters.PreNormalize3D` with the layout's spine (root -> centre joint) and
shoulders; ``auto`` (the lite default) = ``pyskl`` where the layout has a distinct spine and named shoulders,
else ``official`` (``hdm05``, already normalised by its preprocessing).

Foreign releases (``convert_state_dict``): mmskeleton's ``ST_GCN_18`` uses the official names unchanged; pyskl's
``STGCN`` + ``GCNHead`` (``backbone.gcn.i.gcn.{conv,bn,PA,A}``, ``backbone.gcn.i.tcn.{conv,bn}``,
``backbone.gcn.i.residual.{conv,bn}``, ``cls_head.fc_cls``) is mapped block by block (pyskl moves the BN+ReLU
from the temporal unit into the graph unit; the function is the same). pyskl's graph differs at the hands, so
its ``A`` replaces ours. The prior benchmark's (RobustBenchHAR) ``STGCN`` checkpoints are plain state dicts
with the official names.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from skelrobust.adapters import PadCrop, PreNormalize3D
from skelrobust.checkpoints import add_missing_bn_counters
from skelrobust.errors import CheckpointError, ConfigError, LayoutMismatchError
from skelrobust.graph import inward_edges, stgcn_adjacency, stgcn_center
from skelrobust.layouts import SkeletonLayout, get_layout
from skelrobust.victim import Identity, Victim, VictimFamily, preset_config, register_victim

PAPER = "Yan, Xiong, Lin. Spatial Temporal Graph Convolutional Networks for Skeleton-Based Action Recognition. AAAI 2018."

PRESETS: dict[str, dict[str, Any]] = {
    "full": {
        "channels": (64, 64, 64, 64, 128, 128, 128, 256, 256, 256),
        "strides": (1, 1, 1, 1, 2, 1, 1, 2, 1, 1),
        "dropout": 0.5,
        "edge_importance_weighting": True,
        "strategy": "spatial",
        "frames": 300,
        "pipeline": "official",
    },
    "lite": {
        "channels": (16, 32, 32, 64),
        "strides": (2, 1, 2, 1),
        "dropout": 0.1,
        "edge_importance_weighting": True,
        "strategy": "spatial",
        "frames": None,
        "pipeline": "auto",
    },
}


class ConvTemporalGraphical(nn.Module):
    """Graph convolution: 1x1 conv to ``K·out`` channels, then ``einsum('nkctv,kvw->nctw', x, A)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.conv = nn.Conv2d(in_channels, out_channels * kernel_size, kernel_size=(1, 1))

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        n, kc, t, v = x.shape
        k = self.kernel_size
        # == einsum('nkctv,kvw->nctw', x, A), as one matmul over (k, v): same values, about twice as fast on CPU
        x = x.view(n, k, kc // k, t, v).permute(0, 2, 3, 1, 4).reshape(n, kc // k, t, k * v)
        return x @ a.reshape(k * v, a.shape[-1])


class st_gcn(nn.Module):  # noqa: N801 - official class name
    """One ST-GCN block: graph conv, temporal unit ``tcn``, residual (none / identity / conv+BN), ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int],
        stride: int = 1,
        dropout: float = 0.0,
        residual: bool = True,
    ) -> None:
        super().__init__()
        padding = ((kernel_size[0] - 1) // 2, 0)
        self.gcn = ConvTemporalGraphical(in_channels, out_channels, kernel_size[1])
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (kernel_size[0], 1), (stride, 1), padding),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout, inplace=True),
        )
        self.residual_mode = "none" if not residual else ("identity" if in_channels == out_channels and stride == 1 else "conv")
        if self.residual_mode == "conv":
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1)),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        out = self.tcn(self.gcn(x, a))
        if self.residual_mode == "identity":
            out = out + x
        elif self.residual_mode == "conv":
            out = out + self.residual(x)
        return self.relu(out)


class Model(nn.Module):
    """ST-GCN network (official ``net.st_gcn.Model`` with configurable block widths).

    Args:
        in_channels: Coordinates per joint (3).
        num_class: Output logits.
        A: Adjacency ``(K, V, V)`` indexed ``[k, source, target]`` (:func:`skelrobust.graph.stgcn_adjacency`).
        edge_importance_weighting: Learnable per-block edge masks (``edge_importance.i``).
        channels: Output channels of each block (official: 64,64,64,64,128,128,128,256,256,256).
        strides: Temporal stride of each block (official: 2 at blocks 4 and 7).
        dropout: Dropout inside the temporal unit of every block but the first (official: 0.5).
        temporal_kernel_size: Temporal kernel (9).

    Shape:
        ``(N, in_channels, T, V, M)`` -> ``(N, num_class)``.
    """

    def __init__(
        self,
        in_channels: int,
        num_class: int,
        A: torch.Tensor,
        edge_importance_weighting: bool = True,
        channels: Sequence[int] = PRESETS["full"]["channels"],
        strides: Sequence[int] = PRESETS["full"]["strides"],
        dropout: float = 0.5,
        temporal_kernel_size: int = 9,
    ) -> None:
        super().__init__()
        if len(channels) != len(strides) or not channels:
            raise ConfigError(f"ST-GCN: channels {tuple(channels)} and strides {tuple(strides)} must be non-empty and of equal length")
        self.register_buffer("A", torch.as_tensor(A, dtype=torch.float32).clone())
        kernel_size = (temporal_kernel_size, self.A.shape[0])
        self.data_bn = nn.BatchNorm1d(in_channels * self.A.shape[1])
        blocks, c_in = [], in_channels
        for i, (c_out, stride) in enumerate(zip(channels, strides)):
            first = i == 0
            blocks.append(st_gcn(c_in, c_out, kernel_size, stride, dropout=0.0 if first else dropout, residual=not first))
            c_in = c_out
        self.st_gcn_networks = nn.ModuleList(blocks)
        self.edge_importance_weighting = edge_importance_weighting
        if edge_importance_weighting:
            self.edge_importance = nn.ParameterList([nn.Parameter(torch.ones(self.A.shape)) for _ in blocks])
        self.fcn = nn.Conv2d(c_in, num_class, kernel_size=1)
        self.num_class = num_class

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).contiguous().view(n * m, v * c, t)
        x = self.data_bn(x)
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).contiguous().view(n * m, c, t, v)
        for i, block in enumerate(self.st_gcn_networks):
            a = self.A * self.edge_importance[i] if self.edge_importance_weighting else self.A
            x = block(x, a)
        x = F.avg_pool2d(x, x.shape[2:])
        x = x.view(n, m, -1, 1, 1).mean(dim=1)
        return self.fcn(x).view(n, -1)


def build(
    preset: str = "full",
    num_classes: int = 60,
    layout: str = "ntu25",
    num_persons: int | None = None,
    **config: Any,
) -> Victim:
    """Build an ST-GCN victim with random weights.

    Args:
        preset: ``full`` (official NTU-60 configuration) or ``lite``.
        num_classes: Output classes.
        layout: Skeleton layout; its graph follows :mod:`skelrobust.graph`.
        num_persons: Persons ``M`` the victim accepts; ``None`` accepts any (ST-GCN averages over persons).
        **config: Overrides of the preset (``channels``, ``strides``, ``dropout``, ``edge_importance_weighting``,
            ``strategy``, ``frames``: input frames after zero-padding/cropping, ``None`` keeps T; ``pipeline``:
            ``official``, ``pyskl`` or ``auto``).
    """
    cfg = preset_config("stgcn", PRESETS, preset, config)
    lay = get_layout(layout)
    a = stgcn_adjacency(lay.num_joints, inward_edges(lay), stgcn_center(lay), strategy=cfg["strategy"])
    network = Model(
        3,
        num_classes,
        torch.from_numpy(a),
        edge_importance_weighting=cfg["edge_importance_weighting"],
        channels=tuple(cfg["channels"]),
        strides=tuple(cfg["strides"]),
        dropout=cfg["dropout"],
    )
    adapter = _adapter(cfg["pipeline"], cfg["frames"], lay)
    record = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
    return Victim(
        network, layout=lay, num_classes=num_classes, adapter=adapter, name="stgcn", preset=preset,
        config=record, num_persons=num_persons,
    )


def _adapter(pipeline: str, frames: int | None, layout: SkeletonLayout) -> nn.Module:
    """The input adapter of a pipeline (see the module docstring)."""
    steps: list[nn.Module] = []
    names = layout.joint_names
    normalisable = layout.root != layout.center and "shoulder_right" in names and "shoulder_left" in names
    if pipeline == "auto":
        pipeline = "pyskl" if normalisable else "official"
    if pipeline == "pyskl":
        if not normalisable:
            raise LayoutMismatchError(
                f"stgcn: pipeline 'pyskl' needs a spine (root != centre) and named shoulders; layout {layout.name!r} "
                "has none, use pipeline='official'"
            )
        shoulders = (layout.index("shoulder_right"), layout.index("shoulder_left"))
        steps.append(PreNormalize3D((layout.root, layout.center), shoulders, layout.center))
    elif pipeline != "official":
        raise ConfigError(f"stgcn: unknown pipeline {pipeline!r}; expected 'official', 'pyskl' or 'auto'")
    if frames is not None:
        steps.append(PadCrop(frames))
    if not steps:
        return Identity()
    return steps[0] if len(steps) == 1 else nn.Sequential(*steps)


_PYSKL_BLOCK = {
    "gcn.conv.": "gcn.conv.",
    "gcn.bn.": "tcn.0.",
    "tcn.conv.": "tcn.2.",
    "tcn.bn.": "tcn.3.",
    "residual.conv.": "residual.0.",
    "residual.bn.": "residual.1.",
}


def convert_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map mmskeleton / pyskl / RobustBenchHAR ST-GCN state dicts onto the official names.

    Official, mmskeleton ``ST_GCN_18`` and RobustBenchHAR keys pass through unchanged. pyskl keys
    (``backbone.*``, ``cls_head.fc_cls.*``) are renamed: ``backbone.gcn.i.gcn.PA`` -> ``edge_importance.i``,
    the per-block ``A`` buffers (identical in every block) -> ``A``, ``fc_cls`` (K, C) -> ``fcn`` (K, C, 1, 1).
    Tolerated omissions of early releases are filled in: BatchNorm ``num_batches_tracked`` counters, and the
    ``A`` buffer of a 25-joint model (the official NTU ``ntu-rgb+d``/spatial graph, the only 25-joint
    graph of an official release).
    """
    if any(k.startswith(("backbone.", "cls_head.")) for k in state):
        state = _from_pyskl(state)
    out = add_missing_bn_counters(state)
    bn = out.get("data_bn.weight")
    if "A" not in out and bn is not None and bn.numel() == 75:
        a = stgcn_adjacency(25, inward_edges("ntu25"), stgcn_center("ntu25"))
        out["A"] = torch.from_numpy(a).to(torch.float32)
    return out


def _from_pyskl(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("cls_head.fc_cls."):
            suffix = key[len("cls_head.fc_cls."):]
            out["fcn." + suffix] = value.reshape(*value.shape, 1, 1) if suffix == "weight" else value
            continue
        if key.startswith("backbone.data_bn."):
            out[key[len("backbone."):]] = value
            continue
        match = re.fullmatch(r"backbone\.gcn\.(\d+)\.(.+)", key)
        if match is None:
            raise CheckpointError(f"stgcn: pyskl key {key!r} has no official counterpart")
        block, rest = match.groups()
        if rest == "gcn.PA":
            out[f"edge_importance.{block}"] = value
        elif rest == "gcn.A":
            if "A" in out and not torch.equal(out["A"], value):
                raise CheckpointError(f"stgcn: pyskl block graphs differ ({key}); one shared A buffer cannot hold them")
            out["A"] = value
        else:
            for src, dst in _PYSKL_BLOCK.items():
                if rest.startswith(src):
                    out[f"st_gcn_networks.{block}.{dst}{rest[len(src):]}"] = value
                    break
            else:
                raise CheckpointError(f"stgcn: pyskl key {key!r} has no official counterpart")
    return out


FAMILY = register_victim(
    VictimFamily(
        name="stgcn",
        build=build,
        presets=("full", "lite"),
        layouts=("ntu25", "kinect20", "msr20", "utd20", "hdm05"),
        description="ST-GCN (AAAI'18), official yysijie/st-gcn names; mmskeleton/pyskl/RobustBenchHAR checkpoints",
        convert_state_dict=convert_state_dict,
        paper=PAPER,
    )
)
