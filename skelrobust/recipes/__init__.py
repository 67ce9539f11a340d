"""Training recipes for ``skelrobust train``: what a step minimises and what selects the kept weights.

- :class:`TrainingRecipe`: clean cross-entropy (the default).
- :func:`create_recipe`: the recipe of a hardening defense (``pgd-at``, ``trades``, ``gaussian-noise``).
"""

from .base import TrainingRecipe
from .hardening import create_recipe

__all__ = ["TrainingRecipe", "create_recipe"]
