"""CrosSCLR-3views victim: official keys and logits per view, streams inside forward, checkpoint mix-ups."""

from __future__ import annotations

import pytest
import torch
from ssl_reference import CROSSCLR3_FIXTURE, network_input, raw_input, realistic_fill

import skelrobust
from skelrobust.errors import CheckpointError, ConfigError
from skelrobust.recipes import MocoConfig
from skelrobust.recipes.linear_eval import load_frozen_encoder
from skelrobust.recipes.moco import MoCo
from skelrobust.victim import VICTIMS

REF = torch.load(CROSSCLR3_FIXTURE, weights_only=True)
NAME = "crossclr-3view"


def build(preset: str = "full", num_classes: int = 7, **config):
    torch.manual_seed(0)
    return VICTIMS.get(NAME).build(preset=preset, num_classes=num_classes, **config)


def test_full_has_the_official_three_view_keys() -> None:
    net = build(num_classes=60).network
    assert [(k, list(v.shape)) for k, v in net.state_dict().items()] == [tuple(x) for x in REF["keys_ntu60"]]
    assert len(REF["keys_ntu60"]) == 3 * 179


@pytest.mark.parametrize("view", ["all", "joint", "motion", "bone"])
def test_logits_match_the_official_network_for_each_view(view: str) -> None:
    victim = build(view=view, pipeline="none").eval()
    victim.network.load_state_dict(realistic_fill(victim.network.state_dict(), seed=5))
    with torch.no_grad():
        out = victim(network_input())
    assert REF[view]["logits"].abs().mean() > 0.5
    torch.testing.assert_close(out, REF[view]["logits"], atol=1e-4, rtol=1e-4)


def test_all_is_the_mean_of_the_three_streams_and_differentiable_to_the_raw_clip() -> None:
    state = realistic_fill(build("lite").network.state_dict(), seed=1)
    outs = {}
    for view in ("all", "joint", "motion", "bone"):
        victim = build("lite", view=view).eval()
        victim.network.load_state_dict(state)
        x = raw_input().requires_grad_(True)
        outs[view] = victim(x)
        if view == "all":
            outs[view].sum().backward()
            assert x.grad is not None and (x.grad.flatten(1).abs().sum(1) > 0).all()
    torch.testing.assert_close(outs["all"], (outs["joint"] + outs["motion"] + outs["bone"]) / 3, atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="view must be one of all, joint, motion, bone"):
        build("lite", view="velocity")


def test_files_of_the_single_view_family_and_pretext_files_say_what_to_do(tmp_path) -> None:
    single = tmp_path / "crossclr_joint.pt"
    torch.save(VICTIMS.get("crossclr").build(preset="lite", num_classes=7).network.state_dict(), single)
    with pytest.raises(CheckpointError, match="single-view checkpoint .*--victim crossclr"):
        skelrobust.load_victim(NAME, checkpoint=single, num_classes=7, preset="lite")
    three = tmp_path / "crossclr_3views_linear.pt"
    torch.save(build("lite").network.state_dict(), three)
    with pytest.raises(CheckpointError, match="looks like a crossclr-3view checkpoint .*--victim crossclr-3view"):
        skelrobust.load_victim("crossclr", checkpoint=three, num_classes=7, preset="lite")
    assert skelrobust.load_victim(NAME, checkpoint=three, num_classes=7, preset="lite").config["view"] == "all"
    # a 3-view pretext file: three MoCo encoders (the official key names)
    net = build("lite", num_classes=7).network
    pretext = {}
    for stream in ("", "_motion", "_bone"):
        moco = MoCo(getattr(net, "encoder_q" + stream), MocoConfig(queue_size=32)).state_dict()
        for key, value in moco.items():
            head, _, rest = key.partition(".")
            pretext[f"{head}{stream}.{rest}" if rest else f"{head}{stream}"] = value
    path = tmp_path / "crossclr_3views_epoch300.pt"
    torch.save(pretext, path)
    with pytest.raises(CheckpointError, match="3-view pretraining \\(pretext\\) checkpoint .*--victim crossclr"):
        skelrobust.load_victim(NAME, checkpoint=path, num_classes=7, preset="lite")
    with pytest.raises(CheckpointError, match="three heads on three streams"):
        load_frozen_encoder(build("lite"), path)
    joint = VICTIMS.get("crossclr").build(preset="lite", num_classes=7)
    load_frozen_encoder(joint, path)  # the single-view family reads the joint encoder of a 3-view file
    torch.testing.assert_close(joint.network.encoder_q.data_bn.weight, pretext["encoder_q.data_bn.weight"])


def test_moco_pretraining_refuses_the_three_stream_model() -> None:
    from click.testing import CliRunner

    from skelrobust.cli import main

    result = CliRunner().invoke(main, ["pretrain", "--method", "moco", "--victim", NAME, "--dataset", "synthetic", "--preset", "lite",
                                       "--out", "unused"])
    assert result.exit_code != 0
    assert "three stream encoders" in result.output and "--victim crossclr" in result.output
