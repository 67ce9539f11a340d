"""``load_dataset`` time with a matching validation stamp (structural checks only) vs the full content scan.

Two sets, each loaded both ways in one run (median of repeated loads, page cache warm, so the scan figure
is a lower bound: on a cold 10 GB NTU-60 split it is bound by the disk instead):

- the default ``synthetic`` test split (1,280 x 3 x 64 x 25 x 2 float32, 49 MB);
- a prepared NTU-60-shaped folder of N samples (3 x 300 x 25 x 2 float32, 180 kB each), written with the
  real ``SplitWriter`` + ``validate_prepared`` and read by ``load_dataset("ntu60", ...)``.

"Full scan" is the same load with the stamp removed from ``meta.json``. Prints seconds per load, the ratio
and the scan cost projected to NTU-60 xsub train (40,091 samples).

    OMP_NUM_THREADS=1 python bench/bench_load_stamp.py [N]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from skelrobust.data import load_dataset
from skelrobust.data.formats.synthetic import cache_folder
from skelrobust.data.ntu import class_names
from skelrobust.data.prepared import SplitWriter, validate_prepared, write_meta
from skelrobust.data.stamp import STAMP_KEY
from skelrobust.layouts import get_layout

NTU60_XSUB_TRAIN = 40091


def _median_load(load: Callable[[], object], repeats: int = 5) -> tuple[float, object]:
    load()  # warm the page cache
    times, ds = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        ds = load()
        times.append(time.perf_counter() - t)
    return statistics.median(times), ds


def _both_ways(meta_path: Path, load: Callable[[], object]) -> tuple[float, float]:
    stamped, ds = _median_load(load)
    assert ds.content_checked, "the stamp did not match"
    text = meta_path.read_text()
    meta = json.loads(text)
    del meta[STAMP_KEY]
    meta_path.write_text(json.dumps(meta))
    try:
        scanned, ds = _median_load(load)
        assert not ds.content_checked
    finally:
        meta_path.write_text(text)
    return stamped, scanned


def _write_ntu(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    writer = SplitWriter(root / "xsub", "train", (n, 3, 300, 25, 2))
    for i in range(n):
        t = int(rng.integers(30, 300))
        writer.write(i, rng.normal(size=(3, t, 25, 2)).astype(np.float32), int(rng.integers(60)), f"S001C001P{i:03d}R001A{1 + i % 60:03d}x{i}")
    writer.close()
    names = class_names("ntu60")
    stamp = validate_prepared(root, [("xsub", "train")], name="ntu60", layout=get_layout("ntu25"), class_names=names, units="m")
    write_meta(root, {"name": "ntu60", "layout": "ntu25", "units": "m", "class_names": names, "num_frames": 300,
                      "benchmarks": {"xsub": {"train": n, "test": 0}}, STAMP_KEY: stamp})


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SKELROBUST_HOME"] = tmp
        load_dataset("synthetic", "test")
        meta_path = cache_folder() / "test" / "meta.json"
        stamped, scanned = _both_ways(meta_path, lambda: load_dataset("synthetic", "test"))
        print(f"synthetic test (1280 samples, 49 MB): stamped {stamped * 1e3:.2f} ms, full scan {scanned * 1e3:.2f} ms, "
              f"ratio {scanned / stamped:.0f}x")
        root = Path(tmp) / "ntu60"
        _write_ntu(root, n)
        stamped, scanned = _both_ways(root / "meta.json", lambda: load_dataset("ntu60", "train", root=root, benchmark="xsub"))
        mb = n * 3 * 300 * 25 * 2 * 4 / 1e6
        print(f"prepared ntu60 xsub train ({n} samples, {mb:.0f} MB): stamped {stamped * 1e3:.2f} ms, "
              f"full scan {scanned * 1e3:.2f} ms, ratio {scanned / stamped:.0f}x; "
              f"warm scan projected to {NTU60_XSUB_TRAIN} samples: {scanned / n * NTU60_XSUB_TRAIN:.1f} s per load")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
