"""Query attacks beyond the contract: the motion subspace, the margin, BO's loop, Square's schedule, BASAR's projection."""

from __future__ import annotations

import pytest
import torch

from skelrobust.attack import AttackContext, create_attack
from skelrobust.errors import ConfigError, UnsupportedError
from skelrobust.kinematics import project_persons, project_to_manifold
from skelrobust.layouts import get_layout
from skelrobust.metrics import imperceptibility
from skelrobust.query import QueryOracle
from skelrobust.query_attack import margin
from skelrobust.attacks.square import square_fraction
from skelrobust.subspace import MotionSubspace

LAYOUT = get_layout("ntu25")


def _context(x: torch.Tensor, y: torch.Tensor, eps: float = 0.1, norm: str = "linf", target=None) -> AttackContext:
    attack = create_attack("random-search", eps=eps, norm=norm)
    return AttackContext(attack, x, layout=LAYOUT, labels=y, target=target, model=None, oracle=None,
                         generator=torch.Generator().manual_seed(0), sample_ids=None)


def test_subspace_dimension_smoothness_and_feasibility(canonical_batch) -> None:
    x, y = canonical_batch  # person 1 absent in samples 0-1, frames 12+ padded in sample 2
    ctx = _context(x, y, eps=0.1)
    space = MotionSubspace(ctx, frequencies=3)
    assert space.dim == 3 * len(LAYOUT.parts) * 3 * 2  # coordinates x parts x frequencies x person slots
    owners = torch.tensor([0, 2, 3])
    z = torch.rand(3, space.dim, generator=torch.Generator().manual_seed(1)) * 2 - 1
    adv = space.decode(z, owners)
    delta = adv - x[owners]
    assert adv.shape == (3, *x.shape[1:]) and delta.abs().max() <= 0.1 + 1e-6 and delta.abs().max() > 0
    assert delta[0, :, :, :, 1].abs().max() == 0 and delta[1, :, 12:].abs().max() == 0
    head = LAYOUT.parts[next(iter(LAYOUT.parts))]
    assert torch.allclose(delta[2, :, :, head[0]], delta[2, :, :, head[-1]])  # a part moves as one
    one = MotionSubspace(ctx, frequencies=1).decode(torch.full((1, 3 * len(LAYOUT.parts) * 2), 0.5), torch.tensor([3]))
    assert torch.allclose((one - x[3:4])[:, :, 1:], (one - x[3:4])[:, :, :-1], atol=1e-7)  # K = 1: constant in time
    with pytest.raises(ConfigError, match="grouping"):
        MotionSubspace(ctx, grouping="bones")


def test_margin_is_positive_exactly_when_fooled() -> None:
    x = torch.zeros(3, 3, 4, 25, 1)
    y = torch.tensor([0, 1, 2])
    ctx = _context(x, y)
    scores = torch.tensor([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
    m = margin(scores, ctx, torch.arange(3))
    assert torch.allclose(m.float(), torch.tensor([0.2, 0.6, 0.3]).log() - torch.tensor([0.7, 0.3, 0.5]).log(), atol=1e-6)
    assert (m > 0).tolist() == [False, True, False]
    targeted = margin(scores, _context(x, y, target=torch.tensor([1, 0, 2])), torch.arange(3))
    assert (targeted > 0).tolist() == [False, True, True]


def _run(name: str, victim, x, y, max_queries: int, **options):
    attack = create_attack(name, **options)
    oracle = QueryOracle(victim, max_queries=max_queries, feedback=attack.feedback)
    return attack(x, y, layout=LAYOUT, oracle=oracle, generator=torch.Generator().manual_seed(0)), oracle


def test_bo_stops_at_success_and_reports_overhead(tiny_victim, data) -> None:
    x, y, _ = data
    out, oracle = _run("bo", tiny_victim, x, y, 24, eps=0.5, q=4, initial=4, raw_samples=8, refine_steps=1, fit_maxiter=5)
    with torch.no_grad():
        fooled = tiny_victim(out.adversarial).argmax(1) != y
    assert fooled.all(), "a 0.5 linf budget fools the tiny victim"
    assert torch.equal(out.queries, oracle.counts) and (out.queries <= 24).all()
    assert ((oracle.first_success > 0) & (oracle.first_success <= out.queries)).all()
    assert (out.queries < 24).any(), "early stop per sample on success"
    assert out.extras["subspace_dim"] == 90 and out.extras["trust_region"] is True
    assert out.extras["rounds"] >= 0 and out.extras["overhead_seconds_per_round"] >= 0


def test_bo_fits_its_gp_on_a_bounded_history_nearest_the_region_centre(tiny_victim, data) -> None:
    attack = create_attack("bo", max_train=8)
    u = torch.rand(2, 30, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = u.sum(-1)
    centre = torch.tensor([[0.5, 0.5, 0.5], [0.0, 0.0, 0.0]], dtype=torch.float64)
    train_u, train_y = attack._training_set(u, y, 30, centre)
    assert train_u.shape == (2, 8, 3) and train_y.shape == (2, 8, 1)
    for i in range(2):
        nearest = (u[i] - centre[i]).norm(dim=1).sort().values[:8]
        assert torch.allclose((train_u[i] - centre[i]).norm(dim=1).sort().values, nearest)
    assert torch.allclose(train_y[..., 0], train_u.sum(-1)), "each kept point keeps its own value"
    few_u, few_y = attack._training_set(u, y, 5, centre)
    assert torch.equal(few_u, u[:, :5]) and torch.equal(few_y[..., 0], y[:, :5])
    x, labels, _ = data
    out, oracle = _run("bo", tiny_victim, x, labels, 40, eps=2e-3, q=4, initial=4, raw_samples=8, refine_steps=1,
                       fit_maxiter=5, max_train=12)
    assert out.queries.tolist() == [40] * 4 and (oracle.first_success == 0).all()
    assert out.extras["largest_training_set"] == 12, "40 queries per sample, but every GP saw at most 12"


def test_random_search_spends_exactly_the_budget_when_it_fails(tiny_victim, data) -> None:
    x, y, _ = data
    out, oracle = _run("random-search", tiny_victim, x, y, 13, eps=2e-3)
    assert out.queries.tolist() == [13] * 4 and (oracle.first_success == 0).all()


def test_random_search_vertex_points_are_cube_corners(tiny_victim, data, monkeypatch) -> None:
    x, y, _ = data
    drawn: dict[str, list[torch.Tensor]] = {"uniform": [], "vertex": []}
    decode = MotionSubspace.decode

    for points in drawn:
        def record(space, z, owners, points=points):
            drawn[points].append(z.detach().clone())
            return decode(space, z, owners)

        monkeypatch.setattr(MotionSubspace, "decode", record)
        out, _ = _run("random-search", tiny_victim, x, y, 16, eps=2e-3, points=points)
        assert out.extras["points"] == points and out.queries.tolist() == [16] * 4
    uniform, vertex = torch.cat(drawn["uniform"]), torch.cat(drawn["vertex"])
    assert vertex.shape == uniform.shape == (64, 90)
    assert torch.equal(vertex.abs(), torch.ones_like(vertex)) and 0.4 < (vertex > 0).float().mean() < 0.6
    assert torch.equal(vertex, torch.where(uniform < 0, -1.0, 1.0)), "same seed: the corner of the uniform draw"
    assert uniform.abs().max() < 1 and uniform.abs().mean() < 0.6
    with pytest.raises(ConfigError, match="points must be one of uniform, vertex, got 'sphere'"):
        create_attack("random-search", points="sphere")


def test_square_schedule_and_norms() -> None:
    assert square_fraction(0.05, 0, 1000) == 0.05
    assert square_fraction(0.05, 2, 1000) == 0.025  # iteration 20 of 10,000 after rescaling
    assert square_fraction(0.05, 999, 1000) == 0.05 / 2**9
    with pytest.raises(UnsupportedError, match="linf"):
        create_attack("square", norm="l2", eps=1.0)


def test_manifold_projection_restores_clean_bone_lengths() -> None:
    g = torch.Generator().manual_seed(0)
    clean = torch.randn(2, 3, 6, 25, generator=g) * 0.3
    noisy = clean + torch.randn(clean.shape, generator=g) * 0.05
    valid = torch.ones(2, 6, dtype=torch.bool)
    projected = project_to_manifold(noisy, clean, valid, LAYOUT, weight=1.0)
    for j, p in LAYOUT.bones:
        assert torch.allclose((projected[..., j] - projected[..., p]).norm(dim=1), (clean[..., j] - clean[..., p]).norm(dim=1), atol=1e-5)
    before = imperceptibility(clean[..., None], noisy[..., None], LAYOUT)["bone_length_rel_error"]
    after = imperceptibility(clean[..., None], projected[..., None], LAYOUT)["bone_length_rel_error"]
    assert (after < 1e-5).all() and (before > 1e-2).all()
    assert (projected - noisy).norm() < (clean - noisy).norm() * 2  # a projection, not a reset to the clean motion


def test_person_projection_fixes_present_persons_and_leaves_absent_ones(canonical_batch) -> None:
    x, _ = canonical_batch  # person 1 absent in samples 0-1, frames 12+ padded in sample 2
    noisy = x + torch.randn(x.shape, generator=torch.Generator().manual_seed(1)) * 0.05
    projected = project_persons(noisy, x, LAYOUT)
    assert projected.shape == x.shape
    assert torch.equal(projected[0:2, ..., 1], noisy[0:2, ..., 1])  # absent persons are not projected
    error = imperceptibility(x[3:4], projected[3:4], LAYOUT)["bone_length_rel_error"]
    assert error.item() < 1e-5 and imperceptibility(x[3:4], noisy[3:4], LAYOUT)["bone_length_rel_error"].item() > 1e-2


def test_basar_finds_a_closer_adversarial_motion(tiny_victim, data) -> None:
    x, y, _ = data
    out, oracle = _run("basar", tiny_victim, x, y, 150, eps=50.0, norm="l2", stop_inside_budget=False)
    with torch.no_grad():
        fooled = tiny_victim(out.adversarial).argmax(1) != y
    assert fooled.any() and (out.queries <= 150).all()
    assert out.extras["initialised"] >= int(fooled.sum()) and out.extras["projections"] >= 1
    kept, partial = out.extras["projections_kept"], out.extras["projections_partial"]
    assert 0 <= out.extras["projection_share_median"] <= out.extras["projection_share_max"] <= 1
    assert (out.extras["projection_share_max"] == 1) == (kept > 0) and kept + partial <= out.extras["initialised"]
    with pytest.raises(UnsupportedError, match="targeted"):
        create_attack("basar")(x, y, layout=LAYOUT, target=(y + 1) % 5, oracle=QueryOracle(tiny_victim, max_queries=5, feedback="label"))


class _MeanThreshold(torch.nn.Module):
    """Labels a motion 1 when its mean coordinate exceeds 0.5, else 0 (logits ``(N, 2)``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.flatten(1).mean(dim=1)
        return torch.stack([torch.full_like(mean, 0.5), mean], dim=1)


@pytest.mark.parametrize("final, projection_queries", [(False, 1), (True, 4)])
def test_basar_walks_towards_a_projection_that_loses_the_attack(monkeypatch, final, projection_queries) -> None:
    """BASAR's fallback: the first point of adv + f (proj - adv), f = 0.95, 0.95 * 0.95^2, ..., still adversarial."""
    x = torch.randn(2, 3, 8, 25, 1, generator=torch.Generator().manual_seed(0)) * 0.01
    y = torch.zeros(2, dtype=torch.long)
    attack = create_attack("basar", eps=50.0, norm="l2")
    seen = {}

    def run(ctx: AttackContext) -> torch.Tensor:
        adv = ctx.x + 1.0  # mean about 1: labelled 1
        out, kept = attack._project(ctx, adv, torch.arange(2), final=final)
        seen["kept"] = kept
        return out

    # The projection is the clean motion itself, which is labelled y: every weight fails.
    monkeypatch.setattr(attack, "_project_rows", lambda ctx, motion, owners, weight: ctx.x[owners].clone())
    monkeypatch.setattr(attack, "run", run)
    oracle = QueryOracle(_MeanThreshold(), max_queries=50, feedback="label")
    out = attack(x, y, layout=LAYOUT, oracle=oracle, generator=torch.Generator().manual_seed(0))
    f, step, walked = 1.0, 0.95, 0
    while 1 - f <= 0.5 + 1e-6:  # the walk's point is x + (1 - f): adversarial once 1 - f > 0.5
        f, step, walked = f * step, step * 0.95, walked + 1
    assert walked == 5 and abs(f - 0.4633) < 1e-3
    assert torch.allclose(out.adversarial, x + (1 - f), atol=1e-5)
    assert torch.allclose(seen["kept"], torch.full((2,), f, dtype=seen["kept"].dtype))
    assert out.queries.tolist() == [projection_queries + walked] * 2
