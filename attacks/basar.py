"""BASAR (Diao et al., CVPR 2021): decision-based boundary attack with a motion-manifold projection."""

from __future__ import annotations

from typing import Any

import torch

from skelrobust.attack import AttackContext, register_attack
from skelrobust.errors import ConfigError
from skelrobust.kinematics import project_persons
from skelrobust.query_attack import QueryAttack, check_positive_int

#: BASAR's delta resets: when the best distance falls below a threshold, delta restarts at that value.
_DELTA_RESETS = (0.1, 0.05, 0.025)


def projection_summary(shares: torch.Tensor) -> dict[str, float | int]:
    """Counts and median / largest share of the projections kept, from the per-motion shares ``(P,)`` in [0, 1]."""
    return {
        "projections_kept": int((shares == 1).sum()),
        "projections_partial": int(((shares > 0) & (shares < 1)).sum()),
        "projection_share_median": float(shares.median()) if shares.numel() else 0.0,
        "projection_share_max": float(shares.max()) if shares.numel() else 0.0,
    }


@register_attack("basar", paper="Diao, Shao, Yang, Zhou, Wang, CVPR 2021", url="https://arxiv.org/abs/2103.05266")
class BASAR(QueryAttack):
    """BASAR: hard-label boundary attack on skeleton motions, projected onto the motion manifold.

    "BASAR: Black-box Attack on Skeletal Action Recognition", Diao, Shao, Yang, Zhou and Wang, CVPR 2021.
    https://arxiv.org/abs/2103.05266 . The oracle answers only the top-1 label.

    Per sample (all samples of a batch advance together, each with its own step sizes):

    - initialisation: an initial adversarial motion ``x0`` is another sample of the batch with a different
      true label that the victim does not label ``y`` (up to ``init_tries`` of them), else Gaussian noise
      (``init_tries`` tries, from the sample's own scale, 4 times larger at each); then ``x~ = x0 + e (x - x0)`` with ``e = 0.95``, ``e <- 0.9 e`` until ``x~``
      is adversarial (the motion on the segment closest to ``x`` that still fools the victim);
    - a step is (1) a **delta-step**: ``trials`` (5) Gaussian perturbations, normalised per coordinate
      channel and scaled by ``delta * mean_c ||x - x~||_c``, with their component along ``x - x~`` removed and
      moved back onto the sphere around ``x`` through ``x~``; the adversarial ones are accepted (the first
      is kept); a success ratio <= 0.2 multiplies delta by 0.9, >= 0.8 divides it by 0.9 (at most
      ``theta`` = 0.4); a sample whose trials all fail ``max_delta_failures`` (300) steps in a row stops;
      (2) an **epsilon-step** towards the clean motion, ``x~ <- x~ + e (x - x~)``: on failure ``e <- e / 2``
      and retry (while ``e > 1e-6``), on success ``e <- min(2 e, 0.9)``;
    - the candidate with the smallest mean per-channel distance ``mean_c ||x~_c - x_c||_F`` is kept; delta is
      reset to 0.1 / 0.05 / 0.025 when that distance first drops below 0.1 / 0.05 / 0.025 (data units);
    - **manifold projection** every ``projection_every`` (250) steps and at the end, by
      :func:`skelrobust.kinematics.project_to_manifold` (clean bone lengths, acceleration close to the
      clean one, weight ``w`` = 1). When the projected motion is no longer adversarial, the final projection
      first shrinks ``w`` by 10 (down to 1e-3); then (at every projection) the motion walks from the
      adversarial motion towards its projection, ``adv + f (proj - adv)`` with ``f`` multiplied by
      ``0.95^k`` at the ``k``-th try, and takes the first adversarial point (a partial projection), or stays
      unprojected once 0.95^k falls below 0.01. After an accepted projection a delta below 0.01 is
      multiplied by 5.

    The final projection is given up to 30 queries (a tenth of a smaller budget) held back from the steps.
    The attack stops a sample when its query budget is spent or, with ``stop_inside_budget`` (default),
    as soon as its best motion lies inside the run's budget (a success there costs no more queries).
    The base class projects the result onto the budget, so a best motion outside it counts as a failure.
    Extras: ``steps_mean``, ``initialised`` (samples with a starting adversarial motion), ``projections``
    (projection rounds), ``projections_kept`` (motions fully projected and still adversarial),
    ``projections_partial`` (motions moved part of the way to their projection) and
    ``projection_share_median`` / ``projection_share_max`` (the fraction of the way to its projection each
    projected motion moved: 1 full, 0 none).

    Differences from the reference code: the reference's step "x~ + e (x - x~) / ||x - x~||" is read as a
    fraction ``e`` of the distance (as in Brendel et al.'s Boundary Attack), since the data here are in
    metres and not normalised; the epsilon-step stops halving below 1e-6 instead of after 500 tries; every
    present person may move (the reference perturbs person 0 only; use ``persons=(0,)`` for that); the
    manifold projection uses bone directions and L-BFGS-B instead of Euler angles with bounds and IPOPT
    (see :mod:`skelrobust.kinematics`); HDM05's tied joints are not applied; the walk
    towards the projection moves the root too (the reference holds its joint 0) and also stops at a factor
    of 0.01 at the intermediate projections (the reference walks on until the step vanishes). Untargeted only.

    Args:
        trials: Orthogonal trials per delta-step (default 5).
        delta, theta: Initial and largest delta (defaults 0.1, 0.4).
        epsilon: Initial epsilon-step fraction (default 0.1).
        max_delta_failures: Consecutive all-failing delta-steps before a sample gives up (default 300).
        projection_every: Steps between manifold projections (default 250).
        projection_weight: Acceleration weight ``w`` of the projection (default 1).
        init_tries: Other samples tried as the starting point (default 5).
        stop_inside_budget: Stop a sample once its best motion is inside the budget (default True).
        **kwargs: Common :class:`~skelrobust.attack.Attack` options.
    """

    feedback = "label"
    supports_targeted = False

    def __init__(
        self, *, trials: int = 5, delta: float = 0.1, theta: float = 0.4, epsilon: float = 0.1,
        max_delta_failures: int = 300, projection_every: int = 250, projection_weight: float = 1.0,
        init_tries: int = 5, stop_inside_budget: bool = True, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name, value in (("trials", trials), ("max_delta_failures", max_delta_failures),
                            ("projection_every", projection_every), ("init_tries", init_tries)):
            setattr(self, name, check_positive_int(self.name, name, value))
        for name, value, high in (("delta", delta, None), ("theta", theta, None), ("epsilon", epsilon, 1.0),
                                  ("projection_weight", projection_weight, None)):
            if not (value > 0 and (high is None or value < high)):
                raise ConfigError(f"{self.name}: {name} must be > 0{f' and < {high}' if high else ''}, got {value!r}")
            setattr(self, name, float(value))
        if self.delta > self.theta:
            raise ConfigError(f"{self.name}: delta ({delta}) must not exceed theta ({theta})")
        self.stop_inside_budget = bool(stop_inside_budget)

    # --- helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def _distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """BASAR's distance: mean over coordinate channels of the Frobenius norm over (T, V, M), ``(K,)``."""
        return (a - b).flatten(2).norm(dim=2).mean(dim=1)

    def _adversarial(self, ctx: AttackContext, candidates: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
        """Ask the label oracle; boolean ``(K,)`` of candidates not labelled with their owner's label."""
        labels = ctx.query(candidates, owners)
        return (labels.cpu() != ctx.labels.cpu()[owners.cpu()])

    def _initialise(self, ctx: AttackContext, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Starting adversarial motions ``(N, ...)`` and the boolean ``(N,)`` of samples that have one."""
        x, mask = ctx.x, ctx.mask
        labels = ctx.labels.cpu()
        start = x.clone()
        found = torch.zeros(n, dtype=torch.bool)
        order = torch.randperm(n, generator=gen, device=gen.device).cpu()
        candidates_of = [[int(j) for j in order if labels[j] != labels[i]][: self.init_tries] for i in range(n)]
        scale = x.flatten(1).std(dim=1).clamp_min(1e-3).view(-1, 1, 1, 1, 1)
        for attempt in range(2 * self.init_tries):
            other_sample = attempt < self.init_tries
            rows = [i for i in range(n) if not found[i] and int(ctx.queries_left[i]) > 0
                    and (not other_sample or attempt < len(candidates_of[i]))]
            if not rows:
                continue
            owners = torch.tensor(rows)
            if other_sample:
                other = x[torch.tensor([candidates_of[i][attempt] for i in rows])]
                cand = x[owners] + mask[owners] * (other - x[owners])
            else:  # Gaussian noise, 4x larger at each try
                noise = torch.randn(x[owners].shape, generator=gen, device=gen.device).to(x.device, x.dtype)
                cand = x[owners] + mask[owners] * noise * scale[owners] * 4.0 ** (attempt - self.init_tries)
            hit = self._adversarial(ctx, cand, owners)
            start[owners[hit]] = cand[hit]
            found[owners[hit]] = True
        # Approach along the segment: x~ = x0 + e (x - x0), e = 0.95, 0.9 e, ... until adversarial.
        best = start.clone()
        e = torch.full((n,), 0.95, dtype=x.dtype)
        pending = found.clone()
        while True:
            rows = (pending & (ctx.queries_left > 0) & (e > 1e-3)).nonzero().flatten()
            if rows.numel() == 0:
                break
            cand = start[rows] + e[rows].view(-1, 1, 1, 1, 1).to(x.device) * (x[rows] - start[rows])
            hit = self._adversarial(ctx, cand, rows)
            best[rows[hit]] = cand[hit]
            pending[rows[hit]] = False
            e[rows[~hit]] *= 0.9
        return best, found

    def _project(
        self, ctx: AttackContext, adv: torch.Tensor, rows: torch.Tensor, final: bool, keep: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Manifold projection of ``adv[rows]`` with BASAR's fallbacks; keeps adversarial motions only.

        The projection with weight ``w`` is tried first; at the final projection ``w`` is then shrunk by 10
        while it is >= 1e-3. A sample whose projections all lose the attack walks from its adversarial motion
        towards its projection: ``adv + f (proj - adv)`` with ``f = e_1 e_2 ... e_k``, ``e_k = 0.95^k``,
        until a point is adversarial or ``e_k < 0.01`` (then the unprojected motion stays). A sample stops
        when it has only ``keep`` queries left.

        Returns the motions and the ``(N,)`` share of the projection each kept: 1 when fully projected,
        ``f`` when the walk stopped at ``f``, 0 when the motion stays unprojected (or was not a row)."""
        out = adv.clone()
        n = adv.shape[0]
        kept = torch.zeros(n, dtype=adv.dtype)
        weights = [self.projection_weight]
        while final and weights[-1] / 10 >= 1e-3 - 1e-12:
            weights.append(weights[-1] / 10)
        pending = rows.cpu()
        first_projection = None
        for weight in weights:
            pending = pending[ctx.queries_left[pending] > keep]
            if pending.numel() == 0:
                break
            cands = self._project_rows(ctx, adv[pending], pending, weight)
            if first_projection is None:
                first_projection = torch.zeros_like(adv)
                first_projection[pending] = cands
            hit = self._adversarial(ctx, cands, pending)
            out[pending[hit]] = cands[hit]
            kept[pending[hit]] = 1.0
            pending = pending[~hit]
        # Walk from the adversarial motion towards the (first-weight) projection.
        step = torch.full((n,), 0.95, dtype=adv.dtype)
        fraction = torch.ones(n, dtype=adv.dtype)
        while pending.numel():
            pending = pending[(ctx.queries_left[pending] > keep) & (step[pending] >= 0.01)]
            if pending.numel() == 0:
                break
            fraction[pending] *= step[pending]
            f = fraction[pending].view(-1, 1, 1, 1, 1).to(adv.device)
            cands = adv[pending] + f * (first_projection[pending] - adv[pending])
            hit = self._adversarial(ctx, cands, pending)
            out[pending[hit]] = cands[hit]
            kept[pending[hit]] = fraction[pending[hit]]
            step[pending[~hit]] *= 0.95
            pending = pending[~hit]
        return out, kept

    @staticmethod
    def _project_rows(ctx: AttackContext, motion: torch.Tensor, owners: torch.Tensor, weight: float) -> torch.Tensor:
        """Project every person of the motions ``(K, C, T, V, M)`` of samples ``owners`` at once; masked entries stay clean."""
        x, mask = ctx.x[owners], ctx.mask[owners]
        projected = project_persons(motion, x, ctx.layout, weight)
        return x + (projected - x) * mask

    # --- the attack ------------------------------------------------------------------------------------
    def run(self, ctx: AttackContext) -> torch.Tensor:
        x, mask, gen = ctx.x, ctx.mask, ctx.generator
        n = x.shape[0]
        adv, alive = self._initialise(ctx, n, gen)
        best = adv.clone()
        best_dist = torch.where(alive, self._distance(adv, x).cpu(), torch.full((n,), float("inf"), dtype=x.dtype))
        delta = torch.full((n,), self.delta, dtype=x.dtype)
        eps = torch.full((n,), self.epsilon, dtype=x.dtype)
        failures = torch.zeros(n, dtype=torch.long)
        resets_done = torch.zeros(n, len(_DELTA_RESETS), dtype=torch.bool)
        steps = torch.zeros(n, dtype=torch.long)
        projections = 0
        shares: list[torch.Tensor] = []  # the share of its projection each projected motion kept

        def inside(rows: torch.Tensor) -> torch.Tensor:
            return ctx.budget.size(best[rows] - x[rows]).cpu() <= 1

        # Queries held back for the final projection (its weights, then its walk): 30, or a tenth of the budget.
        reserve = max(1, min(30, int(ctx.queries_left.max()) // 10))
        while True:
            active = alive & (ctx.queries_left > reserve)
            if self.stop_inside_budget:
                rows_all = active.nonzero().flatten()
                if rows_all.numel():
                    active[rows_all[inside(rows_all)]] = False
            rows = active.nonzero().flatten()
            if rows.numel() == 0:
                break
            # (1) delta-step: orthogonal trials on the sphere around x through x~.
            k = int(min(self.trials, int(ctx.queries_left[rows].min()) - reserve))
            if k < 1:
                break
            owners = rows.repeat_interleave(k)
            cur = adv[owners]
            diff = x[owners] - cur  # towards the clean motion
            dist = diff.flatten(2).norm(dim=2).clamp_min(1e-12)  # (K, C)
            noise = torch.randn(cur.shape, generator=gen, device=gen.device).to(x.device, x.dtype) * mask[owners]
            noise = noise / noise.flatten(2).norm(dim=2).clamp_min(1e-12)[..., None, None, None]
            noise = noise * (delta[owners].view(-1, 1).to(x.device) * dist.mean(dim=1, keepdim=True))[..., None, None, None]
            unit = diff / diff.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1, 1)
            noise = noise - (noise * unit).flatten(1).sum(dim=1).view(-1, 1, 1, 1, 1) * unit
            trial = cur + noise
            radius = (x[owners] - cur).flatten(1).norm(dim=1)
            now = (trial - x[owners]).flatten(1).norm(dim=1).clamp_min(1e-12)
            trial = x[owners] + (trial - x[owners]) * (radius / now).view(-1, 1, 1, 1, 1)
            hit = self._adversarial(ctx, trial, owners).view(-1, k)
            ratio = hit.float().mean(dim=1)
            delta[rows] = torch.where(ratio <= 0.2, delta[rows] * 0.9, torch.where(ratio >= 0.8, (delta[rows] / 0.9).clamp(max=self.theta), delta[rows]))
            moved = hit.any(dim=1)
            first = hit.float().argmax(dim=1)
            adv[rows[moved]] = trial.view(-1, k, *x.shape[1:])[moved.nonzero().flatten(), first[moved]]
            failures[rows] = torch.where(moved, torch.zeros_like(failures[rows]), failures[rows] + 1)
            alive[rows[failures[rows] >= self.max_delta_failures]] = False
            # (2) epsilon-step towards x, halving on failure.
            pending = rows[moved]
            while pending.numel():
                pending = pending[(ctx.queries_left[pending] > reserve) & (eps[pending] > 1e-6)]
                if pending.numel() == 0:
                    break
                cand = adv[pending] + eps[pending].view(-1, 1, 1, 1, 1).to(x.device) * (x[pending] - adv[pending])
                ok = self._adversarial(ctx, cand, pending)
                adv[pending[ok]] = cand[ok]
                eps[pending[ok]] = (2 * eps[pending[ok]]).clamp(max=0.9)
                eps[pending[~ok]] /= 2
                pending = pending[~ok]
            steps[rows] += 1
            ctx.iterations[rows] += 1
            # Keep the closest adversarial motion; BASAR's delta resets.
            dist_now = self._distance(adv[rows], x[rows]).cpu()
            closer = dist_now < best_dist[rows]
            best[rows[closer]] = adv[rows[closer]]
            best_dist[rows[closer]] = dist_now[closer]
            for r, level in enumerate(_DELTA_RESETS):
                reset = rows[(best_dist[rows] < level) & ~resets_done[rows, r]]
                delta[reset] = level
                resets_done[reset, r] = True
            due = rows[(steps[rows] % self.projection_every == 0) & (ctx.queries_left[rows] > reserve)]
            if due.numel():
                best, kept = self._project(ctx, best, due, final=False, keep=reserve)
                moved = (kept > 0).nonzero().flatten()
                adv[due] = best[due]
                best_dist[moved] = self._distance(best[moved], x[moved]).cpu()
                delta[moved] = torch.where(delta[moved] < 0.01, delta[moved] / 0.2, delta[moved])
                projections += 1
                shares.append(kept[due.cpu()])
        # Final manifold projection of every sample that has an adversarial motion.
        final = ((best_dist < float("inf")) & (ctx.queries_left > 0)).nonzero().flatten()
        if final.numel():
            best, kept = self._project(ctx, best, final, final=True)
            projections += 1
            shares.append(kept[final.cpu()])
        ctx.extras = {"steps_mean": float(steps.float().mean()), "initialised": int((best_dist < float("inf")).sum()),
                      "projections": projections, **projection_summary(torch.cat(shares) if shares else torch.zeros(0))}
        return best
