"""The dataset registry and :func:`load_dataset`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from ..errors import ConfigError, DatasetNotPreparedError
from ..paths import skelrobust_home
from ..registry import Registry
from .base import SkeletonDataset


class Loader(Protocol):
    def __call__(self, split: str, root: Path | None, **options: Any) -> SkeletonDataset: ...


@dataclass(frozen=True)
class DatasetSpec:
    """How to load (and, for real datasets, prepare) one registered dataset.

    Attributes:
        name: Registry name, as on the command line.
        loader: ``loader(split, root, **options) -> SkeletonDataset``; ``root`` is ``None`` when the user gave none.
        description: One line for ``skelrobust datasets``.
        layout: Layout name of the data the loader returns.
        num_classes: Class count (``None`` when it depends on the files, e.g. generic npz).
        units: Coordinate units.
        splits: Split names the loader accepts.
        needs_root: True when the data must be brought or prepared by the user.
        prepare: ``prepare(raw_dir, out_dir, **options) -> dict`` writing a prepared dataset, or None.
        prepare_hint: What to run when the data are missing.
        options: Loader options and their defaults (e.g. ``{"benchmark": "xsub"}``).
        num_persons: Persons ``M`` of every loaded sample (``None`` when it depends on the files); victims
            built for the dataset take it.
    """

    name: str
    loader: Callable[..., SkeletonDataset]
    description: str
    layout: str
    num_classes: int | None
    units: str = "m"
    splits: tuple[str, ...] = ("train", "test")
    needs_root: bool = True
    prepare: Callable[..., dict[str, Any]] | None = None
    prepare_hint: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    num_persons: int | None = None


DATASETS: Registry[DatasetSpec] = Registry("dataset", builtin_package="skelrobust.data.builtin", entry_point_group="skelrobust.datasets")


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Register a dataset spec (used by built-in loaders and plugins)."""
    DATASETS.register(spec.name, spec, description=spec.description, layout=spec.layout, num_classes=spec.num_classes)
    return spec


def default_root(name: str) -> Path:
    """Where ``skelrobust data prepare NAME`` writes by default: ``$SKELROBUST_HOME/datasets/NAME``."""
    return skelrobust_home() / "datasets" / name


def load_dataset(name: str, split: str = "train", root: str | Path | None = None, **options: Any) -> SkeletonDataset:
    """Load one split of a registered dataset in the canonical ``(N, C, T, V, M)`` layout.

    Args:
        name: Registered name (``skelrobust datasets`` lists them).
        split: A split the dataset defines (``train`` / ``test``).
        root: Folder holding the prepared or raw files; defaults to ``$SKELROBUST_HOME/datasets/NAME``
            for datasets that need one.
        **options: Loader options (e.g. ``benchmark="xsub"`` for NTU).

    Raises:
        RegistryError: unknown dataset. ConfigError: unknown split or option.
        DatasetNotPreparedError: the data are not where they should be (the message says how to prepare).
        DataError: the files are malformed (the message names the file or sample).
    """
    spec = DATASETS.get(name)
    if split not in spec.splits:
        raise ConfigError(f"dataset {name!r} has no split {split!r}; splits: {', '.join(spec.splits)}")
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        known = ", ".join(sorted(spec.options)) or "none"
        raise ConfigError(f"dataset {name!r} does not take option(s) {', '.join(unknown)}; options: {known}")
    merged = {**spec.options, **options}
    path: Path | None = Path(root).expanduser() if root is not None else None
    if path is None and spec.needs_root:
        path = default_root(name)
    if path is not None and spec.needs_root and not path.exists():
        hint = f" {spec.prepare_hint}" if spec.prepare_hint else ""
        raise DatasetNotPreparedError(f"dataset {name!r} not found at {path}.{hint}")
    if path is not None and not spec.needs_root and not path.is_dir():
        # A built-in dataset takes --root only as the folder of its cache; never create one at a mistyped path.
        raise ConfigError(
            f"dataset {name!r} is built in and needs no --root; a --root names an existing folder for its cache, "
            f"and {path} is not one: leave --root out, or create the folder first"
        )
    return spec.loader(split, path, **merged)
