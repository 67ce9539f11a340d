"""Randomized smoothing: Cohen et al.'s PREDICT and CERTIFY, the ``smoothing`` defense and ``skelrobust certify``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scipy.stats import norm

from skelrobust.cli import main
from skelrobust.errors import ConfigError
from skelrobust.smoothing import ABSTAIN, SmoothedClassifier, certified_accuracy, lower_confidence_bound


class Constant(torch.nn.Module):
    """Always votes for one class."""

    def __init__(self, label: int, classes: int = 4) -> None:
        super().__init__()
        self.label, self.classes = label, classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.full((x.shape[0],), self.label), self.classes).float()


class SignOfNoise(torch.nn.Module):
    """Votes 0 or 1 by the sign of the first coordinate: a fair coin under the noise when that coordinate is 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = x[:, 0, 0, 0, 0]
        return torch.stack([(first >= 0).float(), (first < 0).float(), torch.zeros_like(first)], dim=1)


def test_clopper_pearson_lower_bound() -> None:
    assert lower_confidence_bound(100, 100, 0.001) == pytest.approx(0.001 ** (1 / 100))  # all successes: alpha^(1/n)
    assert lower_confidence_bound(0, 100, 0.05) == 0.0
    assert 0.45 < lower_confidence_bound(600, 1000, 0.001) < 0.6


def test_certify_gives_the_closed_form_radius_for_a_constant_base() -> None:
    x = torch.randn(3, 3, 8, 25, 2)
    smoothed = SmoothedClassifier(Constant(2), 4, sigma=0.1, batch_size=64)
    cert = smoothed.certify(x, n0=10, n=200, alpha=0.001, generator=torch.Generator().manual_seed(0))
    p = 0.001 ** (1 / 200)
    assert cert.prediction.tolist() == [2, 2, 2]
    np.testing.assert_allclose(cert.radius, 0.1 * norm.ppf(p), rtol=1e-6)
    acc = certified_accuracy(cert, np.array([2, 2, 0]), np.array([0.0, 0.1 * norm.ppf(p), 1.0]))
    np.testing.assert_allclose(acc, [2 / 3, 2 / 3, 0.0])


def test_predict_abstains_on_a_tie_and_counts_keep_absent_entries_zero() -> None:
    x = torch.zeros(2, 3, 4, 25, 2)
    x[:, :, :, 1:, 0] = 1.0  # joint 0 of person 0 sits at the origin: its noisy sign is a coin flip; person 1 absent
    smoothed = SmoothedClassifier(SignOfNoise(), 3, sigma=0.5)
    assert (smoothed.predict(x, n=200, alpha=0.001, generator=torch.Generator().manual_seed(1)) == ABSTAIN).all()
    noisy = smoothed.noise(x, torch.Generator().manual_seed(0))
    assert (noisy[..., 1] == 0).all() and (noisy[..., 0] != x[..., 0]).any()
    sure = SmoothedClassifier(Constant(1, 3), 3, sigma=0.5)
    assert sure.predict(x, n=50).tolist() == [1, 1]


def test_smoothing_rejects_a_non_positive_sigma() -> None:
    with pytest.raises(ConfigError, match="--sigma must be a positive"):
        SmoothedClassifier(Constant(0), 4, sigma=0.0)


def test_certify_cli_prints_a_table_and_writes_json_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "cert"
    result = CliRunner().invoke(main, ["certify", "--victim", "stgcn", "--dataset", "synthetic", "--sigma", "0.01",
                                       "--n-samples", "2", "--n0", "4", "--n", "16", "--alpha", "0.01", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "certified accuracy" in result.output and "l2 radius (m)" in result.output
    saved = json.loads((out / "certify.json").read_text())
    assert saved["n_samples"] == 2 and len(saved["curve"]) >= 5 and (out / "certified_accuracy.png").stat().st_size > 1000
    accuracies = [row["certified_accuracy"] for row in saved["curve"]]
    assert accuracies == sorted(accuracies, reverse=True)  # certified accuracy never rises with the radius


@pytest.mark.parametrize("sigma", ["0", "-0.1", "nan"])
def test_certify_refuses_a_non_positive_sigma_with_one_line(sigma: str, tmp_path: Path) -> None:
    out = tmp_path / "cert"
    result = CliRunner().invoke(main, ["certify", "--victim", "stgcn", "--dataset", "synthetic", "--sigma", sigma, "-o", str(out)])
    assert result.exit_code == 1 and "--sigma must be a positive" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()
