"""``skelrobust certify``: certified l2 robustness of a victim under randomized smoothing (Cohen et al. 2019)."""

from __future__ import annotations

import click

from .main import dataset_option, dataset_options, echo_json, main


@main.command("certify")
@click.option("--victim", required=True, help="Base classifier: registered victim or user code pkg.mod:factory.")
@click.option("--dataset", required=True, help="Registered dataset; samples of its test split are certified.")
@click.option("--sigma", required=True, type=float, help="Noise standard deviation in data units (> 0).")
@click.option("--checkpoint", default=None, type=click.Path(dir_okay=False), help="Base weights (default: the zoo's; e.g. train --defense gaussian-noise).")
@click.option("--n0", default=100, show_default=True, type=click.IntRange(min=1), help="Noisy copies that select the class.")
@click.option("--n", "n", default=1000, show_default=True, type=click.IntRange(min=1), help="Noisy copies that estimate its probability.")
@click.option("--alpha", default=0.001, show_default=True, type=click.FloatRange(min=0, max=1, min_open=True, max_open=True), help="Failure probability of the certificate.")
@click.option("--n-samples", default=100, show_default=True, type=click.IntRange(min=1), help="Test samples certified (first of a permutation seeded by --seed).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1), help="Noisy copies per forward pass (small is fastest on a CPU; larger on a GPU).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Processes that share the samples, one thread each (e.g. 2 on a 2-core machine); certificates do not change.")
@click.option("--root", default=None, type=click.Path(), help="Dataset folder or file, for datasets that need one.")
@dataset_option
@click.option("--output", "-o", default=None, type=click.Path(file_okay=False), help="Folder for certify.json and certified_accuracy.png.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def certify_command(
    victim: str, dataset: str, sigma: float, checkpoint: str | None, n0: int, n: int, alpha: float, n_samples: int, seed: int,
    batch_size: int, workers: int, root: str | None, dataset_option_texts: tuple[str, ...], output: str | None, as_json: bool,
) -> None:
    """Certify test samples with CERTIFY (n0 selection copies, n estimation copies, Clopper-Pearson bound).

    Prints certified accuracy against l2 radius (radius sigma * Phi^-1(pA), in data units over the whole
    sample) as a table; with --output also writes certify.json and a plot.

    \b
    Example:
      skelrobust certify --victim stgcn --dataset synthetic --sigma 0.02 --n-samples 100 --n 1000 --workers 2 -o runs/certify
    """
    from ..certification import certify_dataset, format_certificate_table, write_certification
    from ..smoothing import check_sigma

    check_sigma(sigma, "certify")
    result = certify_dataset(
        victim, dataset, sigma, checkpoint=checkpoint, n0=n0, n=n, alpha=alpha, n_samples=n_samples, seed=seed,
        batch_size=batch_size, workers=workers, root=root, dataset_options=dataset_options(dataset_option_texts),
    )
    if output is not None:
        write_certification(result, output)
    if as_json:
        echo_json(result)
    else:
        click.echo(format_certificate_table(result))
        if output is not None:
            click.echo(f"results: {output}")
