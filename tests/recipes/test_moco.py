"""MoCo pretraining: SkeletonCLR's augmentations, key layout, queue and momentum rules, resumption, embedding."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from skelrobust.cli import main
from skelrobust.errors import ConfigError
from skelrobust.recipes import Embedding, MocoConfig, load_embedding, pretrain_moco
from skelrobust.recipes.moco import MoCo, shear, temporal_crop
from skelrobust.victim import VICTIMS


def _victim(preset: str = "lite"):
    torch.manual_seed(0)
    return VICTIMS.get("skeletonclr").build(preset=preset, num_classes=4, channels=(8, 8), strides=(2, 1)) if preset == "lite" \
        else VICTIMS.get("skeletonclr").build(preset=preset, num_classes=60)


def _data(n: int = 12, t: int = 20) -> np.ndarray:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, 3, t, 25, 2, generator=g) * 0.2
    x[:, 2] += 3.0
    x[: n // 2, :, :, :, 1] = 0
    return x.numpy()


def _tiny_cfg(**kw) -> MocoConfig:
    base = dict(feature_dim=6, queue_size=12, epochs=3, batch_size=4, lr=0.05, lr_steps=(2,))
    return MocoConfig(**{**base, **kw})


def test_temporal_crop_is_a_window_of_the_reflect_padded_sequence() -> None:
    t = 12
    x = torch.arange(t, dtype=torch.float32).view(1, 1, t, 1, 1).expand(50, 1, t, 1, 1).contiguous()
    out = temporal_crop(x, 6, torch.Generator().manual_seed(0))  # pad = 2 frames each side, reversed
    padded = torch.tensor([1.0, 0.0, *range(t), 11.0, 10.0])
    starts = set()
    for row in out[:, 0, :, 0, 0]:
        start = next(s for s in range(5) if torch.equal(padded[s : s + t], row))
        starts.add(start)
    assert starts == {0, 1, 2, 3, 4}  # every start in [0, 2 * pad] is drawn
    assert torch.equal(temporal_crop(x, 0, torch.Generator()), x)


def test_shear_matches_the_official_matrix_product() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 5, 25, 2)
    out = shear(x, 0.5, g)
    s = (torch.rand(4, 6, generator=torch.Generator().manual_seed(1)) * 2 - 1) * 0.5
    for i in range(4):
        s1, s2 = s[i, :3].tolist(), s[i, 3:].tolist()
        r = np.array([[1, s1[0], s2[0]], [s1[1], 1, s2[1]], [s1[2], s2[2], 1]]).T  # tools.shear
        ref = np.dot(x[i].numpy().transpose(1, 2, 3, 0), r).transpose(3, 0, 1, 2)
        np.testing.assert_allclose(out[i].numpy(), ref, rtol=1e-5, atol=1e-6)
    assert s.abs().max() <= 0.5


def test_full_moco_has_skeletonclr_pretext_layout() -> None:
    model = MoCo(_victim("full").network.encoder_q, MocoConfig())
    state = model.state_dict()
    assert len(state) == 364  # as measured on SkeletonCLR(pretrain=True)
    assert state["queue"].shape == (128, 32768) and state["queue_ptr"].shape == (1,)
    assert state["encoder_q.fc.0.weight"].shape == (256, 256) and state["encoder_q.fc.2.weight"].shape == (128, 256)
    assert sum(p.numel() for p in model.encoder_q.parameters()) == 920_068
    torch.testing.assert_close(state["queue"].norm(dim=0), torch.ones(32768))
    assert not any(p.requires_grad for p in model.encoder_k.parameters())


def test_forward_puts_positive_first_updates_keys_by_momentum_and_enqueues() -> None:
    torch.manual_seed(0)
    model = MoCo(_victim().network.encoder_q, _tiny_cfg(momentum=0.9))
    with torch.no_grad():
        for p in model.encoder_q.parameters():
            p.add_(0.01)
    q_params = [p.detach().clone() for p in model.encoder_q.parameters()]
    k_before = [p.detach().clone() for p in model.encoder_k.parameters()]
    x = torch.randn(5, 3, 20, 25, 2)
    queue_before = model.queue.clone()
    model.eval()
    logits = model(x, x)
    assert logits.shape == (5, 1 + 12)
    with torch.no_grad():  # column 0: the query against its key from the momentum-updated key encoder
        q = torch.nn.functional.normalize(model.encoder_q(x), dim=1)
        k = torch.nn.functional.normalize(model.encoder_k(x), dim=1)
    torch.testing.assert_close(logits[:, 0], (q * k).sum(1) / 0.07, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits[:, 1:], q @ queue_before / 0.07, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.queue[:, :5], k.T)
    for k0, q, k1 in zip(k_before, q_params, model.encoder_k.parameters()):
        torch.testing.assert_close(k1, 0.9 * k0 + 0.1 * q)
    assert int(model.queue_ptr) == 5
    model(x, x)
    assert int(model.queue_ptr) == (10 % 12)  # the pointer wraps around the queue


def test_pretraining_resumes_to_the_same_weights_and_writes_official_layout(tmp_path) -> None:
    data = _data()
    straight = pretrain_moco(data, _victim(), _tiny_cfg(), tmp_path / "a", progress=False)
    pretrain_moco(data, _victim(), _tiny_cfg(max_steps=4), tmp_path / "b", progress=False)  # stops mid-epoch 2
    meta_b = json.loads((tmp_path / "b" / "metadata.json").read_text())
    assert meta_b["steps"] == 4 and meta_b["epochs_done"] == 1
    resumed = pretrain_moco(data, _victim(), _tiny_cfg(), tmp_path / "b", progress=False)
    a = torch.load(straight.checkpoint, weights_only=True)
    b = torch.load(resumed.checkpoint, weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert straight.metadata["steps"] == 9 and int(a["queue_ptr"]) == (9 * 4) % 12
    assert {k.split(".")[0] for k in a} == {"encoder_q", "encoder_k", "queue", "queue_ptr"}
    assert [h["lr"] for h in straight.metadata["history"]] == pytest.approx([0.05, 0.05, 0.005])
    with pytest.raises(ConfigError, match="differs in moco"):
        pretrain_moco(data, _victim(), _tiny_cfg(temperature=0.2), tmp_path / "b", progress=False)


def test_embedding_is_the_query_encoder_without_projector_and_reloads(tmp_path) -> None:
    data = _data()
    result = pretrain_moco(data, _victim(), _tiny_cfg(epochs=1), tmp_path, progress=False)
    emb = result.embedding
    assert isinstance(emb, Embedding) and not emb.training
    x = torch.as_tensor(data[:3]).requires_grad_(True)
    feats = emb(x)
    assert feats.shape == (3, 8)  # the lite encoder's last width (channels=(8, 8))
    assert load_embedding(result.checkpoint, _victim(), projector=True)(x).shape == (3, 6)
    feats.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    again = load_embedding(result.checkpoint, _victim(), encoder_state=VICTIMS.get("skeletonclr").extra["encoder_state"])
    torch.testing.assert_close(again(x.detach()), feats.detach())
    with pytest.raises(ConfigError, match="fewer than one batch"):
        pretrain_moco(data[:3], _victim(), _tiny_cfg(), tmp_path / "few", progress=False)


def test_pretrain_cli_runs_and_reports(tmp_path) -> None:
    out = tmp_path / "moco"
    args = ["pretrain", "--method", "moco", "--victim", "skeletonclr", "--dataset", "synthetic", "--preset", "lite",
            "--max-steps", "1", "--batch-size", "8", "--queue-size", "64", "--config", "channels=[8, 8]",
            "--config", "strides=[2, 2]", "--out", str(out), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    meta = json.loads(result.stdout[result.stdout.index("{"):])
    assert meta["steps"] == 1 and meta["n_samples"] == 1280 and meta["split"] == "train" and meta["victim"] == "skeletonclr"
    state = torch.load(out / "encoder.pt", weights_only=True)
    assert state["queue"].shape == (128, 64)
    bad = CliRunner().invoke(main, [*args[:-3], "--temperature", "0.5", "--out", str(out)])
    assert bad.exit_code != 0 and "different pretraining run" in bad.output and "Traceback" not in bad.output
