"""``skelrobust benchmark``: run (or resume) the grid of a protocol into one folder."""

from __future__ import annotations

import click

from ..errors import ConfigError
from .main import main


def parse_only(texts: tuple[str, ...]) -> dict[str, list[str]]:
    """``--only attack=pgd,mifgsm --only victim=stgcn`` -> ``{"attack": ["pgd", "mifgsm"], "victim": ["stgcn"]}``."""
    only: dict[str, list[str]] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        values = [v.strip() for v in value.split(",") if v.strip()]
        if not sep or not key.strip() or not values:
            raise ConfigError(f"--only expects KEY=VALUE[,VALUE...], got {text!r}")
        only.setdefault(key.strip(), []).extend(values)
    return only


@main.command("benchmark")
@click.argument("protocol", required=False, type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(), help="Grid folder (results table, leaderboard, one run folder per adversarial set).")
@click.option("--only", "only", multiple=True, metavar="KEY=VALUE[,VALUE]", help="Run a slice (repeatable): dataset, attack, surrogate, budget, victim or defense.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True, help="Run sets in this process, or as Ray tasks (pip install 'skelrobust[ray]').")
@click.option("--ray-address", default=None, help="Ray cluster to join (e.g. ray://head:10001, auto); default: start a local one.")
@click.option("--ray-cpus", type=int, default=None, help="CPUs of the local Ray cluster (default: all).")
@click.option("--task-cpus", type=int, default=1, show_default=True, help="CPUs each Ray task declares (and the torch threads it uses).")
@click.option("--task-gpus", type=float, default=0, show_default=True, help="GPUs each Ray task declares (1 with device: cuda).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def benchmark_command(protocol: str | None, output: str, only: tuple[str, ...], executor: str, ray_address: str | None,
                      ray_cpus: int | None, task_cpus: int, task_gpus: float, quiet: bool) -> None:
    """Run the grid of PROTOCOL (default: the packaged benchmark.yaml) into --output.

    Each adversarial set is made once per (dataset, attack, surrogate, budget) and evaluated on every
    victim x defense. Finished cells are kept; rerunning the command resumes. Exits 2 when cells failed
    (their errors are in the results table).

    \b
    Example:
      skelrobust benchmark grid.yaml --output runs/grid
      skelrobust benchmark --only dataset=synthetic --only attack=pgd --output runs/standard
    """
    from ..benchmark import load_protocol, run_grid
    from ..benchmark.executors import make_executor

    plan = load_protocol(protocol)
    runner = make_executor(executor, progress=not quiet, address=ray_address, num_cpus=ray_cpus, task_cpus=task_cpus, task_gpus=task_gpus)
    report = run_grid(plan, output, only=parse_only(only), executor=runner, progress=not quiet)
    click.echo(f"{plan.name}: {report.cells_total} cells ({report.cells_run} run now, {report.cells_skipped} already finished) "
               f"in {report.wall_seconds:.1f} s; results: {output}")
    if report.failed:
        click.echo(f"Error: {len(report.failed)} cell(s) failed: " + "; ".join(report.failed), err=True)
        raise SystemExit(2)
