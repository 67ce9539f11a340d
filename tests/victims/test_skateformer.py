"""SkateFormer victim: official state-dict layout, logits equal to the official code, official test pipelines.

Reference values come from the authors' code (KAIST-VICLab/SkateFormer) and the prior benchmark's copy
(RobustBenchHAR), run by ``fixtures/skateformer_make_fixture.py`` with the deterministic weights of
:func:`fill_deterministic` on the inputs of :func:`canonical_input`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from realistic_fill import fill_module
from skelrobust.errors import ConfigError, LayoutMismatchError, UnsupportedError
from skelrobust.victim import VICTIMS

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FEEDER_LENGTHS = [1, 17, 39, 40, 50, 63, 64, 65, 67, 68, 100, 157]
NTU_ORDER = [6, 7, 21, 22, 10, 11, 23, 24, 12, 13, 14, 15, 16, 17, 18, 19, 4, 8, 5, 9, 1, 2, 0, 3]
_NTU_WINDOWS = dict(type_1_size=(8, 8), type_2_size=(8, 12), type_3_size=(8, 8), type_4_size=(8, 12))
_COMMON = dict(kernel_size=7, head_drop=0.0, rel=True, mlp_ratio=4.0)
_FULL = dict(depths=(2, 2, 2, 2), channels=(96, 192, 192, 192), embed_dim=96, num_heads=32, attn_drop=0.5, drop_path=0.2)

# name -> canonical input, official constructor arguments and our build arguments.
LOGIT_CASES: dict[str, dict] = {
    "ntu_full": dict(
        kind="ntu", lengths=[80, 50], frames=90, joints=25, persons=2, window=64,
        official=dict(num_people=2, num_points=24, **_FULL, **_COMMON, **_NTU_WINDOWS),
        ours=dict(preset="full", layout="ntu25", center=False),
    ),
    "ntu_lite": dict(
        kind="ntu", lengths=[45, 100], frames=100, joints=25, persons=2, window=24,
        official=dict(
            num_people=2, num_points=24, depths=(1, 1), channels=(32, 64), embed_dim=32, num_heads=8,
            attn_drop=0.0, drop_path=0.1, kernel_size=7, head_drop=0.0, rel=True, mlp_ratio=2.0,
            type_1_size=(6, 8), type_2_size=(6, 12), type_3_size=(6, 8), type_4_size=(6, 12),
        ),
        ours=dict(preset="lite", layout="ntu25", center=False),
    ),
    "ucla_full": dict(
        kind="ucla", lengths=[30, 52], frames=60, joints=20, persons=1, window=64,
        official=dict(
            num_people=1, num_points=20, **_FULL, **_COMMON,
            type_1_size=(8, 4), type_2_size=(8, 5), type_3_size=(8, 4), type_4_size=(8, 5),
        ),
        ours=dict(preset="full", layout="kinect20"),
    ),
    "rbh_ntu": dict(
        kind="rbh", lengths=[60, 60], frames=60, joints=25, persons=2,
        official=dict(num_people=2),
        ours=dict(preset="full", layout="ntu25", compat="robustbenchhar"),
    ),
    "rbh_hdm05": dict(
        kind="rbh", lengths=[60, 60], frames=60, joints=25, persons=1,
        official=dict(num_people=1, type_1_size=(8, 4), type_2_size=(8, 6), type_3_size=(8, 4), type_4_size=(8, 6)),
        ours=dict(preset="full", layout="hdm05", compat="robustbenchhar"),
    ),
}

def fill_deterministic(module: torch.nn.Module) -> None:
    """Overwrite every floating parameter/buffer: entry k of the sorted state dict gets ``sin(0.37 i + k) / 10``.

    BatchNorm running variances get ``1 + sin(...) / 2`` (positive); integer buffers (relative position
    indices, batch counters) keep their values.
    """
    state = module.state_dict()
    filled = {}
    for k, name in enumerate(sorted(state)):
        value = state[name]
        if not value.is_floating_point():
            filled[name] = value
            continue
        wave = torch.sin(torch.arange(value.numel(), dtype=torch.float64) * 0.37 + k) * 0.1
        if name.endswith("running_var"):
            wave = 1.0 + 5.0 * wave
        filled[name] = wave.reshape(value.shape).to(value.dtype)
    module.load_state_dict(filled)


def canonical_input(
    lengths: list[int], frames: int, joints: int = 25, persons: int = 2
) -> torch.Tensor:
    """``(N, 3, frames, joints, persons)`` smooth non-zero values, zero past each valid length; odd samples have person 1 absent."""
    n = len(lengths)
    t = torch.arange(frames, dtype=torch.float64).view(1, 1, frames, 1, 1)
    v = torch.arange(joints, dtype=torch.float64).view(1, 1, 1, joints, 1)
    c = torch.arange(3, dtype=torch.float64).view(1, 3, 1, 1, 1)
    m = torch.arange(persons, dtype=torch.float64).view(1, 1, 1, 1, persons)
    s = torch.arange(n, dtype=torch.float64).view(n, 1, 1, 1, 1)
    x = torch.sin(0.37 * t + 0.1 * v + 1.1 * c + 0.5 * m + 0.3 * s) * 0.5 + 0.1 * (c + 1) + 0.05 * m
    valid = t < torch.tensor(lengths, dtype=torch.float64).view(n, 1, 1, 1, 1)
    x = torch.where(valid, x, torch.zeros_like(x))
    if persons > 1:
        x[1::2, :, :, :, 1:] = 0.0
    return x.float()


def seq_translation_input() -> torch.Tensor:
    """One raw two-actor sample ``(3, 8, 25, 2)``: actor 1 missing in frames 0-1, actor 2 missing in frames 4-5, 7 padded."""
    x = canonical_input([7], frames=8)[0] + torch.tensor([0.3, -0.2, 3.1]).view(3, 1, 1, 1)
    x[:, 7:] = 0.0
    x[:, 0:2, :, 0] = 0.0
    x[:, 4:6, :, 1] = 0.0
    return x


@pytest.fixture(scope="module")
def reference() -> dict:
    return torch.load(FIXTURES / "skateformer_reference.pt", weights_only=True)


def build(**kwargs):
    return VICTIMS.get("skateformer").build(**kwargs)


# ----------------------------------------------------------------------------------------- network


def test_full_network_has_exactly_the_official_ntu60_state_dict():
    official = json.loads((FIXTURES / "skateformer_ntu60_keys.json").read_text())
    victim = build(preset="full", num_classes=60)
    ours = {k: list(v.shape) for k, v in victim.network.state_dict().items()}
    assert ours == official["state_dict"]
    assert len(ours) == 214
    assert sum(p.numel() for p in victim.network.parameters()) == official["num_parameters"] == 3616083
    assert victim.network.state_dict()["stages.0.blocks.0.transformer.attention.1.relative_position_index"].dtype == torch.int64


@pytest.mark.parametrize("name", list(LOGIT_CASES))
def test_logits_match_official_code(name, reference):
    case = LOGIT_CASES[name]
    victim = build(num_classes=5, **case["ours"])
    fill_deterministic(victim.network)
    victim.eval()
    x = canonical_input(case["lengths"], case["frames"], case["joints"], case["persons"])
    with torch.no_grad():
        logits = victim(x)
    expected = reference[f"logits_{name}"]
    assert expected.abs().max() > 1e-2  # the reference is not degenerate
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", list(LOGIT_CASES))
def test_logits_match_official_code_at_trained_weight_scale(name, reference):
    """Random-normal weights with bias tables of std 0.5: a mis-laid relative position bias shows here."""
    case = LOGIT_CASES[name]
    victim = build(num_classes=5, **case["ours"])
    fill_module(victim.network)
    x = canonical_input(case["lengths"], case["frames"], case["joints"], case["persons"])
    with torch.no_grad():
        logits = victim(x)
    expected = reference[f"logits_realistic_{name}"]
    assert expected.abs().max() > 1.0
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)


def test_reference_cases_cover_every_partition_type_with_frames_unequal_to_points():
    sizes: dict[int, set] = {i: set() for i in range(1, 5)}
    for case in LOGIT_CASES.values():
        for i in range(1, 5):
            if f"type_{i}_size" in case["official"]:
                sizes[i].add(tuple(case["official"][f"type_{i}_size"]))
    assert all(any(f != p for f, p in sizes[i]) for i in range(1, 5)), sizes


def test_type_1_and_3_bias_follows_token_index_modulo_frames():
    """The official ``.repeat`` lays the (2F - 1) table out by ``a mod F``, not by the token's frame ``a // P``."""
    from skelrobust.victims._skateformer_blocks import MultiHeadSelfAttention

    frames, points, heads = 3, 4, 2
    for rel_type in ("type_1", "type_3"):
        attention = MultiHeadSelfAttention(6, rel_type, heads, (frames, points))
        with torch.no_grad():
            attention.relative_position_bias_table.copy_(torch.arange(10.0).view(5, 2))
        bias = attention.relative_position_bias()[0]
        tokens = frames * points
        expected = torch.empty(heads, tokens, tokens)
        for a in range(tokens):
            for b in range(tokens):
                expected[:, a, b] = attention.relative_position_bias_table[(a % frames) - (b % frames) + frames - 1]
        assert torch.equal(bias, expected)


def test_relative_position_index_is_recomputed_when_a_checkpoint_is_loaded(tmp_path):
    from skelrobust.checkpoints import load_into

    source = build(preset="lite", num_classes=4)
    fill_module(source.network)
    state = source.network.state_dict()
    key = "stages.0.blocks.0.transformer.attention.0.relative_position_index"
    good = state[key].clone()
    state[key] = torch.zeros_like(good)  # a file with wrong index values
    path = tmp_path / "scrambled.pt"
    torch.save(state, path)
    target = build(preset="lite", num_classes=4)
    load_into(target.network, path)
    assert torch.equal(target.network.state_dict()[key], good)
    x = canonical_input([20, 24], frames=24)
    with torch.no_grad():
        torch.testing.assert_close(target.eval()(x), source(x))


def test_official_checkpoint_round_trip_loads_strictly(tmp_path):
    from skelrobust.checkpoints import load_into

    source = build(preset="full", num_classes=60)
    fill_deterministic(source.network)
    path = tmp_path / "SkateFormer_j.pt"
    torch.save({f"module.{k}": v for k, v in source.network.state_dict().items()}, path)  # DataParallel-style save
    target = build(preset="full", num_classes=60)
    digest = load_into(target.network, path)
    assert len(digest) == 64
    for k, v in source.network.state_dict().items():
        assert torch.equal(target.network.state_dict()[k], v)


def test_eval_is_deterministic_and_train_mode_uses_dropout():
    victim = build(preset="lite", num_classes=4)
    x = canonical_input([30, 20], frames=32)
    victim.eval()
    with torch.no_grad():
        a, b = victim(x), victim(x)
    assert torch.equal(a, b)
    victim.train()
    torch.manual_seed(0)
    with torch.no_grad():
        c = victim(x)
    assert not torch.allclose(a, c)


# ----------------------------------------------------------------------------------------- adapter


def test_uniform_sampling_matches_official_feeder(reference):
    from skelrobust.victims.skateformer import SkateFormerAdapter

    x = canonical_input(FEEDER_LENGTHS, frames=160)
    frames, index_t = SkateFormerAdapter(center=False)(x)
    assert frames.shape == (len(FEEDER_LENGTHS), 3, 64, 24, 2) and index_t.shape == (len(FEEDER_LENGTHS), 64)
    torch.testing.assert_close(index_t, reference["feeder_index_t"], atol=1e-6, rtol=0)
    torch.testing.assert_close(frames[:, 0, :, 0, 0], reference["feeder_data_c0_j0_p0"], atol=1e-6, rtol=0)
    torch.testing.assert_close(frames[0, :, 5], reference["feeder_data_case0_frame5"], atol=1e-6, rtol=0)
    torch.testing.assert_close(frames[5, :, 63], reference["feeder_data_case5_frame63"], atol=1e-6, rtol=0)


def test_sampling_indices_on_a_ramp():
    from skelrobust.victims.skateformer import uniform_sampling_plan

    lengths = torch.tensor([100, 64, 50, 20])
    first, second, weight, index_t = uniform_sampling_plan(lengths, window=64)
    # 100 frames: L = 95, bias = 2, frame i -> 2 + floor(95 i / 64), no interpolation
    assert first[0].tolist() == [2 + (95 * i) // 64 for i in range(64)]
    assert torch.equal(first[0], second[0]) and weight[0].abs().max() == 0
    # 64 frames: L = 64, bias = 1: frames 1..64, the last one is the zero frame past the sequence (official quirk)
    assert first[1].tolist() == list(range(1, 65))
    # 50 frames: L = 50 < 64, bias = 1: linear resize of frames 1..50 (align_corners=False)
    src = ((torch.arange(64) + 0.5) * 50 / 64 - 0.5).clamp(min=0)
    torch.testing.assert_close(index_t[2], 2 * (src.clamp(max=49) + 1) / 50 - 1)  # last frame repeats past L - 1
    assert first[2, 0] == 1 and second[2, -1] == 50
    # 20 frames: bias 0, positions span 0..19
    assert first[3].min() == 0 and second[3].max() == 19
    src20 = ((torch.arange(64) + 0.5) * 20 / 64 - 0.5).clamp(min=0)
    torch.testing.assert_close(index_t[3], 2 * src20.clamp(max=19) / 20 - 1)


def test_index_t_and_frames_follow_each_samples_own_length_in_one_batch():
    from skelrobust.victims.skateformer import SkateFormerAdapter

    lengths = [157, 50, 64]
    x = canonical_input(lengths, frames=160)
    frames, index_t = SkateFormerAdapter(center=False)(x)
    for n, length in enumerate(lengths):
        alone_frames, alone_t = SkateFormerAdapter(center=False)(x[n : n + 1, :, :length])
        torch.testing.assert_close(index_t[n : n + 1], alone_t)
        if length != 64:  # 64 valid frames read the zero frame past the end, also when cut at the valid length
            torch.testing.assert_close(frames[n : n + 1], alone_frames)
    assert index_t.min() >= -1 and index_t.max() <= 1  # 1 exactly where 64 valid frames read frame 64


def test_joint_reorder_drops_spine_shoulder():
    from skelrobust.victims.skateformer import SkateFormerAdapter

    x = torch.zeros(1, 3, 64, 25, 2)
    x[0, 0, :, :, 0] = torch.arange(25, dtype=torch.float32) + 1
    frames, _ = SkateFormerAdapter(center=False)(x)
    assert frames[0, 0, 0, :, 0].tolist() == [float(j + 1) for j in NTU_ORDER]
    assert 20 not in NTU_ORDER and len(set(NTU_ORDER)) == 24


def test_centring_matches_official_seq_translation(reference):
    from skelrobust.victims.skateformer import SkateFormerAdapter

    x = seq_translation_input()[None]
    adapter = SkateFormerAdapter(center=True, window=8, thres=8, p_interval=1.0)
    frames, _ = adapter(x)  # 7 valid frames: resized to 8, so compare through the same resampling
    expected, _ = SkateFormerAdapter(center=False, window=8, thres=8, p_interval=1.0)(reference["seq_translation"][None])
    torch.testing.assert_close(frames, expected, atol=1e-6, rtol=0)
    assert frames[0, :, :, :, 1].abs().sum() > 0
    centred_again, _ = adapter(reference["seq_translation"][None])  # idempotent on already-centred data
    torch.testing.assert_close(centred_again, expected, atol=1e-6, rtol=0)


def test_gradients_reach_the_canonical_input_but_not_unread_frames_or_spine_shoulder():
    victim = build(preset="lite", num_classes=4, window=64, **_NTU_WINDOWS).eval()
    x = canonical_input([50, 90], frames=96).requires_grad_(True)
    victim(x).logsumexp(dim=1).sum().backward()
    grad = x.grad
    assert grad[0, :, :50].abs().sum() > 0 and grad[1, :, :90].abs().sum() > 0
    # 50 frames: bias 1, frames 1..50 are resized (50 is the first padded frame); frame 0 only gives the origin
    frame0 = grad[0, :, 0].clone()
    assert frame0[:, 1, 0].abs().sum() > 0
    frame0[:, 1, 0] = 0
    assert frame0.abs().sum() == 0
    assert grad[0, :, 50].abs().sum() > 0 and grad[0, :, 51:].abs().sum() == 0
    # 90 frames: L = 85, bias 2: frames 2 + floor(85 i / 64) <= 85
    assert grad[1, :, 85].abs().sum() > 0 and grad[1, :, 86:].abs().sum() == 0
    assert grad[:, :, :, 20].abs().sum() == 0  # SpineShoulder is dropped (and is not the centring joint)


def test_all_zero_sample_gives_finite_logits():
    victim = build(preset="lite", num_classes=4).eval()
    x = canonical_input([40, 1], frames=48)
    x[1] = 0.0
    with torch.no_grad():
        assert torch.isfinite(victim(x)).all()


def test_ucla_adapter_scales_to_unit_range_and_samples_linspace():
    victim = build(preset="lite", num_classes=4, layout="kinect20")
    x = canonical_input([30, 52], frames=60, joints=20, persons=1)
    frames, index_t = victim.adapter(x)
    assert frames.shape == (2, 3, 24, 20, 1)
    assert torch.allclose(frames.amin(dim=(2, 3, 4)), torch.full((2, 3), -1.0), atol=0.1)
    expected = torch.linspace(0, 29, 24, dtype=torch.float64).floor() * 2 / 30 - 1
    torch.testing.assert_close(index_t[0], expected.float())


def test_robustbenchhar_adapter_pads_to_64_and_uses_fixed_index_t():
    victim = build(preset="full", num_classes=5, compat="robustbenchhar")
    x = canonical_input([60, 60], frames=60)
    frames, index_t = victim.adapter(x)
    assert frames.shape == (2, 3, 64, 24, 2) and frames[:, :, 60:].abs().sum() == 0
    torch.testing.assert_close(index_t[1], torch.arange(64) * 2 / 64 - 1)
    with pytest.raises(LayoutMismatchError, match="zero-pads inputs to 64 frames; got T=80"):
        victim.adapter(canonical_input([80], frames=80))
    assert victim.config["type_1_size"] == [8, 4]


# ----------------------------------------------------------------------------------------- configuration


def test_layout_and_option_errors():
    with pytest.raises(LayoutMismatchError, match="needs compat='robustbenchhar'"):
        build(layout="hdm05")
    with pytest.raises(ConfigError, match="unknown option"):
        build(preset="lite", depth=3)
    with pytest.raises(ConfigError, match="no preset 'tiny'"):
        build(preset="tiny")
    with pytest.raises(UnsupportedError, match="use preset='full'"):
        build(preset="lite", compat="robustbenchhar")
    with pytest.raises(ConfigError, match="not divisible into type_2 windows"):
        build(preset="lite", type_2_size=(6, 7))
    with pytest.raises(LayoutMismatchError, match="expects M=2 persons"):
        build(preset="lite", num_classes=3)(torch.zeros(1, 3, 24, 25, 1))


def test_config_is_recorded_and_json_serialisable():
    victim = build(preset="lite", num_classes=14)
    meta = victim.metadata
    json.dumps(meta)
    assert meta["config"]["window"] == 24 and meta["config"]["channels"] == [32, 64]
    assert meta["config"]["type_2_size"] == [6, 12] and meta["config"]["num_persons"] == 2
    assert 50_000 < meta["num_parameters"] < 150_000
    assert build(preset="full", num_classes=14).config["type_2_size"] == [8, 12]



@pytest.mark.parametrize("layout", ["msr20", "utd20"])
def test_other_kinect_v1_orders_mean_the_same_clip_as_nw_ucla(layout):
    """MSR Action3D / UTD-MHAD joints are matched to the NW-UCLA partition by name: same clip, same logits."""
    from skelrobust.layouts import get_layout

    ucla = build(preset="lite", num_classes=4, layout="kinect20")
    other = build(preset="lite", num_classes=4, layout=layout)
    fill_module(ucla.network)
    other.network.load_state_dict(ucla.network.state_dict())
    other.eval()
    x = canonical_input([30, 22], frames=40, joints=20, persons=1)
    kinect, target = get_layout("kinect20"), get_layout(layout)
    reordered = x[:, :, :, [kinect.index(name) for name in target.joint_names]]
    with torch.no_grad():
        torch.testing.assert_close(other(reordered), ucla(x))
    assert other.config["type_2_size"] == [6, 5] and other.num_persons == 1
