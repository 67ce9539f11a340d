"""``skelrobust show``: one clean clip and its adversarial version, overlaid in one view."""

from __future__ import annotations

import click

from ..errors import ConfigError
from .main import main


@main.command("show")
@click.argument("run_dir", type=click.Path())
@click.option("--index", "position", type=int, default=None, help="Row of the adversarial set (0-based, the order of samples.jsonl).")
@click.option("--sample-id", default=None, help="Pick the sample by its dataset id instead.")
@click.option("--out", required=True, type=click.Path(), help="Output .gif (animation) or .png (frame grid).")
@click.option("--fps", type=int, default=15, show_default=True, help="GIF frame rate.")
def show_command(run_dir: str, position: int | None, sample_id: str | None, out: str, fps: int) -> None:
    """Render one attacked sample of RUN_DIR: clean (grey) and adversarial (coloured by displacement) overlaid.

    \b
    Example:
      skelrobust show runs/pgd-stgcn --index 0 --out clip.gif
    """
    from ..benchmark.run_folder import load_run, load_sample_record
    from ..viz import render_comparison

    results, arrays = load_run(run_dir)
    ids = [str(s) for s in arrays["sample_ids"]]
    n = len(ids)
    if (position is None) == (sample_id is None):
        raise ConfigError("pass exactly one of --index I or --sample-id ID")
    if sample_id is not None and sample_id not in ids:
        raise ConfigError(f"sample {sample_id!r} is not in the adversarial set of {run_dir} ({n} samples)")
    position = ids.index(sample_id) if sample_id is not None else int(position or 0)
    if not 0 <= position < n:
        raise ConfigError(f"--index {position} is out of range: {run_dir} holds {n} adversarial samples (0..{n - 1})")
    names = [str(c) for c in arrays["class_names"]]
    label = int(arrays["labels"][position])
    record = load_sample_record(run_dir, position)
    attacked = record.get("attacked_model")
    title = f"{ids[position]}, true class: {names[label]}"
    if attacked is not None:
        title += (f"\n{attacked['name']}: clean -> {names[attacked['clean_prediction']]}, "
                  f"adversarial -> {names[attacked['adversarial_prediction']]}")
    title += f"\n{results['attack']}, {results['norm']} eps {results['eps']:g} {results['eps_unit']}"
    path = render_comparison(
        arrays["clean"][position], arrays["adversarial"][position], str(arrays["layout"]), out,
        title=title, units=str(arrays["units"]), fps=fps,
    )
    click.echo(f"wrote {path}")
