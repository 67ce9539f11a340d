"""The runner's hard no-box rules: refused access (one line), unfiltered attack set, unlabelled samples."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from skelrobust.attack import create_attack
from skelrobust.cli import main
from skelrobust.data import load_dataset
from skelrobust.errors import ConfigError, ThreatModelError
from skelrobust.nobox.access import UnlabelledSamples, hard_no_box_config, unlabelled_samples
from skelrobust.benchmark.cell_config import RunConfig


def _cfg(**kwargs) -> RunConfig:
    return RunConfig(attack="s2i", victims=["ctrgcn"], dataset="synthetic", **kwargs)


def test_hard_no_box_attack_set_is_unfiltered_and_others_default_to_correct() -> None:
    assert hard_no_box_config(_cfg(), create_attack("s2i")).selection == "all"
    assert hard_no_box_config(_cfg(selection="all"), create_attack("s2i")).selection == "all"
    assert hard_no_box_config(_cfg(), create_attack("pgd")).selection is None  # the runner's default applies
    assert hard_no_box_config(_cfg(selection="all"), create_attack("pgd")).selection == "all"


@pytest.mark.parametrize(
    "kwargs,message",
    [({"surrogate": "stgcn"}, "--surrogate stgcn is refused"), ({"targeted": True}, "--targeted"), ({"selection": "correct"}, "drop --selection correct")],
)
def test_refused_access_names_the_flag(kwargs, message) -> None:
    with pytest.raises(ThreatModelError, match=message):
        hard_no_box_config(_cfg(**kwargs), create_attack("s2i"))


def test_cli_refuses_a_surrogate_in_one_line(tmp_path) -> None:
    result = CliRunner().invoke(main, ["run", "--attack", "s1mi", "--victim", "ctrgcn", "--surrogate", "stgcn",
                                       "--dataset", "synthetic", "--output", str(tmp_path / "run")])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "hard no-box" in lines[0] and "--surrogate" in lines[0]
    assert not (tmp_path / "run").exists()


def test_unlabelled_samples_of_each_split() -> None:
    test = load_dataset("synthetic", "test")
    clean = np.asarray(test.data[:6])
    attack = create_attack("s2i")
    samples = unlabelled_samples(attack, _cfg(), test, clean, list(test.sample_ids[:6]))
    assert samples.split == "attack" and samples.data.shape[0] == 6 and not hasattr(samples, "labels")
    attack = create_attack("s2i", manifold_split="test")
    assert len(unlabelled_samples(attack, _cfg(), test, clean, list(test.sample_ids[:6]))) == len(test)
    attack = create_attack("s2i", manifold_split="train")
    train = unlabelled_samples(attack, _cfg(), test, clean, list(test.sample_ids[:6]))
    assert train.split == "train" and train.sample_ids[0] != test.sample_ids[0]


def test_unlabelled_samples_validate() -> None:
    with pytest.raises(ConfigError, match="manifold split"):
        UnlabelledSamples(np.zeros((2, 3, 4, 25, 1), np.float32), ["a", "b"], "val", "x")
    with pytest.raises(ConfigError, match="1 sample ids for 2"):
        UnlabelledSamples(np.zeros((2, 3, 4, 25, 1), np.float32), ["a"], "test", "x")
