"""skelrobust: adversarial robustness of skeleton-based human action recognition.

Canonical tensor: float32 ``(N, C, T, V, M)`` (coordinates, frames, joints, persons) in the dataset's
own units. See ``README.md`` and ``DESIGN`` notes for the architecture.
"""

from .attack import ATTACKS, Attack, AttackOutput, Budget, Constraint, Masks, ThreatModel, create_attack, register_attack
from .constraints import BoneLengthConstraint, SmoothnessConstraint
from .defense import DEFENSES, Defense, create_defense, register_defense
from .data import DATASETS, SkeletonDataset, load_dataset, register_dataset
from .errors import SkelRobustError
from .layouts import LAYOUTS, SkeletonLayout, get_layout, register_layout
from .loading import load_victim
from .metrics import imperceptibility, summarize
from .benchmark import RunConfig, load_results, run_cell
from .version import __version__
from .victim import VICTIMS, Victim, VictimFamily, register_victim


__all__ = [
    "ATTACKS",
    "Attack",
    "AttackOutput",
    "BoneLengthConstraint",
    "Budget",
    "Constraint",
    "DATASETS",
    "DEFENSES",
    "Defense",
    "LAYOUTS",
    "Masks",
    "SkelRobustError",
    "SkeletonDataset",
    "SkeletonLayout",
    "SmoothnessConstraint",
    "ThreatModel",
    "VICTIMS",
    "Victim",
    "VictimFamily",
    "__version__",
    "create_attack",
    "create_defense",
    "get_layout",
    "imperceptibility",
    "load_dataset",
    "load_results",
    "load_victim",
    "RunConfig",
    "run_cell",
    "register_attack",
    "register_dataset",
    "register_defense",
    "register_layout",
    "register_victim",
    "summarize",
]
