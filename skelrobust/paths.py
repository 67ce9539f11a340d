"""Where skelrobust keeps generated data, prepared datasets and cached artefacts."""

from __future__ import annotations

import os
from pathlib import Path


def skelrobust_home() -> Path:
    """Root of all caches: ``$SKELROBUST_HOME``, default ``~/.cache/skelrobust``. Created on demand."""
    root = Path(os.environ.get("SKELROBUST_HOME", Path.home() / ".cache" / "skelrobust")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(*parts: str) -> Path:
    """A sub-folder of :func:`skelrobust_home`, created on demand."""
    path = skelrobust_home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
