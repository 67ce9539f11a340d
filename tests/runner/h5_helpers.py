"""Tiny custom victims, attacks and a tiny npz dataset for the runner tests (loaded as ``file.py:attr`` specs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from skelrobust.attack import Attack, AttackContext, ThreatModel

HERE = Path(__file__).resolve().parent
T, V, M = 12, 25, 2
NUM_CLASSES = 4


def spec(attr: str) -> str:
    """``/abs/path/h5_helpers.py:attr``: how the CLI names user code in this file."""
    return f"{HERE / 'h5_helpers.py'}:{attr}"


class FrameNet(nn.Module):
    """Per-frame linear map, temporal mean, linear head: a few thousand parameters on (N, 3, T, 25, 2)."""

    def __init__(self, num_classes: int = NUM_CLASSES, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.num_classes = num_classes
        self.frame = nn.Linear(3 * V * M, 16)
        self.head = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(n, t, c * v * m)
        return self.head(torch.tanh(4 * self.frame(frames)).mean(dim=1))


def victim_a(num_classes: int = NUM_CLASSES) -> nn.Module:
    return FrameNet(num_classes, seed=0)


def victim_b(num_classes: int = NUM_CLASSES) -> nn.Module:
    return FrameNet(num_classes, seed=1)


def make_dataset(path: Path, n: int = 40) -> Path:
    """A generic npz test split whose labels mostly agree with ``victim_a`` (so the attack set is not empty)."""
    from skelrobust.data.formats.npz import save_npz

    g = torch.Generator().manual_seed(123)
    data = torch.randn(n, 3, T, V, M, generator=g) * 0.3
    lengths = torch.randint(T // 2, T + 1, (n,), generator=g)
    for i in range(n):
        data[i, :, int(lengths[i]) :] = 0
    data[::3, :, :, :, 1] = 0  # every third sample has one person only
    with torch.no_grad():
        predicted = victim_a()(data).argmax(dim=1)
    labels = predicted.clone()
    labels[::4] = (labels[::4] + 1) % NUM_CLASSES  # a quarter are misclassified
    return save_npz(
        path, data.numpy(), labels.numpy(), "ntu25", class_names=[f"action{i}" for i in range(NUM_CLASSES)],
        sample_ids=[f"S{i:03d}" for i in range(n)], lengths=lengths.numpy(), units="m",
    )


class SignStep(Attack):
    """Iterative sign-gradient steps from a random start (PGD-like): uses the generator, the model and labels."""

    threat = ThreatModel.WHITE_BOX
    name = "signstep"

    def run(self, ctx: AttackContext) -> torch.Tensor:
        x_adv = ctx.random_start()
        step = 2.5 * float(ctx.budget.eps) / self.steps
        for _ in range(self.steps):
            loss, grad = ctx.objective_and_grad(x_adv)
            x_adv = ctx.project(x_adv + step * grad.sign())
            ctx.iterations += 1
        ctx.final_loss = loss
        return x_adv


class TransferStep(SignStep):
    """The same algorithm declared as a transfer attack needing training data (reports what prepare got)."""

    threat = ThreatModel.TRANSFER
    name = "transferstep"
    needs_training_data = True

    def prepare(self, *, model, train_data, layout, device) -> None:  # type: ignore[override]
        self._prepared = {"model": model.name, "split": train_data.split, "n": len(train_data)}

    def run(self, ctx: AttackContext) -> torch.Tensor:
        ctx.extras["prepared"] = self._prepared
        return super().run(ctx)


class NoBoxNoise(Attack):
    """Hard no-box: random noise in the budget (touching ctx.model or ctx.labels would raise)."""

    threat = ThreatModel.HARD_NO_BOX
    name = "noboxnoise"

    def run(self, ctx: AttackContext) -> torch.Tensor:
        ctx.iterations += 1
        return ctx.random_start()


class QueryRandom(Attack):
    """Query attack: keeps the random candidate with the lowest true-class score (counts queries)."""

    threat = ThreatModel.QUERY
    name = "queryrandom"

    def run(self, ctx: AttackContext) -> torch.Tensor:
        best = ctx.x.clone()
        best_score = ctx.query(best).gather(1, ctx.labels[:, None])[:, 0]
        for _ in range(self.steps):
            cand = ctx.random_start()
            score = ctx.query(cand).gather(1, ctx.labels[:, None])[:, 0]
            better = score < best_score
            best[better], best_score[better] = cand[better], score[better]
            ctx.iterations += 1
        return best


def write_split(folder: Path, split: str, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return make_dataset(folder / f"{split}.npz", n=n)


def array_sha(a: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
