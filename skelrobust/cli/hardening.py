"""Options of ``skelrobust train`` that harden the model: ``--defense``, its budget and noise, adversarial sets.

Kept apart from the ``train`` command itself so that the command stays a thin wrapper; the recipes live in
:mod:`skelrobust.recipes`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from ..config import protocol_budget

_OPTIONS = [
    click.option(
        "--defense", "defense", type=click.Choice(["none", "pgd-at", "trades", "gaussian-noise", "beat"]), default="none",
        show_default=True,
        help="Training recipe: clean, PGD adversarial training, TRADES, Gaussian augmentation, or BEAT heads over the --checkpoint base.",
    ),
    click.option("--heads", default=5, show_default=True, type=int, help="beat: number of Bayesian heads."),
    click.option("--eps", default=None, type=float, help="pgd-at/trades budget in data units (default: the dataset's protocol budget)."),
    click.option("--norm", default="linf", show_default=True, type=click.Choice(["linf", "l2"]), help="pgd-at/trades budget norm."),
    click.option("--attack-steps", default=10, show_default=True, type=int, help="pgd-at/trades inner PGD steps (step 2.5 eps / steps)."),
    click.option("--beta", default=6.0, show_default=True, type=float, help="trades: weight of the KL term."),
    click.option("--sigma", default=None, type=float, help="gaussian-noise: noise standard deviation in data units."),
    click.option("--adversarial-set", default=None, type=click.Path(dir_okay=False), help="Exported adversarial set to mix into training."),
    click.option("--adversarial-ratio", default=0.5, show_default=True, type=float, help="Share of each batch drawn from --adversarial-set."),
]


def hardening_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the hardening options to a click command (they arrive as keyword arguments)."""
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


def train_with_defense(cfg: Any, options: dict[str, Any], out: str, *, device: str, command: str) -> dict[str, Any]:
    """``skelrobust train`` with its hardening options: a recipe through the training loop, or BEAT's heads."""
    from ..training import train_victim

    if options["defense"] == "beat":
        return post_train_beat(cfg, options, out, device=device, command=command)
    recipe = build_recipe(cfg, options)
    return train_victim(cfg, out, device=device, command=command, progress=True, recipe=recipe)


def post_train_beat(cfg: Any, options: dict[str, Any], out: str, *, device: str, command: str) -> dict[str, Any]:
    """BEAT's heads over a trained base: ``--checkpoint`` (or the zoo's weights); a missing base is one line."""
    from ..data import load_dataset
    from ..errors import CheckpointError, ConfigError
    from ..loading import load_victim
    from ..recipes.beat import BeatConfig, train_beat
    from ..training import validation_split

    if options["adversarial_set"] is not None or options["sigma"] is not None or options["eps"] is not None:
        raise ConfigError("--defense beat takes no --adversarial-set, --sigma or --eps (its adversaries are sampled, see skelrobust.recipes.beat)")
    if cfg.init_checkpoint is not None and not Path(cfg.init_checkpoint).is_file():
        raise CheckpointError(f"--defense beat: base checkpoint {cfg.init_checkpoint} does not exist (BEAT post-trains heads over a trained classifier)")
    try:
        base = load_victim(cfg.victim, checkpoint=cfg.init_checkpoint, dataset=cfg.dataset, preset=cfg.preset, pretrained=True,
                           root=cfg.root, device=device, **cfg.build_config)
    except CheckpointError as exc:
        raise CheckpointError(f"--defense beat needs a trained base classifier: pass --checkpoint BASE.pt ({exc})") from None
    train = load_dataset(cfg.dataset, "train", root=cfg.root, **cfg.dataset_options)
    test = load_dataset(cfg.dataset, "test", root=cfg.root, **cfg.dataset_options)
    train_idx, val_idx, _ = validation_split(train, cfg.val_fraction)
    config = BeatConfig(num_heads=options["heads"], epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed)
    return train_beat(base, train, test, train_idx, val_idx, config, out, command=command)


def build_recipe(cfg: Any, options: dict[str, Any]) -> Any:
    """The training recipe the hardening options ask for, for :class:`~skelrobust.training.TrainConfig` ``cfg``.

    ``None`` means plain training. An adversarial set is read and checked here, before anything is written.
    """
    from ..errors import ConfigError
    from ..recipes import TrainingRecipe, create_recipe

    name = options["defense"]
    if name != "gaussian-noise" and options["sigma"] is not None:
        raise ConfigError("--sigma applies to --defense gaussian-noise only")
    recipe: TrainingRecipe | None = None
    if name == "gaussian-noise":
        if options["sigma"] is None:
            raise ConfigError("--defense gaussian-noise needs --sigma (noise standard deviation in data units)")
        recipe = create_recipe(name, sigma=options["sigma"], label_smoothing=cfg.label_smoothing)
    elif name != "none":
        eps = options["eps"] if options["eps"] is not None else protocol_budget(cfg.dataset)[0]
        extra = {"beta": options["beta"]} if name == "trades" else {}
        recipe = create_recipe(
            name, eps=eps, norm=options["norm"], steps=options["attack_steps"], label_smoothing=cfg.label_smoothing, **extra
        )
    if options["adversarial_set"] is None:
        return recipe
    return mix_adversarial_set(cfg, recipe or TrainingRecipe(cfg.label_smoothing), options["adversarial_set"], options["adversarial_ratio"])


def mix_adversarial_set(cfg: Any, recipe: Any, path: str, ratio: float) -> Any:
    """``recipe`` wrapped to mix in the adversarial set at ``path`` (checked against ``cfg``'s training split)."""
    from ..data import load_dataset
    from ..errors import ConfigError
    from ..recipes.adversarial_set import AdversarialSetMixing, check_adversarial_set, read_adversarial_set
    from ..training import validation_split

    if not 0.0 < ratio < 1.0:
        raise ConfigError(f"--adversarial-ratio must be in (0, 1) (the adversarial share of each batch), got {ratio}")
    train = load_dataset(cfg.dataset, "train", root=cfg.root, **cfg.dataset_options)
    test = load_dataset(cfg.dataset, "test", root=cfg.root, **cfg.dataset_options)
    adversarial = read_adversarial_set(path)
    rows = check_adversarial_set(adversarial, train, test)
    _, val_idx, _ = validation_split(train, cfg.val_fraction)
    return AdversarialSetMixing(recipe, adversarial, ratio, rows, val_idx)
