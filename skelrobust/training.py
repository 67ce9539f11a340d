"""Train and evaluate victims on a registered dataset (``skelrobust train`` / ``skelrobust eval``).

The training loop is deliberately plain and reproducible:

- a validation split carved deterministically from TRAIN (whole subjects when the dataset records them in
  ``meta["subjects"]``, otherwise stratified by class), used for model selection; the test split is only
  evaluated once, with the selected weights;
- SGD (momentum, Nesterov) or AdamW, a per-step cosine schedule with optional linear warm-up, cross-entropy
  with optional label smoothing;
- optional augmentation on the CANONICAL tensor, before the victim's adapter (random rotation about the
  vertical axis and random scale, both about the sample's centre; absent persons and padded frames stay zero);
- batches gathered from the (memory-mapped) arrays, no DataLoader workers;
- resumable: ``last.pt`` (model, optimiser, scheduler, epoch, RNG states, history) is written atomically
  after every epoch, and rerunning the same command continues from it. ``best.pt`` is the plain state dict
  of ``victim.network`` (loadable with ``weights_only=True``), ``best.build.json`` its build record (what
  ``run``/``eval`` need to rebuild the victim with no ``--preset``/``--config``, see
  :mod:`skelrobust.build_record`); ``metadata.json`` records everything needed to reproduce and cite the run.
"""

from __future__ import annotations

import logging
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .data import SkeletonDataset, load_dataset
from .errors import CheckpointError, ConfigError
from .build_record import build_record, write_build_record
from .checkpoints import describe_load_failure
from .io import atomic_path, atomic_write_json, sha256_file
from .loading import load_victim
from .version import __version__
from .victim import Victim

log = logging.getLogger(__name__)

#: Keys of ``meta`` that may hold one subject id per sample.
SUBJECT_KEYS = ("subjects", "subject")


@dataclass
class TrainConfig:
    """Everything that defines a training run (recorded in ``metadata.json`` and checked on resume).

    Attributes:
        victim: Registered family or user factory spec (``pkg.mod:factory`` / ``file.py:factory``).
        dataset: Registered dataset name.
        preset: Family preset (default from ``benchmark.yaml`` for the dataset).
        epochs: Training epochs.
        batch_size: Samples per step.
        lr: Peak learning rate.
        optimizer: ``sgd`` (momentum 0.9, Nesterov) or ``adamw``.
        weight_decay: L2 (SGD) or decoupled (AdamW) weight decay.
        warmup_epochs: Linear warm-up length before the cosine decay.
        label_smoothing: Cross-entropy label smoothing.
        rotate_deg: Max random rotation about the vertical (y) axis, degrees; 0 disables.
        scale: Max relative random scale change (``0.1`` -> [0.9, 1.1]); 0 disables.
        val_fraction: Share of TRAIN held out for validation.
        seed: Seeds initialisation, shuffling, augmentation and dropout.
        init_checkpoint: Weights to start from (fine-tuning), if any.
        root: Dataset folder for datasets that need one.
        dataset_options: Loader options of the dataset (e.g. ``{"benchmark": "xview"}`` for NTU).
        build_config: Architecture overrides passed to the family's ``build``.
    """

    victim: str
    dataset: str
    preset: str | None = None
    epochs: int = 30
    batch_size: int = 32
    lr: float = 0.05
    optimizer: str = "sgd"
    weight_decay: float = 5e-4
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    rotate_deg: float = 0.0
    scale: float = 0.0
    val_fraction: float = 0.1
    seed: int = 0
    init_checkpoint: str | None = None
    root: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    build_config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs and batch size must be >= 1, got {self.epochs} and {self.batch_size}")
        if self.optimizer not in ("sgd", "adamw"):
            raise ConfigError(f"optimizer must be 'sgd' or 'adamw', got {self.optimizer!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if not self.lr > 0 or self.weight_decay < 0 or not 0 <= self.label_smoothing < 1:
            raise ConfigError("lr must be > 0, weight_decay >= 0 and label_smoothing in [0, 1)")
        if self.rotate_deg < 0 or not 0 <= self.scale < 1 or not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError("rotate_deg must be >= 0, scale in [0, 1) and warmup_epochs in [0, epochs)")


def validation_split(ds: SkeletonDataset, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Deterministic ``(train_idx, val_idx, rule)`` carved from a TRAIN split.

    Whole subjects go to validation when ``ds.meta`` records one subject per sample (so validation
    measures cross-subject generalisation like the test split); otherwise each class contributes
    ``round(fraction * count)`` samples. ``seed`` fixes the choice independently of the training seed.
    """
    rng = np.random.default_rng(seed)
    n = len(ds)
    subjects = next((ds.meta[k] for k in SUBJECT_KEYS if k in ds.meta and len(ds.meta[k]) == n), None)
    if subjects is not None:
        subjects = np.asarray([str(s) for s in subjects])
        unique = np.unique(subjects)
        if len(unique) >= 2:
            order = rng.permutation(unique)
            counts = {s: int((subjects == s).sum()) for s in unique}
            chosen, total = [], 0
            for s in order:
                if total >= fraction * n:
                    break
                chosen.append(s)
                total += counts[s]
            val_mask = np.isin(subjects, chosen)
            if 0 < val_mask.sum() < n:
                return np.flatnonzero(~val_mask), np.flatnonzero(val_mask), f"subjects {sorted(chosen)}"
    val = []
    for c in np.unique(ds.labels):
        idx = np.flatnonzero(ds.labels == c)
        k = min(len(idx) - 1, int(round(fraction * len(idx))))
        val.extend(rng.permutation(idx)[:k].tolist())
    val_idx = np.sort(np.asarray(val, dtype=np.int64))
    if val_idx.size == 0:
        raise ConfigError(f"dataset {ds.name!r} ({ds.split}): too few samples to hold out a validation split")
    return np.setdiff1d(np.arange(n), val_idx), val_idx, f"stratified {fraction:g} per class"


def augment(x: torch.Tensor, rotate_deg: float, scale: float, generator: torch.Generator) -> torch.Tensor:
    """Random yaw rotation and scale about each sample's centre, on the canonical ``(N, C, T, V, M)`` tensor.

    The centre is the mean of all present joints; entries of absent persons and padded frames (all
    coordinates zero) stay exactly zero. The vertical axis is ``y`` (NTU camera coordinates).
    """
    n = x.shape[0]
    present = (x.abs().sum(dim=(1, 3), keepdim=True) > 0).to(x.dtype)  # (N, 1, T, 1, M)
    weight = present.expand(n, 1, x.shape[2], x.shape[3], x.shape[4])
    centre = (x * weight).sum(dim=(2, 3, 4), keepdim=True) / weight.sum(dim=(2, 3, 4), keepdim=True).clamp_min(1)
    theta = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(rotate_deg)
    factor = 1 + (torch.rand(n, generator=generator) * 2 - 1) * scale
    cos, sin = torch.cos(theta), torch.sin(theta)
    zero, one = torch.zeros_like(theta), torch.ones_like(theta)
    rot = torch.stack([cos, zero, sin, zero, one, zero, -sin, zero, cos], dim=1).view(n, 3, 3) * factor.view(n, 1, 1)
    rot = rot.to(x.device, x.dtype)
    out = torch.einsum("nij,njtvm->nitvm", rot, x - centre) + centre
    return out * present


@torch.inference_mode()
def predict(victim: Victim, data: np.ndarray, batch_size: int = 64, indices: np.ndarray | None = None) -> np.ndarray:
    """Predicted classes of ``data[indices]`` (all samples by default), batched, in inference mode.

    The victim's train/eval state is left as it was; prediction itself runs in eval mode.
    """
    device = next(victim.parameters()).device
    idx = np.arange(len(data)) if indices is None else np.asarray(indices)
    was_training = victim.training
    victim.eval()
    preds = []
    try:
        for start in range(0, len(idx), batch_size):
            batch = torch.as_tensor(np.asarray(data[idx[start : start + batch_size]]), device=device)
            preds.append(victim(batch).argmax(dim=1).cpu().numpy())
    finally:
        victim.train(was_training)
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def evaluate(victim: Victim, ds: SkeletonDataset, batch_size: int = 64, indices: np.ndarray | None = None) -> float:
    """Top-1 accuracy of ``victim`` on ``ds`` (or on ``ds[indices]``)."""
    idx = np.arange(len(ds)) if indices is None else np.asarray(indices)
    if idx.size == 0:
        raise ConfigError(f"dataset {ds.name!r} ({ds.split}): no samples to evaluate")
    return float((predict(victim, ds.data, batch_size, idx) == ds.labels[idx]).mean())


def package_versions() -> dict[str, str]:
    """Versions recorded with every trained checkpoint."""
    return {"skelrobust": __version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}


def train_victim(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    device: str | torch.device | None = None,
    command: str = "",
    progress: bool = True,
    recipe: "TrainingRecipe | None" = None,
) -> dict[str, Any]:
    """Train ``cfg.victim`` on ``cfg.dataset`` into ``out_dir`` and return the metadata written there.

    Writes ``out_dir/last.pt`` after each epoch, ``out_dir/best.pt`` whenever validation accuracy improves,
    and ``out_dir/metadata.json`` at the end. An existing ``last.pt`` of the same configuration is resumed;
    one of a different configuration raises :class:`ConfigError`. ``recipe`` (default: clean cross-entropy)
    decides each step's loss and the validation figure that selects ``best.pt`` (see :mod:`skelrobust.recipes`).
    """
    from .recipes import TrainingRecipe

    recipe = recipe if recipe is not None else TrainingRecipe(cfg.label_smoothing)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; training writes a folder (best.pt, last.pt, metadata.json)")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _train(cfg, out, recipe, device=device, command=command, progress=progress)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a run that failed before its first epoch leaves no empty folder behind
        raise


def _train(cfg: TrainConfig, out: Path, recipe: "TrainingRecipe", *, device: str | torch.device | None, command: str, progress: bool) -> dict[str, Any]:
    """The body of :func:`train_victim`, writing into the existing folder ``out``."""
    from .recipes import TrainingRecipe

    target = torch.device(device) if device is not None else torch.device("cpu")
    train_ds = load_dataset(cfg.dataset, "train", root=cfg.root, **cfg.dataset_options)
    test_ds = load_dataset(cfg.dataset, "test", root=cfg.root, **cfg.dataset_options)
    train_idx, val_idx, val_rule = validation_split(train_ds, cfg.val_fraction)

    torch.manual_seed(cfg.seed)
    options = dict(cfg.build_config)
    persons = options.pop("num_persons", int(train_ds.data.shape[4]))  # --config num_persons=... wins over the data
    victim = load_victim(
        cfg.victim, checkpoint=cfg.init_checkpoint, dataset=cfg.dataset, preset=cfg.preset, pretrained=False,
        root=cfg.root, device=target, num_persons=persons, **options,
    )
    build = build_record(victim, spec=cfg.victim, build_config=cfg.build_config, dataset=cfg.dataset)
    params = [p for p in victim.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_idx) / cfg.batch_size)
    total, warm = cfg.epochs * steps_per_epoch, cfg.warmup_epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, warm, total))
    gen = torch.Generator().manual_seed(cfg.seed)

    state: dict[str, Any] = {
        "epoch": 0, "best_val": -1.0, "best_epoch": 0, "train_seconds": 0.0, "train_cpu_seconds": 0.0, "history": []
    }
    last = out / "last.pt"
    record = _config_record(cfg, victim)
    if type(recipe) is not TrainingRecipe:
        record["recipe"] = recipe.config()
    if last.is_file():
        state = _resume(last, record, victim, opt, sched, gen)
        log.info("resuming %s from epoch %d", out, state["epoch"])

    for epoch in range(state["epoch"], cfg.epochs):
        started, cpu_started = time.perf_counter(), time.process_time()
        victim.train()
        order = train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]
        loss_sum, correct = 0.0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        for step in bar:
            batch = np.sort(order[step * cfg.batch_size : (step + 1) * cfg.batch_size])
            x = torch.as_tensor(np.asarray(train_ds.data[batch]))
            y = torch.as_tensor(train_ds.labels[batch])
            if cfg.rotate_deg or cfg.scale:
                x = augment(x, cfg.rotate_deg, cfg.scale, gen)
            x, y = x.to(target), y.to(target)
            loss, logits = recipe.loss(victim, x, y, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_value = float(loss.detach())
            loss_sum += loss_value * len(batch)
            correct += int((logits.detach().argmax(1) == y).sum())
            bar.set_postfix(loss=f"{loss_value:.3f}")
        scores = recipe.validate(victim, train_ds, val_idx, cfg.batch_size * 2)
        val_acc, selected = scores["val_accuracy"], scores[recipe.selection]
        state["train_seconds"] += time.perf_counter() - started
        state["train_cpu_seconds"] += time.process_time() - cpu_started
        state["history"].append(
            {"epoch": epoch + 1, "loss": loss_sum / len(train_idx), "train_accuracy": correct / len(train_idx), **scores}
        )
        log.info("epoch %d: loss %.4f, train %.3f, val %.3f", epoch + 1, loss_sum / len(train_idx), correct / len(train_idx), val_acc)
        if selected > state["best_val"]:
            state["best_val"], state["best_epoch"] = selected, epoch + 1
            write_build_record(out / "best.pt", build)
            with atomic_path(out / "best.pt") as tmp:
                torch.save({k: v.detach().cpu() for k, v in victim.network.state_dict().items()}, tmp)
        state["epoch"] = epoch + 1
        _save_last(last, record, state, victim, opt, sched, gen)

    best = out / "best.pt"
    if not best.is_file():
        raise CheckpointError(f"{out}: last.pt says training finished but best.pt is missing; delete {last} to retrain")
    final = load_victim(cfg.victim, checkpoint=best, dataset=cfg.dataset, root=cfg.root, device=target)
    # A dataset whose test split shares clips with TRAIN (one generic npz file serves both) must not
    # report accuracy on clips the model trained on: only held-out test clips count, and with none, no number.
    seen = set(train_ds.sample_ids)
    held_out = np.array([i for i, sid in enumerate(test_ds.sample_ids) if sid not in seen], dtype=np.int64)
    test_acc = evaluate(final, test_ds, cfg.batch_size * 2, held_out) if held_out.size else None
    if held_out.size < len(test_ds):
        log.warning("%d of %d test clips are also training clips; test accuracy is %s", len(test_ds) - held_out.size,
                    len(test_ds), f"measured on the other {held_out.size}" if held_out.size else "not reported")
    meta = {
        "victim": cfg.victim,
        "preset": victim.preset,
        "dataset": cfg.dataset,
        "layout": victim.layout.name,
        "num_classes": victim.num_classes,
        "num_persons": victim.num_persons,
        "config": victim.config,
        "build_config": dict(cfg.build_config),
        "training": asdict(cfg),
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "best_epoch": state["best_epoch"],
        "val_accuracy": state["history"][state["best_epoch"] - 1]["val_accuracy"],
        "test_accuracy": test_acc,
        "validation_split": {"rule": val_rule, "n_train": int(len(train_idx)), "n_val": int(len(val_idx))},
        "n_test": int(held_out.size),
        "n_test_in_train": int(len(test_ds) - held_out.size),
        "num_parameters": sum(p.numel() for p in victim.network.parameters()),
        "train_seconds": round(state["train_seconds"], 2),
        "train_cpu_seconds": round(state["train_cpu_seconds"], 2),
        "torch_threads": torch.get_num_threads(),
        "device": str(target),
        "command": command,
        "versions": package_versions(),
        "sha256": sha256_file(best),
        "history": state["history"],
    }
    if type(recipe) is not TrainingRecipe:
        meta["defense"] = recipe.config()
        meta[recipe.selection] = state["best_val"]
    atomic_write_json(out / "metadata.json", meta)
    return meta


def _lr_factor(step: int, warm: int, total: int) -> float:
    """Linear warm-up to 1 over ``warm`` steps, then cosine decay to 0 at ``total``."""
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


def _config_record(cfg: TrainConfig, victim: Victim) -> dict[str, Any]:
    """What must match for ``last.pt`` to be resumed (JSON-like, so it survives ``weights_only`` loading)."""
    import json

    record = {**asdict(cfg), "preset": victim.preset}
    return json.loads(json.dumps(record, default=str))


def _save_last(path: Path, record: dict[str, Any], state: dict[str, Any], victim: Victim, opt: Any, sched: Any, gen: torch.Generator) -> None:
    payload = {
        "config": record,
        "state": state,
        "model": victim.network.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "generator": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _resume(path: Path, record: dict[str, Any], victim: Victim, opt: Any, sched: Any, gen: torch.Generator) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file
        raise CheckpointError(f"cannot resume from {path}: {describe_load_failure(exc)}; delete it to start over") from exc
    if not isinstance(payload, dict) or not {"config", "state", "model", "optimizer", "scheduler", "generator", "torch_rng"} <= set(payload):
        raise CheckpointError(f"cannot resume from {path}: it is not a training state skelrobust wrote; delete it to start over")
    if payload.get("config") != record:
        theirs = payload.get("config") or {}
        diff = sorted(k for k in set(theirs) | set(record) if theirs.get(k) != record.get(k))
        raise ConfigError(f"{path} belongs to a different training run (differs in {', '.join(diff)}); use another --out or delete it")
    victim.network.load_state_dict(payload["model"])
    opt.load_state_dict(payload["optimizer"])
    sched.load_state_dict(payload["scheduler"])
    gen.set_state(payload["generator"])
    torch.set_rng_state(payload["torch_rng"])
    return dict(payload["state"])
