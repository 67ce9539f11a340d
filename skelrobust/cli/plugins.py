"""``skelrobust attacks`` and ``skelrobust defenses``: list the registered attack and defense plugins."""

from __future__ import annotations

import click

from ..attack import ATTACKS
from ..defense import DEFENSES
from ..registry import Registry
from .main import echo_json, main


def _list(registry: Registry, as_json: bool) -> None:
    entries = [{"name": e.name, **e.metadata} for e in registry.entries()]
    if as_json:
        echo_json(entries)
        return
    for entry in entries:
        details = "  ".join(f"{k}={v}" for k, v in entry.items() if k != "name")
        click.echo(f"{entry['name']:<12} {details}")


@main.command("attacks")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def attacks_command(as_json: bool) -> None:
    """List registered attacks with their threat model and paper."""
    _list(ATTACKS, as_json)


@main.command("defenses")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def defenses_command(as_json: bool) -> None:
    """List registered defenses."""
    _list(DEFENSES, as_json)
