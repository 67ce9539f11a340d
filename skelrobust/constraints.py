"""Motion-coherence constraints, composable with each other and with any attack's budget.

Each constraint is a hard projection of the perturbation, a soft penalty subtracted from the attack
objective, or (by composing two instances) both:

- :class:`BoneLengthConstraint`: keep every bone at its clean length in every frame (``project``), or
  penalise the mean squared bone-length deviation (``penalty``).
- :class:`SmoothnessConstraint`: keep the perturbation low-frequency along time (``lowpass``: the exact
  orthogonal projection onto the lowest DCT frequencies of each person's valid frames), or penalise the mean
  squared acceleration deviation (``penalty``).

Interplay with the budget: :meth:`skelrobust.attack.AttackContext.project` applies the masks, then every
constraint projection in order, then the budget projection **last**, so the budget is a hard guarantee and a
constraint projection holds exactly only where the budget does not clip it. After an ``l_inf`` clamp, bone
lengths hold approximately: a clamped joint moves by at most ``eps`` per coordinate, so each bone changes by
at most ``2 * sqrt(C) * eps`` (typically far less; measured in ``tests/test_constraints.py``). With
``rounds > 1`` the context alternates constraint and budget projections that many times (the largest
``rounds`` of the constraints in use), which shrinks the residual constraint violation further while keeping
the budget exact. Penalties enter the default objective of
:meth:`~skelrobust.attack.AttackContext.objective_and_grad` (objective minus the sum of penalties), so
every gradient attack honours them.

Shapes: ``delta``, ``x`` ``(N, C, T, V, M)``; ``mask`` ``(N, 1, T, V, M)`` bool; penalties ``(N,)``.
Only valid entries count (a person present in a frame of the clean ``x``); others are never moved.

Example:
    >>> from skelrobust.constraints import BoneLengthConstraint, SmoothnessConstraint
    >>> attack = create_attack("pgd", eps=0.01, constraints=[BoneLengthConstraint(), SmoothnessConstraint("lowpass")])
"""

from __future__ import annotations

import math

import torch

from .attack import Constraint
from .errors import ConfigError
from .layouts import SkeletonLayout
from .metrics import bone_vectors, presence, valid_windows

_TINY = 1e-12


def _depth_levels(layout: SkeletonLayout) -> list[tuple[list[int], list[int]]]:
    """Non-root joints grouped by depth in the kinematic tree: ``[(joints, parents), ...]`` root-outwards."""
    depth = {layout.root: 0}
    for j in layout.topological_order:
        if j != layout.root:
            depth[j] = depth[layout.parents[j]] + 1
    levels: list[tuple[list[int], list[int]]] = []
    for d in range(1, max(depth.values(), default=0) + 1):
        joints = [j for j in range(layout.num_joints) if depth[j] == d]
        levels.append((joints, [layout.parents[j] for j in joints]))
    return levels


def _entry_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Boolean ``(N, 1, T, V, M)`` of movable entries: the given mask, else where the person is present."""
    if mask is not None:
        return mask.bool()
    return presence(x)[:, None, :, None, :].expand(x.shape[0], 1, x.shape[2], x.shape[3], x.shape[4])


def _check_mode(owner: str, mode: str, allowed: tuple[str, ...]) -> None:
    if mode not in allowed:
        raise ConfigError(f"{owner}: mode must be one of {', '.join(allowed)}, got {mode!r}")


def _check_weight_rounds(owner: str, weight: float, rounds: int) -> tuple[float, int]:
    """The validated ``(weight, rounds)`` options every built-in constraint has."""
    if not math.isfinite(weight) or weight < 0:
        raise ConfigError(f"{owner}: weight must be finite and >= 0, got {weight!r}")
    if rounds < 1:
        raise ConfigError(f"{owner}: rounds must be >= 1, got {rounds!r}")
    return float(weight), int(rounds)


class BoneLengthConstraint(Constraint):
    """Keep bone lengths at their clean values (hard projection) or penalise their deviation (soft).

    ``project``: walks the kinematic tree root-outwards (all joints of one depth at once) and puts each
    movable joint at ``parent' + unit(child_adv - parent') * |B_clean|``, ``parent'`` being the parent's
    already-projected position: the nearest point to the adversarial joint at the clean bone length from
    its projected parent. The root keeps its adversarial position. Joints that may not move (masks, absent
    persons, padded frames) stay at their clean positions; a bone between a fixed joint and a moved parent
    therefore cannot keep its length. When the adversarial joint coincides with its projected parent, the
    clean bone direction is used.

    ``penalty``: ``weight * mean over valid (t, m) and bones of (|B'| - |B|)^2``, per sample, in squared data
    units (``weight`` 1e4 makes a 1 cm RMS bone deviation cost 1 nat of cross-entropy).

    Args:
        mode: ``project`` (default) or ``penalty``.
        weight: Penalty weight (``penalty`` mode only), default 1e4.
        rounds: Alternations of (constraint projections, budget projection) the attack context runs
            (``project`` mode), default 1.
    """

    def __init__(self, mode: str = "project", weight: float = 1e4, rounds: int = 1) -> None:
        _check_mode("BoneLengthConstraint", mode, ("project", "penalty"))
        self.weight, self.rounds = _check_weight_rounds("BoneLengthConstraint", weight, rounds)
        self.mode = mode

    def project(
        self, delta: torch.Tensor, x: torch.Tensor, layout: SkeletonLayout, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.mode != "project":
            return delta
        movable = _entry_mask(x, mask)
        adv = x + delta
        new = torch.where(movable, adv, x)  # the root (and every fixed joint) is final already
        for joints, parents in _depth_levels(layout):
            j = torch.tensor(joints, dtype=torch.long, device=x.device)
            p = torch.tensor(parents, dtype=torch.long, device=x.device)
            parent_new = new.index_select(3, p)
            clean_bone = x.index_select(3, j) - x.index_select(3, p)
            length = clean_bone.norm(dim=1, keepdim=True)
            direction = adv.index_select(3, j) - parent_new
            dnorm = direction.norm(dim=1, keepdim=True)
            clean_dir = clean_bone / length.clamp_min(_TINY)
            # rounding noise of a joint pushed onto its parent is not a direction: fall back to the clean one
            unit = torch.where(dnorm > 1e-5 * length, direction / dnorm.clamp_min(_TINY), clean_dir)
            placed = parent_new + unit * length
            new[:, :, :, joints] = torch.where(movable.index_select(3, j), placed, x.index_select(3, j))
        return (new - x) * movable

    def penalty(self, x_adv: torch.Tensor, x: torch.Tensor, layout: SkeletonLayout) -> torch.Tensor:
        if self.mode != "penalty":
            return x_adv.new_zeros(x_adv.shape[0])
        len_adv = torch.sqrt((bone_vectors(x_adv, layout) ** 2).sum(dim=1) + _TINY)  # (N, T, E, M)
        len_clean = torch.sqrt((bone_vectors(x, layout) ** 2).sum(dim=1) + _TINY)
        valid = presence(x).to(x_adv.dtype).unsqueeze(2)  # (N, T, 1, M)
        sq = (len_adv - len_clean) ** 2 * valid
        count = (valid.flatten(1).sum(dim=1) * len(layout.bones)).clamp_min(1)
        return self.weight * sq.flatten(1).sum(dim=1) / count


class SmoothnessConstraint(Constraint):
    """Keep the perturbation smooth in time: low-pass projection (hard) or acceleration penalty (soft).

    ``lowpass``: for each sample and person, the perturbation over its ``L`` valid frames (taken in order;
    padded and absent frames are skipped and stay untouched) is replaced by its orthogonal projection onto
    the DCT-II basis functions of frequency index ``k < max(1, ceil(cutoff * L))``, i.e. it keeps the lowest
    ``cutoff`` fraction of the temporal spectrum (``cutoff * fps / 2`` Hz). This is an exact projection
    (idempotent), so applying it after every attack step does not progressively flatten the perturbation.

    ``penalty``: ``weight * mean over valid (t, j, m) of ||a'_tj - a_tj||^2`` with second differences
    ``a_t = x_{t+1} - 2 x_t + x_{t-1}`` over windows of three valid frames, in squared data units per
    frame^4 (``weight`` 1e5 makes a 3 mm RMS acceleration deviation cost about 1 nat).

    Args:
        mode: ``lowpass`` (default) or ``penalty``.
        cutoff: Fraction of DCT frequencies kept (``lowpass``), in (0, 1], default 0.25.
        weight: Penalty weight (``penalty``), default 1e5.
        rounds: Alternations of (constraint projections, budget projection) in the attack context, default 1.
    """

    def __init__(self, mode: str = "lowpass", cutoff: float = 0.25, weight: float = 1e5, rounds: int = 1) -> None:
        _check_mode("SmoothnessConstraint", mode, ("lowpass", "penalty"))
        if not 0 < cutoff <= 1:
            raise ConfigError(f"SmoothnessConstraint: cutoff must be in (0, 1], got {cutoff!r}")
        self.weight, self.rounds = _check_weight_rounds("SmoothnessConstraint", weight, rounds)
        self.mode = mode
        self.cutoff = float(cutoff)
        self._basis_key: torch.Tensor | None = None  # the presence pattern the cached basis was built for
        self._basis: torch.Tensor | None = None

    def _dct_basis(self, x: torch.Tensor) -> torch.Tensor:
        """Orthonormal truncated DCT-II basis ``(N, M, T, K)`` over each person's valid frames (cached per presence pattern)."""
        present = presence(x).permute(0, 2, 1)  # (N, M, T): the basis depends on nothing else
        cached = self._basis_key
        if cached is not None and self._basis is not None and cached.shape == present.shape and cached.device == present.device \
                and self._basis.dtype == x.dtype and torch.equal(cached, present):
            return self._basis
        rank = present.cumsum(dim=2) - 1  # position among the valid frames
        length = present.sum(dim=2, keepdim=True)  # (N, M, 1)
        keep = torch.ceil(self.cutoff * length.to(x.dtype)).clamp_min(1)  # frequencies kept per person
        k_max = int(keep.max().item()) if keep.numel() else 1
        k = torch.arange(k_max, device=x.device, dtype=x.dtype)
        lf = length.to(x.dtype).clamp_min(1).unsqueeze(-1)  # (N, M, 1, 1)
        angle = math.pi * (rank.to(x.dtype).unsqueeze(-1) + 0.5) * k / lf  # (N, M, T, K)
        scale = torch.where(k == 0, torch.sqrt(1.0 / lf), torch.sqrt(2.0 / lf))
        basis = torch.cos(angle) * scale
        basis = basis * present.unsqueeze(-1) * (k < keep.unsqueeze(-1))
        self._basis_key, self._basis = present, basis
        return basis

    def project(
        self, delta: torch.Tensor, x: torch.Tensor, layout: SkeletonLayout, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.mode != "lowpass":
            return delta
        basis = self._dct_basis(x).to(delta.dtype)  # (N, M, T, K)
        coeff = torch.einsum("nctvm,nmtk->nckvm", delta, basis)
        return torch.einsum("nckvm,nmtk->nctvm", coeff, basis)

    def penalty(self, x_adv: torch.Tensor, x: torch.Tensor, layout: SkeletonLayout) -> torch.Tensor:
        if self.mode != "penalty" or x.shape[2] < 3:
            return x_adv.new_zeros(x_adv.shape[0])
        acc = torch.diff(x_adv - x, n=2, dim=2)  # a(x') - a(x), (N, C, T-2, V, M)
        windows = valid_windows(presence(x), 2).to(x_adv.dtype).unsqueeze(2)  # (N, T-2, 1, M)
        sq = (acc**2).sum(dim=1) * windows
        count = (windows.flatten(1).sum(dim=1) * x.shape[3]).clamp_min(1)
        return self.weight * sq.flatten(1).sum(dim=1) / count
