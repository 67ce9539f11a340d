"""``skelrobust report``: a grid's report as markdown and self-contained HTML."""

from __future__ import annotations

import click

from .main import main


@main.command("report")
@click.argument("grid_dir", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Report folder (report.md, report.html, figures/).")
@click.option("--no-animations", is_flag=True, help="Skip the example animations (faster).")
@click.option("--frames", type=click.IntRange(min=1), default=40, show_default=True, help="Frames per example animation (at most).")
def report_command(grid_dir: str, out: str, no_animations: bool, frames: int) -> None:
    """Write report.md and a self-contained report.html for the grid in GRID_DIR.

    \b
    Example:
      skelrobust report runs/grid --out runs/grid-report
    """
    from ..benchmark.report import write_report

    md, page = write_report(grid_dir, out, animations=not no_animations, max_frames=frames)
    click.echo(f"wrote {md} and {page}")
