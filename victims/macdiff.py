"""MacDiff's transformer encoder with its linear-probe head as a victim (Wu et al., ECCV 2024).

The official repository (LehongWu/MacDiff) holds only a README; the author's code drop is in the
Wenrui-Shen/MacDiff fork (commit 692888f), ``model/transformer_downstream.py: Transformer`` with the NTU-60
linear-probe configuration ``dim_in=3, dim_feat=256, depth=8, num_heads=8, mlp_ratio=4, num_frames=120,
num_joints=25, patch_size=1, t_patch_size=4, qkv_bias=True, protocol='linprobe2',
input_mean=[-0.0058, -0.1333, -0.0246], input_var=[0.0206, 0.0805, 0.0218]``:

- ``(N, 3, T, V, M) -> (N*M, T, V, 3)``, each axis normalised by the fixed ``(x - mean) / sqrt(var)`` (inside
  the model, so an absent second person becomes a constant non-zero skeleton, as in the official code);
- ``joints_embed.proj``: ``Conv2d(3, 256, (4, 1), stride (4, 1))`` -> ``T/4 x V`` tokens, plus ``pos_embed
  (1, 1, V, 256)`` and ``temp_embed (1, T/4, 1, 256)``; 8 pre-norm ViT blocks (``norm1, attn.{qkv, proj},
  norm2, mlp.{fc1, fc2}``, GELU); ``norm``;
- ``linprobe2`` head: dropout 0.3 (off in eval mode), mean over persons and time -> ``(N, V * 256)`` (6400),
  ``head.fc``, which ``main_linprobe.py`` makes ``Sequential(BatchNorm1d(6400, affine=False, eps=1e-6),
  Linear(6400, K))``: keys ``head.fc.0.{running_mean, running_var, num_batches_tracked}``,
  ``head.fc.1.{weight, bias}``. 6,720,060 parameters with 60 classes.

Checkpoints are MAE-style ``{'model': state_dict, 'optimizer', 'epoch', 'scaler', 'args'}`` (``args`` an
``argparse.Namespace``, which the loader admits). A probe trained for another clip length loads through
the official ``interpolate_temp_embed`` (``temp_embed`` resized bicubically along time, in
:meth:`Transformer.adapt_state_dict`). A pretraining checkpoint (``transformer_macdiff``: decoder, no probe)
or a fine-tuning one (``head.fc1/fc2/bn``) is refused with what to do.

Input pipeline: MacDiff reads the CTR-GCN npz (``NTU60_XSub.npz``: SpineMid of actor 1's first frame
subtracted) and crops the central 95 % of the valid frames, resized to 120 (``valid_crop_resize``,
``p_interval=[0.95]``, no rotation): :class:`skelrobust.adapters.CenterCropResize`, the adapter of the
``ctrgcn`` victim, with a window of 120.

Presets: ``full`` (above) and ``lite`` (64-d tokens, 2 blocks of 4 heads, 64 frames -> 16 x 25 tokens,
about 129k parameters with 16 classes) for the embedded synthetic set on CPU.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from skelrobust.adapters import CenterCropResize
from skelrobust.checkpoints import add_missing_bn_counters
from skelrobust.errors import CheckpointError, ConfigError, LayoutMismatchError
from skelrobust.layouts import get_layout
from skelrobust.victim import Identity, Victim, VictimFamily, preset_config, register_victim

PAPER = (
    "Wu, Lin, Zhang, Ma, Liu. MacDiff: Unified Skeleton Modeling with Masked Conditional Diffusion. ECCV 2024."
)

#: The NTU-60 statistics of the linear-probe configuration (``# old`` in the official yaml).
INPUT_MEAN = (-0.0058, -0.1333, -0.0246)
INPUT_VAR = (0.0206, 0.0805, 0.0218)

PRESETS: dict[str, dict[str, Any]] = {
    "full": {"dim": 256, "depth": 8, "heads": 8, "mlp_ratio": 4.0, "frames": 120, "t_patch": 4, "p": 0.95,
             "dropout": 0.3, "pipeline": "ntu"},
    "lite": {"dim": 64, "depth": 2, "heads": 4, "mlp_ratio": 4.0, "frames": 64, "t_patch": 4, "p": 0.95,
             "dropout": 0.3, "pipeline": "ntu"},
}


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention, scale ``head_dim ** -0.5``, biased ``qkv`` (official ``qkv_bias=True``)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"macdiff: dim {dim} is not divisible by heads {num_heads}")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.proj = nn.Linear(dim, dim)  # registered before qkv, as officially (state-dict order)
        self.qkv = nn.Linear(dim, dim * 3, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SkeleEmbed(nn.Module):
    """``proj``: a ``(t_patch, 1)`` convolution turning ``t_patch`` frames of one joint into a token."""

    def __init__(self, dim_in: int, dim_feat: int, t_patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim_in, dim_feat, kernel_size=(t_patch, 1), stride=(t_patch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, T, V, C) -> (N, T / t_patch, V, dim_feat)``."""
        return self.proj(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class LinearProbeHead(nn.Module):
    """``ActionHeadLinprobe2`` after ``main_linprobe.py``: dropout, mean over (M, T), BN (no affine) + Linear."""

    def __init__(self, dim_feat: int, num_joints: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        width = dim_feat * num_joints
        self.fc = nn.Sequential(nn.BatchNorm1d(width, affine=False, eps=1e-6), nn.Linear(width, num_classes))

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        n, _, _, j, c = feat.shape
        return self.fc(self.dropout(feat).mean(dim=(1, 2)).reshape(n, j * c))


class Transformer(nn.Module):
    """MacDiff's downstream encoder with the ``linprobe2`` head (official attribute names and key order).

    Shape: ``(N, 3, frames, V, M) -> (N, num_classes)``.
    """

    def __init__(
        self,
        num_classes: int,
        num_joints: int = 25,
        dim_feat: int = 256,
        depth: int = 8,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        num_frames: int = 120,
        t_patch_size: int = 4,
        dropout: float = 0.3,
        input_mean: Sequence[float] = INPUT_MEAN,
        input_var: Sequence[float] = INPUT_VAR,
    ) -> None:
        super().__init__()
        if num_frames % t_patch_size:
            raise ConfigError(f"macdiff: frames {num_frames} must be a multiple of t_patch {t_patch_size}")
        self.num_classes, self.num_frames, self.num_joints = num_classes, num_frames, num_joints
        self.temp_embed = nn.Parameter(torch.zeros(1, num_frames // t_patch_size, 1, dim_feat))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, num_joints, dim_feat))
        nn.init.trunc_normal_(self.temp_embed, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.joints_embed = SkeleEmbed(3, dim_feat, t_patch_size)
        self.blocks = nn.ModuleList([Block(dim_feat, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim_feat)
        self.head = LinearProbeHead(dim_feat, num_joints, num_classes, dropout)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.head.fc[1].weight, std=0.01)  # main_linprobe.py, following MoCo v3
        self.register_buffer("input_mean", torch.tensor(input_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("input_std", torch.tensor(input_var, dtype=torch.float64).sqrt().float(), persistent=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Token features ``(N, M, T / t_patch, V, dim_feat)`` after the final ``norm``."""
        n, c, t, v, m = x.shape
        if c != 3 or t != self.num_frames or v != self.num_joints:
            raise LayoutMismatchError(
                f"macdiff expects (N, 3, {self.num_frames}, {self.num_joints}, M) after its adapter, got {tuple(x.shape)}"
            )
        x = x.permute(0, 4, 2, 3, 1).reshape(n * m, t, v, c)
        x = self.joints_embed((x - self.input_mean) / self.input_std)
        nm, tp, vp, _ = x.shape
        x = (x + self.pos_embed[:, :, :vp] + self.temp_embed[:, :tp]).reshape(nm, tp * vp, -1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x).reshape(n, m, tp, vp, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def adapt_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The official ``interpolate_temp_embed``: a checkpoint's ``temp_embed`` of another length, resized
        bicubically (``align_corners=False``) along time to this model's ``T / t_patch`` tokens."""
        embed = state.get("temp_embed")
        own = self.temp_embed.shape[1]
        if embed is None or embed.ndim != 4 or embed.shape[1] == own:
            return state
        resized = F.interpolate(embed.permute(0, 3, 1, 2), size=(own, 1), mode="bicubic", align_corners=False)
        return {**state, "temp_embed": resized.permute(0, 2, 3, 1)}


def convert_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept linear-probe state dicts; refuse pretraining and fine-tuning files with what to do instead."""
    decoder = next((k for k in state if k.startswith(("decoder_", "decoder.", "mask_token"))), None)
    if decoder is not None or ("temp_embed" in state and not any(k.startswith("head.") for k in state)):
        evidence = f"key {decoder!r}" if decoder else "no head.* keys"
        raise CheckpointError(
            f"this is a macdiff pretraining checkpoint ({evidence}): it holds the encoder but no linear-probe head; "
            "run MacDiff's linear probing (main_linprobe.py, protocol linprobe2) and load the checkpoint it writes"
        )
    if "head.fc1.weight" in state or "head.bn.running_mean" in state:
        raise CheckpointError(
            "this is a macdiff fine-tuning checkpoint (head.fc1/head.bn: the 'finetune' protocol), not a linear probe "
            "(head.fc.0 BatchNorm + head.fc.1 Linear); only linear-probe heads are supported"
        )
    if "head.fc.weight" in state and "head.fc.1.weight" not in state:
        raise CheckpointError(
            "head.fc.weight without head.fc.0/head.fc.1: a probe saved before main_linprobe.py adds its BatchNorm; "
            "macdiff expects the linear-probe layout head.fc.0 (BatchNorm1d, affine=False) + head.fc.1 (Linear)"
        )
    return add_missing_bn_counters(state)


def build(preset: str = "full", num_classes: int = 60, layout: str = "ntu25", num_persons: int | None = 2, **config: Any) -> Victim:
    """Build the MacDiff linear-probe model with random weights.

    Args:
        preset: ``full`` (official NTU-60 configuration) or ``lite``.
        num_classes: Outputs of the probe.
        layout: ``ntu25`` (the normalisation statistics are NTU's).
        num_persons: Persons ``M`` (default 2: an absent person still makes tokens, so the count matters).
        **config: ``dim``, ``depth``, ``heads``, ``mlp_ratio``, ``frames`` (the window; ``temp_embed`` has
            ``frames / t_patch`` rows), ``t_patch``, ``dropout`` (head, training only), ``p`` (kept fraction
            of the valid frames), ``pipeline``: ``ntu`` (official) or ``none`` (tensors already preprocessed).
    """
    cfg = preset_config("macdiff", PRESETS, preset, config)
    lay = get_layout(layout)
    network = Transformer(
        num_classes, lay.num_joints, int(cfg["dim"]), int(cfg["depth"]), int(cfg["heads"]), float(cfg["mlp_ratio"]),
        int(cfg["frames"]), int(cfg["t_patch"]), float(cfg["dropout"]),
    )
    if cfg["pipeline"] == "ntu":
        adapter: nn.Module = CenterCropResize(lay.center, window=int(cfg["frames"]), p=float(cfg["p"]))
    elif cfg["pipeline"] == "none":
        adapter = Identity()
    else:
        raise ConfigError(f"macdiff: unknown pipeline {cfg['pipeline']!r}; expected 'ntu' or 'none'")
    return Victim(
        network, layout=lay, num_classes=num_classes, adapter=adapter, name="macdiff", preset=preset,
        config=dict(cfg), num_persons=num_persons,
    )


FAMILY = register_victim(
    VictimFamily(
        name="macdiff",
        build=build,
        presets=("full", "lite"),
        layouts=("ntu25",),
        description="MacDiff (ECCV'24) transformer encoder + linprobe2 head (BN + Linear on 6400-d); CTR-GCN pipeline, 120 frames",
        convert_state_dict=convert_state_dict,
        paper=PAPER,
        extra={
            "checkpoint_formats": [
                "linear-probe: {'model': temp_embed, pos_embed, joints_embed.*, blocks.*, norm.*, head.fc.0.* (BN), head.fc.1.*, "
                "'optimizer', 'epoch', 'scaler', 'args'} (other clip lengths: temp_embed interpolated)",
                "pretraining (decoder_*) and fine-tuning (head.fc1/head.bn) files are refused",
            ],
        },
    )
)
