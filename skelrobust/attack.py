"""The attack contract: budgets, masks, threat models and the base class every attack derives from.

An attack is one class in one file under ``attacks/``, registered with ``@register_attack("name")``. It
implements :meth:`Attack.run` (the algorithm only). :meth:`Attack.__call__` is owned by the base class: it
validates input, grants exactly the access of the declared threat model, puts the model in eval mode and
restores it, and projects the result onto the budget, the masks and the motion constraints, so no attack
can return an example outside them. Attacks never judge success: the runner does.

Shapes: every tensor is canonical ``(N, C, T, V, M)``. Entries where a person is absent in a frame (all
coordinates zero, which covers padded frames) are never perturbed. Budgets are in the data's own units;
nothing is clamped to an invented data range.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence, final

import torch
import torch.nn.functional as F
from torch import nn

from .adapters import person_present
from .errors import BudgetViolationError, ConfigError, ThreatModelError, UnsupportedError
from .layouts import SkeletonLayout
from .query import QueryOracle
from .registry import Registry


class ThreatModel(str, enum.Enum):
    """What an attack may access. The runner hands it exactly this."""

    WHITE_BOX = "white-box"  #: the victim itself, with gradients, and the true labels
    TRANSFER = "transfer"  #: a surrogate (with gradients and its training data) and the true labels; never the victim
    HARD_NO_BOX = "hard-no-box"  #: only the clean samples: no model, no labels
    QUERY = "query"  #: the victim's output through a counting oracle, and the true labels
    #: the training split with its labels and the true labels, no model: the attack builds its own surrogate
    OWN_SURROGATE = "own-surrogate"


@dataclass(frozen=True)
class Budget:
    """A perturbation budget ``||x' - x|| <= eps`` in the data's units.

    Args:
        eps: Scalar, or a tensor broadcastable to ``(C, T, V, M)`` (per-coordinate, per-frame, per-joint
            or per-person budgets).
        norm: ``linf`` (element-wise) or ``l2`` (per sample over all perturbable entries; a tensor ``eps``
            weights the norm: ``||delta / eps||_2 <= 1``).
        unit: Unit of ``eps``, recorded with results (``m`` for NTU and the synthetic set).
    """

    eps: float | torch.Tensor = 0.01
    norm: str = "linf"
    unit: str = "m"

    def __post_init__(self) -> None:
        if self.norm not in ("linf", "l2"):
            raise ConfigError(f"budget norm must be 'linf' or 'l2', got {self.norm!r}")
        eps = torch.as_tensor(self.eps, dtype=torch.float32)
        if not torch.isfinite(eps).all() or (eps < 0).any():
            raise ConfigError(f"budget eps must be finite and >= 0, got {self.eps!r}")
        if eps.ndim > 4:
            raise ConfigError(f"budget eps must broadcast to (C, T, V, M), got shape {tuple(eps.shape)}")

    def eps_tensor(self, like: torch.Tensor) -> torch.Tensor:
        """``eps`` as a tensor broadcastable to ``like`` (N, C, T, V, M), on its device and dtype."""
        eps = torch.as_tensor(self.eps, dtype=like.dtype, device=like.device)
        return eps.reshape((1,) * (5 - eps.ndim) + tuple(eps.shape)) if eps.ndim else eps

    def project(self, delta: torch.Tensor) -> torch.Tensor:
        """The perturbation mapped into the budget (exact Euclidean projection for linf and scalar l2)."""
        eps = self.eps_tensor(delta)
        if self.norm == "linf":
            return torch.maximum(torch.minimum(delta, eps), -eps)
        if eps.ndim == 0:
            norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
            return delta * (eps / norms).clamp(max=1.0).view(-1, 1, 1, 1, 1)
        scaled = torch.where(eps > 0, delta / eps.clamp_min(1e-12), torch.zeros_like(delta))
        norms = scaled.flatten(1).norm(dim=1).clamp_min(1e-12)
        return delta * (1.0 / norms).clamp(max=1.0).view(-1, 1, 1, 1, 1) * (eps > 0)

    def size(self, delta: torch.Tensor) -> torch.Tensor:
        """Per-sample size of ``delta`` in this budget's norm, relative to eps (<= 1 means inside)."""
        eps = self.eps_tensor(delta)
        safe = torch.where(eps > 0, eps, torch.ones_like(eps))
        rel = torch.where(eps > 0, delta / safe, torch.where(delta == 0, 0.0, torch.inf))
        if self.norm == "linf":
            return rel.abs().flatten(1).amax(dim=1)
        return rel.flatten(1).norm(dim=1)

    def random(self, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A random perturbation inside the budget (uniform in the linf box; uniform in the l2 ball)."""
        eps = self.eps_tensor(like)
        if self.norm == "linf":
            u = torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)
            return (2 * u - 1) * eps
        g = torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)
        g = g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1, 1)
        d = g[0].numel()
        r = torch.rand(like.shape[0], generator=generator, device=like.device, dtype=like.dtype) ** (1.0 / d)
        return self.project(g * r.view(-1, 1, 1, 1, 1) * (eps.max() if eps.ndim else eps))

    def to_dict(self) -> dict[str, Any]:
        if isinstance(self.eps, (int, float)):  # keep the user's number (a float32 round trip would record 0.0199...)
            return {"eps": float(self.eps), "norm": self.norm, "unit": self.unit}
        eps = torch.as_tensor(self.eps)
        return {"eps": float(eps) if eps.ndim == 0 else eps.tolist(), "norm": self.norm, "unit": self.unit}


@dataclass(frozen=True)
class Masks:
    """Which entries may be perturbed, beyond the automatic present-person mask.

    Args:
        joints: Joint indices that may move (all when None).
        frames: Frame indices that may move (all when None).
        persons: Person indices that may move (all when None).
    """

    joints: tuple[int, ...] | None = None
    frames: tuple[int, ...] | None = None
    persons: tuple[int, ...] | None = None

    def tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Boolean ``(N, 1, T, V, M)`` mask: user masks AND entries where the person is present in the frame."""
        n, _, t, v, m = x.shape
        present = person_present(x)[:, None, :, None, :]  # (N, 1, T, 1, M)
        mask = present.expand(n, 1, t, v, m).clone()
        for axis, size, allowed in ((2, t, self.frames), (3, v, self.joints), (4, m, self.persons)):
            if allowed is None:
                continue
            bad = [i for i in allowed if not -size <= i < size]
            if bad:
                raise ConfigError(f"mask index {bad} out of range for axis of size {size}")
            keep = torch.zeros(size, dtype=torch.bool, device=x.device)
            keep[list(allowed)] = True
            shape = [1, 1, 1, 1, 1]
            shape[axis] = size
            mask &= keep.view(shape)
        return mask


class Constraint(ABC):
    """A motion-coherence constraint, composable with others and with the budget.

    A constraint may project the perturbation (hard constraint), add a penalty to the attack objective
    (soft constraint), or both. Projections run before the budget projection, which always runs last, so
    the budget is a hard guarantee.

    Attributes:
        rounds: How many times the attack context alternates (constraint projections, budget projection);
            the largest value among the constraints in use applies (default 1).
    """

    rounds: int = 1

    def project(
        self, delta: torch.Tensor, x: torch.Tensor, layout: SkeletonLayout, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The perturbation ``delta`` moved onto the constraint set for clean ``x`` (default: unchanged).

        ``mask`` is the boolean ``(N, 1, T, V, M)`` of entries that may move (None: every present entry).
        """
        return delta

    def penalty(self, x_adv: torch.Tensor, x: torch.Tensor, layout: SkeletonLayout) -> torch.Tensor:
        """Per-sample ``(N,)`` penalty subtracted from the objective (default: zero)."""
        return x_adv.new_zeros(x_adv.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """Name and parameters, recorded with results."""
        return {"type": type(self).__name__, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}


@dataclass
class AttackOutput:
    """What an attack returns: the adversarial batch and per-sample bookkeeping (never a success flag).

    Attributes:
        adversarial: ``(N, C, T, V, M)``, inside the budget, masks and hard constraints.
        iterations: ``(N,)`` iterations spent on each sample.
        gradient_evaluations: ``(N,)`` forward+backward passes of the model per sample.
        queries: ``(N,)`` oracle queries per sample (query attacks).
        final_loss: ``(N,)`` objective at the returned example (NaN when not computed).
        extras: Attack-specific per-batch information (JSON-able).
    """

    adversarial: torch.Tensor
    iterations: torch.Tensor
    gradient_evaluations: torch.Tensor
    queries: torch.Tensor
    final_loss: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)


class AttackContext:
    """Everything an attack may touch during :meth:`Attack.run`, restricted by its threat model.

    Attributes:
        x: Clean batch ``(N, C, T, V, M)`` (read-only by convention).
        layout: Skeleton layout of ``x``.
        mask: Boolean ``(N, 1, T, V, M)`` of perturbable entries.
        budget: The budget.
        constraints: Motion constraints (projections and penalties).
        generator: Seeded random generator on ``x``'s device.
        sample_ids: Dataset ids of the batch (for per-sample caches such as TASAR's TV-AR fits).
    """

    def __init__(
        self,
        attack: "Attack",
        x: torch.Tensor,
        *,
        layout: SkeletonLayout,
        labels: torch.Tensor | None,
        target: torch.Tensor | None,
        model: nn.Module | None,
        oracle: QueryOracle | None,
        generator: torch.Generator,
        sample_ids: Sequence[str] | None,
    ) -> None:
        self.attack = attack
        self.x = x
        self.layout = layout
        self.mask = attack.masks.tensor(x)
        self.budget = attack.budget
        self.constraints = attack.constraints
        self.generator = generator
        self.sample_ids = list(sample_ids) if sample_ids is not None else None
        self._labels = labels
        self._target = target
        self._model = model
        self._oracle = oracle
        n = x.shape[0]
        self.iterations = torch.zeros(n, dtype=torch.long)
        self.gradient_evaluations = torch.zeros(n, dtype=torch.long)
        self.queries = torch.zeros(n, dtype=torch.long)
        #: Objective ``(N,)`` at the returned example; attacks set it when they compute it.
        self.final_loss: torch.Tensor | None = None
        #: Attack-specific JSON-able information for the results.
        self.extras: dict[str, Any] = {}

    # --- access governed by the threat model -------------------------------------------------------
    @property
    def model(self) -> nn.Module:
        """The model the threat model grants (victim for white-box, surrogate for transfer)."""
        if self._model is None:
            raise ThreatModelError(f"{self.attack.name}: threat model {self.attack.threat.value!r} grants no model access")
        return self._model

    @property
    def labels(self) -> torch.Tensor:
        """True labels ``(N,)``; a hard no-box attack has none."""
        if self._labels is None:
            raise ThreatModelError(f"{self.attack.name}: threat model {self.attack.threat.value!r} grants no labels")
        return self._labels

    @property
    def target(self) -> torch.Tensor | None:
        """Target labels ``(N,)`` in targeted mode, else None."""
        return self._target

    def query(self, x_adv: torch.Tensor, owners: torch.Tensor | None = None) -> torch.Tensor:
        """Ask the oracle (query attacks only): scores ``(K, classes)`` or top-1 labels ``(K,)``.

        ``owners`` ``(K,)`` names the sample each row is charged to (default: one row per sample). The
        oracle counts and caps the queries (:class:`skelrobust.query.QueryOracle`); :attr:`queries` mirrors it.
        """
        if self._oracle is None:
            raise ThreatModelError(f"{self.attack.name}: threat model {self.attack.threat.value!r} grants no queries")
        try:
            return self._oracle(x_adv, owners)
        finally:
            self.queries = self._oracle.counts

    @property
    def queries_left(self) -> torch.Tensor:
        """Queries each sample may still make ``(N,)`` (query attacks only)."""
        if self._oracle is None:
            raise ThreatModelError(f"{self.attack.name}: threat model {self.attack.threat.value!r} grants no queries")
        return self._oracle.remaining

    @property
    def max_queries(self) -> int:
        """The per-sample query budget (query attacks only)."""
        if self._oracle is None:
            raise ThreatModelError(f"{self.attack.name}: threat model {self.attack.threat.value!r} grants no queries")
        return self._oracle.max_queries

    # --- helpers every iterative attack needs ------------------------------------------------------
    def project(self, x_adv: torch.Tensor, owners: torch.Tensor | None = None) -> torch.Tensor:
        """``x_adv`` mapped onto the feasible set: masks, constraint projections, then the budget (last).

        With constraints whose ``rounds`` exceeds 1, (constraint projections, budget projection) alternate
        that many times; the budget projection always ends the sequence. ``owners`` ``(K,)``: the sample
        of each row when ``x_adv`` holds several candidates per sample (query attacks).
        """
        x = self.x if owners is None else self.x[owners]
        mask = self.mask if owners is None else self.mask[owners]
        delta = (x_adv - x) * mask
        rounds = max((int(c.rounds) for c in self.constraints), default=1)
        for _ in range(rounds):
            for constraint in self.constraints:
                delta = constraint.project(delta, x, self.layout, mask=mask) * mask
            delta = self.budget.project(delta) * mask
        return x + delta

    def random_start(self) -> torch.Tensor:
        """A feasible random point around ``x`` (uniform in the budget, then projected)."""
        return self.project(self.x + self.budget.random(self.x, self.generator) * self.mask)

    def objective(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-sample objective to maximise: CE to the true label, or minus CE to the target when targeted."""
        if self._target is not None:
            return -F.cross_entropy(logits, self._target, reduction="none")
        return F.cross_entropy(logits, self.labels, reduction="none")

    def penalty(self, x_adv: torch.Tensor) -> torch.Tensor:
        """Sum of the constraints' soft penalties ``(N,)``."""
        total = x_adv.new_zeros(x_adv.shape[0])
        for constraint in self.constraints:
            total = total + constraint.penalty(x_adv, self.x, self.layout)
        return total

    def objective_and_grad(
        self,
        x_adv: torch.Tensor,
        objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        active: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward+backward of the granted model: per-sample objective ``(N,)`` and its gradient.

        Args:
            x_adv: Current iterate.
            objective: ``objective(logits, x_adv) -> (N,)``; default :meth:`objective` minus the penalties.
            active: Boolean ``(N,)`` of samples still being attacked (counted as gradient evaluations).

        Gradients are taken with respect to the input only, so model parameters never accumulate ``.grad``.
        """
        x_var = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = self.model(x_var)
            value = objective(logits, x_var) if objective is not None else self.objective(logits) - self.penalty(x_var)
            (grad,) = torch.autograd.grad(value.sum(), x_var)
        counted = torch.ones_like(self.gradient_evaluations, dtype=torch.bool) if active is None else active.cpu()
        self.gradient_evaluations += counted.long()
        return value.detach(), grad.detach()


class Attack(ABC):
    """Base class of every attack.

    Subclasses set the class attributes and implement :meth:`run`. Common arguments:

    Args:
        eps: Budget size in data units (default from benchmark.yaml: 0.01).
        norm: ``linf`` or ``l2``.
        steps: Iterations (default from benchmark.yaml: 200).
        constraints: Motion constraints (bone lengths, smoothness...).
        joints, frames, persons: Restrict perturbation to these indices.
        compat: ``None`` for the paper's behaviour, or a name from ``compat_modes`` (e.g. ``robustbenchhar``)
            to reproduce another code base's conventions for comparison with its numbers.
        unit: Unit of ``eps`` (recorded).

    Class attributes:
        name: Registry name (set by :func:`register_attack`).
        threat: The declared :class:`ThreatModel`.
        supports_targeted: Whether a target may be given.
        compat_modes: Accepted ``compat`` values.
        needs_training_data: The runner passes the surrogate's training split to :meth:`prepare`.
        paper: Citation listed by ``skelrobust attacks`` for a class registered through an entry point
            (built-ins pass ``paper=`` to :func:`register_attack`).
    """

    name: ClassVar[str] = "attack"
    paper: ClassVar[str] = ""
    threat: ClassVar[ThreatModel] = ThreatModel.WHITE_BOX
    supports_targeted: ClassVar[bool] = True
    compat_modes: ClassVar[tuple[str, ...]] = ()
    needs_training_data: ClassVar[bool] = False

    def __init__(
        self,
        *,
        eps: float | torch.Tensor = 0.01,
        norm: str = "linf",
        steps: int = 200,
        constraints: Sequence[Constraint] = (),
        joints: Sequence[int] | None = None,
        frames: Sequence[int] | None = None,
        persons: Sequence[int] | None = None,
        compat: str | None = None,
        unit: str = "m",
    ) -> None:
        if steps < 1:
            raise ConfigError(f"{self.name}: steps must be >= 1, got {steps}")
        if compat is not None and compat not in self.compat_modes:
            modes = ", ".join(self.compat_modes) or "none"
            raise ConfigError(f"{self.name}: unknown compat mode {compat!r}; supported: {modes}")
        self.budget = Budget(eps=eps, norm=norm, unit=unit)
        self.steps = int(steps)
        self.constraints = tuple(constraints)
        self.masks = Masks(
            joints=tuple(joints) if joints is not None else None,
            frames=tuple(frames) if frames is not None else None,
            persons=tuple(persons) if persons is not None else None,
        )
        self.compat = compat

    def prepare(self, *, model: nn.Module | None, train_data: Any, layout: SkeletonLayout, device: torch.device) -> None:
        """One-time set-up before the first batch (e.g. TASAR's post-training). Default: nothing."""

    @abstractmethod
    def run(self, ctx: AttackContext) -> torch.Tensor:
        """The algorithm: return the adversarial batch (the base class projects it afterwards)."""

    @final
    def __call__(
        self,
        x: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        layout: SkeletonLayout,
        model: nn.Module | None = None,
        target: torch.Tensor | None = None,
        oracle: QueryOracle | None = None,
        generator: torch.Generator | None = None,
        sample_ids: Sequence[str] | None = None,
    ) -> AttackOutput:
        """Attack a batch with exactly the access of this attack's threat model.

        Args:
            x: Clean batch ``(N, C, T, V, M)``, float.
            labels: True labels ``(N,)`` (not for hard no-box attacks).
            layout: Layout of ``x``.
            model: Victim (white-box) or surrogate (transfer).
            target: Target labels ``(N,)`` for a targeted attack.
            oracle: A fresh :class:`~skelrobust.query.QueryOracle` of the victim (query attacks); this call
                starts it, so its counts are this batch's queries.
            generator: Seeded generator for random starts and sampling.
            sample_ids: Dataset ids of the batch.
        """
        self._check_access(labels=labels, model=model, target=target, oracle=oracle)
        if x.ndim != 5 or not x.is_floating_point():
            raise ConfigError(f"{self.name}: expected a float (N, C, T, V, M) tensor, got {tuple(x.shape)} {x.dtype}")
        layout.check_joints(int(x.shape[3]), f"{self.name} input")
        n = x.shape[0]
        for label, t in (("labels", labels), ("target", target)):
            if t is not None and t.shape != (n,):
                raise ConfigError(f"{self.name}: {label} must have shape ({n},), got {tuple(t.shape)}")
        if sample_ids is not None and len(sample_ids) != n:
            raise ConfigError(f"{self.name}: {len(sample_ids)} sample ids for a batch of {n}")
        if generator is None:
            generator = torch.Generator(device=x.device).manual_seed(0)
        x = x.detach()
        ctx = AttackContext(
            self, x, layout=layout, labels=labels, target=target, model=model, oracle=oracle,
            generator=generator, sample_ids=sample_ids,
        )
        if oracle is not None:
            self._start_oracle(oracle, ctx)
        was_training = model.training if model is not None else False
        if model is not None:
            model.eval()
        try:
            raw = self.run(ctx)
        finally:
            if model is not None:
                model.train(was_training)
        if raw.shape != x.shape:
            raise BudgetViolationError(f"{self.name}: returned shape {tuple(raw.shape)}, expected {tuple(x.shape)}")
        if not torch.isfinite(raw).all():
            raise BudgetViolationError(f"{self.name}: returned non-finite values")
        adversarial = ctx.project(raw.detach().to(x.dtype))
        self._verify(adversarial, ctx)
        final_loss = ctx.final_loss if ctx.final_loss is not None else torch.full((n,), float("nan"))
        return AttackOutput(
            adversarial=adversarial,
            iterations=ctx.iterations,
            gradient_evaluations=ctx.gradient_evaluations,
            queries=oracle.counts if oracle is not None else ctx.queries,
            final_loss=final_loss.detach().float().cpu(),
            extras=ctx.extras,
        )

    def _check_access(self, *, labels: Any, model: Any, target: Any, oracle: Any) -> None:
        threat = self.threat
        if target is not None and not self.supports_targeted:
            raise UnsupportedError(f"attack {self.name!r} does not support targeted mode")
        if threat is ThreatModel.HARD_NO_BOX and (model is not None or labels is not None or oracle is not None):
            raise ThreatModelError(f"attack {self.name!r} is hard no-box: it must get no model, labels or oracle")
        if threat is ThreatModel.OWN_SURROGATE and model is not None:
            raise ThreatModelError(f"attack {self.name!r} builds its own surrogate from the training data: it must get no model")
        if threat in (ThreatModel.WHITE_BOX, ThreatModel.TRANSFER) and model is None:
            raise ThreatModelError(f"attack {self.name!r} ({threat.value}) needs a model")
        if threat is ThreatModel.QUERY and (oracle is None or model is not None):
            raise ThreatModelError(f"attack {self.name!r} is query-based: it gets an oracle and no model")
        if oracle is not None and threat is not ThreatModel.QUERY:
            raise ThreatModelError(f"attack {self.name!r} ({threat.value}) gets no query oracle")
        if oracle is not None and not isinstance(oracle, QueryOracle):
            raise ThreatModelError(f"attack {self.name!r}: the oracle must be a skelrobust.query.QueryOracle, got {type(oracle).__name__}")
        if oracle is not None and oracle.started:
            raise ThreatModelError(f"attack {self.name!r}: the query oracle already served a batch; build a new one per batch")
        if threat is not ThreatModel.HARD_NO_BOX and labels is None:
            raise ThreatModelError(f"attack {self.name!r} ({threat.value}) needs the true labels")

    def _start_oracle(self, oracle: QueryOracle, ctx: AttackContext) -> None:
        """Bind the oracle to this batch: success is judged against the labels (or targets), feasibility
        against the budget and masks, so its first-success record is independent of the attack."""

        def success(pred: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
            if ctx.target is not None:
                return pred == ctx.target.to(pred.device)[owners]
            return pred != ctx.labels.to(pred.device)[owners]

        def feasible(x_query: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
            delta = x_query.to(ctx.x.dtype) - ctx.x[owners]
            inside_mask = (delta * ~ctx.mask[owners]).flatten(1).abs().amax(dim=1) == 0
            return inside_mask & (ctx.budget.size(delta) <= 1 + 1e-4)

        oracle.start(ctx.x.shape[0], success=success, feasible=feasible)

    def _verify(self, adversarial: torch.Tensor, ctx: AttackContext) -> None:
        delta = adversarial - ctx.x
        if (delta * ~ctx.mask).abs().max() > 0:
            raise BudgetViolationError(f"{self.name}: perturbed a masked, absent or padded entry")
        size = ctx.budget.size(delta)
        if (size > 1 + 1e-4).any():
            raise BudgetViolationError(f"{self.name}: left the budget (relative size {float(size.max()):.6f})")

    def config(self) -> dict[str, Any]:
        """Name, threat model and hyper-parameters, recorded with results."""
        public = {
            k: v for k, v in vars(self).items()
            if not k.startswith("_") and k not in ("budget", "constraints", "masks")
            and isinstance(v, (int, float, str, bool, type(None), list, tuple))
        }
        return {
            "name": self.name,
            "threat": self.threat.value,
            "budget": self.budget.to_dict(),
            "constraints": [c.to_dict() for c in self.constraints],
            "masks": {k: v for k, v in vars(self.masks).items()},
            **public,
        }


def _describe_entry_point(name: str, cls: Any) -> dict[str, Any]:
    """Listing metadata of an attack class an entry point names directly (what :func:`register_attack` records)."""
    if not (isinstance(cls, type) and issubclass(cls, Attack)):
        return {}
    if cls.name == Attack.name:
        cls.name = name
    return {"threat": cls.threat.value, "targeted": cls.supports_targeted, "paper": cls.paper or None}


ATTACKS: Registry[type[Attack]] = Registry(
    "attack", builtin_package="skelrobust.attacks", entry_point_group="skelrobust.attacks", describe=_describe_entry_point
)


def register_attack(name: str, **metadata: Any) -> Callable[[type[Attack]], type[Attack]]:
    """Class decorator registering an attack under ``name`` (also sets ``cls.name``)."""

    def decorator(cls: type[Attack]) -> type[Attack]:
        cls.name = name
        ATTACKS.register(name, cls, threat=cls.threat.value, targeted=cls.supports_targeted, **metadata)
        return cls

    return decorator


def create_attack(name: str, **kwargs: Any) -> Attack:
    """Instantiate a registered attack by name."""
    return ATTACKS.get(name)(**kwargs)
