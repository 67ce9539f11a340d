"""``ntu60`` (benchmarks xsub, xview) and ``ntu120`` (xsub, xset).

``root`` may be

- a folder written by ``skelrobust data prepare ntu60 --raw-dir RAW --out ROOT`` (see :mod:`skelrobust.data.ntu`;
  raw camera coordinates, T = 300, memory-mapped), or
- a folder holding CTR-GCN's prepared ``NTU60_CS.npz`` / ``NTU60_CV.npz`` (``NTU120_CSub.npz`` /
  ``NTU120_CSet.npz``), or one such file itself (see :mod:`.ctrgcn_npz`; already translated).

Default root: ``$SKELROBUST_HOME/datasets/<name>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import ConfigError, DataError, DatasetNotPreparedError
from ...layouts import get_layout
from .. import ntu
from ..base import SkeletonDataset
from ..prepared import open_split, read_meta
from ..stamp import STAMP_KEY
from ..registry import DatasetSpec, default_root, register_dataset
from .ctrgcn_npz import FILE_NAMES, find_ctrgcn_file, read_ctrgcn_npz


def _hint(variant: str) -> str:
    return (
        f"Prepare it with `skelrobust data prepare {variant} --raw-dir DIR_WITH_.skeleton_FILES "
        f"--out {default_root(variant)}` or pass --root to a folder holding CTR-GCN's {FILE_NAMES[(variant, 'xsub')][0]}."
    )


def _loader(variant: str):
    def load(split: str, root: Path | None, benchmark: str = "xsub") -> SkeletonDataset:
        if benchmark not in ntu.BENCHMARKS[variant]:
            choices = ", ".join(ntu.BENCHMARKS[variant])
            raise ConfigError(f"{variant} has no benchmark {benchmark!r}; choose from {choices}")
        root = root if root is not None else default_root(variant)
        names = ntu.class_names(variant)
        common: dict[str, Any] = {
            "name": variant, "split": split, "layout": get_layout("ntu25"), "class_names": names, "units": "m",
        }
        if root.is_file() and root.suffix == ".npz":
            ctr: Path | None = root
        else:
            ctr = find_ctrgcn_file(root, variant, benchmark) if root.is_dir() else None
        if ctr is not None:
            data, labels, lengths, ids = read_ctrgcn_npz(ctr, split, len(names))
            meta = {"benchmark": benchmark, "format": "ctrgcn-npz", "preprocessing": "CTR-GCN seq_translation (centred)"}
            return SkeletonDataset(data=data, labels=labels, lengths=lengths, sample_ids=ids, source=str(ctr),
                                   meta=meta, **common)
        meta = read_meta(root, variant, _hint(variant))
        if meta.get("name") != variant:
            raise DataError(f"{root} holds a prepared {meta.get('name')!r} dataset, not {variant!r}")
        if benchmark not in meta.get("benchmarks", {}):
            raise DatasetNotPreparedError(
                f"{root}: benchmark {benchmark!r} was not prepared (prepared: {', '.join(meta.get('benchmarks', {}))}); "
                f"run `skelrobust data prepare {variant} --raw-dir DIR --out {root} --dataset-option benchmarks={benchmark}`"
            )
        if not meta["benchmarks"][benchmark].get(split):
            raise DataError(f"{root}: the {benchmark} {split} split is empty (the raw folder held no such samples)")
        extra = {"benchmark": benchmark, "format": "prepared", "skipped": meta.get("skipped", {}),
                 "truncated": meta.get("truncated", {}), "dropped_frames": meta.get("dropped_frames", 0)}
        fields = {k: v for k, v in common.items() if k != "split"}
        return open_split(root, benchmark, split, meta.get(STAMP_KEY), meta=extra, **fields)

    return load


def _prepare(variant: str):
    def prepare(raw_dir: Path, out_dir: Path, **options: Any) -> dict[str, Any]:
        return ntu.prepare_ntu(variant, raw_dir, out_dir, **options)

    return prepare


for _variant, _desc in (
    ("ntu60", "NTU RGB+D 60 (56,578 usable samples; benchmarks xsub, xview); bring the raw .skeleton files"),
    ("ntu120", "NTU RGB+D 120 (113,945 usable samples; benchmarks xsub, xset); bring the raw .skeleton files"),
):
    register_dataset(
        DatasetSpec(
            name=_variant,
            loader=_loader(_variant),
            description=_desc,
            layout="ntu25",
            num_classes=60 if _variant == "ntu60" else 120,
            units="m",
            needs_root=True,
            prepare=_prepare(_variant),
            prepare_hint=_hint(_variant),
            options={"benchmark": "xsub"},
            num_persons=2,
        )
    )
