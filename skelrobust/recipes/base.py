"""What a training recipe is: the per-batch loss and the validation score used for model selection.

``skelrobust train`` runs one loop (:func:`skelrobust.training.train_victim`: data order, optimiser,
schedule, checkpoints, resume); a recipe decides what each step minimises and which validation number
selects ``best.pt``. The clean recipe is cross-entropy on the batch, selected by clean validation accuracy.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..data import SkeletonDataset
from ..victim import Victim


class TrainingRecipe:
    """Plain supervised training (cross-entropy), model selection by clean validation accuracy.

    Subclasses override :meth:`loss` (what a step minimises) and, where selection is not by clean
    accuracy, :meth:`validate`. :meth:`config` is recorded in ``metadata.json`` and must match on resume.
    """

    name: ClassVar[str] = "clean"
    #: Key of :meth:`validate`'s result that selects ``best.pt`` (higher is better).
    selection: ClassVar[str] = "val_accuracy"

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.label_smoothing = float(label_smoothing)

    def loss(self, victim: Victim, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, logits on the clean batch)`` for one step; ``victim`` is in train mode."""
        logits = victim(x)
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing), logits

    def validate(self, victim: Victim, ds: SkeletonDataset, indices: np.ndarray, batch_size: int) -> dict[str, float]:
        """Validation figures (``val_accuracy`` at least) for the history and model selection."""
        from ..training import evaluate

        return {"val_accuracy": evaluate(victim, ds, batch_size, indices)}

    def config(self) -> dict[str, Any]:
        """Name and parameters (JSON-able)."""
        public = {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "label_smoothing"}
        return {"name": self.name, "selection": self.selection, **public}
