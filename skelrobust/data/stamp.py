"""Validation stamps: remember that the files of a prepared folder or cache passed the content scan.

:func:`~skelrobust.data.base.validate_content` reads every sample; for a prepared NTU-60 folder that is
~10 GB per ``load_dataset`` call. The scan is instead run once, when the files are written, and the
writer records in the folder's ``meta.json`` (written atomically, after the data) a stamp::

    {"validator_version": 1, "files": {"xsub/test_data.npy": {"size": 123, "mtime_ns": 456}, ...}}

A loader whose files all still have the stamped size and modification time (and whose stamp comes from
the current validator version) builds the dataset with ``content_checked=True``: structural checks only.
Any difference (a file replaced, edited, truncated, re-prepared by an older version, or no stamp at all)
means a full scan again. Size + ``mtime_ns`` is what ``make`` and ``rsync`` trust; an edit that keeps
both (same size, clock reset by hand) is the one change it cannot see.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable

from .base import CONTENT_VALIDATOR_VERSION

logger = logging.getLogger(__name__)

#: Key of the stamp inside a ``meta.json``.
STAMP_KEY = "content_validated"


def _stat(path: Path) -> dict[str, int]:
    st = os.stat(path)
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def make_stamp(folder: Path, names: Iterable[str], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Stamp of the files ``names`` (relative to ``folder``) as they are now on disk.

    Take it BEFORE running the content scan, so that a file changed during the scan no longer matches.

    Args:
        folder: Folder the names are relative to.
        names: Files (``/``-separated relative paths) whose content is about to be validated.
        previous: An older stamp of the same folder whose entries for other files are kept (when the
            validator version is the current one), e.g. benchmarks prepared by an earlier call.
    """
    files: dict[str, Any] = {}
    if previous and previous.get("validator_version") == CONTENT_VALIDATOR_VERSION:
        files.update(previous.get("files") or {})
    files.update({name: _stat(Path(folder) / name) for name in names})
    return {"validator_version": CONTENT_VALIDATOR_VERSION, "files": files}


def stamp_matches(folder: Path, stamp: Any, names: Iterable[str]) -> bool:
    """Whether every file of ``names`` has exactly the size and mtime recorded in ``stamp``.

    Returns False (and logs why at INFO) for a missing or malformed stamp, another validator version, a
    file not in the stamp, or a changed file.
    """
    if not isinstance(stamp, dict) or stamp.get("validator_version") != CONTENT_VALIDATOR_VERSION:
        logger.info("%s: no current validation stamp; scanning every sample", folder)
        return False
    files = stamp.get("files")
    if not isinstance(files, dict):
        return False
    for name in names:
        try:
            now = _stat(Path(folder) / name)
        except OSError:
            return False
        if files.get(name) != now:
            logger.info("%s: %s changed since it was validated; scanning every sample", folder, name)
            return False
    return True
