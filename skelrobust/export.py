"""Export a run's adversarial set in the file formats other projects' training code reads.

Every export holds the adversarial clips with their *true* labels and source sample ids, optionally the
clean clips, the attack configuration, and SHA-256 checksums of the exported arrays (of their raw
float32 / int64 bytes, C order), so an adversarial-training set can be traced to the run that made it.

Formats (``FORMATS``):

- ``npz``: skelrobust's generic skeleton file (keys of :mod:`skelrobust.data.formats.npz`: ``data``
  = adversarial ``(N, C, T, V, M)``, ``labels``, ``layout``, ``class_names``, ``sample_ids``,
  ``lengths``, ``units``, ``name``), read back with ``load_dataset("npz", root=PATH)``. Extra keys:
  ``clean`` (with ``include_clean``), ``indices`` (positions in the source test split) and
  ``skelrobust_meta`` (JSON: attack configuration, source run, checksums).
- ``ctrgcn-npz``: CTR-GCN's prepared-NTU file (also SkateFormer's): ``x_train`` / ``x_test`` float32
  ``(N, T, 150)`` with each frame ``[person 1 25 x xyz | person 2 25 x xyz]`` and one-hot ``y_train`` /
  ``y_test``. ``x_test`` holds the adversarial clips (evaluate a model on them with the feeder's test
  split); ``x_train`` holds them too, followed by the clean clips with ``include_clean`` (adversarial
  training). Needs the ntu25 layout with at most 2 persons. Extra keys ``sample_ids_train``,
  ``sample_ids_test``, ``skelrobust_meta``.
- ``pyskl``: pyskl's annotation pickle ``dict(split=..., annotations=[...])`` written with plain
  ``pickle`` of builtins and numpy arrays only. Each annotation: ``frame_dir`` (the source sample id;
  clean copies get ``<id>_clean``), ``label``, ``keypoint`` float32 ``(M, T, V, C)`` over the sample's
  valid frames, ``total_frames``. Splits: ``adversarial``, ``clean`` (with ``include_clean``), and
  ``adv_val`` (adversarial) / ``adv_train`` (adversarial + clean), so pyskl configs and
  ``load_dataset("pyskl", root=PATH, benchmark="adv")`` read them. Extra top-level key ``skelrobust``.
- ``robustbenchhar``: the prior benchmark's ``classTrain.npz`` (``clips``, ``classes``) in its layout:
  ``(N, 3, T, 25, M)`` for ntu25, ``(N, T, 75)`` joint-interleaved xyz for hdm05 (its models assume
  T = 60). ``PATH`` is a folder (the file is ``PATH/classTrain.npz``) or an ``.npz`` file name. Extra
  keys ``clean_clips`` (with ``include_clean``), ``sample_ids``, ``skelrobust_meta``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError
from .io import atomic_path
from .benchmark.run_folder import load_run

logger = logging.getLogger(__name__)

FORMATS = ("npz", "ctrgcn-npz", "pyskl", "robustbenchhar")


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's raw bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _meta(run_dir: Path, results: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    keys = ("attack", "threat_model", "attack_config", "surrogate", "dataset", "layout", "eps", "eps_unit", "norm",
            "steps", "targeted", "compat", "seed", "n_samples", "white_box_success_rate")
    return {
        "source_run": str(run_dir.resolve()),
        "skelrobust_version": results.get("provenance", {}).get("skelrobust"),
        **{k: results.get(k) for k in keys},
        "checksums_sha256": {name: array_sha256(a) for name, a in arrays.items()},
    }


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def export_run(run_dir: str | Path, fmt: str, out: str | Path, include_clean: bool = False) -> dict[str, Any]:
    """Write the adversarial set of the finished run in ``run_dir`` to ``out`` in format ``fmt``.

    Returns:
        ``{"format", "path", "n", "include_clean", "checksums_sha256"}``.

    Raises:
        ConfigError: unknown format, no finished run, or a layout the format cannot hold.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")
    run_dir = Path(run_dir).expanduser()
    results, z = load_run(run_dir)
    adversarial, clean = z["adversarial"].astype(np.float32), z["clean"].astype(np.float32)
    labels = z["labels"].astype(np.int64)
    ids = [str(s) for s in z["sample_ids"]]
    layout = str(z["layout"])
    class_names = [str(c) for c in z["class_names"]]
    lengths = z["lengths"].astype(np.int64)
    out = Path(out).expanduser()
    _check_destination(out, folder=fmt == "robustbenchhar" and out.suffix != ".npz")
    checked = {"adversarial": adversarial, "labels": labels, **({"clean": clean} if include_clean else {})}
    meta = _meta(run_dir, results, checked)
    writer = {"npz": _npz, "ctrgcn-npz": _ctrgcn, "pyskl": _pyskl, "robustbenchhar": _robustbenchhar}[fmt]
    path = writer(out, adversarial=adversarial, clean=clean if include_clean else None, labels=labels, ids=ids,
                  layout=layout, class_names=class_names, lengths=lengths, meta=meta, results=results, z=z)
    return {"format": fmt, "path": str(path), "n": int(labels.shape[0]), "include_clean": include_clean,
            "checksums_sha256": meta["checksums_sha256"]}


def _check_destination(out: Path, folder: bool) -> None:
    """Refuse ``--out`` when it cannot be written as asked: a folder for a file format, a file for a folder
    format, or a path under an existing file."""
    if folder and out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; the robustbenchhar format writes a folder (or give an .npz file name)")
    if not folder and out.is_dir():
        raise ConfigError(f"--out {out} is a folder; this format writes one file: give a file name")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--out {out}: {parent} is a file, not a folder")
            break


def _npz(out: Path, *, adversarial: np.ndarray, clean: np.ndarray | None, labels: np.ndarray, ids: list[str],
         layout: str, class_names: list[str], lengths: np.ndarray, meta: dict[str, Any], results: dict[str, Any],
         z: dict[str, np.ndarray]) -> Path:
    arrays = {
        "data": adversarial,
        "labels": labels,
        "layout": np.array(layout),
        "class_names": np.array(class_names, dtype=str),
        "sample_ids": np.array(ids, dtype=str),
        "lengths": lengths,
        "units": np.array(str(z.get("units", results.get("eps_unit", "m")))),
        "name": np.array(f"{results.get('dataset')}-{results.get('attack')}-adversarial"),
        "indices": z["indices"].astype(np.int64),
        "skelrobust_meta": np.array(json.dumps(meta, default=str)),
    }
    if clean is not None:
        arrays["clean"] = clean
    _save_npz(out, arrays)
    return out


def _ntu_frames(x: np.ndarray, layout: str) -> np.ndarray:
    """(N, 3, T, 25, M<=2) -> (N, T, 150) with each frame [person 1 joints x xyz | person 2 joints x xyz]."""
    n, c, t, v, m = x.shape
    if layout != "ntu25" or c != 3 or v != 25 or m > 2:
        raise ConfigError(f"ctrgcn-npz holds NTU clips (ntu25, 3 coordinates, <= 2 persons); this run is {layout} with shape {x.shape[1:]}")
    if m < 2:
        x = np.concatenate([x, np.zeros((n, c, t, v, 2 - m), dtype=x.dtype)], axis=4)
    return np.ascontiguousarray(x.transpose(0, 2, 4, 3, 1).reshape(n, t, 150))


def _ctrgcn(out: Path, *, adversarial: np.ndarray, clean: np.ndarray | None, labels: np.ndarray, ids: list[str],
            layout: str, class_names: list[str], lengths: np.ndarray, meta: dict[str, Any], results: dict[str, Any],
            z: dict[str, np.ndarray]) -> Path:
    one_hot = np.eye(len(class_names), dtype=np.float32)[labels]
    x_test = _ntu_frames(adversarial, layout)
    x_train, y_train, ids_train = x_test, one_hot, list(ids)
    if clean is not None:
        x_train = np.concatenate([x_test, _ntu_frames(clean, layout)])
        y_train = np.concatenate([one_hot, one_hot])
        ids_train = ids + [f"{i}_clean" for i in ids]
    _save_npz(out, {
        "x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": one_hot,
        "sample_ids_train": np.array(ids_train, dtype=str), "sample_ids_test": np.array(ids, dtype=str),
        "skelrobust_meta": np.array(json.dumps(meta, default=str)),
    })
    return out


def _pyskl(out: Path, *, adversarial: np.ndarray, clean: np.ndarray | None, labels: np.ndarray, ids: list[str],
           layout: str, class_names: list[str], lengths: np.ndarray, meta: dict[str, Any], results: dict[str, Any],
           z: dict[str, np.ndarray]) -> Path:
    def annotation(clip: np.ndarray, frame_dir: str, label: int, length: int) -> dict[str, Any]:
        keypoint = np.ascontiguousarray(clip[:, :length].transpose(3, 1, 2, 0), dtype=np.float32)  # (M, T, V, C)
        return {"frame_dir": frame_dir, "label": int(label), "keypoint": keypoint, "total_frames": int(length)}

    annotations = [annotation(adversarial[i], ids[i], labels[i], lengths[i]) for i in range(len(ids))]
    split: dict[str, list[str]] = {"adversarial": list(ids), "adv_val": list(ids)}
    if clean is not None:
        clean_ids = [f"{i}_clean" for i in ids]
        annotations += [annotation(clean[i], clean_ids[i], labels[i], lengths[i]) for i in range(len(ids))]
        split["clean"] = clean_ids
        split["adv_train"] = list(ids) + clean_ids
    else:
        split["adv_train"] = list(ids)
    content = {"split": split, "annotations": annotations, "skelrobust": json.loads(json.dumps(meta, default=str))}
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(content, fh, protocol=4)
    return out


def _robustbenchhar(out: Path, *, adversarial: np.ndarray, clean: np.ndarray | None, labels: np.ndarray, ids: list[str],
                    layout: str, class_names: list[str], lengths: np.ndarray, meta: dict[str, Any],
                    results: dict[str, Any], z: dict[str, np.ndarray]) -> Path:
    def clips(x: np.ndarray) -> np.ndarray:
        if layout == "hdm05":
            n, c, t, v, m = x.shape
            if m != 1 or c != 3:
                raise ConfigError(f"robustbenchhar HDM05 clips hold one person in 3-D; this run has shape {x.shape[1:]}")
            return np.ascontiguousarray(x[..., 0].transpose(0, 2, 3, 1).reshape(n, t, v * c))
        if layout == "ntu25":
            return np.ascontiguousarray(x)
        raise ConfigError(f"the robustbenchhar format holds the ntu25 or hdm05 layout; this run is {layout}")

    if adversarial.shape[2] != 60:
        logger.warning("the prior benchmark's models assume 60 frames; these clips have %d", adversarial.shape[2])
    path = out / "classTrain.npz" if out.suffix != ".npz" else out
    arrays = {"clips": clips(adversarial), "classes": labels, "sample_ids": np.array(ids, dtype=str),
              "skelrobust_meta": np.array(json.dumps(meta, default=str))}
    if clean is not None:
        arrays["clean_clips"] = clips(clean)
    _save_npz(path, arrays)
    return path
