"""Damaged versions of every file a dataset loader or preparation reads: one clear line, never a traceback.

Each file of each format's smallest valid dataset (``dataset_files.WRITERS``: prepared folders, npz,
pickles, text, MATLAB, the synthetic cache) is in turn emptied, truncated, bit-flipped or replaced by
content of the wrong types. Loading both splits must then either succeed or raise a
:class:`SkelRobustError` whose message is one line; a checksummed file (npz) that still loads must give the
same data as before, and nothing may be written next to the data. Preparation inputs (NTU ``.skeleton``,
NW-UCLA ``.json``) get the same treatment, and a failed preparation leaves no array and no ``meta.json``.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from dataset_files import WRITERS
from skelrobust.data import DATASETS, load_dataset
from skelrobust.errors import SkelRobustError


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncate(path: Path) -> None:
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])


def _flip(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    i = int(len(blob) * 0.6)
    blob[i] ^= 0x10
    path.write_bytes(bytes(blob))


def _retype(path: Path) -> None:
    """The same kind of file holding values of the wrong types."""
    suffix = path.suffix
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
        with open(path, "wb") as fh:
            np.savez(fh, **{k: np.array("not an array of numbers") for k in keys})
    elif suffix == ".npy":
        np.save(path, np.array(["x", "y"]))
    elif suffix == ".json":
        path.write_text(json.dumps(["a list", "where", "an object", "belongs"]))
    elif suffix == ".pkl":
        path.write_bytes(pickle.dumps({"split": "xsub_train", "annotations": "none"}))
    elif suffix == ".mat":
        import scipy.io

        scipy.io.savemat(path, {"d_skel": "text"})
    else:  # text formats
        path.write_text("x y z\nnot numbers at all\n")


DAMAGE: dict[str, Callable[[Path], None]] = {"empty": _empty, "truncated": _truncate, "bit-flipped": _flip, "retyped": _retype}


def _files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _load_all(name: str, root: Path | None, options: dict) -> list | None:
    """Both splits' arrays, or None after a one-line SkelRobustError (anything else fails the test)."""
    try:
        return [np.asarray(load_dataset(name, split, root=root, **options).data) for split in DATASETS.get(name).splits]
    except SkelRobustError as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message, f"{name}: not one line: {message!r}"
        return None


def _targets(name: str, folder: Path) -> tuple[Path | None, dict, list[Path]]:
    """Write the dataset; return its root, options and the files the loader reads."""
    root, options = WRITERS[name](folder / "data")
    if name == "synthetic":  # its files are the generated cache: write one into a folder given as root
        root = folder / "cache"
        root.mkdir(parents=True)
    load_dataset(name, "train", root=root, **options)
    read = folder / "cache" if name == "synthetic" else root
    files = [p for p in _files(read if read.is_dir() else read.parent) if "raw" not in p.parts and "all_sqe" not in p.parts]
    return root, options, files


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_damaged_dataset_file_gives_one_line_or_the_same_data(name: str, tmp_path: Path) -> None:
    checksummed = (".npz",)
    base = tmp_path / "base"
    root, options, files = _targets(name, base)
    reference = _load_all(name, root, options)
    assert reference is not None
    assert files, name
    failures = []
    for target in files:
        for how, damage in DAMAGE.items():
            work = tmp_path / "work"
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(base, work)
            moved = work / target.relative_to(base)
            damage(moved)
            before = _files(work)
            try:
                loaded = _load_all(name, None if root is None else work / root.relative_to(base), options)
            except Exception as exc:  # collected, so one run lists every file that still gives a traceback
                failures.append(f"{how} {target.relative_to(base)}: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            if loaded is not None and moved.suffix in checksummed:
                if not all(np.array_equal(a, b) for a, b in zip(loaded, reference)):
                    failures.append(f"{how} {target.relative_to(base)}: loaded other data")
            if sorted(_files(work)) != sorted(before):
                failures.append(f"{how} {target.relative_to(base)}: left files behind")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", ["ntu60", "nw-ucla"])
def test_damaged_preparation_input_fails_cleanly(name: str, tmp_path: Path) -> None:
    from skelrobust.data.formats.nwucla import prepare as prepare_ucla
    from skelrobust.data.ntu import prepare_ntu

    WRITERS[name](tmp_path / "base")
    raw_name = "raw" if name == "ntu60" else "all_sqe"
    raw_files = sorted((tmp_path / "base" / raw_name).iterdir())
    prepare = (lambda raw, out: prepare_ntu("ntu60", raw, out, benchmarks="xsub", progress=False)) if name == "ntu60" \
        else (lambda raw, out: prepare_ucla(raw, out, progress=False))
    for target in raw_files:
        for how, damage in DAMAGE.items():
            raw = tmp_path / f"raw-{how}"
            shutil.rmtree(raw, ignore_errors=True)
            shutil.copytree(tmp_path / "base" / raw_name, raw)
            damage(raw / target.name)
            out = tmp_path / f"out-{how}-{target.stem}"
            try:
                prepare(raw, out)
            except SkelRobustError as exc:
                assert "\n" not in str(exc), str(exc)
                leftovers = [p.name for p in out.rglob("*") if p.is_file()] if out.exists() else []
                assert leftovers == [], f"{how} {target.name}: {leftovers}"
            else:  # a flip inside a number can leave a valid file: then the folder is complete and loads
                _load_all(name, out, {})
