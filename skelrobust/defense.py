"""Defenses: ways of hardening a victim, evaluated on every adversarial set the runner produces.

A defense is one class in one file under ``defenses/``, registered with ``@register_defense("name")``.
Its :meth:`Defense.wrap` takes a :class:`~skelrobust.victim.Victim` and returns a :class:`Victim` with the
same layout, class count and input contract (canonical ``(N, C, T, V, M)`` in, ``(N, num_classes)``
logits out), so the runner evaluates a defended victim exactly like a bare one.

Input-transform defenses (smoothing, quantisation, ...) subclass :class:`InputTransformDefense` and
implement :meth:`InputTransformDefense.transform`. The transform runs on the canonical tensor, in data
units, *before* the victim's own adapter, so it works for every architecture and every layout.

Each defense declares its :class:`DefenseKind` (hardened weights, input transform, randomized model,
Bayesian ensemble), whether gradients flow through it (``differentiable``) and whether it is randomised.
:meth:`Defense.adaptive_model` turns that into what an adaptive white-box attacker differentiates
(Athalye, Carlini and Wagner, ICML 2018; Tramer et al., NeurIPS 2020): the defended model itself when
gradients flow through it, BPDA (the transform's backward pass replaced by the identity) for a
non-differentiable transform, and expectation over transformation (EOT) for a randomised one.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from .errors import ConfigError, UnsupportedError
from .registry import Registry, is_object_spec, load_object
from .victim import Victim


class DefenseKind(str, enum.Enum):
    """What a defense changes, which decides how it is attacked adaptively."""

    NONE = "none"  #: the undefended reference
    HARDENED_WEIGHTS = "hardened-weights"  #: other weights for the same architecture (adversarial training)
    INPUT_TRANSFORM = "input-transform"  #: a transform of the input before the victim
    RANDOMIZED = "randomized"  #: a randomised prediction (randomized smoothing)
    BAYESIAN_ENSEMBLE = "bayesian-ensemble"  #: an average over posterior samples (BEAT)


class Defense(ABC):
    """Base class of every defense.

    Class attributes:
        name: Registry name (set by :func:`register_defense`).
        kind: What the defense changes (:class:`DefenseKind`).
        differentiable: Gradients w.r.t. the input flow through the defended victim.
        randomized: The defended victim's output is random for a fixed input.
        paper: Citation of the method, if any.
    """

    name: ClassVar[str] = "defense"
    kind: ClassVar[DefenseKind] = DefenseKind.INPUT_TRANSFORM
    differentiable: ClassVar[bool] = True
    randomized: ClassVar[bool] = False
    paper: ClassVar[str] = ""

    @abstractmethod
    def wrap(self, victim: Victim) -> Victim:
        """The defended victim: same layout, class count and input contract as ``victim``."""

    def adaptive_model(self, victim: Victim) -> tuple[nn.Module, str]:
        """``(model, method)``: what an adaptive white-box attacker differentiates to attack ``wrap(victim)``.

        Default: the defended victim itself, gradients flowing through the defense. Non-differentiable
        and randomised defenses override this (BPDA, EOT); ``method`` names what was done, for the results.
        """
        if not self.differentiable or self.randomized:
            raise UnsupportedError(f"defense {self.name!r} is randomised or not differentiable and defines no adaptive attack (BPDA / EOT)")
        return self.wrap(victim), "gradients through the defense"

    def config(self) -> dict[str, Any]:
        """Name and parameters, recorded with results."""
        public = {
            k: v for k, v in vars(self).items()
            if not k.startswith("_") and isinstance(v, (int, float, str, bool, type(None), list, tuple))
        }
        return {
            "name": self.name, "kind": self.kind.value, "differentiable": self.differentiable, "randomized": self.randomized,
            "paper": self.paper, **public,
        }


class _Transform(nn.Module):
    """Applies an :class:`InputTransformDefense` inside a victim's adapter chain."""

    def __init__(self, defense: "InputTransformDefense") -> None:
        super().__init__()
        self.defense = defense

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.defense.transform(x)


class _StraightThrough(nn.Module):
    """BPDA with the identity (Athalye et al. 2018): forward applies the transform, backward passes gradients unchanged."""

    def __init__(self, defense: "InputTransformDefense") -> None:
        super().__init__()
        self.defense = defense

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (self.defense.transform(x) - x).detach()


class InputTransformDefense(Defense):
    """A defense that transforms the canonical input before the victim sees it.

    Adaptive attack: gradients through :meth:`transform` when ``differentiable``, else BPDA with the identity
    as the transform's backward pass (the transform approximately preserves its input).
    """

    kind = DefenseKind.INPUT_TRANSFORM

    def adaptive_model(self, victim: Victim) -> tuple[nn.Module, str]:
        if self.differentiable:
            return self.wrap(victim), "gradients through the transform"
        bpda = Victim(
            victim.network, layout=victim.layout, num_classes=victim.num_classes,
            adapter=nn.Sequential(_StraightThrough(self), victim.adapter), name=f"{victim.name}+{self.name}(bpda)",
            preset=victim.preset, config=victim.config, num_persons=victim.num_persons,
        )
        return bpda.train(victim.training), "BPDA (identity backward through the transform)"

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
            name, cls, kind=cls.kind.value, paper=cls.paper, differentiable=cls.differentiable, randomized=cls.randomized,
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
