"""Check ``--option KEY=VALUE`` attack options against the types the attack's constructor declares.

Option values arrive parsed as YAML (``false`` -> bool, ``3`` -> int, ``banana`` -> str). An attack that
applies ``bool()`` or ``float()`` itself would take ``random_start=banana`` as true or fail with an
unrelated message, so the runner checks every option first: the name must be a keyword of the attack's
``__init__`` (or of a base class it forwards ``**kwargs`` to), and the value must fit the annotation.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ConfigError

_NOTHING = inspect.Parameter.empty


def declared_options(cls: type) -> dict[str, Any]:
    """Keyword options of ``cls(...)`` with their annotations (``inspect.Parameter.empty`` when unannotated).

    Follows the MRO while an ``__init__`` forwards ``**kwargs``, so a subclass's own options and its base
    class's shared ones (``eps``, ``steps``, masks...) are all listed.
    """
    options: dict[str, Any] = {}
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None:
            continue
        if klass is object:
            break
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # annotations naming objects only imported for type checkers: check names only
            hints = {}
        forwards = False
        for name, param in inspect.signature(init).parameters.items():
            if name == "self" or param.kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                forwards = True
                continue
            options.setdefault(name, hints.get(name, _NOTHING))
        if not forwards:
            break
    return options


def check_attack_options(cls: type, attack: str, options: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` for an option ``cls`` does not declare or a value of the wrong type.

    The message names the attack, the option, the value given and the type expected.
    """
    declared = declared_options(cls)
    unknown = sorted(set(options) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise ConfigError(f"attack {attack!r} has no option(s) {', '.join(unknown)}; its options: {known}")
    for name, value in options.items():
        hint = declared[name]
        if hint is not _NOTHING and not fits(value, hint):
            raise ConfigError(f"attack {attack!r}: option {name}={value!r} is not valid; expected {describe(hint)}")


def fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` (a YAML scalar, list or mapping) fits the annotation ``hint``."""
    if hint is Any or hint is _NOTHING:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if _is_tensor(hint):
        return fits(value, float) or (isinstance(value, list) and all(fits(v, float) for v in value))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return isinstance(value, (list, tuple)) and all(fits(v, args[0]) for v in value)
    if origin is tuple and args:
        return isinstance(value, (list, tuple)) and len(value) == len(args) and all(fits(v, a) for v, a in zip(value, args))
    if origin in (list, tuple, Sequence, typing.Sequence) or hint in (list, tuple):
        inner = args[0] if args else Any
        return isinstance(value, (list, tuple)) and all(fits(v, inner) for v in value)
    if origin in (dict, Mapping) or hint is dict:
        return isinstance(value, dict)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an annotation this checker does not model: the attack validates it


def describe(hint: Any) -> str:
    """Human name of an annotation, as the option's expected type in messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(describe(a) for a in args))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    names = {type(None): "null", bool: "a boolean (true or false)", int: "an integer", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    if _is_tensor(hint):
        return "a number or a list of numbers"
    if origin in (list, tuple, Sequence, typing.Sequence) or hint in (list, tuple):
        inner = args[0] if args else Any
        return "a list" + (f" of {describe(inner)}s" if inner is not Any and inner is not Ellipsis else "")
    if origin in (dict, Mapping) or hint is dict:
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def _is_tensor(hint: Any) -> bool:
    return getattr(hint, "__module__", "") == "torch" and getattr(hint, "__name__", "") == "Tensor"
