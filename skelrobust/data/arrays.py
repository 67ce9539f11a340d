"""Array helpers shared by the dataset loaders: lazy ``.npz`` members and padding to a common length.

Large prepared files (CTR-GCN's ``NTU60_CS.npz`` is ~7 GB) must not be read eagerly. ``np.load`` on an
``.npz`` always reads a member whole, but ``np.savez`` stores members uncompressed, so such a member is a
plain ``.npy`` file at a fixed offset inside the zip archive and can be memory-mapped directly.

A memory map bypasses the zip's CRC-32, which ``np.load`` checks: a flipped byte that still decodes to a
finite float would go unnoticed. So before a member is memory-mapped its CRC is verified once (one
sequential read), and the result is stamped, as prepared folders are (:mod:`.stamp`): a JSON file under
``$SKELROBUST_HOME/cache/npz-verified`` records the file's size and modification time and the CRCs that
matched. Later loads of the unchanged file skip the read; any change to the file means a new check.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError

logger = logging.getLogger(__name__)

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
                verify_member_crc(path, zf, info)
                arr = _memmap_stored_member(path, info)
                if arr is not None:
                    return arr
        with np.load(path, allow_pickle=False) as npz:
            return np.asarray(npz[key])
    except DataError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot read array {key!r} ({exc})") from exc


def verify_member_crc(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Check the CRC-32 of one member of ``zf`` (the open archive ``path``), unless stamped as checked.

    Raises:
        DataError: the member's bytes do not match the CRC the archive records (the file is damaged).
    """
    stamp_file = _crc_stamp_file(path)
    st = os.stat(path)  # before reading: a file changed during the check does not match the stamp later
    now = {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}
    stamp = _read_crc_stamp(stamp_file)
    if stamp.get("file") == now and stamp.get("crc", {}).get(info.filename) == info.CRC:
        return
    try:
        with zf.open(info) as member:
            while member.read(1 << 24):
                pass
    except zipfile.BadZipFile as exc:
        raise DataError(
            f"{path}: array {info.filename[:-4]!r} is damaged ({exc}): its bytes do not match the checksum the "
            "archive records; write or copy the file again"
        ) from exc
    crc = dict(stamp.get("crc", {})) if stamp.get("file") == now else {}
    crc[info.filename] = info.CRC
    try:
        from ..io import atomic_write_json

        atomic_write_json(stamp_file, {"path": str(Path(path).resolve()), "file": now, "crc": crc})
    except OSError as exc:  # a read-only cache only costs the check again next time
        logger.info("cannot record the CRC check of %s (%s)", path, exc)


def _crc_stamp_file(path: Path) -> Path:
    from ..paths import skelrobust_home

    key = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:32]
    return skelrobust_home() / "cache" / "npz-verified" / f"{key}.json"


def _read_crc_stamp(stamp_file: Path) -> dict:
    try:
        stamp = json.loads(stamp_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) and isinstance(stamp.get("crc"), dict) else {}


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
