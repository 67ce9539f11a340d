"""MacDiff victim: official keys and logits, temporal-embedding interpolation, MAE-style files, the pipeline."""

from __future__ import annotations

import argparse

import pytest
import torch
from ssl_reference import MACDIFF_FIXTURE, network_input, raw_input, transformer_realistic_fill

import skelrobust
from skelrobust.adapters import CenterCropResize, crop_resize
from skelrobust.errors import CheckpointError
from skelrobust.victim import VICTIMS

REF = torch.load(MACDIFF_FIXTURE, weights_only=True)


def build(preset: str = "full", num_classes: int = 7, **config):
    torch.manual_seed(0)
    return VICTIMS.get("macdiff").build(preset=preset, num_classes=num_classes, **config)


def _filled(frames: int = 120):
    victim = build(pipeline="none", frames=frames).eval()
    state = transformer_realistic_fill(build(pipeline="none").network.state_dict(), seed=0)
    return victim, state


def test_full_has_the_official_linear_probe_keys_and_size() -> None:
    net = build(num_classes=60).network
    assert [(k, list(v.shape)) for k, v in net.state_dict().items()] == [tuple(x) for x in REF["keys_ntu60"]]
    assert sum(p.numel() for p in net.parameters()) == 6_720_060


@pytest.mark.slow  # 750 tokens through 8 blocks: ~10 s on one core; the 64-frame check below runs by default
def test_logits_match_the_official_network_at_realistic_scale() -> None:
    victim, state = _filled()
    victim.network.load_state_dict(state)
    with torch.no_grad():
        out = victim(network_input(t=120))
    assert REF["full"]["logits"].abs().mean() > 0.5
    torch.testing.assert_close(out, REF["full"]["logits"], atol=1e-4, rtol=1e-4)


def _mae_file(path, state: dict[str, torch.Tensor]) -> None:
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": []}, "epoch": 99, "scaler": {"scale": 65536.0},
                "args": argparse.Namespace(lr=0.1, model_args={"depth": 8}, output_dir="out")}, path)


def test_mae_style_checkpoint_for_120_frames_loads_into_a_64_frame_model_like_interpolate_temp_embed(tmp_path) -> None:
    """The full-width network's logits against the official ones, at 64 frames (temp_embed 30 -> 16 rows)."""
    _, state = _filled()
    path = tmp_path / "checkpoint-99.pth"
    _mae_file(path, state)
    victim = skelrobust.load_victim("macdiff", checkpoint=path, num_classes=7, preset="full", frames=64, pipeline="none")
    torch.testing.assert_close(victim.network.temp_embed.detach(), REF["resized"]["temp_embed"], atol=1e-6, rtol=1e-6)
    with torch.no_grad():
        out = victim(network_input(t=64))
    torch.testing.assert_close(out, REF["resized"]["logits"], atol=1e-4, rtol=1e-4)


def test_pipeline_is_the_ctrgcn_adapter_with_a_120_frame_window() -> None:
    adapter = build().adapter
    assert isinstance(adapter, CenterCropResize) and (adapter.window, adapter.p, adapter.center_joint) == (120, 0.95, 1)
    torch.testing.assert_close(crop_resize(raw_input(), 120, 0.95), REF["pipeline"]["output"], atol=1e-5, rtol=1e-5)


def test_eval_mode_turns_the_head_dropout_off_and_the_normalisation_is_inside() -> None:
    victim = build("lite", num_classes=5)
    x = torch.zeros(2, 3, 40, 25, 2)
    x[:, 1] = 0.5
    victim.train()
    with torch.no_grad():
        a, b = victim(x), victim(x)
    assert not torch.allclose(a, b)  # dropout 0.3 in training
    victim.eval()
    with torch.no_grad():
        torch.testing.assert_close(victim(x), victim(x))
        # an all-zero clip still gives tokens: (0 - mean) / std per axis, as officially
        assert victim.network.features(torch.zeros(1, 3, 64, 25, 2)).abs().sum() > 0


def test_pretraining_and_finetuning_files_are_refused_with_what_to_do(tmp_path) -> None:
    encoder = {k: v for k, v in build("lite").network.state_dict().items() if not k.startswith("head.")}
    pre = tmp_path / "pretrain.pth"
    _mae_file(pre, {**encoder, "decoder_pos_embed": torch.zeros(1, 1, 25, 256)})
    with pytest.raises(CheckpointError, match=r"macdiff pretraining checkpoint .*decoder_pos_embed.*main_linprobe\.py"):
        skelrobust.load_victim("macdiff", checkpoint=pre, num_classes=7, preset="lite")
    fine = tmp_path / "finetune.pth"
    _mae_file(fine, {**encoder, "head.fc1.weight": torch.zeros(2048, 6400)})
    with pytest.raises(CheckpointError, match="fine-tuning checkpoint"):
        skelrobust.load_victim("macdiff", checkpoint=fine, num_classes=7, preset="lite")
