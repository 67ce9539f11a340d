"""The root click group. User errors become one line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

import logging
from typing import Any

import click

from ..errors import SkelRobustError
from ..version import __version__


class SkelRobustGroup(click.Group):
    """A click group that reports :class:`SkelRobustError` as a one-line usage error."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SkelRobustError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=SkelRobustGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="skelrobust")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Measure and improve the adversarial robustness of skeleton-based action recognisers."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def echo_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (for ``--json`` flags)."""
    import json

    from ..io import _json_default

    click.echo(json.dumps(obj, indent=2, default=_json_default))
