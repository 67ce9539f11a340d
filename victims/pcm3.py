"""PCM3's BiGRU encoder with its linear head as a victim (Zhang, Lin, Liu, ACM MM 2023; JHang2020/PCM3).

The encoder is ``moco/GRU.py: BIGRU(en_input_size=150, en_hidden_size=1024, en_num_layers=3, num_class=60)``:
``input_norm`` (BatchNorm1d over the 150 features), a 3-layer bidirectional ``nn.GRU`` (``encoder.gru``) and
``fc`` = ``Linear(2 * hidden, K)`` on the output at the last frame (2048-d). The official ``EncoderRNN`` drives
the GRU **one frame at a time**, passing the hidden state on: each call sees a sequence of length 1, so the
"reverse" direction also runs forward in time. The result is two forward-in-time GRUs per layer whose outputs
are concatenated; :func:`carried_bigru` computes exactly that layer by layer (same weights, same numbers)
instead of ``T`` separate calls. The parameters stay in an ``nn.GRU`` so the keys are the official ones.

The linear-evaluation model is ``moco/builder_mask_recons.MoCo(pretrain=False)``: only ``encoder_q`` (keys
``encoder_q.encoder.gru.{weight,bias}_{ih,hh}_l{0,1,2}[_reverse]``, ``encoder_q.fc.*``,
``encoder_q.input_norm.*``); its ``forward`` flattens ``(N, 3, T, 25, 2)`` to ``(N, T, 150)`` with feature
index ``v * 6 + c * 2 + m`` (``permute(0, 2, 3, 1, 4)``): here the adapter's last step (:class:`FlattenPersons`).

Checkpoints (``action_classification.py`` / ``pretrain_moco_mask.py``): ``{'epoch', 'state_dict', ...}``,
``module.``-prefixed under DataParallel. A linear-evaluation file loads strictly. A pretraining file
(``encoder_q.*``, ``encoder_k.*``, ``queue``, the prompts ``cl_prompt``/``mp_prompt``/``*_prompt``, the MLP
projector ``encoder_q.fc.{0,2}``, ``linear``, ``recons_decoder``) holds no classifier and is refused with the
linear-evaluation command; :func:`encoder_state` reads its encoder (the official filter: ``encoder_q.*``
without ``.fc``).

Input pipeline (:class:`skelrobust.adapters.AGCNCropResize`): PCM3's data are skeleton-contrast's
``NTU-RGB-D-60-AGCN`` files, i.e. 2s-AGCN's ``ntu_gendata`` + ``pre_normalization`` (null-frame padding,
per-frame SpineMid-of-person-0 centring, spine -> z and shoulders -> x rotations from the first frame), then
the test crop ``l_ratio=[0.95]`` resized to ``input_size=64``, then the flattening above.

Presets: ``full`` = the official configuration (45,121,896 parameters with 60 classes); ``lite`` = hidden 48,
two layers (about 100k parameters) with the same pipeline, for the embedded synthetic set on CPU.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from skelrobust.adapters import AGCNCropResize
from skelrobust.checkpoints import add_missing_bn_counters
from skelrobust.errors import CheckpointError, ConfigError
from skelrobust.layouts import get_layout
from skelrobust.victim import Victim, VictimFamily, preset_config, register_victim

PAPER = (
    "Zhang, Lin, Liu. Prompted Contrast with Masked Motion Modeling: Towards Versatile 3D Action Representation "
    "Learning (PCM3). ACM MM 2023."
)

PRESETS: dict[str, dict[str, Any]] = {
    "full": {"hidden": 1024, "layers": 3, "window": 64, "p": 0.95, "pipeline": "agcn"},
    "lite": {"hidden": 48, "layers": 2, "window": 64, "p": 0.95, "pipeline": "agcn"},
}

#: Top-level parameters and modules of PCM3's pretraining model that a classifier does not have.
_PRETEXT = ("queue", "queue_ptr", "cl_prompt", "mp_prompt", "base_prompt", "mask_prompt", "recons_prompt", "mix_prompt", "linear", "recons_decoder")


def carried_bigru(x: torch.Tensor, gru: nn.GRU) -> torch.Tensor:
    """PCM3's ``EncoderRNN`` on ``(N, T, F)``: every layer's two directions both run forward in time.

    Returns the last layer's ``(N, T, 2 * hidden)`` outputs (forward half first, as ``nn.GRU`` orders them).
    Gates as ``nn.GRU``: ``r, z = sigmoid(.)``, ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
    ``h' = (1 - z) * n + z * h``, from ``h = 0``.
    """
    n, t, _ = x.shape
    hidden = gru.hidden_size
    for layer in range(gru.num_layers):
        names = [f"l{layer}", f"l{layer}_reverse"]
        w_ih = torch.stack([getattr(gru, f"weight_ih_{s}") for s in names])  # (2, 3H, F)
        w_hh = torch.stack([getattr(gru, f"weight_hh_{s}") for s in names])  # (2, 3H, H)
        b_ih = torch.stack([getattr(gru, f"bias_ih_{s}") for s in names])
        b_hh = torch.stack([getattr(gru, f"bias_hh_{s}") for s in names])
        gi = torch.einsum("ntf,dgf->dntg", x, w_ih) + b_ih[:, None, None, :]  # (2, N, T, 3H)
        h = x.new_zeros(2, n, hidden)
        outputs = []
        for step in range(t):
            gh = torch.baddbmm(b_hh[:, None, :], h, w_hh.transpose(1, 2))  # (2, N, 3H)
            i_r, i_z, i_n = gi[:, :, step].split(hidden, dim=2)
            h_r, h_z, h_n = gh.split(hidden, dim=2)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            cand = torch.tanh(i_n + r * h_n)
            h = (1 - z) * cand + z * h
            outputs.append(h)
        seq = torch.stack(outputs, dim=2)  # (2, N, T, H)
        x = torch.cat([seq[0], seq[1]], dim=2)
    return x


class EncoderRNN(nn.Module):
    """Holds the official ``gru`` (``nn.GRU(..., bidirectional=True, batch_first=True)``); see :func:`carried_bigru`."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, num_layers=num_layers, bidirectional=True, batch_first=True)
        self.hidden_size, self.num_layers = hidden_size, num_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, T, F) -> (N, 2 * hidden)``: the output at the last frame."""
        return carried_bigru(x, self.gru)[:, -1]


class BIGRU(nn.Module):
    """PCM3's encoder with its head: ``input_norm`` -> carried BiGRU -> last frame -> ``fc``.

    Shape: ``(N, T, F) -> (N, num_class)``; :meth:`pooled` gives the ``(N, 2 * hidden)`` feature.
    """

    def __init__(self, en_input_size: int = 150, en_hidden_size: int = 1024, en_num_layers: int = 3, num_class: int = 60) -> None:
        super().__init__()
        self.encoder = EncoderRNN(en_input_size, en_hidden_size, en_num_layers)
        self.fc = nn.Linear(2 * en_hidden_size, num_class)
        self.input_norm = nn.BatchNorm1d(en_input_size)
        self.num_class = num_class
        self.feature_dim = 2 * en_hidden_size
        for param in self.encoder.gru.parameters():  # the official weights_init_gru (xavier on matrices)
            if param.dim() == 2:
                nn.init.xavier_uniform_(param)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(x.transpose(1, 2)).transpose(1, 2)
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pooled(x))


def flatten_persons(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, T, V, M) -> (N, T, V * C * M)``, feature index ``v * C * M + c * M + m`` (PCM3's ``MoCo.forward``)."""
    n, _, t = x.shape[:3]
    return x.permute(0, 2, 3, 1, 4).reshape(n, t, -1)


class FlattenPersons(nn.Module):
    """:func:`flatten_persons` as the last adapter step (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return flatten_persons(x)


class LinearEvalModel(nn.Module):
    """``MoCo(pretrain=False)``: ``encoder_q`` only; ``(N, T, F) -> (N, num_class)``.

    The official ``MoCo.forward`` flattens the ``(N, 3, T, V, M)`` clip first; here that step is the adapter's
    last (:class:`FlattenPersons`), so ``encoder_q`` sees exactly what the pretraining and linear-evaluation
    recipes feed an encoder (the adapter's output).
    """

    def __init__(self, encoder_q: BIGRU) -> None:
        super().__init__()
        self.encoder_q = encoder_q
        self.num_classes = encoder_q.num_class

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder_q(x)


def _kind(state: dict[str, torch.Tensor]) -> tuple[str, str]:
    """``(kind, evidence)``: ``pretext``, ``linear`` or ``unknown`` for a ``module.``-stripped state dict."""
    for key in state:
        top = key.split(".")[0]
        if top in _PRETEXT or top == "encoder_k" or key.startswith("encoder_q.fc.0."):
            return "pretext", f"key {key!r}"
    if any(k.startswith("encoder_q.encoder.gru.") for k in state):
        return "linear", ""
    if any(k.startswith("encoder_q.st_gcn_networks.") for k in state):
        return "unknown", "an ST-GCN-16 encoder (skeletonclr, crossclr, aimclr, actclr or hiclr), not PCM3's BiGRU"
    return "unknown", ""


def convert_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept PCM3 linear-evaluation state dicts (``encoder_q.*``; a bare ``BIGRU`` one gets the prefix)."""
    if "encoder.gru.weight_ih_l0" in state and not any(k.startswith("encoder_q.") for k in state):
        state = {"encoder_q." + k: v for k, v in state.items()}
    kind, evidence = _kind(state)
    if kind == "pretext":
        raise CheckpointError(
            f"this is a pcm3 pretraining (pretext) checkpoint ({evidence}): it holds the encoder but no classifier; "
            "train a linear head first: skelrobust train --linear-eval --encoder <this file> --victim pcm3 "
            "--dataset DATASET --out DIR, then load DIR/best.pt"
        )
    if evidence:
        raise CheckpointError(f"this looks like {evidence}; load it with the --victim it was trained as")
    return add_missing_bn_counters(state)


def encoder_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``encoder_q.*`` without ``.fc`` from a pretext or linear-evaluation file (``action_classification.load_pretrained``)."""
    kind, evidence = _kind(state)
    if kind == "unknown" and evidence:
        raise CheckpointError(f"this looks like {evidence}")
    enc = {k: v for k, v in state.items() if k.startswith("encoder_q.") and ".fc" not in k}
    if not enc:
        raise CheckpointError("no encoder_q.* keys: not a pcm3 pretext or linear-evaluation checkpoint")
    return add_missing_bn_counters(enc)


def build(preset: str = "full", num_classes: int = 60, layout: str = "ntu25", num_persons: int | None = 2, **config: Any) -> Victim:
    """Build the PCM3 linear-evaluation model with random weights.

    Args:
        preset: ``full`` (official) or ``lite``.
        num_classes: Outputs of ``fc``.
        layout: Skeleton layout (the pipeline's joints are NTU's; ``ntu25`` only).
        num_persons: Persons ``M``: the feature size is ``V * 3 * M`` (150 for NTU with two persons).
        **config: ``hidden``, ``layers``; ``window`` (frames fed to the GRU), ``p`` (kept fraction of the valid
            frames); ``pipeline``: ``agcn`` (official) or ``none`` (tensors already preprocessed).
    """
    cfg = preset_config("pcm3", PRESETS, preset, config)
    if num_persons is None or num_persons < 1:
        raise ConfigError(f"pcm3: num_persons must be a positive integer (the GRU input is V*3*M features), got {num_persons!r}")
    lay = get_layout(layout)
    encoder = BIGRU(lay.num_joints * 3 * num_persons, int(cfg["hidden"]), int(cfg["layers"]), num_classes)
    if cfg["pipeline"] == "agcn":
        names = lay.joint_names
        adapter: nn.Module = AGCNCropResize(
            int(cfg["window"]), float(cfg["p"]), center=names.index("spine_mid"),
            spine=(names.index("spine_base"), names.index("spine_mid")),
            shoulders=(names.index("shoulder_right"), names.index("shoulder_left")),
        )
        adapter = nn.Sequential(adapter, FlattenPersons())
    elif cfg["pipeline"] == "none":
        adapter = FlattenPersons()
    else:
        raise ConfigError(f"pcm3: unknown pipeline {cfg['pipeline']!r}; expected 'agcn' or 'none'")
    return Victim(
        LinearEvalModel(encoder), layout=lay, num_classes=num_classes, adapter=adapter, name="pcm3", preset=preset,
        config=dict(cfg), num_persons=num_persons,
    )


FAMILY = register_victim(
    VictimFamily(
        name="pcm3",
        build=build,
        presets=("full", "lite"),
        layouts=("ntu25",),
        description="PCM3 (ACM MM'23) BiGRU encoder (frame-by-frame, 2048-d) + linear head; 2s-AGCN pipeline, 64 frames",
        convert_state_dict=convert_state_dict,
        paper=PAPER,
        extra={
            "encoder_state": encoder_state,
            "checkpoint_formats": [
                "linear-eval: {'epoch', 'state_dict': encoder_q.{encoder.gru, fc, input_norm}.*, ...} (module. prefix accepted)",
                "pretext: encoder_q/encoder_k/queue/prompts (encoder only; needs --linear-eval)",
            ],
        },
    )
)
