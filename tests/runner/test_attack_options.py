"""``--option KEY=VALUE`` is checked against the types the attack's constructor declares."""

from __future__ import annotations

from typing import Literal, Sequence

import pytest
import torch
from click.testing import CliRunner

from skelrobust.attack import ATTACKS, Attack
from skelrobust.attack_options import check_attack_options, declared_options
from skelrobust.cli import main
from skelrobust.errors import ConfigError
from skelrobust.benchmark.cell_config import RunConfig, build_attack, resolve_config


def _build(attack: str, **options) -> Attack:
    cfg = resolve_config(RunConfig(attack=attack, victims=["stgcn"], dataset="synthetic", device="cpu", attack_options=options))
    return build_attack(cfg, unit="m")


@pytest.mark.parametrize("attack, option, value, expected", [
    ("pgd", "random_start", "banana", "a boolean (true or false)"),
    ("pgd", "step_size", "banana", "a number or null"),
    ("mifgsm", "decay", [1, 2], "a number or null"),
    ("tasar", "num_samples", 2.5, "an integer"),
])
def test_wrong_type_names_option_value_and_expected_type(attack: str, option: str, value, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        _build(attack, **{option: value})
    message = str(info.value)
    assert f"option {option}={value!r}" in message and f"expected {expected}" in message
    assert "has no option" not in message


def test_well_typed_values_are_kept() -> None:
    assert _build("pgd", random_start=False, step_size=1).random_start is False
    assert _build("pgd", step_size=0.002).step_size == 0.002


def test_unknown_option_lists_the_attack_options() -> None:
    with pytest.raises(ConfigError, match=r"attack 'pgd' has no option\(s\) banana; its options: .*random_start.*step_size"):
        _build("pgd", banana=1)


def test_cli_random_start_banana_is_one_line(tmp_path) -> None:
    result = CliRunner().invoke(main, ["run", "--attack", "pgd", "--victim", "stgcn", "--dataset", "synthetic",
                                       "--option", "random_start=banana", "--output", str(tmp_path / "r")])
    assert result.exit_code == 1 and "option random_start='banana' is not valid" in result.output
    assert not (tmp_path / "r").exists()


def test_every_registered_attack_declares_checkable_options() -> None:
    for name in ATTACKS.names():
        declared = declared_options(ATTACKS.get(name))
        assert {"eps", "norm", "steps", "compat"} <= set(declared), name


class Annotated(Attack):
    def __init__(self, *, mode: Literal["a", "b"] = "a", joints_: Sequence[int] = (), weight: float | torch.Tensor = 1.0,
                 pair: tuple[int, int] = (0, 1), **kwargs) -> None:
        super().__init__(**kwargs)

    def run(self, ctx):  # pragma: no cover - never attacked here
        return ctx.x


@pytest.mark.parametrize("options, ok", [
    ({"mode": "a"}, True), ({"mode": "c"}, False), ({"joints_": [1, 2]}, True), ({"joints_": [1, "x"]}, False),
    ({"weight": 2}, True), ({"weight": [0.1, 0.2]}, True), ({"weight": "heavy"}, False), ({"pair": [1, 2]}, True),
    ({"pair": [1]}, False), ({"steps": True}, False), ({"joints": [0, 3]}, True), ({"joints": None}, True),
])
def test_annotation_kinds(options: dict, ok: bool) -> None:
    if ok:
        check_attack_options(Annotated, "annotated", options)
    else:
        with pytest.raises(ConfigError, match="is not valid; expected"):
            check_attack_options(Annotated, "annotated", options)
