"""Query attacks on the zoo: success against queries for bo, random-search and square, and BASAR's deviations.

Part ``curves`` runs ``bo``, ``random-search`` and ``square`` through the runner (same seed, so the same attack
set per victim: a paired comparison) at one budget and ``--max-queries`` (``--attack-queries`` gives one attack
more, e.g. ``random-search=2000``: its success within a smaller count is the same as a shorter run's, since
``bo`` and ``random-search`` do not depend on the budget until it runs out; Square's schedule does), and
reports per attack and victim:

* the success rate within 100, 200, ... queries (a sample succeeds at the oracle's first feasible fooling
  query, :attr:`skelrobust.query.QueryOracle.first_success`), with 95 % bootstrap intervals;
* the median queries of the successful samples (bootstrap interval), and the success rate of the returned
  examples as the runner judges them;
* paired differences bo - random-search in success within each budget (bootstrap interval over samples);
* BO's own overhead per round (GP fit + acquisition) from the attack's extras;
* the queries and this process's CPU seconds each cell cost (accumulated over resumed runs).

``--attacks`` takes registered query attacks and the bench's variants (:data:`VARIANTS`):
``random-search-vertex`` is ``random-search`` with ``points=vertex``, the sign-vertex baseline.

Part ``basar`` runs ``basar`` (decision-based) with a large l2 budget (so the budget projection does not
interfere with its minimal-perturbation search) and reports its success, the l2 / bone-length /
acceleration deviations of its adversarial examples (BASAR's metrics, from :func:`skelrobust.metrics.imperceptibility`),
and how many of them fall inside the protocol budget.

Part ``summary`` recomputes the ``curves`` figures from the finished runs (or batches) in ``--work`` without
running anything: for cells run by separate processes, whose paired comparison needs them together, and for a
bench that was cut short (``n_samples`` then says how many finished). With ``--ceiling-restarts`` it also runs a
white-box sign-gradient attack inside BO's subspace on the same samples: roughly the most any search of that
subspace can fool at this budget, which tells a plateau of BO's optimiser from one of its subspace.

Part ``overhead`` times BO's own work per round (the choice of the training set, a warm-started GP fit and
the qLogEI acquisition of q = 8 candidates) for subspace dimensions ``--dims`` (45, 90, 100), one GP or a batch
of GPs (``--gps``), and histories of ``--observations`` queries per sample (16 to 5,000; the GP sees at most
128 of them): wall seconds and this process's CPU seconds (on a shared machine the CPU time is the figure
that does not depend on the other jobs; one thread).

Each (attack, victim) cell is a runner folder under ``--work`` (resumable); the JSON is rewritten after
every cell, so an interrupted bench keeps what it finished.

    python bench/bench_query.py --part curves --victims ctrgcn --n-samples 64 --max-queries 200 --eps 0.03
    # the committed 5,000-query evidence: one process per attack (bo, random-search, random-search-vertex,
    # square), then the paired summary
    python bench/bench_query.py --part curves --victims stgcn --attacks bo --n-samples 64 --max-queries 5000 --eps 0.025 --work runs/query
    python bench/bench_query.py --part summary --victims stgcn --attacks bo,random-search,random-search-vertex,square --n-samples 64 --max-queries 5000 --eps 0.025 --work runs/query --ceiling-restarts 5 --ceiling-steps 50 --output bench/results/query_synthetic_stgcn_eps0.025_q5000.json
    python bench/bench_query.py --part basar --victims ctrgcn --n-samples 64 --max-queries 2000 --eps 0.025 --output bench/results/query_basar_synthetic_ctrgcn_q2000.json
    python bench/bench_query.py --part overhead
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BOOT = 2000
BUDGETS = (25, 50, 100, 150, 200, 300, 500, 1000, 2000, 3000, 5000)
#: The imperceptibility figures the summary reports per cell (median over the attacked samples).
IMPERCEPTIBILITY = ("linf", "l2", "bone_length_rel_error", "acceleration_deviation")
#: Bench names for an attack run with options: name -> (registered attack, its options).
VARIANTS = {"random-search-vertex": ("random-search", {"points": "vertex"})}


def interval(values: np.ndarray, stat: Any = np.mean, seed: int = 0) -> list[float] | None:
    """95 % percentile bootstrap interval of ``stat`` over the samples (None when empty)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return None
    rng = np.random.default_rng(seed)
    draws = [stat(values[rng.integers(0, values.size, values.size)]) for _ in range(BOOT)]
    return [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))]


def queries_of(attack: str, args: argparse.Namespace) -> int:
    """The query budget of ``attack``: its ``--attack-queries`` entry, else ``--max-queries``."""
    return args.attack_queries.get(attack, args.max_queries)


def budgets_up_to(queries: int) -> list[int]:
    """The query counts at which success is reported, up to ``queries``."""
    return [b for b in BUDGETS if b <= queries]


def success_figures(first: np.ndarray, budgets: list[int]) -> dict[str, Any]:
    """Success within each query count and the queries of the successful samples, with 95 % intervals.

    ``first``: each sample's first fooling query (0 when it was never fooled).
    """
    ok = first[first > 0]
    return {
        "success_at": {
            str(b): {"rate": float(((first > 0) & (first <= b)).mean()), "ci95": interval(((first > 0) & (first <= b)).astype(float))}
            for b in budgets
        },
        "queries_to_success_median": float(np.median(ok)) if ok.size else None,
        "queries_to_success_median_ci95": interval(ok, np.median) if ok.size else None,
        "queries_to_success_mean": float(ok.mean()) if ok.size else None,
    }


def run_cell(attack: str, victim: str, args: argparse.Namespace, **extra: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run (or resume, or load) one runner folder; this process's CPU seconds spent on it accumulate in the folder."""
    from skelrobust.benchmark.cell_config import RunConfig
    from skelrobust.benchmark.cell import run_cell
    from skelrobust.io import atomic_write_json

    queries = queries_of(attack, args)
    registered, options = VARIANTS.get(attack, (attack, {}))
    if options:
        extra["attack_options"] = {**options, **extra.get("attack_options", {})}
    cfg = RunConfig(
        attack=registered, victims=[victim], dataset="synthetic", n_samples=args.n_samples, max_queries=queries,
        eps=extra.pop("eps", args.eps), norm=extra.pop("norm", "linf"), seed=args.seed, batch_size=args.batch_size,
        device="cpu", **extra,
    )
    folder = Path(args.work) / f"{attack}-{victim}-{cfg.norm}{cfg.eps}-q{queries}-n{args.n_samples}"
    c0 = time.process_time()
    results = run_cell(cfg, folder, progress=False)
    cpu_file = folder / "bench_cpu_seconds.json"
    spent = json.loads(cpu_file.read_text())["cpu_seconds"] if cpu_file.exists() else 0.0
    atomic_write_json(cpu_file, {"cpu_seconds": spent + time.process_time() - c0})
    results["bench_cpu_seconds"] = spent + time.process_time() - c0
    records = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    return results, records


def curves(args: argparse.Namespace, out: dict[str, Any]) -> None:
    cells = out.setdefault("cells", {})
    firsts: dict[tuple[str, str], np.ndarray] = {}
    for victim in args.victims:
        for attack in args.attacks:
            t0 = time.perf_counter()
            results, records = run_cell(attack, victim, args)
            budgets = budgets_up_to(queries_of(attack, args))
            first = np.array([r["first_success_query"] for r in records], dtype=np.int64)
            firsts[(attack, victim)] = first
            extras = results["attack_extras"]
            cell: dict[str, Any] = {
                "n_samples": int(first.size),
                "max_queries": queries_of(attack, args),
                **success_figures(first, budgets),
                "returned_success_rate": results["white_box_success_rate"],
                "queries_mean": results["query"]["queries_mean"],
                "queries_total": int(results["query"]["queries_mean"] * first.size),
                "attack_seconds": results["timing"]["seconds"],
                "cpu_seconds": results["bench_cpu_seconds"],
                "cell_wall_seconds": time.perf_counter() - t0,
                "imperceptibility_mean": {k: results["imperceptibility"].get(k) for k in IMPERCEPTIBILITY},
            }
            if attack == "bo":
                rounds = sum(e.get("rounds", 0) for e in extras)
                overhead = sum(e.get("gp_fit_seconds", 0) + e.get("acquisition_seconds", 0) for e in extras)
                cell["bo_overhead"] = {
                    "rounds": rounds,
                    "seconds_per_round": overhead / max(rounds, 1),
                    "seconds_per_round_per_sample": overhead / max(rounds, 1) / args.batch_size,
                    "share_of_attack_time": overhead / max(results["timing"]["seconds"], 1e-9),
                    "subspace_dim": extras[0].get("subspace_dim"), "trust_region": extras[0].get("trust_region"),
                    "note": "one round = q candidates for every unfooled sample of a batch (one batched GP); "
                    "per sample: divided by the batch size (fewer samples are active in late rounds, so this understates it)",
                }
            cells[f"{attack}/{victim}"] = cell
            if attack != "bo" and ("bo", victim) in firsts:
                bo = firsts[("bo", victim)]
                if bo.size == first.size:
                    out.setdefault("paired_bo_minus", {})[f"{attack}/{victim}"] = paired(bo, first, budgets_up_to(min(queries_of("bo", args), queries_of(attack, args))))
            save(args, out)
            print(f"[bench] {attack} on {victim}: " + ", ".join(f"{b}: {cell['success_at'][str(b)]['rate']:.3f}" for b in budgets), flush=True)


def paired(bo: np.ndarray, other: np.ndarray, budgets: list[int]) -> dict[str, Any]:
    """BO minus another attack in success within each query count, on the same samples (bootstrap over samples)."""
    out: dict[str, Any] = {}
    for b in budgets:
        diff = ((bo > 0) & (bo <= b)).astype(float) - ((other > 0) & (other <= b)).astype(float)
        out[str(b)] = {"difference": float(diff.mean()), "ci95": interval(diff)}
    return out


def finished_parts(folder: Path) -> list[dict[str, Any]]:
    """What a runner folder finished: its batch shards while the run is under way, else the finished run's samples.

    Each part holds ``first`` (the first fooling query per sample, 0 when none), ``queries`` per sample,
    ``seconds`` of attack time and the attack's ``extras``; a finished run is one part.
    """
    shards = sorted((folder / "shards").glob("batch_*.npz")) if (folder / "shards").is_dir() else []
    parts = []
    for path in shards:
        with np.load(path, allow_pickle=False) as z:
            parts.append({"first": z["first_success_query"], "queries": z["queries"], "seconds": float(z["seconds"]),
                          "extras": json.loads(str(z["extras"]))})
    if parts or not (folder / "results.json").exists():
        return parts
    results = json.loads((folder / "results.json").read_text())
    records = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    extras = results["attack_extras"]
    summed = {k: sum(e.get(k, 0) for e in extras) for k in ("rounds", "gp_fit_seconds", "acquisition_seconds")}
    return [{"first": np.array([r["first_success_query"] for r in records]), "queries": np.array([r["queries"] for r in records]),
             "seconds": float(results["timing"]["seconds"]), "extras": {**summed, "subspace_dim": extras[0].get("subspace_dim")},
             "imperceptibility_median": {k: results["imperceptibility_median"].get(k) for k in IMPERCEPTIBILITY}}]


def subspace_ceiling(args: argparse.Namespace, victim: str) -> dict[str, Any]:
    """What a white-box attack reaches inside BO's subspace, on the samples of the victim's ``bo`` runner folder.

    Sign-gradient ascent on the subspace point ``z`` in ``[-1, 1]^d`` (BO's decoder, budget and margin; the
    victim's own gradient, which no query attack has), ``--ceiling-restarts`` random starts of
    ``--ceiling-steps`` steps each, step 0.1. A sample this fools can be fooled from the subspace; one it
    cannot is a sample BO could only reach by luck of a better optimiser than gradient ascent, so the rate
    bounds, approximately, what any search of this subspace achieves at this budget.
    """
    import torch

    from skelrobust.attack import Attack, AttackContext, ThreatModel
    from skelrobust.data import load_dataset
    from skelrobust.loading import load_victim
    from skelrobust.query_attack import margin
    from skelrobust.subspace import MotionSubspace

    class SubspaceGradient(Attack):
        threat = ThreatModel.WHITE_BOX
        name = "subspace-gradient"

        def run(self, ctx: AttackContext) -> torch.Tensor:
            space = MotionSubspace(ctx)
            n = ctx.x.shape[0]
            owners = torch.arange(n)
            best, fooled = ctx.x.clone(), torch.zeros(n, dtype=torch.bool)
            for _ in range(args.ceiling_restarts):
                z = torch.rand(n, space.dim, generator=ctx.generator, dtype=ctx.x.dtype) * 2 - 1
                for _ in range(args.ceiling_steps):
                    z.requires_grad_(True)
                    x_adv = space.decode(z, owners)
                    value = margin(torch.softmax(ctx.model(x_adv), dim=1), ctx, owners)
                    hit = (value > 0).detach() & ~fooled
                    best[hit], fooled = x_adv.detach()[hit], fooled | hit
                    (grad,) = torch.autograd.grad(value.sum(), z)
                    z = (z.detach() + 0.1 * grad.sign()).clamp(-1, 1)
            return best

    folder = Path(args.work) / f"bo-{victim}-linf{float(args.eps)}-q{queries_of('bo', args)}-n{args.n_samples}"
    attack_set = json.loads((folder / "attack_set.json").read_text())
    data = load_dataset("synthetic", "test")
    model = load_victim(victim, dataset="synthetic", device="cpu", num_persons=int(data.data.shape[4]))
    x = torch.from_numpy(np.ascontiguousarray(data.data[attack_set["indices"]])).float()
    y = torch.as_tensor(attack_set["labels"])
    t0 = time.process_time()
    fooled = []
    for start in range(0, x.shape[0], args.batch_size):
        rows = slice(start, start + args.batch_size)
        out = SubspaceGradient(eps=args.eps)(x[rows], y[rows], layout=data.layout, model=model,
                                             generator=torch.Generator().manual_seed(args.seed + start))
        with torch.no_grad():
            fooled.append(model(out.adversarial).argmax(dim=1) != y[rows])
    hit = torch.cat(fooled).numpy()
    bo = np.array([json.loads(line)["first_success_query"] for line in (folder / "samples.jsonl").read_text().splitlines()])
    return {
        "n_samples": int(hit.size), "restarts": args.ceiling_restarts, "steps": args.ceiling_steps,
        "success_rate": float(hit.mean()), "ci95": interval(hit.astype(float)),
        "bo_success_rate": float((bo > 0).mean()),
        "fooled_here_not_by_bo": int((hit & (bo == 0)).sum()), "fooled_by_bo_not_here": int((~hit & (bo > 0)).sum()),
        "cpu_seconds": time.process_time() - t0,
    }


def summary(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Success against queries from the runner folders' finished runs or shards (no attack is run).

    For cells run by separate processes (the paired comparison needs them together) or a bench cut short:
    every finished batch of every (attack, victim) folder counts; the paired
    comparison uses the samples finished by both attacks (batches are in attack-set order, and the attack
    set is the same for every attack of one victim).
    """
    cells = out.setdefault("cells", {})
    firsts: dict[tuple[str, str], np.ndarray] = {}
    for victim in args.victims:
        for attack in args.attacks:
            budgets = budgets_up_to(queries_of(attack, args))
            folder = Path(args.work) / f"{attack}-{victim}-linf{float(args.eps)}-q{queries_of(attack, args)}-n{args.n_samples}"
            parts = finished_parts(folder)
            if not parts:
                continue
            first = np.concatenate([p["first"] for p in parts]).astype(np.int64)
            firsts[(attack, victim)] = first
            cell: dict[str, Any] = {
                "n_samples": int(first.size),
                **success_figures(first, budgets),
                "queries_mean": float(np.concatenate([p["queries"] for p in parts]).mean()),
                "attack_seconds": sum(p["seconds"] for p in parts),
            }
            if len(parts) == 1 and "imperceptibility_median" in parts[0]:
                cell["imperceptibility_median"] = parts[0]["imperceptibility_median"]
            if attack == "bo":
                rounds = sum(p["extras"].get("rounds", 0) for p in parts)
                spent = sum(p["extras"].get("gp_fit_seconds", 0) + p["extras"].get("acquisition_seconds", 0) for p in parts)
                cell["bo_overhead"] = {
                    "rounds": rounds, "seconds_per_round": spent / max(rounds, 1),
                    "share_of_attack_time": spent / max(cell["attack_seconds"], 1e-9),
                    "subspace_dim": [p["extras"].get("subspace_dim") for p in parts],
                    "note": "one round = q = 8 candidates for every unfooled sample of a batch of 32 (one batched GP)",
                }
            cells[f"{attack}/{victim}"] = cell
        bo = firsts.get(("bo", victim))
        for attack in args.attacks:
            other = firsts.get((attack, victim))
            if attack == "bo" or bo is None or other is None:
                continue
            k = min(bo.size, other.size)
            common = budgets_up_to(min(queries_of("bo", args), queries_of(attack, args)))
            out.setdefault("paired_bo_minus", {})[f"{attack}/{victim}"] = {"n_samples": int(k), **paired(bo[:k], other[:k], common)}
            beyond = (bo[:k] == 0) & (other[:k] > 0)
            out.setdefault("fooled_where_bo_failed", {})[f"{attack}/{victim}"] = {
                "bo_failed": int((bo[:k] == 0).sum()), "fooled_by_this_attack": int(beyond.sum()),
                "queries_median": float(np.median(other[:k][beyond])) if beyond.any() else None,
                "bo_fooled_this_attack_failed": int(((bo[:k] > 0) & (other[:k] == 0)).sum()),
            }
    if args.basar_queries:
        out["basar"] = {victim: basar_from_shards(args, victim) for victim in args.victims}
    if args.ceiling_restarts:
        out["subspace_white_box_ceiling"] = {victim: subspace_ceiling(args, victim) for victim in args.victims}
    save(args, out)


def basar_deviations(clean: Any, adversarial: Any, first: np.ndarray) -> dict[str, Any]:
    """BASAR's l2 / bone-length / acceleration deviations (and others) of the samples it fooled."""
    import torch

    from skelrobust.data import load_dataset
    from skelrobust.metrics import imperceptibility

    layout = load_dataset("synthetic", "test").layout
    metrics = {k: v.numpy() for k, v in imperceptibility(clean, adversarial, layout).items()}
    fooled = first > 0
    rows = torch.from_numpy(fooled)
    summary = {}
    for key in (*IMPERCEPTIBILITY, "mean_joint_displacement"):
        v = metrics[key][fooled]
        summary[key] = {"mean": float(v.mean()) if v.size else None, "median": float(np.median(v)) if v.size else None,
                        "ci95_mean": interval(v)}
    return {"success_rate": float(fooled.mean()), "success_rate_ci95": interval(fooled.astype(float)),
            "fooled_inside_linf_budget": metrics["linf"][fooled].tolist(), "deviations_of_successful": summary,
            "manifold_projection_of_successful": projection_diagnostic(clean[rows], adversarial[rows], layout)}


def projection_diagnostic(clean: Any, adversarial: Any, layout: Any) -> dict[str, Any]:
    """How far BASAR's manifold projection (weight 1) would move its adversarial motions, relative to their perturbation.

    For each motion: ``moved = ||P(adv) - adv|| / ||adv - x||`` (the share of the perturbation the projection
    changes) and ``remaining = ||P(adv) - x|| / ||adv - x||`` (how much of the perturbation survives it); a
    projection with ``moved`` near 1 and ``remaining`` well below 1 undoes the attack rather than cleaning it.
    """
    from skelrobust.kinematics import project_persons

    if clean.shape[0] == 0:
        return {"n": 0}
    clean, adversarial = clean.double(), adversarial.double()
    projected = project_persons(adversarial, clean, layout)
    per_sample = lambda z: z.flatten(1).norm(dim=1)  # noqa: E731
    size = per_sample(adversarial - clean).clamp_min(1e-12)
    moved = (per_sample(projected - adversarial) / size).numpy()
    remaining = (per_sample(projected - clean) / size).numpy()
    return {"n": int(clean.shape[0]), "moved_median": float(np.median(moved)), "moved_ci95_mean": interval(moved),
            "remaining_median": float(np.median(remaining)), "remaining_ci95_mean": interval(remaining)}


def basar_from_shards(args: argparse.Namespace, victim: str) -> dict[str, Any]:
    """BASAR's figures from the finished batches of its runner folder (clean motions from the attack set)."""
    import torch

    from skelrobust.data import load_dataset

    folder = Path(args.work) / f"basar-{victim}-l2{float(args.basar_l2)}-q{args.basar_queries}-n{args.n_samples}"
    parts = []
    for path in sorted((folder / "shards").glob("batch_*.npz")):
        with np.load(path, allow_pickle=False) as z:
            parts.append({k: z[k] for k in ("adversarial", "first_success_query", "queries", "extras", "seconds")})
    indices = np.asarray(json.loads((folder / "attack_set.json").read_text())["indices"])
    adversarial = np.concatenate([p["adversarial"] for p in parts])
    clean = load_dataset("synthetic", "test").data[indices[: adversarial.shape[0]]]
    first = np.concatenate([p["first_success_query"] for p in parts])
    cell = basar_deviations(torch.from_numpy(np.ascontiguousarray(clean)), torch.from_numpy(adversarial), first)
    linf = np.asarray(cell.pop("fooled_inside_linf_budget"))
    cell.update({
        "n_samples": int(first.size), "l2_budget_given": args.basar_l2, "max_queries": args.basar_queries,
        "fooled_and_inside_protocol_linf_budget": float((linf <= args.eps + 1e-6).sum() / max(first.size, 1)),
        "protocol_linf_budget": args.eps,
        "queries_mean": float(np.concatenate([p["queries"] for p in parts]).mean()),
        "attack_seconds": float(sum(float(p["seconds"]) for p in parts)),
        "extras": [json.loads(str(p["extras"])) for p in parts],
    })
    return cell


def basar(args: argparse.Namespace, out: dict[str, Any]) -> None:
    import torch

    cells = out.setdefault("basar", {})
    for victim in args.victims:
        results, records = run_cell("basar", victim, args, eps=args.basar_l2, norm="l2", attack_options={"stop_inside_budget": False})
        run_dir = Path(args.work) / f"basar-{victim}-l2{float(args.basar_l2)}-q{queries_of('basar', args)}-n{args.n_samples}"
        with np.load(run_dir / "adversarial.npz") as z:
            clean, adv = torch.from_numpy(z["clean"]), torch.from_numpy(z["adversarial"])
        first = np.array([r["first_success_query"] for r in records], dtype=np.int64)
        cell = basar_deviations(clean, adv, first)
        linf = np.asarray(cell.pop("fooled_inside_linf_budget"))
        cells[victim] = {
            "n_samples": int(first.size),
            "l2_budget_given": args.basar_l2,
            **cell,
            "returned_success_rate": results["white_box_success_rate"],
            "returned_inside_protocol_linf_budget": float((linf <= args.eps + 1e-6).sum() / max(first.size, 1)),
            "protocol_linf_budget": args.eps,
            "queries_mean": results["query"]["queries_mean"],
            "extras": results["attack_extras"],
            "attack_seconds": results["timing"]["seconds"],
            "cpu_seconds": results["bench_cpu_seconds"],
        }
        save(args, out)
        print(f"[bench] basar on {victim}: success {cells[victim]['success_rate']:.3f}, "
              f"l2 median {cells[victim]['deviations_of_successful']['l2']['median']}", flush=True)


def overhead(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """BO's own cost per round (GP fit + qLogEI acquisition of q = 8) on synthetic data, by dimension, batch and history.

    A sample with ``observations`` queries so far is fitted on at most ``max_train`` (128) of them, those
    nearest its trust-region centre (:meth:`BayesOptAttack._training_set`, timed with the round), so the
    cost of a round stops growing once the history passes 128 points.
    """
    import torch

    from skelrobust.attack import create_attack
    from skelrobust.attacks.bo import _fit

    attack = create_attack("bo")
    gen = torch.Generator().manual_seed(0)
    rows_out = out.setdefault("overhead", [])
    for d in args.dims:
        for b in args.gps:
            for n in args.observations:
                u = torch.rand(b, n, d, dtype=torch.float64, generator=gen)
                y = torch.sin(6 * u[..., :4]).sum(-1) + 0.05 * torch.randn(b, n, dtype=torch.float64, generator=gen)
                centre = torch.rand(b, d, dtype=torch.float64, generator=gen)
                warm: dict[str, torch.Tensor] = {}
                train_u, train_y = attack._training_set(u, y, n, centre)
                _fit(train_u, train_y, attack.fit_maxiter, warm, torch.arange(b), b)  # first fit (cold), then timed warm fits
                times_fit, times_acq, cpu = [], [], []
                for _ in range(args.repeats):
                    c0, t0 = time.process_time(), time.perf_counter()
                    train_u, train_y = attack._training_set(u, y, n, centre)
                    model = _fit(train_u, train_y, attack.fit_maxiter, warm, torch.arange(b), b)
                    t1 = time.perf_counter()
                    lb, ub = (centre - 0.2).clamp(0, 1), (centre + 0.2).clamp(0, 1)
                    attack._acquire(model, train_y, lb, ub, attack.q, gen)
                    times_fit.append(t1 - t0)
                    times_acq.append(time.perf_counter() - t1)
                    cpu.append(time.process_time() - c0)
                row = {"dim": d, "gps_in_batch": b, "observations": n, "train_points": int(train_u.shape[1]), "q": attack.q,
                       "fit_seconds": float(np.median(times_fit)), "acquisition_seconds": float(np.median(times_acq)),
                       "round_cpu_seconds": float(np.median(cpu))}
                row["round_seconds"] = row["fit_seconds"] + row["acquisition_seconds"]
                row["round_seconds_per_gp"] = row["round_seconds"] / b
                row["round_cpu_seconds_per_gp"] = row["round_cpu_seconds"] / b
                rows_out.append(row)
                save(args, out)
                print(f"[bench] d={d} b={b} n={n}: {row['round_seconds']:.3f} s per round ({row['round_cpu_seconds']:.3f} CPU s), "
                      f"{row['round_seconds_per_gp']:.3f} s per GP", flush=True)


def option_text(value: Any) -> str:
    """An option's value as it is typed on the command line (lists and mappings comma-separated)."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def save(args: argparse.Namespace, out: dict[str, Any]) -> None:
    from skelrobust.io import atomic_write_json

    atomic_write_json(Path(args.output), out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["curves", "basar", "overhead", "summary"], default="curves")
    parser.add_argument("--repeats", type=int, default=3, help="overhead: timed rounds per setting (median)")
    parser.add_argument("--gps", default="1,32", help="overhead: GPs fitted together (samples of a batch)")
    parser.add_argument("--dims", default="45,90,100", help="overhead: subspace dimensions")
    parser.add_argument("--observations", default="16,64,128,1000,5000", help="overhead: queries so far per sample (the GP is fitted on at most 128)")
    parser.add_argument("--victims", default="ctrgcn,skateformer,stgcn")
    parser.add_argument("--attacks", default="bo,random-search,square")
    parser.add_argument("--n-samples", type=int, default=64)
    parser.add_argument("--max-queries", type=int, default=500)
    parser.add_argument("--attack-queries", default="", help="per-attack query budgets overriding --max-queries, e.g. random-search=5000,square=1000")
    parser.add_argument("--eps", type=float, default=0.03, help="linf protocol budget of the synthetic set (m)")
    parser.add_argument("--basar-l2", type=float, default=100.0, help="l2 budget given to basar (large: unbounded search)")
    parser.add_argument("--basar-queries", type=int, default=None, help="summary: also summarise the basar folder run with this --max-queries")
    parser.add_argument("--ceiling-restarts", type=int, default=0, help="summary: also run the white-box ceiling of BO's subspace with this many random starts")
    parser.add_argument("--ceiling-steps", type=int, default=50, help="summary: sign-gradient steps per start of the ceiling")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=None, help="runner folders (resumable); default a temporary folder")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    args.victims = [v for v in args.victims.split(",") if v]
    args.attacks = [a for a in args.attacks.split(",") if a]
    args.gps = [int(b) for b in args.gps.split(",") if b]
    args.dims = [int(d) for d in args.dims.split(",") if d]
    args.observations = [int(n) for n in args.observations.split(",") if n]
    args.attack_queries = {k: int(v) for k, v in (item.split("=") for item in args.attack_queries.split(",") if item)}
    args.work = args.work or tempfile.mkdtemp(prefix="bench-query-")
    args.output = args.output or f"bench/results/query_{args.part}_synthetic.json"
    import torch

    torch.set_num_threads(1)
    out: dict[str, Any] = {
        "part": args.part, "dataset": "synthetic", "eps_linf": args.eps, "max_queries": args.max_queries,
        "attack_queries": args.attack_queries, "n_samples": args.n_samples, "seed": args.seed, "batch_size": args.batch_size, "victims": args.victims,
        "torch_threads": torch.get_num_threads(), "load_average_at_start": list(os.getloadavg()),
        "command": "python bench/bench_query.py " + " ".join(f"--{k.replace('_', '-')} {option_text(v)}" for k, v in vars(args).items() if k not in ("work", "output")),
    }
    {"curves": curves, "basar": basar, "overhead": overhead, "summary": summary}[args.part](args, out)
    out["load_average_at_end"] = list(os.getloadavg())
    save(args, out)


if __name__ == "__main__":
    main()
