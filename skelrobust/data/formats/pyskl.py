"""``pyskl``: pyskl's 3-D skeleton annotation files (``ntu60_3danno.pkl``, ``ntu120_3danno.pkl``...).

Format (pyskl ``tools/data/README.md``)::

    dict(split=dict(xsub_train=[frame_dir...], xsub_val=[...], xview_train=[...], ...),
         annotations=[dict(frame_dir=str, label=int (0-based), keypoint=ndarray (M, T, V, C), total_frames=int), ...])

``load_dataset("pyskl", split, root=FILE.pkl, benchmark="xsub")`` reads split ``<benchmark>_train`` for
``train`` and ``<benchmark>_val`` for ``test``. ``keypoint`` becomes ``(C, T, V, M)``; every sample is
zero-padded to the longest ``total_frames`` and the largest M of the whole file, so both splits share a
shape. Coordinates are kept as stored (pyskl's 3-D NTU files are raw camera metres, not centred).
``keypoint_score`` (2-D files) is not used. The layout defaults to ``ntu25``; V must match it.
Class names are NTU's when the layout is ntu25 and the file has 60 or 120 classes, else ``class_<i>``.

The file is a pickle, and unpickling can run arbitrary code. It is read with :class:`SafeUnpickler`,
which only rebuilds builtin containers and numpy arrays/scalars/dtypes and refuses every other global.
A pickle is read whole into memory.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError, DataError, DatasetNotPreparedError, LayoutMismatchError
from ...layouts import get_layout
from .. import ntu
from ..base import SkeletonDataset
from ..registry import DatasetSpec, register_dataset

#: The only globals a pyskl annotation pickle needs: numpy array/scalar reconstruction, dtypes, sets.
ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),  # protocol-2 pickles encode bytes through it
    }
)


class RefusedGlobalError(pickle.UnpicklingError):
    """The pickle names a global outside :data:`ALLOWED_GLOBALS`."""


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds only builtin containers and numpy arrays; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise RefusedGlobalError(f"refusing to load global {module}.{name}")


def safe_load_pickle(path: Path) -> Any:
    """Unpickle ``path`` with :class:`SafeUnpickler`; :class:`DataError` naming the file on refusal or damage."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    try:
        return SafeUnpickler(io.BytesIO(raw)).load()
    except RefusedGlobalError as exc:
        raise DataError(f"{path}: not a plain pyskl annotation pickle ({exc}); only containers and numpy arrays are allowed") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, ImportError) as exc:
        raise DataError(f"{path}: damaged or truncated pickle ({type(exc).__name__}: {exc})") from None


def _check(path: Path, ann: Any, i: int, layout_joints: int) -> np.ndarray:
    if not isinstance(ann, dict) or not {"frame_dir", "label", "keypoint"} <= set(ann):
        raise DataError(f"{path}: annotation {i} must be a dict with frame_dir, label and keypoint")
    name = ann["frame_dir"]
    kp = ann["keypoint"]
    if not isinstance(kp, np.ndarray) or kp.ndim != 4 or kp.dtype.kind != "f":
        raise DataError(f"{path}: sample {name!r}: keypoint must be a float array (M, T, V, C)")
    m, t, v, c = kp.shape
    if v != layout_joints:
        raise LayoutMismatchError(f"{path}: sample {name!r} has {v} joints, expected {layout_joints} for the chosen layout")
    if c not in (2, 3) or m == 0 or t == 0:
        raise DataError(f"{path}: sample {name!r}: keypoint shape {kp.shape}, expected M >= 1, T >= 1, C = 2 or 3")
    if "total_frames" in ann and int(ann["total_frames"]) != t:
        raise DataError(f"{path}: sample {name!r}: total_frames {ann['total_frames']} but keypoint has {t} frames")
    if not np.isfinite(kp).all():
        raise DataError(f"{path}: sample {name!r}: keypoint contains NaN or infinite values")
    return kp


def load(split: str, root: Path | None, benchmark: str = "xsub", layout: str = "ntu25") -> SkeletonDataset:
    if root is None or not root.is_file():
        raise DatasetNotPreparedError(f"dataset 'pyskl' needs --root pointing at a pyskl .pkl annotation file (got {root})")
    lay = get_layout(layout)
    content = safe_load_pickle(root)
    if not isinstance(content, dict) or not isinstance(content.get("split"), dict) or not isinstance(content.get("annotations"), list):
        raise DataError(f"{root}: expected dict(split=dict(...), annotations=[...]) as pyskl writes")
    key = f"{benchmark}_{'train' if split == 'train' else 'val'}"
    if key not in content["split"]:
        raise ConfigError(f"{root}: no split {key!r}; it has {', '.join(sorted(content['split']))}")
    anns = content["annotations"]
    arrays = [_check(root, a, i, lay.num_joints) for i, a in enumerate(anns)]
    by_name = {a["frame_dir"]: i for i, a in enumerate(anns)}
    wanted = list(content["split"][key])
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise DataError(f"{root}: split {key!r} names {len(unknown)} sample(s) without annotation, e.g. {unknown[0]!r}")
    if not wanted:
        raise DataError(f"{root}: split {key!r} is empty")
    t = max(a.shape[1] for a in arrays)
    m = max(a.shape[0] for a in arrays)
    c = arrays[0].shape[3]
    data = np.zeros((len(wanted), c, t, lay.num_joints, m), dtype=np.float32)
    lengths = np.zeros(len(wanted), dtype=np.int64)
    labels = np.zeros(len(wanted), dtype=np.int64)
    for row, name in enumerate(wanted):
        i = by_name[name]
        kp = arrays[i]
        if kp.shape[3] != c:
            raise DataError(f"{root}: sample {name!r} has C = {kp.shape[3]}, other samples have {c}")
        data[row, :, : kp.shape[1], :, : kp.shape[0]] = kp.transpose(3, 1, 2, 0)
        lengths[row] = kp.shape[1]
        try:
            labels[row] = int(anns[i]["label"])
        except (TypeError, ValueError):
            raise DataError(f"{root}: sample {name!r} has a non-integer label {anns[i]['label']!r}") from None
    num_classes = max(int(a["label"]) for a in anns) + 1
    if lay.name == "ntu25" and num_classes in (60, 120):
        names = ntu.class_names("ntu60" if num_classes == 60 else "ntu120")
    else:
        names = [f"class_{i}" for i in range(num_classes)]
    return SkeletonDataset(name="pyskl", split=split, data=data, labels=labels, layout=lay, class_names=names,
                           sample_ids=[str(n) for n in wanted], lengths=lengths, units="m", source=str(root),
                           meta={"format": "pyskl", "benchmark": benchmark, "pyskl_split": key})


register_dataset(
    DatasetSpec(
        name="pyskl",
        loader=load,
        description="pyskl 3-D annotation .pkl (ntu60_3danno.pkl...); root = the file; option benchmark (xsub/xview/xset)",
        layout="ntu25",
        num_classes=None,
        units="m",
        needs_root=True,
        prepare_hint="Pass --root to a pyskl annotation file such as ntu60_3danno.pkl.",
        options={"benchmark": "xsub", "layout": "ntu25"},
    )
)
