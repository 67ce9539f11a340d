"""CTR-GCN victim: official graphs, names and logits; RobustBenchHAR checkpoints; adapter; presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gcn_reference import FIXTURE, deterministic_fill, reference_input
from realistic_fill import fill_module, realistic_input

from skelrobust.adapters import CenterCropResize, MinMaxSample
from skelrobust.checkpoints import load_into
from skelrobust.errors import ConfigError, LayoutMismatchError
from skelrobust.graph import ctrgcn_adjacency, inward_edges
from skelrobust.layouts import get_layout
from skelrobust.victim import VICTIMS
from skelrobust.victims import ctrgcn

REF = torch.load(FIXTURE, weights_only=True)


def build(preset: str = "full", num_classes: int = 7, **kw):
    return VICTIMS.get("ctrgcn").build(preset=preset, num_classes=num_classes, **kw)


def test_official_graph_tables() -> None:
    np.testing.assert_array_equal(ctrgcn_adjacency(25, inward_edges("ntu25")), REF["ctrgcn"]["A"].numpy())
    np.testing.assert_array_equal(ctrgcn_adjacency(20, inward_edges("kinect20")), REF["ctrgcn_ucla"]["A"].numpy())
    # the official NTU graph chains hand tip -> thumb -> hand, unlike the layout's parents
    assert (21, 22) in inward_edges("ntu25") and get_layout("ntu25").parents[21] == 7


def test_graph_from_layout_bones() -> None:
    layout = get_layout("msr20")
    a = ctrgcn_adjacency(20, inward_edges(layout))
    assert inward_edges(layout) == layout.bones
    np.testing.assert_array_equal(a[0], np.eye(20))
    for child, parent in layout.bones:
        assert a[1, parent, child] == 1.0  # each child has one parent: inward columns hold a single 1
        n_children = sum(1 for _, p in layout.bones if p == parent)
        assert a[2, child, parent] == pytest.approx(1.0 / n_children)
    assert a[1].sum() == len(layout.bones)


def test_full_has_exactly_the_official_ntu60_keys() -> None:
    net = build(num_classes=60).network
    assert [(k, list(v.shape)) for k, v in net.state_dict().items()] == [tuple(x) for x in REF["ctrgcn"]["keys_ntu60"]]
    assert sum(p.numel() for p in net.parameters()) == 1_446_672  # as measured on the official model


def test_logits_match_official() -> None:
    net = build().network.eval()
    net.load_state_dict(deterministic_fill(net.state_dict()))
    with torch.no_grad():
        torch.testing.assert_close(net(reference_input()), REF["ctrgcn"]["logits"], atol=1e-4, rtol=1e-4)


def test_logits_match_official_nw_ucla_graph() -> None:
    net = build(layout="kinect20", num_persons=1).network.eval()
    net.load_state_dict(deterministic_fill(net.state_dict()))
    with torch.no_grad():
        out = net(reference_input(v=20, m=1))
    torch.testing.assert_close(out, REF["ctrgcn_ucla"]["logits"], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("case", "kwargs", "shape"), [("ctrgcn", {}, {}), ("ctrgcn_ucla", {"layout": "kinect20", "num_persons": 1}, {"v": 20, "m": 1})])
def test_logits_match_official_at_trained_weight_scale(case: str, kwargs: dict, shape: dict) -> None:
    net = fill_module(build(num_classes=7, **kwargs).network, (realistic_input(seed=1, **shape),))
    with torch.no_grad():
        out = net(realistic_input(**shape))
    assert REF[case]["logits_realistic"].abs().max() > 1.0
    torch.testing.assert_close(out, REF[case]["logits_realistic"], atol=1e-4, rtol=1e-4)


def test_official_and_robustbenchhar_checkpoints_load(tmp_path) -> None:
    src = build(num_classes=60).network
    path = tmp_path / "runs-65-40000.pt"
    torch.save({"module." + k: v for k, v in src.state_dict().items()}, path)  # DataParallel-saved
    load_into(build(num_classes=60).network, path, ctrgcn.convert_state_dict)
    # RobustBenchHAR's HDM05 model: 25 joints, 1 person, 65 classes, its PA learnt from the NTU init
    rbh = build(num_classes=65, layout="hdm05", num_persons=1).network
    state = {k: v for k, v in rbh.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "minValLossModel.pth"
    torch.save(state, path)
    dst = build(num_classes=65, layout="hdm05", num_persons=1).network
    load_into(dst, path, ctrgcn.convert_state_dict)
    assert torch.equal(dst.l1.gcn1.PA, rbh.l1.gcn1.PA)


def test_victim_runs_official_pipeline_and_is_differentiable() -> None:
    victim = build("lite", num_classes=5).eval()
    assert isinstance(victim.adapter, CenterCropResize) and victim.adapter.window == 64
    assert victim.adapter.center_joint == 1 and not list(victim.adapter.parameters())
    x = torch.randn(3, 3, 80, 25, 2) * 0.3
    x[1, :, 50:] = 0  # padded tail
    x[2, :, :, :, 1] = 0  # second person absent
    x.requires_grad_(True)
    out = victim(x)
    assert out.shape == (3, 5)
    out.sum().backward()
    assert x.grad[:, :, :10].abs().sum() > 0
    assert not x.grad[1, :, 50:].any()  # padded frames are never read


def test_kinect20_uses_the_nw_ucla_pipeline() -> None:
    victim = build("lite", num_classes=10, layout="kinect20", num_persons=1)
    assert isinstance(victim.adapter, MinMaxSample) and victim.adapter.window == 52
    assert victim.config["pipeline"] == "ucla"
    assert build("lite", layout="kinect20", num_persons=1, pipeline="ntu").adapter.window == 64
    with pytest.raises(ConfigError, match="pipeline 'kinetics'"):
        build("lite", pipeline="kinetics")


def test_person_count_is_fixed() -> None:
    victim = build("lite", num_classes=5)
    with pytest.raises(LayoutMismatchError, match="expects M=2"):
        victim(torch.randn(1, 3, 16, 25, 1))
    with pytest.raises(ConfigError, match="num_persons"):
        build("lite", num_persons=None)


def test_lite_preset_is_small_and_uses_the_official_classes() -> None:
    net = build("lite", num_classes=16).network
    assert 50_000 <= sum(p.numel() for p in net.parameters()) <= 150_000
    assert net.num_units == 4 and isinstance(net.l1, ctrgcn.TCN_GCN_unit) and not hasattr(net, "l5")
    assert isinstance(net.l1.gcn1.convs[0], ctrgcn.CTRGC)


def test_bad_preset_and_option_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown preset"):
        build("tiny")
    with pytest.raises(ConfigError, match="unknown option"):
        build(base_channel=32)
    with pytest.raises(ConfigError, match="not divisible by 4"):
        build(channels=(18,), strides=(1,))
