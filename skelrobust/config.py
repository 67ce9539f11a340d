"""Reads ``benchmark.yaml``, the versioned benchmark protocol, and serves its defaults.

The file lives at the repository root and is packaged as ``skelrobust/benchmark.yaml`` (a symlink in the
source tree, a copy in a wheel). Parsed with ``yaml.safe_load``; unknown top-level keys are rejected.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

BENCHMARK_FILE = Path(__file__).with_name("benchmark.yaml")
_TOP_LEVEL_KEYS = {"protocol", "defaults", "datasets", "attacks", "victims", "defenses"}


@functools.lru_cache(maxsize=None)
def load_benchmark(path: str | None = None) -> dict[str, Any]:
    """The parsed protocol (cached). ``path`` overrides the packaged file."""
    source = Path(path) if path else BENCHMARK_FILE
    try:
        with open(source, encoding="utf-8") as fh:
            config = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read benchmark protocol {source}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    unknown = set(config) - _TOP_LEVEL_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(_TOP_LEVEL_KEYS)}")
    return config


def defaults() -> dict[str, Any]:
    """Shared attack defaults (eps, norm, steps, targeted, seed, batch_size)."""
    return dict(load_benchmark().get("defaults", {}))


def dataset_config(name: str) -> dict[str, Any]:
    """The protocol's entry for a dataset (empty for datasets it does not list)."""
    return dict((load_benchmark().get("datasets") or {}).get(name, {}))


def protocol_budget(dataset: str) -> tuple[float, str]:
    """The dataset's protocol budget ``datasets.<dataset>.eps`` and where it comes from.

    Returns:
        ``(eps, source)``: eps in the dataset's own units, and a one-line source naming the file entry and,
        when the entry has an ``eps_source``, its origin (a paper, or the calibration that set it).

    Raises:
        ConfigError: the protocol lists no budget for the dataset (pass ``--eps``), or the listed budget is not
            a finite number > 0.
    """
    entry = dataset_config(dataset)
    where = f"{BENCHMARK_FILE.name} datasets.{dataset}.eps"
    if entry.get("eps") is None:
        raise ConfigError(f"{where} is not set: the protocol has no budget for dataset {dataset!r}; pass --eps")
    value = entry["eps"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{where} must be a finite number > 0, got {value!r}")
    origin = entry.get("eps_source")
    return float(value), f"{where}" + (f" ({origin})" if origin else "")


def attack_config(name: str) -> dict[str, Any]:
    """Protocol hyper-parameters for an attack (empty when it sets none)."""
    return dict((load_benchmark().get("attacks") or {}).get(name, {}))


def default_preset(dataset: str | None) -> str:
    """Victim preset for a dataset: ``lite`` for the embedded data, ``full`` otherwise unless listed."""
    if dataset is None:
        return "full"
    return str(dataset_config(dataset).get("preset", "full"))


def default_surrogate(dataset: str, victims: list[str]) -> str:
    """First surrogate in the dataset's preference list that is not one of ``victims``."""
    prefs = dataset_config(dataset).get("surrogates") or []
    for name in prefs:
        if name not in victims:
            return str(name)
    raise ConfigError(
        f"benchmark.yaml lists no surrogate for dataset {dataset!r} other than the victim(s) {victims}; pass --surrogate"
    )
