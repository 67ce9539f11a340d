"""``skelrobust pretrain``: self-supervised pretraining of a victim's encoder on a dataset split, without labels."""

from __future__ import annotations

import shlex
import sys

import click

from .main import dataset_option, dataset_options, echo_json, main, parse_assignments


@main.command("pretrain")
@click.option("--method", type=click.Choice(["moco"]), default="moco", show_default=True, help="moco = SkeletonCLR-style MoCo v2.")
@click.option("--victim", required=True, help="Self-supervised victim whose encoder is pretrained (e.g. skeletonclr).")
@click.option("--dataset", required=True, help="Registered dataset; its labels are never read.")
@click.option("--split", default="train", show_default=True, help="Split whose samples are used.")
@click.option("--preset", default=None, help="Victim preset (default: benchmark.yaml's preset for the dataset).")
@click.option("--epochs", default=300, show_default=True, type=click.IntRange(min=1))
@click.option("--max-steps", default=None, type=click.IntRange(min=1), help="Stop after this many optimiser steps in all.")
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=2))
@click.option("--lr", default=0.1, show_default=True, type=float)
@click.option("--lr-step", "lr_steps", multiple=True, type=int, default=(250,), show_default=True, help="Epoch where lr /= 10 (repeatable).")
@click.option("--weight-decay", default=1e-4, show_default=True, type=float)
@click.option("--queue-size", default=32768, show_default=True, type=click.IntRange(min=1))
@click.option("--feature-dim", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--momentum", default=0.999, show_default=True, type=float, help="Key-encoder momentum.")
@click.option("--temperature", default=0.07, show_default=True, type=float)
@click.option("--shear", default=0.5, show_default=True, type=float, help="Shear amplitude (0 disables).")
@click.option("--temporal-padding-ratio", default=6, show_default=True, type=int, help="Temporal crop pads T // ratio frames (0 disables).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--root", default=None, type=click.Path(), help="Dataset folder or file, for datasets that need one.")
@dataset_option
@click.option("--config", "config", multiple=True, metavar="KEY=VALUE", help="Architecture option override (repeatable).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", default=None, type=click.IntRange(min=1), help="torch CPU threads.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder (rerunning the same command resumes).")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def pretrain_command(
    method: str, victim: str, dataset: str, split: str, preset: str | None, epochs: int, max_steps: int | None, batch_size: int,
    lr: float, lr_steps: tuple[int, ...], weight_decay: float, queue_size: int, feature_dim: int, momentum: float,
    temperature: float, shear: float, temporal_padding_ratio: int, seed: int, root: str | None,
    dataset_option_texts: tuple[str, ...], config: tuple[str, ...], device: str, threads: int | None, out: str, as_json: bool,
) -> None:
    """Pretrain an encoder; writes OUT/encoder.pt (official pretext layout), OUT/last.pt and OUT/metadata.json.

    Then: skelrobust train --linear-eval --encoder OUT/encoder.pt --victim VICTIM --dataset DATASET --out DIR.
    """
    import torch

    from ..data import load_dataset
    from ..loading import load_victim
    from ..recipes import MocoConfig, pretrain_moco
    from ..errors import ConfigError
    from ..victim import VICTIMS

    if threads is not None:
        torch.set_num_threads(threads)
    cfg = MocoConfig(
        feature_dim=feature_dim, queue_size=queue_size, momentum=momentum, temperature=temperature, shear=shear,
        temporal_padding_ratio=temporal_padding_ratio, epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr,
        lr_steps=lr_steps, weight_decay=weight_decay, seed=seed,
    )
    options = dataset_options(dataset_option_texts)
    build_config = parse_assignments(config, "--config")
    ds = load_dataset(dataset, split, root=root, **options)
    model = load_victim(victim, dataset=dataset, preset=preset, pretrained=False, root=root, **build_config)
    refusal = VICTIMS.get(victim).extra.get("pretrain_refusal") if victim in VICTIMS.names() else None
    if refusal:  # e.g. a multi-stream model, of which MoCo would pretrain one encoder only
        raise ConfigError(f"--victim {victim}: {refusal}")
    info = {
        "victim": victim, "preset": model.preset, "dataset": dataset, "split": split, "dataset_options": options,
        "build_config": build_config, "layout": model.layout.name, "victim_config": model.config,
    }
    command = shlex.join(["skelrobust", *sys.argv[1:]])
    result = pretrain_moco(ds.data, model, cfg, out, device=device, progress=True, command=command, info=info)
    meta = result.metadata
    if as_json:
        echo_json(meta)
    else:
        last = meta["history"][-1] if meta["history"] else {}
        click.echo(
            f"{method} pretraining of {victim} ({model.preset}) on {dataset}/{split}: {meta['steps']} steps, "
            f"last epoch loss {last.get('loss', float('nan')):.3f}, positive top-1 {last.get('positive_top1', 0) * 100:.1f} %, "
            f"{meta['train_seconds']:.0f} s -> {result.checkpoint}"
        )
