"""``pgd-at`` and ``trades``: hardened weights from adversarial training, evaluated like any victim.

The weights come from ``skelrobust train --defense pgd-at|trades`` (:mod:`skelrobust.recipes.hardening`):
``wrap`` loads the victim architecture's hardened checkpoint, either the shipped one of the lite zoo
(``skelrobust/zoo/hardened.json``) or the file given as ``checkpoint`` (``skelrobust run
--defense-checkpoint pgd-at=PATH``). The adaptive white-box attack is the attack itself on the hardened
weights (nothing stands between the input and the gradients).
"""

from __future__ import annotations

import copy
from pathlib import Path

from skelrobust.checkpoints import load_into
from skelrobust.defense import Defense, DefenseKind, register_defense
from skelrobust.errors import CheckpointError
from skelrobust.victim import Victim
from skelrobust.zoo.hardened import find_hardened, hardened_path


class HardenedWeights(Defense):
    """Base of the adversarial-training defenses: the same architecture with hardened weights.

    Args:
        checkpoint: Hardened weights for the victim (a ``best.pt`` of ``skelrobust train --defense ...``);
            default: the lite zoo's hardened entry for the victim's family, preset, layout and class count.
        dataset: Picks the zoo entry when several datasets share a layout and class count.
    """

    kind = DefenseKind.HARDENED_WEIGHTS

    def __init__(self, checkpoint: str | None = None, dataset: str | None = None) -> None:
        self.checkpoint = str(Path(checkpoint).expanduser()) if checkpoint is not None else None
        self.dataset = dataset

    def checkpoint_for(self, victim: Victim) -> Path:
        """The hardened checkpoint for ``victim`` (given, else from the zoo)."""
        if self.checkpoint is not None:
            return Path(self.checkpoint)
        entry = find_hardened(victim.name, victim.preset, victim.layout.name, victim.num_classes, self.name, self.dataset)
        if entry is None:
            raise CheckpointError(
                f"no hardened {self.name} checkpoint of {victim.name} ({victim.preset}, {victim.layout.name}, {victim.num_classes} classes) "
                f"in the zoo; train one with `skelrobust train --defense {self.name}` and pass --defense-checkpoint {self.name}=PATH"
            )
        return hardened_path(entry)

    def wrap(self, victim: Victim) -> Victim:
        """A copy of ``victim`` carrying the hardened weights (the undefended victim is left unchanged)."""
        path = self.checkpoint_for(victim)
        network = copy.deepcopy(victim.network)
        digest = load_into(network, path)
        hardened = Victim(
            network, layout=victim.layout, num_classes=victim.num_classes, adapter=victim.adapter, name=f"{victim.name}+{self.name}",
            preset=victim.preset, config={**victim.config, "defense": self.config()}, checkpoint=str(path),
            checkpoint_sha256=digest, num_persons=victim.num_persons,
        )
        return hardened.train(victim.training)

    def adaptive_model(self, victim: Victim) -> tuple[Victim, str]:
        return self.wrap(victim), "white-box on the hardened weights"


@register_defense("pgd-at")
class PGDAdversarialTraining(HardenedWeights):
    """PGD adversarial training: weights trained on PGD examples within the budget."""

    paper = "Madry et al., ICLR 2018 (arXiv 1706.06083)"


@register_defense("trades")
class TRADESTraining(HardenedWeights):
    """TRADES: weights trained on CE + beta * KL(f(x) || f(x')) with KL-maximising x' (beta 6)."""

    paper = "Zhang et al., ICML 2019 (arXiv 1901.08573)"
