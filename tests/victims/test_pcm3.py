"""PCM3 victim: official keys and logits (carried BiGRU), the 2s-AGCN + crop pipeline, checkpoint kinds."""

from __future__ import annotations

import pytest
import torch
from ssl_reference import PCM3_FIXTURE, agcn_raw_input, gru_realistic_fill, network_input

import skelrobust
from skelrobust.adapters import agcn_prenormalize, valid_lengths
from skelrobust.errors import CheckpointError
from skelrobust.recipes import MocoConfig, load_embedding
from skelrobust.recipes.moco import MoCo
from skelrobust.victim import VICTIMS

REF = torch.load(PCM3_FIXTURE, weights_only=True)


def build(preset: str = "full", num_classes: int = 7, **config):
    torch.manual_seed(0)
    return VICTIMS.get("pcm3").build(preset=preset, num_classes=num_classes, **config)


def test_full_has_the_official_linear_eval_keys_and_size() -> None:
    net = build(num_classes=60).network
    assert [(k, list(v.shape)) for k, v in net.state_dict().items()] == [tuple(x) for x in REF["keys_ntu60"]]
    assert sum(p.numel() for p in net.parameters()) == 45_121_896


@pytest.mark.parametrize(("name", "hidden", "seed", "frames"), [
    ("small", 64, 1, 64),
    pytest.param("full", 1024, 0, 16, marks=pytest.mark.slow),  # 45M parameters: ~6 s on one core
])
def test_logits_match_the_official_network_at_realistic_scale(name: str, hidden: int, seed: int, frames: int) -> None:
    victim = build(hidden=hidden, layers=3, pipeline="none").eval()
    victim.network.load_state_dict(gru_realistic_fill(victim.network.state_dict(), seed=seed))
    with torch.no_grad():
        out = victim(network_input(t=frames))
    assert REF[name]["logits"].abs().mean() > 0.5
    torch.testing.assert_close(out, REF[name]["logits"], atol=1e-4, rtol=1e-4)


def test_feature_index_is_joint_then_axis_then_person() -> None:
    victim = build("lite", pipeline="none")
    x = torch.zeros(1, 3, 4, 25, 2)
    x[0, 2, :, 7, 1] = 1.0  # z of joint 7, person 2
    flat = victim.adapter(x)
    assert flat.shape == (1, 4, 150) and flat[0, 0].nonzero().flatten().tolist() == [7 * 6 + 2 * 2 + 1]


def test_pipeline_reproduces_agcn_prenormalisation_and_the_test_crop() -> None:
    raw = agcn_raw_input()
    assert valid_lengths(raw).tolist() == REF["pipeline"]["lengths"]
    adapter = build("lite").adapter
    flat = adapter(raw)
    assert flat.shape == (4, 64, 150)
    clip = flat.view(4, 64, 25, 3, 2).permute(0, 3, 1, 2, 4)
    torch.testing.assert_close(clip, REF["pipeline"]["output"], atol=1e-5, rtol=1e-5)
    norm = agcn_prenormalize(raw)
    # SpineMid of person 1 at the origin in every frame it is present; person 2 of clip 1 refilled after it left
    assert norm[0, :, :, 1, 0].abs().max() < 1e-6
    assert norm[1, :, 40:60, :, 1].abs().sum() > 0
    # clip 2: person 1 moved to start at frame 0; first-frame shoulders along +x (the spine, set along +z first,
    # may tilt with the second rotation, as in the official code)
    assert norm[2, :, 0, :, 0].abs().sum() > 0
    shoulders = norm[:, :, 0, 8, 0] - norm[:, :, 0, 4, 0]
    torch.testing.assert_close(shoulders[:, 1:], torch.zeros(4, 2), atol=1e-5, rtol=0)


def _linear_file(num_classes: int = 60, seed: int = 3) -> dict[str, torch.Tensor]:
    return gru_realistic_fill(build("lite", num_classes=num_classes).network.state_dict(), seed=seed)


def test_official_checkpoint_wrapper_and_module_prefix_load_strictly(tmp_path) -> None:
    state = _linear_file()
    path = tmp_path / "graph-based_checkpoint.pth.tar"
    wrapped = {"module." + k: v for k, v in state.items()}
    torch.save({"epoch": 80, "state_dict": wrapped, "best_acc1": torch.tensor(83.9), "optimizer": {"state": {}, "param_groups": []}}, path)
    victim = skelrobust.load_victim("pcm3", checkpoint=path, num_classes=60, preset="lite")
    ref = build("lite", num_classes=60).eval()
    ref.network.load_state_dict(state)
    x = agcn_raw_input()
    with torch.no_grad():
        torch.testing.assert_close(victim(x), ref(x), atol=1e-6, rtol=1e-6)


def test_pretext_checkpoint_is_refused_as_a_classifier_and_read_as_an_encoder(tmp_path) -> None:
    victim = build("lite", num_classes=60)
    pretext = MoCo(victim.network.encoder_q, MocoConfig(queue_size=64)).state_dict()
    pretext["cl_prompt"] = torch.zeros(1, 256)
    path = tmp_path / "checkpoint_0450.pth.tar"
    torch.save({"epoch": 450, "state_dict": {"module." + k: v for k, v in pretext.items()}}, path)
    with pytest.raises(CheckpointError, match=r"pcm3 pretraining \(pretext\) checkpoint .*no classifier.*--linear-eval --encoder .*--victim pcm3"):
        skelrobust.load_victim("pcm3", checkpoint=path, num_classes=60, preset="lite")
    emb = load_embedding(path, victim, encoder_state=VICTIMS.get("pcm3").extra["encoder_state"])
    with torch.no_grad():
        assert emb(agcn_raw_input()).shape == (4, 96)


def test_an_ssl_gcn_checkpoint_names_its_family(tmp_path) -> None:
    path = tmp_path / "aimclr.pt"
    torch.save(VICTIMS.get("aimclr").build(preset="lite", num_classes=60).network.state_dict(), path)
    with pytest.raises(CheckpointError, match="ST-GCN-16 encoder .*not PCM3"):
        skelrobust.load_victim("pcm3", checkpoint=path, num_classes=60, preset="lite")
