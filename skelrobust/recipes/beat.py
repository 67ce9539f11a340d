"""BEAT's post-trained Bayesian energy-based heads over a frozen classifier (``train --defense beat``).

BEAT — Wang, Diao, Tan and Guo, "Defending Black-box Skeleton-based Human Activity Classifiers", AAAI 2023
(arXiv 2203.04713) — wraps a *trained* classifier ``f`` (frozen) with M small heads
``logits_m(x) = z + g_m(z)``, ``z = ReLU(f(x))`` (the head of :mod:`skelrobust.bayesian_heads`, shared with
TASAR), and samples each head's posterior with SG-AdaHMC (:func:`skelrobust.bayesian_heads.sgadahmc_step`)
under a joint energy-based objective over clean data, data samples and adversaries. Per head m and batch
``(X, y)``:

- ``L_x = -(mean LSE(logits_m(X)) - mean LSE(logits_m(X_s)))`` (JEM's ``log p(x)`` term, ``LSE`` the
  logsumexp), where ``X_s`` are SGLD samples of ``E(x) = -LSE(logits_m(x))``:
  ``x <- x + eta grad LSE + sqrt(2 eta) sigma N(0, I)``, K steps, started from a replay buffer (per head,
  ``buffer_size`` samples, re-initialised from ``U(-1, 1)`` with probability ``reinit``; the buffer is
  written back after every batch, which the prior benchmark's code never did);
- adversaries ``X~``: ``x~_0 = x + U(-rho, rho)`` on present entries, then K SGLD steps ascending
  ``log p(x~ | x, y) = -[CE(logits_m(x~), y) + beta L_motion(x, x~)]``, with the motion term
  ``L_motion = sum_{k=1..3} MSE(D^k x, D^k x~) + MSE(bone lengths(x~), bone lengths(x))`` (temporal
  differences of order 1-3);
- loss ``lambda_x L_x + lambda_adv CE(logits_m(X~), y) + lambda_c CE(logits_m(X), y)`` (the motion term has no
  gradient with respect to the head and is left out of it).

Prediction is the Bayesian model average over the heads (their summed logits, as the paper's code).

Defaults: the EBMATrainer defaults of the reference (K 10, eta 2, sigma 5e-3, buffer 100, reinit 0.05,
rho 0.1, beta 1e-5, weights 0.1 / 0.1 / 1, M = 5) and the SG-AdaHMC configuration of
:class:`~skelrobust.bayesian_heads.HeadConfig` (lr 2e-3, L 30, T 1e-5, tau 2, C 1). Differences from the
prior benchmark's code (bugs not reproduced): each head's SGLD uses that head's logits (not the sum over
heads), ``log p(x)`` uses logsumexp (not mean logits), the replay buffer is used, and a base checkpoint is
required (its README trained heads over a random base). Each head keeps its last iterate (the prior code
selected heads on test accuracy).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..adapters import person_present
from ..bayesian_heads import HeadConfig, head_logits, init_heads, num_head_params, sgadahmc_step, state_dict_sha256
from ..data import SkeletonDataset
from ..errors import CheckpointError, ConfigError
from ..io import atomic_path, atomic_write_json
from ..layouts import SkeletonLayout

#: Version of the heads file layout.
BEAT_VERSION = 1


@dataclass(frozen=True)
class BeatConfig:
    """BEAT hyper-parameters (see the module docstring for their roles and sources)."""

    num_heads: int = 5
    epochs: int = 5
    batch_size: int = 32
    sgld_steps: int = 10
    sgld_lr: float = 2.0
    sgld_std: float = 5e-3
    buffer_size: int = 100
    reinit: float = 0.05
    perturb: float = 0.1
    motion_weight: float = 1e-5
    x_weight: float = 0.1
    adversary_weight: float = 0.1
    clean_weight: float = 1.0
    lr: float = 2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("num_heads", "epochs", "batch_size", "sgld_steps", "buffer_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"beat: {name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.reinit <= 1.0 or not self.lr > 0 or not self.sgld_lr > 0:
            raise ConfigError("beat: reinit must be in [0, 1], lr and sgld_lr > 0")

    def sampler(self) -> HeadConfig:
        """The SG-AdaHMC configuration of the heads."""
        return HeadConfig(num_heads=self.num_heads, lr=self.lr, seed=self.seed)


def bone_lengths(x: torch.Tensor, layout: SkeletonLayout) -> torch.Tensor:
    """``(N, T, B, M)`` lengths of every bone (joint to parent) of canonical ``x``."""
    child = [j for j, p in enumerate(layout.parents) if p >= 0]
    parent = [layout.parents[j] for j in child]
    return (x[:, :, :, child] - x[:, :, :, parent]).norm(dim=1)


def motion_loss(x: torch.Tensor, x_adv: torch.Tensor, layout: SkeletonLayout) -> torch.Tensor:
    """Per-sample ``sum_{k=1..3} MSE(D^k x, D^k x~) + MSE(bones(x~), bones(x))`` (D: temporal difference)."""
    total = x.new_zeros(x.shape[0])
    a, b = x, x_adv
    for _ in range(3):
        a, b = a.diff(dim=2), b.diff(dim=2)
        total = total + (a - b).pow(2).flatten(1).mean(1)
    return total + (bone_lengths(x_adv, layout) - bone_lengths(x, layout)).pow(2).flatten(1).mean(1)


class BeatTrainer:
    """Trains the M heads of BEAT over a frozen ``base`` (canonical input, logits out).

    All heads are updated at once (parameters stacked ``(M, D)``), each with its own SGLD chains and
    replay buffer; the base runs on the ``M * B`` stacked samples of a step.
    """

    def __init__(self, base: nn.Module, layout: SkeletonLayout, num_classes: int, sample_shape: tuple[int, ...], config: BeatConfig) -> None:
        self.base = base.eval()
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.layout = layout
        self.config = config
        self.num_classes = num_classes
        self.generator = torch.Generator().manual_seed(config.seed)
        self.heads = init_heads(config.num_heads, num_classes, self.generator)
        self.buffer = torch.rand((config.num_heads, config.buffer_size, *sample_shape), generator=self.generator) * 2 - 1

    def _logits(self, heads: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``(M, B, K)`` head logits of per-head inputs ``x`` ``(M * B, ...)``."""
        m = heads.shape[0]
        features = self.base(x).view(m, -1, self.num_classes)
        return head_logits(heads, features)

    def _sgld(self, start: torch.Tensor, objective: Any, mask: torch.Tensor | None) -> torch.Tensor:
        c = self.config
        x = start
        for _ in range(c.sgld_steps):
            x = x.detach().requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(objective(x).sum(), x)
            noise = torch.randn(x.shape, generator=self.generator)
            step = c.sgld_lr * grad + math.sqrt(2 * c.sgld_lr) * c.sgld_std * noise
            x = x.detach() + (step * mask if mask is not None else step)
        return x.detach()

    def step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One SG-AdaHMC step of every head on batch ``(x, y)``; returns the mean losses."""
        c, m, b = self.config, self.config.num_heads, x.shape[0]
        heads = self.heads
        # Data samples X_s from each head's replay buffer (re-initialised with probability reinit).
        slots = torch.randint(c.buffer_size, (m, b), generator=self.generator)
        start = self.buffer[torch.arange(m)[:, None], slots]
        fresh = torch.rand((m, b), generator=self.generator) < c.reinit
        start = torch.where(fresh.view(m, b, *([1] * (x.ndim - 1))), torch.rand(start.shape, generator=self.generator) * 2 - 1, start)
        samples = self._sgld(start.flatten(0, 1), lambda z: torch.logsumexp(self._logits(heads, z), -1), None)
        self.buffer[torch.arange(m)[:, None], slots] = samples.view(m, b, *x.shape[1:])
        # Adversaries X~ around X, per head.
        present = person_present(x)[:, None, :, None, :].to(x.dtype)
        mask = present.repeat(m, 1, 1, 1, 1)
        x_rep, y_rep = x.repeat(m, 1, 1, 1, 1), y.repeat(m)
        start = x_rep + (torch.rand(x_rep.shape, generator=self.generator) * 2 - 1) * c.perturb * mask

        def log_p_adv(z: torch.Tensor) -> torch.Tensor:
            ce = F.cross_entropy(self._logits(heads, z).flatten(0, 1), y_rep, reduction="none")
            return -(ce + c.motion_weight * motion_loss(x_rep, z, self.layout))

        adversaries = self._sgld(start, log_p_adv, mask)
        with torch.no_grad():
            f_clean = self.base(x)
            f_samples = self.base(samples).view(m, b, -1)
            f_adv = self.base(adversaries).view(m, b, -1)
            motion = float(motion_loss(x_rep, adversaries, self.layout).mean())
        with torch.enable_grad():
            theta = heads.detach().requires_grad_(True)
            lse_clean = torch.logsumexp(head_logits(theta, f_clean), -1).mean(1)
            lse_samples = torch.logsumexp(head_logits(theta, f_samples), -1).mean(1)
            loss_x = -(lse_clean - lse_samples)
            ce_adv = F.cross_entropy(head_logits(theta, f_adv).flatten(0, 1), y_rep, reduction="none").view(m, b).mean(1)
            ce_clean = F.cross_entropy(head_logits(theta, f_clean).flatten(0, 1), y.repeat(m), reduction="none").view(m, b).mean(1)
            loss = c.x_weight * loss_x + c.adversary_weight * ce_adv + c.clean_weight * ce_clean
            (grad,) = torch.autograd.grad(loss.sum(), theta)
        self.heads = sgadahmc_step(heads.detach(), grad, c.sampler(), self.generator)
        loss, loss_x, ce_adv, ce_clean = loss.detach(), loss_x.detach(), ce_adv.detach(), ce_clean.detach()
        return {"loss": float(loss.mean()), "log_px": float(loss_x.mean()), "ce_adversary": float(ce_adv.mean()),
                "ce_clean": float(ce_clean.mean()), "motion": motion}

    def state(self) -> dict[str, Any]:
        return {"heads": self.heads.clone(), "buffer": self.buffer.clone(), "generator": self.generator.get_state()}

    def load(self, state: dict[str, Any]) -> None:
        self.heads, self.buffer = state["heads"], state["buffer"]
        self.generator.set_state(state["generator"])


class BeatEnsemble(nn.Module):
    """The defended classifier: the base's logits through every head, summed (Bayesian model average)."""

    def __init__(self, base: nn.Module, heads: torch.Tensor) -> None:
        super().__init__()
        self.base = base
        self.register_buffer("heads", heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return head_logits(self.heads, self.base(x)).sum(dim=0)


def read_heads(path: str | Path, num_classes: int) -> dict[str, Any]:
    """A BEAT heads file (``weights_only`` load), checked for version and class count."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"BEAT heads {path} do not exist; post-train them with `skelrobust train --defense beat`")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        version, heads = state["version"], state["heads"]
    except Exception as exc:  # corrupt file, a foreign pickle, missing keys
        raise CheckpointError(f"{path}: not a BEAT heads file ({type(exc).__name__}: {exc})") from None
    if version != BEAT_VERSION or heads.ndim != 2 or heads.shape[1] != num_head_params(num_classes):
        raise CheckpointError(f"{path}: BEAT heads of version {version} with shape {tuple(heads.shape)} do not fit {num_classes} classes")
    return state


def train_beat(base_victim: Any, train: SkeletonDataset, test: SkeletonDataset, train_idx: np.ndarray, val_idx: np.ndarray,
               config: BeatConfig, out: str | Path, command: str = "", progress: bool = True) -> dict[str, Any]:
    """Post-train BEAT's heads over ``base_victim`` (frozen) into ``out``; resumable per epoch.

    Writes ``out/beat_heads.pt`` (heads, base SHA-256, config), ``out/last.pt`` and ``out/metadata.json``
    (with the ensemble's validation accuracy per epoch and its test accuracy at the end).
    """
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base_sha = state_dict_sha256(base_victim.network)
    trainer = BeatTrainer(base_victim, base_victim.layout, base_victim.num_classes, tuple(train.data.shape[1:]), config)
    record = {"config": asdict(config), "base_sha256": base_sha, "dataset": train.name}
    last = out / "last.pt"
    state: dict[str, Any] = {"epoch": 0, "history": [], "seconds": 0.0}
    if last.is_file():
        payload = torch.load(last, map_location="cpu", weights_only=True)
        if json.loads(json.dumps(payload["record"])) != json.loads(json.dumps(record)):
            raise ConfigError(f"{last} belongs to a different BEAT run; use another --out or delete it")
        trainer.load(payload["trainer"])
        state = dict(payload["state"])
    order_gen = torch.Generator().manual_seed(config.seed + 1)
    for _ in range(state["epoch"]):
        torch.randperm(len(train_idx), generator=order_gen)
    for epoch in range(state["epoch"], config.epochs):
        started = time.perf_counter()
        order = train_idx[torch.randperm(len(train_idx), generator=order_gen).numpy()]
        sums: dict[str, float] = {}
        steps = math.ceil(len(order) / config.batch_size)
        for s in tqdm(range(steps), desc=f"BEAT epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False):
            rows = np.sort(order[s * config.batch_size : (s + 1) * config.batch_size])
            losses = trainer.step(torch.as_tensor(np.asarray(train.data[rows])), torch.as_tensor(train.labels[rows]))
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v / steps
        ensemble = BeatEnsemble(base_victim, trainer.heads)
        with torch.no_grad():
            correct = sum(int((ensemble(torch.as_tensor(np.asarray(train.data[val_idx[i : i + 64]]))).argmax(1)
                               == torch.as_tensor(train.labels[val_idx[i : i + 64]])).sum()) for i in range(0, len(val_idx), 64))
        state["seconds"] += time.perf_counter() - started
        state["history"].append({"epoch": epoch + 1, **sums, "val_accuracy": correct / max(1, len(val_idx))})
        state["epoch"] = epoch + 1
        with atomic_path(last) as tmp:
            torch.save({"record": record, "trainer": trainer.state(), "state": state}, tmp)
    heads_file = out / "beat_heads.pt"
    with atomic_path(heads_file) as tmp:
        torch.save({"version": BEAT_VERSION, "heads": trainer.heads.clone(), "num_classes": base_victim.num_classes,
                    "base_sha256": base_sha, "config": asdict(config)}, tmp)
    ensemble = BeatEnsemble(base_victim, trainer.heads)
    with torch.no_grad():
        test_correct = sum(int((ensemble(torch.as_tensor(np.asarray(test.data[i : i + 64]))).argmax(1)
                                == torch.as_tensor(test.labels[i : i + 64])).sum()) for i in range(0, len(test), 64))
    meta = {"defense": {"name": "beat", **asdict(config)}, "dataset": train.name, "victim": base_victim.name,
            "preset": base_victim.preset, "base_checkpoint": base_victim.checkpoint, "base_sha256": base_sha,
            "heads_file": str(heads_file), "val_accuracy": state["history"][-1]["val_accuracy"],
            "test_accuracy": test_correct / len(test), "best_epoch": config.epochs, "epochs": config.epochs,
            "num_parameters": int(trainer.heads.numel()), "history": state["history"],
            "train_seconds": round(state["seconds"], 2), "command": command}
    atomic_write_json(out / "metadata.json", meta)
    return meta
