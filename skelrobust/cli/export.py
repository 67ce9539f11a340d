"""``skelrobust export``: a run's adversarial set in the formats other projects' training code reads."""

from __future__ import annotations

import click

from ..export import FORMATS
from .main import echo_json, main


@main.command("export")
@click.argument("run_dir", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="Output format (see skelrobust.export).")
@click.option("--out", required=True, type=click.Path(), help="Output file (robustbenchhar: a folder for classTrain.npz, or an .npz name).")
@click.option("--include-clean", is_flag=True, help="Also export the clean clips.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def export_command(run_dir: str, fmt: str, out: str, include_clean: bool, as_json: bool) -> None:
    """Export the adversarial clips of RUN_DIR with true labels, sample ids, attack config and checksums.

    \b
    Example:
      skelrobust export runs/pgd-stgcn --format ctrgcn-npz --out adv_ntu.npz --include-clean
    """
    from ..export import export_run

    summary = export_run(run_dir, fmt, out, include_clean=include_clean)
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"wrote {summary['n']} adversarial clips{' and their clean originals' if include_clean else ''} "
                   f"as {fmt} to {summary['path']}")
