"""The clean-and-adversarial renderer: displacement per joint, one overlaid view, readable size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from skelrobust.errors import ConfigError
from skelrobust.viz import displacement, render_comparison


def clip() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    clean = np.zeros((3, 12, 25, 2), dtype=np.float32)
    clean[:, :10, :, 0] = rng.normal(0, 0.3, (3, 10, 25)) + np.array([0, 1, 3])[:, None, None]
    adversarial = clean.copy()
    adversarial[0, :10, 7, 0] += 0.03  # one joint moved 3 cm; padded frames and the absent person untouched
    adversarial[:, 11, :, 1] = 0.5  # an absent person moved: never counted
    return clean, adversarial


def test_displacement_counts_present_joints_only() -> None:
    clean, adversarial = clip()
    moved = displacement(clean, adversarial)
    assert moved.shape == (12, 25, 2)
    assert moved[:10, 7, 0] == pytest.approx(0.03, abs=1e-6)
    assert moved.sum() == pytest.approx(10 * 0.03, rel=1e-5)


def test_renders_one_view_png_and_gif(tmp_path) -> None:
    clean, adversarial = clip()
    png = render_comparison(clean, adversarial, "ntu25", tmp_path / "pair.png", title="a: true wave\nstgcn: wave -> clap")
    with Image.open(png) as image:
        assert image.size == (352, 387)  # 4.4 x 4.84 in at 80 dpi: one view, not side-by-side panels
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    saturated = (pixels.max(axis=1) - pixels.min(axis=1)) > 80
    assert saturated.sum() > 200  # the coloured adversarial body and the colour scale are drawn
    gif = render_comparison(clean, adversarial, "ntu25", tmp_path / "pair.gif", max_frames=4)
    with Image.open(gif) as image:
        assert image.n_frames == 4
    with pytest.raises(ConfigError, match="use a .gif"):
        render_comparison(clean, adversarial, "ntu25", tmp_path / "pair.mp4")
