"""NTU preparation throughput, as a ratio to the floor of reading and tokenising the text files.

Writes N realistic raw ``.skeleton`` files (100 frames; every 5th with a second body), then times, in one
run: (floor) ``read_text().split()`` of every file, the parser alone, and the full ``prepare_ntu`` (parse,
actor selection, writing both benchmarks' memory maps). Prints ms per file, the ratios to the floor and
the projected time for the 56,578 NTU-60 files.

    OMP_NUM_THREADS=1 python bench/bench_ntu_prepare.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from skelrobust.data.ntu import _parse, prepare_ntu


def _body_lines(body_id: str, xyz: np.ndarray) -> list[str]:
    rows = [f"{body_id} 0 1 1 1 1 0 0.05 -0.2 2", "25"]
    rows += [f"{x:.7g} {y:.7g} {z:.7g} 250.1 210.5 960.2 540.3 0.1 0.2 0.3 0.9 2" for x, y, z in xyz]
    return rows


def write_files(raw: Path, n: int, frames: int = 100) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        base = np.stack([rng.uniform(-0.2, 0.2, 25), np.linspace(-0.9, 0.7, 25), rng.uniform(2.8, 3.2, 25)], axis=1)
        lines = [str(frames)]
        for f in range(frames):
            bodies = [("72057594037931101", base + 0.01 * f)]
            if i % 5 == 0:
                bodies.append(("72057594037931102", base + [1.0, 0.0, 0.0]))
            lines.append(str(len(bodies)))
            for body_id, xyz in bodies:
                lines += _body_lines(body_id, xyz)
        path = raw / f"S001C00{1 + i % 3}P{1 + i % 40:03d}R00{1 + (i // 120) % 2}A{1 + (i // 3) % 40:03d}.skeleton"
        path.write_text("\r\n".join(lines) + "\r\n")
        paths.append(path)
    return sorted(set(paths))


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        raw.mkdir()
        files = write_files(raw, n)
        t = time.perf_counter()
        for f in files:
            f.read_text().split()
        floor = time.perf_counter() - t
        t = time.perf_counter()
        for f in files:
            _parse(f)
        parse = time.perf_counter() - t
        t = time.perf_counter()
        prepare_ntu("ntu60", raw, Path(tmp) / "out", progress=False)
        prep = time.perf_counter() - t
    k = len(files)
    print(f"{k} files of 100 frames")
    print(f"floor (read + split) {floor / k * 1e3:.2f} ms/file")
    print(f"parse                {parse / k * 1e3:.2f} ms/file  ratio {parse / floor:.2f}")
    print(f"prepare (2 benchmarks) {prep / k * 1e3:.2f} ms/file  ratio {prep / floor:.2f}")
    print(f"projected NTU-60 (56,578 files): {prep / k * 56578 / 60:.1f} min")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 120)
