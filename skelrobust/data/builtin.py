"""Imports every built-in dataset module so that each registers its :class:`DatasetSpec`."""

from skelrobust.registry import import_submodules

import_submodules("skelrobust.data.formats")
