"""Victims: recognisers wrapped so that they take the canonical tensor and return logits.

A :class:`Victim` is an ``nn.Module`` holding

- ``network``: the bare model with the official architecture, parameter names and input signature, so
  official checkpoints load unchanged with ``strict=True``;
- ``adapter``: a differentiable module mapping the canonical ``(N, C, T, V, M)`` tensor to the network's
  input (centring, temporal resampling, joint reordering...). It returns a tensor or a tuple of
  positional network inputs (SkateFormer takes ``(x, index_t)``).

Because adapters live with the model, an adversarial example made on one architecture is valid input
for every other victim of the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn

from .errors import ConfigError, LayoutMismatchError
from .layouts import SkeletonLayout, get_layout
from .registry import Registry


class Identity(nn.Module):
    """The adapter of a network that takes the canonical tensor as is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Victim(nn.Module):
    """A recogniser on the canonical tensor.

    Args:
        network: The bare model.
        layout: Skeleton layout the victim expects on its input.
        num_classes: Number of output logits.
        adapter: Canonical tensor -> network input(s); identity when omitted.
        name: Registry name or a user-facing label.
        preset: Configuration preset (``lite``, ``full``...), if any.
        config: The architecture configuration, recorded with results.
        checkpoint: Path of the loaded weights, if any.
        checkpoint_sha256: Hash of those weights, recorded with results.
        num_persons: Persons the network expects (``M``); ``None`` accepts any.

    Shape:
        input ``(N, C, T, V, M)`` float32 in the dataset's units; output ``(N, num_classes)`` logits.
    """

    def __init__(
        self,
        network: nn.Module,
        *,
        layout: str | SkeletonLayout,
        num_classes: int,
        adapter: nn.Module | None = None,
        name: str = "custom",
        preset: str | None = None,
        config: dict[str, Any] | None = None,
        checkpoint: str | None = None,
        checkpoint_sha256: str | None = None,
        num_persons: int | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.adapter = adapter if adapter is not None else Identity()
        self.layout = get_layout(layout)
        self.num_classes = int(num_classes)
        self.name = name
        self.preset = preset
        self.config = dict(config or {})
        self.checkpoint = checkpoint
        self.checkpoint_sha256 = checkpoint_sha256
        self.num_persons = num_persons

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        inputs = self.adapter(x)
        logits = self.network(*inputs) if isinstance(inputs, tuple) else self.network(inputs)
        if logits.ndim != 2 or logits.shape != (x.shape[0], self.num_classes):
            raise LayoutMismatchError(
                f"victim {self.name!r} returned logits of shape {tuple(logits.shape)}, "
                f"expected ({x.shape[0]}, {self.num_classes})"
            )
        return logits

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`LayoutMismatchError` unless ``x`` is a canonical tensor this victim accepts."""
        if x.ndim != 5:
            raise LayoutMismatchError(
                f"victim {self.name!r} expects a canonical (N, C, T, V, M) tensor, got shape {tuple(x.shape)}"
            )
        self.layout.check_joints(int(x.shape[3]), f"input to victim {self.name!r}")
        if self.num_persons is not None and x.shape[4] != self.num_persons:
            raise LayoutMismatchError(
                f"victim {self.name!r} expects M={self.num_persons} persons, input has M={x.shape[4]}"
            )

    @property
    def metadata(self) -> dict[str, Any]:
        """What results record about this victim."""
        return {
            "name": self.name,
            "preset": self.preset,
            "layout": self.layout.name,
            "num_classes": self.num_classes,
            "num_persons": self.num_persons,
            "config": dict(self.config),
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": self.checkpoint_sha256,
            "num_parameters": sum(p.numel() for p in self.network.parameters()),
        }

    @classmethod
    def wrap(
        cls,
        module: nn.Module,
        layout: str | SkeletonLayout = "ntu25",
        num_classes: int | None = None,
        adapter: nn.Module | None = None,
        name: str = "custom",
        **kwargs: Any,
    ) -> "Victim":
        """Wrap any ``nn.Module`` as a victim (the model a user brings).

        ``num_classes`` is required unless ``module`` exposes ``num_classes``.
        """
        if isinstance(module, Victim):
            return module
        if num_classes is None:
            num_classes = getattr(module, "num_classes", None)
        if num_classes is None:
            raise LayoutMismatchError(f"Victim.wrap({name!r}): pass num_classes (the module does not expose it)")
        return cls(module, layout=layout, num_classes=num_classes, adapter=adapter, name=name, **kwargs)


@dataclass(frozen=True)
class VictimFamily:
    """A registered architecture family.

    Attributes:
        name: Registry name (``stgcn``, ``ctrgcn``...).
        build: ``build(preset=..., num_classes=..., layout=..., num_persons=..., **config) -> Victim``
            with random weights.
        presets: Preset names; the first is the default when no pretrained entry applies.
        layouts: Layouts the family supports (its adapter handles them).
        description: One line for ``skelrobust victims``.
        convert_state_dict: Maps a checkpoint's state dict (already unwrapped) onto ``network`` names:
            used for releases whose key names differ from the official ones (mmskeleton, pyskl, the
            prior benchmark). Identity when omitted.
        paper: Citation.
    """

    name: str
    build: Callable[..., Victim]
    presets: tuple[str, ...]
    layouts: tuple[str, ...] = ("ntu25",)
    description: str = ""
    convert_state_dict: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
    paper: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


VICTIMS: Registry[VictimFamily] = Registry("victim", builtin_package="skelrobust.victims", entry_point_group="skelrobust.victims")


def preset_config(family: str, presets: dict[str, dict[str, Any]], preset: str, config: dict[str, Any],
                  extra_options: Iterable[str] = ()) -> dict[str, Any]:
    """A family's configuration: ``presets[preset]`` with the ``config`` overrides applied.

    The overrides may name the preset's keys and ``extra_options``; an unknown preset or option is one line
    naming the family and what it accepts (nothing is silently ignored).
    """
    if preset not in presets:
        raise ConfigError(f"{family}: unknown preset {preset!r}; expected one of {sorted(presets)}")
    allowed = set(presets[preset]) | set(extra_options)
    unknown = set(config) - allowed
    if unknown:
        raise ConfigError(f"{family}: unknown option(s) {sorted(unknown)}; expected some of {sorted(allowed)}")
    return {**presets[preset], **config}


def register_victim(family: VictimFamily) -> VictimFamily:
    """Register an architecture family."""
    VICTIMS.register(family.name, family, presets=family.presets, layouts=family.layouts, description=family.description)
    return family
