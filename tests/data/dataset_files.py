"""The smallest valid files of every registered dataset, in the exact on-disk formats the loaders read.

``WRITERS[name](folder) -> (root, options)`` writes them under ``folder``; ``load_dataset(name, split,
root=root, **options)`` then loads both splits. The dataset contract test and the damaged-file test use them;
a newly registered dataset needs a writer here.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np

Written = tuple[Path | None, dict[str, Any]]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def synthetic(folder: Path) -> Written:
    return None, {"num_subjects": 4, "repetitions": 1}


def npz(folder: Path) -> Written:
    from skelrobust.data.formats.npz import save_npz

    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 6), ("test", 4)):
        data = (_rng(n).standard_normal((n, 3, 8, 25, 1)) * 0.2).astype(np.float32)
        save_npz(folder / f"{split}.npz", data=data, labels=np.arange(n) % 3, layout="ntu25",
                 sample_ids=[f"{split}{i}" for i in range(n)], class_names=["a", "b", "c"])
    return folder, {}


def _skeleton_file(path: Path, frames: int, seed: int) -> None:
    """An NTU ``.skeleton`` file with one body of 25 joints per frame (camera coordinates in metres)."""
    xyz = np.stack([_rng(seed).uniform(-0.2, 0.2, 25), np.linspace(-0.9, 0.7, 25), _rng(seed + 1).uniform(2.8, 3.2, 25)], axis=1)
    lines = [str(frames)]
    for f in range(frames):
        lines += ["1", "1 0 1 1 1 1 0 0.05 -0.2 2", "25"]
        lines += [f"{x + 0.01 * f:.6f} {y:.6f} {z:.6f} 250 210 960 540 0.1 0.2 0.3 0.9 2" for x, y, z in xyz]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("ascii"))


def _ntu(folder: Path, variant: str) -> Written:
    from skelrobust.data.ntu import prepare_ntu

    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    # subject 1 trains and subject 3 tests in both variants' cross-subject benchmark
    for name, seed in (("S001C001P001R001A001", 0), ("S001C002P001R001A002", 1), ("S001C001P003R001A003", 2)):
        _skeleton_file(raw / f"{name}.skeleton", 6, seed)
    prepare_ntu(variant, raw, folder / variant, benchmarks="xsub", progress=False)
    return folder / variant, {}


def ntu60(folder: Path) -> Written:
    return _ntu(folder, "ntu60")


def ntu120(folder: Path) -> Written:
    return _ntu(folder, "ntu120")


def nw_ucla(folder: Path) -> Written:
    from skelrobust.data.formats.nwucla import prepare

    raw = folder / "all_sqe"
    raw.mkdir(parents=True, exist_ok=True)
    for i, (name, label) in enumerate((("a01_s01_e00_v01", 1), ("a12_s02_e01_v02", 10), ("a08_s03_e02_v03", 7))):
        record = {"file_name": name, "skeletons": _rng(i).normal(size=(6, 20, 3)).round(4).tolist(), "label": label}
        (raw / f"{name}.json").write_text(json.dumps(record))
    prepare(raw, folder / "ucla", progress=False)
    return folder / "ucla", {}


def _robustbenchhar(folder: Path, shape: tuple[int, ...], classes: int) -> Written:
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("Train", 4), ("Test", 2)):
        clips = _rng(n).normal(size=(n, *shape)).astype(np.float32)
        np.savez(folder / f"class{split}.npz", clips=clips, classes=np.arange(n) % classes)
    return folder, {}


def robustbenchhar_hdm05(folder: Path) -> Written:
    return _robustbenchhar(folder, (60, 75), 65)


def robustbenchhar_ntu60(folder: Path) -> Written:
    return _robustbenchhar(folder, (3, 60, 25, 2), 60)


def robustbenchhar_ntu120(folder: Path) -> Written:
    return _robustbenchhar(folder, (3, 60, 25, 2), 120)


def pyskl(folder: Path) -> Written:
    folder.mkdir(parents=True, exist_ok=True)
    names = ["S001C001P001R001A001", "S001C001P003R001A002", "S001C002P002R001A003"]
    annotations = [{"frame_dir": n, "label": i, "keypoint": _rng(i).normal(size=(1, 6, 25, 3)).astype(np.float32),
                    "total_frames": 6} for i, n in enumerate(names)]
    content = {"split": {"xsub_train": [names[0], names[2]], "xsub_val": [names[1]]}, "annotations": annotations}
    path = folder / "ntu60_3danno.pkl"
    path.write_bytes(pickle.dumps(content, protocol=4))
    return path, {}


def msr_action3d(folder: Path) -> Written:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frames in (("a01_s01_e01", 5), ("a20_s02_e01", 7)):
        arr = np.concatenate([_rng(frames).normal(size=(frames, 20, 3)), _rng(1).uniform(size=(frames, 20, 1))], axis=2)
        np.savetxt(folder / f"{name}_skeleton3D.txt", arr.reshape(-1, 4), fmt="%.6f")
    return folder, {}


def utd_mhad(folder: Path) -> Written:
    import scipy.io

    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(folder / "a3_s1_t1_skeleton.mat", {"d_skel": _rng(0).normal(size=(20, 3, 9))})
    scipy.io.savemat(folder / "a27_s2_t4_skeleton.mat", {"d_skel": _rng(1).normal(size=(20, 3, 6))})
    return folder, {}


WRITERS: dict[str, Callable[[Path], Written]] = {
    "synthetic": synthetic,
    "npz": npz,
    "ntu60": ntu60,
    "ntu120": ntu120,
    "nw-ucla": nw_ucla,
    "robustbenchhar-hdm05": robustbenchhar_hdm05,
    "robustbenchhar-ntu60": robustbenchhar_ntu60,
    "robustbenchhar-ntu120": robustbenchhar_ntu120,
    "pyskl": pyskl,
    "msr-action3d": msr_action3d,
    "utd-mhad": utd_mhad,
}
