"""The benchmark protocol: a YAML file naming the grid, parsed and validated before anything runs.

The schema extends the packaged ``benchmark.yaml`` (which is itself a protocol)::

    protocol: small-grid-v1            # required: the protocol's name and version
    defaults:                          # run settings shared by every cell (each optional)
      eps: 0.01                        # budget when a dataset names none (also: budgets: [..])
      norm: linf
      steps: 10
      targeted: false
      seed: 0
      batch_size: 32
      n_samples: 16
      max_queries: 1000                # query attacks: oracle queries per sample
      device: cpu                      # or auto (CUDA when available)
      selection: correct               # or all
      order: seeded                    # or file
      compat: null
      attacks: [pgd, mifgsm]           # the attacks of every dataset that names none
    attacks:                           # per attack: constructor options and run-setting overrides
      mifgsm: {decay: 1.0}
    victims:                           # per model: the weights to load instead of the zoo
      stgcn: {checkpoint: path/to/stgcn.pt}
    defenses:                          # per defense: constructor options
      lowpass: {sigma: 2.0}
    datasets:
      synthetic:
        attacks: [pgd, mifgsm]         # or a mapping {pgd: {options}, mifgsm: {}}
        surrogates: [stgcn]            # every surrogate x every victim (the diagonal is white-box)
        victims: [stgcn, ctrgcn]
        defenses: [none, lowpass]      # default [none]
        budgets: [0.005, 0.01]         # default: the dataset's eps, then defaults.budgets / defaults.eps
        eps_source: "..."              # where the dataset's budget comes from (recorded, not used)
        root: null                     # dataset folder, for datasets that need one
        options: {}                    # dataset loader options (e.g. benchmark: xview)
        preset: lite                   # the zoo preset (read by the single-run commands)

A dataset without ``attacks`` runs ``defaults.attacks``; the top-level ``attacks`` only sets options. Run settings a
protocol leaves out take the runner's defaults (the packaged ``benchmark.yaml``), as ``skelrobust run``
does. Every error names the YAML key path (``datasets.synthetic.budgets[1]: ...``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from ..errors import ConfigError

#: Run settings accepted under ``defaults`` (and, except budgets, under an attack's entry).
RUN_SETTINGS = ("eps", "budgets", "norm", "steps", "targeted", "seed", "batch_size", "n_samples", "device",
                "selection", "order", "compat", "max_queries")
#: Keys of ``defaults``: the run settings and the attacks of every dataset that names none.
_DEFAULT_KEYS = (*RUN_SETTINGS, "attacks")
_TOP_LEVEL = ("protocol", "defaults", "attacks", "victims", "defenses", "datasets")
_DATASET_KEYS = ("preset", "attacks", "surrogates", "victims", "defenses", "budgets", "eps", "eps_source", "root", "options")
_ATTACK_RUN_SETTINGS = ("norm", "steps", "targeted", "seed", "batch_size", "n_samples", "selection", "order", "compat", "max_queries")
_CHOICES = {"norm": ("linf", "l2"), "selection": ("correct", "all"), "order": ("seeded", "file")}

#: The axes of the grid, in the order of the results table's key columns.
AXES = ("dataset", "attack", "surrogate", "budget", "victim", "defense")


@dataclass(frozen=True)
class Cell:
    """One row of the results table: a victim x defense evaluated on one adversarial set."""

    dataset: str
    attack: str
    surrogate: str
    budget: float
    victim: str
    defense: str

    @property
    def set_key(self) -> tuple[str, str, str, float]:
        return (self.dataset, self.attack, self.surrogate, self.budget)

    @property
    def slug(self) -> str:
        """A file-name-safe identity, stable across runs."""
        return "__".join([*(_slug(v) for v in self.set_key[:3]), f"eps{self.budget:g}", _slug(self.victim), _slug(self.defense)])


@dataclass(frozen=True)
class AdversarialSet:
    """One adversarial set: generated once, evaluated on every victim x defense of its dataset.

    Attributes:
        dataset, attack, surrogate, budget: Its key.
        attack_options: Constructor options of the attack.
        settings: Run settings (steps, seed, n_samples...) the protocol sets; the rest take the runner's defaults.
        victims, defenses: Every victim x defense of the dataset.
        root, dataset_options: How to load the dataset.
        checkpoints: Per model, the weights to load instead of the zoo.
        defense_options: Per defense, its constructor options.
    """

    dataset: str
    attack: str
    surrogate: str
    budget: float
    attack_options: dict[str, Any]
    settings: dict[str, Any]
    victims: tuple[str, ...]
    defenses: tuple[str, ...]
    root: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)
    defense_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, float]:
        return (self.dataset, self.attack, self.surrogate, self.budget)

    @property
    def slug(self) -> str:
        return "__".join([_slug(self.dataset), _slug(self.attack), _slug(self.surrogate), f"eps{self.budget:g}"])

    def cells(self) -> list[Cell]:
        return [Cell(*self.key, v, d) for v in self.victims for d in self.defenses]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in str(text))


@dataclass(frozen=True)
class Protocol:
    """A validated protocol: its name, the normalised document and the adversarial sets it expands into."""

    name: str
    document: dict[str, Any]
    sets: tuple[AdversarialSet, ...]
    source: str

    @property
    def digest(self) -> str:
        """SHA-256 of the normalised document (two protocols with equal digests run the same grid)."""
        return hashlib.sha256(json.dumps(self.document, sort_keys=True).encode()).hexdigest()

    def cells(self) -> list[Cell]:
        return [c for s in self.sets for c in s.cells()]

    def select(self, only: dict[str, list[str]]) -> list[AdversarialSet]:
        """The sets of the slice ``only`` (axis -> accepted values), each narrowed to its victims and defenses.

        Raises:
            ConfigError: an unknown axis, or a value the protocol does not have on that axis.
        """
        for axis, values in only.items():
            if axis not in AXES:
                raise ConfigError(f"--only {axis}=...: unknown key; use one of {', '.join(AXES)}")
            have = sorted({_axis_text(getattr(c, axis)) for c in self.cells()})
            missing = [v for v in values if v not in have]
            if missing:
                raise ConfigError(f"--only {axis}={','.join(values)}: the protocol has no {axis} {', '.join(missing)} (it has {', '.join(have)})")
        chosen = []
        for s in self.sets:
            if any(_axis_text(getattr(s, axis)) not in values for axis, values in only.items() if axis in ("dataset", "attack", "surrogate", "budget")):
                continue
            victims = tuple(v for v in s.victims if "victim" not in only or v in only["victim"])
            defenses = tuple(d for d in s.defenses if "defense" not in only or d in only["defense"])
            if victims and defenses:
                chosen.append(_replace_set(s, victims=victims, defenses=defenses))
        return chosen


def _replace_set(s: AdversarialSet, **changes: Any) -> AdversarialSet:
    from dataclasses import replace

    return replace(s, **changes)


def _axis_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def load_protocol(path: str | Path | None = None) -> Protocol:
    """Read and validate a protocol file (default: the packaged ``benchmark.yaml``).

    Raises:
        ConfigError: unreadable file, invalid YAML, or a schema error (the message names the key path).
    """
    from ..config import BENCHMARK_FILE

    source = Path(path).expanduser() if path is not None else BENCHMARK_FILE
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read protocol {source}: {exc.strerror or exc}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {' '.join(str(exc).split())}") from exc
    return parse_protocol(document, str(source))


def parse_protocol(document: Any, source: str = "<protocol>") -> Protocol:
    """Validate a parsed protocol document and expand it into adversarial sets (see the module docstring)."""
    from ..attack import ATTACKS
    from ..defense import DEFENSES
    from ..victim import VICTIMS

    def fail(where: str, message: str) -> ConfigError:
        return ConfigError(f"{source}: {where}: {message}")

    def mapping(value: Any, where: str, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise fail(where, f"expected a mapping, got {type(value).__name__}")
        for key in value:
            if not isinstance(key, str):
                raise fail(f"{where}.{key}", "keys must be strings")
            if allowed is not None and key not in allowed:
                raise fail(f"{where}.{key}" if where else key, f"unknown key; allowed: {', '.join(allowed)}")
        return value

    def names(value: Any, where: str, registry: Any, kind: str) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise fail(where, f"expected a non-empty list of {kind} names")
        for i, name in enumerate(items):
            if not isinstance(name, str):
                raise fail(f"{where}[{i}]", f"expected a {kind} name, got {name!r}")
            if name not in registry:
                raise fail(f"{where}[{i}]", f"unknown {kind} {name!r}; registered: {', '.join(registry.names())}")
        duplicates = sorted({n for n in items if items.count(n) > 1})
        if duplicates:
            raise fail(where, f"{kind} {', '.join(duplicates)} listed more than once")
        return list(items)

    def budget(value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise fail(where, f"a budget must be a positive number, got {value!r}")
        return float(value)

    def budgets(entry: dict[str, Any], where: str) -> list[float] | None:
        if "budgets" in entry:
            values = entry["budgets"]
            if not isinstance(values, list) or not values:
                raise fail(f"{where}.budgets", "expected a non-empty list of positive numbers")
            out = [budget(v, f"{where}.budgets[{i}]") for i, v in enumerate(values)]
            if len(set(out)) != len(out):
                raise fail(f"{where}.budgets", "a budget is listed more than once")
            return out
        if entry.get("eps") is not None:
            return [budget(entry["eps"], f"{where}.eps")]
        return None

    def settings(entry: dict[str, Any], where: str, keys: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in keys:
            if key not in entry or entry[key] is None or key in ("eps", "budgets"):
                continue
            value = entry[key]
            if key in ("steps", "seed", "batch_size", "n_samples", "max_queries"):
                least = 0 if key == "seed" else 1
                if isinstance(value, bool) or not isinstance(value, int) or value < least:
                    raise fail(f"{where}.{key}", f"expected an integer >= {least}, got {value!r}")
            elif key == "targeted":
                if not isinstance(value, bool):
                    raise fail(f"{where}.{key}", f"expected true or false, got {value!r}")
            elif key in _CHOICES:
                if value not in _CHOICES[key]:
                    raise fail(f"{where}.{key}", f"expected one of {', '.join(_CHOICES[key])}, got {value!r}")
            elif not isinstance(value, str):
                raise fail(f"{where}.{key}", f"expected a string, got {value!r}")
            out[key] = value
        return out

    def attack_entry(name: str, options: Any, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(constructor options, run-setting overrides) of one attack entry, options checked against the class."""
        options = dict(mapping(options, where))
        if "eps" in options or "budgets" in options:
            raise fail(f"{where}.{'eps' if 'eps' in options else 'budgets'}", "budgets are set per dataset (budgets: [...]) or in defaults")
        run = settings(options, where, _ATTACK_RUN_SETTINGS)
        ctor = {k: v for k, v in options.items() if k not in _ATTACK_RUN_SETTINGS}
        accepted = _constructor_options(ATTACKS.get(name))
        for key in ctor:
            if accepted is not None and key not in accepted:
                shown = sorted(accepted - {"eps", "norm", "steps", "compat", "unit"})
                raise fail(f"{where}.{key}", f"attack {name!r} has no option {key!r}; it accepts {', '.join(shown) or 'none'}")
        return ctor, run

    if not isinstance(document, dict):
        raise fail("(top level)", "expected a mapping with protocol, defaults and datasets")
    top = mapping(document, "", _TOP_LEVEL)
    name = top.get("protocol")
    if not isinstance(name, str) or not name.strip():
        raise fail("protocol", "expected the protocol's name (e.g. small-grid-v1)")
    defaults = mapping(top.get("defaults"), "defaults", _DEFAULT_KEYS)
    default_settings = settings(defaults, "defaults", RUN_SETTINGS)
    default_budgets = budgets(defaults, "defaults")

    shared_attacks: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for attack, options in mapping(top.get("attacks"), "attacks").items():
        if attack not in ATTACKS:
            raise fail(f"attacks.{attack}", f"unknown attack {attack!r}; registered: {', '.join(ATTACKS.names())}")
        shared_attacks[attack] = attack_entry(attack, options, f"attacks.{attack}")

    checkpoints: dict[str, str] = {}
    for model, entry in mapping(top.get("victims"), "victims").items():
        if model not in VICTIMS:
            raise fail(f"victims.{model}", f"unknown victim {model!r}; registered: {', '.join(VICTIMS.names())}")
        entry = mapping(entry, f"victims.{model}", ("checkpoint",))
        if "checkpoint" in entry:
            if not isinstance(entry["checkpoint"], str):
                raise fail(f"victims.{model}.checkpoint", "expected a file path")
            path = Path(entry["checkpoint"]).expanduser()
            # A relative path is relative to the protocol file (when there is one).
            checkpoints[model] = str(path if path.is_absolute() or source.startswith("<") else Path(source).parent / path)

    defense_options: dict[str, dict[str, Any]] = {}
    for defense, entry in mapping(top.get("defenses"), "defenses").items():
        if defense not in DEFENSES:
            raise fail(f"defenses.{defense}", f"unknown defense {defense!r}; registered: {', '.join(DEFENSES.names())}")
        defense_options[defense] = dict(mapping(entry, f"defenses.{defense}"))

    datasets = mapping(top.get("datasets"), "datasets")
    if not datasets:
        raise fail("datasets", "the protocol names no dataset")
    sets: list[AdversarialSet] = []
    from ..data import DATASETS

    for dataset, entry in datasets.items():
        where = f"datasets.{dataset}"
        if dataset not in DATASETS:
            raise fail(where, f"unknown dataset {dataset!r}; registered: {', '.join(DATASETS.names())}")
        entry = mapping(entry, where, _DATASET_KEYS)
        attacks_value = entry.get("attacks")
        if attacks_value is None:
            if "attacks" not in defaults:
                raise fail(f"{where}.attacks", "no attack: list them here or in defaults.attacks")
            attacks = {a: shared_attacks.get(a, ({}, {})) for a in names(defaults["attacks"], "defaults.attacks", ATTACKS, "attack")}
        elif isinstance(attacks_value, dict):
            if not attacks_value:
                raise fail(f"{where}.attacks", "expected at least one attack")
            attacks = {}
            for attack, options in attacks_value.items():
                if attack not in ATTACKS:
                    raise fail(f"{where}.attacks.{attack}", f"unknown attack {attack!r}; registered: {', '.join(ATTACKS.names())}")
                ctor, run = attack_entry(attack, options, f"{where}.attacks.{attack}")
                base_ctor, base_run = shared_attacks.get(attack, ({}, {}))
                attacks[attack] = ({**base_ctor, **ctor}, {**base_run, **run})
        else:
            attacks = {a: shared_attacks.get(a, ({}, {})) for a in names(attacks_value, f"{where}.attacks", ATTACKS, "attack")}
        if "surrogates" not in entry:
            raise fail(f"{where}.surrogates", "missing: name the model(s) each attack is run on")
        if "victims" not in entry:
            raise fail(f"{where}.victims", "missing: name the victim(s) each adversarial set is evaluated on")
        surrogates = names(entry["surrogates"], f"{where}.surrogates", VICTIMS, "victim")
        victims = names(entry["victims"], f"{where}.victims", VICTIMS, "victim")
        defenses = names(entry.get("defenses", ["none"]), f"{where}.defenses", DEFENSES, "defense")
        grid_budgets = budgets(entry, where) or default_budgets or [None]
        root = entry.get("root")
        if root is not None and not isinstance(root, str):
            raise fail(f"{where}.root", "expected a folder path")
        loader_options = dict(mapping(entry.get("options"), f"{where}.options"))
        for key in ("preset", "eps_source"):
            if key in entry and not isinstance(entry[key], str):
                raise fail(f"{where}.{key}", "expected a string")
        for attack, (ctor, run) in attacks.items():
            for surrogate in surrogates:
                for eps in grid_budgets:
                    sets.append(AdversarialSet(
                        dataset=dataset, attack=attack, surrogate=surrogate,
                        budget=float(eps) if eps is not None else _runner_default_budget(dataset),
                        attack_options=dict(ctor), settings={**default_settings, **run},
                        victims=tuple(victims), defenses=tuple(defenses), root=root, dataset_options=loader_options,
                        checkpoints=dict(checkpoints),
                        defense_options={d: o for d, o in defense_options.items() if d in defenses},
                    ))
    return Protocol(name=name.strip(), document=_normalise(top), sets=tuple(sets), source=source)


def _constructor_options(cls: type) -> set[str] | None:
    """Keyword options a class's constructor accepts, following ``**kwargs`` up the base classes (None: anything)."""
    accepted: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters
        accepted |= {n for n, p in parameters.items() if n != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return accepted
    return None


def _runner_default_budget(dataset: str) -> float:
    """The budget ``skelrobust run`` uses when none is given: the packaged protocol's, per dataset if set."""
    from .. import config

    value = config.dataset_config(dataset).get("eps", config.defaults().get("eps", 0.01))
    return float(value)


def _normalise(value: Any) -> Any:
    """The document as plain JSON types (so it can be stored, hashed and compared)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def differences(old: Any, new: Any, path: str = "") -> Iterator[str]:
    """``"key.path: old -> new"`` for every leaf where two documents differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                yield f"{sub}: added {json.dumps(new[key])}"
            elif key not in new:
                yield f"{sub}: removed (was {json.dumps(old[key])})"
            else:
                yield from differences(old[key], new[key], sub)
    elif old != new:
        yield f"{path or '(top level)'}: {json.dumps(old)} -> {json.dumps(new)}"
