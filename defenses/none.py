"""``none``: the undefended victim, the reference row of every transfer matrix."""

from __future__ import annotations

from skelrobust.defense import Defense, DefenseKind, register_defense
from skelrobust.victim import Victim


@register_defense("none")
class NoDefense(Defense):
    """No defense: the victim as it is (``wrap`` returns the same object)."""

    kind = DefenseKind.NONE

    def wrap(self, victim: Victim) -> Victim:
        return victim
