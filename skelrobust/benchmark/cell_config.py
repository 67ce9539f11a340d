"""The configuration of one benchmark cell: :class:`RunConfig`, its resolution against ``benchmark.yaml``,
the attack it builds, the models it loads and the roles its threat model gives them (who is attacked, who
answers queries, who selects the attack set).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .. import config as protocol
from ..attack import ATTACKS, Attack, ThreatModel
from ..attack_options import check_attack_options
from ..data import DATASETS, SkeletonDataset
from ..errors import ConfigError, LayoutMismatchError, ThreatModelError, UnsupportedError
from ..query import check_max_queries
from ..registry import is_object_spec, load_object
from ..victim import Victim


#: Attack-set size when neither the command line nor benchmark.yaml sets one: the prior benchmark's
#: 31 batches of 16 (RobustBenchHAR), so numbers are comparable.
DEFAULT_N_SAMPLES = 496


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
    if threat is ThreatModel.OWN_SURROGATE:
        if cfg.surrogate is not None:
            raise ThreatModelError(f"attack {cfg.attack!r} trains its own surrogate on the training split: --surrogate {cfg.surrogate} is refused")
        return Roles(attacked=None, oracle=None, selection=first)
    return Roles(attacked=None, oracle=None, selection=cfg.surrogate or first)


def load_model(name: str, cfg: RunConfig, dataset: SkeletonDataset) -> Victim:
    """Load one victim / surrogate for ``dataset`` and check that it fits the data."""
    from ..loading import load_victim

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


def per_attack_max_queries(cfg: RunConfig) -> int | None:
    """The protocol's query budget for the attack: its ``attacks`` entry, else ``defaults.max_queries``."""
    per_attack = protocol.attack_config(cfg.attack) if not is_object_spec(cfg.attack) else {}
    value = per_attack.get("max_queries", protocol.defaults().get("max_queries"))
    return None if value is None else int(value)
