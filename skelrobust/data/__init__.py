"""Skeleton datasets in the canonical ``(N, C, T, V, M)`` layout.

``load_dataset(name, split, root, **options)`` is the entry point; ``skelrobust datasets`` lists what is
registered. Loaders for each format live in their own module and register themselves in
:mod:`skelrobust.data.builtin`.
"""

from .base import SkeletonDataset, valid_lengths, validate_dataset
from .registry import DATASETS, DatasetSpec, default_root, load_dataset, register_dataset

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "SkeletonDataset",
    "default_root",
    "load_dataset",
    "register_dataset",
    "valid_lengths",
    "validate_dataset",
]
