"""ST-GCN victim: official graph, names, logits; mmskeleton / pyskl / RobustBenchHAR checkpoints; presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gcn_reference import FIXTURE, deterministic_fill, reference_input
from realistic_fill import fill_module, realistic_input

from skelrobust.checkpoints import load_into
from skelrobust.adapters import PreNormalize3D
from skelrobust.errors import CheckpointError, ConfigError, LayoutMismatchError
from skelrobust.graph import inward_edges, stgcn_adjacency, stgcn_center
from skelrobust.victim import VICTIMS
from skelrobust.victims import stgcn

REF = torch.load(FIXTURE, weights_only=True)


def build(preset: str = "full", num_classes: int = 7, **kw):
    return VICTIMS.get("stgcn").build(preset=preset, num_classes=num_classes, **kw)


def test_ntu_adjacency_matches_official_spatial_partition() -> None:
    a = stgcn_adjacency(25, inward_edges("ntu25"), stgcn_center("ntu25"))
    assert np.array_equal(a, REF["stgcn"]["A"].numpy())
    assert [int((s != 0).sum()) for s in a] == [25, 40, 8]  # the inf-hop quirk puts most links in subset 1
    further = sorted(zip(*np.nonzero(a[2])))
    assert further == [(1, 0), (2, 3), (4, 5), (8, 9), (20, 1), (20, 2), (20, 4), (20, 8)]
    np.testing.assert_allclose(a.sum(axis=(0, 1)), np.ones(25))
    assert a[0, 20, 20] == pytest.approx(0.2) and a[0, 0, 0] == pytest.approx(0.25)


def test_hdm05_graph_is_robustbenchhar_graph() -> None:
    rbh_edges = [(10, 11), (11, 12), (12, 13), (13, 14), (13, 15), (15, 16), (16, 17), (17, 18), (18, 19),
                 (13, 20), (20, 21), (21, 22), (22, 23), (23, 24), (10, 0), (0, 1), (1, 2), (2, 3), (3, 4),
                 (10, 5), (5, 6), (6, 7), (7, 8), (8, 9)]
    ours = build(layout="hdm05", num_persons=1).network.A.numpy()
    expected = stgcn_adjacency(25, tuple(rbh_edges), 12)
    np.testing.assert_array_equal(ours, expected.astype(np.float32))


def test_full_has_exactly_the_official_ntu60_keys() -> None:
    net = build(num_classes=60).network
    assert [(k, list(v.shape)) for k, v in net.state_dict().items()] == [tuple(x) for x in REF["stgcn"]["keys_ntu60"]]
    assert sum(p.numel() for p in net.parameters()) == 3_098_832  # as measured on the official model


def test_logits_match_official_and_mmskeleton() -> None:
    net = build().network.eval()
    net.load_state_dict(deterministic_fill(net.state_dict()))
    with torch.no_grad():
        out = net(reference_input())
    torch.testing.assert_close(out, REF["stgcn"]["logits"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out, REF["mmskeleton"]["logits"], atol=1e-4, rtol=1e-4)
    assert REF["mmskeleton"]["keys_ntu60"] == REF["stgcn"]["keys_ntu60"]


def test_logits_match_official_at_trained_weight_scale() -> None:
    net = fill_module(build(num_classes=7).network, (realistic_input(seed=1),))
    with torch.no_grad():
        out = net(realistic_input())
    assert REF["stgcn"]["logits_realistic"].abs().max() > 1.0
    torch.testing.assert_close(out, REF["stgcn"]["logits_realistic"], atol=1e-4, rtol=1e-4)


def _pyskl_state(num_classes: int) -> dict[str, torch.Tensor]:
    state = {}
    a = None
    for key, shape in REF["pyskl"]["keys_ntu60"]:
        shape = [num_classes] + shape[1:] if key.startswith("cls_head.fc_cls") else shape
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("gcn.A"):
            if a is None:
                a = torch.rand(shape)
            state[key] = a.clone()
        else:
            state[key] = torch.zeros(shape)
    return state


def test_pyskl_mapping_reproduces_pyskl_logits() -> None:
    state = _pyskl_state(7)
    for key in state:  # pyskl's graph differs at the hands; it is a buffer, carried over as ST-GCN's A
        if key.endswith("gcn.A"):
            state[key] = REF["pyskl"]["A"].clone()
    state = deterministic_fill(state)
    net = build().network.eval()
    net.load_state_dict(stgcn.convert_state_dict(state), strict=True)
    with torch.no_grad():
        out = net(reference_input())
    torch.testing.assert_close(out, REF["pyskl"]["logits"], atol=1e-4, rtol=1e-4)


def test_pyskl_ntu60_checkpoint_loads_strictly(tmp_path) -> None:
    path = tmp_path / "j.pth"
    torch.save({"state_dict": _pyskl_state(60), "meta": {"epoch": 80}}, path)
    net = build(num_classes=60).network
    load_into(net, path, stgcn.convert_state_dict)
    assert net.fcn.weight.shape == (60, 256, 1, 1)


def test_pyskl_blocks_with_different_graphs_are_refused() -> None:
    state = _pyskl_state(60)
    state["backbone.gcn.3.gcn.A"] = state["backbone.gcn.3.gcn.A"] + 1
    with pytest.raises(CheckpointError, match="backbone.gcn.3.gcn.A"):
        stgcn.convert_state_dict(state)


def test_official_release_without_A_and_counters_loads(tmp_path) -> None:
    net = build(num_classes=60).network
    state = {k: v for k, v in net.state_dict().items() if k != "A" and not k.endswith("num_batches_tracked")}
    path = tmp_path / "st_gcn.ntu-xsub.pt"
    torch.save(state, path)
    fresh = build(num_classes=60).network
    fresh.A.zero_()
    load_into(fresh, path, stgcn.convert_state_dict)
    assert torch.equal(fresh.A, net.A)


def test_robustbenchhar_hdm05_state_dict_loads(tmp_path) -> None:
    src = build(num_classes=65, layout="hdm05", num_persons=1).network
    path = tmp_path / "minValLossModel.pth"
    torch.save(src.state_dict(), path)
    dst = build(num_classes=65, layout="hdm05", num_persons=1).network
    load_into(dst, path, stgcn.convert_state_dict)
    x = torch.randn(2, 3, 60, 25, 1)
    torch.testing.assert_close(dst.eval()(x), src.eval()(x))


def test_mismatched_checkpoint_names_the_keys(tmp_path) -> None:
    path = tmp_path / "bad.pt"
    torch.save({"fcn.weight": torch.zeros(60, 256, 1, 1)}, path)
    with pytest.raises(CheckpointError, match=r"does not fit Model: 171 missing \(A; data_bn\.bias; data_bn\.num_batches_tracked, \+168 more\)"):
        load_into(build(num_classes=60).network, path, stgcn.convert_state_dict)


def test_full_adapter_pads_and_crops_to_300_frames() -> None:
    victim = build()
    x = torch.randn(2, 3, 40, 25, 2)
    padded = victim.adapter(x)
    assert padded.shape == (2, 3, 300, 25, 2)
    assert torch.equal(padded[:, :, :40], x) and not padded[:, :, 40:].any()
    assert victim.adapter(torch.randn(1, 3, 320, 25, 2)).shape[2] == 300


def test_lite_preset_is_small_same_classes_and_keeps_T() -> None:
    victim = build("lite", num_classes=16)
    net = victim.network
    assert isinstance(net, stgcn.Model) and all(isinstance(b, stgcn.st_gcn) for b in net.st_gcn_networks)
    assert 50_000 <= sum(p.numel() for p in net.parameters()) <= 150_000
    assert isinstance(victim.adapter, PreNormalize3D)  # pyskl's normalisation, T kept
    x = torch.randn(3, 3, 64, 25, 2, requires_grad=True)
    assert victim.adapter(x).shape == x.shape
    official = build("lite", num_classes=16, pipeline="official")
    assert torch.equal(official.adapter(x), x)
    victim.eval()(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_logits_do_not_depend_on_person_order() -> None:
    # Official pipeline: raw coordinates, persons averaged. (pyskl's normalisation is defined by person 0.)
    victim = build("lite", num_classes=5, pipeline="official").eval()
    x = torch.randn(2, 3, 32, 25, 2)
    with torch.no_grad():
        torch.testing.assert_close(victim(x), victim(x.flip(-1)), atol=1e-5, rtol=1e-5)


def test_lite_pipeline_follows_the_layout() -> None:
    assert isinstance(build("lite", num_classes=5, layout="msr20").adapter, PreNormalize3D)
    assert not isinstance(build("lite", num_classes=5, layout="hdm05").adapter, PreNormalize3D)
    with pytest.raises(LayoutMismatchError, match="pipeline 'pyskl' needs a spine"):
        build("lite", num_classes=5, layout="hdm05", pipeline="pyskl")
    with pytest.raises(ConfigError, match="unknown pipeline 'bogus'"):
        build("lite", num_classes=5, pipeline="bogus")


def test_bad_preset_and_option_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        build("huge")
    with pytest.raises(ConfigError, match="unknown option"):
        build(widths=(8,))
    with pytest.raises(ConfigError, match="strategy 'bogus'"):
        build(strategy="bogus")
