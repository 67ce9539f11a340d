"""`skelrobust attacks` / `skelrobust defenses` list every registered plugin."""

from __future__ import annotations

import json
from types import SimpleNamespace

from click.testing import CliRunner

from skelrobust.attack import ATTACKS, Attack, ThreatModel
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


class _PluginAttack(Attack):
    """An attack a third-party package exposes as a bare class through the ``skelrobust.attacks`` group."""

    threat = ThreatModel.QUERY
    supports_targeted = False
    paper = "Someone et al., 2031"

    def run(self, ctx):  # pragma: no cover - only listed here
        return ctx.x


def test_entry_point_attack_lists_its_threat_model_and_paper(monkeypatch) -> None:
    import skelrobust.registry as registry

    fake = SimpleNamespace(name="plugin-attack", load=lambda: _PluginAttack)
    monkeypatch.setattr(registry, "entry_points", lambda group: [fake] if group == "skelrobust.attacks" else [])
    monkeypatch.setattr(ATTACKS, "_entries", {k: v for k, v in ATTACKS._entries.items() if k != "plugin-attack"})
    monkeypatch.setattr(ATTACKS, "_loaded", False)
    monkeypatch.setattr(_PluginAttack, "name", Attack.name)
    result = CliRunner().invoke(main, ["attacks", "--json"])
    assert result.exit_code == 0, result.output
    listed = {entry["name"]: entry for entry in json.loads(result.output)}["plugin-attack"]
    assert listed["threat"] == "query" and listed["paper"] == "Someone et al., 2031" and listed["targeted"] is False
    assert ATTACKS.get("plugin-attack").name == "plugin-attack"
