"""Core contracts: layouts, registries, budgets and masks, the attack base class."""

from __future__ import annotations

import pytest
import torch

from skelrobust.attack import Attack, AttackContext, Budget, Masks, ThreatModel
from skelrobust.errors import BudgetViolationError, ConfigError, RegistryError, ThreatModelError
from skelrobust.layouts import get_layout
from skelrobust.registry import Registry


@pytest.mark.parametrize("name,joints,root", [("ntu25", 25, 0), ("kinect20", 20, 0), ("msr20", 20, 6), ("utd20", 20, 3), ("hdm05", 25, 10)])
def test_builtin_layouts(name: str, joints: int, root: int) -> None:
    layout = get_layout(name)
    assert layout.num_joints == joints and layout.root == root
    assert len(layout.bones) == joints - 1
    order = layout.topological_order
    assert sorted(order) == list(range(joints))
    assert all(order.index(p) < order.index(c) for c, p in layout.bones)


def test_registry_rejects_duplicates_and_names_known_entries() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("a", 1)
    with pytest.raises(RegistryError, match="duplicate widget name 'a'"):
        reg.register("a", 2)
    with pytest.raises(RegistryError, match=r"unknown widget 'b'; known: a"):
        reg.get("b")
    assert reg.names("*") == ["a"]


def test_linf_budget_projection_and_size() -> None:
    budget = Budget(eps=0.01)
    delta = torch.tensor([0.05, -0.02, 0.005]).view(1, 3, 1, 1, 1)
    projected = budget.project(delta)
    assert torch.allclose(projected.flatten(), torch.tensor([0.01, -0.01, 0.005]))
    assert float(budget.size(projected)) == pytest.approx(1.0)


def test_l2_budget_projection() -> None:
    budget = Budget(eps=1.0, norm="l2")
    delta = torch.full((2, 3, 2, 2, 1), 1.0)
    assert torch.allclose(budget.project(delta).flatten(1).norm(dim=1), torch.ones(2))


def test_budget_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="norm"):
        Budget(norm="l1")
    with pytest.raises(ConfigError, match="eps"):
        Budget(eps=-1.0)


def test_mask_excludes_absent_persons_and_padding(canonical_batch) -> None:
    x, _ = canonical_batch
    mask = Masks(joints=(0, 1)).tensor(x)
    assert mask.shape == (4, 1, 16, 25, 2)
    assert not mask[0, :, :, :, 1].any()  # absent person
    assert not mask[2, :, 12:].any()  # padded frames
    assert not mask[3, :, :, 2:].any() and mask[3, :, :, :2].all()


class _Overshoot(Attack):
    """Returns a wildly out-of-budget example; the base class must project it."""

    name = "overshoot"

    def run(self, ctx: AttackContext) -> torch.Tensor:
        return ctx.x + 1.0


def test_base_class_projects_and_keeps_absent_entries_zero(tiny_victim, canonical_batch) -> None:
    x, y = canonical_batch
    out = _Overshoot(eps=0.01, steps=1)(x, y, model=tiny_victim, layout=get_layout("ntu25"))
    delta = out.adversarial - x
    assert delta.abs().max() <= 0.01 + 1e-7
    assert (out.adversarial[0, :, :, :, 1] == 0).all() and (out.adversarial[2, :, 12:] == 0).all()


def test_base_class_restores_train_mode(tiny_victim, canonical_batch) -> None:
    x, y = canonical_batch
    tiny_victim.train()
    _Overshoot(steps=1)(x, y, model=tiny_victim, layout=get_layout("ntu25"))
    assert tiny_victim.training


def test_threat_model_access_is_enforced(tiny_victim, canonical_batch) -> None:
    x, y = canonical_batch

    class NoBox(_Overshoot):
        threat = ThreatModel.HARD_NO_BOX

    with pytest.raises(ThreatModelError, match="hard no-box"):
        NoBox(steps=1)(x, y, model=tiny_victim, layout=get_layout("ntu25"))
    with pytest.raises(ThreatModelError, match="needs a model"):
        _Overshoot(steps=1)(x, y, layout=get_layout("ntu25"))


def test_verify_catches_a_broken_projection(tiny_victim, canonical_batch) -> None:
    x, y = canonical_batch
    attack = _Overshoot(eps=0.01, steps=1)
    ctx = AttackContext(attack, x, layout=get_layout("ntu25"), labels=y, target=None, model=tiny_victim,
                        oracle=None, generator=torch.Generator(), sample_ids=None)
    with pytest.raises(BudgetViolationError, match="left the budget"):
        attack._verify(x + 0.5 * ctx.mask, ctx)
