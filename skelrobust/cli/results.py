"""``skelrobust results``: print a grid's results table."""

from __future__ import annotations

import click

from .main import main


@main.command("results")
@click.argument("grid_dir", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "json"]), default="markdown", show_default=True, help="Output format.")
@click.option("--leaderboard", "board", is_flag=True, help="Print the leaderboard (worst case over attacks) instead.")
def results_command(grid_dir: str, fmt: str, board: bool) -> None:
    """Print the results table of GRID_DIR (a row per dataset, attack, surrogate, budget, victim, defense).

    \b
    Example:
      skelrobust results runs/grid --format csv > results.csv
    """
    from ..benchmark import load_leaderboard, load_results
    from ..benchmark.table import to_markdown

    frame = load_leaderboard(grid_dir) if board else load_results(grid_dir)
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(frame.to_json(orient="records", indent=2))
    else:
        click.echo(to_markdown(frame))
