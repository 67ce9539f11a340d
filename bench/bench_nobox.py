"""Hard no-box attacks (Lu et al., ICCV 2023): every variant against every victim, paired, with 95 % intervals.

Runs ``nobox-ifgsm``, ``s1i``, ``s2i``, ``nobox-mifgsm``, ``s1mi`` and ``s2mi``, and the paper's self-supervised
attacker ``ssl-attacker`` (its own encoder plus a linear head trained with the training labels, attacked with
I-FGSM), through the runner on the same attack set (the first ``--n-samples`` of the seeded test permutation,
unfiltered, as the hard no-box threat model says), each generating its adversarial set once and evaluating it
on every victim. A random-sign control (uniform +-eps on every present coordinate) runs on the same samples. The encoder is learned once (the
runner's cache: same samples, same configuration) and the TV-AR taps are fitted once per sample and order.

Reported per variant and victim: the fooling rate (prediction changed from the victim's clean prediction) with
a 95 % bootstrap interval over samples; paired differences (second order - first order, first order - plain,
per family I / MI; each no-box variant - the self-supervised attacker; each variant - the random-sign control)
with paired bootstrap intervals; Delta-p in both readings of the paper's Eq. 15
(``delta_p``: joint + bone + acceleration terms, ``delta_p_two_term``: as printed) with intervals and the
paired differences of S2I against every other variant; l2 and the share of coordinates at +-eps; the iteration
cost against the floor (steps x one encoder forward+backward of a batch, measured in the same process).

    python bench/bench_nobox.py --eps 0.025 --steps 400 --n-samples 256 --output bench/results/nobox_synthetic.json
    python bench/bench_nobox.py --dataset utd-mhad --root DATA/UTD-MHAD/Skeleton --eps 0.01 --steps 40 \
        --checkpoint stgcn=MODELS/stgcn/best.pt --checkpoint ctrgcn=MODELS/ctrgcn/best.pt --output ...

Runs are resumable: ``--workdir`` keeps each variant's run folder; rerunning skips finished work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from intervals import bootstrap_interval

NOBOX_VARIANTS = ("nobox-ifgsm", "s1i", "s2i", "nobox-mifgsm", "s1mi", "s2mi")
#: The paper's self-supervised attacker (threat model own-surrogate: training data and labels, no model).
SSL_ATTACKER = "ssl-attacker"
VARIANTS = (*NOBOX_VARIANTS, SSL_ATTACKER)
CONTROL = "random-signs"
#: (higher order, lower order) pairs whose paired difference tests "second >= first >= plain".
ORDER_PAIRS = (("s1i", "nobox-ifgsm"), ("s2i", "s1i"), ("s2i", "nobox-ifgsm"),
               ("s1mi", "nobox-mifgsm"), ("s2mi", "s1mi"), ("s2mi", "nobox-mifgsm"))
BOOTSTRAP = 2000


def bootstrap_mean(values: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Mean and percentile 95 % interval over ``BOOTSTRAP`` resamples of the rows of ``values`` ``(K,)``."""
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "ci95": bootstrap_interval(values, reps=BOOTSTRAP, seed=seed)}


def _records(run: Path) -> list[dict[str, Any]]:
    with open(run / "samples.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _floor_seconds(encoder: torch.nn.Module, x: torch.Tensor, repeats: int = 5) -> float:
    """Median seconds of one encoder forward+backward to the input on ``x`` (the floor of one iteration)."""
    def once() -> None:
        v = x.clone().requires_grad_(True)
        torch.autograd.grad(encoder(v).sum(), v)

    once()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--victims", default=None, help="Comma-separated; default: every zoo victim of the dataset, else the --checkpoint names")
    parser.add_argument("--root", default=None, help="Dataset folder (real datasets)")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH", help="Victim weights instead of the zoo")
    parser.add_argument("--eps", type=float, required=True, help="Budget (explicit: say which in the report)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--n-samples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="Attack option, passed to every variant that declares it")
    parser.add_argument("--cost-steps", type=int, default=10, help="Iterations timed per variant for the cost ratio")
    parser.add_argument("--workdir", default="runs/bench-nobox")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    from skelrobust.cli.main import parse_assignments
    from skelrobust.benchmark.cell_config import RunConfig
    from skelrobust.benchmark.cell import run_cell
    from skelrobust.zoo import entries
    from skelrobust.attack import ATTACKS
    from skelrobust.attack_options import declared_options

    variants = [v for v in args.variants.split(",") if v]
    victims = args.victims.split(",") if args.victims else sorted({e["victim"] for e in entries() if e["dataset"] == args.dataset})
    options = parse_assignments(tuple(args.option), "--option")
    checkpoints = dict(item.split("=", 1) for item in args.checkpoint)
    if not args.victims and not victims:
        victims = sorted(checkpoints)
    work = Path(args.workdir)
    report: dict[str, Any] = {
        "dataset": args.dataset, "victims": victims, "eps": args.eps, "eps_source": "explicit --eps",
        "steps": args.steps, "n_samples": args.n_samples, "batch_size": args.batch_size, "seed": args.seed,
        "options": options, "bootstrap_resamples": BOOTSTRAP, "torch_threads": torch.get_num_threads(),
        "root": args.root, "checkpoints": checkpoints, "load_average_start": list(os.getloadavg()),
        "argv": sys.argv[1:], "variants": {}, "fooling": {}, "paired_fooling": {}, "delta_p": {}, "paired_delta_p": {},
    }
    fooled: dict[str, dict[str, np.ndarray]] = {}
    metrics: dict[str, dict[str, np.ndarray]] = {}
    sample_ids = None
    for variant in variants:
        start, cpu_start = time.perf_counter(), time.process_time()
        cfg = RunConfig(attack=variant, victims=victims, dataset=args.dataset, eps=args.eps, steps=args.steps,
                        n_samples=args.n_samples, batch_size=args.batch_size, seed=args.seed, device="cpu",
                        root=args.root, checkpoints=dict(checkpoints), selection="all",
                        attack_options={k: v for k, v in options.items() if k in declared_options(ATTACKS.get(variant))})
        results = run_cell(cfg, work / variant, progress=True)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        records = _records(work / variant)
        ids = [r["sample_id"] for r in records]
        if sample_ids is None:
            sample_ids = ids
        assert ids == sample_ids, "every variant must attack the same samples"
        fooled[variant] = {
            v["victim"]: np.array([r["victims"][i]["adversarial_prediction"] != r["victims"][i]["clean_prediction"] for r in records], dtype=float)
            for i, v in enumerate(records[0]["victims"])
        }
        metrics[variant] = {k: np.array([r["imperceptibility"][k] for r in records], dtype=float)
                            for k in ("delta_p", "delta_p_two_term", "l2", "linf")}
        extras = results["attack_extras"]
        adv = np.load(work / variant / "adversarial.npz")
        delta = adv["adversarial"] - adv["clean"]
        present = adv["clean"] != 0
        report["variants"][variant] = {
            "run": str(work / variant), "wall_seconds_this_call": wall, "cpu_seconds_this_call": cpu,
            "attack_seconds": results["timing"]["seconds"], **_attack_record(extras),
            "share_of_coordinates_at_eps": float((np.abs(np.abs(delta[present]) - args.eps) < 1e-6 * max(args.eps, 1e-12) + 1e-7).mean()),
            "l2_mean": float(metrics[variant]["l2"].mean()),
            "clean_accuracy": {c["victim"]: c["clean_accuracy"] for c in results["victims"]},
            "transfer_success_rate": {c["victim"]: c["transfer_success_rate"] for c in results["victims"]},
        }
        report["fooling"][variant] = {v: bootstrap_mean(f, args.seed) for v, f in fooled[variant].items()}
        report["delta_p"][variant] = {k: bootstrap_mean(metrics[variant][k], args.seed) for k in ("delta_p", "delta_p_two_term")}
        print(f"[bench] {variant}: {wall:.0f} s; fooling " + ", ".join(f"{v} {100 * r['mean']:.1f}%" for v, r in report["fooling"][variant].items())
              + f"; delta_p {report['delta_p'][variant]['delta_p']['mean']:.4f}", file=sys.stderr)

    control = _random_control(victims, work / variants[0], args, checkpoints)
    report["random_sign_control"] = {v: bootstrap_mean(f, args.seed) for v, f in control.items()}
    report["paired_fooling_over_control"] = {
        f"{variant} - {CONTROL}": {v: bootstrap_mean(fooled[variant][v] - control[v], args.seed) for v in control} for variant in variants
    }
    nobox = [v for v in variants if v in NOBOX_VARIANTS]
    report["smi_diagnostics"] = _smi_diagnostics(nobox, work)
    for high, low in ORDER_PAIRS:
        if high in fooled and low in fooled:
            report["paired_fooling"][f"{high} - {low}"] = {
                v: bootstrap_mean(fooled[high][v] - fooled[low][v], args.seed) for v in fooled[high]
            }
    if SSL_ATTACKER in fooled:
        for variant in nobox:
            report["paired_fooling"][f"{variant} - {SSL_ATTACKER}"] = {
                v: bootstrap_mean(fooled[variant][v] - fooled[SSL_ATTACKER][v], args.seed) for v in fooled[variant]
            }
    if "s2i" in metrics:
        for other in metrics:
            if other != "s2i":
                report["paired_delta_p"][f"s2i - {other}"] = {
                    k: bootstrap_mean(metrics["s2i"][k] - metrics[other][k], args.seed) for k in ("delta_p", "delta_p_two_term")
                }
    report["cost"] = _cost(nobox, report, work, args)
    report["claims"] = _claims(report)
    report["load_average_end"] = list(os.getloadavg())
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    from skelrobust.io import atomic_write_json

    atomic_write_json(args.output, report)
    print(json.dumps(report["claims"], indent=1))


def _attack_record(extras: list[dict[str, Any]]) -> dict[str, Any]:
    """What the attack recorded: the no-box encoder, negatives, step and loop time, or the SSL attacker's surrogate."""
    if "nobox" in extras[0]:
        first = extras[0]["nobox"]
        return {"loop_seconds": sum(float(e["nobox"]["loop_seconds"]) for e in extras), "encoder": first["encoder"],
                "negatives": first["negatives"], "step_size": first["step_size"]}
    return {"surrogate": extras[0]["ssl_attacker"]}


def _cost(variants: list[str], report: dict[str, Any], work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Iteration cost on one batch, interleaved so both sides see the same machine load.

    For each variant: the floor (median of 5 encoder forward+backward passes on the batch), then the attack's
    loop with ``--cost-steps`` iterations (encoder and TV-AR taps already cached, so only the loop is timed), then
    the floor again; ratio = loop seconds / (cost steps x mean of the two floors).
    """
    from skelrobust.attack import create_attack
    from skelrobust.layouts import get_layout
    from skelrobust.nobox.access import UnlabelledSamples

    adv = np.load(work / variants[0] / "adversarial.npz")
    clean = adv["clean"]
    ids = [str(i) for i in adv["sample_ids"]]
    layout = get_layout(str(adv["layout"]))
    x = torch.from_numpy(clean[: args.batch_size])
    samples = UnlabelledSamples(np.ascontiguousarray(clean), ids, "attack", args.dataset)
    out: dict[str, Any] = {"batch": int(x.shape[0]), "cost_steps": args.cost_steps,
                           "note": "ratio = attack loop seconds / (cost steps x encoder forward+backward of the batch), interleaved"}
    for v in variants:
        attack = create_attack(v, eps=args.eps, steps=args.cost_steps, progress=False)
        attack.prepare(model=None, train_data=samples, layout=layout, device=torch.device("cpu"))
        encoder = attack._manifold.encoder
        before = _floor_seconds(encoder, x)
        result = attack(x, layout=layout, sample_ids=ids[: x.shape[0]])
        after = _floor_seconds(encoder, x)
        floor = (before + after) / 2
        out[v] = {"ratio": result.extras["nobox"]["loop_seconds"] / (args.cost_steps * floor), "floor_seconds": floor,
                  "loop_seconds": result.extras["nobox"]["loop_seconds"]}
        print(f"[bench] cost {v}: {out[v]['ratio']:.3f} x floor ({floor:.3f} s per forward+backward)", file=sys.stderr)
    return out


def _random_control(victims: list[str], run: Path, args: argparse.Namespace, checkpoints: dict[str, str]) -> dict[str, np.ndarray]:
    """Per victim and sample, whether uniform random signs at +-eps (present entries only) change the prediction."""
    from skelrobust.attack_set import predict
    from skelrobust.attack import Masks
    from skelrobust.loading import load_victim

    adv = np.load(run / "adversarial.npz")
    clean = torch.from_numpy(adv["clean"])
    gen = torch.Generator().manual_seed(args.seed)
    noise = (torch.randint(0, 2, clean.shape, generator=gen) * 2 - 1).float() * args.eps * Masks().tensor(clean)
    noisy = (clean + noise).numpy()
    idx = np.arange(len(clean))
    out = {}
    for name in victims:
        victim = load_victim(name, dataset=args.dataset, checkpoint=checkpoints.get(name))
        before = predict(victim, adv["clean"], idx, args.batch_size, torch.device("cpu"))
        after = predict(victim, noisy, idx, args.batch_size, torch.device("cpu"))
        out[name] = (before != after).astype(float)
    return out


def _smi_diagnostics(variants: list[str], work: Path) -> dict[str, Any]:
    """How much the SMI filter changes the step: tap sizes, and sign disagreement between the variants' perturbations."""
    from skelrobust.smi import SMIGradient

    adv = {v: np.load(work / v / "adversarial.npz") for v in variants}
    first = adv[variants[0]]
    clean = torch.from_numpy(first["clean"])
    ids = [str(i) for i in first["sample_ids"]]
    present = clean != 0
    out: dict[str, Any] = {}
    for order in (1, 2):
        taps = SMIGradient(order).taps(clean, ids)
        out[f"order{order}_taps"] = {"a1_mean": float(taps.a1[present].mean()), "a1_abs_mean": float(taps.a1[present].abs().mean()),
                                     "a2_mean": float(taps.a2[present].mean()), "a2_abs_mean": float(taps.a2[present].abs().mean())}
    signs = {v: np.sign(a["adversarial"] - a["clean"])[present.numpy()] for v, a in adv.items()}
    pairs = [("s1i", "nobox-ifgsm"), ("s2i", "nobox-ifgsm"), ("s2i", "s1i"), ("s2mi", "nobox-mifgsm"), ("s2mi", "s1mi")]
    out["sign_disagreement"] = {f"{a} vs {b}": float((signs[a] != signs[b]).mean()) for a, b in pairs if a in signs and b in signs}
    return out


def _claims(report: dict[str, Any]) -> dict[str, Any]:
    """The paper's qualitative claims, checked per victim on point estimates and on paired intervals."""
    claims: dict[str, Any] = {}
    for name, pair in (("first_order_ge_plain_I", "s1i - nobox-ifgsm"), ("second_order_ge_first_I", "s2i - s1i"),
                       ("first_order_ge_plain_MI", "s1mi - nobox-mifgsm"), ("second_order_ge_first_MI", "s2mi - s1mi"),
                       ("plain_nobox_ge_ssl_attacker", f"nobox-ifgsm - {SSL_ATTACKER}"), ("s2i_ge_ssl_attacker", f"s2i - {SSL_ATTACKER}"),
                       ("s2mi_ge_ssl_attacker", f"s2mi - {SSL_ATTACKER}")):
        rows = report["paired_fooling"].get(pair)
        if rows:
            claims[name] = {v: {"difference": r["mean"], "ci95": r["ci95"],
                                "holds_point": r["mean"] >= 0, "significantly_higher": r["ci95"][0] > 0,
                                "significantly_lower": r["ci95"][1] < 0} for v, r in rows.items()}
    dp = {v: r["delta_p"]["mean"] for v, r in report["delta_p"].items()}
    if dp:
        lowest = min(dp, key=dp.get)
        claims["s2i_lowest_delta_p"] = {"lowest": lowest, "holds": lowest == "s2i", "delta_p": dp,
                                        "paired_s2i_minus_other": {k: v["delta_p"] for k, v in report["paired_delta_p"].items()}}
    return claims


if __name__ == "__main__":
    main()
