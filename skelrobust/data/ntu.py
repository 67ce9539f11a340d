"""NTU RGB+D 60/120: the raw ``.skeleton`` reader, the two-actor selection rule, splits and preparation.

Raw format (one text file per sample, LF or CRLF; Shahroudy et al., CVPR 2016)::

    <numFrames>
    per frame:  <numBodies>
      per body: <bodyID> <clipedEdges> <handLeftConfidence> <handLeftState> <handRightConfidence>
                <handRightState> <isRestricted> <leanX> <leanY> <trackingState>
                <numJoints = 25>
                25 x: <x> <y> <z> <depthX> <depthY> <colorX> <colorY> <oriW> <oriX> <oriY> <oriZ> <trackingState>

``x y z`` are camera-space metres. The file name ``SsssCcccPpppRrrrAaaa`` gives setup, camera, performer,
replication and action (label = action - 1).

Preparation (:func:`prepare_ntu`) follows the CTR-GCN/SGN pipeline (``get_raw_skes_data.py`` +
``get_raw_denoised_data.py``), which is the standard for NTU:

1. the official missing-skeleton samples (302 for NTU-60, 535 for NTU-120; package data) are skipped and
   reported; frames with no body are dropped;
2. with several body IDs: bodies seen in <= 11 frames are dropped; a body whose frames are "noisy"
   (x-range > 0.8 y-range) in >= 69.754 % of its frames is dropped, otherwise its motion is
   ``min(motion, motion over its non-noisy frames)``; motion = sum over x, y, z of the variance of all
   its joint positions;
3. bodies are taken by decreasing motion: the first is actor 1; a further body joins actor 1's slot if it
   shares no frame with it, else actor 2's slot if it shares no frame with that, else it is discarded;
4. frames where both actors are missing are dropped.

Two deliberate differences from that code, both toward the data's real timing: a body is placed at the
frames where it actually appears (the reference packs a body that vanishes and reappears into
consecutive frames), and two intervals sharing exactly one frame count as overlapping. Coordinates are
kept raw (no centring: centring is each victim's input adapter's job). Sequences are zero-padded to
T = 300 (the NTU maximum); longer ones are truncated and reported.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import ConfigError, DataError
from ..layouts import get_layout
from .prepared import SplitWriter, read_meta, validate_prepared, write_meta
from .stamp import STAMP_KEY

logger = logging.getLogger(__name__)

NUM_JOINTS = 25
#: Denoising thresholds of the CTR-GCN / SGN pipeline.
NOISE_LENGTH = 11
NOISE_SPREAD_XY = 0.8
NOISE_SPREAD_RATIO = 0.69754
MAX_FRAMES = 300

_NAME_RE = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")

#: Training subjects of the cross-subject benchmarks (NTU-60: 20 ids; NTU-120: 53 ids).
XSUB60_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
XSUB120_TRAIN = XSUB60_TRAIN + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93,
    94, 95, 97, 98, 100, 103,
)
#: Benchmarks of each variant.
BENCHMARKS = {"ntu60": ("xsub", "xview"), "ntu120": ("xsub", "xset")}
#: Setups and actions of each variant.
_LIMITS = {"ntu60": (17, 60), "ntu120": (32, 120)}


@dataclass(frozen=True)
class SampleName:
    """The fields encoded in an NTU sample name (all 1-based as in the name)."""

    name: str
    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    @classmethod
    def parse(cls, name: str) -> "SampleName":
        m = _NAME_RE.match(name)
        if m is None:
            raise DataError(f"{name!r} is not an NTU sample name (expected SsssCcccPpppRrrrAaaa, e.g. S001C001P001R001A001)")
        return cls(name, *(int(g) for g in m.groups()))


def is_train(sample: SampleName, variant: str, benchmark: str) -> bool:
    """Whether a sample belongs to the training side of ``benchmark`` (test side otherwise)."""
    if benchmark == "xsub":
        return sample.performer in (XSUB60_TRAIN if variant == "ntu60" else XSUB120_TRAIN)
    if benchmark == "xview":
        return sample.camera in (2, 3)
    if benchmark == "xset":
        return sample.setup % 2 == 0
    raise ConfigError(f"unknown NTU benchmark {benchmark!r}; {variant} has {', '.join(BENCHMARKS[variant])}")


def missing_samples(variant: str) -> frozenset[str]:
    """The official list of samples with missing or incomplete skeletons (302 for ntu60, 535 for ntu120)."""
    text = resources.files("skelrobust.data").joinpath(f"resources/{variant}_missing.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def class_names(variant: str) -> list[str]:
    """NTU action names (A001 first); 60 for ntu60, 120 for ntu120."""
    text = resources.files("skelrobust.data").joinpath("resources/ntu120_classes.txt").read_text(encoding="utf-8")
    names = [line.strip() for line in text.splitlines() if line.strip()]
    return names[: _LIMITS[variant][1]]


def _parse(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(joints (B, T, 25, 3) float32, present (B, T) bool)``, bodies in order of first appearance."""
    try:
        tokens = Path(path).read_text(encoding="ascii", errors="strict").split()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read NTU skeleton file ({exc})") from exc
    where = str(path)
    if not tokens:
        raise DataError(f"{where}: empty file, expected an NTU .skeleton text file")
    pos = 0

    def integer(what: str) -> int:
        nonlocal pos
        if pos >= len(tokens):
            raise DataError(f"{where}: file is truncated: expected {what} at token {pos}")
        try:
            value = int(tokens[pos])
        except ValueError:
            raise DataError(f"{where}: expected an integer {what}, found {tokens[pos]!r}") from None
        pos += 1
        return value

    num_frames = integer("the frame count")
    if num_frames < 0:
        raise DataError(f"{where}: negative frame count {num_frames}")
    order: dict[str, int] = {}
    entries: list[tuple[int, int, np.ndarray]] = []  # (body index, frame, joints)
    block = NUM_JOINTS * 12
    for f in range(num_frames):
        num_bodies = integer(f"the body count of frame {f}")
        for b in range(num_bodies):
            if pos + 11 > len(tokens):
                raise DataError(f"{where}: file is truncated in frame {f}, body {b}")
            body_id = tokens[pos]
            pos += 10
            num_joints = integer(f"the joint count of frame {f}, body {b}")
            if num_joints != NUM_JOINTS:
                raise DataError(f"{where}: frame {f}, body {b} has {num_joints} joints, expected {NUM_JOINTS}")
            if pos + block > len(tokens):
                raise DataError(f"{where}: file is truncated in frame {f}, body {b} (expected 25 joint rows)")
            rows = tokens[pos : pos + block]
            try:  # only x, y, z (columns 0-2 of each 12-value row) are used, so only they are converted
                xyz = np.array(rows[0::12] + rows[1::12] + rows[2::12], dtype=np.float64).reshape(3, NUM_JOINTS).T
            except ValueError as exc:
                raise DataError(f"{where}: frame {f}, body {b}: non-numeric joint coordinate ({exc})") from None
            pos += block
            if not np.isfinite(xyz).all():
                raise DataError(f"{where}: frame {f}, body {b} has non-finite joint coordinates")
            entries.append((order.setdefault(body_id, len(order)), f, xyz))
    if pos != len(tokens):
        raise DataError(f"{where}: {len(tokens) - pos} unexpected tokens after the {num_frames} frames the header announces")
    joints = np.zeros((len(order), num_frames, NUM_JOINTS, 3), dtype=np.float32)
    present = np.zeros((len(order), num_frames), dtype=bool)
    for b, f, xyz in entries:
        joints[b, f] = xyz
        present[b, f] = True
    return joints, present


def read_skeleton_file(path: str | Path) -> np.ndarray:
    """Read one raw NTU ``.skeleton`` file.

    Args:
        path: The text file (LF or CRLF line ends).

    Returns:
        float32 ``(B, T, 25, 3)`` camera-space coordinates (metres): ``B`` distinct body IDs in order of
        first appearance, ``T`` = the file's frame count, zeros where a body is absent from a frame.

    Raises:
        DataError: truncated file, wrong joint count, non-numeric or non-finite values (the message names
            the file, frame and body).
    """
    return _parse(Path(path))[0]


def _motion(joints: np.ndarray) -> float:
    """Sum over x, y, z of the variance of all joint positions of a body, ``joints`` (F, 25, 3)."""
    return float(np.var(joints.reshape(-1, 3), axis=0).sum())


def select_actors(joints: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, int]:
    """Apply the two-actor selection rule (module docstring, steps 1-4) to one parsed file.

    Args:
        joints: ``(B, T, 25, 3)`` from the parser. present: ``(B, T)`` bool.

    Returns:
        ``(sequence (3, T', 25, 2) float32, dropped_frames)``: T' kept frames, actor 1 in person slot 0.

    Raises:
        DataError: no frame holds a body.
    """
    keep = present.any(axis=0)
    if not keep.any():
        raise DataError("no frame holds a body")
    joints, present = joints[:, keep], present[:, keep]
    dropped = int((~keep).sum())
    bodies = list(range(joints.shape[0]))
    if len(bodies) > 1:
        motion = {b: _motion(joints[b, present[b]]) for b in bodies}
        long_enough = [b for b in bodies if present[b].sum() > NOISE_LENGTH]
        bodies = long_enough or bodies  # every body short: keep them all rather than none
        for b in list(bodies):
            if len(bodies) == 1:
                break
            frames = joints[b, present[b]]
            spread_x = np.ptp(frames[:, :, 0], axis=1)
            spread_y = np.ptp(frames[:, :, 1], axis=1)
            clean = spread_x <= NOISE_SPREAD_XY * spread_y
            noisy = int((~clean).sum())
            if noisy == 0:
                continue
            if noisy / len(frames) >= NOISE_SPREAD_RATIO:
                bodies.remove(b)
            else:
                motion[b] = min(motion[b], _motion(frames[clean]))
        bodies.sort(key=lambda b: motion[b], reverse=True)  # stable: ties keep order of appearance
    t = joints.shape[1]
    out = np.zeros((t, 2, NUM_JOINTS, 3), dtype=np.float32)
    slots: list[np.ndarray | None] = [None, None]  # frames occupied per actor slot
    for b in bodies:
        mask = present[b]
        for s in range(2):
            if slots[s] is None or not (slots[s] & mask).any():
                out[mask, s] = joints[b, mask]
                slots[s] = mask if slots[s] is None else (slots[s] | mask)
                break
    occupied = (slots[0] if slots[0] is not None else np.zeros(t, bool)) | (
        slots[1] if slots[1] is not None else np.zeros(t, bool)
    )
    dropped += int((~occupied).sum())
    return out[occupied].transpose(3, 0, 2, 1).copy(), dropped


def find_skeleton_files(raw_dir: Path) -> dict[str, Path]:
    """``{sample name: path}`` of every ``*.skeleton`` file under ``raw_dir`` (recursively)."""
    files: dict[str, Path] = {}
    for path in sorted(Path(raw_dir).rglob("*.skeleton")):
        name = path.name[: -len(".skeleton")]
        SampleName.parse(name)  # raises DataError naming a stray file
        if name in files:
            raise DataError(f"sample {name} appears twice: {files[name]} and {path}")
        files[name] = path
    return files


def prepare_ntu(
    variant: str,
    raw_dir: str | Path,
    out_dir: str | Path,
    benchmarks: Iterable[str] | str | None = None,
    max_frames: int = MAX_FRAMES,
    progress: bool = True,
) -> dict[str, Any]:
    """Parse raw NTU ``.skeleton`` files into a prepared dataset readable by ``load_dataset(variant, root=out_dir)``.

    Args:
        variant: ``ntu60`` or ``ntu120``. For ``ntu60`` the NTU-120 extra files (setups > 17) are ignored
            (and counted), so one raw folder serves both.
        raw_dir: Folder holding the ``.skeleton`` files (searched recursively).
        out_dir: Output folder; one sub-folder per benchmark (``xsub/train_data.npy``...), and meta.json.
        benchmarks: Benchmarks to write (default: both of the variant). Each costs N x 3 x 300 x 25 x 2
            float32 on disk (10 GB for all of NTU-60).
        max_frames: T of the prepared tensor; longer sequences are truncated and reported.
        progress: Show a tqdm progress bar on stderr.

    Returns:
        The metadata written to ``meta.json`` (counts per split, skipped samples, dropped frames, and the
        validation stamp: every written split is content-scanned once here, so loads can skip the scan).
    """
    from tqdm import tqdm

    if variant not in BENCHMARKS:
        raise ConfigError(f"unknown NTU variant {variant!r}; expected ntu60 or ntu120")
    if isinstance(benchmarks, str):
        benchmarks = [b.strip() for b in benchmarks.split(",") if b.strip()]
    chosen = list(benchmarks) if benchmarks else list(BENCHMARKS[variant])
    for bm in chosen:
        if bm not in BENCHMARKS[variant]:
            raise ConfigError(f"unknown benchmark {bm!r} for {variant}; choose from {', '.join(BENCHMARKS[variant])}")
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if not raw_dir.is_dir():
        raise DataError(f"raw NTU folder {raw_dir} does not exist")
    files = find_skeleton_files(raw_dir)
    if not files:
        raise DataError(f"no .skeleton files under {raw_dir}; point --raw-dir at the unpacked nturgb+d_skeletons folder")
    max_setup, max_action = _LIMITS[variant]
    missing = missing_samples(variant)
    names, skipped_missing, other_variant = [], [], []
    for name in files:
        s = SampleName.parse(name)
        if s.setup > max_setup or s.action > max_action:
            other_variant.append(name)
        elif name in missing:
            skipped_missing.append(name)
        else:
            names.append(name)
    if not names:
        raise DataError(f"no usable {variant} samples under {raw_dir} ({len(files)} files found)")
    for name in skipped_missing:
        logger.info("skipping %s: on the official missing-skeleton list", name)
    logger.info(
        "%s: %d samples, %d skipped (official missing-skeleton list), %d not part of %s",
        variant, len(names), len(skipped_missing), len(other_variant), variant,
    )
    placement: dict[str, list[tuple[SplitWriter, int]]] = {n: [] for n in names}
    writers: list[SplitWriter] = []
    written: list[tuple[str, str]] = []  # (benchmark, split)
    counts: dict[str, dict[str, int]] = {}
    for bm in chosen:
        parsed = [SampleName.parse(n) for n in names]
        groups = {"train": [p.name for p in parsed if is_train(p, variant, bm)]}
        groups["test"] = [p.name for p in parsed if not is_train(p, variant, bm)]
        counts[bm] = {}
        for split, members in groups.items():
            counts[bm][split] = len(members)
            if not members:
                continue
            writer = SplitWriter(out_dir / bm, split, (len(members), 3, max_frames, NUM_JOINTS, 2))
            writers.append(writer)
            written.append((bm, split))
            for i, n in enumerate(members):
                placement[n].append((writer, i))
    dropped_frames, truncated = 0, []
    try:
        for name in tqdm(names, desc=f"prepare {variant}", unit="file", disable=not progress):
            joints, present = _parse(files[name])
            try:
                seq, dropped = select_actors(joints, present)
            except DataError as exc:
                raise DataError(f"{files[name]}: {exc}") from None
            dropped_frames += dropped
            if seq.shape[1] > max_frames:
                truncated.append(name)
                logger.warning("%s: %d frames truncated to %d", name, seq.shape[1], max_frames)
                seq = seq[:, :max_frames]
            label = SampleName.parse(name).action - 1
            for writer, i in placement[name]:
                writer.write(i, seq, label, name)
    except BaseException:  # a damaged file or Ctrl-C: leave no full-size hidden arrays behind
        for writer in writers:
            writer.abort()
        raise
    for writer in writers:
        writer.close()
    meta = {
        "name": variant,
        "layout": "ntu25",
        "units": "m",
        "class_names": class_names(variant),
        "num_frames": max_frames,
        "benchmarks": counts,
        "order": "ascending sample name within each split",
        "source": str(raw_dir),
        "skipped": {
            "missing_skeleton": {"count": len(skipped_missing), "samples": skipped_missing},
            "not_in_variant": {"count": len(other_variant)},
        },
        "truncated": {"count": len(truncated), "samples": truncated},
        "dropped_frames": dropped_frames,
    }
    previous_stamp = None
    previous = out_dir / "meta.json"
    if previous.is_file():  # benchmarks prepared earlier into the same folder stay listed
        try:
            old = read_meta(out_dir, variant, "")
        except DataError:
            old = {}
        if old.get("name") == variant and old.get("num_frames") == max_frames:
            meta["benchmarks"] = {**{k: v for k, v in old.get("benchmarks", {}).items() if (out_dir / k).is_dir()}, **counts}
            previous_stamp = old.get(STAMP_KEY)
    # the one full content scan of these files: loads skip it while the stamp matches
    stamp = validate_prepared(out_dir, written, previous_stamp, name=variant, layout=get_layout("ntu25"),
                              class_names=meta["class_names"], units="m")
    stamp["files"] = {k: v for k, v in stamp["files"].items() if k.split("/")[0] in meta["benchmarks"]}
    meta[STAMP_KEY] = stamp
    write_meta(out_dir, meta)
    return meta
