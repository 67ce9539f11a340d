"""The ``skelrobust`` command line.

:data:`main` is the click group. Each command lives in its own module of this package and attaches itself
to the group on import (``@main.command()``); every module here is imported when the CLI starts.
"""

from __future__ import annotations

from skelrobust.registry import import_submodules

from .main import main

import_submodules(__name__)

__all__ = ["main"]
