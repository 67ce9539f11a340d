"""`skelrobust attacks` / `skelrobust defenses` list every registered plugin."""

from __future__ import annotations

import json

from click.testing import CliRunner

from skelrobust.attack import ATTACKS
from skelrobust.cli import main
from skelrobust.defense import DEFENSES


def test_attacks_json_lists_every_attack_with_its_threat_model() -> None:
    result = CliRunner().invoke(main, ["attacks", "--json"])
    assert result.exit_code == 0, result.output
    listed = {entry["name"]: entry for entry in json.loads(result.output)}
    assert sorted(listed) == ATTACKS.names()
    assert listed["pgd"]["threat"] == "white-box"
    assert listed["tasar"]["threat"] == "transfer"


def test_defenses_table_names_every_defense() -> None:
    result = CliRunner().invoke(main, ["defenses"])
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.output.splitlines()]
    assert names == DEFENSES.names()
