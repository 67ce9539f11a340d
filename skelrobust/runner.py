"""The benchmark runner behind ``skelrobust run``: one attack, its attack set, every victim x defense.

What a run does:

1. Resolves the configuration (command-line values over ``benchmark.yaml``'s defaults).
2. Gives the attack exactly the access of its threat model:

   - white-box: the ``surrogate`` if given, else the first victim, with gradients, and the labels;
   - transfer: the ``surrogate``, or the protocol's default surrogate for the dataset (a different
     architecture from the victims), with its training split passed to :meth:`Attack.prepare`;
   - hard no-box: only the clean samples (no model, no labels);
   - query: a counting oracle of the first victim (its softmax scores) and the labels.

3. Chooses the attack set deterministically from the seed (:mod:`skelrobust.attack_set`) with the
   attacked model (or, for no-box attacks, the surrogate / first victim).
4. Generates the adversarial examples once, in batches; batch ``b`` uses a ``torch.Generator`` seeded
   from ``(seed, b)``, so a rerun reproduces the set bit for bit on the same machine whatever was
   already done. Each finished batch is an atomic shard file under ``DIR/shards/``, keyed by a hash of
   the generation settings: an interrupted run resumes where it stopped, and a different generation
   configuration in the same folder is refused unless ``overwrite``.
5. Evaluates the adversarial set on every victim x defense with ``torch.inference_mode`` (victims and
   defenses may change between reruns: only evaluation is redone), measures imperceptibility, and
   writes ``results.json``, ``samples.jsonl`` and ``adversarial.npz`` atomically.

Failure isolation (as timm's ``validate.py`` does per model): an ``Exception`` raised while evaluating
one victim x defense cell is logged with its traceback at WARNING and recorded in that cell (see
:mod:`skelrobust.results`); the other cells are still evaluated and every output is written. Nothing
about a failed cell is cached, so a rerun in the same folder evaluates it again. Selection and
generation are not isolated: an attack failure stops the run (finished shards are kept for resume).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from . import config as protocol
from .attack import ATTACKS, Attack, ThreatModel
from .attack_options import check_attack_options
from .attack_set import AttackSet, predict, select_attack_set
from .data import DATASETS, SkeletonDataset, load_dataset
from .defense import Defense, create_defense
from .errors import ConfigError, LayoutMismatchError, UnsupportedError
from .io import atomic_path, atomic_write_json, atomic_write_text
from .metrics import imperceptibility, metric_units, summarize
from .nobox.access import hard_no_box_config, unlabelled_samples
from .provenance import RESULTS_SCHEMA_VERSION, provenance
from .query import QueryOracle, check_max_queries, query_access, query_summary
from .registry import is_object_spec, load_object
from .results import cell_summary, error_summary, format_table, jsonable, sample_records
from .version import __version__
from .victim import Victim

logger = logging.getLogger(__name__)

#: Attack-set size when neither the command line nor benchmark.yaml sets one: the prior benchmark's
#: 31 batches of 16 (RobustBenchHAR), so numbers are comparable.
DEFAULT_N_SAMPLES = 496

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


@dataclass
class RunConfig:
    """Everything that defines a run; ``None`` fields take ``benchmark.yaml``'s defaults.

    Attributes:
        attack: Registered attack name, or user code ``module:Class`` / ``file.py:Class``.
        victims: Victims of the transfer matrix (registered names or user factories).
        dataset: Registered dataset name; the ``test`` split is attacked.
        surrogate: The model the attack gets (white-box and transfer attacks).
        root: Dataset folder (for datasets that need one).
        defenses: Defenses each victim is evaluated under (``none`` = undefended).
        defense_options: Per defense name, its constructor options.
        attack_options: Extra constructor options of the attack (e.g. ``{"random_start": False}``).
        eps, norm, steps: The budget and iterations (units: the dataset's own).
        n_samples: Attack-set size.
        seed: Seeds the attack-set order, targets, and every batch's generator.
        batch_size: Samples per attack batch (also the evaluation batch).
        device: ``cpu``, ``cuda``, ``cuda:1``...; default CUDA when available.
        targeted: Targeted mode (one random other class per sample, drawn from the seed).
        compat: Compatibility mode of the attack (e.g. ``robustbenchhar``).
        checkpoints: Per model name, the weights to load (instead of the zoo).
        victim_preset: Preset of the models named in ``victims`` (default: a checkpoint's build record, else
            the protocol's preset for the dataset).
        victim_config: Build options of the models named in ``victims`` (default: a checkpoint's build record).
        dataset_options: Loader options of the dataset (e.g. ``{"benchmark": "xview"}`` for NTU).
        selection: ``correct`` (samples the attacked model gets right) or ``all``; ``None`` takes
            benchmark.yaml's once the attack's threat model is known (:func:`default_selection`);
            hard no-box attacks take ``all`` and refuse ``correct`` (:mod:`skelrobust.nobox.access`).
        split: Split the attack set is drawn from (``test``; ``train`` makes adversarial sets for
            ``skelrobust train --adversarial-set``, which refuses sets made from test samples).
        order: Order in which test samples are considered: ``seeded`` (a permutation from ``seed``) or
            ``file``; always ``file`` with ``compat="robustbenchhar"`` unless given (its
            gatherCorrectPrediction walks the test file in order), else benchmark.yaml's.
        eps_source: Where ``eps`` came from (filled in by :func:`resolve_config`: ``--eps``, the attack's
            protocol entry, or the dataset's protocol budget, :func:`skelrobust.config.protocol_budget`).
        max_queries: Oracle queries per sample (query attacks only; default from benchmark.yaml).
    """

    attack: str
    victims: list[str]
    dataset: str
    surrogate: str | None = None
    root: str | None = None
    defenses: list[str] = field(default_factory=lambda: ["none"])
    defense_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    attack_options: dict[str, Any] = field(default_factory=dict)
    eps: float | None = None
    norm: str | None = None
    steps: int | None = None
    n_samples: int | None = None
    seed: int | None = None
    batch_size: int | None = None
    device: str | None = None
    targeted: bool | None = None
    compat: str | None = None
    checkpoints: dict[str, str] = field(default_factory=dict)
    victim_preset: str | None = None
    victim_config: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    selection: str | None = None
    order: str | None = None
    eps_source: str | None = None
    max_queries: int | None = None
    split: str = "test"


def resolve_config(cfg: RunConfig) -> RunConfig:
    """A copy of ``cfg`` with every default filled in from ``benchmark.yaml``, validated.

    Precedence: explicit values, then the protocol's entry for the attack, then its shared defaults; the
    budget ``eps`` falls back to the dataset's protocol budget instead (recorded in ``eps_source``).

    Raises:
        ConfigError: a value out of range or duplicate names.
    """
    shared = protocol.defaults()
    per_attack = protocol.attack_config(cfg.attack) if not is_object_spec(cfg.attack) else {}

    def pick(name: str, fallback: Any) -> Any:
        value = getattr(cfg, name)
        if value is not None:
            return value
        return per_attack.get(name, shared.get(name, fallback))

    if cfg.eps is not None:
        eps, eps_source = cfg.eps, "--eps"
    elif per_attack.get("eps") is not None:
        eps, eps_source = per_attack["eps"], f"benchmark.yaml attacks.{cfg.attack}.eps"
    else:
        eps, eps_source = protocol.protocol_budget(cfg.dataset)
    resolved = replace(
        cfg,
        victims=list(cfg.victims),
        defenses=list(cfg.defenses),
        eps=float(eps),
        eps_source=eps_source,
        norm=str(pick("norm", "linf")),
        steps=int(pick("steps", 200)),
        n_samples=int(pick("n_samples", DEFAULT_N_SAMPLES)),
        seed=int(pick("seed", 0)),
        batch_size=int(pick("batch_size", 32)),
        targeted=bool(pick("targeted", False)),
        device=_resolve_device(cfg.device or shared.get("device")),
        root=str(Path(cfg.root).expanduser().resolve()) if cfg.root is not None else None,
        defense_options={k: dict(v) for k, v in cfg.defense_options.items()},
        dataset_options=dict(cfg.dataset_options),
        attack_options=dict(cfg.attack_options),
        checkpoints={k: str(Path(v).expanduser().resolve()) for k, v in cfg.checkpoints.items()},
        order=cfg.order or ("file" if cfg.compat == "robustbenchhar" else str(shared.get("order", "seeded"))),
    )
    if not resolved.victims:
        raise ConfigError("no victim given: pass --victim NAME[,NAME...]")
    for what, names in (("victim", resolved.victims), ("defense", resolved.defenses)):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"{what} {', '.join(duplicates)} given more than once")
    if not resolved.defenses:
        raise ConfigError("no defense given: pass --defense none (the undefended victims) or a defense name")
    if not (math.isfinite(resolved.eps) and resolved.eps > 0):
        raise ConfigError(f"--eps must be a finite number > 0 (the budget), got {resolved.eps}")
    if resolved.norm not in ("linf", "l2"):
        raise ConfigError(f"--norm must be linf or l2, got {resolved.norm!r}")
    for name in ("steps", "n_samples", "batch_size"):
        if getattr(resolved, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(resolved, name)}")
    if resolved.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {resolved.seed}")
    for name, allowed in (("selection", ("correct", "all", None)), ("order", ("seeded", "file"))):
        if getattr(resolved, name) not in allowed:
            raise ConfigError(f"--{name} must be correct or all, got {getattr(resolved, name)!r}" if name == "selection"
                              else f"--order must be seeded or file, got {resolved.order!r}")
    if resolved.max_queries is not None:
        check_max_queries(resolved.max_queries)
    unused = sorted(set(resolved.defense_options) - set(resolved.defenses))
    if unused:
        raise ConfigError(f"options given for defense(s) {', '.join(unused)} that are not in --defense")
    return resolved


def default_selection(cfg: RunConfig) -> RunConfig:
    """``cfg`` with its attack-set selection rule, benchmark.yaml's ``defaults.selection`` when none was given."""
    if cfg.selection is not None:
        return cfg
    selection = str(protocol.defaults().get("selection", "correct"))
    if selection not in ("correct", "all"):
        raise ConfigError(f"benchmark.yaml defaults.selection must be correct or all, got {selection!r}")
    return replace(cfg, selection=selection)


def _resolve_device(device: str | None) -> str:
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"--device {device!r} is not a torch device (cpu, cuda, cuda:0...)") from exc
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device!r} asked for CUDA, but torch sees no CUDA device")
    return str(parsed)


def attack_class(name: str) -> type[Attack]:
    """The attack class for a registered name or user code ``module:Class`` / ``file.py:Class``."""
    cls = load_object(name) if is_object_spec(name) else ATTACKS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Attack)):
        raise ConfigError(f"attack {name!r} is not a skelrobust.attack.Attack subclass")
    return cls


def build_attack(cfg: RunConfig, unit: str) -> Attack:
    """Instantiate the attack of a resolved config (protocol options, then ``attack_options``)."""
    cls = attack_class(cfg.attack)
    per_attack = protocol.attack_config(cfg.attack) if not is_object_spec(cfg.attack) else {}
    options = {k: v for k, v in per_attack.items() if k not in ("eps", "norm", "steps", "targeted", "n_samples", "seed", "batch_size", "max_queries")}
    options.update(cfg.attack_options)
    reserved = sorted(set(options) & {"eps", "norm", "steps", "compat", "unit"})
    if reserved:
        raise ConfigError(f"set {', '.join(reserved)} with its own flag (--eps, --norm, --steps, --compat), not --option")
    check_attack_options(cls, cfg.attack, options)
    try:
        attack = cls(eps=cfg.eps, norm=cfg.norm, steps=cfg.steps, compat=cfg.compat, unit=unit, **options)
    except TypeError as exc:
        raise ConfigError(f"attack {cfg.attack!r} does not accept option(s) {sorted(options)}: {exc}") from exc
    if cfg.targeted and not attack.supports_targeted:
        raise UnsupportedError(f"attack {cfg.attack!r} does not support targeted mode (drop --targeted)")
    return attack


@dataclass(frozen=True)
class Roles:
    """Which model plays which part, as the threat model dictates.

    Attributes:
        attacked: Model whose gradients the attack gets (white-box, transfer), else None.
        oracle: Victim behind the query oracle (query attacks), else None.
        selection: Model that picks the attack set and whose fooling is the white-box success rate.
    """

    attacked: str | None
    oracle: str | None
    selection: str


def resolve_roles(threat: ThreatModel, cfg: RunConfig) -> Roles:
    """Assign models to the attack's threat model (see the module docstring)."""
    first = cfg.victims[0]
    if threat is ThreatModel.WHITE_BOX:
        attacked = cfg.surrogate or first
        return Roles(attacked=attacked, oracle=None, selection=attacked)
    if threat is ThreatModel.TRANSFER:
        attacked = cfg.surrogate or protocol.default_surrogate(cfg.dataset, cfg.victims)
        return Roles(attacked=attacked, oracle=None, selection=attacked)
    if threat is ThreatModel.QUERY:
        return Roles(attacked=None, oracle=first, selection=first)
    return Roles(attacked=None, oracle=None, selection=cfg.surrogate or first)


def load_model(name: str, cfg: RunConfig, dataset: SkeletonDataset) -> Victim:
    """Load one victim / surrogate for ``dataset`` and check that it fits the data."""
    from .loading import load_victim

    # Datasets whose class count is fixed by their spec select zoo weights by name; for the others
    # (generic files) the layout and class count come from the loaded data.
    by_name = DATASETS.get(cfg.dataset).num_classes is not None
    own = name in cfg.victims  # --preset / --config apply to the victims, not to a separate surrogate
    config = dict(cfg.victim_config) if own else {}
    persons = config.pop("num_persons", int(dataset.data.shape[4]))  # --config num_persons=... wins
    victim = load_victim(
        name,
        checkpoint=cfg.checkpoints.get(name),
        dataset=cfg.dataset if by_name else None,
        num_classes=None if by_name else dataset.num_classes,
        layout=None if by_name else dataset.layout.name,
        device=cfg.device,
        preset=cfg.victim_preset if own else None,
        num_persons=persons,
        **config,
    )
    if victim.layout.num_joints != dataset.layout.num_joints:
        raise LayoutMismatchError(
            f"model {name!r} expects layout {victim.layout.name!r} ({victim.layout.num_joints} joints), "
            f"dataset {cfg.dataset!r} has {dataset.layout.name!r} ({dataset.layout.num_joints} joints)"
        )
    if victim.num_classes != dataset.num_classes:
        raise LayoutMismatchError(
            f"model {name!r} has {victim.num_classes} classes, dataset {cfg.dataset!r} has {dataset.num_classes}"
        )
    if victim.name == "custom":
        victim.name = name
    return victim.eval()


def batch_seed(seed: int, batch: int) -> int:
    """The generator seed of batch ``batch``: a SeedSequence hash of ``(seed, batch)`` (independent streams)."""
    return int(np.random.SeedSequence([seed, batch]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _fingerprint(dataset: SkeletonDataset) -> str:
    """A cheap identity of a test split, so changed data are not resumed.

    Hashes the shape, sample ids, labels, lengths and the coordinates of up to 64 evenly spaced samples
    (regenerated or re-prepared data change those; hashing a whole multi-GB split would not be cheap).
    """
    import hashlib

    digest = hashlib.sha256(json.dumps([list(dataset.data.shape), dataset.sample_ids]).encode())
    digest.update(np.ascontiguousarray(dataset.labels).tobytes())
    digest.update(np.ascontiguousarray(dataset.lengths).tobytes())
    probe = np.unique(np.linspace(0, len(dataset) - 1, num=min(64, len(dataset))).astype(np.int64))
    digest.update(np.ascontiguousarray(dataset.data[probe]).tobytes())
    return digest.hexdigest()


def _weights_hash(model: torch.nn.Module) -> str:
    """SHA-256 of a model's state dict (names and values), so changed weights are never resumed."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _config_hash(obj: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(jsonable(obj), sort_keys=True, default=str).encode()).hexdigest()


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


def _attack_batch(
    attack: Attack,
    x: torch.Tensor,
    labels: torch.Tensor,
    targets: torch.Tensor | None,
    *,
    roles: Roles,
    models: dict[str, Victim],
    layout: Any,
    generator: torch.Generator,
    sample_ids: list[str],
    max_queries: int | None = None,
) -> dict[str, Any]:
    """Run the attack on one batch with exactly its threat model's access; numpy results.

    A query attack gets a fresh :class:`~skelrobust.query.QueryOracle` of the oracle victim; its queries and
    first successful query per sample are read from that oracle, not from the attack's output.
    """
    threat = attack.threat
    kwargs: dict[str, Any] = {"layout": layout, "generator": generator, "sample_ids": sample_ids, "target": targets}
    if roles.attacked is not None:  # white-box and transfer
        kwargs["model"] = models[roles.attacked]
    oracle = None
    if roles.oracle is not None:  # query
        if max_queries is None:
            raise ConfigError(f"attack {attack.name!r} is a query attack: give --max-queries")
        oracle = QueryOracle(models[roles.oracle], max_queries=max_queries, feedback=str(getattr(attack, "feedback", "scores")), name=roles.oracle)
        kwargs["oracle"] = oracle
    start = time.perf_counter()
    out = attack(x, None if threat is ThreatModel.HARD_NO_BOX else labels, **kwargs)
    seconds = time.perf_counter() - start
    queried = {} if oracle is None else {"queries": oracle.counts.numpy().astype(np.int64), "first_success_query": oracle.first_success.numpy().astype(np.int64)}
    return {
        "adversarial": out.adversarial.detach().cpu().numpy().astype(np.float32),
        "iterations": out.iterations.cpu().numpy().astype(np.int64),
        "gradient_evaluations": out.gradient_evaluations.cpu().numpy().astype(np.int64),
        "queries": out.queries.cpu().numpy().astype(np.int64),
        "final_loss": out.final_loss.cpu().numpy().astype(np.float64),
        "seconds": np.array(seconds),
        "extras": np.array(json.dumps(jsonable(out.extras), default=str)),
        **queried,
    }


def per_attack_max_queries(cfg: RunConfig) -> int | None:
    """The protocol's query budget for the attack: its ``attacks`` entry, else ``defaults.max_queries``."""
    per_attack = protocol.attack_config(cfg.attack) if not is_object_spec(cfg.attack) else {}
    value = per_attack.get("max_queries", protocol.defaults().get("max_queries"))
    return None if value is None else int(value)


def run_benchmark(
    cfg: RunConfig, output: str | Path, *, overwrite: bool = False, progress: bool = True, keep_shards: bool = False
) -> dict[str, Any]:
    """Run (or resume) one attack against every victim x defense and write the outputs to ``output``.

    ``keep_shards`` keeps ``shards/`` after ``adversarial.npz`` is written (by default they are removed:
    they hold the same clips).

    Returns:
        The content of ``results.json``; cells whose evaluation raised carry an ``error`` (see
        :func:`skelrobust.results.failed_cells`).

    Raises:
        ConfigError, RegistryError, LayoutMismatchError, CheckpointError, DataError, UnsupportedError:
            user errors, each with a one-line message.
    """
    wall = time.perf_counter()
    cfg = resolve_config(cfg)
    device = torch.device(cfg.device)
    dataset = load_dataset(cfg.dataset, cfg.split, root=cfg.root, **cfg.dataset_options)
    attack = build_attack(cfg, unit=dataset.units)
    cfg = replace(cfg, max_queries=query_access(attack.threat is ThreatModel.QUERY, cfg.attack, cfg.surrogate, cfg.max_queries, per_attack_max_queries(cfg)))
    cfg = hard_no_box_config(cfg, attack)
    defenses: dict[str, Defense] = {name: create_defense(name, **cfg.defense_options.get(name, {})) for name in cfg.defenses}
    cfg = default_selection(cfg)
    roles = resolve_roles(attack.threat, cfg)
    names = list(dict.fromkeys([*cfg.victims, *(n for n in (roles.attacked, roles.oracle, roles.selection) if n)]))
    unused = sorted(set(cfg.checkpoints) - set(names))
    if unused:
        # Checked once the roles are known: a transfer attack's default surrogate comes from benchmark.yaml.
        raise ConfigError(f"checkpoint given for {', '.join(map(repr, unused))}, which is neither a victim nor the attacked model")
    for name, path in cfg.checkpoints.items():
        if not Path(path).is_file():
            raise ConfigError(f"checkpoint for {name!r} not found: {path}")
    models = {name: load_model(name, cfg, dataset) for name in names}
    metadata = {name: models[name].metadata for name in names}

    generation = {
        "attack": cfg.attack,
        "attack_config": attack.config(),
        "threat_model": attack.threat.value,
        "attacked_model": roles.attacked,
        "oracle": roles.oracle,
        "selection_model": roles.selection,
        "model_weights": {n: _weights_hash(models[n]) for n in {roles.attacked, roles.oracle, roles.selection} if n},
        "dataset": cfg.dataset,
        "root": cfg.root,
        "dataset_options": cfg.dataset_options,
        "dataset_fingerprint": _fingerprint(dataset),
        **({"split": cfg.split} if cfg.split != "test" else {}),
        "skelrobust_version": __version__,
        "n_samples": cfg.n_samples,
        "seed": cfg.seed,
        "batch_size": cfg.batch_size,
        "targeted": cfg.targeted,
        "selection": cfg.selection,
        "order": cfg.order,
        "device": device.type,
        "max_queries": cfg.max_queries,
    }
    key = _config_hash(generation)
    run_dir = RunDirectory(output)
    run_dir.begin(key, generation, overwrite)

    t0 = time.perf_counter()
    attack_set = run_dir.load_attack_set(dataset)
    if attack_set is None:
        attack_set = select_attack_set(
            dataset, models[roles.selection], n_samples=cfg.n_samples, seed=cfg.seed, batch_size=cfg.batch_size,
            device=device, selection=cfg.selection, order=str(cfg.order), model_name=roles.selection, targeted=bool(cfg.targeted),
        )
        run_dir.save_attack_set(attack_set)
    selection_seconds = time.perf_counter() - t0
    if len(attack_set) < cfg.n_samples:
        logger.warning("only %d test samples qualify for the attack set (%d requested)", len(attack_set), cfg.n_samples)

    clean = np.ascontiguousarray(dataset.data[np.sort(attack_set.indices)])[np.argsort(np.argsort(attack_set.indices))]
    shards = _generate(attack, cfg, roles, models, dataset, attack_set, clean, run_dir, key, progress)
    adversarial = np.concatenate([s["adversarial"] for s in shards])

    t0 = time.perf_counter()
    results, records = _evaluate(cfg, attack, roles, models, defenses, dataset, attack_set, clean, adversarial, shards)
    if cfg.max_queries is not None:  # query attacks: the oracle's own counts, never the attack's report
        first = np.concatenate([s["first_success_query"] for s in shards])
        results["query"] = query_summary(np.concatenate([s["queries"] for s in shards]), first, cfg.max_queries, str(getattr(attack, "feedback", "scores")))
        for record, value in zip(records, first.tolist()):
            record["first_success_query"] = int(value)
    evaluation_seconds = time.perf_counter() - t0

    results["timing"] = {
        "seconds": float(sum(float(s["seconds"]) for s in shards)),
        "seconds_per_sample": float(sum(float(s["seconds"]) for s in shards)) / max(len(attack_set), 1),
        "surrogate_gradient_evaluations": int(sum(int(s["gradient_evaluations"].sum()) for s in shards)),
        "queries": int(sum(int(s["queries"].sum()) for s in shards)),
        "selection_seconds": selection_seconds,
        "evaluation_seconds": evaluation_seconds,
        "wall_seconds_this_invocation": time.perf_counter() - wall,
        "note": "seconds: attack time summed over batches (kept across resumes); gradient evaluations: "
        "forward+backward passes of the attacked model per sample, summed",
    }
    results["provenance"] = provenance(
        config=jsonable(asdict(cfg)),
        models=metadata,
        seeds={"seed": cfg.seed, "attack_set": f"numpy.random.default_rng({cfg.seed}).permutation",
               "batch_generators": "torch.Generator seeded with SeedSequence([seed, batch]) per batch",
               "targets": f"numpy.random.default_rng([{cfg.seed}, 1])" if cfg.targeted else None},
    )
    results["provenance"]["sample_indices"] = sample_indices_record(attack_set)
    _write_outputs(run_dir.path, results, records, attack_set, dataset, clean, adversarial, cfg)
    run_dir.finish(key, generation, shards, keep_shards=keep_shards)
    return results


def sample_indices_record(attack_set: AttackSet) -> dict[str, Any]:
    """The attack set's test-split indices for ``results.json``'s provenance: the list, its SHA-256 (of the
    int64 bytes, in attack order) and the file that also holds their sample ids and labels."""
    import hashlib

    indices = np.ascontiguousarray(attack_set.indices, dtype=np.int64)
    return {"file": ATTACK_SET_FILE, "n": int(indices.size), "sha256": hashlib.sha256(indices.tobytes()).hexdigest(),
            "indices": indices.tolist()}


def _generate(
    attack: Attack,
    cfg: RunConfig,
    roles: Roles,
    models: dict[str, Victim],
    dataset: SkeletonDataset,
    attack_set: AttackSet,
    clean: np.ndarray,
    run_dir: RunDirectory,
    key: str,
    progress: bool,
) -> list[dict[str, Any]]:
    """Attack every batch not already in a shard; return all shards in order."""
    device = torch.device(cfg.device)
    bs = int(cfg.batch_size or 1)
    bounds = [(s, min(s + bs, len(attack_set))) for s in range(0, len(attack_set), bs)]
    shards: list[dict[str, Any] | None] = [run_dir.load_shard(b, key, stop - start) for b, (start, stop) in enumerate(bounds)]
    done = sum(stop - start for (start, stop), s in zip(bounds, shards) if s is not None)
    label = roles.attacked or roles.oracle or "no model"
    prepared = False
    with tqdm(total=len(attack_set), initial=done, desc=f"{cfg.attack} on {label}", unit="sample",
              file=sys.stderr, disable=not progress, leave=False) as bar:
        for b, (start, stop) in enumerate(bounds):
            if shards[b] is not None:
                continue
            if not prepared:
                _prepare(attack, cfg, roles, models, dataset, device, clean, attack_set.sample_ids)
                prepared = True
            x = torch.from_numpy(clean[start:stop]).to(device)
            labels = torch.from_numpy(attack_set.labels[start:stop]).to(device)
            targets = torch.from_numpy(attack_set.targets[start:stop]).to(device) if attack_set.targets is not None else None
            generator = torch.Generator(device=device).manual_seed(batch_seed(int(cfg.seed or 0), b))
            shard = _attack_batch(
                attack, x, labels, targets, roles=roles, models=models, layout=dataset.layout,
                generator=generator, sample_ids=attack_set.sample_ids[start:stop], max_queries=cfg.max_queries,
            )
            run_dir.save_shard(b, key, shard)
            shards[b] = shard
            bar.update(stop - start)
    return [s for s in shards if s is not None]


def _prepare(
    attack: Attack, cfg: RunConfig, roles: Roles, models: dict[str, Victim], dataset: SkeletonDataset, device: torch.device,
    clean: np.ndarray, sample_ids: list[str],
) -> None:
    """Call the attack's one-time hook with the access its threat model grants (seeded, for reproducibility).

    A hard no-box attack gets the unlabelled samples of its ``manifold_split`` (:func:`unlabelled_samples`).
    """
    train: Any = None
    if attack.threat is ThreatModel.HARD_NO_BOX:
        train = unlabelled_samples(attack, cfg, dataset, clean, sample_ids)
    elif attack.needs_training_data:
        spec = DATASETS.get(cfg.dataset)
        if "train" not in spec.splits:
            raise ConfigError(f"attack {cfg.attack!r} needs a training split, dataset {cfg.dataset!r} has only {', '.join(spec.splits)}")
        train = load_dataset(cfg.dataset, "train", root=cfg.root, **cfg.dataset_options)
    model = models[roles.attacked] if roles.attacked is not None else None
    torch.manual_seed(int(cfg.seed or 0))
    attack.prepare(model=model, train_data=train, layout=dataset.layout, device=device)


def _evaluate(
    cfg: RunConfig,
    attack: Attack,
    roles: Roles,
    models: dict[str, Victim],
    defenses: dict[str, Defense],
    dataset: SkeletonDataset,
    attack_set: AttackSet,
    clean: np.ndarray,
    adversarial: np.ndarray,
    shards: list[dict[str, Any]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Predictions of every victim x defense, imperceptibility, the summary and the per-sample records."""
    device = torch.device(cfg.device)
    bs = int(cfg.batch_size or 1)
    everything = np.arange(len(attack_set))
    labels, targets = attack_set.labels, attack_set.targets

    def predictions(model: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
        torch.manual_seed(int(cfg.seed or 0))  # randomised defenses evaluate reproducibly
        return predict(model, clean, everything, bs, device), predict(model, adversarial, everything, bs, device)

    judge = roles.attacked or roles.oracle or roles.selection
    judged = predictions(models[judge])
    cells = []
    for name in cfg.victims:
        for defense_name, defense in defenses.items():
            try:
                defended = defense.wrap(models[name])
                clean_pred, adv_pred = judged if defended is models[judge] else predictions(defended)
            except Exception as exc:  # one broken cell must not lose the others (KeyboardInterrupt still stops)
                logger.warning("evaluating victim %r under defense %r failed; recorded as an error", name, defense_name, exc_info=True)
                error = {"type": type(exc).__name__, "message": str(exc)}
                cells.append({"victim": name, "defense": defense_name, "error": error})
                continue
            cells.append({"victim": name, "defense": defense_name, "clean_predictions": clean_pred, "adversarial_predictions": adv_pred})

    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(attack_set), 256):
        chunk = imperceptibility(torch.from_numpy(clean[start : start + 256]), torch.from_numpy(adversarial[start : start + 256]), dataset.layout)
        for k, v in chunk.items():
            parts.setdefault(k, []).append(np.asarray(v, dtype=np.float64))
    per_sample = {k: np.concatenate(v) for k, v in parts.items()}
    summary = summarize(per_sample)

    stacked = {k: np.concatenate([s[k] for s in shards]) for k in ("iterations", "gradient_evaluations", "queries", "final_loss")}
    records = sample_records(
        indices=attack_set.indices, sample_ids=attack_set.sample_ids, labels=labels, targets=targets,
        attacked_model=judge, attacked_predictions=judged, cells=cells, imperceptibility=per_sample, **stacked,
    )
    white_box = cell_summary(judge, "none", judged[0], judged[1], labels, targets, dataset.class_names)
    unit = dataset.units
    results: dict[str, Any] = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "protocol": protocol.load_benchmark().get("protocol"),
        "attack": cfg.attack,
        "threat_model": attack.threat.value,
        "attack_config": attack.config(),
        "surrogate": roles.attacked,
        "attacked_model": judge,
        "dataset": cfg.dataset,
        "split": cfg.split,
        "layout": dataset.layout.name,
        "num_classes": dataset.num_classes,
        "eps": float(cfg.eps or 0.0),
        "eps_unit": unit,
        "eps_source": cfg.eps_source,
        "norm": cfg.norm,
        "steps": cfg.steps,
        "targeted": cfg.targeted,
        "compat": cfg.compat,
        "n_samples": len(attack_set),
        "n_samples_requested": attack_set.n_requested,
        "seed": cfg.seed,
        "batch_size": cfg.batch_size,
        "attack_set": {
            "selection": attack_set.selection,
            "order": attack_set.order,
            "selection_model": attack_set.selection_model,
            "pool_size": attack_set.pool_size,
            "pool_correct": attack_set.pool_correct,
            "file": ATTACK_SET_FILE,
        },
        "surrogate_clean_accuracy": attack_set.pool_accuracy,
        "surrogate_clean_accuracy_scope": (
            f"evaluated pool: accuracy of {attack_set.selection_model!r} on the first {attack_set.pool_size} test samples "
            f"in {'seeded-permutation' if attack_set.order == 'seeded' else 'file'} order (evaluated until {len(attack_set)} correct ones were found), not the whole test split"
        ),
        "white_box_success_rate": white_box["transfer_success_rate"],
        "white_box_model": judge,
        "white_box_success_by_class": white_box["success_by_class"],
        "victims": [
            error_summary(c["victim"], c["defense"], c["error"]) if "error" in c
            else cell_summary(
                c["victim"], c["defense"], c["clean_predictions"], c["adversarial_predictions"], labels, targets, dataset.class_names
            )
            for c in cells
        ],
        "defenses": {name: d.config() for name, d in defenses.items()},
        "imperceptibility": {k: v for k, v in summary.items() if not k.endswith("_median")},
        "imperceptibility_median": {k[: -len("_median")]: v for k, v in summary.items() if k.endswith("_median")},
        "imperceptibility_units": {k: v for k, v in metric_units(unit).items() if k in per_sample},
        "imperceptibility_scope": "mean (and median) over all attacked samples, per person and valid frames only",
        "success_definition": "targeted: adversarial prediction == target" if cfg.targeted else "untargeted: adversarial prediction != label",
        "attack_extras": [json.loads(str(s["extras"])) for s in shards],
        "files": {"samples": SAMPLES_FILE, "adversarial": ADVERSARIAL_FILE, "attack_set": ATTACK_SET_FILE},
    }
    if attack.threat is ThreatModel.WHITE_BOX and judge is not None:  # defended copies of the attacked model: adaptive
        from .adaptive import add_adaptive_results

        add_adaptive_results(results["victims"], cells, attack, defenses, models, judge, clean, attack_set,
                             layout=dataset.layout, batch_size=bs, seed=int(cfg.seed or 0), device=device)
    return results, records


def _write_outputs(
    path: Path,
    results: dict[str, Any],
    records: list[dict[str, Any]],
    attack_set: AttackSet,
    dataset: SkeletonDataset,
    clean: np.ndarray,
    adversarial: np.ndarray,
    cfg: RunConfig,
) -> None:
    """samples.jsonl, adversarial.npz, then results.json (written last: its presence means complete)."""
    atomic_write_text(path / SAMPLES_FILE, "".join(json.dumps(jsonable(r)) + "\n" for r in records))
    arrays: dict[str, np.ndarray] = {
        "adversarial": adversarial,
        "clean": clean,
        "labels": attack_set.labels,
        "sample_ids": np.array(attack_set.sample_ids, dtype=str),
        "indices": attack_set.indices,
        "lengths": np.asarray(dataset.lengths)[attack_set.indices].astype(np.int64),
        "layout": np.array(dataset.layout.name),
        "class_names": np.array(dataset.class_names, dtype=str),
        "units": np.array(dataset.units),
        "dataset": np.array(cfg.dataset),
        "attack": np.array(cfg.attack),
        "eps": np.array(float(cfg.eps or 0.0)),
        "norm": np.array(cfg.norm),
        "attack_config": np.array(json.dumps(jsonable(results["attack_config"]), default=str)),
    }
    if attack_set.targets is not None:
        arrays["targets"] = attack_set.targets
    with atomic_path(path / ADVERSARIAL_FILE) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    atomic_write_json(path / RESULTS_FILE, jsonable(results))


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


__all__ = ["RunConfig", "resolve_config", "run_benchmark", "load_run", "load_sample_record", "format_table", "batch_seed"]
