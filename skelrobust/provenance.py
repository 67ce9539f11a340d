"""What a result file records about how it was produced: versions, platform, seeds, weights, config.

A number in a robustness table is only worth what can be said about where it came from, so every run
records the package versions, the interpreter and platform, the benchmark protocol version, the git
commit of the source tree (when it is a checkout), the seeds, the checkpoint hash of every model and
the fully resolved configuration.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from .config import load_benchmark
from .version import __version__

#: Distributions whose versions are recorded (those that can change a result).
PACKAGES = ("torch", "numpy", "scipy", "botorch", "pandas", "click", "pyyaml", "tqdm")

#: Version of the results.json / samples.jsonl layout written by the runner.
RESULTS_SCHEMA_VERSION = 1


def package_versions() -> dict[str, str | None]:
    """Installed versions of :data:`PACKAGES` (None for a package that is not installed)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the git checkout holding ``path`` (default: this package), with ``+dirty`` when modified.

    None when the package is not in a git checkout or git is unavailable.
    """
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=where, capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head or None


def environment() -> dict[str, Any]:
    """Interpreter, platform, package versions and torch's thread and device settings."""
    return {
        "skelrobust": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": package_versions(),
        "torch_num_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "git_commit": git_commit(),
    }


def provenance(config: dict[str, Any], models: dict[str, dict[str, Any]], seeds: dict[str, Any]) -> dict[str, Any]:
    """The provenance block of a result file.

    Args:
        config: The fully resolved run configuration.
        models: Per model name, its metadata (:attr:`Victim.metadata`: preset, checkpoint, sha256...).
        seeds: Every seed used and how it was derived.
    """
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "protocol": load_benchmark().get("protocol"),
        **environment(),
        "command": list(sys.argv),
        "seeds": seeds,
        "checkpoints": {
            name: {"checkpoint": meta.get("checkpoint"), "sha256": meta.get("checkpoint_sha256")}
            for name, meta in models.items()
        },
        "models": models,
        "config": config,
    }
