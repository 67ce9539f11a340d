"""Linear-evaluation accuracy of the lite SkeletonCLR encoder against MoCo pretraining steps, per setting.

Why: the shipped self-supervised victim (``skeletonclr`` lite on the embedded ``synthetic`` set) is pretrained
for a few hundred steps on 2 CPU cores, far from SkeletonCLR's 300 epochs; this script measures which of the
recipe's documented options (key-encoder momentum, queue size, temperature, shear, learning rate, batch size)
make such a short run useful, and after how many steps, so the zoo's command is chosen on measurements.

Each run is the real recipe (:func:`skelrobust.recipes.pretrain_moco`, resumed with a growing ``max_steps``);
at every checkpoint the frozen query encoder (eval mode) embeds TRAIN and TEST once, and a linear head is
trained on the features as :func:`skelrobust.recipes.linear_eval` does (SGD momentum 0.9, batch 128,
``--head-epochs`` epochs (the protocol's 100), lr divided by 10 after 80 % of them, best epoch chosen on the
same subject-held-out validation split); the test accuracy at that epoch is reported for each head learning
rate in ``--head-lr`` (key ``"<epochs>ep-lr<lr>"``). ``--encoder`` probes a finished pretraining file instead. Diagnostics: the
features' effective rank (how far the representation has collapsed onto few directions) and the accuracy of
the same head on standardised features (what the features hold once the head's SGD is well conditioned).
CPU seconds are the process's own (the machine is shared, so wall time says little).

    python bench/bench_moco_lite.py --name m099 --momentum 0.99 --queue-size 512 --batch-size 64 \\
        --checkpoints 40 80 120 --out bench/results/moco_lite_probe.json
    python bench/bench_moco_lite.py --name shipped --encoder runs/skeletonclr-lite-moco/encoder.pt \\
        --head-lr 3.0 --head-epochs 100 4000     # how long the head must train on a finished encoder

Results are written to the JSON file after every checkpoint (one record per run name), so runs of several
settings share it and a run stopped early keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from skelrobust.data import load_dataset
from skelrobust.io import atomic_write_json, sha256_file
from skelrobust.loading import load_victim
from skelrobust.recipes import MocoConfig, load_embedding, pretrain_moco
from skelrobust.recipes.moco import preprocess
from skelrobust.training import validation_split


def head_accuracy(ftr: torch.Tensor, ytr: torch.Tensor, fte: torch.Tensor, yte: torch.Tensor, train_idx: np.ndarray,
                  val_idx: np.ndarray, lr: float, epochs: int = 100, lr_step: int = 80, seed: int = 0,
                  batch_size: int = 128) -> dict[str, float]:
    """Linear head as the linear-evaluation recipe trains it; test accuracy at the best validation epoch."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    fc = torch.nn.Linear(ftr.shape[1], int(ytr.max()) + 1)
    opt = torch.optim.SGD(fc.parameters(), lr=lr, momentum=0.9)
    tr = torch.as_tensor(train_idx)
    va = torch.as_tensor(val_idx)
    best_val, test_at_best, best_epoch = -1.0, 0.0, 0
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = lr * (0.1 if epoch >= lr_step else 1.0)
        order = tr[torch.randperm(len(tr), generator=gen)]
        for s in range(max(1, len(tr) // batch_size)):
            b = order[s * batch_size : (s + 1) * batch_size]
            loss = F.cross_entropy(fc(ftr[b]), ytr[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            val = float((fc(ftr[va]).argmax(1) == ytr[va]).float().mean())
            if val > best_val:
                best_val, best_epoch = val, epoch + 1
                test_at_best = float((fc(fte).argmax(1) == yte).float().mean())
    return {"val": best_val, "test": test_at_best, "best_epoch": best_epoch}


def effective_rank(features: torch.Tensor) -> float:
    """``exp`` of the entropy of the centred features' variance spectrum (1 = everything along one direction)."""
    s = torch.linalg.svdvals(features - features.mean(0))
    p = s**2 / (s**2).sum()
    return round(float(torch.exp(-(p * torch.log(p + 1e-12)).sum())), 2)


def evaluate_encoder(enc: torch.nn.Module, xtr: torch.Tensor, xte: torch.Tensor, ytr: torch.Tensor, yte: torch.Tensor,
                     train_idx: np.ndarray, val_idx: np.ndarray, head_lrs: list[float], head_epochs: list[int]) -> dict:
    """Heads (``"<epochs>ep-lr<lr>"``) and collapse diagnostics of a frozen encoder on preprocessed inputs."""
    started = time.process_time()
    enc = enc.eval()
    with torch.no_grad():
        ftr = torch.cat([enc(xtr[i : i + 256]).flatten(1) for i in range(0, len(xtr), 256)])
        fte = torch.cat([enc(xte[i : i + 256]).flatten(1) for i in range(0, len(xte), 256)])
    heads = {f"{ep}ep-lr{lr}": head_accuracy(ftr, ytr, fte, yte, train_idx, val_idx, lr, ep, int(0.8 * ep))
             for ep in head_epochs for lr in head_lrs}
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    standardised = head_accuracy((ftr - mu) / sd, ytr, (fte - mu) / sd, yte, train_idx, val_idx, 1.0)
    return {"heads": heads, "effective_rank": effective_rank(ftr), "standardised_100ep-lr1.0": standardised,
            "eval_cpu_seconds": round(time.process_time() - started, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True, help="Run name (key in the output JSON).")
    ap.add_argument("--checkpoints", type=int, nargs="+", help="Steps at which the encoder is evaluated.")
    ap.add_argument("--encoder", type=Path, help="Evaluate this pretraining checkpoint instead of pretraining.")
    ap.add_argument("--momentum", type=float, default=0.999)
    ap.add_argument("--queue-size", type=int, default=32768)
    ap.add_argument("--temperature", type=float, default=0.07)
    ap.add_argument("--shear", type=float, default=0.5)
    ap.add_argument("--temporal-padding-ratio", type=int, default=6)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--lr-step", type=int, nargs="*", default=[250])
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--head-lr", type=float, nargs="+", default=[3.0, 1.0])
    ap.add_argument("--head-epochs", type=int, nargs="+", default=[100], help="Head epochs (lr / 10 after 80 %% of them).")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench/results/moco_lite_probe.json"))
    args = ap.parse_args()
    if (args.checkpoints is None) == (args.encoder is None):
        ap.error("give either --checkpoints (pretrain and probe) or --encoder FILE (probe a finished encoder)")
    torch.set_num_threads(args.threads)

    train_ds, test_ds = load_dataset("synthetic", "train"), load_dataset("synthetic", "test")
    victim = load_victim("skeletonclr", dataset="synthetic", preset="lite", pretrained=False)
    train_idx, val_idx, _ = validation_split(train_ds, 0.1)
    xtr, xte = preprocess(train_ds.data, victim.adapter), preprocess(test_ds.data, victim.adapter)
    ytr, yte = torch.as_tensor(train_ds.labels), torch.as_tensor(test_ds.labels)
    probe = (xtr, xte, ytr, yte, train_idx, val_idx, args.head_lr, args.head_epochs)

    def save(settings: dict, rows: list[dict]) -> None:
        record = json.loads(args.out.read_text()) if args.out.is_file() else {}
        record[args.name] = {"settings": settings, "torch": torch.__version__, "checkpoints": rows}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.out, record)  # after every checkpoint, so a stopped run keeps what it measured

    if args.encoder is not None:
        emb = load_embedding(args.encoder, victim)
        row = {"encoder": str(args.encoder), "encoder_sha256": sha256_file(args.encoder)}
        beside = args.encoder.with_name("metadata.json")  # our pretraining runs record their command there
        meta = json.loads(beside.read_text()) if beside.is_file() else {}
        if meta.get("sha256") == row["encoder_sha256"]:
            row.update(pretraining_command=meta["command"], pretraining_cpu_seconds=meta["train_cpu_seconds"])
        row.update(evaluate_encoder(emb.encoder, *probe))
        print(json.dumps({"name": args.name, **row}), flush=True)
        save({"head_lr": args.head_lr, "head_epochs": args.head_epochs, "threads": args.threads}, [row])
        return
    cfg = MocoConfig(
        queue_size=args.queue_size, momentum=args.momentum, temperature=args.temperature, shear=args.shear,
        temporal_padding_ratio=args.temporal_padding_ratio, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        lr_steps=tuple(args.lr_step), seed=args.seed,
    )
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "name", "checkpoints", "encoder")}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for steps in sorted(args.checkpoints):
            cfg.max_steps = steps
            result = pretrain_moco(train_ds.data, victim, cfg, tmp, progress=False)
            hist = result.metadata["history"]
            rows.append({
                "steps": steps, "pretrain_cpu_seconds": result.metadata["train_cpu_seconds"],
                "positive_top1_last_epoch": hist[-1]["positive_top1"] if hist else None,
                "loss_last_epoch": hist[-1]["loss"] if hist else None,
                **evaluate_encoder(result.embedding.encoder, *probe),
            })
            print(json.dumps({"name": args.name, **rows[-1]}), flush=True)
            save(settings, rows)


if __name__ == "__main__":
    main()
