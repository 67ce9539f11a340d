"""The grid report a person reads: ``report.md`` (figures beside it) and a self-contained ``report.html``.

Per dataset it shows the leaderboard (worst case over attacks), the transfer matrices (surrogate x victim
success rate, per attack and budget, undefended), success against budget, robust accuracy per defense,
imperceptibility per attack, success per class, and animations of the most and least perceptible
successful examples (ranked by :data:`PERCEPTIBILITY_METRIC`), drawn by :func:`skelrobust.viz.render_comparison`.
The full results table closes it. ``report.html`` embeds every image as a data URI and loads nothing
from the network; every number in its tables carries the exact table value in ``data-value``.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..io import atomic_path, atomic_write_text
from .grid import CELLS_DIR, GRID_FILE, SETS_DIR
from .leaderboard import load_leaderboard
from .table import load_results, to_markdown

#: The imperceptibility metric that ranks the example animations (mean joint displacement, data units).
PERCEPTIBILITY_METRIC = "mean_joint_displacement"
#: Columns of the results table shown in the report (the full table is results.csv).
SHOWN_COLUMNS = ("dataset", "attack", "surrogate", "budget", "victim", "defense", "n", "clean_accuracy",
                 "robust_accuracy", "transfer_success_rate", "white_box_success_rate",
                 f"imperceptibility_{PERCEPTIBILITY_METRIC}", "attack_seconds", "error_type")
RATE_COLUMNS = ("clean_accuracy", "robust_accuracy", "transfer_success_rate", "conditional_transfer_success_rate",
                "white_box_success_rate", "surrogate_clean_accuracy")


def format_value(column: str, value: Any) -> str:
    """How the report prints a table value (rates in percent, one decimal)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "-"
    if column in RATE_COLUMNS:
        return f"{100 * float(value):.1f}%"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value)


class _Figures:
    """Collects figures: PNG/GIF files under ``figures/`` (for the markdown) and their bytes (for the HTML)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "figures"
        self.items: dict[str, tuple[str, bytes]] = {}

    def add_figure(self, name: str, fig: Any) -> str:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        return self._store(f"{name}.png", "image/png", buffer.getvalue())

    def add_file(self, name: str, path: Path, mime: str) -> str:
        return self._store(name, mime, path.read_bytes())

    def _store(self, name: str, mime: str, data: bytes) -> str:
        with atomic_path(self.folder / name) as tmp:
            tmp.write_bytes(data)
        self.items[name] = (mime, data)
        return name

    def uri(self, name: str) -> str:
        mime, data = self.items[name]
        return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _matrix_axes(fig: Any, count: int) -> list[Any]:
    cols = min(count, 3)
    rows = (count + cols - 1) // cols
    return [fig.add_subplot(rows, cols, i + 1) for i in range(count)]


def _heatmap(ax: Any, matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str) -> Any:
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="magma", aspect="auto")
    ax.set_xticks(range(len(cols)), labels=cols, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), labels=rows, fontsize=8)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            if np.isfinite(matrix[i, j]):
                ax.text(j, i, f"{100 * matrix[i, j]:.0f}%", ha="center", va="center", fontsize=8,
                        color="white" if matrix[i, j] < 0.6 else "black")
    ax.set_title(title, fontsize=9)
    return image


def _base_defense(frame: pd.DataFrame) -> str:
    defenses = list(dict.fromkeys(frame["defense"]))
    return "none" if "none" in defenses else defenses[0]


def transfer_figure(frame: pd.DataFrame, dataset: str) -> Any:
    """Surrogate x victim success rate, one panel per attack and budget (undefended victims)."""
    defense = _base_defense(frame)
    data = frame[(frame["dataset"] == dataset) & (frame["defense"] == defense)]
    panels = list(dict.fromkeys(zip(data["attack"], data["budget"])))
    surrogates, victims = list(dict.fromkeys(data["surrogate"])), list(dict.fromkeys(data["victim"]))
    fig = _figure(min(3.2 * len(panels), 9.6) + 0.8, 0.6 + ((len(panels) + 2) // 3) * (0.5 + 0.45 * max(len(surrogates), 2)))
    image = None
    for ax, (attack, budget) in zip(_matrix_axes(fig, len(panels)), panels):
        part = data[(data["attack"] == attack) & (data["budget"] == budget)]
        pivot = part.pivot_table(index="surrogate", columns="victim", values="transfer_success_rate", aggfunc="mean")
        pivot = pivot.reindex(index=surrogates, columns=victims)
        image = _heatmap(ax, pivot.to_numpy(dtype=float), surrogates, victims, f"{attack}, eps {budget:g}")
        ax.set_ylabel("surrogate", fontsize=8)
        ax.set_xlabel("victim", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=fig.axes, shrink=0.8, label=f"success rate (defense {defense})")
    return fig


def budget_figure(frame: pd.DataFrame, dataset: str) -> Any:
    """Success rate against budget, one panel per victim, a line per attack (mean over surrogates)."""
    defense = _base_defense(frame)
    data = frame[(frame["dataset"] == dataset) & (frame["defense"] == defense)]
    victims = list(dict.fromkeys(data["victim"]))
    fig = _figure(min(3.2 * len(victims), 9.6), 2.8)
    axes = fig.subplots(1, len(victims), squeeze=False)[0]
    for ax, victim in zip(axes, victims):
        part = data[data["victim"] == victim]
        for attack in dict.fromkeys(part["attack"]):
            series = part[part["attack"] == attack].groupby("budget")["transfer_success_rate"].mean()
            ax.plot(series.index, series.to_numpy(dtype=float), marker="o", label=attack)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"victim {victim}", fontsize=9)
        ax.set_xlabel(f"budget ({data['eps_unit'].iloc[0] if 'eps_unit' in data and len(data) else ''})", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("success rate", fontsize=8)
    axes[-1].legend(fontsize=8)
    return fig


def defense_figure(board: pd.DataFrame, frame: pd.DataFrame, dataset: str) -> Any:
    """Clean (hatched) and worst-case robust accuracy per victim, a bar per defense, a panel per budget.

    Victims and defenses keep the protocol's order (``frame``), so a defense has one colour in every panel.
    """
    data = board[board["dataset"] == dataset]
    order = frame[frame["dataset"] == dataset]
    victims, defenses = list(dict.fromkeys(order["victim"])), list(dict.fromkeys(order["defense"]))
    budgets = sorted(dict.fromkeys(data["budget"]))
    fig = _figure(min(3.6 * len(budgets), 10.8), 2.9)
    axes = fig.subplots(1, len(budgets), squeeze=False)[0]
    for ax, budget in zip(axes, budgets):
        part = data[data["budget"] == budget]
        width = 0.8 / max(len(defenses), 1)
        for k, defense in enumerate(defenses):
            rows = part[part["defense"] == defense].set_index("victim").reindex(victims)
            x = np.arange(len(victims)) + (k - (len(defenses) - 1) / 2) * width
            ax.bar(x, rows["clean_accuracy"].to_numpy(dtype=float), width, color=f"C{k}", alpha=0.25, hatch="//")
            ax.bar(x, rows["robust_accuracy"].to_numpy(dtype=float), width, color=f"C{k}", label=defense)
        ax.set_xticks(range(len(victims)), labels=victims, fontsize=8)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"eps {budget:g}: worst case over attacks", fontsize=9)
    axes[0].set_ylabel("accuracy (hatched: clean)", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, title="defense", title_fontsize=8)
    return fig


def imperceptibility_figure(frame: pd.DataFrame, dataset: str) -> Any:
    """Mean imperceptibility per attack (a bar per budget), for three metrics (position, bones, motion)."""
    data = frame[frame["dataset"] == dataset].drop_duplicates(["attack", "surrogate", "budget"])
    metrics = [m for m in ("mean_joint_displacement", "bone_length_rel_error", "acceleration_deviation") if f"imperceptibility_{m}" in data]
    attacks, budgets = list(dict.fromkeys(data["attack"])), sorted(dict.fromkeys(data["budget"]))
    fig = _figure(3.2 * max(len(metrics), 1), 2.8)
    axes = fig.subplots(1, max(len(metrics), 1), squeeze=False)[0]
    width = 0.8 / max(len(budgets), 1)
    for ax, metric in zip(axes, metrics):
        for k, budget in enumerate(budgets):
            values = data[data["budget"] == budget].groupby("attack")[f"imperceptibility_{metric}"].mean().reindex(attacks)
            x = np.arange(len(attacks)) + (k - (len(budgets) - 1) / 2) * width
            ax.bar(x, values.to_numpy(dtype=float), width, label=f"eps {budget:g}")
        ax.set_xticks(range(len(attacks)), labels=attacks, fontsize=8)
        ax.set_title(metric.replace("_", " "), fontsize=9)
        unit = data["eps_unit"].iloc[0] if len(data) else ""
        ax.set_ylabel({"mean_joint_displacement": unit, "bone_length_rel_error": "relative",
                       "acceleration_deviation": f"{unit} / frame^2"}[metric], fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    return fig


def class_figure(records: list[dict[str, Any]], dataset: str, attack_order: Sequence[str]) -> Any | None:
    """Success rate per true class and attack (pooled over surrogates and victims, undefended, largest budget)."""
    cells = [r for r in records if r["cell"]["dataset"] == dataset and "error" not in r]
    if not cells:
        return None
    defenses = list(dict.fromkeys(r["cell"]["defense"] for r in cells))
    defense = "none" if "none" in defenses else defenses[0]
    budget = max(r["cell"]["budget"] for r in cells)
    cells = [r for r in cells if r["cell"]["defense"] == defense and r["cell"]["budget"] == budget]
    present = {r["cell"]["attack"] for r in cells}
    attacks = [a for a in attack_order if a in present]
    counts: dict[tuple[str, str], list[int]] = {}
    names: dict[str, int] = {}
    for r in cells:
        for row in r["success_by_class"]:
            names.setdefault(row["class_name"], row["label"])
            total = counts.setdefault((row["class_name"], r["cell"]["attack"]), [0, 0])
            total[0] += row["successes"]
            total[1] += row["n"]
    classes = sorted(names, key=names.get)
    matrix = np.array([[counts[(c, a)][0] / counts[(c, a)][1] if (c, a) in counts else np.nan for a in attacks] for c in classes])
    fig = _figure(1.6 + 1.1 * len(attacks), 0.9 + 0.24 * len(classes))
    ax = fig.add_subplot(1, 1, 1)
    image = _heatmap(ax, matrix, classes, attacks, f"success by class, eps {budget:g}, defense {defense}")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def _examples(grid: Path, frame: pd.DataFrame, dataset: str) -> list[tuple[str, Path, int, dict[str, Any]]]:
    """The least and most perceptible successful example of the dataset: ``(which, set folder, position, record)``."""
    best: dict[str, tuple[float, Path, int, dict[str, Any]]] = {}
    for folder in sorted((grid / SETS_DIR).glob("*")):
        results_file = folder / "results.json"
        if not results_file.is_file() or json.loads(results_file.read_text(encoding="utf-8"))["dataset"] != dataset:
            continue
        for position, line in enumerate((folder / "samples.jsonl").read_text(encoding="utf-8").splitlines()):
            record = json.loads(line)
            value = (record.get("imperceptibility") or {}).get(PERCEPTIBILITY_METRIC)
            if value is None or not (record.get("attacked_model") or {}).get("success"):
                continue
            if "least" not in best or value < best["least"][0]:
                best["least"] = (value, folder, position, record)
            if "most" not in best or value > best["most"][0]:
                best["most"] = (value, folder, position, record)
    return [(which, *best[which][1:]) for which in ("least", "most") if which in best]


def _animation(figures: _Figures, which: str, folder: Path, position: int, record: dict[str, Any], max_frames: int) -> tuple[str, str]:
    """Render one example as a GIF; returns ``(file name, caption)``."""
    from ..benchmark.run_folder import load_run
    from ..viz import render_comparison

    results, arrays = load_run(folder)
    names = [str(c) for c in arrays["class_names"]]
    attacked = record["attacked_model"]
    value = record["imperceptibility"][PERCEPTIBILITY_METRIC]
    title = (f"{record['sample_id']}, true class: {names[record['label']]}\n"
             f"{attacked['name']}: clean -> {names[attacked['clean_prediction']]}, adversarial -> {names[attacked['adversarial_prediction']]}\n"
             f"{results['attack']}, {results['norm']} eps {results['eps']:g} {results['eps_unit']}")
    name = f"{folder.name}__{which}.gif"
    target = figures.folder / name
    render_comparison(arrays["clean"][position], arrays["adversarial"][position], str(arrays["layout"]), target,
                      title=title, units=str(arrays["units"]), fps=12, max_frames=max_frames, size=4.0, dpi=72)
    caption = (f"{which} perceptible successful example: {record['sample_id']} ({results['attack']} on {attacked['name']}, "
               f"eps {results['eps']:g}), {PERCEPTIBILITY_METRIC.replace('_', ' ')} {value:.4g} {results['eps_unit']}")
    return figures.add_file(name, target, "image/gif"), caption


def _html_table(frame: pd.DataFrame, table_id: str) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for values in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, values):
            raw = "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
            cells.append(f'<td data-column="{html.escape(str(column))}" data-value="{html.escape(raw)}">{html.escape(format_value(column, value))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _md_table(frame: pd.DataFrame) -> str:
    shown = frame.copy().astype(object)
    for column in shown.columns:
        shown[column] = [format_value(column, v) for v in frame[column]]
    return to_markdown(shown)


_STYLE = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;margin:.5em 0}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}figcaption{font-size:12px;color:#555}
.scroll{overflow-x:auto}
#image-check{display:none;background:#fdd;padding:.5em}"""

#: Marks ``<body data-images=N data-broken=K>`` once loaded and shows a warning if an image failed.
_IMAGE_CHECK = """window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);
var bad=i.filter(function(x){return !(x.complete&&x.naturalWidth>0);});document.body.setAttribute('data-images',i.length);
document.body.setAttribute('data-broken',bad.length);if(bad.length){var w=document.getElementById('image-check');
w.style.display='block';w.textContent=bad.length+' image(s) failed to load';}});"""


def write_report(grid_dir: str | Path, out: str | Path, *, animations: bool = True, max_frames: int = 40) -> tuple[Path, Path]:
    """Write ``report.md`` (figures in ``figures/``) and ``report.html`` (self-contained) for a grid folder.

    Returns:
        ``(report.md, report.html)``.

    Raises:
        ConfigError: ``grid_dir`` is not a finished grid folder.
    """
    grid = Path(grid_dir).expanduser()
    if not (grid / GRID_FILE).is_file():
        raise ConfigError(f"{grid} is not a grid folder (no {GRID_FILE}); run `skelrobust benchmark PROTOCOL --output {grid}`")
    stamp = json.loads((grid / GRID_FILE).read_text(encoding="utf-8"))
    frame, board = load_results(grid), load_leaderboard(grid)
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((grid / CELLS_DIR).glob("*.json"))]
    folder = Path(out).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    figures = _Figures(folder)
    md: list[str] = [f"# Benchmark report: {stamp['name']}", ""]
    body: list[str] = [f"<h1>Benchmark report: {html.escape(stamp['name'])}</h1>", '<div id="image-check"></div>']
    failed = int(frame["error_type"].notna().sum()) if "error_type" in frame else 0
    summary = (f"{len(frame)} cells over {frame['dataset'].nunique()} dataset(s), {frame['attack'].nunique()} attack(s), "
               f"{frame['surrogate'].nunique()} surrogate(s), {frame['budget'].nunique()} budget(s), {frame['victim'].nunique()} victim(s), "
               f"{frame['defense'].nunique()} defense(s); {failed} failed. Protocol digest {stamp['digest'][:12]}.")
    md += [summary, ""]
    body.append(f"<p>{html.escape(summary)}</p>")

    def section(title: str, level: int = 2) -> None:
        md.extend([f"{'#' * level} {title}", ""])
        body.append(f"<h{level}>{html.escape(title)}</h{level}>")

    def image(name: str, alt: str) -> None:
        md.extend([f"![{alt}](figures/{name})", ""])
        body.append(f'<figure><img src="{figures.uri(name)}" alt="{html.escape(alt)}"><figcaption>{html.escape(alt)}</figcaption></figure>')

    for dataset in dict.fromkeys(frame["dataset"]):
        done = frame[(frame["dataset"] == dataset) & frame["clean_accuracy"].notna()] if "clean_accuracy" in frame else frame.iloc[:0]
        section(f"Dataset {dataset}")
        section("Leaderboard (worst case over attacks)", 3)
        lb = board[board["dataset"] == dataset].reset_index(drop=True)
        md.extend([_md_table(lb), ""])
        body.append(_html_table(lb, f"leaderboard-{dataset}"))
        if done.empty:
            md.extend(["Every cell of this dataset failed; see the results table.", ""])
            body.append("<p>Every cell of this dataset failed; see the results table.</p>")
            continue
        section("Transfer matrices", 3)
        image(figures.add_figure(f"{dataset}-transfer", transfer_figure(done, dataset)), f"{dataset}: success rate, surrogate x victim, per attack and budget")
        section("Success against budget", 3)
        image(figures.add_figure(f"{dataset}-budget", budget_figure(done, dataset)), f"{dataset}: success rate against budget")
        section("Robust accuracy per defense", 3)
        image(figures.add_figure(f"{dataset}-defenses", defense_figure(board, frame, dataset)), f"{dataset}: clean and worst-case robust accuracy per defense")
        section("Imperceptibility per attack", 3)
        image(figures.add_figure(f"{dataset}-imperceptibility", imperceptibility_figure(done, dataset)), f"{dataset}: mean imperceptibility per attack")
        by_class = class_figure(records, dataset, list(dict.fromkeys(frame["attack"])))
        if by_class is not None:
            section("Success per class", 3)
            image(figures.add_figure(f"{dataset}-classes", by_class), f"{dataset}: success rate per true class and attack")
        if animations:
            examples = _examples(grid, frame, dataset)
            if examples:
                section("Examples", 3)
                for which, set_folder, position, record in examples:
                    name, caption = _animation(figures, which, set_folder, position, record, max_frames)
                    image(name, caption)

    section("Results table")
    shown = frame[[c for c in SHOWN_COLUMNS if c in frame.columns]]
    md.extend([_md_table(shown), "", "The full table (every metric and provenance key) is results.csv / results.parquet in the grid folder.", ""])
    body.append(_html_table(shown, "results"))
    body.append("<p>The full table (every metric and provenance key) is results.csv / results.parquet in the grid folder.</p>")

    md_path, html_path = folder / "report.md", folder / "report.html"
    atomic_write_text(md_path, "\n".join(md))
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(stamp["name"])}</title>'
            f"<style>{_STYLE}</style><script>{_IMAGE_CHECK}</script></head><body>{''.join(body)}</body></html>")
    atomic_write_text(html_path, page)
    return md_path, html_path
