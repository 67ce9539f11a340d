"""The self-supervised attacker's surrogate: a linear head trained with labels on a frozen contrastive encoder.

Lu et al. (ICCV 2023), section 6.1, compare the hard no-box attacks with a "self-supervised attacker": the
frozen contrastive encoder plus a linear classifier trained with labels, attacked transfer-style. That
attacker holds the training split and its labels (the transferred black-box column of the paper's Table 1),
and no victim. Here the encoder is the hard no-box attacker's manifold learned on the training split's clips
(:func:`skelrobust.nobox.manifold.learn_manifold`) or one the user gives, and the head is trained with the
SkeletonCLR-family linear-evaluation protocol (:mod:`skelrobust.recipes.linear_eval`): features of the frozen
encoder computed once, SGD with momentum 0.9, learning rate 3.0 divided by 10 at epoch 80, batch 128, 100
epochs, no weight decay. The last epoch's head is kept (the attacker has no labelled split to select on).

Heads are cached under ``SKELROBUST_HOME/nobox/probes/<fingerprint>.pt`` (a plain state dict read with
``weights_only=True``); the fingerprint hashes the encoder's identity, the training clips and labels, and the
head configuration, so a changed input never reuses a stale head.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..io import atomic_path
from ..paths import cache_dir

log = logging.getLogger(__name__)

#: Version of the head recipe and cache layout; part of every fingerprint.
PROBE_VERSION = 1
_FEATURE_BATCH = 128


@dataclass(frozen=True)
class ProbeConfig:
    """The linear head's training (the project's linear-evaluation defaults; recorded and fingerprinted)."""

    epochs: int = 100
    batch_size: int = 128
    lr: float = 3.0
    lr_step: int = 80
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0 or self.seed < 0:
            raise ConfigError(f"linear head: epochs and batch size must be >= 1, lr > 0 and seed >= 0, got {self}")


class LinearProbe(nn.Module):
    """``(N, C, T, V, M) -> (N, classes)``: the frozen encoder then a linear head; always in eval mode."""

    def __init__(self, encoder: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


@torch.no_grad()
def embed(encoder: nn.Module, data: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """Embeddings ``(N, D)`` of ``data`` ``(N, C, T, V, M)`` in batches."""
    out = [encoder(torch.from_numpy(np.array(data[i : i + _FEATURE_BATCH], dtype=np.float32)).to(device))
           for i in range(0, data.shape[0], _FEATURE_BATCH)]
    return torch.cat(out)


def fingerprint(encoder_identity: dict[str, Any], data: np.ndarray, labels: np.ndarray, num_classes: int, cfg: ProbeConfig) -> str:
    """SHA-256 of the encoder's identity, the clips, the labels, the class count and the configuration."""
    digest = hashlib.sha256()
    head = {"version": PROBE_VERSION, "encoder": encoder_identity, "config": asdict(cfg), "classes": int(num_classes),
            "shape": list(data.shape)}
    digest.update(json.dumps(head, sort_keys=True, default=str).encode())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(data, dtype=np.float32).tobytes())
    return digest.hexdigest()


def train_head(features: torch.Tensor, labels: torch.Tensor, num_classes: int, cfg: ProbeConfig) -> tuple[nn.Linear, dict[str, Any]]:
    """A linear head on fixed ``features`` ``(N, D)`` with ``labels`` ``(N,)``, and its training record."""
    torch.manual_seed(cfg.seed)
    head = nn.Linear(features.shape[1], num_classes).to(features.device)
    opt = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=0.9)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = features.shape[0]
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * (0.1 if epoch >= cfg.lr_step else 1.0)
        order = torch.randperm(n, generator=gen).to(features.device)
        for i in range(0, n, cfg.batch_size):
            batch = order[i : i + cfg.batch_size]
            loss = F.cross_entropy(head(features[batch]), labels[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        logits = head(features)
        record = {"train_accuracy": float((logits.argmax(1) == labels).float().mean()),
                  "train_loss": float(F.cross_entropy(logits, labels)), "train_seconds": time.perf_counter() - start}
    head.eval()
    for p in head.parameters():
        p.requires_grad_(False)
    return head, record


def linear_probe(
    encoder: nn.Module, encoder_identity: dict[str, Any], data: np.ndarray, labels: np.ndarray, num_classes: int, cfg: ProbeConfig,
    *, device: torch.device | str = "cpu", cache: bool = True,
) -> tuple[LinearProbe, dict[str, Any]]:
    """The frozen ``encoder`` with a linear head trained on ``(data, labels)`` (from the cache when there).

    Raises:
        ConfigError: labels outside ``[0, num_classes)`` or not one per clip.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise ConfigError(f"linear head: {labels.shape[0] if labels.ndim else 0} labels for {data.shape[0]} training clips")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ConfigError(f"linear head: labels must be in [0, {num_classes}), got {labels.min()}..{labels.max()}")
    key = fingerprint(encoder_identity, data, labels, num_classes, cfg)
    file = cache_dir("nobox", "probes") / f"{key}.pt" if cache else None
    record: dict[str, Any] = {"fingerprint": key, "config": asdict(cfg), "training_clips": int(data.shape[0])}
    if file is not None and file.is_file():
        try:
            payload = torch.load(file, map_location="cpu", weights_only=True)
            head = nn.Linear(int(payload["weight"].shape[1]), num_classes)
            head.load_state_dict({"weight": payload["weight"], "bias": payload["bias"]})
            head = head.to(device).eval().requires_grad_(False)
            return LinearProbe(encoder, head), {**record, **json.loads(str(payload["record"])), "cache": "disk"}
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            log.warning("cached linear head %s unreadable (%s); training it again", file, exc)
    features = embed(encoder, data, device)
    head, trained = train_head(features, torch.as_tensor(labels, device=features.device), num_classes, cfg)
    if file is not None:
        with atomic_path(file) as tmp:
            torch.save({"weight": head.weight.detach().cpu(), "bias": head.bias.detach().cpu(), "record": json.dumps(trained)}, tmp)
    return LinearProbe(encoder, head), {**record, **trained, "cache": "trained now"}
