"""Atomic writes: all-or-nothing, and readable by whoever the user's umask lets read their files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from skelrobust.io import atomic_path, atomic_write_json, atomic_write_text


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "results.json", {"a": 1})
        with atomic_path(tmp_path / "adv.npz") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    for name in ("results.json", "adv.npz"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "f.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "f.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert (tmp_path / "f.txt").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
