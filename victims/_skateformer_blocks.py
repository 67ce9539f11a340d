"""SkateFormer network (Do et al., ECCV 2024), re-implemented with the official module and parameter names.

The module tree, parameter names, buffer names, initialisation and arithmetic follow the official
``model/SkateFormer.py`` (KAIST-VICLab/SkateFormer), so the authors' released state dicts load with
``strict=True``; a fixture test checks logits against the official code. Implementation differences that do
not change the function: the G-Conv groups are one batched ``einsum`` instead of a Python loop, the four
partition types share one generic partition/reverse pair, the relative position bias is expanded rather than
repeated (same values, see :meth:`MultiHeadSelfAttention.relative_position_bias`), and ``timm`` is not needed (``Mlp``, ``DropPath`` and ``trunc_normal_`` are the tiny local
equivalents below). Attention is written out (scaled q @ k^T + bias, softmax): on CPU this is about 1.6x
faster forward+backward than ``scaled_dot_product_attention`` with a trainable additive bias.

Shapes: the network takes ``x`` ``(B, C, T, V, M)`` (the official input is ``(B, 3, 64, 24, 2)``: joints
already reordered into the six body-part groups, SpineShoulder dropped) and ``index_t`` ``(B, T)``, each
frame's position in its source sequence scaled to [-1, 1]. Points are flattened person-major
(point ``m * V + v``) and every block works on ``(B, C, T, M * V)``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from skelrobust.errors import ConfigError

# (frames contiguous?, points contiguous?) of the four Skate-MSA partition types: type 1 = neighbouring
# frames x neighbouring points, type 2 = neighbouring frames x points strided across the body parts,
# type 3 = strided frames x neighbouring points, type 4 = strided frames x strided points.
PARTITION_TYPES: tuple[tuple[bool, bool], ...] = ((True, True), (True, False), (False, True), (False, False))


def partition(x: torch.Tensor, size: Sequence[int], contiguous_t: bool, contiguous_v: bool) -> torch.Tensor:
    """Cut ``(B, C, T, V)`` into windows of ``size = (frames, points)`` tokens: ``(B * windows, frames * points, C)``.

    A contiguous axis is split as ``(windows, size)`` (neighbours share a window), a strided one as
    ``(size, windows)`` (a window takes every ``T / size``-th frame or ``V / size``-th point). Tokens inside a
    window are ordered frame-major, which the relative position bias relies on.
    """
    b, c, t, v = x.shape
    st, sv = size
    t_shape = (t // st, st) if contiguous_t else (st, t // st)
    v_shape = (v // sv, sv) if contiguous_v else (sv, v // sv)
    x = x.reshape(b, c, *t_shape, *v_shape)
    # dims: 0 b, 1 c, 2-3 time, 4-5 points; pick (window index, within-window index) per axis
    t_win, t_in = (2, 3) if contiguous_t else (3, 2)
    v_win, v_in = (4, 5) if contiguous_v else (5, 4)
    return x.permute(0, t_win, v_win, t_in, v_in, 1).reshape(-1, st * sv, c)


def reverse_partition(
    windows: torch.Tensor, shape: tuple[int, int], size: Sequence[int], contiguous_t: bool, contiguous_v: bool
) -> torch.Tensor:
    """Inverse of :func:`partition`: ``(B * windows, frames * points, C)`` -> ``(B, C, T, V)``."""
    t, v = shape
    st, sv = size
    c = windows.shape[-1]
    x = windows.reshape(-1, t // st, v // sv, st, sv, c)  # b, t_win, v_win, t_in, v_in, c
    t_axes = (1, 3) if contiguous_t else (3, 1)
    v_axes = (2, 4) if contiguous_v else (4, 2)
    return x.permute(0, 5, *t_axes, *v_axes).reshape(-1, c, t, v)


def relative_position_index_1d(length: int) -> torch.Tensor:
    """``(length, length)`` int64 table index ``i - j + length - 1`` (the official 1-D relative positions)."""
    pos = torch.arange(length)
    return pos[:, None] - pos[None, :] + length - 1


def trunc_normal_(tensor: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    """timm's ``trunc_normal_(t, std)``: normal(0, std) truncated to the absolute interval [-2, 2]."""
    return nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-2.0, b=2.0)


class DropPath(nn.Module):
    """Stochastic depth: zero a sample's residual branch with probability ``drop_prob`` (training only)."""

    def __init__(self, drop_prob: float) -> None:
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class Mlp(nn.Module):
    """The transformer feed-forward: ``fc2(drop(act(fc1(x))))`` with dropout after each linear (timm ``Mlp``)."""

    def __init__(self, in_features: int, hidden_features: int, act_layer: type[nn.Module] = nn.GELU, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class MultiHeadSelfAttention(nn.Module):
    """Self-attention inside one partition window with a learned relative position bias.

    The input carries q, k and v stacked on the channel axis (``3 * heads * head_dim``); the output has
    ``heads * head_dim`` channels. The logit scale is ``num_heads ** -0.5`` as in the official code (not the
    usual ``head_dim ** -0.5``). Types 1 and 3 learn a table ``(2F - 1, heads)``; types 2 and 4 learn one per
    (frame offset, point i, point j, head), table ``(2F - 1, P, P, heads)``, for windows of ``F`` frames x
    ``P`` points. See :meth:`relative_position_bias` for how the type 1/3 table is laid over the tokens (the
    official code's layout, which released weights were trained with).

    ``relative_position_index`` is a persistent buffer (official checkpoints carry it), but its values
    follow from the partition size alone: loading a state dict recomputes it instead of trusting the file.
    """

    def __init__(
        self,
        in_channels: int,
        rel_type: str,
        num_heads: int,
        partition_size: Sequence[int],
        attn_drop: float = 0.0,
        rel: bool = True,
    ) -> None:
        super().__init__()
        if rel_type not in ("type_1", "type_2", "type_3", "type_4"):
            raise ConfigError(f"SkateFormer attention rel_type must be type_1..type_4, got {rel_type!r}")
        self.in_channels = in_channels
        self.rel_type = rel_type
        self.num_heads = num_heads
        self.partition_size = tuple(int(s) for s in partition_size)
        self.scale = num_heads**-0.5
        self.attn_area = self.partition_size[0] * self.partition_size[1]
        self.attn_drop = float(attn_drop)
        self.rel = rel
        frames, points = self.partition_size
        if rel:
            if rel_type in ("type_1", "type_3"):
                table = torch.zeros(2 * frames - 1, num_heads)
            else:
                table = torch.zeros(2 * frames - 1, points, points, num_heads)
            self.relative_position_bias_table = nn.Parameter(trunc_normal_(table, std=0.02))
            self.register_buffer("relative_position_index", relative_position_index_1d(frames))

    def _load_from_state_dict(
        self,
        state_dict: dict[str, torch.Tensor],
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # The index is a pure function of the window's frame count: recompute it rather than trust the file
        # (a file with wrong values would silently scramble the bias). A wrong shape is still reported.
        key = prefix + "relative_position_index"
        if self.rel and key in state_dict and state_dict[key].shape == self.relative_position_index.shape:
            state_dict[key] = relative_position_index_1d(self.partition_size[0]).to(state_dict[key].device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def relative_position_bias(self) -> torch.Tensor:
        """``(1, heads, A, A)`` bias for the ``A = F * P`` tokens of a window (frame-major: token ``a = f * P + p``).

        Types 2 and 4: ``bias[a, b] = table[f_a - f_b + F - 1, p_a, p_b]``, the relative position of the two
        tokens' frames and their points.

        Types 1 and 3 reproduce the official ``_get_relative_positional_bias``, which is *not* the per-frame
        broadcast its shapes suggest: it calls ``.repeat(1, P, 1, P, 1, 1)`` (six sizes) on the
        ``(F, 1, F, 1, heads)`` tensor, so torch prepends a dimension and tiles each whole frame axis ``P``
        times, giving ``bias[a, b] = table[(a mod F) - (b mod F) + F - 1]`` instead of
        ``table[a // P - b // P + F - 1]``. The bias therefore depends on token indices modulo ``F``, not on
        the tokens' frames. Released SkateFormer weights were trained with this layout, so it is kept (with
        smooth, small weights the two differ by ~1e-6 in the logits; with trained bias tables by ~0.1).
        """
        frames, points = self.partition_size
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        if self.rel_type in ("type_1", "type_3"):
            # (P, F, P, F, heads) flattened to (A, A): row a = i * F + (a mod F), column likewise.
            bias = bias.view(1, frames, 1, frames, self.num_heads).expand(points, frames, points, frames, self.num_heads)
        else:
            bias = bias.view(frames, frames, points, points, self.num_heads).permute(0, 2, 1, 3, 4)
        return bias.reshape(self.attn_area, self.attn_area, self.num_heads).permute(2, 0, 1).unsqueeze(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        windows, tokens, _ = x.shape
        q, k, v = x.reshape(windows, tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        if self.rel:
            attn = attn + self.relative_position_bias()
        attn = F.dropout(attn.softmax(dim=-1), p=self.attn_drop, training=self.training)
        return (attn @ v).transpose(1, 2).reshape(windows, tokens, -1)


class SkateFormerBlock(nn.Module):
    """One SkateFormer transformer block on ``(B, C, T, V)`` (V = persons x points).

    ``mapping`` lifts the normalised tokens to ``2C`` channels: the first ``C/2`` feed the two convolution
    branches (G-Conv: per-group learned ``V x V`` point mixing ``gconv`` with ``num_heads/4`` groups;
    T-Conv: grouped temporal convolution ``tconv``), the remaining ``3C/2`` are cut into four equal chunks of
    q/k/v for the four Skate-MSA partition types (``num_heads/8`` heads each). The ``C`` output channels
    (``C/4 + C/4 + 4 * C/8``) go through ``proj`` and a residual, then the feed-forward ``mlp`` with its own
    residual, both with stochastic depth.
    """

    def __init__(
        self,
        in_channels: int,
        num_points: int = 50,
        kernel_size: int = 7,
        num_heads: int = 32,
        type_1_size: Sequence[int] = (1, 1),
        type_2_size: Sequence[int] = (1, 1),
        type_3_size: Sequence[int] = (1, 1),
        type_4_size: Sequence[int] = (1, 1),
        attn_drop: float = 0.0,
        drop: float = 0.0,
        rel: bool = True,
        drop_path: float = 0.0,
        mlp_ratio: float = 4.0,
        act_layer: type[nn.Module] = nn.GELU,
        norm_layer: type[nn.Module] = nn.LayerNorm,
    ) -> None:
        super().__init__()
        if num_heads % 8 or in_channels % num_heads or in_channels % 8:
            raise ConfigError(
                f"SkateFormer block: channels ({in_channels}) and num_heads ({num_heads}) must be multiples of 8 "
                "and channels a multiple of num_heads"
            )
        self.partition_size = [tuple(int(s) for s in size) for size in (type_1_size, type_2_size, type_3_size, type_4_size)]
        self.norm_1 = norm_layer(in_channels)
        self.mapping = nn.Linear(in_channels, 2 * in_channels)
        self.gconv = nn.Parameter(trunc_normal_(torch.zeros(num_heads // 4, num_points, num_points), std=0.02))
        self.tconv = nn.Conv2d(
            in_channels // 4, in_channels // 4, kernel_size=(kernel_size, 1), padding=((kernel_size - 1) // 2, 0),
            groups=num_heads // 4,
        )
        self.attention = nn.ModuleList(
            MultiHeadSelfAttention(
                in_channels // 8, f"type_{i + 1}", num_heads // 8, self.partition_size[i], attn_drop=attn_drop, rel=rel
            )
            for i in range(4)
        )
        self.proj = nn.Linear(in_channels, in_channels)
        self.proj_drop = nn.Dropout(drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm_2 = norm_layer(in_channels)
        self.mlp = Mlp(in_channels, int(mlp_ratio * in_channels), act_layer=act_layer, drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, v = x.shape
        for size in self.partition_size:
            if t % size[0] or v % size[1]:
                raise ConfigError(
                    f"SkateFormer block: input of {t} frames x {v} points cannot be cut into windows of {size}"
                )
        skip = x.permute(0, 2, 3, 1)  # (B, T, V, C)
        f = self.mapping(self.norm_1(skip)).permute(0, 3, 1, 2)  # (B, 2C, T, V)
        f_gconv, f_tconv, f_attn = torch.split(f, [c // 4, c // 4, 3 * c // 2], dim=1)
        groups = self.gconv.shape[0]
        y_gconv = torch.einsum("bgctu,gvu->bgctv", f_gconv.reshape(b, groups, -1, t, v), self.gconv)
        outputs = [y_gconv.reshape(b, c // 4, t, v), self.tconv(f_tconv)]
        for (cont_t, cont_v), size, attention, chunk in zip(
            PARTITION_TYPES, self.partition_size, self.attention, torch.chunk(f_attn, 4, dim=1)
        ):
            windows = partition(chunk, size, cont_t, cont_v)
            outputs.append(reverse_partition(attention(windows), (t, v), size, cont_t, cont_v))
        out = self.proj_drop(self.proj(torch.cat(outputs, dim=1).permute(0, 2, 3, 1)))
        out = skip + self.drop_path(out)
        out = out + self.drop_path(self.mlp(self.norm_2(out)))
        return out.permute(0, 3, 1, 2)


class PatchMergingTconv(nn.Module):
    """Temporal downsampling between stages: strided ``(k, 1)`` convolution ``reduction`` then BatchNorm ``bn``."""

    def __init__(self, dim_in: int, dim_out: int, kernel_size: int = 7, stride: int = 2, dilation: int = 1) -> None:
        super().__init__()
        self.dim_in = dim_in
        self.dim_out = dim_out
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
        self.reduction = nn.Conv2d(
            dim_in, dim_out, kernel_size=(kernel_size, 1), padding=(pad, 0), stride=(stride, 1), dilation=(dilation, 1)
        )
        self.bn = nn.BatchNorm2d(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.reduction(x))


class SkateFormerBlockDS(nn.Module):
    """A block, optionally preceded by temporal downsampling (``downsample``; first block of stages 2+)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 7, downscale: bool = False, **block) -> None:
        super().__init__()
        self.downsample = PatchMergingTconv(in_channels, out_channels, kernel_size=kernel_size) if downscale else None
        self.transformer = SkateFormerBlock(in_channels=out_channels, kernel_size=kernel_size, **block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        return self.transformer(x)


class SkateFormerStage(nn.Module):
    """``depth`` blocks; all but the first stage halve the frames in their first block."""

    def __init__(
        self,
        depth: int,
        in_channels: int,
        out_channels: int,
        first_depth: bool = False,
        drop_path: Sequence[float] = (),
        **block,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SkateFormerBlockDS(
                in_channels=in_channels if i == 0 else out_channels,
                out_channels=out_channels,
                downscale=i == 0 and not first_depth,
                drop_path=drop_path[i],
                **block,
            )
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class SkateFormer(nn.Module):
    """SkateFormer with the index_t Skate-Embedding (the configuration of every official release).

    Args:
        in_channels: Input coordinates (3).
        depths: Blocks per stage (official: (2, 2, 2, 2)).
        channels: Channels per stage (official: (96, 192, 192, 192)).
        num_classes: Output logits.
        embed_dim: Stem output channels (official: 96).
        num_people: Persons ``M`` (NTU: 2, NW-UCLA: 1).
        num_points: Joints per person after the body-part reorder (NTU: 24, NW-UCLA: 20).
        kernel_size: T-Conv and downsampling kernel (7).
        num_heads: Heads budget; G-Conv uses ``num_heads/4`` groups, each attention type ``num_heads/8`` heads (32).
        type_1_size .. type_4_size: ``(frames, points)`` window of each partition type
            (NTU: (8, 8), (8, 12), (8, 8), (8, 12); NW-UCLA: (8, 4), (8, 5), (8, 4), (8, 5)).
        attn_drop: Attention dropout (0.5 official). head_drop: dropout before ``head`` (0). drop: projection and
            MLP dropout (0). rel: learn relative position biases (True). drop_path: stochastic-depth rate
            reached linearly by the last block (0.2). mlp_ratio: MLP hidden / channels (4).
        global_pool: ``"avg"`` or ``"max"`` over frames and points before ``head``.

    Shape:
        ``forward(x (B, C, T, V, M), index_t (B, T)) -> (B, num_classes)``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        depths: Sequence[int] = (2, 2, 2, 2),
        channels: Sequence[int] = (96, 192, 192, 192),
        num_classes: int = 60,
        embed_dim: int = 96,
        num_people: int = 2,
        num_points: int = 24,
        kernel_size: int = 7,
        num_heads: int = 32,
        type_1_size: Sequence[int] = (8, 8),
        type_2_size: Sequence[int] = (8, 12),
        type_3_size: Sequence[int] = (8, 8),
        type_4_size: Sequence[int] = (8, 12),
        attn_drop: float = 0.5,
        head_drop: float = 0.0,
        drop: float = 0.0,
        rel: bool = True,
        drop_path: float = 0.2,
        mlp_ratio: float = 4.0,
        global_pool: str = "avg",
    ) -> None:
        super().__init__()
        if len(depths) != len(channels):
            raise ConfigError(f"SkateFormer: {len(depths)} depths but {len(channels)} channel widths")
        if global_pool not in ("avg", "max"):
            raise ConfigError(f"SkateFormer: global_pool must be 'avg' or 'max', got {global_pool!r}")
        if embed_dim % 2:
            raise ConfigError(f"SkateFormer: embed_dim must be even (sine/cosine time embedding), got {embed_dim}")
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.global_pool = global_pool
        self.dropout = nn.Dropout(head_drop) if head_drop != 0 else None
        self.stem = nn.ModuleList(
            [
                nn.Conv2d(in_channels, 2 * in_channels, kernel_size=1),
                nn.GELU(),
                nn.Conv2d(2 * in_channels, 3 * in_channels, kernel_size=1),
                nn.GELU(),
                nn.Conv2d(3 * in_channels, embed_dim, kernel_size=1),
            ]
        )
        self.joint_person_embedding = nn.Parameter(trunc_normal_(torch.zeros(embed_dim, num_points * num_people), std=0.02))
        rates = torch.linspace(0.0, drop_path, sum(depths)).tolist()
        block = dict(
            num_points=num_points * num_people, kernel_size=kernel_size, num_heads=num_heads,
            type_1_size=type_1_size, type_2_size=type_2_size, type_3_size=type_3_size, type_4_size=type_4_size,
            attn_drop=attn_drop, drop=drop, rel=rel, mlp_ratio=mlp_ratio,
        )
        self.stages = nn.ModuleList(
            SkateFormerStage(
                depth=depth,
                in_channels=embed_dim if i == 0 else channels[i - 1],
                out_channels=width,
                first_depth=i == 0,
                drop_path=rates[sum(depths[:i]) : sum(depths[: i + 1])],
                **block,
            )
            for i, (depth, width) in enumerate(zip(depths, channels))
        )
        self.head = nn.Linear(channels[-1], num_classes)

    def time_embedding(self, index_t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Sinusoidal embedding ``(B, T, embed_dim)`` of ``index_t``: sine on even, cosine on odd channels."""
        half = torch.arange(0, self.embed_dim, 2, dtype=torch.float32, device=index_t.device)
        freq = torch.exp(half * -(math.log(10000.0) / self.embed_dim))
        angle = index_t.float().unsqueeze(-1) * freq  # (B, T, embed_dim / 2)
        return torch.stack((angle.sin(), angle.cos()), dim=-1).flatten(2).to(dtype)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(dim=(2, 3)) if self.global_pool == "avg" else x.amax(dim=(2, 3))
        if self.dropout is not None:
            x = self.dropout(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor, index_t: torch.Tensor) -> torch.Tensor:
        b, c, t, v, m = x.shape
        out = x.permute(0, 1, 2, 4, 3).reshape(b, c, t, m * v)  # point index m * V + v
        for layer in self.stem:
            out = layer(out)
        te = self.time_embedding(index_t, out.dtype)
        out = out + torch.einsum("btc,cv->bctv", te, self.joint_person_embedding)
        return self.forward_head(self.forward_features(out))
