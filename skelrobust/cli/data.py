"""``skelrobust datasets`` and ``skelrobust data info|prepare|show``: list, inspect, prepare and draw datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from ..errors import ConfigError, SkelRobustError, UnsupportedError
from .main import dataset_option, dataset_options, echo_json, main


_root_option = click.option(
    "--root", type=click.Path(), default=None, help="Dataset folder or file (default: its prepared location)."
)


@main.command("datasets")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def datasets_command(as_json: bool) -> None:
    """List registered datasets with their layout, class count and whether they need a --root."""
    from ..data import DATASETS

    rows = [
        {
            "name": e.name,
            "layout": e.obj.layout,
            "num_classes": e.obj.num_classes,
            "units": e.obj.units,
            "splits": list(e.obj.splits),
            "needs_root": e.obj.needs_root,
            "can_prepare": e.obj.prepare is not None,
            "options": dict(e.obj.options),
            "description": e.obj.description,
        }
        for e in DATASETS.entries()
    ]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        classes = "?" if r["num_classes"] is None else str(r["num_classes"])
        root = "needs --root/prepare" if r["needs_root"] else "built in"
        click.echo(f"{r['name']:<22} {r['layout']:<12} {classes:>4} classes  {root:<21} {r['description']}")


@main.group("data")
def data_group() -> None:
    """Inspect, prepare and draw datasets."""


@data_group.command("info")
@click.argument("name")
@_root_option
@dataset_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info_command(name: str, root: str | None, dataset_option_texts: tuple[str, ...], as_json: bool) -> None:
    """Summarise dataset NAME: layout, classes, split sizes, shape, units."""
    from ..data import DATASETS, load_dataset

    spec = DATASETS.get(name)
    opts = dataset_options(dataset_option_texts)
    loaded = [load_dataset(name, split, root=root, **opts) for split in spec.splits]
    splits = {ds.split: len(ds) for ds in loaded}
    first = loaded[0]
    summary = first.info()
    summary.pop("split", None)
    summary.pop("num_samples", None)
    info = {**summary, "splits": splits, "description": spec.description, "source": first.source}
    for key in ("benchmark", "skipped", "dropped_frames"):
        if key in first.meta:
            info[key] = first.meta[key]
    if as_json:
        echo_json(info)
        return
    click.echo(f"{info['name']}: {spec.description}")
    click.echo(f"  layout {info['layout']}, {info['num_classes']} classes, shape (C, T, V, M) = {tuple(info['shape'])}, units {info['units']}")
    click.echo("  splits: " + ", ".join(f"{k} {v}" for k, v in splits.items()))
    if "skipped" in info:
        click.echo(f"  skipped: {info['skipped']}")


@data_group.command("prepare")
@click.argument("name")
@click.option("--raw-dir", required=True, type=click.Path(), help="Folder holding the dataset's raw files.")
@click.option("--out", "out_dir", type=click.Path(), default=None, help="Output folder (default: $SKELROBUST_HOME/datasets/NAME).")
@dataset_option
@click.option("--json", "as_json", is_flag=True, help="Print the preparation report as JSON.")
def prepare_command(name: str, raw_dir: str, out_dir: str | None, dataset_option_texts: tuple[str, ...], as_json: bool) -> None:
    """Convert the raw files of dataset NAME into the prepared format `load_dataset` reads."""
    from ..data import DATASETS, default_root

    spec = DATASETS.get(name)
    if spec.prepare is None:
        raise UnsupportedError(f"dataset {name!r} needs no preparation: {spec.prepare_hint or 'load it directly'}")
    out = Path(out_dir) if out_dir else default_root(name)
    meta = spec.prepare(Path(raw_dir), out, **dataset_options(dataset_option_texts))
    if as_json:
        echo_json({k: v for k, v in meta.items() if k != "class_names"})
        return
    counts = meta.get("benchmarks") or {"": meta.get("splits", {})}
    for bm, splits in counts.items():
        label = f"{bm}: " if bm else ""
        click.echo(f"{label}" + ", ".join(f"{k} {v}" for k, v in splits.items()))
    skipped = meta.get("skipped", {})
    if skipped:
        click.echo(f"skipped: {yaml.safe_dump(_counts(skipped), default_flow_style=True).strip()}")
    click.echo(f"prepared {name} in {out}")


def _counts(skipped: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.get("count") if isinstance(v, dict) else v) for k, v in skipped.items()}


@data_group.command("show")
@click.argument("name")
@click.option("--index", "index", type=int, required=True, help="Sample index in the split (0-based).")
@click.option("--out", required=True, type=click.Path(), help="Output .gif (animation) or .png (frame grid).")
@click.option("--split", default="test", show_default=True, help="Split to draw from.")
@_root_option
@dataset_option
@click.option("--frame", type=int, default=None, help="PNG: draw only this frame.")
@click.option("--fps", type=int, default=15, show_default=True, help="GIF frame rate.")
def show_command(
    name: str, index: int, out: str, split: str, root: str | None, dataset_option_texts: tuple[str, ...], frame: int | None,
    fps: int,
) -> None:
    """Render sample INDEX of dataset NAME as a 3-D skeleton animation (.gif) or frames (.png)."""
    from ..data import load_dataset
    from ..viz import render_sequences

    ds = load_dataset(name, split, root=root, **dataset_options(dataset_option_texts))
    if not 0 <= index < len(ds):
        raise ConfigError(f"--index {index} out of range: {name} {split} has {len(ds)} samples (0..{len(ds) - 1})")
    seq = ds.data[index][:, : int(ds.lengths[index])]
    title = f"{ds.sample_ids[index]}: {ds.class_names[int(ds.labels[index])]}"
    try:
        path = render_sequences([seq], ds.layout, out, titles=[title], fps=fps, frame=frame)
    except OSError as exc:
        raise SkelRobustError(f"cannot write {out}: {exc}") from exc
    click.echo(f"wrote {path}")
