"""MoCo v2 pretraining of a skeleton encoder without labels, as SkeletonCLR does it (Li et al., CVPR 2021).

The recipe of ``net/skeletonclr.py`` + ``processor/pretrain_skeletonclr.py`` (LinguoLi/CrosSCLR):

- a query encoder and a key encoder of the same architecture; the key encoder starts as a copy and follows
  the query encoder by momentum (``k <- m k + (1 - m) q``, ``m = 0.999``) before every key computation;
- the encoder's head ``fc`` is replaced by the MLP projector ``Sequential(Linear(D, D), ReLU, Linear(D, 128))``
  (``mlp=True``) on both encoders;
- InfoNCE over one positive (the other augmented view) and a queue of ``K`` past keys (``K = 32768``,
  initialised to L2-normalised Gaussian noise), temperature ``0.07``; the keys of each batch replace the oldest;
- two views per sample from the canonical-pipeline output: temporal crop (reflection padding of ``T // 6``
  frames at both ends, then a random ``T``-frame window) followed by shear (``x <- S x`` with the six
  off-diagonal entries of ``S`` uniform in ``[-0.5, 0.5]``), as ``Feeder_dual`` draws them;
- SGD (momentum 0.9, no Nesterov), lr 0.1 divided by 10 at epoch 250, weight decay 1e-4, batch 128, 300 epochs,
  ``drop_last`` batches, the whole model in training mode (dropout and BatchNorm of both encoders active).

The data are the unlabelled canonical ``(N, C, T, V, M)`` samples; the victim's adapter (its official input
pipeline, e.g. SkeletonCLR's NTU60_frame50) is applied once, before augmentation, as the official files were
preprocessed once. The run is resumable (``last.pt`` after every epoch and when ``max_steps`` stops it) and
writes ``encoder.pt`` in the official key layout (``encoder_q.*`` with the projector ``encoder_q.fc.0/2``,
``encoder_k.*``, ``queue``, ``queue_ptr``), so the loader of official pretext files reads ours.
:class:`Embedding` turns the query encoder into the embedding function ``canonical tensor -> (N, D)``.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..checkpoints import read_state_dict
from ..errors import CheckpointError, ConfigError
from ..io import atomic_path, atomic_write_json, sha256_file
from ..victim import Identity, Victim
from .resume import load_resume_payload

log = logging.getLogger(__name__)


@dataclass
class MocoConfig:
    """A MoCo pretraining run (SkeletonCLR's defaults; recorded in ``metadata.json`` and checked on resume).

    Attributes:
        feature_dim: Projector output (contrastive space) size.
        queue_size: Negative keys kept (``K``).
        momentum: Key-encoder momentum ``m``.
        temperature: Softmax temperature ``T``.
        mlp: Two-layer MLP projector (else one linear layer).
        shear: Shear amplitude (``<= 0`` disables).
        temporal_padding_ratio: Temporal crop padding ``T // ratio`` (``<= 0`` disables).
        epochs: Passes over the data.
        max_steps: Stop after this many optimiser steps in all (``None``: run every epoch).
        batch_size: Samples per step (last incomplete batch dropped).
        lr: SGD learning rate.
        lr_steps: Epochs (0-based, as the official ``step``) at which the learning rate is divided by 10.
        weight_decay: SGD weight decay.
        seed: Seeds the projector and queue initialisation, shuffling, augmentation and dropout.
    """

    feature_dim: int = 128
    queue_size: int = 32768
    momentum: float = 0.999
    temperature: float = 0.07
    mlp: bool = True
    shear: float = 0.5
    temporal_padding_ratio: int = 6
    epochs: int = 300
    max_steps: int | None = None
    batch_size: int = 128
    lr: float = 0.1
    lr_steps: tuple[int, ...] = (250,)
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        self.lr_steps = tuple(int(s) for s in self.lr_steps)
        if self.feature_dim < 1 or self.queue_size < 1 or self.epochs < 1 or self.batch_size < 2:
            raise ConfigError("moco: feature_dim, queue_size and epochs must be >= 1 and batch_size >= 2")
        if not 0.0 <= self.momentum < 1.0 or not self.temperature > 0 or not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError("moco: momentum must be in [0, 1), temperature and lr > 0, weight_decay >= 0")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"moco: max_steps must be >= 1, got {self.max_steps}")


def _head_width(fc: nn.Module) -> int:
    if isinstance(fc, nn.Linear):
        return fc.in_features
    if isinstance(fc, nn.Conv2d) and fc.kernel_size == (1, 1):
        return fc.in_channels
    raise ConfigError(f"moco: the encoder's head 'fc' must be nn.Linear or a 1x1 nn.Conv2d, got {type(fc).__name__}")


def split_encoder(encoder: nn.Module | Victim) -> tuple[nn.Module, nn.Module]:
    """``(adapter, encoder)`` of a victim (its ``network.encoder_q`` when present) or of a bare encoder.

    The encoder must have a head ``fc`` (``nn.Linear`` or 1x1 ``nn.Conv2d``) applied last to its ``(N, D)`` feature.
    """
    if isinstance(encoder, Victim):
        net = getattr(encoder.network, "encoder_q", encoder.network)
        adapter = encoder.adapter
    else:
        net, adapter = encoder, Identity()
    if not isinstance(getattr(net, "fc", None), nn.Module):
        raise ConfigError(f"moco: encoder {type(net).__name__} has no head 'fc' to replace by the projector")
    return adapter, net


class MoCo(nn.Module):
    """Query/key encoders, projector and queue with SkeletonCLR's attribute names (its state-dict layout)."""

    def __init__(self, encoder: nn.Module, cfg: MocoConfig) -> None:
        super().__init__()
        width = _head_width(encoder.fc)
        self.encoder_q = copy.deepcopy(encoder)
        last = nn.Linear(width, cfg.feature_dim)
        self.encoder_q.fc = nn.Sequential(nn.Linear(width, width), nn.ReLU(), last) if cfg.mlp else last
        self.encoder_k = copy.deepcopy(self.encoder_q)
        for p in self.encoder_k.parameters():
            p.requires_grad = False
        self.register_buffer("queue", F.normalize(torch.randn(cfg.feature_dim, cfg.queue_size), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
        self.momentum, self.temperature = cfg.momentum, cfg.temperature

    @torch.no_grad()
    def _momentum_update(self) -> None:
        for q, k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            k.mul_(self.momentum).add_(q.detach(), alpha=1.0 - self.momentum)

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        size = self.queue.shape[1]
        ptr = int(self.queue_ptr)
        idx = (ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[:, idx] = keys.T
        self.queue_ptr[0] = (ptr + keys.shape[0]) % size

    def forward(self, im_q: torch.Tensor, im_k: torch.Tensor) -> torch.Tensor:
        """Contrastive logits ``(N, 1 + K)`` (column 0 = positive), already divided by the temperature."""
        q = F.normalize(self.encoder_q(im_q), dim=1)
        with torch.no_grad():
            self._momentum_update()
            k = F.normalize(self.encoder_k(im_k), dim=1)
        l_pos = (q * k).sum(dim=1, keepdim=True)
        l_neg = q @ self.queue.clone().detach()
        logits = torch.cat([l_pos, l_neg], dim=1) / self.temperature
        self._enqueue(k)
        return logits


class Embedding(nn.Module):
    """A pretrained encoder as an embedding function: canonical ``(N, C, T, V, M)`` -> ``(N, D)``.

    ``adapter`` (the victim's input pipeline) then the encoder with its head removed; with ``projector`` the
    MoCo projector is kept (``(N, feature_dim)``, the space the contrastive loss compared). Built in eval mode.
    """

    def __init__(self, adapter: nn.Module, encoder: nn.Module, projector: bool = False) -> None:
        super().__init__()
        self.adapter = adapter
        self.encoder = copy.deepcopy(encoder)
        if not projector:
            self.encoder.fc = nn.Identity()
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.encoder(self.adapter(x))
        return out.reshape(out.shape[0], -1)


def temporal_crop(x: torch.Tensor, ratio: int, generator: torch.Generator) -> torch.Tensor:
    """``tools.temperal_crop`` per sample: reflect-pad ``T // ratio`` frames at both ends, keep a random T-window."""
    n, c, t, v, m = x.shape
    pad = t // ratio if ratio > 0 else 0
    if pad == 0:
        return x
    padded = torch.cat([x[:, :, :pad].flip(2), x, x[:, :, -pad:].flip(2)], dim=2)
    start = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    idx = (start[:, None] + torch.arange(t)[None, :]).to(x.device)
    return padded.gather(2, idx.view(n, 1, t, 1, 1).expand(n, c, t, v, m))


def shear(x: torch.Tensor, amplitude: float, generator: torch.Generator) -> torch.Tensor:
    """``tools.shear`` per sample: ``x <- S x`` with ``S = [[1, a0, b0], [a1, 1, b1], [a2, b2, 1]]``, entries U(-r, r)."""
    n = x.shape[0]
    s = ((torch.rand(n, 6, generator=generator) * 2 - 1) * amplitude).to(x.device, x.dtype)
    one = torch.ones(n, device=x.device, dtype=x.dtype)
    mat = torch.stack([one, s[:, 0], s[:, 3], s[:, 1], one, s[:, 4], s[:, 2], s[:, 5], one], dim=1).view(n, 3, 3)
    return torch.einsum("nji,nitvm->njtvm", mat, x)


def augment_view(x: torch.Tensor, cfg: MocoConfig, generator: torch.Generator) -> torch.Tensor:
    """One augmented view as ``Feeder_dual._aug``: temporal crop, then shear."""
    if cfg.temporal_padding_ratio > 0:
        x = temporal_crop(x, cfg.temporal_padding_ratio, generator)
    if cfg.shear > 0:
        x = shear(x, cfg.shear, generator)
    return x


@torch.no_grad()
def preprocess(data: Any, adapter: nn.Module, batch_size: int = 256, device: torch.device | None = None) -> torch.Tensor:
    """The adapter's output for every sample, batched (the once-only preprocessing of the official files)."""
    if len(data) == 0:
        raise ConfigError("moco: no samples to pretrain on")
    first = np.asarray(data[:1])
    if first.ndim != 5:
        raise ConfigError(f"moco: expected canonical (N, C, T, V, M) samples, got shape {(len(data),) + first.shape[1:]}")
    adapter = adapter.eval()
    parts = []
    for start in range(0, len(data), batch_size):
        x = torch.as_tensor(np.array(data[start : start + batch_size], dtype=np.float32), device=device)
        parts.append(adapter(x).cpu())
    return torch.cat(parts)


@dataclass
class MocoResult:
    """What :func:`pretrain_moco` returns: the embedding, the official-layout checkpoint and the metadata."""

    embedding: Embedding
    checkpoint: Path
    metadata: dict[str, Any] = field(default_factory=dict)


def pretrain_moco(
    data: Any,
    encoder: nn.Module | Victim,
    config: MocoConfig | None = None,
    out: str | Path = "moco",
    *,
    device: str | torch.device | None = None,
    progress: bool = True,
    command: str = "",
    info: dict[str, Any] | None = None,
) -> MocoResult:
    """Pretrain ``encoder`` with MoCo on unlabelled canonical samples; resumable.

    Args:
        data: ``(N, C, T, V, M)`` samples (numpy array, memmap or tensor); labels are never used.
        encoder: A victim (its adapter is applied first, its ``network.encoder_q`` or ``network`` is trained) or
            a bare encoder module with a head ``fc``. Not modified: the run trains copies.
        config: :class:`MocoConfig` (SkeletonCLR's defaults).
        out: Output folder: ``last.pt`` (resume state), ``encoder.pt`` (official layout), ``metadata.json``.
            Rerunning with the same configuration and data continues from ``last.pt`` (``max_steps`` may grow);
            a different configuration is refused.
        device: Where to train (default CPU).
        progress: tqdm bars on stderr.
        command: The command line, recorded in the metadata.
        info: Extra facts recorded in the metadata and checked on resume (dataset, split, victim...).

    Returns:
        :class:`MocoResult` with the :class:`Embedding` of the query encoder (feature before the projector).
    """
    cfg = config or MocoConfig()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = torch.device(device) if device is not None else torch.device("cpu")
    adapter, net = split_encoder(encoder)
    inputs = preprocess(data, adapter, device=target)
    n = inputs.shape[0]
    if n < cfg.batch_size:
        raise ConfigError(f"moco: {n} samples is fewer than one batch of {cfg.batch_size}; lower batch_size")
    steps_per_epoch = n // cfg.batch_size

    torch.manual_seed(cfg.seed)
    model = MoCo(net, cfg).to(target)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    # max_steps only says where this invocation stops: a later call with a larger one continues the same run
    settings = {k: v for k, v in asdict(cfg).items() if k != "max_steps"}
    record = json.loads(json.dumps({"moco": settings, "n_samples": n, "input_shape": list(inputs.shape[1:]), **(info or {})}))
    state: dict[str, Any] = {"epoch": 0, "step": 0, "global_step": 0, "seconds": 0.0, "cpu_seconds": 0.0, "history": []}
    order = torch.randperm(n, generator=gen)
    last = out_dir / "last.pt"
    if last.is_file():
        state, order = _resume(last, record, model, opt, gen)
        log.info("resuming %s from epoch %d step %d", out_dir, state["epoch"], state["step"])

    total = cfg.epochs * steps_per_epoch if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
    bar = tqdm(total=total, initial=min(state["global_step"], total), desc="moco", unit="step", disable=not progress)
    while state["global_step"] < total and state["epoch"] < cfg.epochs:
        epoch = state["epoch"]
        lr = cfg.lr * 0.1 ** sum(epoch >= s for s in cfg.lr_steps)
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        started, cpu_started = time.perf_counter(), time.process_time()
        losses, hits = [], 0
        while state["step"] < steps_per_epoch and state["global_step"] < total:
            idx = order[state["step"] * cfg.batch_size : (state["step"] + 1) * cfg.batch_size]
            x = inputs[idx].to(target)
            im_q, im_k = augment_view(x, cfg, gen), augment_view(x, cfg, gen)
            logits = model(im_q, im_k)
            loss = F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=target))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            hits += int((logits.detach().argmax(dim=1) == 0).sum())
            state["step"] += 1
            state["global_step"] += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.3f}")
        state["seconds"] += time.perf_counter() - started
        state["cpu_seconds"] += time.process_time() - cpu_started
        if losses:
            state["history"].append(
                {"epoch": epoch + 1, "steps": len(losses), "lr": lr, "loss": float(np.mean(losses)), "positive_top1": hits / (len(losses) * cfg.batch_size)}
            )
        if state["step"] >= steps_per_epoch:
            state["epoch"], state["step"] = epoch + 1, 0
            order = torch.randperm(n, generator=gen)
        _save_last(last, record, state, model, opt, gen, order)
    bar.close()

    checkpoint = out_dir / "encoder.pt"
    with atomic_path(checkpoint) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    meta = {
        "method": "moco",
        "config": asdict(cfg),
        **(info or {}),
        "n_samples": n,
        "input_shape": list(inputs.shape[1:]),
        "steps": state["global_step"],
        "epochs_done": state["epoch"],
        "train_seconds": round(state["seconds"], 2),
        "train_cpu_seconds": round(state["cpu_seconds"], 2),
        "torch_threads": torch.get_num_threads(),
        "device": str(target),
        "command": command,
        "sha256": sha256_file(checkpoint),
        "history": state["history"],
    }
    atomic_write_json(out_dir / "metadata.json", meta)
    return MocoResult(Embedding(adapter, model.encoder_q.cpu()).to(target), checkpoint, meta)


def _save_last(path: Path, record: dict[str, Any], state: dict[str, Any], model: MoCo, opt: Any, gen: torch.Generator, order: torch.Tensor) -> None:
    payload = {
        "config": record,
        "state": state,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "generator": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "order": order,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _resume(path: Path, record: dict[str, Any], model: MoCo, opt: Any, gen: torch.Generator) -> tuple[dict[str, Any], torch.Tensor]:
    payload = load_resume_payload(path, record, run="pretraining run", elsewhere="another output folder")
    model.load_state_dict(payload["model"])
    opt.load_state_dict(payload["optimizer"])
    gen.set_state(payload["generator"])
    torch.set_rng_state(payload["torch_rng"])
    return dict(payload["state"]), payload["order"]


def load_embedding(
    path: str | Path, encoder: nn.Module | Victim, *, projector: bool = False, encoder_state: Any = None
) -> Embedding:
    """The :class:`Embedding` of a pretext checkpoint (ours or an official one) for ``encoder``'s architecture.

    Reads ``encoder_q.*`` (the ``encoder_k``, queue and method-specific extras are ignored, as the official
    linear evaluation does); ``encoder_state`` (a victim family's ``extra['encoder_state']``) may map the file
    first and check that it belongs to the family. With ``projector`` the projector ``encoder_q.fc.*`` must be
    in the file and is kept.
    """
    adapter, net = split_encoder(encoder)
    raw = read_state_dict(path)
    enc = encoder_state(raw) if encoder_state is not None else {k: v for k, v in raw.items() if k.startswith("encoder_q.") and not k.startswith("encoder_q.fc.")}
    module = copy.deepcopy(net)
    if projector:
        head = {k[len("encoder_q.fc."):]: v for k, v in raw.items() if k.startswith("encoder_q.fc.")}
        if not head:
            raise CheckpointError(f"checkpoint {path}: no projector encoder_q.fc.* to keep (projector=True)")
        width = _head_width(net.fc)
        out_dim = head[max(k for k in head if k.endswith("weight"))].shape[0]
        module.fc = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, out_dim)) if "0.weight" in head else nn.Linear(width, out_dim)
        enc = {**enc, **{f"encoder_q.fc.{k}": v for k, v in head.items()}}
    else:
        module.fc = nn.Identity()
    own = {f"encoder_q.{k}": v for k, v in module.state_dict().items()}
    missing, unexpected = sorted(set(own) - set(enc)), sorted(set(enc) - set(own))
    misshaped = sorted(k for k in set(own) & set(enc) if own[k].shape != enc[k].shape)
    if missing or unexpected or misshaped:
        raise CheckpointError(
            f"checkpoint {path} does not fit the encoder: missing {missing[:6]}, unexpected {unexpected[:6]}, mis-shaped {misshaped[:6]}"
        )
    module.load_state_dict({k[len("encoder_q."):]: v for k, v in enc.items()}, strict=True)
    emb = Embedding(adapter, module, projector=True)  # the head is already what was asked for
    return emb.eval()
