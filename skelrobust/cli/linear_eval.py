"""``skelrobust train --linear-eval --encoder FILE``: the frozen-encoder protocol behind the ``train`` command."""

from __future__ import annotations

import shlex
import sys

import click
from click.core import ParameterSource

from .main import dataset_options, echo_json, parse_assignments

#: Section 7.2's protocol (CrosSCLR/AimCLR/HiCLR ``linear_evaluation``) where ``train``'s own defaults differ.
PROTOCOL = {"epochs": 100, "batch_size": 128, "lr": 3.0, "lr_steps": (80,), "weight_decay": 0.0}
#: ``train`` options that have no meaning when only a linear head is trained on cached features.
UNUSED = ("optimizer", "warmup_epochs", "label_smoothing", "rotate_deg", "scale", "checkpoint")


def run_linear_eval(ctx: click.Context) -> None:
    """Run :func:`skelrobust.recipes.linear_eval` from the ``train`` command's parameters."""
    from ..errors import ConfigError
    from ..recipes import LinearEvalConfig, linear_eval

    p = ctx.params
    if not p["linear_eval"] or p["encoder"] is None:
        raise ConfigError("--linear-eval and --encoder FILE go together (the encoder to freeze, and the protocol)")
    given = {k for k in p if ctx.get_parameter_source(k) not in (ParameterSource.DEFAULT, None)}
    clash = [f"--{k.replace('_deg', '').replace('_', '-')}" for k in UNUSED if k in given]
    if clash:
        raise ConfigError(f"--linear-eval trains an SGD linear head without augmentation; {', '.join(clash)} cannot apply")
    values = {k: (p[k] if k in given else default) for k, default in PROTOCOL.items()}
    late = [s for s in values["lr_steps"] if "lr_steps" in given and not 0 < s < values["epochs"]]
    if late:
        raise ConfigError(f"--lr-step {late[0]} never applies: a step must lie in 1..{values['epochs'] - 1} (--epochs {values['epochs']})")
    cfg = LinearEvalConfig(
        victim=p["victim"], dataset=p["dataset"], encoder=p["encoder"], preset=p["preset"], val_fraction=p["val_fraction"],
        seed=p["seed"], root=p["root"], dataset_options=dataset_options(p["dataset_option_texts"]),
        build_config=parse_assignments(p["config"], "--config"), **values,
    )
    device = p["device"]
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    meta = linear_eval(cfg, p["out"], device=device, command=shlex.join(["skelrobust", *sys.argv[1:]]), progress=True)
    if p["as_json"]:
        echo_json(meta)
    else:
        click.echo(
            f"linear evaluation of {meta['victim']} ({meta['preset']}) on {meta['dataset']}: val {meta['val_accuracy'] * 100:.2f} % "
            f"(epoch {meta['best_epoch']}), test {meta['test_accuracy'] * 100:.2f} % -> {p['out']}"
        )
