"""Writers of small dataset fixtures in the exact on-disk formats the loaders read."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pytest

Body = tuple[str, np.ndarray]  # (bodyID, joints (25, 3))


def skeleton_text(frames: Sequence[Sequence[Body]], newline: str = "\r\n") -> str:
    """An NTU ``.skeleton`` file: per frame a list of (bodyID, (25, 3) xyz) bodies."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, xyz in bodies:
            lines.append(f"{body_id} 0 1 1 1 1 0 0.05 -0.2 2")
            lines.append("25")
            for j in range(25):
                x, y, z = (float(v) for v in xyz[j])
                lines.append(f"{x:.7g} {y:.7g} {z:.7g} 250.1 210.5 960.2 540.3 0.1 0.2 0.3 0.9 2")
    return newline.join(lines) + newline


def pose(offset: float = 0.0, seed: int = 0) -> np.ndarray:
    """A (25, 3) body with distinct joints, taller (y) than wide (x), as a standing person is."""
    rng = np.random.default_rng(seed)
    xyz = np.stack([rng.uniform(-0.2, 0.2, 25), np.linspace(-0.9, 0.7, 25), rng.uniform(2.8, 3.2, 25)], axis=1)
    xyz[:, 0] += offset
    return xyz.astype(np.float32)


@pytest.fixture
def write_skeleton() -> Callable[..., Path]:
    """``write(path, frames, newline="\\r\\n")`` -> path of a written NTU ``.skeleton`` file."""

    def write(path: Path, frames: Sequence[Sequence[Body]], newline: str = "\r\n") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(skeleton_text(frames, newline).encode("ascii"))
        return path

    return write


@pytest.fixture
def ntu_pose() -> Callable[..., np.ndarray]:
    return pose


@pytest.fixture
def ntu_text() -> Callable[..., str]:
    """``skeleton_text(frames, newline)``: the text of an NTU ``.skeleton`` file."""
    return skeleton_text
