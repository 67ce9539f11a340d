"""Adaptive white-box evaluation of defended cells and the gradient-masking flags."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runner"))

from adaptive_helpers import Quantize, spec as defense_spec  # noqa: E402
from h5_helpers import spec, write_split  # noqa: E402
from skelrobust.adaptive import format_adaptive, paired_excess  # noqa: E402
from skelrobust.benchmark.cell_config import RunConfig  # noqa: E402
from skelrobust.benchmark.cell import run_cell  # noqa: E402

MASKING = defense_spec("MasksGradients")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("adaptive-data")
    write_split(folder, "test", 40)
    return folder


def test_paired_excess_needs_more_than_noise() -> None:
    a = np.array([True] * 20 + [False] * 20)
    b = np.array([False] * 20 + [False] * 20)
    assert paired_excess(a, b) and not paired_excess(b, a)
    noisy = np.array([True, False] * 20)
    assert not paired_excess(noisy, np.roll(noisy, 1))  # 20 discordant each way: no excess


def test_defended_cells_of_the_attacked_model_get_naive_and_adaptive_accuracy(data_dir: Path, tmp_path: Path) -> None:
    cfg = RunConfig(
        attack=spec("SignStep"), victims=[spec("victim_a"), spec("victim_b")], dataset="npz", root=str(data_dir),
        defenses=["none", "lowpass", MASKING], eps=0.3, steps=5, n_samples=16, batch_size=8, seed=3, device="cpu",
    )
    res = run_cell(cfg, tmp_path / "run", progress=False)
    cells = {(c["victim"], c["defense"]): c for c in res["victims"]}
    lowpass = cells[(spec("victim_a"), "lowpass")]
    assert lowpass["adaptive_method"] == "gradients through the transform"
    assert lowpass["robust_accuracy_naive"] == lowpass["robust_accuracy"]
    assert set(lowpass["robust_accuracy_by_budget"]) == {"0.15", "0.3"}
    assert lowpass["robust_accuracy_by_budget"]["0.3"] == lowpass["robust_accuracy_adaptive"]
    masked = cells[(spec("victim_a"), MASKING)]
    # The naive set (made on the undefended model) fools the identity-forward defense; the adaptive attack sees no gradient.
    assert masked["robust_accuracy_adaptive"] > masked["robust_accuracy_naive"]
    assert any(flag.startswith("white-box weaker than transfer") for flag in masked["sanity_flags"])
    assert "sanity flag: white-box weaker than transfer" in format_adaptive(res)
    for key in ((spec("victim_a"), "none"), (spec("victim_b"), "lowpass"), (spec("victim_b"), MASKING)):
        assert "robust_accuracy_adaptive" not in cells[key]  # undefended, or not the attacked model (transfer)


def test_a_non_differentiable_transform_is_attacked_through_bpda(tiny_victim, canonical_batch) -> None:
    x, y = canonical_batch
    model, method = Quantize().adaptive_model(tiny_victim)
    assert method.startswith("BPDA")
    x_var = x.clone().requires_grad_(True)
    out = model(x_var)
    assert torch.allclose(out, Quantize().wrap(tiny_victim)(x))  # forward: the real transform
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(out, y), x_var)
    assert grad.abs().sum() > 0  # backward: identity through the rounding (whose true gradient is zero)
