"""``load_victim``: one call from a name (registered family or user code) to a ready victim.

Resolution order:

1. ``dataset`` (a registered dataset name) supplies the layout, the class count and the person count.
   A checkpoint's build record (``<stem>.build.json`` beside it, written by ``skelrobust train``; see
   :mod:`skelrobust.build_record`) supplies the preset, the build options and the shape it was trained for.
   Explicit arguments win over the record, the record over the dataset's person count.
2. A registered family is built with ``preset`` (default: the benchmark protocol's preset for the dataset,
   ``lite`` for ``synthetic``) and ``**config``; user code ``package.module:factory`` or
   ``path/to/file.py:factory`` is called with ``num_classes=`` (when its signature takes it) and
   ``**config`` and may return a :class:`~skelrobust.victim.Victim` or a plain ``nn.Module``.
3. Weights: an explicit ``checkpoint`` (strict), else the shipped zoo entry for
   ``(name, dataset, preset)`` (sha256 verified), else random weights only when ``pretrained=False``.
   User factories own their initialisation, so without a checkpoint their weights are used as returned.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import zoo
from .build_record import read_build_record, record_path
from .checkpoints import load_into, read_state_dict
from .config import default_preset
from .data import DATASETS, load_dataset
from .errors import CheckpointError, ConfigError, LayoutMismatchError
from .io import sha256_file
from .layouts import get_layout
from .registry import is_object_spec, load_object
from .victim import VICTIMS, Victim, VictimFamily


def dataset_signature(dataset: str, root: str | Path | None = None) -> tuple[str, int]:
    """``(layout name, class count)`` of a registered dataset.

    Taken from its :class:`~skelrobust.data.DatasetSpec`; when the spec leaves the class count open
    (formats whose classes depend on the files), the test split is loaded for it.
    """
    layout, num_classes, _ = dataset_shape(dataset, root)
    return layout, num_classes


def dataset_shape(dataset: str, root: str | Path | None = None) -> tuple[str, int, int | None]:
    """``(layout name, class count, person count)`` of a registered dataset.

    From its :class:`~skelrobust.data.DatasetSpec`. When the spec leaves the class count open (formats
    whose classes depend on the files), the test split is loaded and gives both counts; a person count the
    spec leaves open is otherwise ``None`` (callers holding the data pass ``num_persons`` themselves).
    """
    spec = DATASETS.get(dataset)
    if spec.num_classes is not None:
        return spec.layout, int(spec.num_classes), spec.num_persons
    split = "test" if "test" in spec.splits else spec.splits[0]
    ds = load_dataset(dataset, split, root=root)
    return ds.layout.name, ds.num_classes, int(ds.data.shape[4])


def load_victim(
    name: str,
    checkpoint: str | Path | None = None,
    dataset: str | None = None,
    num_classes: int | None = None,
    preset: str | None = None,
    layout: str | None = None,
    device: str | torch.device | None = None,
    *,
    pretrained: bool | None = None,
    root: str | Path | None = None,
    num_persons: int | None = None,
    **config: Any,
) -> Victim:
    """Build a victim, load its weights, and return it in eval mode on ``device``.

    Args:
        name: A registered family (``skelrobust victims`` lists them) or user code
            ``package.module:factory`` / ``path/to/file.py:factory``.
        checkpoint: Weights to load strictly into ``victim.network`` (through the family's
            ``convert_state_dict`` for foreign key names). Its build record, when there is one, supplies
            the preset, build options, layout, class and person counts it was trained with.
        dataset: Registered dataset name: supplies layout, class and person counts and selects the zoo entry.
        num_classes: Output logits; must agree with ``dataset`` when both are given.
        preset: Family preset (``lite`` / ``full``); default from the checkpoint's build record, else from
            ``benchmark.yaml`` for the dataset (``full`` without a dataset), else the family's first preset.
        layout: Skeleton layout of the input; must agree with ``dataset`` when both are given.
        device: Where to put the victim (default CPU).
        pretrained: ``None`` (default): use the zoo when there is no checkpoint, and fail if the zoo has
            no entry. ``True``: require the zoo. ``False``: random weights when no checkpoint is given.
        root: Dataset folder, only needed when the class or person count must be read from the files.
        num_persons: Persons ``M`` of the input (registered families); ``config["num_persons"]`` wins over
            it; default: the checkpoint's build record, then the dataset.
        **config: Architecture options passed to the family's ``build`` or to the user factory.

    Raises:
        RegistryError: unknown family or unloadable user code.
        LayoutMismatchError: layout or class count disagree between dataset, arguments, family and weights.
        CheckpointError: no pretrained weights for the request, the checkpoint does not fit, or its build
            record names another victim, layout or class count.
        ConfigError: unknown preset.
    """
    ds_layout, ds_classes, ds_persons = dataset_shape(dataset, root) if dataset is not None else (None, None, None)
    if ds_layout is not None and layout is not None and get_layout(layout).name != ds_layout:
        raise LayoutMismatchError(f"layout {layout!r} disagrees with dataset {dataset!r}, whose layout is {ds_layout!r}")
    if ds_classes is not None and num_classes is not None and int(num_classes) != ds_classes:
        raise LayoutMismatchError(
            f"num_classes={num_classes} disagrees with dataset {dataset!r}, which has {ds_classes} classes"
        )
    layout = ds_layout or layout
    num_classes = ds_classes if ds_classes is not None else num_classes
    persons = num_persons if num_persons is not None else ds_persons

    record = read_build_record(checkpoint) if checkpoint is not None else None
    if record is not None:
        _check_record(record, Path(checkpoint), name, layout, num_classes)
        layout, num_classes = record["layout"], int(record["num_classes"])
        preset = preset if preset is not None else record["preset"]
        config = {**record["build_config"], **config}
        if num_persons is None and record["num_persons"] is not None:
            persons = int(record["num_persons"])

    if is_object_spec(name):
        victim = _build_custom(name, num_classes, layout, config, persons)
        family: VictimFamily | None = None
    else:
        family = VICTIMS.get(name)
        if "num_persons" in config:  # an explicit --config num_persons=... wins
            config = dict(config)
            persons = config.pop("num_persons")
        victim = _build_family(family, dataset, num_classes, preset, layout, pretrained, checkpoint, persons, config)

    if checkpoint is not None:
        _load_checkpoint(victim, Path(checkpoint), family.convert_state_dict if family else None)
    target = torch.device(device) if device is not None else torch.device("cpu")
    return victim.to(target).eval()


def _check_record(record: dict[str, Any], checkpoint: Path, name: str, layout: str | None, num_classes: int | None) -> None:
    """Refuse a checkpoint whose build record names another victim, layout or class count than requested."""
    where = f"checkpoint {checkpoint} (build record {record_path(checkpoint).name})"
    if record["victim"] != name:
        raise CheckpointError(f"{where} belongs to victim {record['victim']!r}, not {name!r}; pass --victim {record['victim']}")
    if layout is not None and get_layout(layout).name != record["layout"]:
        raise LayoutMismatchError(f"{where} was trained for layout {record['layout']!r}; the data have layout {get_layout(layout).name!r}")
    if num_classes is not None and int(num_classes) != int(record["num_classes"]):
        raise LayoutMismatchError(f"{where} has {record['num_classes']} classes; the data have {num_classes}")


def _build_family(
    family: VictimFamily,
    dataset: str | None,
    num_classes: int | None,
    preset: str | None,
    layout: str | None,
    pretrained: bool | None,
    checkpoint: str | Path | None,
    num_persons: int | None,
    config: dict[str, Any],
) -> Victim:
    """Build a registered family and, when no checkpoint is given, load its zoo weights."""
    if preset is None:
        wanted = default_preset(dataset)
        preset = wanted if wanted in family.presets else family.presets[0]
    elif preset not in family.presets:
        raise ConfigError(f"victim {family.name!r} has no preset {preset!r}; presets: {', '.join(family.presets)}")
    layout = layout or family.layouts[0]
    if get_layout(layout).name not in family.layouts:
        where = f" (the layout of dataset {dataset!r})" if dataset else ""
        raise LayoutMismatchError(
            f"victim {family.name!r} does not support layout {layout!r}{where}; it supports {', '.join(family.layouts)}"
        )

    entry = None
    if checkpoint is None and pretrained is not False:
        entry = zoo.find_entry(family.name, dataset, preset) if dataset is not None else None
        if entry is not None and config and any(entry.get("build_config", {}).get(k) != v for k, v in config.items()):
            entry = None  # the shipped weights were trained for another architecture configuration
        if entry is None:
            what = f"({family.name!r}, dataset {dataset!r}, preset {preset!r}{', config ' + repr(config) if config else ''})"
            shipped = ", ".join(f"{e['victim']}/{e['dataset']}/{e['preset']}" for e in zoo.entries()) or "none"
            raise CheckpointError(
                f"no pretrained weights for {what}; shipped: {shipped}. Train some with "
                f"`skelrobust train --victim {family.name} --dataset {dataset or 'DATASET'} --preset {preset} --out DIR` "
                "and pass --checkpoint DIR/best.pt, or ask for random weights (pretrained=False)"
            )
        if num_classes is not None and int(entry["num_classes"]) != int(num_classes):
            raise LayoutMismatchError(
                f"pretrained {family.name!r} for {dataset!r} has {entry['num_classes']} classes, num_classes={num_classes} requested"
            )
        config = {**entry.get("build_config", {}), **config}
        num_classes = int(entry["num_classes"])

    if num_classes is None:
        raise ConfigError(f"victim {family.name!r}: pass dataset= or num_classes= (the class count is unknown)")
    if num_persons is not None:
        config = {**config, "num_persons": int(num_persons)}
    victim = family.build(preset=preset, num_classes=int(num_classes), layout=layout, **config)
    if entry is not None:
        path = zoo.entry_path(entry)
        if not path.is_file():
            raise CheckpointError(f"zoo file {path} for {family.name}/{dataset}/{preset} is missing; reinstall skelrobust")
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            raise CheckpointError(
                f"zoo file {path} has sha256 {digest}, the manifest says {entry['sha256']}; the file is corrupt, reinstall skelrobust"
            )
        _load_checkpoint(victim, path, family.convert_state_dict)
    return victim


def _build_custom(
    spec: str, num_classes: int | None, layout: str | None, config: dict[str, Any], num_persons: int | None = None
) -> Victim:
    """Call the user's factory and wrap a plain module as a victim.

    The factory gets ``num_classes`` when it takes it, and the data's ``layout`` and ``num_persons`` when it
    names those parameters (so one factory builds for any dataset); an explicit build option wins.
    """
    factory = load_object(spec)
    if not callable(factory):
        raise ConfigError(f"victim {spec!r} is not callable: expected a factory returning a Victim or nn.Module")
    kwargs = dict(config)
    if num_classes is not None and _accepts(factory, "num_classes"):
        kwargs["num_classes"] = int(num_classes)
    if layout is not None and "layout" not in kwargs and _names(factory, "layout"):
        kwargs["layout"] = get_layout(layout).name
    if num_persons is not None and "num_persons" not in kwargs and _names(factory, "num_persons"):
        kwargs["num_persons"] = int(num_persons)
    try:
        built = factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"victim factory {spec!r} rejected the arguments {sorted(kwargs)}: {exc}") from exc
    own_classes = getattr(built, "num_classes", None)
    if num_classes is not None and isinstance(own_classes, int) and own_classes != int(num_classes):
        raise LayoutMismatchError(f"victim {spec!r} has {own_classes} classes, {num_classes} requested")
    if isinstance(built, Victim):
        if layout is not None and built.layout.name != get_layout(layout).name:
            raise LayoutMismatchError(f"victim {spec!r} expects layout {built.layout.name!r}, requested {layout!r}")
        return built
    if not isinstance(built, nn.Module):
        raise ConfigError(f"victim factory {spec!r} returned {type(built).__name__}; expected a Victim or an nn.Module")
    return Victim.wrap(built, layout=layout or "ntu25", num_classes=num_classes, name=spec, config=dict(config))


def _accepts(fn: Any, param: str) -> bool:
    """Whether ``fn`` takes a keyword ``param`` (by name or through ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == param or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _names(fn: Any, param: str) -> bool:
    """Whether ``fn`` names the parameter ``param`` (not just ``**kwargs``, which may forward it elsewhere)."""
    try:
        return param in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _load_checkpoint(victim: Victim, path: Path, convert: Any) -> None:
    """Strictly load ``path`` into ``victim.network``; say so when the classifier size is the problem."""
    try:
        digest = load_into(victim.network, path, convert=convert)
    except CheckpointError as exc:
        hint = _head_hint(victim, path, convert)
        if not hint and not record_path(path).is_file():
            hint = f" (built as preset {victim.preset!r}; no build record {record_path(path).name} beside it: pass the --preset/--config it was trained with)"
        raise CheckpointError(f"victim {victim.name!r}: {exc}{hint}") from exc
    victim.checkpoint = str(path)
    victim.checkpoint_sha256 = digest


def _head_hint(victim: Victim, path: Path, convert: Any) -> str:
    """A hint naming the checkpoint's class count when only output-sized tensors disagree."""
    try:
        state = read_state_dict(path)
        state = convert(state) if convert is not None else state
    except CheckpointError:
        return ""
    own = victim.network.state_dict()
    sizes = {
        int(state[k].shape[0])
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape and own[k].ndim >= 1 and own[k].shape[0] == victim.num_classes
        and state[k].ndim >= 1 and state[k].shape[1:] == own[k].shape[1:]
    }
    if len(sizes) == 1:
        return f" (the checkpoint's classifier has {sizes.pop()} outputs, the victim was built for num_classes={victim.num_classes})"
    return ""
