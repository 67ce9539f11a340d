"""The run folder of one cell: its files, the state that keys a resumable run, per-batch shards, and reading a
finished run back (``load_run``). Damaged files are reported in one line or recomputed.
"""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..attack_set import AttackSet
from ..data import SkeletonDataset
from ..errors import ConfigError
from ..io import atomic_path, atomic_write_json
from ..results import jsonable

logger = logging.getLogger(__name__)


RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.jsonl"
ADVERSARIAL_FILE = "adversarial.npz"
ATTACK_SET_FILE = "attack_set.json"
STATE_FILE = "state.json"
SHARDS_DIR = "shards"
GENERATION_FILE = "generation.npz"
_OUTPUTS = (RESULTS_FILE, SAMPLES_FILE, ADVERSARIAL_FILE, ATTACK_SET_FILE, STATE_FILE, GENERATION_FILE)
#: Per-batch bookkeeping kept in GENERATION_FILE once the shards are gone (the clips are in ADVERSARIAL_FILE).
_BOOKKEEPING = ("iterations", "gradient_evaluations", "queries", "final_loss")
#: Bookkeeping only some threat models have (query attacks: the oracle's first fooling query per sample).
_OPTIONAL_BOOKKEEPING = ("first_success_query",)
#: What to do about a damaged run file that cannot be recomputed in place.
_REBUILD = "rerun the same `skelrobust run` command to rebuild it (finished work is reused), or add --overwrite to start afresh"


class RunDirectory:
    """The output folder: state file, attack set, per-batch shards and the final outputs."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._completed: tuple[dict[str, np.ndarray], np.ndarray] | None = None
        self._completed_read = False

    def shard(self, batch: int) -> Path:
        return self.path / SHARDS_DIR / f"batch_{batch:05d}.npz"

    def begin(self, key: str, generation: dict[str, Any], overwrite: bool) -> None:
        """Claim the folder for a run keyed ``key``; refuse another run's folder unless ``overwrite``."""
        for folder in (self.path, *self.path.parents):
            if folder.exists():
                if not folder.is_dir():
                    raise ConfigError(f"--output {self.path}: {folder} is a file, not a folder; choose another --output")
                break
        state_file = self.path / STATE_FILE
        if overwrite:
            self.clear()
        elif state_file.exists():
            try:
                state = json.loads(state_file.read_text(encoding="utf-8"))
                if not isinstance(state, dict):
                    raise ValueError(f"expected a JSON object, found {type(state).__name__}")
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{state_file} is unreadable ({exc}); pass --overwrite to start afresh") from exc
            if state.get("key") != key:
                old = state.get("generation", {})
                changed = sorted(k for k in set(old) | set(generation) if jsonable(old.get(k)) != jsonable(generation.get(k)))
                raise ConfigError(
                    f"{self.path} holds a run with a different configuration (changed: {', '.join(changed) or 'code or weights'}); "
                    "pass --overwrite to replace it, or choose another --output"
                )
        elif (self.path / RESULTS_FILE).exists() or (self.path / SHARDS_DIR).exists():
            raise ConfigError(f"{self.path} holds results without a {STATE_FILE}; pass --overwrite to replace them")
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(state_file, {"key": key, "status": "attacking", "generation": jsonable(generation)})

    def clear(self) -> None:
        """Remove this runner's files from the folder (nothing else in it)."""
        for name in _OUTPUTS:
            (self.path / name).unlink(missing_ok=True)
        shutil.rmtree(self.path / SHARDS_DIR, ignore_errors=True)

    def finish(self, key: str, generation: dict[str, Any], shards: list[dict[str, Any]] | None = None,
               keep_shards: bool = False) -> None:
        """Mark the run complete; unless ``keep_shards``, replace the shards by GENERATION_FILE.

        The shards duplicate ``adversarial.npz``; their small per-batch bookkeeping goes to GENERATION_FILE,
        so a rerun in this folder still evaluates without attacking again.
        """
        if shards is not None and not keep_shards:
            kept = [*_BOOKKEEPING, *(k for k in _OPTIONAL_BOOKKEEPING if k in shards[0])]
            arrays: dict[str, np.ndarray] = {k: np.concatenate([sh[k] for sh in shards]) for k in kept}
            arrays["batch_sizes"] = np.array([len(sh["iterations"]) for sh in shards], dtype=np.int64)
            arrays["batch_seconds"] = np.array([float(sh["seconds"]) for sh in shards], dtype=np.float64)
            arrays["batch_extras"] = np.array([str(sh["extras"]) for sh in shards], dtype=str)
            with atomic_path(self.path / GENERATION_FILE) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, key=np.array(key), **arrays)
        atomic_write_json(self.path / STATE_FILE, {"key": key, "status": "complete", "generation": jsonable(generation)})
        if shards is not None and not keep_shards:
            shutil.rmtree(self.path / SHARDS_DIR, ignore_errors=True)

    def load_attack_set(self, dataset: SkeletonDataset | None = None) -> AttackSet | None:
        """The saved attack set, or None when absent or damaged (it is then selected again: selection is seeded).

        With ``dataset``, a set whose indices, ids or labels do not match that test split counts as damaged.
        """
        path = self.path / ATTACK_SET_FILE
        if not path.exists():
            return None
        try:
            attack_set = AttackSet.from_dict(json.loads(path.read_text(encoding="utf-8")))
            n = len(attack_set.indices)
            if len(attack_set.sample_ids) != n or attack_set.labels.shape != (n,):
                raise ValueError("indices, sample ids and labels differ in length")
            if dataset is not None:
                idx = attack_set.indices
                if n and (idx.min() < 0 or idx.max() >= len(dataset)):
                    raise ValueError(f"an index is outside the test split's {len(dataset)} samples")
                if [dataset.sample_ids[i] for i in idx] != list(attack_set.sample_ids) or not np.array_equal(dataset.labels[idx], attack_set.labels):
                    raise ValueError("its sample ids or labels do not match the test split")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("%s is damaged (%s); selecting the attack set again", path, exc)
            return None
        return attack_set

    def save_attack_set(self, attack_set: AttackSet) -> None:
        atomic_write_json(self.path / ATTACK_SET_FILE, attack_set.to_dict())

    def load_shard(self, batch: int, key: str, size: int) -> dict[str, Any] | None:
        """A finished batch, or None when absent, unreadable or from another configuration."""
        path = self.shard(batch)
        if not path.exists():
            return self._completed_batch(batch, key, size)
        try:
            with np.load(path, allow_pickle=False) as z:
                shard = {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            logger.warning("recomputing batch %d: shard %s is unreadable (%s)", batch, path, exc)
            return None
        if str(shard.get("key")) != key or shard["adversarial"].shape[0] != size:
            logger.warning("recomputing batch %d: shard %s belongs to another configuration", batch, path)
            return None
        return shard

    def _completed_batch(self, batch: int, key: str, size: int) -> dict[str, Any] | None:
        """Batch ``batch`` of a finished run whose shards were removed (GENERATION_FILE + ADVERSARIAL_FILE)."""
        if not self._completed_read:
            self._completed_read = True
            gen_file, adv_file = self.path / GENERATION_FILE, self.path / ADVERSARIAL_FILE
            if gen_file.exists() and adv_file.exists():
                try:
                    with np.load(gen_file, allow_pickle=False) as z:
                        gen = {k: z[k] for k in z.files}
                    with np.load(adv_file, allow_pickle=False) as z:
                        adversarial = z["adversarial"]
                    if adversarial.ndim != 5 or gen["batch_sizes"].dtype.kind not in "iu":
                        raise ValueError("arrays of the wrong shape or type")
                    if str(gen["key"]) == key and int(gen["batch_sizes"].sum()) == len(adversarial):
                        self._completed = (gen, adversarial)
                except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
                    logger.warning("recomputing the adversarial set: %s or %s is damaged (%s)", gen_file, adv_file, exc)
        if self._completed is None:
            return None
        gen, adversarial = self._completed
        sizes = gen["batch_sizes"]
        if batch >= len(sizes) or int(sizes[batch]) != size:
            return None
        start = int(sizes[:batch].sum())
        shard = {k: gen[k][start : start + size] for k in (*_BOOKKEEPING, *_OPTIONAL_BOOKKEEPING) if k in gen}
        shard.update(adversarial=adversarial[start : start + size], seconds=gen["batch_seconds"][batch],
                     extras=gen["batch_extras"][batch])
        return shard

    def save_shard(self, batch: int, key: str, arrays: dict[str, Any]) -> None:
        with atomic_path(self.shard(batch)) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, key=np.array(key), **arrays)


def sample_indices_record(attack_set: AttackSet) -> dict[str, Any]:
    """The attack set's test-split indices for ``results.json``'s provenance: the list, its SHA-256 (of the
    int64 bytes, in attack order) and the file that also holds their sample ids and labels."""
    import hashlib

    indices = np.ascontiguousarray(attack_set.indices, dtype=np.int64)
    return {"file": ATTACK_SET_FILE, "n": int(indices.size), "sha256": hashlib.sha256(indices.tobytes()).hexdigest(),
            "indices": indices.tolist()}


def load_run(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(results.json, adversarial.npz arrays)`` of a finished run folder.

    Raises:
        ConfigError: the folder holds no finished run.
    """
    folder = Path(path).expanduser()
    results_file, arrays_file = folder / RESULTS_FILE, folder / ADVERSARIAL_FILE
    if not results_file.is_file() or not arrays_file.is_file():
        raise ConfigError(f"{folder} holds no finished run (expected {RESULTS_FILE} and {ADVERSARIAL_FILE}; run `skelrobust run ... --output {folder}`)")
    try:
        results = json.loads(results_file.read_text(encoding="utf-8"))
        if not isinstance(results, dict):
            raise ValueError(f"expected a JSON object, found {type(results).__name__}")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{results_file} is damaged ({exc}); {_REBUILD}") from exc
    try:
        with np.load(arrays_file, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{arrays_file} is damaged ({exc}); {_REBUILD}") from exc
    missing = [k for k in _RUN_ARRAYS if k not in arrays]
    if missing:
        raise ConfigError(f"{arrays_file} is damaged (no {', '.join(missing)}); {_REBUILD}")
    clips_ok = all(arrays[k].ndim == 5 and arrays[k].dtype.kind == "f" for k in ("adversarial", "clean"))
    per_sample = [arrays[k] for k in ("adversarial", "clean", "labels", "sample_ids", "lengths", "indices")]
    if not clips_ok or any(a.ndim < 1 or len(a) != len(arrays["labels"]) for a in per_sample) or arrays["layout"].ndim != 0:
        raise ConfigError(f"{arrays_file} is damaged (its arrays do not have the shapes a run writes); {_REBUILD}")
    return results, arrays


#: Arrays every ``adversarial.npz`` holds.
_RUN_ARRAYS = ("adversarial", "clean", "labels", "sample_ids", "indices", "lengths", "layout", "class_names")


def load_sample_record(path: str | Path, position: int) -> dict[str, Any]:
    """Record ``position`` (0-based) of a finished run's ``samples.jsonl``.

    Raises:
        ConfigError: the file is missing, damaged or shorter than the adversarial set.
    """
    samples = Path(path).expanduser() / SAMPLES_FILE
    try:
        lines = samples.read_text(encoding="utf-8").splitlines()
        record = json.loads(lines[position])
        if not isinstance(record, dict):
            raise ValueError(f"line {position + 1} is not a JSON object")
    except IndexError:
        raise ConfigError(f"{samples} is damaged (no line {position + 1}); {_REBUILD}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{samples} is damaged or missing ({exc}); {_REBUILD}") from exc
    return record
