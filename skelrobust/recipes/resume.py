"""Reading a recipe's ``last.pt`` back: the payload, refused when it belongs to another configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError


def load_resume_payload(path: Path, record: dict[str, Any], *, run: str, elsewhere: str) -> dict[str, Any]:
    """The saved training state in ``path`` (read with ``weights_only=True``), whose ``config`` must equal ``record``.

    Args:
        run: What the file belongs to, for the message (``"linear evaluation"``).
        elsewhere: What the user may choose instead (``"another --out"``).

    Raises:
        CheckpointError: the file is unreadable. ConfigError: it was written by a run of another configuration
            (the message names the differing keys).
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file
        raise CheckpointError(f"cannot resume from {path}: {exc}; delete it to start over") from exc
    theirs = payload.get("config") if isinstance(payload, dict) else None
    if theirs != record:
        theirs = theirs or {}
        diff = sorted(k for k in set(theirs) | set(record) if theirs.get(k) != record.get(k))
        raise ConfigError(f"{path} belongs to a different {run} (differs in {', '.join(diff)}); use {elsewhere} or delete it")
    return payload
