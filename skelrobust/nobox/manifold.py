"""The hard no-box attacker's manifold: a contrastive encoder learned on unlabelled samples, or a given one.

Lu et al. (ICCV 2023), section 5.1: the attacker, holding only unlabelled skeleton sequences, learns a latent
space with MoCo-style contrastive learning (after Thoker et al., ACM MM 2021) and attacks in it. Here the
encoder is learned with the project's MoCo recipe (``skelrobust pretrain --method moco``,
:mod:`skelrobust.recipes`) on the :class:`~skelrobust.nobox.access.UnlabelledSamples` the runner grants, with
a lite configuration small enough to learn in a few minutes on one CPU core (:class:`ManifoldConfig`).

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
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, SkelRobustError
from ..io import sha256_file
from ..paths import cache_dir
from ..registry import is_object_spec
from .access import UnlabelledSamples

if TYPE_CHECKING:
    from ..recipes import MocoConfig
    from ..victim import Victim

log = logging.getLogger(__name__)

#: Version of the learned-encoder recipe and cache layout; part of every fingerprint.
MANIFOLD_VERSION = 1

_MEMORY: dict[str, nn.Module] = {}


@dataclass(frozen=True)
class ManifoldConfig:
    """How the attacker learns its encoder (recorded with results and part of the cache fingerprint).

    The lite default is sized for a CPU and for attack sets of a few dozen to a few thousand samples: a
    fixed number of optimiser steps whatever the set size (so learning costs the same on 64 or 16,000
    samples), batches of at most the set size, and a MoCo queue no longer than the set, so that it holds keys
    of other samples rather than the initial random noise. The paper's encoder (2s-AGCN, 450 epochs on NTU)
    is a GPU job; pass it as a checkpoint.

    Attributes:
        method: Contrastive method (``moco``: SkeletonCLR-style MoCo v2, :func:`skelrobust.recipes.pretrain_moco`).
        family: Encoder architecture (a self-supervised victim family, ``skeletonclr``: ST-GCN-16).
        preset: Its preset (``lite``: the CPU-sized one).
        steps: Optimiser steps.
        batch_size: Samples per step (at most the number of samples).
        queue_size: MoCo queue length (at most the number of samples, rounded down to a whole batch).
        seed: Seeds initialisation, augmentation and shuffling.
    """

    method: str = "moco"
    family: str = "skeletonclr"
    preset: str = "lite"
    steps: int = 100
    batch_size: int = 32
    queue_size: int = 1024
    seed: int = 0

    @classmethod
    def create(cls, *, steps: int | None = None, batch_size: int | None = None, seed: int | None = None) -> "ManifoldConfig":
        """A config with the given fields and the defaults for the rest (validated)."""
        base = cls()
        cfg = cls(
            steps=base.steps if steps is None else int(steps),
            batch_size=base.batch_size if batch_size is None else int(batch_size),
            seed=base.seed if seed is None else int(seed),
        )
        if cfg.steps < 1:
            raise ConfigError(f"pretrain_steps must be >= 1, got {cfg.steps}")
        if cfg.batch_size < 2:
            raise ConfigError(f"pretrain_batch_size must be >= 2 (contrastive pairs), got {cfg.batch_size}")
        if cfg.seed < 0:
            raise ConfigError(f"pretrain_seed must be >= 0, got {cfg.seed}")
        return cfg

    def for_samples(self, n: int) -> "MocoConfig":
        """The MoCo configuration for ``n`` samples (see the class docstring for the size rules)."""
        from ..recipes import MocoConfig

        batch = min(self.batch_size, n)
        per_epoch = n // batch
        queue = max(batch, min(self.queue_size, per_epoch * batch))
        epochs = -(-self.steps // per_epoch)
        return MocoConfig(batch_size=batch, queue_size=queue, epochs=epochs, max_steps=self.steps, lr_steps=(epochs,), seed=self.seed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Manifold:
    """The attacker's encoder (``(N, C, T, V, M) -> (N, D)``, eval mode, frozen) and where it came from."""

    encoder: nn.Module
    record: dict[str, Any] = field(default_factory=dict)


def fingerprint(samples: UnlabelledSamples, cfg: ManifoldConfig, layout: str) -> str:
    """SHA-256 of the samples (coordinates and ids), the layout, the configuration and :data:`MANIFOLD_VERSION`."""
    digest = hashlib.sha256()
    head = {"version": MANIFOLD_VERSION, "config": cfg.to_dict(), "layout": layout, "shape": list(samples.data.shape)}
    digest.update(json.dumps(head, sort_keys=True).encode())
    digest.update(json.dumps(list(samples.sample_ids)).encode())
    digest.update(np.ascontiguousarray(samples.data, dtype=np.float32).tobytes())
    return digest.hexdigest()


def _frozen(encoder: nn.Module, device: torch.device | str) -> nn.Module:
    encoder = encoder.to(device).eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder


def architecture(cfg: ManifoldConfig, layout: str, num_persons: int) -> Victim:
    """A freshly initialised (seeded) encoder of ``cfg.family`` / ``cfg.preset`` for ``layout``."""
    from ..victim import VICTIMS

    family = VICTIMS.get(cfg.family)
    torch.manual_seed(cfg.seed)
    return family.build(preset=cfg.preset, num_classes=2, layout=layout, num_persons=num_persons)


def learn_manifold(
    samples: UnlabelledSamples,
    cfg: ManifoldConfig,
    *,
    layout: str,
    device: torch.device | str = "cpu",
    cache: bool = True,
    progress: bool = True,
) -> Manifold:
    """The encoder learned on ``samples`` with ``cfg`` (from the memory or disk cache when already learned).

    The MoCo run lives in ``SKELROBUST_HOME/nobox/encoders/<fingerprint>/`` (``encoder.pt`` in the official
    pretext layout, ``metadata.json``, and ``last.pt`` while it runs, so an interrupted learning resumes).
    """
    from ..recipes import load_embedding, pretrain_moco

    key = fingerprint(samples, cfg, layout)
    folder = cache_dir("nobox", "encoders") / key if cache else None
    record: dict[str, Any] = {"source": "learned", "fingerprint": key, "config": cfg.to_dict(), "folder": str(folder) if folder else None}
    if key in _MEMORY:
        return Manifold(_frozen(_MEMORY[key], device), {**record, "cache": "memory"})
    arch = architecture(cfg, layout, int(samples.data.shape[4]))
    done = folder is not None and (folder / "encoder.pt").is_file() and (folder / "metadata.json").is_file()
    if done:
        assert folder is not None
        try:
            meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
            if meta.get("sha256") != sha256_file(folder / "encoder.pt"):
                raise ValueError("checksum mismatch")
            encoder = load_embedding(folder / "encoder.pt", arch)
            _MEMORY[key] = encoder
            return Manifold(_frozen(encoder, device), {**record, "cache": "disk", "train_seconds": meta.get("train_seconds")})
        except (OSError, RuntimeError, ValueError, KeyError, SkelRobustError) as exc:
            log.warning("cached encoder in %s unreadable (%s); learning it again", folder, exc)
            (folder / "encoder.pt").unlink(missing_ok=True)
    log.info("learning the hard no-box encoder on %d unlabelled %s samples (%s)", len(samples), samples.split, cfg)
    if folder is None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="nobox-encoder-") as tmp:
            result = pretrain_moco(samples.data, arch, cfg.for_samples(len(samples)), tmp, device=device, progress=progress,
                                   info={"purpose": "hard no-box attacker", "manifold_split": samples.split})
    else:
        result = pretrain_moco(samples.data, arch, cfg.for_samples(len(samples)), folder, device=device, progress=progress,
                               info={"purpose": "hard no-box attacker", "manifold_split": samples.split})
        (folder / "last.pt").unlink(missing_ok=True)  # the resume state is not needed once encoder.pt is written
    _MEMORY[key] = result.embedding
    return Manifold(_frozen(result.embedding, device), {**record, "cache": "learned now", "train_seconds": result.metadata.get("train_seconds")})


def load_encoder(path: str | Path, *, family: str = "skeletonclr", preset: str | None = None, layout: str = "ntu25",
                 num_persons: int | None = None, device: torch.device | str = "cpu") -> Manifold:
    """A user's encoder checkpoint, frozen, with its path and SHA-256 recorded.

    Reads a pretext checkpoint of ``family`` (``skelrobust pretrain --method moco`` output or an official
    SkeletonCLR-family file: ``encoder_q.*``); the preset is tried ``lite`` then ``full`` unless given.
    """
    from ..recipes import load_embedding
    from ..victim import VICTIMS

    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"encoder checkpoint not found: {file}")
    fam = VICTIMS.get(family)
    extract = fam.extra.get("encoder_state")
    errors = []
    for name in ([preset] if preset else list(fam.presets)):
        torch.manual_seed(0)
        arch = fam.build(preset=name, num_classes=2, layout=layout, num_persons=num_persons)
        try:
            encoder = load_embedding(file, arch, encoder_state=extract)
        except SkelRobustError as exc:
            errors.append(f"{name}: {exc}")
            continue
        return Manifold(_frozen(encoder, device), {"source": "checkpoint", "path": str(file), "sha256": sha256_file(file),
                                                   "family": family, "preset": name})
    raise CheckpointError(f"encoder checkpoint {file} fits no {family} preset ({'; '.join(errors)})")


def encoder_option(attack_name: str, encoder: str | Path | nn.Module | None) -> tuple[str | None, nn.Module | None]:
    """Check an attack's ``encoder`` option: ``(spec, module)``, one of them set, or both None (learn one).

    A string or path is a checkpoint file or a ``module:attr`` spec (loaded only because the user named it);
    an ``nn.Module`` is used as given. Anything else, or a file that does not exist: one line naming the attack.
    """
    spec = str(encoder) if isinstance(encoder, (str, Path)) else None
    module = encoder if isinstance(encoder, nn.Module) else None
    if encoder is not None and spec is None and module is None:
        raise ConfigError(f"{attack_name}: encoder must be a checkpoint path, 'module:attr' or an nn.Module, got {type(encoder).__name__}")
    if spec is not None and not Path(spec).expanduser().is_file() and not is_object_spec(spec):
        raise ConfigError(f"{attack_name}: encoder checkpoint not found: {spec}")
    return spec, module


def user_encoder(spec: str, *, layout: str = "ntu25", num_persons: int | None = None, device: torch.device | str = "cpu") -> Manifold:
    """The encoder a user names: a checkpoint file (:func:`load_encoder`) or code ``module:attr`` / ``file.py:attr``.

    Code must give an ``nn.Module`` mapping ``(N, C, T, V, M)`` to ``(N, D)``, or a callable returning one.
    """
    from ..registry import is_object_spec, load_object

    if Path(spec).expanduser().is_file():
        return load_encoder(spec, layout=layout, num_persons=num_persons, device=device)
    if not is_object_spec(spec):
        raise ConfigError(f"encoder {spec!r} is neither a checkpoint file nor user code 'module:attr' / 'file.py:attr'")
    obj = load_object(spec)
    module = obj if isinstance(obj, nn.Module) else obj() if callable(obj) else None
    if not isinstance(module, nn.Module):
        raise ConfigError(f"encoder {spec!r} must be an nn.Module or a callable returning one, got {type(module).__name__}")
    return Manifold(_frozen(module, device), {"source": "user code", "spec": spec})
