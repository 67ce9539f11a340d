"""TASAR benchmarks: iteration cost against the floor, and the post-trained posterior.

Part ``cost`` (default) measures, in one run on one batch of the synthetic test split:

* ``fb``: one surrogate forward+backward to the input (the floor of any iterative attack);
* a TASAR iteration (default and ``compat="robustbenchhar"``), wall time per iteration with warm caches;
* one iteration done the prior code's way (a backbone forward+backward per posterior sample, K x S + 1);
* the one-time costs: TV-AR fits per sample, and post-training on the training split.

Part ``posterior`` post-trains the heads of the zoo surrogate on the synthetic training split at each
temperature of ``--temperatures`` (default steps and scale) and reports the diagnostics of
:func:`skelrobust.bayesian_heads.posterior_diagnostics` on the training and the test split, with the time of
the surrogate's logits over the training split and of the heads (the two parts of post-training).

Part ``post-training`` times one cold post-training as the attack runs it (``post_train`` without the cache:
the surrogate's logits over the training split, both sampler stages, the diagnostics), as wall time and as the
process's CPU time, with the load average before and after (on a shared machine the wall time says more about
the neighbours than about the method).

The transfer study is ``bench/bench_transfer.py``.

    python bench/bench_tasar.py --part cost --surrogate stgcn --batch-size 32
    python bench/bench_tasar.py --part posterior --surrogate stgcn --temperatures 1e-5,0.1,0.3,1
    python bench/bench_tasar.py --part post-training --surrogate stgcn
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _victim(name: str, dataset: Any) -> Any:
    from skelrobust.errors import SkelRobustError
    from skelrobust.loading import load_victim

    try:
        return load_victim(name, dataset="synthetic"), "zoo"
    except SkelRobustError as exc:
        print(f"[bench] zoo weights for {name!r} unavailable ({exc}); timing random lite weights", file=sys.stderr)
        return load_victim(name, dataset="synthetic", pretrained=False), "random"


def _timed(fn: Any, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def cost(args: argparse.Namespace) -> dict[str, Any]:
    from skelrobust import create_attack, load_dataset
    from skelrobust.bayesian_heads import head_logits

    os.environ.setdefault("SKELROBUST_HOME", tempfile.mkdtemp(prefix="bench-tasar-"))
    train = load_dataset("synthetic", "train")
    test = load_dataset("synthetic", "test")
    model, weights = _victim(args.surrogate, test)
    model.eval()
    x = torch.from_numpy(np.array(test.data[: args.batch_size]))
    y = torch.from_numpy(test.labels[: args.batch_size])
    ids = test.sample_ids[: args.batch_size]

    def forward_backward() -> None:
        xv = x.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(xv), y, reduction="sum")
        torch.autograd.grad(loss, xv)

    attack = create_attack("tasar", steps=args.steps, progress=False)
    start = time.perf_counter()
    attack.prepare(model=model, train_data=train, layout=test.layout, device=torch.device("cpu"))
    post_train_s = time.perf_counter() - start
    start = time.perf_counter()
    attack._smi.taps(x, ids)
    tvar_s = time.perf_counter() - start
    compat = create_attack("tasar", steps=args.steps, compat="robustbenchhar", eps=1.0, step_size=1e-6, progress=False)
    compat._posterior, compat._surrogate_ref = attack._posterior, attack._surrogate_ref

    with torch.no_grad():  # compat stops a batch its stage-1 heads already fool: time it on labels they get right
        y_stage1 = head_logits(attack.posterior.stage1, model(x)).sum(0).argmax(1)

    def run_attack(a: Any) -> float:
        labels = y_stage1 if a.compat else y
        start = time.perf_counter()
        out = a(x, labels, layout=test.layout, model=model, sample_ids=ids)
        if int(out.iterations.min()) != args.steps:
            raise RuntimeError(f"{a.name} stopped after {int(out.iterations.min())} of {args.steps} iterations")
        return (time.perf_counter() - start) / args.steps

    # Interleave floor and attack timings so load from other processes affects both alike.
    forward_backward()
    run_attack(attack)
    fbs, iters, iters_compat = [], [], []
    for _ in range(args.attack_repeats):
        fbs.append(_timed(forward_backward, args.repeats))
        iters.append(run_attack(attack))
        iters_compat.append(run_attack(compat))
    fb = float(np.median(fbs))
    per_iter = float(np.median(iters))
    per_iter_compat = float(np.median(iters_compat))
    ratio = float(np.median(np.array(iters) / np.array(fbs)))
    ratio_compat = float(np.median(np.array(iters_compat) / np.array(fbs)))

    posterior = attack.posterior
    heads = posterior.sample(attack.num_samples, attack.scale, torch.Generator().manual_seed(0))

    def naive_iteration() -> None:  # the prior code: one backbone pass per posterior sample, plus the base
        for p in range(heads.shape[0] + 1):
            xv = x.clone().requires_grad_(True)
            flat = heads[p : p + 1] if p < heads.shape[0] else posterior.stage1
            logits = head_logits(flat, model(xv)).sum(0)
            torch.autograd.grad(torch.nn.functional.cross_entropy(logits, y, reduction="sum"), xv)

    start = time.perf_counter()
    naive_iteration()  # once: it is ~60x slower than everything else
    naive = time.perf_counter() - start
    result = {
        "surrogate": args.surrogate,
        "weights": weights,
        "batch": list(x.shape),
        "threads": torch.get_num_threads(),
        "forward_backward_s": fb,
        "tasar_iteration_s": per_iter,
        "tasar_ratio": ratio,
        "tasar_compat_iteration_s": per_iter_compat,
        "tasar_compat_ratio": ratio_compat,
        "prior_code_iteration_s": naive,
        "prior_code_ratio": naive / fb,
        "speedup_vs_prior_code": naive / per_iter,
        "tvar_fit_s_per_sample": tvar_s / x.shape[0],
        "post_training_s": post_train_s,
        "post_training_stats": posterior.stats,
    }
    rows = [
        ("one forward+backward (floor)", fb, 1.0),
        ("TASAR iteration (default)", per_iter, ratio),
        ("TASAR iteration (compat robustbenchhar)", per_iter_compat, ratio_compat),
        (f"prior code's iteration ({heads.shape[0] + 1} passes)", naive, naive / fb),
    ]
    print(f"surrogate {args.surrogate} ({weights} weights), batch {tuple(x.shape)}, {torch.get_num_threads()} thread(s)")
    for name, seconds, ratio in rows:
        print(f"  {name:<45s} {seconds * 1000:9.1f} ms   x{ratio:6.2f}")
    print(f"  speed-up over the prior code's iteration      x{naive / per_iter:6.1f}")
    print(f"  one-time: TV-AR fits {tvar_s / x.shape[0] * 1000:.0f} ms/sample; post-training {post_train_s:.1f} s "
          f"on {len(train)} training samples (logits once + heads)")
    return result


def posterior(args: argparse.Namespace) -> dict[str, Any]:
    from skelrobust import load_dataset
    from skelrobust.bayesian_heads import HeadConfig, posterior_diagnostics, surrogate_logits, train_heads

    train = load_dataset("synthetic", "train")
    test = load_dataset("synthetic", "test")
    model, weights = _victim(args.surrogate, test)
    start = time.perf_counter()
    f_train = surrogate_logits(model, train, "cpu", progress=False)
    logits_s = time.perf_counter() - start
    f_test = surrogate_logits(model, test, "cpu", progress=False)
    y_train = torch.as_tensor(np.asarray(train.labels))
    y_test = torch.as_tensor(np.asarray(test.labels))
    rows = []
    for temperature in (float(t) for t in args.temperatures.split(",")):
        config = HeadConfig(temperature=temperature)
        start = time.perf_counter()
        post = train_heads(f_train, y_train, config, progress=False)
        heads_s = time.perf_counter() - start
        row = {
            "temperature": temperature, "stage_steps": post.stats["stage_steps"], "heads_s": heads_s,
            "stage1_mean_abs_move": post.stats["stage1_mean_abs_move"],
            "train": posterior_diagnostics(post, f_train, y_train, seed=config.seed),
            "test": posterior_diagnostics(post, f_test, y_test, seed=config.seed),
        }
        rows.append(row)
        t = row["test"]
        print(f"T {temperature:<7g} move {row['stage1_mean_abs_move']:.3f}  SWAG std/|mean| "
              + ",".join(f"{v:.3f}" for v in t["swag_relative_std"])
              + f"  dL/df cosine {t['dlogit_cosine_mean']:.3f}  test accuracy heads {100 * t['ensemble_accuracy']:.1f} % "
              f"surrogate {100 * t['surrogate_accuracy']:.1f} %  collapsed {t['collapsed']}  heads {heads_s:.0f} s", flush=True)
    print(f"surrogate logits over {len(train)} training clips: {logits_s:.0f} s ({torch.get_num_threads()} thread(s))")
    return {
        "surrogate": args.surrogate, "weights": weights, "threads": torch.get_num_threads(),
        "train_samples": len(train), "surrogate_logits_train_s": logits_s, "temperatures": rows,
        "targets": "SWAG std/|mean| >= 0.1, dL/df cosine <= 0.95, head-ensemble accuracy within 2 points of the surrogate",
    }


def post_training(args: argparse.Namespace) -> dict[str, Any]:
    from skelrobust import load_dataset
    from skelrobust.bayesian_heads import HeadConfig, post_train

    train = load_dataset("synthetic", "train")
    model, weights = _victim(args.surrogate, train)
    config = HeadConfig()
    load_before = os.getloadavg()
    wall, cpu = time.perf_counter(), time.process_time()
    posterior = post_train(model, train, config, cache=False, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    load_after = os.getloadavg()
    stats = posterior.stats
    print(f"surrogate {args.surrogate} ({weights} weights), {len(train)} training clips, {torch.get_num_threads()} thread(s): "
          f"post-training {wall:.0f} s wall, {cpu:.0f} s CPU (heads {stats['heads_seconds']:.0f} s wall, "
          f"{stats['stage_steps']} sampler steps per stage); load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    return {
        "surrogate": args.surrogate, "weights": weights, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "train_samples": len(train), "wall_s": wall, "cpu_s": cpu, "heads_wall_s": stats["heads_seconds"],
        "stage_steps": stats["stage_steps"], "load_average_before": list(load_before), "load_average_after": list(load_after),
        "diagnostics": stats["diagnostics"], "config": posterior.config,
        "target": "post-training on the embedded set < 3 minutes on 2 cores",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["cost", "posterior", "post-training"], default="cost")
    parser.add_argument("--temperatures", default="1e-5,0.1,0.3,1", help="posterior: SG-AdaHMC temperatures")
    parser.add_argument("--surrogate", default="stgcn")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="cost: iterations timed per run")
    parser.add_argument("--repeats", type=int, default=3, help="floor timings per round (median)")
    parser.add_argument("--attack-repeats", type=int, default=3, help="interleaved rounds (median of ratios)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=None, help="JSON file (default bench/results/tasar_<part>_<surrogate>.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {"cost": cost, "posterior": posterior, "post-training": post_training}[args.part](args)
    output = Path(args.output or f"bench/results/tasar_{args.part.replace('-', '_')}_{args.surrogate}.json")
    from skelrobust.io import atomic_write_text

    atomic_write_text(output, json.dumps(result, indent=2, default=str) + "\n")  # never a half-written result
    print(f"written {output}")


if __name__ == "__main__":
    main()
