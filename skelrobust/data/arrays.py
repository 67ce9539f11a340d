"""Array helpers shared by the dataset loaders: lazy ``.npz`` members and padding to a common length.

Large prepared files (CTR-GCN's ``NTU60_CS.npz`` is ~7 GB) must not be read eagerly. ``np.load`` on an
``.npz`` always reads a member whole, but ``np.savez`` stores members uncompressed, so such a member is a
plain ``.npy`` file at a fixed offset inside the zip archive and can be memory-mapped directly.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError

_LOCAL_HEADER_SIZE = 30  # fixed part of a zip local file header


def npz_keys(path: Path) -> list[str]:
    """Member names of an ``.npz`` file without the ``.npy`` suffix; :class:`DataError` if it is not a zip."""
    try:
        with zipfile.ZipFile(path) as zf:
            return [n[:-4] if n.endswith(".npy") else n for n in zf.namelist()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({exc})") from exc


def npz_member(path: Path, key: str, mmap: bool = True) -> np.ndarray:
    """One array of an ``.npz`` file, memory-mapped (read-only) when it is stored uncompressed.

    Falls back to an eager ``np.load(allow_pickle=False)`` read for compressed members, object arrays
    or Fortran-ordered arrays. Never unpickles.

    Raises:
        DataError: the archive or member is missing, truncated or not a plain array.
    """
    name = f"{key}.npy"
    try:
        with zipfile.ZipFile(path) as zf:
            if name not in zf.namelist():
                raise DataError(f"{path}: no array {key!r}; it holds {', '.join(npz_keys(path))}")
            info = zf.getinfo(name)
            if mmap and info.compress_type == zipfile.ZIP_STORED:
                arr = _memmap_stored_member(path, info)
                if arr is not None:
                    return arr
        with np.load(path, allow_pickle=False) as npz:
            return np.asarray(npz[key])
    except DataError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot read array {key!r} ({exc})") from exc


def _memmap_stored_member(path: Path, info: zipfile.ZipInfo) -> np.ndarray | None:
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(_LOCAL_HEADER_SIZE)
        if len(header) < _LOCAL_HEADER_SIZE or header[:4] != b"PK\x03\x04":
            return None
        name_len = int.from_bytes(header[26:28], "little")
        extra_len = int.from_bytes(header[28:30], "little")
        start = info.header_offset + _LOCAL_HEADER_SIZE + name_len + extra_len
        fh.seek(start)
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            return None
        if fortran or dtype.hasobject:
            return None
        offset = fh.tell()
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset - start + expected > info.file_size:
        raise DataError(f"{path}: array {info.filename!r} is truncated")
    if expected == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=tuple(shape))


def pad_stack(sequences: Sequence[np.ndarray], frames: int | None = None, persons: int | None = None) -> np.ndarray:
    """Stack ``(C, t_i, V, M_i)`` sequences into float32 ``(N, C, T, V, M)``, zero-padding frames and persons.

    Args:
        sequences: One array per sample; ``C`` and ``V`` must agree.
        frames: Target ``T`` (default: the longest sequence). Must be >= every ``t_i``.
        persons: Target ``M`` (default: the largest ``M_i``).
    """
    c, _, v, _ = sequences[0].shape
    t = frames if frames is not None else max(s.shape[1] for s in sequences)
    m = persons if persons is not None else max(s.shape[3] for s in sequences)
    out = np.zeros((len(sequences), c, t, v, m), dtype=np.float32)
    for i, seq in enumerate(sequences):
        out[i, :, : seq.shape[1], :, : seq.shape[3]] = seq
    return out
