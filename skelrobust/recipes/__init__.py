"""Training recipes beyond plain supervised training.

- :func:`pretrain_moco` (:mod:`.moco`): SkeletonCLR-style MoCo pretraining without labels; :class:`Embedding`
  and :func:`load_embedding` turn its encoder into ``canonical tensor -> (N, D)`` features.
- :func:`linear_eval` (:mod:`.linear_eval`): the frozen-encoder linear-evaluation protocol.
"""

from .linear_eval import LinearEvalConfig, linear_eval
from .moco import Embedding, MocoConfig, MocoResult, load_embedding, pretrain_moco

__all__ = ["Embedding", "LinearEvalConfig", "MocoConfig", "MocoResult", "linear_eval", "load_embedding", "pretrain_moco"]
