"""The root click group. User errors become one line on stderr and a non-zero exit, no traceback.

Exit codes (the README's table; scripts rely on them):

=====  ==========================================================================================
0      success
1      bad input: an argument click rejects, a bad option value, a missing or damaged file, a
       dataset or checkpoint that does not fit; one line on stderr says what and where
2      ``skelrobust run`` finished and wrote every output, but some victim x defense cells failed
       to evaluate (each carries an ``error`` in results.json)
130    interrupted (Ctrl-C); rerunning the same command resumes from the finished work
=====  ==========================================================================================
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from ..errors import SkelRobustError
from ..version import __version__

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_FAILED_CELLS = 2
EXIT_INTERRUPTED = 130


class SkelRobustGroup(click.Group):
    """A click group that reports every user error as one line and exits with the codes above."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SkelRobustError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            # The file system refused (permission, disk full, a path through a file): name the path.
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from exc

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Run the CLI; in standalone mode map click's outcomes onto the exit codes of the module docstring."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.ClickException as exc:  # usage errors (click's own exit code 2) and SkelRobustError alike
            exc.show()
            sys.exit(EXIT_BAD_INPUT)
        except click.Abort:  # Ctrl-C (click turns KeyboardInterrupt into Abort)
            click.echo("\nInterrupted. Rerun the same command to resume: finished work in its output folder is kept.", err=True)
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


@click.group(cls=SkelRobustGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="skelrobust")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Measure and improve the adversarial robustness of skeleton-based action recognisers."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def parse_assignment(text: str, flag: str) -> tuple[str, Any]:
    """``key=value`` with the value parsed as YAML (``3`` -> int, ``false`` -> bool, ``[1, 2]`` -> list)."""
    import yaml

    from ..errors import ConfigError

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{flag} expects KEY=VALUE, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"{flag} {text!r}: cannot parse the value ({exc.__class__.__name__})") from exc
    return key.strip(), value


def parse_assignments(texts: tuple[str, ...], flag: str) -> dict[str, Any]:
    """Repeated ``KEY=VALUE`` flags as a dict (see :func:`parse_assignment`)."""
    return dict(parse_assignment(text, flag) for text in texts)


def dataset_options(texts: tuple[str, ...]) -> dict[str, Any]:
    """The ``--dataset-option KEY=VALUE`` flags as loader options (e.g. ``benchmark=xview`` for NTU)."""
    return parse_assignments(texts, "--dataset-option")


#: ``--dataset-option``, shared by every command that loads a dataset.
dataset_option = click.option(
    "--dataset-option", "dataset_option_texts", multiple=True, metavar="KEY=VALUE",
    help="Dataset loader option (repeatable), e.g. benchmark=xview for ntu60.",
)


def echo_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (for ``--json`` flags)."""
    import json

    from ..io import _json_default

    click.echo(json.dumps(obj, indent=2, default=_json_default))
