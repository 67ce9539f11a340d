"""``skelrobust run``: one attack, one attack set, evaluated on every victim x defense."""

from __future__ import annotations

from typing import Any

import click

from ..errors import ConfigError
from .main import EXIT_FAILED_CELLS, dataset_option, dataset_options, echo_json, main, parse_assignment, parse_assignments


def split_names(values: tuple[str, ...]) -> list[str]:
    """``("a,b", "c")`` -> ``["a", "b", "c"]`` (repeatable and comma-separated flags)."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


@main.command("run")
@click.option("--attack", "attack", required=True, help="Registered attack name, or module:Class / file.py:Class.")
@click.option("--victim", "victims", multiple=True, required=True, help="Victim(s): NAME[,NAME...] (repeatable); registered or module:factory.")
@click.option("--surrogate", default=None, help="Model the attack gets (white-box / transfer). Default: the first victim (white-box), the protocol's surrogate (transfer).")
@click.option("--dataset", required=True, help="Registered dataset; its test split is attacked.")
@click.option("--root", default=None, type=click.Path(), help="Dataset folder or file (datasets that need one).")
@dataset_option
@click.option("--defense", "defenses", multiple=True, default=("none",), show_default=True, help="Defense(s): NAME[,NAME...] (repeatable).")
@click.option("--defense-option", "defense_options", multiple=True, metavar="NAME.KEY=VALUE", help="Option of one defense, e.g. lowpass.sigma=2.")
@click.option("--defense-checkpoint", "defense_checkpoints", multiple=True, metavar="NAME=PATH", help="Hardened weights of a hardened-weights defense (pgd-at, trades, gaussian-noise); default: the zoo's.")
@click.option("--eps", type=float, default=None, help="Budget in the dataset's units (default: the dataset's protocol budget in benchmark.yaml).")
@click.option("--norm", type=click.Choice(["linf", "l2"]), default=None, help="Budget norm (default linf).")
@click.option("--steps", type=int, default=None, help="Attack iterations (default 200).")
@click.option("--max-queries", type=int, default=None, help="Query attacks: oracle queries per sample (default from benchmark.yaml: 1000).")
@click.option("--n-samples", type=int, default=None, help="Attack-set size (default from benchmark.yaml: 496).")
@click.option("--seed", type=int, default=None, help="Seed of the attack set and of every batch (default 0).")
@click.option("--batch-size", type=int, default=None, help="Samples per batch (default 32).")
@click.option("--device", default=None, help="cpu, cuda, cuda:1... or auto (default from benchmark.yaml: auto, cuda when available).")
@click.option("--targeted/--untargeted", default=None, help="Targeted mode: one random other class per sample, from the seed.")
@click.option("--compat", default=None, help="Attack compatibility mode, e.g. robustbenchhar.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="Extra attack option (repeatable), e.g. random_start=false.")
@click.option("--checkpoint", default=None, type=click.Path(), help="Weights of the single victim (e.g. a custom model).")
@click.option("--preset", default=None, help="Preset of the victim(s) (default: the checkpoint's build record, else benchmark.yaml's for the dataset).")
@click.option("--config", "victim_config", multiple=True, metavar="KEY=VALUE", help="Build option of the victim(s) (repeatable; default: the checkpoint's build record).")
@click.option("--victim-checkpoint", "victim_checkpoints", multiple=True, metavar="NAME=PATH", help="Weights of a named victim or surrogate (repeatable).")
@click.option("--split", default="test", show_default=True, help="Split the attack set is drawn from (train: adversarial sets for train --adversarial-set).")
@click.option("--selection", type=click.Choice(["correct", "all"]), default=None, help="Attack only samples the attacked model gets right, or any (default from benchmark.yaml: correct; hard no-box attacks take all).")
@click.option("--order", type=click.Choice(["seeded", "file"]), default=None, help="Order of candidate test samples: seeded permutation (default) or file order (default with --compat robustbenchhar).")
@click.option("--output", "-o", required=True, type=click.Path(), help="Run folder (results.json, samples.jsonl, adversarial.npz).")
@click.option("--resume/--overwrite", default=True, show_default=True, help="Resume the run in --output, or discard it and start afresh.")
@click.option("--keep-shards", is_flag=True, help="Keep the per-batch shards/ after adversarial.npz is written (they hold the same clips).")
@click.option("--json", "as_json", is_flag=True, help="Print results.json instead of the table.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run_command(
    attack: str, victims: tuple[str, ...], surrogate: str | None, dataset: str, root: str | None,
    dataset_option_texts: tuple[str, ...], defenses: tuple[str, ...], defense_options: tuple[str, ...],
    defense_checkpoints: tuple[str, ...], eps: float | None, norm: str | None, steps: int | None,
    max_queries: int | None, n_samples: int | None, seed: int | None, batch_size: int | None, device: str | None, targeted: bool | None,
    compat: str | None, options: tuple[str, ...], checkpoint: str | None, preset: str | None, victim_config: tuple[str, ...],
    victim_checkpoints: tuple[str, ...],
    split: str, selection: str | None, order: str | None, output: str, resume: bool, keep_shards: bool, as_json: bool, quiet: bool,
) -> None:
    """Attack a dataset's test split and evaluate the adversarial set on every victim x defense.

    Exits 2 (after writing every output) when some victim x defense cells failed to evaluate.

    \b
    Example:
      skelrobust run --attack pgd --victim ctrgcn --surrogate stgcn --dataset synthetic \\
          --n-samples 64 --steps 50 --output runs/pgd-stgcn
    """
    from ..results import failed_cells, format_table
    from ..benchmark.cell_config import RunConfig
    from ..benchmark.cell import run_cell

    victim_names = split_names(victims)
    checkpoints: dict[str, str] = {}
    for text in victim_checkpoints:
        name, sep, path = text.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--victim-checkpoint expects NAME=PATH, got {text!r}")
        checkpoints[name] = path
    if checkpoint is not None:
        if len(victim_names) != 1:
            raise ConfigError("--checkpoint is for a single victim; with several use --victim-checkpoint NAME=PATH")
        checkpoints.setdefault(victim_names[0], checkpoint)
    per_defense: dict[str, dict[str, Any]] = {}
    for text in defense_options:
        key, value = parse_assignment(text, "--defense-option")
        name, dot, option = key.partition(".")
        if not dot or not option:
            raise ConfigError(f"--defense-option expects NAME.KEY=VALUE, got {text!r}")
        per_defense.setdefault(name, {})[option] = value
    for text in defense_checkpoints:
        name, sep, path = text.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--defense-checkpoint expects NAME=PATH, got {text!r}")
        per_defense.setdefault(name, {})["checkpoint"] = path
    cfg = RunConfig(
        attack=attack, victims=victim_names, dataset=dataset, surrogate=surrogate, root=root,
        dataset_options=dataset_options(dataset_option_texts), defenses=split_names(defenses), defense_options=per_defense,
        attack_options=parse_assignments(options, "--option"),
        eps=eps, norm=norm, steps=steps, n_samples=n_samples, seed=seed, batch_size=batch_size, device=device,
        targeted=targeted, compat=compat, checkpoints=checkpoints, selection=selection, order=order,
        victim_preset=preset, victim_config=parse_assignments(victim_config, "--config"),
        max_queries=max_queries, split=split,
    )
    results = run_cell(cfg, output, overwrite=not resume, progress=not quiet, keep_shards=keep_shards)
    if as_json:
        echo_json(results)
    else:
        click.echo(format_table(results))
        from ..adaptive import format_adaptive

        if format_adaptive(results):
            click.echo(format_adaptive(results))
        click.echo(f"results: {output}")
    failed = failed_cells(results)
    if failed:
        # Every output is written; the exit status tells scripts that some cells hold no numbers.
        click.echo(f"Error: evaluation failed for {len(failed)} cell(s): {'; '.join(failed)}", err=True)
        raise SystemExit(EXIT_FAILED_CELLS)
