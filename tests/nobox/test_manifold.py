"""The attacker's learned encoder: size rules, fingerprint cache (memory and disk), checkpoint loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelrobust.errors import ConfigError
from skelrobust.nobox import manifold as mf
from skelrobust.nobox.access import UnlabelledSamples

FAST = mf.ManifoldConfig.create(steps=2, batch_size=4)


def _samples(seed: int = 0, n: int = 8) -> UnlabelledSamples:
    rng = np.random.default_rng(seed)
    data = (np.cumsum(rng.standard_normal((n, 3, 16, 25, 2)) * 0.02, axis=2) + rng.standard_normal((n, 3, 1, 25, 2)) * 0.3).astype(np.float32)
    data[:2, :, :, :, 1] = 0.0
    return UnlabelledSamples(data, [f"u{i}" for i in range(n)], "attack", "t")


def test_size_rules_follow_the_set() -> None:
    cfg = mf.ManifoldConfig()
    small = cfg.for_samples(64)
    assert (small.batch_size, small.queue_size, small.max_steps, small.epochs) == (32, 64, 100, 50)
    big = cfg.for_samples(16_000)
    assert (big.batch_size, big.queue_size, big.epochs) == (32, 1024, 1)
    tiny = cfg.for_samples(5)
    assert tiny.batch_size == 5 and tiny.queue_size == 5
    with pytest.raises(ConfigError, match="pretrain_batch_size must be >= 2"):
        mf.ManifoldConfig.create(batch_size=1)


def test_fingerprint_tracks_data_layout_and_config() -> None:
    a = mf.fingerprint(_samples(0), FAST, "ntu25")
    assert a == mf.fingerprint(_samples(0), FAST, "ntu25")
    assert a != mf.fingerprint(_samples(1), FAST, "ntu25")
    assert a != mf.fingerprint(_samples(0), mf.ManifoldConfig.create(steps=3, batch_size=4), "ntu25")


def test_learned_once_then_cached_in_memory_and_on_disk(monkeypatch) -> None:
    samples = _samples(2)
    first = mf.learn_manifold(samples, FAST, layout="ntu25", progress=False)
    x = torch.from_numpy(samples.data)
    with torch.no_grad():
        z = first.encoder(x)
    assert z.ndim == 2 and z.shape[0] == 8 and torch.isfinite(z).all()
    assert not any(p.requires_grad for p in first.encoder.parameters()) and not first.encoder.training
    assert mf.learn_manifold(samples, FAST, layout="ntu25").record["cache"] == "memory"
    monkeypatch.setattr(mf, "_MEMORY", {})
    again = mf.learn_manifold(samples, FAST, layout="ntu25", progress=False)
    assert again.record["cache"] == "disk" and again.record["fingerprint"] == first.record["fingerprint"]
    with torch.no_grad():
        assert torch.allclose(again.encoder(x), z, atol=1e-6)
    # the same file, given as a user checkpoint, is the same encoder
    loaded = mf.load_encoder(f"{first.record['folder']}/encoder.pt", num_persons=2)
    assert loaded.record["source"] == "checkpoint" and loaded.record["preset"] == "lite"
    with torch.no_grad():
        assert torch.allclose(loaded.encoder(x), z, atol=1e-6)


def test_corrupt_cache_is_relearned(monkeypatch, tmp_path, caplog) -> None:
    monkeypatch.setenv("SKELROBUST_HOME", str(tmp_path))
    samples = _samples(3)
    first = mf.learn_manifold(samples, FAST, layout="ntu25", progress=False)
    monkeypatch.setattr(mf, "_MEMORY", {})
    encoder_file = tmp_path / "nobox" / "encoders" / first.record["fingerprint"] / "encoder.pt"
    encoder_file.write_bytes(b"not a checkpoint")
    again = mf.learn_manifold(samples, FAST, layout="ntu25", progress=False)
    assert again.record["cache"] == "learned now" and "unreadable" in caplog.text


def test_bad_user_encoder_is_one_line(tmp_path) -> None:
    with pytest.raises(ConfigError, match="neither a checkpoint file nor user code"):
        mf.user_encoder(str(tmp_path / "missing.pt"))
    bad = tmp_path / "bad.pt"
    torch.save({"weight": torch.zeros(2)}, bad)
    with pytest.raises(Exception, match="fits no skeletonclr preset"):
        mf.load_encoder(bad)


def test_the_attacker_encoder_builds_on_kinect_v1_layouts() -> None:
    """The real datasets with 20 Kinect v1 joints (UTD-MHAD, MSR Action3D) get an encoder centred on the shoulder centre."""
    from skelrobust.layouts import get_layout
    from skelrobust.nobox.manifold import ManifoldConfig, architecture

    for layout in ("utd20", "msr20"):
        encoder = architecture(ManifoldConfig(), layout, 1)
        assert encoder.adapter.center == get_layout(layout).index("shoulder_center")
        assert encoder(torch.randn(2, 3, 30, 20, 1)).shape == (2, 2)
    assert architecture(ManifoldConfig(), "ntu25", 2).adapter.center == get_layout("ntu25").index("spine_shoulder")
