"""SSL ST-GCN-16 victims: official keys and logits, the NTU60_frame50 pipeline, checkpoint kinds and mix-ups."""

from __future__ import annotations

import pytest
import torch
from ssl_reference import FIXTURE, METHODS, network_input, raw_input, realistic_fill

import skelrobust
from skelrobust.errors import CheckpointError
from skelrobust.recipes import MocoConfig, load_embedding
from skelrobust.recipes.moco import MoCo
from skelrobust.ssl_input import Frame50
from skelrobust.victim import VICTIMS

REF = torch.load(FIXTURE, weights_only=True)


def build(method: str, preset: str = "full", num_classes: int = 7):
    return VICTIMS.get(method).build(preset=preset, num_classes=num_classes)


@pytest.mark.parametrize("method", METHODS)
def test_full_has_the_official_linear_eval_keys(method: str) -> None:
    net = build(method, num_classes=60).network
    assert [(k, list(v.shape)) for k, v in net.state_dict().items()] == [tuple(x) for x in REF[method]["keys_ntu60"]]
    assert len(REF[method]["keys_ntu60"]) == 179 and sum(p.numel() for p in net.parameters()) == 836_800


@pytest.mark.parametrize("method", METHODS)
def test_logits_match_the_official_network_at_realistic_scale(method: str) -> None:
    net = build(method).network.eval()
    net.load_state_dict(realistic_fill(net.state_dict(), seed=METHODS.index(method)))
    with torch.no_grad():
        out = net(network_input())
    assert REF[method]["logits"].abs().mean() > 0.5  # a fill that exercises the network, not a near-zero output
    torch.testing.assert_close(out, REF[method]["logits"], atol=1e-4, rtol=1e-4)


def test_frame50_adapter_reproduces_the_official_preprocessing() -> None:
    victim = build("skeletonclr")
    assert isinstance(victim.adapter, Frame50)
    out = victim.adapter(raw_input())
    assert out.shape == (3, 3, 50, 25, 2)
    torch.testing.assert_close(out, REF["pipeline"]["output"], atol=1e-4, rtol=1e-4)
    # SpineShoulder at the origin; absent person still zero; shoulders parallel to x in the frames whose shoulder
    # z-difference has the sign of its sum over frames (the official code picks one rotation sense per sequence,
    # so the other frames are rotated the wrong way: reproduced as is)
    assert out[:, :, :, 20].abs().max() < 1e-6
    assert not out[2, :, :, :, 1].any()
    before = Frame50(rotate=False)(raw_input())
    dz = before[:, 2, :, 8, 0] - before[:, 2, :, 4, 0]
    agree = (dz >= 0) == (dz.sum(dim=1, keepdim=True) >= 0)
    assert 0 < agree.sum() < agree.numel()
    width = (before[:, [0, 2], :, 8, 0] - before[:, [0, 2], :, 4, 0]).norm(dim=1)
    dz_after = (out[:, 2, :, 8, 0] - out[:, 2, :, 4, 0]).abs()
    assert (dz_after[agree] <= 0.05 * width[agree]).all()  # up to the official +1e-4 in the cosine's denominator
    assert (dz_after[~agree] > 0.05 * width[~agree]).any()


def _released(method_of_file: str, head_4d: bool = True) -> dict[str, torch.Tensor]:
    """A linear-evaluation file as released: bare dict, 179 keys prefixed encoder_q. (conv head as in ActCLR's repo)."""
    state = realistic_fill(build(method_of_file, num_classes=60).network.state_dict(), seed=5)
    if head_4d and state["encoder_q.fc.weight"].ndim == 2:
        state["encoder_q.fc.weight"] = state["encoder_q.fc.weight"][:, :, None, None]
    return state


@pytest.mark.parametrize("method", ["aimclr", "actclr", "skeletonclr"])
def test_released_linear_eval_file_loads_strictly_with_either_head_shape(method: str, tmp_path) -> None:
    for head_4d in (True, False):
        path = tmp_path / f"best_model_{head_4d}.pt"
        torch.save(_released("aimclr", head_4d), path)
        victim = skelrobust.load_victim(method, checkpoint=path, num_classes=60, preset="full")
        ref = build("aimclr", num_classes=60).network.eval()
        ref.load_state_dict(_released("aimclr", head_4d=False))
        x = network_input()
        with torch.no_grad():
            torch.testing.assert_close(victim.network(x), ref(x), atol=1e-5, rtol=1e-5)


def test_pretext_file_is_an_encoder_not_a_classifier(tmp_path) -> None:
    victim = build("skeletonclr", num_classes=60)
    path = tmp_path / "epoch300_model.pt"
    torch.save(MoCo(victim.network.encoder_q, MocoConfig(queue_size=256)).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"pretext\) checkpoint .*no classifier.*--linear-eval --encoder") as info:
        skelrobust.load_victim("skeletonclr", checkpoint=path, num_classes=60, preset="full")
    assert str(path) in str(info.value)
    emb = load_embedding(path, victim, encoder_state=VICTIMS.get("skeletonclr").extra["encoder_state"])
    with torch.no_grad():
        assert emb(raw_input()).shape == (3, 256)


def test_checkpoint_of_another_method_names_it(tmp_path) -> None:
    hiclr = tmp_path / "hiclr.pt"
    torch.save(_released("hiclr", head_4d=False), hiclr)
    with pytest.raises(CheckpointError, match="looks like a hiclr checkpoint .*edge_importance1.*--victim hiclr"):
        skelrobust.load_victim("aimclr", checkpoint=hiclr, num_classes=60, preset="full")
    aim = tmp_path / "aimclr.pt"
    torch.save(_released("aimclr", head_4d=False), aim)
    with pytest.raises(CheckpointError, match="looks like a skeletonclr, crossclr or aimclr checkpoint"):
        skelrobust.load_victim("hiclr", checkpoint=aim, num_classes=60, preset="full")
    act = tmp_path / "actclr_pretext.pt"
    state = MoCo(build("actclr", num_classes=60).network.encoder_q, MocoConfig(queue_size=64)).state_dict()
    torch.save({**state, "prototypes.weight": torch.zeros(4, 128)}, act)
    with pytest.raises(CheckpointError, match="looks like a actclr checkpoint .*prototypes"):
        skelrobust.load_victim("skeletonclr", checkpoint=act, num_classes=60, preset="full")
    sup = tmp_path / "stgcn.pt"
    torch.save(VICTIMS.get("stgcn").build(preset="full", num_classes=60).network.state_dict(), sup)
    with pytest.raises(CheckpointError, match="looks like a stgcn checkpoint"):
        skelrobust.load_victim("crossclr", checkpoint=sup, num_classes=60, preset="full")


def test_lite_preset_is_small_and_takes_any_length() -> None:
    victim = build("skeletonclr", "lite", num_classes=16).eval()
    assert 50_000 <= sum(p.numel() for p in victim.network.parameters()) <= 120_000
    with torch.no_grad():
        assert victim(raw_input()).shape == (3, 16)
        assert victim(torch.randn(1, 3, 300, 25, 2)).shape == (1, 16)


def test_victims_json_lists_presets_and_checkpoint_formats() -> None:
    import json

    from click.testing import CliRunner

    from skelrobust.cli import main

    result = CliRunner().invoke(main, ["victims", "--json"])
    assert result.exit_code == 0, result.output
    listed = {v["name"]: v for v in json.loads(result.stdout)["victims"]}
    for method in METHODS:
        assert listed[method]["presets"] == ["full", "lite"]
        formats = " ".join(listed[method]["checkpoint_formats"])
        assert "encoder_q." in formats and "pretext" in formats and "--linear-eval" in formats
    assert listed["stgcn"]["checkpoint_formats"]
    expected = {"pcm3": ("'state_dict'", "module.", "pretext"), "macdiff": ("'model'", "head.fc.0", "temp_embed"),
                "crossclr-3view": ("encoder_q_motion.", "encoder_q_bone.", "pretext")}
    for name, fragments in expected.items():
        assert listed[name]["presets"] == ["full", "lite"] and listed[name]["layouts"] == ["ntu25"]
        formats = " ".join(listed[name]["checkpoint_formats"])
        assert all(f in formats for f in fragments), (name, formats)
