"""Linear evaluation of a pretrained encoder (``skelrobust train --linear-eval --encoder FILE``).

The protocol of CrosSCLR/AimCLR/HiCLR/ActCLR ``processor/linear_evaluation.py``:

- build the linear-evaluation model (only ``encoder_q``, head ``fc`` -> classes) and load the pretraining
  checkpoint's ``encoder_q.*`` without its head (``ignore_weights: [encoder_q.fc, encoder_k, queue]`` plus the
  method's extras); every encoder weight must be there;
- freeze everything but ``fc`` and keep the whole model in eval mode during training too (BatchNorm statistics
  frozen, dropout off); no augmentation (``Feeder_single(shear_amplitude=-1, temperal_padding_ratio=-1)``);
- SGD (momentum 0.9) lr 3.0 divided by 10 at epoch 80, weight decay 0, batch 128, 100 epochs.

Because the frozen encoder in eval mode is a fixed function, its features are computed once and the head is
trained on them: the same updates as the official loop, at the cost of one forward pass per sample. Model
selection uses a validation split carved from TRAIN (:func:`skelrobust.training.validation_split`), not the
test split the official scripts report their best epoch on; the test split is evaluated once at the end.
``best.pt`` is the state dict of the linear-evaluation model in the official layout (``encoder_q.*``), so it
loads as a victim; ``metadata.json`` has the fields the zoo ships, plus the pretraining run's record.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..checkpoints import read_state_dict
from ..data import load_dataset
from ..errors import CheckpointError, ConfigError
from ..io import atomic_path, atomic_write_json, sha256_file
from ..loading import load_victim
from ..training import evaluate, package_versions, validation_split
from ..victim import VICTIMS
from .moco import Embedding
from .resume import load_resume_payload


@dataclass
class LinearEvalConfig:
    """A linear-evaluation run (section 7.2 defaults; recorded in ``metadata.json`` and checked on resume).

    Attributes:
        victim: A self-supervised victim family (its network holds ``encoder_q`` with a head ``fc``).
        dataset: Registered dataset (train split for the head, test split evaluated once).
        encoder: Pretraining checkpoint (pretext file: ours or an official one).
        preset: Family preset (default from ``benchmark.yaml`` for the dataset).
        epochs, batch_size, lr, weight_decay: SGD (momentum 0.9) settings.
        lr_steps: Epochs (0-based) where the learning rate is divided by 10.
        val_fraction: Share of TRAIN held out for model selection.
        seed: Seeds the head's initialisation and shuffling.
        root, dataset_options, build_config: As for ``skelrobust train``.
    """

    victim: str
    dataset: str
    encoder: str
    preset: str | None = None
    epochs: int = 100
    batch_size: int = 128
    lr: float = 3.0
    lr_steps: tuple[int, ...] = (80,)
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    seed: int = 0
    root: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    build_config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lr_steps = tuple(int(s) for s in self.lr_steps)
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError("linear evaluation: epochs and batch size must be >= 1, lr > 0 and weight_decay >= 0")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"linear evaluation: val_fraction must be in (0, 1), got {self.val_fraction}")


def _apply_head(fc: nn.Module, feats: torch.Tensor) -> torch.Tensor:
    if isinstance(fc, nn.Conv2d):
        return fc(feats[:, :, None, None]).flatten(1)
    return fc(feats)


@torch.no_grad()
def _features(embedding: Embedding, data: Any, indices: np.ndarray, device: torch.device, progress: bool) -> torch.Tensor:
    parts = []
    for start in tqdm(range(0, len(indices), 256), desc="features", disable=not progress, leave=False):
        x = torch.as_tensor(np.asarray(data[indices[start : start + 256]]), device=device)
        parts.append(embedding(x).cpu())
    return torch.cat(parts)


def load_frozen_encoder(victim: Any, path: str | Path) -> dict[str, Any]:
    """Load the encoder of a pretraining checkpoint into ``victim.network.encoder_q`` (head untouched).

    Returns the pretraining run's ``metadata.json`` when one lies beside the file (ours), else ``{}``.
    """
    net = getattr(victim.network, "encoder_q", None)
    if net is None or not isinstance(getattr(net, "fc", None), nn.Module):
        ssl = [n for n in VICTIMS.names() if "encoder_state" in VICTIMS.get(n).extra]
        raise ConfigError(f"victim {victim.name!r} has no encoder_q with a head fc; linear evaluation needs one of {', '.join(ssl)}")
    family = VICTIMS.get(victim.name) if victim.name in VICTIMS.names() else None
    extract = family.extra.get("encoder_state") if family is not None else None
    raw = read_state_dict(path)
    try:
        enc = extract(raw) if extract is not None else {k: v for k, v in raw.items() if k.startswith("encoder_q.") and not k.startswith("encoder_q.fc.")}
    except CheckpointError as exc:
        raise CheckpointError(f"encoder {path}: {exc}") from exc
    own = {k: v for k, v in victim.network.state_dict().items() if not k.startswith("encoder_q.fc.")}
    missing, unexpected = sorted(set(own) - set(enc)), sorted(set(enc) - set(own))
    misshaped = sorted(f"{k}: {tuple(enc[k].shape)} vs {tuple(own[k].shape)}" for k in set(own) & set(enc) if own[k].shape != enc[k].shape)
    if missing or unexpected or misshaped:
        parts = [f"{label} {keys[:8]}{' ...' if len(keys) > 8 else ''}" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if keys]
        raise CheckpointError(f"encoder {path} does not fit {victim.name} ({victim.preset}): " + "; ".join(parts))
    victim.network.load_state_dict({**victim.network.state_dict(), **enc}, strict=True)
    meta_path = Path(path).with_name("metadata.json")
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
        if meta.get("sha256") == sha256_file(path):
            return meta
    return {}


def linear_eval(
    cfg: LinearEvalConfig,
    out_dir: str | Path,
    *,
    device: str | torch.device | None = None,
    command: str = "",
    progress: bool = True,
) -> dict[str, Any]:
    """Train the linear head of ``cfg.victim`` on the frozen encoder of ``cfg.encoder``; returns the metadata.

    Writes ``out_dir/best.pt`` (official layout), ``out_dir/last.pt`` (resume state, every epoch) and
    ``out_dir/metadata.json``. Rerunning the same configuration resumes; a different one is refused.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = torch.device(device) if device is not None else torch.device("cpu")
    train_ds = load_dataset(cfg.dataset, "train", root=cfg.root, **cfg.dataset_options)
    test_ds = load_dataset(cfg.dataset, "test", root=cfg.root, **cfg.dataset_options)
    train_idx, val_idx, val_rule = validation_split(train_ds, cfg.val_fraction)

    torch.manual_seed(cfg.seed)
    victim = load_victim(
        cfg.victim, dataset=cfg.dataset, preset=cfg.preset, pretrained=False, root=cfg.root, device=target, **cfg.build_config
    )
    pretraining = load_frozen_encoder(victim, cfg.encoder)
    victim.eval()
    fc = victim.network.encoder_q.fc
    for name, p in victim.network.named_parameters():
        p.requires_grad = name.startswith("encoder_q.fc.")
    opt = torch.optim.SGD(fc.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    record = json.loads(json.dumps({**asdict(cfg), "preset": victim.preset, "encoder_sha256": sha256_file(cfg.encoder)}, default=str))
    state: dict[str, Any] = {"epoch": 0, "best_val": -1.0, "best_epoch": 0, "train_seconds": 0.0, "train_cpu_seconds": 0.0, "history": []}
    last = out / "last.pt"
    if last.is_file():
        state = _resume(last, record, fc, opt, gen)
    resumed_at = len(state["history"])
    if state["epoch"] < cfg.epochs:  # features of the frozen encoder, once (none needed when the run is complete)
        embedding = Embedding(victim.adapter, victim.network.encoder_q).to(target)
        feats = _features(embedding, train_ds.data, np.arange(len(train_ds)), target, progress).to(target)
    labels = torch.as_tensor(train_ds.labels, device=target)

    steps = max(1, len(train_idx) // cfg.batch_size)
    val_t = torch.as_tensor(val_idx, device=target)
    for epoch in tqdm(range(state["epoch"], cfg.epochs), desc="linear eval", initial=state["epoch"], total=cfg.epochs, disable=not progress):
        started, cpu_started = time.perf_counter(), time.process_time()
        lr = cfg.lr * 0.1 ** sum(epoch >= s for s in cfg.lr_steps)
        for group in opt.param_groups:
            group["lr"] = lr
        order = torch.as_tensor(train_idx)[torch.randperm(len(train_idx), generator=gen)].to(target)
        loss_sum, correct, seen = 0.0, 0, 0
        for step in range(steps):
            batch = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            logits = _apply_head(fc, feats[batch])
            loss = F.cross_entropy(logits, labels[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(batch)
            correct += int((logits.detach().argmax(1) == labels[batch]).sum())
            seen += len(batch)
        with torch.no_grad():
            val_acc = float((_apply_head(fc, feats[val_t]).argmax(1) == labels[val_t]).float().mean())
        state["train_seconds"] += time.perf_counter() - started
        state["train_cpu_seconds"] += time.process_time() - cpu_started
        state["history"].append({"epoch": epoch + 1, "lr": lr, "loss": loss_sum / seen, "train_accuracy": correct / seen, "val_accuracy": val_acc})
        if val_acc > state["best_val"]:
            state["best_val"], state["best_epoch"] = val_acc, epoch + 1
            with atomic_path(out / "best.pt") as tmp:
                torch.save({k: v.detach().cpu() for k, v in victim.network.state_dict().items()}, tmp)
        state["epoch"] = epoch + 1
        _save_last(last, record, state, fc, opt, gen)

    best = out / "best.pt"
    if not best.is_file():
        raise CheckpointError(f"{out}: last.pt says linear evaluation finished but best.pt is missing; delete {last} to rerun")
    done = out / "metadata.json"
    if done.is_file() and not state["history"][resumed_at:]:  # nothing trained now: the finished run's record stands
        previous = json.loads(done.read_text(encoding="utf-8"))
        if previous.get("sha256") == sha256_file(best):
            return previous
    final = load_victim(cfg.victim, checkpoint=best, dataset=cfg.dataset, preset=victim.preset, root=cfg.root, device=target, **cfg.build_config)
    test_acc = evaluate(final, test_ds, 256)
    meta = {
        "victim": cfg.victim,
        "preset": victim.preset,
        "dataset": cfg.dataset,
        "layout": victim.layout.name,
        "num_classes": victim.num_classes,
        "config": victim.config,
        "build_config": dict(cfg.build_config),
        "protocol": "linear-eval",
        "training": asdict(cfg),
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "best_epoch": state["best_epoch"],
        "val_accuracy": state["best_val"],
        "test_accuracy": test_acc,
        "validation_split": {"rule": val_rule, "n_train": int(len(train_idx)), "n_val": int(len(val_idx))},
        "n_test": len(test_ds),
        "num_parameters": sum(p.numel() for p in victim.network.parameters()),
        "train_seconds": round(state["train_seconds"], 2),
        "train_cpu_seconds": round(state["train_cpu_seconds"], 2),
        "torch_threads": torch.get_num_threads(),
        "device": str(target),
        "command": command,
        "encoder": str(cfg.encoder),
        "encoder_sha256": record["encoder_sha256"],
        "pretraining": {k: pretraining[k] for k in ("command", "config", "steps", "train_seconds", "train_cpu_seconds", "torch_threads", "sha256") if k in pretraining},
        "versions": package_versions(),
        "sha256": sha256_file(best),
        "history": state["history"],
    }
    atomic_write_json(out / "metadata.json", meta)
    return meta


def _save_last(path: Path, record: dict[str, Any], state: dict[str, Any], fc: nn.Module, opt: Any, gen: torch.Generator) -> None:
    payload = {"config": record, "state": state, "fc": fc.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state()}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _resume(path: Path, record: dict[str, Any], fc: nn.Module, opt: Any, gen: torch.Generator) -> dict[str, Any]:
    payload = load_resume_payload(path, record, run="linear evaluation", elsewhere="another --out")
    fc.load_state_dict(payload["fc"])
    opt.load_state_dict(payload["optimizer"])
    gen.set_state(payload["generator"])
    return dict(payload["state"])

