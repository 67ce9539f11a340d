"""Defenses: ways of hardening a victim, evaluated on every adversarial set the runner produces.

A defense is one class in one file under ``defenses/``, registered with ``@register_defense("name")``.
Its :meth:`Defense.wrap` takes a :class:`~skelrobust.victim.Victim` and returns a :class:`Victim` with the
same layout, class count and input contract (canonical ``(N, C, T, V, M)`` in, ``(N, num_classes)``
logits out), so the runner evaluates a defended victim exactly like a bare one.

Input-transform defenses (smoothing, quantisation, ...) subclass :class:`InputTransformDefense` and
implement :meth:`InputTransformDefense.transform`. The transform runs on the canonical tensor, in data
units, *before* the victim's own adapter, so it works for every architecture and every layout.

Each defense declares whether gradients flow through it (``differentiable``) and whether it is
randomised: an adaptive attacker needs to know both (a non-differentiable transform calls for BPDA, a
randomised one for expectation over transformation).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from .errors import ConfigError
from .registry import Registry, is_object_spec, load_object
from .victim import Victim


class Defense(ABC):
    """Base class of every defense.

    Class attributes:
        name: Registry name (set by :func:`register_defense`).
        differentiable: Gradients w.r.t. the input flow through the defended victim.
        randomized: The defended victim's output is random for a fixed input.
        paper: Citation of the method, if any.
    """

    name: ClassVar[str] = "defense"
    differentiable: ClassVar[bool] = True
    randomized: ClassVar[bool] = False
    paper: ClassVar[str] = ""

    @abstractmethod
    def wrap(self, victim: Victim) -> Victim:
        """The defended victim: same layout, class count and input contract as ``victim``."""

    def config(self) -> dict[str, Any]:
        """Name and parameters, recorded with results."""
        public = {
            k: v for k, v in vars(self).items()
            if not k.startswith("_") and isinstance(v, (int, float, str, bool, type(None), list, tuple))
        }
        return {"name": self.name, "differentiable": self.differentiable, "randomized": self.randomized, **public}


class _Transform(nn.Module):
    """Applies an :class:`InputTransformDefense` inside a victim's adapter chain."""

    def __init__(self, defense: "InputTransformDefense") -> None:
        super().__init__()
        self.defense = defense

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.defense.transform(x)


class InputTransformDefense(Defense):
    """A defense that transforms the canonical input before the victim sees it."""

    @abstractmethod
    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The transformed batch: ``(N, C, T, V, M)`` in, same shape out; absent entries stay exactly zero."""

    def wrap(self, victim: Victim) -> Victim:
        """A victim sharing ``victim``'s network whose adapter first applies :meth:`transform`."""
        defended = Victim(
            victim.network,
            layout=victim.layout,
            num_classes=victim.num_classes,
            adapter=nn.Sequential(_Transform(self), victim.adapter),
            name=f"{victim.name}+{self.name}",
            preset=victim.preset,
            config={**victim.config, "defense": self.config()},
            checkpoint=victim.checkpoint,
            checkpoint_sha256=victim.checkpoint_sha256,
            num_persons=victim.num_persons,
        )
        return defended.train(victim.training)


DEFENSES: Registry[type[Defense]] = Registry(
    "defense", builtin_package="skelrobust.defenses", entry_point_group="skelrobust.defenses"
)


def register_defense(name: str, **metadata: Any) -> Callable[[type[Defense]], type[Defense]]:
    """Class decorator registering a defense under ``name`` (also sets ``cls.name``)."""

    def decorator(cls: type[Defense]) -> type[Defense]:
        cls.name = name
        DEFENSES.register(
            name, cls, differentiable=cls.differentiable, randomized=cls.randomized,
            description=(cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "", **metadata,
        )
        return cls

    return decorator


def create_defense(name: str, **options: Any) -> Defense:
    """Instantiate a registered defense, or user code named ``module:attr`` / ``file.py:attr``.

    Raises:
        RegistryError: unknown name. ConfigError: an option the defense does not take, or a bad value.
    """
    cls = load_object(name) if is_object_spec(name) else DEFENSES.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Defense)):
        raise ConfigError(f"defense {name!r} is not a skelrobust.defense.Defense subclass")
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"defense {name!r}: bad options {sorted(options)} ({exc})") from exc
