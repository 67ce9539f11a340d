"""Training recipes beyond plain supervised training.

- :class:`TrainingRecipe` (:mod:`.base`): what a ``skelrobust train`` step minimises and what selects the kept
  weights (clean cross-entropy by default); :func:`create_recipe` (:mod:`.hardening`): the recipe of a
  hardening defense (``pgd-at``, ``trades``, ``gaussian-noise``).
- :func:`pretrain_moco` (:mod:`.moco`): SkeletonCLR-style MoCo pretraining without labels; :class:`Embedding`
  and :func:`load_embedding` turn its encoder into ``canonical tensor -> (N, D)`` features.
- :func:`linear_eval` (:mod:`.linear_eval`): the frozen-encoder linear-evaluation protocol.
"""

from .base import TrainingRecipe
from .hardening import create_recipe
from .linear_eval import LinearEvalConfig, linear_eval
from .moco import Embedding, MocoConfig, MocoResult, load_embedding, pretrain_moco

__all__ = [
    "Embedding", "LinearEvalConfig", "MocoConfig", "MocoResult", "TrainingRecipe", "create_recipe", "linear_eval",
    "load_embedding", "pretrain_moco",
]
