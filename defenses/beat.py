"""``beat``: BEAT's Bayesian energy-based heads over the victim (Wang, Diao et al., AAAI 2023).

The heads come from ``skelrobust train --defense beat --checkpoint BASE.pt`` (:mod:`skelrobust.recipes.beat`)
and are given as the ``heads`` option (``skelrobust run --defense beat --defense-option beat.heads=PATH``, or
``--defense-checkpoint beat=PATH``). They were post-trained over one base classifier, whose state-dict
SHA-256 they record: wrapping any other weights is refused. The prediction is the Bayesian model average
over the heads (summed logits). The adaptive attack differentiates the whole ensemble: with the posterior
samples fixed, that is the exact expectation over them (EOT over all M heads at every step).
"""

from __future__ import annotations

from pathlib import Path

from skelrobust.bayesian_heads import state_dict_sha256
from skelrobust.defense import Defense, DefenseKind, register_defense
from skelrobust.errors import CheckpointError, ConfigError
from skelrobust.recipes.beat import BeatEnsemble, read_heads
from skelrobust.victim import Victim


@register_defense("beat")
class BEAT(Defense):
    """BEAT: Bayesian energy-based heads over a frozen classifier, predictions averaged over the heads.

    Args:
        heads: The ``beat_heads.pt`` of ``skelrobust train --defense beat`` (required).
        checkpoint: Alias of ``heads`` (so ``--defense-checkpoint beat=PATH`` works).
    """

    kind = DefenseKind.BAYESIAN_ENSEMBLE
    paper = "Wang, Diao, Tan and Guo, AAAI 2023 (arXiv 2203.04713)"

    def __init__(self, heads: str | None = None, checkpoint: str | None = None) -> None:
        path = heads if heads is not None else checkpoint
        if path is None:
            raise ConfigError("beat: pass its heads file (--defense-checkpoint beat=OUT/beat_heads.pt from `skelrobust train --defense beat`)")
        self.heads = str(Path(path).expanduser())

    def wrap(self, victim: Victim) -> Victim:
        state = read_heads(self.heads, victim.num_classes)
        digest = state_dict_sha256(victim.network)
        if state["base_sha256"] != digest:
            raise CheckpointError(
                f"beat: heads {self.heads} were post-trained over other base weights (sha256 {state['base_sha256'][:12]}..., "
                f"victim {victim.name!r} has {digest[:12]}...); load the base they were trained over"
            )
        ensemble = Victim(
            BeatEnsemble(victim, state["heads"].float()), layout=victim.layout, num_classes=victim.num_classes,
            name=f"{victim.name}+beat", preset=victim.preset, config={**victim.config, "defense": self.config()},
            checkpoint=victim.checkpoint, checkpoint_sha256=victim.checkpoint_sha256, num_persons=victim.num_persons,
        )
        return ensemble.train(victim.training)

    def adaptive_model(self, victim: Victim) -> tuple[Victim, str]:
        return self.wrap(victim), "gradients through all heads (exact EOT over the posterior samples)"
