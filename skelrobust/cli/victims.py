"""``skelrobust victims``, ``skelrobust train`` and ``skelrobust eval``: list, train and evaluate recognisers."""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click

from .hardening import hardening_options, train_with_defense
from .main import dataset_option, dataset_options, echo_json, main, parse_assignments


def _device(name: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything else as given."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


_victim_option = click.option(
    "--victim", required=True, help="Registered victim (see `skelrobust victims`) or user code pkg.mod:factory / file.py:factory."
)
_config_option = click.option("--config", "config", multiple=True, metavar="KEY=VALUE", help="Architecture option override (repeatable).")
_device_option = click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1... or auto.")


@main.command("victims")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def victims_command(as_json: bool) -> None:
    """List registered victims and the pretrained zoo."""
    from .. import zoo
    from ..victim import VICTIMS

    families = [
        {
            "name": e.name,
            "presets": list(e.obj.presets),
            "layouts": list(e.obj.layouts),
            "description": e.obj.description,
            "paper": e.obj.paper,
            "checkpoint_formats": list(e.obj.extra.get("checkpoint_formats", ["state dict with the official names (bare, or under state_dict/model; module. stripped)"])),
        }
        for e in VICTIMS.entries()
    ]
    pretrained = [
        {k: entry.get(k) for k in ("victim", "dataset", "preset", "test_accuracy", "num_parameters", "file", "sha256")}
        for entry in zoo.entries()
    ]
    if as_json:
        echo_json({"victims": families, "pretrained": pretrained})
        return
    for fam in families:
        click.echo(f"{fam['name']:<14} presets: {', '.join(fam['presets'])}; layouts: {', '.join(fam['layouts'])}")
        if fam["description"]:
            click.echo(f"{'':14} {fam['description']}")
        if fam["paper"]:
            click.echo(f"{'':14} {fam['paper']}")
    click.echo("")
    click.echo("pretrained (shipped):" if pretrained else "pretrained (shipped): none")
    for entry in pretrained:
        acc = "?" if entry["test_accuracy"] is None else f"{entry['test_accuracy'] * 100:.1f} %"
        click.echo(
            f"  {entry['victim']:<12} {entry['dataset']:<12} {entry['preset']:<6} test accuracy {acc}"
            f"  ({entry['num_parameters']} parameters)"
        )


@main.command("train")
@_victim_option
@click.option("--dataset", required=True, help="Registered dataset to train on (its train split; test is evaluated once at the end).")
@click.option("--preset", default=None, help="Victim preset (default: benchmark.yaml's preset for the dataset).")
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=0.05, show_default=True, type=float, help="Peak learning rate (cosine schedule).")
@click.option("--optimizer", type=click.Choice(["sgd", "adamw"]), default="sgd", show_default=True, help="SGD = momentum 0.9, Nesterov.")
@click.option("--weight-decay", default=5e-4, show_default=True, type=float)
@click.option("--warmup-epochs", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--label-smoothing", default=0.0, show_default=True, type=float)
@click.option("--rotate", "rotate_deg", default=0.0, show_default=True, type=float, help="Augmentation: max random yaw, degrees.")
@click.option("--scale", default=0.0, show_default=True, type=float, help="Augmentation: max relative scale change.")
@click.option("--val-fraction", default=0.1, show_default=True, type=float, help="Share of TRAIN held out for model selection.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--checkpoint", default=None, type=click.Path(dir_okay=False), help="Initial weights (fine-tuning).")
@click.option("--root", default=None, type=click.Path(), help="Dataset folder or file, for datasets that need one.")
@dataset_option
@_config_option
@_device_option
@click.option("--threads", default=None, type=click.IntRange(min=1), help="torch CPU threads (default: torch's choice).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder (rerunning the same command resumes).")
@click.option("--linear-eval", is_flag=True, help="Train only the head of a self-supervised victim on the frozen --encoder (defaults: 100 epochs, lr 3.0 /10 at epoch 80, batch 128, no weight decay).")
@click.option("--encoder", default=None, type=click.Path(dir_okay=False), help="Pretraining checkpoint for --linear-eval (skelrobust pretrain or an official pretext file).")
@click.option("--lr-step", "lr_steps", multiple=True, type=int, help="--linear-eval only: epoch (0-based) where lr /= 10, repeatable (default 80).")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
@hardening_options
def train_command(
    victim: str,
    dataset: str,
    preset: str | None,
    epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str,
    weight_decay: float,
    warmup_epochs: int,
    label_smoothing: float,
    rotate_deg: float,
    scale: float,
    val_fraction: float,
    seed: int,
    checkpoint: str | None,
    root: str | None,
    dataset_option_texts: tuple[str, ...],
    config: tuple[str, ...],
    device: str,
    threads: int | None,
    out: str,
    linear_eval: bool,
    encoder: str | None,
    lr_steps: tuple[int, ...],
    as_json: bool,
    **hardening: Any,
) -> None:
    """Train a victim; writes OUT/best.pt, OUT/last.pt and OUT/metadata.json."""
    import torch

    from ..errors import ConfigError
    from ..training import TrainConfig

    if threads is not None:
        torch.set_num_threads(threads)
    if linear_eval or encoder is not None:
        from .linear_eval import run_linear_eval

        run_linear_eval(click.get_current_context())
        return
    if lr_steps:
        raise ConfigError("--lr-step sets the step schedule of --linear-eval; supervised training follows a cosine schedule")
    cfg = TrainConfig(
        victim=victim, dataset=dataset, preset=preset, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
        weight_decay=weight_decay, warmup_epochs=warmup_epochs, label_smoothing=label_smoothing, rotate_deg=rotate_deg,
        scale=scale, val_fraction=val_fraction, seed=seed, init_checkpoint=checkpoint, root=root,
        dataset_options=dataset_options(dataset_option_texts), build_config=parse_assignments(config, "--config"),
    )
    command = shlex.join(["skelrobust", *sys.argv[1:]])
    meta = train_with_defense(cfg, hardening, out, device=_device(device), command=command)
    if as_json:
        echo_json(meta)
    else:
        click.echo(
            f"{meta['victim']} ({meta['preset']}) on {meta['dataset']}: val {meta['val_accuracy'] * 100:.2f} % "
            f"(epoch {meta['best_epoch']}), test {_test_accuracy(meta)}, {meta['num_parameters']} parameters, "
            f"{meta['train_seconds']:.0f} s -> {out}"
        )


def _test_accuracy(meta: dict) -> str:
    """The test accuracy as printed; a split with no clip held out from training has none."""
    if meta["test_accuracy"] is None:
        return "n/a (every test clip is also a training clip)"
    return f"{meta['test_accuracy'] * 100:.2f} %"


@main.command("eval")
@_victim_option
@click.option("--dataset", required=True, help="Registered dataset.")
@click.option("--checkpoint", default=None, type=click.Path(dir_okay=False), help="Weights (default: the shipped zoo entry).")
@click.option("--preset", default=None, help="Victim preset (default: benchmark.yaml's preset for the dataset).")
@click.option("--split", default="test", show_default=True)
@click.option("--root", default=None, type=click.Path(), help="Dataset folder or file, for datasets that need one.")
@dataset_option
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@_config_option
@_device_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def eval_command(
    victim: str,
    dataset: str,
    checkpoint: str | None,
    preset: str | None,
    split: str,
    root: str | None,
    dataset_option_texts: tuple[str, ...],
    batch_size: int,
    config: tuple[str, ...],
    device: str,
    as_json: bool,
) -> None:
    """Clean top-1 accuracy of a victim on a dataset split."""
    from ..data import load_dataset
    from ..loading import load_victim
    from ..training import evaluate

    model = load_victim(
        victim, checkpoint=checkpoint, dataset=dataset, preset=preset, root=root, device=_device(device), **parse_assignments(config, "--config")
    )
    ds = load_dataset(dataset, split, root=root, **dataset_options(dataset_option_texts))
    accuracy = evaluate(model, ds, batch_size)
    result = {
        "victim": victim,
        "preset": model.preset,
        "dataset": dataset,
        "split": split,
        "n": len(ds),
        "accuracy": accuracy,
        "checkpoint": model.checkpoint,
        "checkpoint_sha256": model.checkpoint_sha256,
    }
    if as_json:
        echo_json(result)
    else:
        click.echo(f"{victim} ({model.preset}) on {dataset}/{split}: {accuracy * 100:.2f} % of {len(ds)}")
