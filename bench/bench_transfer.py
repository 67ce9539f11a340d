"""Paired transfer study: TASAR against I-FGSM, MI-FGSM and PGD from the same surrogates, on the same samples.

For every surrogate of ``--surrogates`` and attack of ``--attacks``, one ``run_cell`` call (the runner's
seeded attack set of ``--n-samples`` test clips the surrogate gets right: the same clips for every attack of a
surrogate) at the dataset's protocol budget (or ``--eps``), ``--steps`` iterations, and one step rule for
all (``--step-rule``, ``--step-size``, default ``eps / steps``, ``--random-start``). Under one step rule PGD
and I-FGSM are the same algorithm (both ascend ``sign(g)``), so the ``pgd`` row keeps PGD's own rule
(``2.5 eps / steps``, random start) as the strong white-box reference; the others differ only in their
ascent direction.

Every adversarial set is then evaluated here on each victim: the zoo models other than the surrogate, plus
reference models given with ``--reference NAME=VICTIM:CHECKPOINT`` (e.g. the same architecture trained with
another seed, or another architecture behind the surrogate's input adapter, ``bench/shared_adapter.py``),
which separate "the attacks do not transfer" from "these models differ". Reported per surrogate x victim x
attack: unconditional transfer rate (adversarial prediction != label, over all attacked clips) and
conditional rate (over the clips the victim gets right when clean), each with a 95 % percentile-bootstrap
interval over clips; per attack the white-box rate on the surrogate, the mean l2 of the perturbation and
the fraction of perturbable coordinates at +-eps; and per surrogate x victim an exact McNemar test of
TASAR against MI-FGSM (unconditional successes, paired by clip) with the paired bootstrap interval of the
difference. TASAR's posterior diagnostics are copied from its ``results.json``.

Runs are resumable folders under ``--run-root``; ``--only SURROGATE:ATTACK`` runs one cell (to run cells in
parallel processes), and a final call without it reuses them all and writes the JSON.

    python bench/bench_transfer.py --dataset synthetic --surrogates stgcn,ctrgcn --steps 30 --n-samples 256 \\
        --reference stgcn-seed1=stgcn:runs/models/stgcn-seed1/best.pt \\
        --reference ctrgcn-stgcn-adapter=bench/shared_adapter.py:ctrgcn_behind_stgcn_adapter:runs/models/ctrgcn-stgcn-adapter/best.pt \\
        --output bench/results/transfer_synthetic.json

On a dataset without zoo weights, ``--checkpoint NAME=PATH`` gives the weights of the ``--zoo`` and
``--surrogates`` models (UTD-MHAD, with the lite models of the README's recorded ``skelrobust train`` commands):

    python bench/bench_transfer.py --dataset utd-mhad --root data/UTD-MHAD/Skeleton --surrogates stgcn,ctrgcn \
        --zoo stgcn,ctrgcn,skateformer --checkpoint stgcn=runs/utd-mhad/stgcn/best.pt \
        --checkpoint ctrgcn=runs/utd-mhad/ctrgcn/best.pt --checkpoint skateformer=runs/utd-mhad/skateformer/best.pt \
        --reference stgcn-seed1=stgcn:runs/utd-mhad/stgcn-seed1/best.pt \
        --reference ctrgcn-stgcn-adapter=bench/shared_adapter.py:ctrgcn_behind_stgcn_adapter:runs/utd-mhad/ctrgcn-stgcn-adapter/best.pt \
        --steps 10 --n-samples 256 --run-root runs/bench_transfer/utd-mhad-eps0.01 \
        --output bench/results/transfer_utd-mhad_eps0.01.json

(2 cm: ``--eps 0.02`` with its own ``--run-root``, since run folders are named by dataset, surrogate and attack.)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from intervals import bootstrap_interval

FAIR_ATTACKS = ("tasar", "ifgsm", "mifgsm")


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Exact two-sided McNemar test of paired 0/1 outcomes: binomial test on the discordant pairs."""
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = only_a + only_b
    if n == 0:
        p = 1.0
    else:
        k = min(only_a, only_b)
        p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
    return {"only_first": only_a, "only_second": only_b, "p_value": p}


def perturbation_stats(clean: np.ndarray, adv: np.ndarray, eps: float) -> dict[str, float]:
    """Mean per-clip l2 of ``adv - clean`` and the fraction of perturbable coordinates at +-eps.

    Perturbable: coordinates of joints that are present (not all-zero over C) in the clean clip.
    """
    delta = adv.astype(np.float64) - clean.astype(np.float64)
    present = np.broadcast_to(np.any(clean != 0, axis=1, keepdims=True), clean.shape)
    at_eps = (np.abs(delta) >= eps * (1 - 1e-3)) & present
    return {
        "l2_mean": float(np.sqrt((delta**2).reshape(len(delta), -1).sum(1)).mean()),
        "linf_max": float(np.abs(delta).max()),
        "fraction_at_eps": float(at_eps.sum() / max(present.sum(), 1)),
    }


def _predict(model: torch.nn.Module, x: np.ndarray, batch: int = 64) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for start in range(0, len(x), batch):
            out.append(model(torch.from_numpy(np.ascontiguousarray(x[start : start + batch]))).argmax(1).numpy())
    return np.concatenate(out)


def _load_models(args: argparse.Namespace) -> dict[str, Any]:
    from skelrobust.loading import load_victim

    models: dict[str, Any] = {}
    for name in args.zoo:
        models[name] = load_victim(name, dataset=args.dataset, root=args.root, checkpoint=args.checkpoints.get(name))
    for text in args.reference:
        name, rest = text.split("=", 1)
        victim, checkpoint = rest.rsplit(":", 1)
        models[name] = load_victim(victim, dataset=args.dataset, root=args.root, checkpoint=checkpoint)
    return models


def _named_paths(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, str]:
    """``NAME=PATH`` pairs of ``--checkpoint`` as a dict (one clear line on a malformed one)."""
    named: dict[str, str] = {}
    for text in items:
        name, sep, path = text.partition("=")
        if not sep or not name or not path:
            parser.error(f"--checkpoint {text!r}: expected NAME=CHECKPOINT, e.g. stgcn=runs/stgcn/best.pt")
        named[name] = path
    return named


def run_cell(args: argparse.Namespace, surrogate: str, attack: str, victims: list[str]) -> tuple[Path, dict[str, Any], float]:
    """One attack from one surrogate through the runner (resumes a finished or partial folder)."""
    from skelrobust.benchmark.cell_config import RunConfig
    from skelrobust.benchmark.cell import run_cell

    options: dict[str, Any] = {"progress": False} if attack == "tasar" else {}
    if attack in FAIR_ATTACKS:
        options.update(step_rule=args.step_rule, random_start=args.random_start)
        if args.step_size is not None:
            options["step_size"] = args.step_size
    cfg = RunConfig(
        attack=attack, victims=victims, dataset=args.dataset, root=args.root, surrogate=surrogate, eps=args.eps,
        steps=args.steps, n_samples=args.n_samples, batch_size=args.batch_size, seed=args.seed, device="cpu",
        attack_options=options,
        checkpoints={name: path for name, path in args.checkpoints.items() if name in victims or name == surrogate},
    )
    folder = Path(args.run_root) / f"{args.dataset}-{surrogate}-{attack}"
    start = time.perf_counter()
    results = run_cell(cfg, folder, progress=False)
    return folder, results, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--root", default=None)
    parser.add_argument("--surrogates", default="stgcn,ctrgcn")
    parser.add_argument("--zoo", default=None, help="victims (default: benchmark.yaml's for the dataset)")
    parser.add_argument("--attacks", default="tasar,ifgsm,mifgsm,pgd")
    parser.add_argument("--eps", type=float, default=None, help="default: the dataset's protocol budget")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--n-samples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--step-rule", default="sign")
    parser.add_argument("--step-size", type=float, default=None, help="default eps / steps")
    parser.add_argument("--random-start", action="store_true")
    parser.add_argument("--reference", action="append", default=[], metavar="NAME=VICTIM:CHECKPOINT")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="NAME=CHECKPOINT",
                        help="weights of a --zoo / --surrogates model instead of the zoo's (datasets without a zoo entry)")
    parser.add_argument("--reference-surrogate", default="stgcn", help="surrogate whose sets the references see")
    parser.add_argument("--only", default=None, metavar="SURROGATE:ATTACK", help="run one cell and exit")
    parser.add_argument("--run-root", default="runs/bench_transfer")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.checkpoints = _named_paths(parser, args.checkpoint)

    from skelrobust.config import dataset_config, protocol_budget

    args.zoo = args.zoo.split(",") if args.zoo else list(dataset_config(args.dataset).get("victims", []))
    eps, eps_source = (args.eps, "--eps") if args.eps is not None else protocol_budget(args.dataset)
    surrogates, attacks = args.surrogates.split(","), args.attacks.split(",")
    if args.only:
        surrogate, attack = args.only.split(":")
        _, results, wall = run_cell(args, surrogate, attack, [v for v in args.zoo if v != surrogate])
        print(f"{surrogate}:{attack} done in {wall:.0f} s, white-box {results['white_box_success_rate']:.3f}", file=sys.stderr)
        return

    models = _load_models(args)
    report: dict[str, Any] = {
        "dataset": args.dataset, "eps": eps, "eps_source": eps_source, "steps": args.steps,
        "n_samples_requested": args.n_samples, "seed": args.seed,
        "step_rule": {"kind": args.step_rule, "step_size": args.step_size if args.step_size is not None else eps / args.steps,
                      "random_start": args.random_start, "applies_to": list(FAIR_ATTACKS),
                      "pgd": "its own rule: 2.5 eps / steps, random start (under one rule PGD equals I-FGSM)"},
        "references": args.reference, "checkpoints": args.checkpoints, "threads": torch.get_num_threads(), "surrogates": {},
    }
    for surrogate in surrogates:
        victims = [v for v in models if v != surrogate and (v in args.zoo or surrogate == args.reference_surrogate)]
        entry: dict[str, Any] = {"attacks": {}, "victims": victims}
        success: dict[str, dict[str, np.ndarray]] = {}
        for attack in attacks:
            folder, results, wall = run_cell(args, surrogate, attack, [v for v in args.zoo if v != surrogate])
            with np.load(folder / "adversarial.npz", allow_pickle=False) as z:
                clean, adv, labels = z["clean"], z["adversarial"], z["labels"]
            wb = _predict(models[surrogate], adv) != labels if surrogate in models else None
            row: dict[str, Any] = {
                "run": str(folder), "n_samples": int(len(labels)), "wall_s": wall,
                "attack_seconds": results["timing"]["seconds"],
                "white_box_success_rate": results["white_box_success_rate"],
                "white_box_ci95": bootstrap_interval(wb.astype(np.float64)) if wb is not None else None,
                **perturbation_stats(clean, adv, eps), "victims": {},
            }
            if attack == "tasar":
                row["posterior"] = (results["attack_extras"][0].get("tasar") or {}).get("posterior")
            success[attack] = {}
            for victim in victims:
                clean_ok = _predict(models[victim], clean) == labels
                fooled = _predict(models[victim], adv) != labels
                success[attack][victim] = fooled
                row["victims"][victim] = {
                    "clean_accuracy": float(clean_ok.mean()),
                    "transfer_rate": float(fooled.mean()), "transfer_ci95": bootstrap_interval(fooled.astype(np.float64)),
                    "conditional_rate": float(fooled[clean_ok].mean()) if clean_ok.any() else None,
                    "conditional_ci95": bootstrap_interval(fooled[clean_ok].astype(np.float64)), "conditional_n": int(clean_ok.sum()),
                }
            entry["attacks"][attack] = row
        if "tasar" in success and "mifgsm" in success:
            entry["tasar_vs_mifgsm"] = {}
            for victim in victims:
                a, b = success["tasar"][victim], success["mifgsm"][victim]
                diff = a.astype(np.float64) - b.astype(np.float64)
                entry["tasar_vs_mifgsm"][victim] = {
                    "difference": float(diff.mean()), "difference_ci95": bootstrap_interval(diff), **mcnemar_exact(a, b),
                }
        report["surrogates"][surrogate] = entry
        _print(surrogate, entry, eps)
    text = json.dumps(report, indent=2) + "\n"
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
        print(f"written {args.output}")


def _print(surrogate: str, entry: dict[str, Any], eps: float) -> None:
    def pct(v: float | None) -> str:
        return "   -  " if v is None else f"{100 * v:5.1f}%"

    print(f"\nsurrogate {surrogate} (eps {eps:g}): transfer rate [95 % CI] / conditional rate; white-box; l2; at +-eps")
    for attack, row in entry["attacks"].items():
        cells = "  ".join(
            f"{v}: {pct(c['transfer_rate'])} [{pct(c['transfer_ci95'][0])},{pct(c['transfer_ci95'][1])}] / {pct(c['conditional_rate'])}"
            for v, c in row["victims"].items()
        )
        print(f"  {attack:<7s} {cells}  wb {pct(row['white_box_success_rate'])}  l2 {row['l2_mean']:.3f}  "
              f"at eps {pct(row['fraction_at_eps'])}")
    for victim, test in (entry.get("tasar_vs_mifgsm") or {}).items():
        print(f"  TASAR - MI-FGSM on {victim}: {100 * test['difference']:+.1f} points "
              f"[{100 * test['difference_ci95'][0]:+.1f}, {100 * test['difference_ci95'][1]:+.1f}], McNemar p {test['p_value']:.3g} "
              f"({test['only_first']} vs {test['only_second']} discordant)")


if __name__ == "__main__":
    main()
