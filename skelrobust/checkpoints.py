"""Strict checkpoint loading: official releases load unchanged or fail with a precise report."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

from .errors import CheckpointError
from .io import sha256_file

_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint with ``weights_only=True`` and unwrap it to a flat ``name -> tensor`` dict.

    Accepts a bare state dict, ``{'state_dict': ...}`` / ``{'model': ...}`` wrappers and DataParallel's
    ``module.`` prefix.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or pickled-code files
        raise CheckpointError(f"cannot read checkpoint {path} with weights_only=True: {exc}") from exc
    for key in _WRAPPER_KEYS:
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(
            f"checkpoint {path}: expected a state dict (name -> tensor), optionally under one of {_WRAPPER_KEYS}"
        )
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_into(
    network: nn.Module,
    path: str | Path,
    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> str:
    """Load a checkpoint into ``network`` with ``strict=True`` and return its SHA-256.

    ``convert`` maps foreign key names (mmskeleton, pyskl, the prior benchmark) onto ``network``'s.
    On any mismatch the error lists the missing, unexpected and mis-shaped keys.
    """
    state = read_state_dict(path)
    if convert is not None:
        try:
            state = convert(state)
        except CheckpointError as exc:
            raise CheckpointError(f"checkpoint {path}: {exc}") from exc
    own = network.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshaped = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    if missing or unexpected or misshaped:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
            if keys:
                shown = ", ".join(keys[:12]) + (f", ... ({len(keys)} in all)" if len(keys) > 12 else "")
                parts.append(f"{label} keys: {shown}")
        raise CheckpointError(f"checkpoint {path} does not fit {type(network).__name__}: " + "; ".join(parts))
    network.load_state_dict(state, strict=True)
    return sha256_file(path)


def add_missing_bn_counters(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add ``num_batches_tracked`` (0) to every BatchNorm of a state dict saved before PyTorch 0.4.1 had them.

    Early official releases (ST-GCN, 2018) may lack the counters; they only matter when training with
    ``momentum=None``, never in evaluation. Used by victims' ``convert_state_dict``.
    """
    out = dict(state)
    for key in state:
        if key.endswith(".running_mean"):
            out.setdefault(key[: -len("running_mean")] + "num_batches_tracked", torch.tensor(0, dtype=torch.long))
    return out
