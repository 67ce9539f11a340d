"""Name-based plugin registries (modelled on timm's ``register_model``).

One :class:`Registry` per plugin kind (datasets, victims, attacks, defenses). Built-in plugins register
themselves by decorator when their package is imported; third-party packages register through an
entry-point group (``skelrobust.victims`` etc.), loaded lazily on the first lookup. A duplicate name
raises: a benchmark must never silently replace a plugin.
"""

from __future__ import annotations

import fnmatch
import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable, Generic, Iterable, TypeVar

from .errors import RegistryError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered plugin: its name, the object and free-form metadata shown by the listing commands."""

    name: str
    obj: T
    metadata: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """A named collection of plugins of one kind.

    Args:
        kind: Human name used in messages ("attack", "victim", ...).
        builtin_package: Package whose import registers the built-in plugins (imported on first lookup,
            which avoids import cycles at ``import skelrobust``).
        entry_point_group: Entry-point group scanned for third-party plugins.
        describe: ``describe(name, obj) -> metadata`` for an object an entry point names directly (a bare
            class rather than a module that registers itself), so listings show what the decorator would.
    """

    def __init__(
        self,
        kind: str,
        builtin_package: str | None = None,
        entry_point_group: str | None = None,
        describe: Callable[[str, Any], dict[str, Any]] | None = None,
    ):
        self.kind = kind
        self._builtin_package = builtin_package
        self._entry_point_group = entry_point_group
        self._describe = describe
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = False

    def register(self, name: str, obj: T | None = None, **metadata: Any) -> Any:
        """Register ``obj`` under ``name``; without ``obj`` return a decorator."""

        def decorator(target: T) -> T:
            if name in self._entries and self._entries[name].obj is not target:
                raise RegistryError(f"duplicate {self.kind} name {name!r}: already registered by {self._entries[name].obj!r}")
            self._entries[name] = Entry(name, target, dict(metadata))
            return target

        return decorator if obj is None else decorator(obj)

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self._builtin_package:
            importlib.import_module(self._builtin_package)
        if self._entry_point_group:
            for ep in entry_points(group=self._entry_point_group):
                if ep.name not in self._entries:
                    loaded = ep.load()
                    # A plugin module registers itself on import; a bare object is registered under the entry name.
                    if ep.name not in self._entries and not isinstance(loaded, type(importlib)):
                        self.register(ep.name, loaded, **(self._describe(ep.name, loaded) if self._describe else {}))

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name``; an unknown name raises :class:`RegistryError` listing the known ones."""
        self._ensure_loaded()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise RegistryError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def get(self, name: str) -> T:
        """The registered object for ``name``."""
        return self.entry(name).obj

    def names(self, filter: str = "*", exclude: str | Iterable[str] = ()) -> list[str]:
        """Sorted registered names matching the fnmatch pattern ``filter`` and none of ``exclude``."""
        self._ensure_loaded()
        excludes = [exclude] if isinstance(exclude, str) else list(exclude)
        return sorted(
            n for n in self._entries if fnmatch.fnmatch(n, filter) and not any(fnmatch.fnmatch(n, e) for e in excludes)
        )

    def entries(self) -> list[Entry[T]]:
        """All entries, sorted by name."""
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries


def load_object(spec: str) -> Any:
    """Load a user's object named ``package.module:attr`` or ``path/to/file.py:attr``.

    Only called where the user named the object explicitly (``--victim mypkg.models:build``), so running
    their code is what they asked for.
    """
    import importlib.util
    from pathlib import Path

    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise RegistryError(f"cannot load {spec!r}: expected 'package.module:attr' or 'path/to/file.py:attr'")
    if module_name.endswith(".py"):
        path = Path(module_name).expanduser()
        if not path.is_file():
            raise RegistryError(f"cannot load {spec!r}: file {path} does not exist")
        mod_spec = importlib.util.spec_from_file_location(f"skelrobust_user_{path.stem}", path)
        if mod_spec is None or mod_spec.loader is None:
            raise RegistryError(f"cannot load {spec!r}: {path} is not an importable Python file")
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise RegistryError(f"cannot load {spec!r}: module {module_name!r} not importable ({exc})") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise RegistryError(f"cannot load {spec!r}: module {module_name!r} has no attribute {attr!r}") from None


def is_object_spec(name: str) -> bool:
    """True when ``name`` names user code (``module:attr`` or ``file.py:attr``) rather than a registry entry."""
    return ":" in name


def import_submodules(package: str) -> None:
    """Import every module of ``package`` (in name order), so that each one's decorators register it."""
    import pkgutil

    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
