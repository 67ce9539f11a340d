"""The hard no-box attacker's manifold: a contrastive encoder learned on unlabelled samples, or a given one.

Lu et al. (ICCV 2023), section 5.1: the attacker, holding only unlabelled skeleton sequences, learns a latent
space with MoCo-style contrastive learning (after Thoker et al., ACM MM 2021) and attacks in it. Here the
encoder is learned with the project's MoCo recipe (``skelrobust pretrain --method moco``,
:mod:`skelrobust.recipes`) on the :class:`~skelrobust.nobox.access.UnlabelledSamples` the runner grants, with
a lite configuration small enough to learn in about a minute on one CPU core (:class:`ManifoldConfig`).

Learned encoders are cached under ``SKELROBUST_HOME/nobox/encoders/<fingerprint>.pt``; the fingerprint hashes
the samples (their coordinates and ids), the configuration and :data:`MANIFOLD_VERSION`, so a changed set or
setting never reuses a stale encoder. Within one process the encoder is also kept in memory.

A user may pass an encoder checkpoint instead (:func:`load_encoder`): a file written by
``skelrobust pretrain --method moco`` or an official SkeletonCLR-family pretext checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..io import sha256_file
from ..paths import cache_dir
from .access import UnlabelledSamples

log = logging.getLogger(__name__)

#: Version of the learned-encoder recipe and cache layout; part of every fingerprint.
MANIFOLD_VERSION = 1

_MEMORY: dict[str, nn.Module] = {}


@dataclass(frozen=True)
class ManifoldConfig:
    """How the attacker learns its encoder (recorded with results and part of the cache fingerprint).

    Attributes:
        method: Contrastive method (``moco``).
        preset: Encoder preset of the recipe (``lite``: the CPU-sized one).
        epochs: Passes over the unlabelled samples.
        batch_size: Samples per MoCo step.
        seed: Seeds initialisation, augmentation and shuffling.
    """

    method: str = "moco"
    preset: str = "lite"
    epochs: int = 20
    batch_size: int = 32
    seed: int = 0

    @classmethod
    def create(cls, *, epochs: int | None = None, batch_size: int | None = None, seed: int | None = None) -> "ManifoldConfig":
        """A config with the given fields and the defaults for the rest (validated)."""
        base = cls()
        cfg = cls(
            epochs=base.epochs if epochs is None else int(epochs),
            batch_size=base.batch_size if batch_size is None else int(batch_size),
            seed=base.seed if seed is None else int(seed),
        )
        if cfg.epochs < 1:
            raise ConfigError(f"pretrain_epochs must be >= 1, got {cfg.epochs}")
        if cfg.batch_size < 2:
            raise ConfigError(f"pretrain_batch_size must be >= 2 (contrastive pairs), got {cfg.batch_size}")
        if cfg.seed < 0:
            raise ConfigError(f"pretrain_seed must be >= 0, got {cfg.seed}")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Manifold:
    """The attacker's encoder (``(N, C, T, V, M) -> (N, D)``, eval mode, frozen) and where it came from."""

    encoder: nn.Module
    record: dict[str, Any] = field(default_factory=dict)


def fingerprint(samples: UnlabelledSamples, cfg: ManifoldConfig) -> str:
    """SHA-256 of the samples (coordinates and ids), the configuration and :data:`MANIFOLD_VERSION`."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"version": MANIFOLD_VERSION, "config": cfg.to_dict(), "shape": list(samples.data.shape)}, sort_keys=True).encode())
    digest.update(json.dumps(list(samples.sample_ids)).encode())
    digest.update(np.ascontiguousarray(samples.data, dtype=np.float32).tobytes())
    return digest.hexdigest()


def _frozen(encoder: nn.Module, device: torch.device | str) -> nn.Module:
    encoder = encoder.to(device).eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder


def learn_manifold(
    samples: UnlabelledSamples, cfg: ManifoldConfig, *, device: torch.device | str = "cpu", cache: bool = True, progress: bool = True
) -> Manifold:
    """The encoder learned on ``samples`` with ``cfg`` (from the memory or disk cache when already learned)."""
    from ..recipes import build_encoder, load_encoder_file, pretrain_moco

    key = fingerprint(samples, cfg)
    record: dict[str, Any] = {"source": "learned", "fingerprint": key, "config": cfg.to_dict()}
    if key in _MEMORY:
        return Manifold(_frozen(_MEMORY[key], device), {**record, "cache": "memory"})
    path = cache_dir("nobox", "encoders") / f"{key}.pt" if cache else None
    if path is not None and path.is_file():
        try:
            encoder = load_encoder_file(path)
            _MEMORY[key] = encoder
            return Manifold(_frozen(encoder, device), {**record, "cache": str(path)})
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            log.warning("cached encoder %s unreadable (%s); learning it again", path, exc)
    log.info("learning the hard no-box encoder on %d unlabelled %s samples (%s)", len(samples), samples.split, cfg)
    encoder = build_encoder(cfg.preset, layout_joints=int(samples.data.shape[3]))
    encoder = pretrain_moco(encoder, samples.data, epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed,
                            device=device, progress=progress, checkpoint=path)
    _MEMORY[key] = encoder
    return Manifold(_frozen(encoder, device), {**record, "cache": str(path) if path is not None else None})


def load_encoder(path: str | Path, *, device: torch.device | str = "cpu") -> Manifold:
    """A user's encoder checkpoint (see the module docstring), frozen, with its path and SHA-256 recorded."""
    from ..recipes import load_encoder_file

    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"encoder checkpoint not found: {file}")
    encoder = load_encoder_file(file)
    return Manifold(_frozen(encoder, device), {"source": "checkpoint", "path": str(file), "sha256": sha256_file(file)})
