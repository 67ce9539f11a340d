"""The contract every registered dataset honours (built-ins and entry-point plugins alike).

- its spec is complete: a description, a test split (the runner attacks it), a known layout, its options;
- both splits of its smallest valid files (``dataset_files.WRITERS``) load as validated canonical data whose
  layout, class count and units agree with the spec, with unique ids shared by no two splits;
- a missing or empty root is one clear line (a :class:`SkelRobustError`) that says where to point it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dataset_files import WRITERS
from skelrobust.data import DATASETS, SkeletonDataset, load_dataset
from skelrobust.errors import SkelRobustError
from skelrobust.layouts import get_layout

NAMES = DATASETS.names()


@pytest.mark.parametrize("name", NAMES)
def test_spec_is_complete(name: str) -> None:
    spec = DATASETS.get(name)
    assert spec.name == name and spec.description.strip() and callable(spec.loader)
    assert "test" in spec.splits and len(set(spec.splits)) == len(spec.splits)
    if spec.layout != "(from file)":
        get_layout(spec.layout)
    assert spec.num_classes is None or spec.num_classes > 0
    assert spec.units.strip()
    if spec.needs_root:
        assert spec.prepare is not None or spec.prepare_hint.strip(), "a dataset that needs a root says how to get one"


@pytest.mark.parametrize("name", NAMES)
def test_smallest_valid_files_load_as_validated_canonical_data(name: str, tmp_path: Path) -> None:
    if name not in WRITERS:
        pytest.fail(f"dataset {name!r} has no writer in tests/data/dataset_files.py: add one so the contract covers it")
    root, options = WRITERS[name](tmp_path)
    spec = DATASETS.get(name)
    loaded = {split: load_dataset(name, split, root=root, **options) for split in spec.splits}
    seen: set[str] = set()
    for split, ds in loaded.items():
        assert isinstance(ds, SkeletonDataset) and ds.split == split and len(ds) > 0
        assert ds.data.dtype == np.float32 and ds.data.ndim == 5 and ds.data.shape[3] == ds.layout.num_joints
        if spec.layout != "(from file)":
            assert ds.layout.name == spec.layout
        if spec.num_classes is not None:
            assert ds.num_classes == spec.num_classes
        if spec.units != "(from file)":
            assert ds.units == spec.units
        assert np.isfinite(np.asarray(ds.data)).all() and ((ds.lengths >= 1) & (ds.lengths <= ds.data.shape[2])).all()
        assert not seen & set(ds.sample_ids), f"{name}: a sample is in two splits"
        seen |= set(ds.sample_ids)
    shapes = {ds.shape[0::2] for ds in loaded.values()}  # C and V agree across splits
    assert len(shapes) == 1


@pytest.mark.parametrize("name", [n for n in NAMES if DATASETS.get(n).needs_root])
def test_missing_or_empty_root_is_one_line(name: str, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for root in (tmp_path / "absent", tmp_path / "empty"):
        with pytest.raises(SkelRobustError) as info:
            load_dataset(name, "test", root=root)
        message = str(info.value)
        assert "\n" not in message and (str(root) in message or name in message), message
