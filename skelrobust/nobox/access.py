"""What the runner grants a hard no-box attack: the clean samples, unlabelled, and nothing else.

Threat model (Lu et al., ICCV 2023, Table 1): no victim parameters, no queries, no training samples, no
labels. The runner therefore

- refuses ``--surrogate`` (no model), ``--targeted`` (targets come from labels) and ``--selection correct``
  (choosing samples by a model's correctness uses a model and the labels), each in one line;
- attacks the first ``n_samples`` of the seeded test permutation, filtered by nothing (``selection="all"``),
  and judges fooling on every attacked sample;
- hands :meth:`Attack.prepare` an :class:`UnlabelledSamples`: the samples the attacker may learn its manifold
  on, without labels. Which samples is the attack's ``manifold_split``: ``attack`` (default: the clean attack
  set itself, exactly what a hard no-box attacker holds; with the whole test split as attack set this is the
  paper's setting), ``test`` (the whole test split, unlabelled: the paper trains its encoder "on the testing
  set"), or ``train`` (the training split, unlabelled: the released code's pre-training options; this gives
  the attacker training samples, outside the paper's threat model, and is recorded as such).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..attack import Attack, ThreatModel
from ..errors import ConfigError, ThreatModelError

if TYPE_CHECKING:
    from ..data import SkeletonDataset
    from ..benchmark.cell_config import RunConfig

#: Where the attacker's unlabelled manifold samples come from (see the module docstring).
MANIFOLD_SPLITS = ("attack", "test", "train")


@dataclass(frozen=True)
class UnlabelledSamples:
    """Clean samples without labels: what a hard no-box attacker may learn from.

    Attributes:
        data: ``(N, C, T, V, M)`` float32 clean samples.
        sample_ids: Their dataset ids.
        split: ``attack``, ``test`` or ``train`` (:data:`MANIFOLD_SPLITS`).
        dataset: Dataset name (recorded).
    """

    data: np.ndarray
    sample_ids: list[str]
    split: str
    dataset: str

    def __post_init__(self) -> None:
        if self.split not in MANIFOLD_SPLITS:
            raise ConfigError(f"manifold split must be one of {', '.join(MANIFOLD_SPLITS)}, got {self.split!r}")
        if self.data.ndim != 5:
            raise ConfigError(f"unlabelled samples must be (N, C, T, V, M), got shape {tuple(self.data.shape)}")
        if len(self.sample_ids) != self.data.shape[0]:
            raise ConfigError(f"{len(self.sample_ids)} sample ids for {self.data.shape[0]} unlabelled samples")

    def __len__(self) -> int:
        return int(self.data.shape[0])


def hard_no_box_config(cfg: "RunConfig", attack: Attack) -> "RunConfig":
    """``cfg`` with the attack-set rule of a hard no-box attack (``all``); refuses access such an attack lacks.

    Other threat models get ``cfg`` unchanged (their selection default is the runner's).

    Raises:
        ThreatModelError: a surrogate, targeted mode or correctness-filtered selection for a hard no-box attack.
    """
    if attack.threat is not ThreatModel.HARD_NO_BOX:
        return cfg
    name = cfg.attack
    if cfg.surrogate is not None:
        raise ThreatModelError(f"attack {name!r} is hard no-box: it gets no model, so --surrogate {cfg.surrogate} is refused")
    if cfg.targeted:
        raise ThreatModelError(f"attack {name!r} is hard no-box: it gets no labels, so --targeted (targets come from labels) is refused")
    if cfg.selection == "correct":
        raise ThreatModelError(
            f"attack {name!r} is hard no-box: its attack set is not filtered by a model's correctness; drop --selection correct"
        )
    return replace(cfg, selection="all")


def unlabelled_samples(
    attack: Attack, cfg: "RunConfig", dataset: "SkeletonDataset", clean: np.ndarray, sample_ids: list[str]
) -> UnlabelledSamples:
    """The unlabelled samples of the attack's ``manifold_split`` (default ``attack``: the clean attack set)."""
    split = str(getattr(attack, "manifold_split", "attack"))
    if split == "attack":
        return UnlabelledSamples(np.asarray(clean, dtype=np.float32), list(sample_ids), "attack", cfg.dataset)
    if split == "test":
        return UnlabelledSamples(np.asarray(dataset.data, dtype=np.float32), list(dataset.sample_ids), "test", cfg.dataset)
    if split == "train":
        from ..data import DATASETS, load_dataset

        if "train" not in DATASETS.get(cfg.dataset).splits:
            raise ConfigError(f"manifold_split 'train': dataset {cfg.dataset!r} has no training split")
        train = load_dataset(cfg.dataset, "train", root=cfg.root, **cfg.dataset_options)
        return UnlabelledSamples(np.asarray(train.data, dtype=np.float32), list(train.sample_ids), "train", cfg.dataset)
    raise ConfigError(f"manifold_split must be one of {', '.join(MANIFOLD_SPLITS)}, got {split!r}")

