"""Score-based Bayesian optimisation in a low-dimensional motion subspace (botorch), with TuRBO trust regions."""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import torch

from skelrobust.attack import AttackContext, register_attack
from skelrobust.errors import ConfigError
from skelrobust.query_attack import BestSoFar, QueryAttack, check_positive_int, margin
from skelrobust.subspace import GROUPINGS, MotionSubspace


@register_attack(
    "bo",
    paper="Ru, Cobb, Blaas, Gal, ICLR 2020 (BayesOpt attack); Eriksson et al., NeurIPS 2019 (TuRBO); Ament et al., NeurIPS 2023 (LogEI)",
    url="https://openreview.net/forum?id=Hkem-lrtvH",
)
class BayesOptAttack(QueryAttack):
    """Bayesian optimisation of the margin loss over a smooth low-dimensional motion subspace.

    Follows the BayesOpt attack of Ru, Cobb, Blaas and Gal ("BayesOpt Adversarial Attack", ICLR 2020):
    search a low-dimensional perturbation that is upsampled to the input with a GP surrogate and an
    expected-improvement acquisition, under a few-hundred-query budget. Here the upsampler is the temporal
    DCT of :class:`skelrobust.subspace.MotionSubspace` (``frequencies`` lowest DCT frequencies per body part,
    coordinate and person: d = 45 for ntu25 with one person, 90 with two), so every candidate is smooth by construction;
    it is projected onto the budget and masks by the attack context. Unlike Ru et al. the reduced dimension
    is fixed (no Bayesian selection of it) and the GP is a single ARD kernel (no additive decomposition).

    Each round, for every sample still unfooled (all samples of the batch are handled as one batched GP):

    1. fit a botorch ``SingleTaskGP`` (ARD RBF kernel, inputs in ``[0, 1]^d``, ``Standardize`` outcome
       transform, float64) to the sample's queries by maximising the marginal likelihood
       (``fit_gpytorch_mll``); at most ``max_train`` points are used, those nearest the trust-region centre;
    2. choose ``q`` candidates jointly by ``qLogExpectedImprovement`` (Ament et al., NeurIPS 2023): the best of
       ``raw_samples`` random q-batches in the trust region, refined by ``refine_steps`` Adam steps of the
       acquisition (projected onto the region) from the ``restarts`` best;
    3. query them (``q`` queries), and stop the sample at its first success (margin > 0).

    Trust region (TuRBO-1, Eriksson et al., "Scalable Global Optimization via Local Bayesian Optimization",
    NeurIPS 2019), used when ``d > trust_region_dim``: a box around the best point, side ``L`` shaped by the
    GP's lengthscales (normalised to geometric mean 1), ``L`` doubled after 3 consecutive improving rounds,
    halved after ``ceil(max(4, d) / q)`` failing ones, restarted at a random centre (``L = 0.8``) below
    ``0.5^7``; the data are kept across restarts (the training set is re-chosen near the new centre).

    The initial design is ``initial`` scrambled-Sobol points per sample. The GP fit and acquisition time per
    round is reported in the extras (``overhead_seconds_per_round``): BO's own cost beside the queries.

    Bounded history: like TuRBO, which fits its GP only to the data of the current trust region, each round's
    GP sees at most ``max_train`` of the sample's queries, those nearest the region's centre (the extras'
    ``largest_training_set``). An exact GP costs O(n^3) in its n training points, so without the bound a
    round at 5,000 queries would cost about 60,000 times one at 128; with it a round costs the same at
    1,000 or 5,000 queries (measured by ``bench/bench_query.py --part overhead``: about 0.14 CPU s per sample
    and round of q = 8 for d = 90-100 with 32 samples batched, ``bench/results/query_bo_overhead.json``).

    Threat model: query, score-based (softmax scores); untargeted and targeted (margin towards the target);
    ``linf`` and ``l2`` budgets.

    Args:
        q: Candidates per round (default 8).
        initial: Initial design size per sample (default 16).
        frequencies, grouping: The subspace (default 3 DCT frequencies per body part).
        max_train: Most GP training points per sample (default 128; keeps the fit cost bounded).
        raw_samples: Random q-batches scored per round (default 64).
        restarts: q-batches refined by gradient ascent (default 2).
        refine_steps: Adam steps of the refinement (default 5).
        trust_region_dim: Use a trust region above this dimension (default 20).
        mc_samples: QMC samples of qLogEI (default 64).
        fit_maxiter: L-BFGS iterations of each hyper-parameter fit (default 30); every fit after a sample's
            first starts from that sample's previous hyper-parameters, so few iterations suffice.
        **kwargs: Common :class:`~skelrobust.attack.Attack` options.
    """

    def __init__(
        self, *, q: int = 8, initial: int = 16, frequencies: int = 3, grouping: str = "part", max_train: int = 128,
        raw_samples: int = 64, restarts: int = 2, refine_steps: int = 5, trust_region_dim: int = 20,
        mc_samples: int = 64, fit_maxiter: int = 30, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name, value in (("q", q), ("initial", initial), ("frequencies", frequencies), ("max_train", max_train),
                            ("raw_samples", raw_samples), ("restarts", restarts), ("mc_samples", mc_samples),
                            ("fit_maxiter", fit_maxiter)):
            setattr(self, name, check_positive_int(self.name, name, value))
        if restarts > raw_samples:
            raise ConfigError(f"{self.name}: restarts ({restarts}) must not exceed raw_samples ({raw_samples})")
        if int(refine_steps) != refine_steps or refine_steps < 0:
            raise ConfigError(f"{self.name}: refine_steps must be an integer >= 0, got {refine_steps!r}")
        if int(trust_region_dim) != trust_region_dim or trust_region_dim < 0:
            raise ConfigError(f"{self.name}: trust_region_dim must be an integer >= 0, got {trust_region_dim!r}")
        if grouping not in GROUPINGS:
            raise ConfigError(f"{self.name}: grouping must be one of {', '.join(GROUPINGS)}, got {grouping!r}")
        self.refine_steps = int(refine_steps)
        self.trust_region_dim = int(trust_region_dim)
        self.grouping = str(grouping)

    def run(self, ctx: AttackContext) -> torch.Tensor:
        from botorch.exceptions.warnings import OptimizationWarning  # botorch is imported on first use: it takes seconds

        space = MotionSubspace(ctx, frequencies=self.frequencies, grouping=self.grouping)
        n, d, gen = ctx.x.shape[0], space.dim, ctx.generator
        best = BestSoFar(ctx)
        budget = ctx.max_queries
        hist_u = torch.zeros(n, budget, d, dtype=torch.float64)
        hist_y = torch.zeros(n, budget, dtype=torch.float64)
        used = torch.zeros(n, dtype=torch.long)
        region = _TrustRegion(n, d, self.q, enabled=d > self.trust_region_dim)
        fit_s = acq_s = 0.0
        rounds = largest_fit = 0
        warm: dict[str, torch.Tensor] = {}  # per-sample GP hyper-parameters of the previous round

        def ask(u: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            """Query points ``u (b, k, d)`` in [0, 1]^d of samples ``rows``; record them; their margins ``(b, k)``."""
            b, k = u.shape[:2]
            owners = rows.repeat_interleave(k)
            flat = u.reshape(b * k, d)
            candidates = space.decode((flat * 2 - 1).to(ctx.x.dtype).to(ctx.x.device), owners)
            values = margin(ctx.query(candidates, owners), ctx, owners).cpu().reshape(b, k)
            best.update(candidates, values.flatten(), owners)
            idx = used[rows][:, None] + torch.arange(k)
            hist_u[rows[:, None], idx] = u
            hist_y[rows[:, None], idx] = values
            used[rows] += k
            ctx.iterations[rows] += 1
            return values

        # Initial design: scrambled Sobol points, one engine per sample (seeded from the batch generator).
        k0 = min(self.initial, budget)
        seeds = torch.randint(0, 2**31 - 1, (n,), generator=gen, device=gen.device).tolist()
        init = torch.stack([torch.quasirandom.SobolEngine(d, scramble=True, seed=int(s)).draw(k0, dtype=torch.float64) for s in seeds])
        ask(init, torch.arange(n))
        region.reset_centres(hist_u, hist_y, used, torch.arange(n))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizationWarning)
            while True:
                rows = ((~best.fooled) & (ctx.queries_left > 0)).nonzero().flatten()
                if rows.numel() == 0:
                    break
                k = int(min(self.q, int(ctx.queries_left[rows].min())))
                t0 = time.perf_counter()
                train_u, train_y = self._training_set(hist_u[rows], hist_y[rows], int(used[rows[0]]), region.centre[rows])
                model = _fit(train_u, train_y, self.fit_maxiter, warm, rows, n)
                largest_fit = max(largest_fit, int(train_u.shape[1]))
                t1 = time.perf_counter()
                lb, ub = region.bounds(rows, model)
                u = self._acquire(model, train_y, lb, ub, k, gen)
                t2 = time.perf_counter()
                fit_s, acq_s, rounds = fit_s + (t1 - t0), acq_s + (t2 - t1), rounds + 1
                region.record(rows, ask(u, rows), u)
                region.restart_if_collapsed(rows, gen)
        ctx.final_loss = best.value.float()
        ctx.extras = {
            "subspace_dim": d, "grouping": space.grouping, "trust_region": region.enabled, "rounds": rounds,
            "gp_fit_seconds": fit_s, "acquisition_seconds": acq_s,
            "overhead_seconds_per_round": (fit_s + acq_s) / rounds if rounds else 0.0,
            "restarts": int(region.restarts.sum()), "largest_training_set": largest_fit,
        }
        return best.x

    def _training_set(
        self, u: torch.Tensor, y: torch.Tensor, used: int, centre: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """At most ``max_train`` points per sample, nearest the trust-region centre: ``(b, n, d)``, ``(b, n, 1)``."""
        u, y = u[:, :used], y[:, :used]
        if used > self.max_train:
            near = (u - centre[:, None]).norm(dim=2).topk(self.max_train, dim=1, largest=False).indices
            u = u.gather(1, near[..., None].expand(-1, -1, u.shape[2]))
            y = y.gather(1, near)
        return u, y[..., None]

    def _acquire(
        self, model: Any, train_y: torch.Tensor, lb: torch.Tensor, ub: torch.Tensor, k: int, gen: torch.Generator
    ) -> torch.Tensor:
        """``k`` candidates per sample ``(b, k, d)`` maximising qLogEI inside ``[lb, ub]``."""
        from botorch.acquisition.logei import qLogExpectedImprovement
        from botorch.sampling import SobolQMCNormalSampler

        b, d = lb.shape
        sampler = SobolQMCNormalSampler(sample_shape=torch.Size([self.mc_samples]), seed=int(torch.randint(0, 2**31 - 1, (1,), generator=gen, device=gen.device)))
        acq = qLogExpectedImprovement(model, best_f=train_y.amax(dim=(1, 2)), sampler=sampler)
        r = torch.rand(self.raw_samples, b, k, d, generator=gen, device=gen.device).to(torch.float64)
        raw = lb[None, :, None] + (ub - lb)[None, :, None] * r  # (R, b, k, d)
        with torch.no_grad():
            values = acq(raw)  # (R, b)
        top = values.topk(self.restarts, dim=0).indices  # (restarts, b)
        start = raw.gather(0, top[..., None, None].expand(-1, -1, k, d))
        x = start.clone().requires_grad_(True)
        optimiser = torch.optim.Adam([x], lr=0.1 * float((ub - lb).mean()))
        for _ in range(self.refine_steps):
            optimiser.zero_grad()
            (-acq(x).sum()).backward()
            optimiser.step()
            with torch.no_grad():
                x.copy_(torch.maximum(torch.minimum(x, ub[None, :, None]), lb[None, :, None]))
        with torch.no_grad():
            final = acq(x)  # (restarts, b)
            choice = final.argmax(dim=0)
            return x.detach()[choice, torch.arange(b)]


def _fit(
    train_u: torch.Tensor, train_y: torch.Tensor, maxiter: int, warm: dict[str, torch.Tensor], rows: torch.Tensor, n_total: int
) -> Any:
    """A batched SingleTaskGP (one independent GP per sample ``rows``) fitted by marginal likelihood.

    ``warm`` maps each hyper-parameter name to its per-sample values ``(N, ...)`` of the previous fit; the
    fit starts from them and writes its result back.
    """
    import gpytorch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    b = train_u.shape[0]
    model = SingleTaskGP(train_u, train_y, outcome_transform=Standardize(m=1, batch_shape=torch.Size([b])))
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    params = dict(model.named_parameters())
    if warm:
        with torch.no_grad():
            for name, value in warm.items():
                params[name].copy_(value[rows])
    with gpytorch.settings.max_cholesky_size(float("inf")):
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": maxiter}})
    with torch.no_grad():
        for name, value in model.named_parameters():
            if name not in warm:
                warm[name] = value.new_zeros((n_total,) + tuple(value.shape[1:]))
            warm[name][rows] = value.detach()
    return model.eval()


class _TrustRegion:
    """TuRBO-1 state per sample: centre, side length and success / failure counters (Eriksson et al. 2019)."""

    L_INIT, L_MIN, L_MAX, SUCCESS_TOL = 0.8, 0.5**7, 1.6, 3

    def __init__(self, n: int, d: int, q: int, *, enabled: bool) -> None:
        self.enabled = enabled
        self.d = d
        self.centre = torch.full((n, d), 0.5, dtype=torch.float64)
        self.length = torch.full((n,), self.L_INIT, dtype=torch.float64)
        self.best = torch.full((n,), float("-inf"), dtype=torch.float64)
        self.successes = torch.zeros(n, dtype=torch.long)
        self.failures = torch.zeros(n, dtype=torch.long)
        self.restarts = torch.zeros(n, dtype=torch.long)
        self.failure_tol = math.ceil(max(4.0, float(d)) / q)

    def reset_centres(self, hist_u: torch.Tensor, hist_y: torch.Tensor, used: torch.Tensor, rows: torch.Tensor) -> None:
        """Centre each region on its sample's best point so far."""
        for i in rows.tolist():
            j = int(hist_y[i, : int(used[i])].argmax())
            self.centre[i] = hist_u[i, j]
            self.best[i] = hist_y[i, j]

    def bounds(self, rows: torch.Tensor, model: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The search box ``(b, d)`` of each sample: the trust region, or the whole cube when disabled."""
        b = rows.numel()
        if not self.enabled:
            return torch.zeros(b, self.d, dtype=torch.float64), torch.ones(b, self.d, dtype=torch.float64)
        kernel = model.covar_module
        ls = getattr(kernel, "base_kernel", kernel).lengthscale.detach().reshape(b, self.d).double()
        weights = ls / ls.log().mean(dim=1, keepdim=True).exp()
        half = weights * self.length[rows][:, None] / 2
        centre = self.centre[rows]
        return (centre - half).clamp(0, 1), (centre + half).clamp(0, 1)

    def record(self, rows: torch.Tensor, values: torch.Tensor, u: torch.Tensor) -> None:
        """TuRBO's update after a round: ``values (b, k)`` at points ``u (b, k, d)``."""
        top, arg = values.max(dim=1)
        improved = top > self.best[rows] + 1e-3 * self.best[rows].abs()
        self.successes[rows] = torch.where(improved, self.successes[rows] + 1, torch.zeros_like(self.successes[rows]))
        self.failures[rows] = torch.where(improved, torch.zeros_like(self.failures[rows]), self.failures[rows] + 1)
        grow = self.successes[rows] >= self.SUCCESS_TOL
        shrink = self.failures[rows] >= self.failure_tol
        length = self.length[rows]
        length = torch.where(grow, (2 * length).clamp(max=self.L_MAX), length)
        length = torch.where(shrink, length / 2, length)
        self.length[rows] = length
        self.successes[rows[grow]] = 0
        self.failures[rows[shrink]] = 0
        better = top > self.best[rows]
        self.best[rows] = torch.where(better, top, self.best[rows])
        moved = rows[better]
        self.centre[moved] = u[better.nonzero().flatten(), arg[better]]

    def restart_if_collapsed(self, rows: torch.Tensor, gen: torch.Generator) -> None:
        """Restart regions whose side fell below ``L_MIN`` at a random centre (the data are kept)."""
        if not self.enabled:
            return
        dead = rows[self.length[rows] < self.L_MIN]
        if dead.numel():
            self.centre[dead] = torch.rand(dead.numel(), self.d, generator=gen, device=gen.device).double().cpu()
            self.length[dead] = self.L_INIT
            self.best[dead] = float("-inf")
            self.restarts[dead] += 1
