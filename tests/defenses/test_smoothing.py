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
from skelrobust.smoothing import ABSTAIN, DEFAULT_BATCH_SIZE, NOISE_BLOCK, SmoothedClassifier, certified_accuracy, lower_confidence_bound, sample_generators


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


class SignOfJoint(torch.nn.Module):
    """Votes by the signs of two noisy coordinates (4 classes) and records the size of every forward batch."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.shape[0])
        a, b = (x[:, 0, 0, 0, 0] >= 0).long(), (x[:, 1, 0, 0, 0] >= 0).long()
        return torch.nn.functional.one_hot(2 * a + b, 4).float()


def _points(n: int) -> torch.Tensor:
    """``n`` one-person samples whose first joint sits at different distances from the sign boundaries."""
    x = torch.zeros(n, 3, 4, 25, 2)
    x[:, :, :, :, 0] = 1.0
    x[:, 0, 0, 0, 0] = torch.linspace(-0.3, 0.3, n)
    x[:, 1, 0, 0, 0] = torch.linspace(0.2, -0.2, n)
    return x


def test_counts_batch_copies_of_several_samples_per_forward_pass() -> None:
    x = _points(5)
    base = SignOfJoint()
    counts = SmoothedClassifier(base, 4, sigma=0.3, batch_size=64).counts(x, 150, sample_generators(0, range(5)))
    assert counts.sum(dim=1).tolist() == [150] * 5 and counts.dtype == torch.long
    # 750 copies in passes of 64 copies, which straddle samples; only the last pass is short.
    assert base.batches == [64] * 11 + [750 - 64 * 11]


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_votes_do_not_depend_on_the_batch_size_or_on_the_other_samples(batch_size: int) -> None:
    x = _points(4)
    n = NOISE_BLOCK + 30  # two noise blocks per sample
    reference = SmoothedClassifier(SignOfJoint(), 4, sigma=0.3, batch_size=64).counts(x, n, sample_generators(3, [10, 11, 12, 13]))
    again = SmoothedClassifier(SignOfJoint(), 4, sigma=0.3, batch_size=batch_size).counts(x, n, sample_generators(3, [10, 11, 12, 13]))
    assert torch.equal(again, reference)
    alone = SmoothedClassifier(SignOfJoint(), 4, sigma=0.3, batch_size=batch_size).counts(x[2:3], n, sample_generators(3, [12]))
    assert torch.equal(alone[0], reference[2])
    other_seed = SmoothedClassifier(SignOfJoint(), 4, sigma=0.3).counts(x, n, sample_generators(4, [10, 11, 12, 13]))
    assert not torch.equal(other_seed, reference)


def test_certify_cli_and_smoothing_defense_default_to_the_measured_batch_size() -> None:
    from skelrobust.cli.certify import certify_command
    from skelrobust.defense import create_defense

    assert next(p.default for p in certify_command.params if p.name == "batch_size") == DEFAULT_BATCH_SIZE
    assert create_defense("smoothing").batch_size == DEFAULT_BATCH_SIZE


def test_counts_refuse_a_generator_list_of_the_wrong_length() -> None:
    with pytest.raises(ConfigError, match="2 noise generators for 3 samples"):
        SmoothedClassifier(SignOfJoint(), 4, sigma=0.3).counts(_points(3), 10, sample_generators(0, [0, 1]))


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


def test_certify_gives_the_same_certificates_when_the_samples_are_shared_over_worker_processes() -> None:
    from skelrobust.certification import certify_dataset

    options = dict(n0=4, n=24, alpha=0.01, n_samples=3, seed=5)
    alone = certify_dataset("stgcn", "synthetic", 0.02, **options)
    shared = certify_dataset("stgcn", "synthetic", 0.02, workers=2, **options)
    assert shared["workers"] == 2 and alone["workers"] == 1
    assert shared["samples"] == alone["samples"] and shared["curve"] == alone["curve"]
    assert shared["cpu_seconds"] > 0


def test_certify_refuses_a_worker_count_below_one() -> None:
    from skelrobust.certification import certify_dataset

    with pytest.raises(ConfigError, match="--workers must be an integer >= 1, got 0"):
        certify_dataset("stgcn", "synthetic", 0.02, n_samples=1, workers=0)
