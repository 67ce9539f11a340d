"""Self-supervised ST-GCN-16 encoders as victims: SkeletonCLR, CrosSCLR, AimCLR, ActCLR and HiCLR.

All five methods pretrain the same encoder, ``net/st_gcn.py: Model(in_channels=3, hidden_channels=16,
hidden_dim=256, graph_args={'layout': 'ntu-rgb+d', 'strategy': 'spatial'}, edge_importance_weighting=True,
dropout=0.5)``: the original ST-GCN blocks and graph (:mod:`skelrobust.victims.stgcn`, same ``A`` buffer with the
spatial-partition quirk) with widths 16,16,16,16,32(s2),32,32,64(s2),64,256, ``data_bn`` over ``V·C``, the mean
over (T, V) and then over persons (a 256-d feature), and a head ``fc``. They are then linearly evaluated: the
frozen encoder (eval mode) plus a trained ``fc``. A victim is that linear-evaluation model, so ``network`` is
:class:`LinearEvalModel` holding ``encoder_q`` and the official files (a bare state dict of 179 keys prefixed
``encoder_q.``) load with ``strict=True``.

Per method (one registry name each):

- ``skeletonclr`` / ``crossclr`` (LinguoLi/CrosSCLR, Li et al. CVPR 2021): ``fc`` = ``Linear(256, K)``;
  the joint stream (``crossclr`` reads the joint encoder of CrosSCLR's 3-view pretext files for a linear
  evaluation).
- ``crossclr-3view``: CrosSCLR-3views' linear-evaluation model (:class:`ThreeViewModel`): three such encoders
  ``encoder_q``, ``encoder_q_motion``, ``encoder_q_bone`` (537 keys), motion and bone derived inside ``forward``
  from the preprocessed joints, logits averaged (``view='all'``; ``joint``/``motion``/``bone`` select one). A
  registry name of its own rather than an option of ``crossclr``: it is another network with another
  checkpoint layout, so files of either kind are recognised and sent to the right name, ``skelrobust victims``
  lists its format, and the one-encoder recipes (MoCo pretraining, ``train --linear-eval``) refuse it instead
  of silently training one of its three encoders.
- ``aimclr`` (Levigty/AimCLR, Guo et al. AAAI 2022): same encoder plus the parameter-free ``Simam_Drop``, used
  only in pretraining (``forward(x, drop=False)`` at evaluation), so the evaluated network is the same.
- ``actclr`` (LanglandsLin/ActCLR, Lin et al. CVPR 2023): ``fc`` = ``Conv2d(256, K, 1)`` on the pooled
  ``(N, 256, 1, 1)`` feature (``encoder_q.fc.weight (K, 256, 1, 1)``).
- ``hiclr`` (JHang2020/HiCLR, Zhang et al. AAAI 2023): the edge importances are registered one by one as
  ``edge_importance1 .. edge_importance10`` instead of a ParameterList.

The linear-evaluation files of the ActCLR repository store a 1x1-conv head for its AimCLR copy too, so every
family accepts ``fc.weight`` as ``(K, 256)`` or ``(K, 256, 1, 1)`` (the same linear map). Pretext files
(``encoder_q.*``, ``encoder_k.*``, ``queue``, the projector ``encoder_q.fc.{0,2}``) hold no classifier: used
as a victim they are refused with the linear-evaluation command to run; :func:`encoder_state` reads them as an
encoder. A file whose keys reveal another method (HiCLR's numbered importances or ``mask_param``, ActCLR's
pretraining modules, CrosSCLR's 3-view encoders, a supervised ST-GCN's ``fcn``) is refused naming that method.

Presets: ``full`` = the official configuration above with the ``NTU60_frame50`` input pipeline
(:class:`skelrobust.ssl_input.Frame50`: per-frame SpineShoulder-relative, valid frames resized to 50,
per-frame shoulder alignment about y). ``lite`` = four narrow blocks (16, 32, 32, 64; strides 2 at blocks 0 and 2;
dropout 0.1, about 80k parameters) with the same pipeline, for the embedded synthetic set on CPU.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from skelrobust.checkpoints import add_missing_bn_counters
from skelrobust.errors import CheckpointError, ConfigError
from skelrobust.graph import inward_edges, stgcn_adjacency, stgcn_center
from skelrobust.layouts import get_layout
from skelrobust.ssl_input import Frame50
from skelrobust.victim import Identity, Victim, VictimFamily, preset_config, register_victim
from skelrobust.victims.stgcn import st_gcn

PRESETS: dict[str, dict[str, Any]] = {
    "full": {
        "channels": (16, 16, 16, 16, 32, 32, 32, 64, 64, 256),
        "strides": (1, 1, 1, 1, 2, 1, 1, 2, 1, 1),
        "dropout": 0.5,
        "frames": 50,
        "pipeline": "frame50",
    },
    "lite": {
        "channels": (16, 32, 32, 64),
        "strides": (2, 1, 2, 1),
        "dropout": 0.1,
        "frames": 50,
        "pipeline": "frame50",
    },
}

METHODS: dict[str, dict[str, str]] = {
    "skeletonclr": {
        "head": "linear", "importance": "list", "repo": "LinguoLi/CrosSCLR",
        "paper": "Li, Wang, Zhang, Zhang. 3D Human Action Representation Learning via Cross-View Consistency Pursuit (SkeletonCLR). CVPR 2021.",
        "description": "SkeletonCLR (CVPR'21) MoCo ST-GCN-16 encoder + linear head; official linear-eval/pretext checkpoints",
    },
    "crossclr": {
        "head": "linear", "importance": "list", "repo": "LinguoLi/CrosSCLR",
        "paper": "Li, Wang, Zhang, Zhang. 3D Human Action Representation Learning via Cross-View Consistency Pursuit. CVPR 2021.",
        "description": "CrosSCLR (CVPR'21) ST-GCN-16 encoder (joint stream) + linear head",
    },
    "aimclr": {
        "head": "linear", "importance": "list", "repo": "Levigty/AimCLR",
        "paper": "Guo, Liu, Cai, Zhang, Hu. Contrastive Learning from Extremely Augmented Skeleton Sequences for Self-supervised Action Recognition (AimCLR). AAAI 2022.",
        "description": "AimCLR (AAAI'22) ST-GCN-16 encoder + linear head",
    },
    "actclr": {
        "head": "conv", "importance": "list", "repo": "LanglandsLin/ActCLR",
        "paper": "Lin, Zhang, Chu, Liu, Zhang. Actionlet-Dependent Contrastive Learning for Unsupervised Skeleton-Based Action Recognition (ActCLR). CVPR 2023.",
        "description": "ActCLR (CVPR'23) ST-GCN-16 encoder + 1x1-conv head",
    },
    "hiclr": {
        "head": "linear", "importance": "numbered", "repo": "JHang2020/HiCLR",
        "paper": "Zhang, Hou, Zhang, Liu, Ma. Hierarchical Consistent Contrastive Learning for Skeleton-Based Action Recognition with Growing Augmentations (HiCLR). AAAI 2023.",
        "description": "HiCLR (AAAI'23) ST-GCN-16 encoder (edge_importance1..10) + linear head",
    },
}

#: Registry name of CrosSCLR's 3-view linear-evaluation model (three encoders: a network of its own).
THREE_VIEW = "crossclr-3view"

#: Top-level modules of ActCLR's pretraining model that its linear evaluation ignores.
_ACTCLR_EXTRAS = ("mu", "kappa", "alpha", "to_q", "to_k", "to_v", "slot_attn", "decoder_r", "decoder_m", "prototypes")
_NUMBERED = re.compile(r"(?:encoder_q\.)?edge_importance\d+")


class Model(nn.Module):
    """The ST-GCN-16 encoder with its head (official ``net.st_gcn.Model`` of the SSL repositories).

    Args:
        in_channels: Coordinates per joint (3).
        num_class: Head outputs (classes at linear evaluation).
        A: Adjacency ``(K, V, V)`` (:func:`skelrobust.graph.stgcn_adjacency`).
        channels: Block widths; the last is the feature size (official: 16,16,16,16,32,32,32,64,64,256).
        strides: Temporal strides (official: 2 at blocks 4 and 7).
        dropout: Dropout in every block but the first (official: 0.5; only active in training).
        head: ``linear`` (``nn.Linear``) or ``conv`` (ActCLR's ``nn.Conv2d(D, K, 1)``).
        importance: ``list`` (``edge_importance.i``) or ``numbered`` (HiCLR's ``edge_importance{i+1}``).

    Shape:
        ``(N, in_channels, T, V, M)`` -> ``(N, num_class)``; :meth:`pooled` gives the ``(N, D)`` feature.
    """

    def __init__(
        self,
        in_channels: int,
        num_class: int,
        A: torch.Tensor,
        channels: Sequence[int] = PRESETS["full"]["channels"],
        strides: Sequence[int] = PRESETS["full"]["strides"],
        dropout: float = 0.5,
        head: str = "linear",
        importance: str = "list",
    ) -> None:
        super().__init__()
        if len(channels) != len(strides) or not channels:
            raise ConfigError(f"ST-GCN-16: channels {tuple(channels)} and strides {tuple(strides)} must be non-empty and of equal length")
        if head not in ("linear", "conv") or importance not in ("list", "numbered"):
            raise ConfigError(f"ST-GCN-16: head must be 'linear' or 'conv' and importance 'list' or 'numbered', got {head!r}, {importance!r}")
        self.register_buffer("A", torch.as_tensor(A, dtype=torch.float32).clone())
        kernel_size = (9, self.A.shape[0])
        self.data_bn = nn.BatchNorm1d(in_channels * self.A.shape[1])
        blocks, c_in = [], in_channels
        for i, (c_out, stride) in enumerate(zip(channels, strides)):
            first = i == 0
            blocks.append(st_gcn(c_in, c_out, kernel_size, stride, dropout=0.0 if first else dropout, residual=not first))
            c_in = c_out
        self.st_gcn_networks = nn.ModuleList(blocks)
        self.fc: nn.Module = nn.Linear(c_in, num_class) if head == "linear" else nn.Conv2d(c_in, num_class, 1, 1)
        self.importance_style = importance
        if importance == "list":
            self.edge_importance = nn.ParameterList([nn.Parameter(torch.ones(self.A.shape)) for _ in blocks])
        else:
            for i in range(len(blocks)):
                self.register_parameter(f"edge_importance{i + 1}", nn.Parameter(torch.ones(self.A.shape)))
        self.head = head
        self.feature_dim = c_in
        self.num_class = num_class

    def importances(self) -> list[torch.Tensor]:
        """The per-block edge masks, whatever their registered names."""
        if self.importance_style == "list":
            return list(self.edge_importance)
        return [getattr(self, f"edge_importance{i + 1}") for i in range(len(self.st_gcn_networks))]

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The feature before the head: mean over (T, V), then over persons, ``(N, D)``."""
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).contiguous().view(n * m, v * c, t)
        x = self.data_bn(x)
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).contiguous().view(n * m, c, t, v)
        for block, importance in zip(self.st_gcn_networks, self.importances()):
            x = block(x, self.A * importance)
        x = F.avg_pool2d(x, x.shape[2:])
        return x.view(n, m, -1).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.pooled(x)
        if isinstance(self.fc, nn.Conv2d):
            return self.fc(feat.view(*feat.shape, 1, 1)).view(feat.shape[0], -1)
        return self.fc(feat).view(feat.shape[0], -1)


class LinearEvalModel(nn.Module):
    """The linear-evaluation model (``Method(pretrain=False)``): only ``encoder_q``; ``forward = encoder_q``."""

    def __init__(self, encoder_q: Model) -> None:
        super().__init__()
        self.encoder_q = encoder_q
        self.num_classes = encoder_q.num_class

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder_q(x)


def identify(state: dict[str, torch.Tensor]) -> tuple[str | None, str, str]:
    """What a (``module.``-stripped) state dict is: ``(method or None, kind, evidence)``.

    ``kind`` is ``pretext`` (MoCo-style pretraining), ``linear`` (linear evaluation, ``encoder_q.*`` only),
    ``supervised`` (an ST-GCN classifier) or ``unknown``. ``method`` is set only where keys reveal it
    (SkeletonCLR, CrosSCLR joint and AimCLR files are indistinguishable, as are their networks).
    """
    keys = list(state)
    method, evidence = None, ""
    numbered = [k for k in keys if _NUMBERED.fullmatch(k)]
    if numbered or "mask_param" in state:
        method, evidence = "hiclr", f"key {(numbered or ['mask_param'])[0]!r}"
    elif any(k.split(".")[0] in _ACTCLR_EXTRAS or k.startswith(("encoder_q.slot_attn.", "encoder_q.dense.")) for k in keys):
        found = next(k for k in keys if k.split(".")[0] in _ACTCLR_EXTRAS or k.startswith(("encoder_q.slot_attn.", "encoder_q.dense.")))
        method, evidence = "actclr", f"ActCLR pretraining key {found!r}"
    elif any(k.startswith(("encoder_q_motion.", "encoder_q_bone.", "queue_motion")) for k in keys):
        found = next(k for k in keys if k.startswith(("encoder_q_motion.", "encoder_q_bone.", "queue_motion")))
        method, evidence = THREE_VIEW, f"CrosSCLR 3-view key {found!r}"
    if "queue" in state or any(k.startswith("encoder_k.") for k in keys) or "encoder_q.fc.0.weight" in state:
        return method, "pretext", evidence or "keys queue / encoder_k.* / projector encoder_q.fc.0"
    if "fcn.weight" in state and not any(k.startswith("encoder_q.") for k in keys):
        return "stgcn", "supervised", "key 'fcn.weight' (a supervised ST-GCN head)"
    if any(k.startswith("encoder_q.") for k in keys):
        return method, "linear", evidence
    return method, "unknown", evidence


def _prefixed(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A bare encoder state dict (``data_bn.*``, ``st_gcn_networks.*``, ``fc.*``) under ``encoder_q.``."""
    if not any(k.startswith("encoder_q.") for k in state) and "fc.weight" in state and "st_gcn_networks.0.gcn.conv.weight" in state:
        return {"encoder_q." + k: v for k, v in state.items()}
    return state


def _check_method(method: str, state: dict[str, torch.Tensor], joint_of_three_views: bool = False) -> tuple[str, str]:
    """``(kind, evidence)`` of ``state`` for ``method``; raise when its keys reveal another method.

    With ``joint_of_three_views`` a CrosSCLR 3-view file passes for ``crossclr`` (its joint encoder is read).
    """
    looks, kind, evidence = identify(state)
    if joint_of_three_views and method == "crossclr" and looks == THREE_VIEW:
        return kind, evidence
    listed = next((k for k in state if re.fullmatch(r"(?:encoder_q\.)?edge_importance\.\d+", k)), None)
    if method == "hiclr" and looks is None and listed is not None:
        fc = state.get("encoder_q.fc.weight")
        others = "actclr" if fc is not None and fc.ndim == 4 else "skeletonclr, crossclr or aimclr"
        raise CheckpointError(
            f"this looks like a {others} checkpoint (key {listed!r}; HiCLR names its masks edge_importance1..10), "
            f"not hiclr; load it with --victim {others.split(',')[0]}"
        )
    if looks is not None and looks != method:
        raise CheckpointError(
            f"this looks like a {looks} checkpoint ({evidence}), not {method}; load it with --victim {looks}"
        )
    return kind, evidence


def encoder_state(method: str) -> Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """``state -> encoder_q.*`` without the head, from a pretext or linear-evaluation file of ``method``.

    The official linear evaluation's filter (``ignore_weights: [encoder_q.fc, encoder_k, queue]`` plus
    ActCLR's and HiCLR's pretraining extras): every other key must be an ``encoder_q.*`` key.
    """

    def extract(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        state = _prefixed(state)
        kind, _ = _check_method(method, state, joint_of_three_views=True)
        if kind == "supervised":
            raise CheckpointError("this is a supervised ST-GCN checkpoint (key 'fcn.weight'), not a self-supervised encoder")
        enc = {k: v for k, v in state.items() if k.startswith("encoder_q.") and not k.startswith("encoder_q.fc.")}
        if not enc:
            raise CheckpointError(f"no encoder_q.* keys: not a {method} pretext or linear-evaluation checkpoint")
        return add_missing_bn_counters(enc)

    return extract


def _converter(method: str) -> Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    head = METHODS[method]["head"]

    def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        state = _prefixed(state)
        kind, evidence = _check_method(method, state)
        if kind == "pretext":
            raise CheckpointError(
                f"this is a {method} pretraining (pretext) checkpoint ({evidence}): it holds the encoder but no classifier; "
                f"train a linear head first: skelrobust train --linear-eval --encoder <this file> --victim {method} "
                "--dataset DATASET --out DIR, then load DIR/best.pt"
            )
        return _fit_heads_and_graph(add_missing_bn_counters(state), ("encoder_q",), head)

    return convert


def _fit_heads_and_graph(out: dict[str, torch.Tensor], encoders: Sequence[str], head: str) -> dict[str, torch.Tensor]:
    """Each encoder's ``fc.weight`` in the head's shape (``(K, D)`` or ``(K, D, 1, 1)``), its ``A`` when absent."""
    for prefix in encoders:
        weight = out.get(f"{prefix}.fc.weight")
        if weight is not None:
            if head == "conv" and weight.ndim == 2:
                out[f"{prefix}.fc.weight"] = weight.reshape(*weight.shape, 1, 1)
            elif head == "linear" and weight.ndim == 4 and weight.shape[2:] == (1, 1):
                out[f"{prefix}.fc.weight"] = weight.reshape(weight.shape[:2])
        if f"{prefix}.A" not in out and out.get(f"{prefix}.data_bn.weight", torch.zeros(0)).numel() == 75:
            a = stgcn_adjacency(25, inward_edges("ntu25"), stgcn_center("ntu25"))
            out[f"{prefix}.A"] = torch.from_numpy(a).to(torch.float32)
    return out


def _parts(name: str, head: str, importance: str, preset: str, num_classes: int, layout: str, config: dict[str, Any],
           extra_options: Sequence[str] = ()) -> tuple[Callable[[], Model], nn.Module, dict[str, Any]]:
    """``(encoder factory, adapter, recorded config)`` of a ``preset`` with ``config`` overrides."""
    cfg = preset_config(name, PRESETS, preset, config, extra_options)
    lay = get_layout(layout)
    a = torch.from_numpy(stgcn_adjacency(lay.num_joints, inward_edges(lay), stgcn_center(lay)))

    def encoder() -> Model:
        return Model(
            3, num_classes, a, channels=tuple(cfg["channels"]), strides=tuple(cfg["strides"]),
            dropout=cfg["dropout"], head=head, importance=importance,
        )

    if cfg["pipeline"] == "frame50":
        names = lay.joint_names
        adapter: nn.Module = Frame50(
            # centred on NTU's SpineShoulder, or its Kinect v1 analogue (the shoulder centre; skelrobust.graph.STGCN_CENTER)
            int(cfg["frames"]), stgcn_center(lay), (names.index("shoulder_right"), names.index("shoulder_left")), 0
        )
    elif cfg["pipeline"] == "none":
        adapter = Identity()
    else:
        raise ConfigError(f"{name}: unknown pipeline {cfg['pipeline']!r}; expected 'frame50' or 'none'")
    return encoder, adapter, {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}


def _builder(method: str) -> Callable[..., Victim]:
    spec = METHODS[method]

    def build(preset: str = "full", num_classes: int = 60, layout: str = "ntu25", num_persons: int | None = None, **config: Any) -> Victim:
        """Build the linear-evaluation model with random weights (``preset``: ``full`` or ``lite``).

        ``**config`` overrides the preset: ``channels``, ``strides``, ``dropout``, ``frames`` (the pipeline's
        output length) and ``pipeline`` (``frame50``, or ``none`` for tensors already preprocessed).
        """
        encoder, adapter, record = _parts(method, spec["head"], spec["importance"], preset, num_classes, layout, config)
        return Victim(
            LinearEvalModel(encoder()), layout=layout, num_classes=num_classes, adapter=adapter, name=method, preset=preset,
            config=record, num_persons=num_persons,
        )

    return build


for _method, _spec in METHODS.items():
    register_victim(
        VictimFamily(
            name=_method,
            build=_builder(_method),
            presets=("full", "lite"),
            layouts=("ntu25",),
            description=_spec["description"],
            convert_state_dict=_converter(_method),
            paper=_spec["paper"],
            extra={
                "encoder_state": encoder_state(_method),
                "checkpoint_formats": [
                    "linear-eval: bare state dict, encoder_q.* (179 keys for full)",
                    "pretext: encoder_q.*, encoder_k.*, queue, projector encoder_q.fc.{0,2} (encoder only; needs --linear-eval)",
                ],
            },
        )
    )


#: CrosSCLR's ``Bone`` list (1-based ``(joint, parent)``); SpineShoulder (21) is its own parent, a zero bone.
CROSSCLR_BONES = ((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10), (12, 11),
                  (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (21, 21), (22, 23),
                  (23, 8), (24, 25), (25, 12))
VIEWS = ("all", "joint", "motion", "bone")


class ThreeViewModel(nn.Module):
    """CrosSCLR-3views at linear evaluation (``net/crossclr_3views.CrosSCLR(pretrain=False)``).

    Three ST-GCN-16 encoders ``encoder_q`` (joint), ``encoder_q_motion`` and ``encoder_q_bone``, each with its
    own head; ``forward`` derives the streams from the (preprocessed) joint tensor, as the official one does:
    motion ``x[:, :, t + 1] - x[:, :, t]`` with a zero last frame, bone ``x[:, :, :, v] - x[:, :, :, parent(v)]``
    over :data:`CROSSCLR_BONES`. ``view='all'`` averages the three streams' logits (the released configuration
    ``linear_eval_crossclr_3views``); ``joint``/``motion``/``bone`` return one stream's.
    """

    def __init__(self, encoders: Sequence[Model], view: str = "all") -> None:
        super().__init__()
        if view not in VIEWS:
            raise ConfigError(f"{THREE_VIEW}: view must be one of {', '.join(VIEWS)}, got {view!r}")
        self.encoder_q, self.encoder_q_motion, self.encoder_q_bone = encoders
        self.view = view
        self.num_classes = self.encoder_q.num_class
        parents = [p - 1 for _, p in sorted(CROSSCLR_BONES)]
        self.register_buffer("parents", torch.tensor(parents, dtype=torch.long), persistent=False)

    def streams(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The joint, motion and bone tensors of ``x`` ``(N, C, T, V, M)`` that ``view`` needs."""
        out = {}
        if self.view in ("all", "joint"):
            out["joint"] = x
        if self.view in ("all", "motion"):
            out["motion"] = torch.cat([x[:, :, 1:] - x[:, :, :-1], torch.zeros_like(x[:, :, :1])], dim=2)
        if self.view in ("all", "bone"):
            if x.shape[3] != len(CROSSCLR_BONES):
                raise ConfigError(f"{THREE_VIEW}: the bone stream is defined on NTU's 25 joints, got {x.shape[3]}")
            out["bone"] = x - x[:, :, :, self.parents]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        encoders = {"joint": self.encoder_q, "motion": self.encoder_q_motion, "bone": self.encoder_q_bone}
        logits = [encoders[name](stream) for name, stream in self.streams(x).items()]
        return logits[0] if len(logits) == 1 else sum(logits) / len(logits)

    def extra_repr(self) -> str:
        return f"view={self.view!r}"


def _three_view_converter(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    looks, kind, evidence = identify(state)
    if looks is not None and looks != THREE_VIEW:
        raise CheckpointError(f"this looks like a {looks} checkpoint ({evidence}), not {THREE_VIEW}; load it with --victim {looks}")
    if kind == "supervised":
        raise CheckpointError(f"this looks like a stgcn checkpoint ({evidence}), not {THREE_VIEW}; load it with --victim stgcn")
    if looks is None and kind in ("linear", "pretext"):
        raise CheckpointError(
            f"this is a single-view checkpoint (encoder_q.* without encoder_q_motion.*/encoder_q_bone.*), not {THREE_VIEW}; "
            "load it with --victim crossclr (or skeletonclr/aimclr)"
        )
    if kind == "pretext":
        raise CheckpointError(
            f"this is a CrosSCLR 3-view pretraining (pretext) checkpoint ({evidence}): it holds three encoders but no classifier; "
            "run the official 3-view linear evaluation (config/linear_eval/linear_eval_crossclr_3views, view: all) and load its "
            f"model, or evaluate its joint encoder alone: skelrobust train --linear-eval --encoder <this file> --victim crossclr "
            "--dataset DATASET --out DIR"
        )
    return _fit_heads_and_graph(add_missing_bn_counters(state), ("encoder_q", "encoder_q_motion", "encoder_q_bone"), "linear")


def _three_view_encoder_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Refused: ``train --linear-eval`` fits one head on one encoder, the 3-view protocol three heads averaged."""
    raise CheckpointError(
        f"{THREE_VIEW}'s linear evaluation trains three heads on three streams with averaged logits, which "
        "skelrobust train --linear-eval does not run; evaluate the joint encoder with --victim crossclr, or load a "
        f"3-view linear-evaluation file with --victim {THREE_VIEW} --checkpoint FILE"
    )


def build_three_view(preset: str = "full", num_classes: int = 60, layout: str = "ntu25", num_persons: int | None = None, **config: Any) -> Victim:
    """Build CrosSCLR-3views' linear-evaluation model with random weights.

    ``**config``: the ST-GCN-16 options of :func:`_builder` (shared by the three encoders) and ``view``
    (``all``, the default and the released configuration, or ``joint``/``motion``/``bone``).
    """
    config = dict(config)
    view = config.pop("view", "all")
    encoder, adapter, record = _parts(THREE_VIEW, "linear", "list", preset, num_classes, layout, config)
    return Victim(
        ThreeViewModel([encoder(), encoder(), encoder()], view=view), layout=layout, num_classes=num_classes,
        adapter=adapter, name=THREE_VIEW, preset=preset, config={**record, "view": view}, num_persons=num_persons,
    )


register_victim(
    VictimFamily(
        name=THREE_VIEW,
        build=build_three_view,
        presets=("full", "lite"),
        layouts=("ntu25",),
        description="CrosSCLR-3views (CVPR'21): joint, motion and bone ST-GCN-16 encoders + linear heads, logits averaged (view=all)",
        convert_state_dict=_three_view_converter,
        paper=METHODS["crossclr"]["paper"],
        extra={
            "encoder_state": _three_view_encoder_state,
            "pretrain_refusal": "CrosSCLR-3views pretrains three stream encoders with cross-view mining, MoCo pretrains one; "
                                "pretrain the joint encoder with --victim crossclr (or skeletonclr)",
            "checkpoint_formats": [
                "linear-eval: bare state dict, encoder_q.*, encoder_q_motion.*, encoder_q_bone.* (537 keys for full)",
                "pretext: + encoder_k*, queue, queue_motion, queue_bone (refused: no classifier)",
            ],
        },
    )
)
