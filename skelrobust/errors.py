"""Exception and warning hierarchy.

Every error a user can cause derives from :class:`SkelRobustError`; the CLI turns those into one line and a
non-zero exit code, without a traceback. Messages name the offending file, sample or field and say what was
expected.
"""

from __future__ import annotations


class SkelRobustError(Exception):
    """Base class of every error skelrobust raises on purpose."""


class RegistryError(SkelRobustError, KeyError):
    """Unknown or duplicate plugin name."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(SkelRobustError, ValueError):
    """A bad option, argument or configuration value."""


class DataError(SkelRobustError, ValueError):
    """A dataset file or sample does not have the expected format or content."""


class DatasetNotPreparedError(SkelRobustError, FileNotFoundError):
    """A real dataset was asked for before `skelrobust data prepare` produced it."""


class CheckpointError(SkelRobustError, ValueError):
    """A checkpoint cannot be loaded into the requested network."""


class LayoutMismatchError(SkelRobustError, ValueError):
    """Input tensor, dataset and victim disagree on the skeleton layout or class count."""


class UnsupportedError(SkelRobustError, ValueError):
    """A plugin was asked for something it does not support (e.g. a targeted mode)."""


class ThreatModelError(SkelRobustError, PermissionError):
    """An attack tried to use access its declared threat model does not grant."""


class BudgetViolationError(SkelRobustError, AssertionError):
    """An adversarial example left its budget or mask (a bug in an attack)."""


class MissingDependencyError(SkelRobustError, ImportError):
    """An optional dependency is needed for the requested feature."""


class SkelRobustWarning(UserWarning):
    """Base class of skelrobust's warnings."""
