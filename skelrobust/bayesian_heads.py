"""TASAR's post-train Dual Bayesian surrogate: small Bayesian heads over a frozen recogniser.

TASAR (Diao et al., "TASAR: Transfer-based Attack on Skeletal Action Recognition", ICLR 2025,
https://arxiv.org/abs/2409.02483) smooths the surrogate's loss landscape without re-training it: K small
heads are appended to the frozen model and only their posterior is explored. As in the paper's code, with
``f(x)`` the surrogate's logits and ``z = ReLU(f(x))``:

    logits_k(x) = z + g_k(z),   g_k = ReLU(W2 (W1 z + b1) + b2),   W1, W2: classes x classes

Post-training has two stages, both on the surrogate's training split:

1. **Stage 1.** Each head is trained with the SG-AdaHMC sampler on the cross-entropy of its logits.
2. **Stage 2 (dual Bayesian).** From the stage-1 heads, training continues with a flatness-aware gradient
   ``g + (lam / rho) (g(theta + rho g/|g|) - g)`` (rho 0.1, lam 1e-3) and SG-AdaHMC steps, and diagonal SWAG
   moments (running first and second moments of the head parameters) are collected per head every
   ``floor(steps / swa_n)`` steps.

**Schedule in sampler steps.** Each stage runs ``steps`` SG-AdaHMC steps (default 6,250: the prior code's
5 epochs of batch 32 over NTU-60 x-sub's ~40,000 training clips). The sampler moves a weight by at most
``L sqrt(2) eps0^2`` (about 1.7e-4) per step whatever the data, so a schedule in epochs gives a small training
set (1,280 clips: 200 steps) heads that barely leave their initialisation and a posterior of width ~0; a fixed
step count gives every dataset the posterior the method was tuned for. ``epochs`` restores the epoch schedule
(``steps = epochs x ceil(N / batch)``) for comparisons with the prior code on the same data.

**Temperature.** The prior code samples at ``T = 1e-5``, where the noise term is about 1e-7 per step and the
sampler is a deterministic optimiser: on the embedded set its SWAG moments have a relative width of 3-4 % and
sampled heads give ``dL/df`` with mean pairwise cosine 0.99 (a collapsed posterior). The default here is
``T = 0.3``, the smallest value of the grid {1e-5, 0.1, 0.3, 1} that meets the targets on the embedded set
(relative width >= 0.1, cosine <= 0.95, ensemble accuracy within 2 points of the surrogate; measured: 0.32,
0.88 and equal accuracy, ``bench/bench_tasar.py --part posterior``); ``temperature=1e-5`` reproduces the
prior code's sampler.

**Diagnostics** (:func:`posterior_diagnostics`, recorded in ``stats["diagnostics"]``): per head the SWAG
relative width ``mean(std) / mean(|mu|)``; the mean pairwise cosine between sampled heads' gradients of the
loss with respect to the surrogate logits (what reaches the input: ``grad_x = J_f^T dL/df``, so heads whose
``dL/df`` agree give the same input gradient and the Bayesian average does nothing); and the clean accuracy of
the K x S head ensemble beside the bare surrogate's. The posterior counts as **collapsed** when the mean
cosine is >= :data:`COLLAPSE_COSINE` (0.99) or the mean relative width < :data:`COLLAPSE_RELATIVE_STD`
(0.01); :func:`post_train` then warns on the log (stderr) and the flag goes with the diagnostics.

At attack time, head samples ``theta = mu + scale * sqrt(max(E[theta^2] - mu^2, 1e-30) + 1e-30) * eps``
(scale 1.5) act on one backbone output, vectorised over all K x S samples.

Because the backbone is frozen, its logits over the training set are computed once and every head step
works on them: training never re-runs the backbone. Artefacts are cached under
``cache_dir("tasar", "heads")``, keyed by the SHA-256 of the surrogate's state dict, the head configuration
and a fingerprint of the training data.

The sampler is SG-AdaHMC **as the paper's code runs it**: each step applies ``L`` inner updates with the
same gradient, each from a fresh state (momentum 0, ``v = 1e-5``), so one step is
``-L eps0^2 g / sqrt(v) + T (2 eps0^3 C / v - eps0^4) sqrt(L) xi`` with ``v = 1e-5 (1 - 1/tau) + g^2 / tau``
(the sum of L independent Gaussian draws is drawn as one of variance L: the same distribution). A variant
that carries momentum and ``v`` across steps is not offered: at the released hyper-parameters its friction
term ``eps0 C / sqrt(v)`` exceeds 2 whenever ``|g| < eps0 C / 2``, which makes the momentum diverge.
Differences from the released trainer (bugs not reproduced): SWAG snapshot counters are per head (the
released code shares one counter across heads and epochs, which mis-weights heads 2..K and mixes in the
initial head); stage 1 keeps each head's last iterate (the released code selects heads on *test* accuracy,
which an attack must not see); the frozen backbone gets no gradients.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .errors import CheckpointError, ConfigError, DataError
from .io import atomic_path
from .paths import cache_dir

log = logging.getLogger(__name__)

#: Version of the artefact layout and training procedure; part of the cache key.
HEADS_VERSION = 2
#: Default steps per stage: the prior code's 5 epochs x ceil(40,091 / 32) batches on NTU-60 x-sub, rounded.
DEFAULT_STAGE_STEPS = 6250
#: Mean pairwise dL/df cosine between sampled heads at or above which the posterior counts as collapsed.
COLLAPSE_COSINE = 0.99
#: Mean SWAG relative width below which the posterior counts as collapsed.
COLLAPSE_RELATIVE_STD = 0.01


@dataclass(frozen=True)
class HeadConfig:
    """Post-training hyper-parameters (defaults: the prior benchmark's README, ``-bs 32 -lr 2e-3``, and its
    per-stage step count on NTU-60, see the module docstring).

    Attributes:
        num_heads: K, heads trained independently.
        steps: SG-AdaHMC steps of each stage (default 6,250).
        epochs: When set, the prior code's schedule instead: ``epochs x ceil(N / batch_size)`` steps per stage.
        batch_size: Mini-batch size.
        lr: SG-AdaHMC step parameter eps0.
        langevin_steps: L, inner updates per sampler step.
        temperature: T, noise scale (default 0.3; the prior code's 1e-5 collapses, see the module docstring).
        tau: Averaging constant of the preconditioner.
        friction: C.
        rho: Flatness-aware perturbation radius.
        lam: Flatness-aware weight.
        swa_n: Target number of SWAG snapshots over stage 2.
        seed: Seed of initialisation, shuffling and sampler noise.
    """

    num_heads: int = 3
    steps: int = DEFAULT_STAGE_STEPS
    epochs: int | None = None
    batch_size: int = 32
    lr: float = 2e-3
    langevin_steps: int = 30
    temperature: float = 0.3
    tau: float = 2.0
    friction: float = 1.0
    rho: float = 0.1
    lam: float = 1e-3
    swa_n: int = 300
    seed: int = 0

    def stage_steps(self, num_train: int) -> int:
        """Sampler steps per stage for a training set of ``num_train`` samples."""
        if self.epochs is None:
            return int(self.steps)
        return int(self.epochs) * math.ceil(num_train / min(self.batch_size, max(num_train, 1)))

    def __post_init__(self) -> None:
        for name in ("num_heads", "steps", "epochs", "batch_size", "langevin_steps", "swa_n"):
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                raise ConfigError(f"TASAR heads: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "tau", "rho"):
            if not float(getattr(self, name)) > 0:
                raise ConfigError(f"TASAR heads: {name} must be > 0, got {getattr(self, name)}")


def num_head_params(num_classes: int) -> int:
    """Parameters of one head: two ``classes x classes`` linear layers with biases."""
    return 2 * num_classes * num_classes + 2 * num_classes


def init_heads(num_heads: int, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """``(K, D)`` flat head parameters with PyTorch's default ``nn.Linear`` initialisation."""
    c = num_classes
    bound = 1.0 / math.sqrt(c)
    # kaiming_uniform(a=sqrt(5)) on a (c, c) weight and the bias rule both give U(-1/sqrt(c), 1/sqrt(c))
    flat = (torch.rand(num_heads, num_head_params(c), generator=generator) * 2 - 1) * bound
    return flat


def _unflatten(flat: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, ...]:
    c = num_classes
    w1 = flat[..., : c * c].reshape(*flat.shape[:-1], c, c)
    b1 = flat[..., c * c : c * c + c]
    w2 = flat[..., c * c + c : 2 * c * c + c].reshape(*flat.shape[:-1], c, c)
    b2 = flat[..., 2 * c * c + c :]
    return w1, b1, w2, b2


def head_logits(flat: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Logits of P heads at once.

    Args:
        flat: ``(P, D)`` head parameters.
        features: Surrogate logits ``f(x)``, ``(N, C)`` (shared by all heads) or ``(P, N, C)``.

    Returns:
        ``(P, N, C)``: ``z + ReLU(W2 (W1 z + b1) + b2)`` with ``z = ReLU(features)``.
    """
    num_classes = features.shape[-1]
    w1, b1, w2, b2 = _unflatten(flat, num_classes)
    z = F.relu(features)
    if z.ndim == 2:
        z = z.unsqueeze(0).expand(flat.shape[0], -1, -1)
    hidden = torch.baddbmm(b1.unsqueeze(1), z, w1.transpose(1, 2))
    out = torch.baddbmm(b2.unsqueeze(1), hidden, w2.transpose(1, 2))
    return z + F.relu(out)


def sgadahmc_step(
    params: torch.Tensor, grad: torch.Tensor, config: HeadConfig, generator: torch.Generator
) -> torch.Tensor:
    """One SG-AdaHMC step as the paper's code performs it (see the module docstring); returns new params."""
    eps = config.lr
    v = 1e-5 * (1 - 1 / config.tau) + grad * grad / config.tau
    drift = -config.langevin_steps * eps**2 * grad / v.sqrt()
    noise_scale = config.temperature * (2 * eps**3 * config.friction / v - eps**4)
    noise = torch.randn(params.shape, generator=generator, dtype=params.dtype) * math.sqrt(config.langevin_steps)
    return params + drift + noise_scale * noise


def _head_loss_and_grad(flat: torch.Tensor, feats: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-head mean CE over per-head batches ``feats`` ``(K, B, C)``, ``labels`` ``(K, B)``; grad ``(K, D)``."""
    with torch.enable_grad():
        theta = flat.detach().requires_grad_(True)
        logits = head_logits(theta, feats)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(labels.shape).mean(1)
        (grad,) = torch.autograd.grad(loss.sum(), theta)
    return loss.detach(), grad


@dataclass
class HeadPosterior:
    """The post-trained heads of one surrogate.

    Attributes:
        num_classes: C.
        stage1: ``(K, D)`` stage-1 heads (used by ``compat="robustbenchhar"`` for its base gradient).
        mean: ``(K, D)`` SWAG first moments.
        sqmean: ``(K, D)`` SWAG second moments.
        snapshots: ``(K,)`` SWAG snapshots averaged per head.
        config: The :class:`HeadConfig` as a dict.
        stats: Training accuracies and losses (JSON-able).
    """

    num_classes: int
    stage1: torch.Tensor
    mean: torch.Tensor
    sqmean: torch.Tensor
    snapshots: torch.Tensor
    config: dict[str, Any]
    stats: dict[str, Any]

    @property
    def num_heads(self) -> int:
        return int(self.mean.shape[0])

    def std(self) -> torch.Tensor:
        """``(K, D)`` SWAG standard deviations ``sqrt(max(E[theta^2] - mu^2, 1e-30) + 1e-30)`` (the paper's code)."""
        return ((self.sqmean - self.mean**2).clamp_min(1e-30) + 1e-30).sqrt()

    def sample(self, num_samples: int, scale: float, generator: torch.Generator) -> torch.Tensor:
        """``(K * S, D)`` SWAG head samples, head-major (rows ``k*S .. k*S+S-1`` belong to head k)."""
        k, d = self.mean.shape
        eps = torch.randn((k, num_samples, d), generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return (self.mean.unsqueeze(1) + scale * self.std().unsqueeze(1) * eps).reshape(k * num_samples, d)

    def to(self, device: torch.device | str) -> "HeadPosterior":
        return HeadPosterior(
            self.num_classes, self.stage1.to(device), self.mean.to(device), self.sqmean.to(device),
            self.snapshots.to(device), dict(self.config), dict(self.stats),
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": HEADS_VERSION, "num_classes": self.num_classes, "stage1": self.stage1.cpu(),
            "mean": self.mean.cpu(), "sqmean": self.sqmean.cpu(), "snapshots": self.snapshots.cpu(),
            "config": dict(self.config), "stats": dict(self.stats),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], source: str = "<memory>") -> "HeadPosterior":
        try:
            if state["version"] != HEADS_VERSION:
                raise CheckpointError(f"{source}: TASAR heads version {state['version']}, expected {HEADS_VERSION}")
            return cls(
                int(state["num_classes"]), state["stage1"], state["mean"], state["sqmean"], state["snapshots"],
                dict(state["config"]), dict(state["stats"]),
            )
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"{source}: not a TASAR heads artefact ({exc})") from exc


def _accuracy(flat: torch.Tensor, features: torch.Tensor, labels: torch.Tensor) -> list[float]:
    with torch.no_grad():
        pred = head_logits(flat, features).argmax(-1)
    return (pred == labels.unsqueeze(0)).float().mean(1).tolist()


def train_heads(
    features: torch.Tensor, labels: torch.Tensor, config: HeadConfig = HeadConfig(), progress: bool = True
) -> HeadPosterior:
    """Post-train K heads on cached surrogate logits (stage 1, then the dual-Bayesian stage with SWAG).

    Args:
        features: ``(N, C)`` surrogate logits over the training split (float32).
        labels: ``(N,)`` int64 labels.
        config: Hyper-parameters (``config.stage_steps(N)`` sampler steps per stage).
        progress: Show tqdm bars on stderr.

    The K heads are trained at once: parameters are stacked ``(K, D)`` and each head draws its own shuffled
    mini-batches, so the result equals training them one after another with independent loaders.
    """
    features = features.detach().float().cpu()
    labels = labels.detach().long().cpu()
    n, c = features.shape
    if labels.shape != (n,):
        raise DataError(f"TASAR heads: {labels.shape[0]} labels for {n} feature rows")
    if n == 0:
        raise DataError("TASAR heads: the training split is empty")
    k = config.num_heads
    gen = torch.Generator().manual_seed(config.seed)
    params = init_heads(k, c, gen)
    initial = params.clone()
    batch = min(config.batch_size, n)
    steps_per_epoch = math.ceil(n / batch)
    stage_steps = config.stage_steps(n)

    def batches() -> Any:
        """Endless per-head mini-batches: a fresh shuffle per head every pass over the data."""
        while True:
            order = torch.stack([torch.randperm(n, generator=gen) for _ in range(k)])  # (K, N)
            for start in range(0, n, batch):
                idx = order[:, start : start + batch]
                yield features[idx], labels[idx]

    stats: dict[str, Any] = {"train_samples": n, "steps_per_epoch": steps_per_epoch, "stage_steps": stage_steps}
    bar = tqdm(total=2 * stage_steps, desc="TASAR post-training", disable=not progress, leave=False)
    losses: list[float] = []
    stream = batches()
    for _ in range(stage_steps):  # stage 1
        feats, ys = next(stream)
        loss, grad = _head_loss_and_grad(params, feats, ys)
        params = sgadahmc_step(params, grad, config, gen)
        losses.append(float(loss.mean()))
        bar.update(1)
    stage1 = params.clone()
    tail = max(1, min(steps_per_epoch, stage_steps))
    stats["stage1_final_loss"] = float(np.mean(losses[-tail:]))
    stats["stage1_train_accuracy"] = _accuracy(stage1, features, labels)
    stats["stage1_mean_abs_move"] = float((stage1 - initial).abs().mean())

    period = max(1, stage_steps // config.swa_n)
    mean = params.clone()
    sqmean = params**2
    snapshots = torch.zeros(k, dtype=torch.long)
    losses = []
    for step in range(stage_steps):  # stage 2: flatness-aware SG-AdaHMC with SWAG moments
        feats, ys = next(stream)
        loss, grad = _head_loss_and_grad(params, feats, ys)
        norm = grad.norm(dim=1, keepdim=True)
        _, grad_plus = _head_loss_and_grad(params + config.rho * grad / (norm + 1e-20), feats, ys)
        params = sgadahmc_step(params, grad + (config.lam / config.rho) * (grad_plus - grad), config, gen)
        if step % period == 0:
            weight = (snapshots.float() / (snapshots.float() + 1)).unsqueeze(1)
            mean = mean * weight + params * (1 - weight)
            sqmean = sqmean * weight + params**2 * (1 - weight)
            snapshots += 1
        losses.append(float(loss.mean()))
        bar.update(1)
    bar.close()
    stats["stage2_final_loss"] = float(np.mean(losses[-tail:]))
    stats["swag_mean_train_accuracy"] = _accuracy(mean, features, labels)
    stats["surrogate_train_accuracy"] = float((features.argmax(1) == labels).float().mean())
    return HeadPosterior(c, stage1, mean, sqmean, snapshots, asdict(config), stats)


def posterior_diagnostics(
    posterior: HeadPosterior,
    features: torch.Tensor,
    labels: torch.Tensor,
    num_samples: int = 20,
    scale: float = 1.5,
    seed: int = 0,
    max_rows: int = 512,
) -> dict[str, Any]:
    """Is the posterior one? Width, gradient diversity and accuracy of K x S sampled heads (module docstring).

    Args:
        posterior: The post-trained heads.
        features: ``(N, C)`` surrogate logits (e.g. over the training split, or a test split).
        labels: ``(N,)`` labels.
        num_samples: S head samples per head (K x S in all), drawn as the attack draws them.
        scale: SWAG sampling scale.
        seed: Seed of the head samples.
        max_rows: At most this many rows (evenly strided) are used.

    Returns:
        JSON-able dict: ``swag_relative_std`` (per head), ``dlogit_cosine_mean`` / ``_min`` (pairwise, over
        samples and head pairs), ``ensemble_accuracy``, ``surrogate_accuracy``, ``rows`` and ``collapsed``.
    """
    features = features.detach().double().cpu()  # float64: confident heads give gradients far below 1e-20
    labels = labels.detach().long().cpu()
    n = features.shape[0]
    rows = torch.unique(torch.linspace(0, n - 1, steps=min(n, max_rows)).round().long())
    f, y = features[rows], labels[rows]
    post = posterior.to("cpu")
    heads = post.sample(num_samples, scale, torch.Generator().manual_seed(seed)).double()
    p = heads.shape[0]
    with torch.enable_grad():
        leaf = f.unsqueeze(0).expand(p, -1, -1).clone().requires_grad_(True)
        logits = head_logits(heads, leaf)  # (P, R, C)
        loss = F.cross_entropy(logits.flatten(0, 1), y.repeat(p), reduction="sum")
        (grad,) = torch.autograd.grad(loss, leaf)
    grad = grad / grad.abs().amax(dim=2, keepdim=True).clamp_min(1e-300)  # rescale before squaring (no underflow)
    unit = grad / grad.norm(dim=2, keepdim=True).clamp_min(1e-300)  # (P, R, C)
    gram = torch.einsum("prc,qrc->rpq", unit, unit)  # (R, P, P)
    off = ~torch.eye(p, dtype=torch.bool)
    pairs = gram[:, off] if p > 1 else torch.ones(len(rows), 1)
    with torch.no_grad():
        ensemble = torch.softmax(logits.detach(), dim=2).mean(0).argmax(1)
    rel_std = (post.std().mean(1) / post.mean.abs().mean(1).clamp_min(1e-30)).tolist()
    unit = unit.float()
    cosine = float(pairs.mean())
    return {
        "swag_relative_std": rel_std,
        "dlogit_cosine_mean": cosine,
        "dlogit_cosine_min": float(pairs.min()),
        "ensemble_accuracy": float((ensemble == y).float().mean()),
        "surrogate_accuracy": float((f.argmax(1) == y).float().mean()),
        "head_samples": p,
        "rows": int(len(rows)),
        "collapsed": bool(cosine >= COLLAPSE_COSINE or float(np.mean(rel_std)) < COLLAPSE_RELATIVE_STD),
        "collapse_rule": f"dlogit_cosine_mean >= {COLLAPSE_COSINE} or mean swag_relative_std < {COLLAPSE_RELATIVE_STD}",
    }


def state_dict_sha256(module: nn.Module) -> str:
    """SHA-256 over a module's state dict (names, dtypes, shapes and bytes, in key order)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def dataset_fingerprint(data: Any, max_samples: int = 64) -> str:
    """A cheap fingerprint of a :class:`~skelrobust.data.SkeletonDataset`: identity, labels, ids and a strided
    sample of the coordinates (hashing a whole NTU split would take minutes)."""
    digest = hashlib.sha256()
    digest.update(f"{getattr(data, 'name', '')}|{getattr(data, 'split', '')}|{tuple(data.data.shape)}|".encode())
    digest.update(np.ascontiguousarray(data.labels, dtype=np.int64).tobytes())
    digest.update("\n".join(map(str, getattr(data, "sample_ids", []))).encode())
    n = data.data.shape[0]
    for i in np.unique(np.linspace(0, n - 1, num=min(n, max_samples)).astype(np.int64)):
        digest.update(np.ascontiguousarray(data.data[i], dtype=np.float32).tobytes())
    return digest.hexdigest()


@torch.inference_mode()
def surrogate_logits(
    model: nn.Module, data: Any, device: torch.device | str, batch_size: int = 64, progress: bool = True
) -> torch.Tensor:
    """``(N, C)`` float32 logits of ``model`` over a dataset's samples, computed once, on the CPU."""
    model.eval()
    n = data.data.shape[0]
    out = []
    for start in tqdm(range(0, n, batch_size), desc="TASAR surrogate logits", disable=not progress, leave=False):
        x = torch.from_numpy(np.array(data.data[start : start + batch_size], dtype=np.float32))
        out.append(model(x.to(device)).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


def post_train(
    model: nn.Module,
    train_data: Any,
    config: HeadConfig = HeadConfig(),
    device: torch.device | str = "cpu",
    cache: bool = True,
    progress: bool = True,
) -> HeadPosterior:
    """Post-train TASAR's heads for ``model`` on ``train_data``, reusing a cached artefact when one matches.

    The cache key is the SHA-256 of the surrogate's state dict, the head configuration and
    :func:`dataset_fingerprint`; the artefact is a ``torch.save`` of plain tensors and types, written
    atomically and read back with ``weights_only=True``.
    """
    key_src = f"v{HEADS_VERSION}|{state_dict_sha256(model)}|{sorted(asdict(config).items())}|{dataset_fingerprint(train_data)}"
    key = hashlib.sha256(key_src.encode()).hexdigest()[:32]
    path = cache_dir("tasar", "heads") / f"{key}.pt"
    if cache and path.exists():
        try:
            posterior = HeadPosterior.from_state_dict(torch.load(path, map_location="cpu", weights_only=True), str(path))
            log.info("TASAR heads loaded from %s", path)
            warn_if_collapsed(posterior)
            return posterior.to(device)
        except (CheckpointError, RuntimeError, OSError, EOFError) as exc:
            log.warning("TASAR heads cache %s unreadable (%s); post-training again", path, exc)
    features = surrogate_logits(model, train_data, device, progress=progress)
    labels = torch.as_tensor(np.asarray(train_data.labels), dtype=torch.long)
    start = time.perf_counter()
    posterior = train_heads(features, labels, config, progress=progress)
    posterior.stats["heads_seconds"] = time.perf_counter() - start
    diagnostics = posterior_diagnostics(posterior, features, labels, seed=config.seed)
    diagnostics["scope"] = "training split (the data the attacker has)"
    posterior.stats["diagnostics"] = diagnostics
    posterior.stats["cache_key"] = key
    posterior.stats["cache_path"] = str(path) if cache else None
    if cache:
        with atomic_path(path) as tmp:
            torch.save(posterior.state_dict(), tmp)
        log.info("TASAR heads cached at %s", path)
    warn_if_collapsed(posterior)
    return posterior.to(device)


def warn_if_collapsed(posterior: HeadPosterior) -> bool:
    """Log a warning (stderr) when the recorded diagnostics say the posterior collapsed; return the flag."""
    diag = posterior.stats.get("diagnostics") or {}
    if diag.get("collapsed"):
        log.warning(
            "TASAR posterior collapsed (%s): dL/dlogit cosine %.4f, SWAG relative std %s; the Bayesian gradient is "
            "one head's gradient. More post-training steps (head_steps) or a larger scale widen it.",
            diag.get("collapse_rule"), diag.get("dlogit_cosine_mean", float("nan")),
            ", ".join(f"{v:.3f}" for v in diag.get("swag_relative_std", [])),
        )
    return bool(diag.get("collapsed"))

