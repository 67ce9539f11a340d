"""Strict checkpoint loading: official releases load unchanged or fail with a precise report."""

from __future__ import annotations

import argparse
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

from .errors import CheckpointError
from .io import sha256_file

log = logging.getLogger(__name__)

_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint with ``weights_only=True`` and unwrap it to a flat ``name -> tensor`` dict.

    Accepts a bare state dict, ``{'state_dict': ...}`` / ``{'model': ...}`` wrappers and DataParallel's
    ``module.`` prefix.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is an empty file (0 bytes); {_ACCEPTED}")
    try:
        # MAE-style files (MacDiff) store their argparse options beside the weights: plain data, admitted
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or pickled-code files
        raise CheckpointError(f"cannot read checkpoint {path}: {describe_load_failure(exc)}; {_ACCEPTED}") from exc
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
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = "NaN" if bool(torch.isnan(tensor).any()) else "infinite"
            raise CheckpointError(f"checkpoint {path}: weight {key!r} holds {bad} values; the file is damaged or from a diverged training run")
    return state


#: How many keys of each kind a key-mismatch message names; the full lists go to the log (``-v``).
SHOWN_KEYS = 3


@dataclass(frozen=True)
class KeyMismatch:
    """How a state dict differs from a network's: sorted missing, unexpected and mis-shaped keys."""

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    misshaped: tuple[str, ...]  # "key: checkpoint (a, b) vs model (c, d)"
    model_keys: int
    checkpoint_keys: int

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.misshaped)

    def summary(self) -> str:
        """One line: the counts and the first :data:`SHOWN_KEYS` keys of each kind."""
        parts = []
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected), ("mis-shaped", self.misshaped)):
            if keys:
                more = f", +{len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
                parts.append(f"{len(keys)} {label} ({'; '.join(keys[:SHOWN_KEYS])}{more})")
        return f"{', '.join(parts)} [model {self.model_keys} keys, checkpoint {self.checkpoint_keys}]"


def compare_state_dicts(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> KeyMismatch:
    """The :class:`KeyMismatch` of ``state`` (a checkpoint) against ``own`` (the network's state dict)."""
    return KeyMismatch(
        missing=tuple(sorted(set(own) - set(state))),
        unexpected=tuple(sorted(set(state) - set(own))),
        misshaped=tuple(
            f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
            for k in sorted(set(own) & set(state))
            if state[k].shape != own[k].shape
        ),
        model_keys=len(own),
        checkpoint_keys=len(state),
    )


#: What :func:`read_state_dict` accepts, said after every reading failure.
_ACCEPTED = (
    "skelrobust reads checkpoints with torch.load(weights_only=True) and accepts a state dict (name -> tensor), "
    f"optionally under one of {', '.join(_WRAPPER_KEYS)}, saved with torch.save"
)


def describe_load_failure(exc: Exception) -> str:
    """torch's reason for refusing a file, without its advice to retry with ``weights_only=False``.

    That advice would have the user unpickle arbitrary code; what skelrobust accepts is said instead.
    """
    text = str(exc).strip()
    if "Weights only load failed" in text or "weights_only" in text:
        match = re.search(r"Unsupported (?:global|operand).*?(?= was not| is not|\.?$)", text, flags=re.MULTILINE)
        detail = f" ({match.group(0).strip()})" if match else ""
        return f"it is not a plain state dict: it holds pickled Python objects{detail}"
    first = text.splitlines()[0] if text else ""
    return f"not a readable PyTorch file ({type(exc).__name__}{': ' + first if first else ''})"


def load_into(
    network: nn.Module,
    path: str | Path,
    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> str:
    """Load a checkpoint into ``network`` with ``strict=True`` and return its SHA-256.

    ``convert`` maps foreign key names (mmskeleton, pyskl, the prior benchmark) onto ``network``'s; a network
    with an ``adapt_state_dict(state)`` method then fits size-dependent tensors of a checkpoint trained for
    another input size (MacDiff's temporal position embedding).
    On any mismatch the error is one line with the counts and the first few missing, unexpected and
    mis-shaped keys; the full lists are logged at INFO level (``skelrobust -v ...``).
    """
    state = read_state_dict(path)
    if convert is not None:
        try:
            state = convert(state)
        except CheckpointError as exc:
            raise CheckpointError(f"checkpoint {path}: {exc}") from exc
    adapt = getattr(network, "adapt_state_dict", None)
    if callable(adapt):
        state = adapt(state)
    mismatch = compare_state_dicts(network.state_dict(), state)
    if mismatch:
        for label, keys in (("missing", mismatch.missing), ("unexpected", mismatch.unexpected), ("mis-shaped", mismatch.misshaped)):
            if keys:
                log.info("checkpoint %s: %d %s key(s): %s", path, len(keys), label, ", ".join(keys))
        raise CheckpointError(
            f"checkpoint {path} does not fit {type(network).__name__}: {mismatch.summary()} (full lists: run with -v)"
        )
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
