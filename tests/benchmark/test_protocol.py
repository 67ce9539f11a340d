"""The protocol schema: the issue's small grid parses as written; every malformed key is named by its path."""

from __future__ import annotations

import pytest
import yaml

from skelrobust.benchmark.protocol import differences, load_protocol, parse_protocol
from skelrobust.errors import ConfigError

from grid_helpers import BUDGET, SMALL


def small(**changes: object) -> dict:
    document = yaml.safe_load(SMALL)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = document
        for key in parents:
            node = node[key]
        node[leaf] = value
    return document


def test_small_protocol_expands_into_sets_and_cells() -> None:
    protocol = parse_protocol(yaml.safe_load(SMALL))
    assert protocol.name == "small-grid-v1"
    assert [s.key for s in protocol.sets] == [("synthetic", "pgd", "stgcn", BUDGET), ("synthetic", "mifgsm", "stgcn", BUDGET)]
    assert protocol.sets[0].settings == {"steps": 10, "seed": 0, "n_samples": 16}
    cells = protocol.cells()
    assert len(cells) == 8 and len({c.slug for c in cells}) == 8
    assert {(c.victim, c.defense) for c in cells} == {(v, d) for v in ("stgcn", "ctrgcn") for d in ("none", "lowpass")}


def test_budgets_attack_options_and_slices() -> None:
    document = small(datasets__synthetic__budgets=[0.005, 0.02])
    document["datasets"]["synthetic"]["attacks"] = {"pgd": {"random_start": False}, "mifgsm": {"steps": 3}}
    protocol = parse_protocol(document)
    assert [(s.attack, s.budget) for s in protocol.sets] == [("pgd", 0.005), ("pgd", 0.02), ("mifgsm", 0.005), ("mifgsm", 0.02)]
    assert protocol.sets[0].attack_options == {"random_start": False}
    assert protocol.sets[2].settings["steps"] == 3 and protocol.sets[0].settings["steps"] == 10
    chosen = protocol.select({"budget": ["0.02"], "victim": ["ctrgcn"]})
    assert [(s.attack, s.budget, s.victims, s.defenses) for s in chosen] == [
        ("pgd", 0.02, ("ctrgcn",), ("none", "lowpass")), ("mifgsm", 0.02, ("ctrgcn",), ("none", "lowpass"))]
    with pytest.raises(ConfigError, match="--only victim=resnet: the protocol has no victim resnet"):
        protocol.select({"victim": ["resnet"]})
    with pytest.raises(ConfigError, match="--only model=.*unknown key"):
        protocol.select({"model": ["stgcn"]})


@pytest.mark.parametrize(("document", "message"), [
    (small(datasets__synthetic__attacks=["pgd", "fgsm9"]), r"datasets\.synthetic\.attacks\[1\]: unknown attack 'fgsm9'"),
    (small(datasets__synthetic__victims=["stgcn", "resnet"]), r"datasets\.synthetic\.victims\[1\]: unknown victim 'resnet'"),
    (small(datasets__synthetic__surrogates=["alexnet"]), r"datasets\.synthetic\.surrogates\[0\]: unknown victim 'alexnet'"),
    (small(datasets__synthetic__defenses=["none", "jpeg"]), r"datasets\.synthetic\.defenses\[1\]: unknown defense 'jpeg'"),
    (small(datasets__synthetic__budgets=[0.01, 0]), r"datasets\.synthetic\.budgets\[1\]: a budget must be a positive number, got 0"),
    (small(datasets__synthetic__eps=-0.01), r"datasets\.synthetic\.eps: a budget must be a positive number, got -0.01"),
    (small(defaults__eps="big"), r"defaults\.eps: a budget must be a positive number, got 'big'"),
    (small(datasets__synthetic__victim=["stgcn"]), r"datasets\.synthetic\.victim: unknown key"),
    (small(defaults__stepz=3), r"defaults\.stepz: unknown key"),
    (small(benchmark={}), r"benchmark: unknown key"),
    (small(defaults__steps=0), r"defaults\.steps: expected an integer >= 1, got 0"),
    (small(attacks={"pgd": {"momentum": 0.9}}), r"attacks\.pgd\.momentum: attack 'pgd' has no option 'momentum'"),
    (small(datasets__nowhere={"surrogates": ["stgcn"], "victims": ["stgcn"]}), r"datasets\.nowhere: unknown dataset"),
    (small(protocol=None), r"protocol: expected the protocol's name"),
])
def test_malformed_protocols_are_refused_with_the_key_path(document: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_protocol(document, "grid.yaml")


def test_protocol_file_errors_name_the_file(tmp_path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text("protocol: x\ndatasets: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="grid.yaml is not valid YAML"):
        load_protocol(path)
    with pytest.raises(ConfigError, match="cannot read protocol"):
        load_protocol(tmp_path / "absent.yaml")


def test_the_packaged_protocol_is_a_valid_grid() -> None:
    protocol = load_protocol()
    assert protocol.name == "skelrobust-standard-v1"
    datasets = {s.dataset for s in protocol.sets}
    assert "synthetic" in datasets and all(s.budget > 0 for s in protocol.sets)


def test_differences_name_each_changed_key() -> None:
    old, new = yaml.safe_load(SMALL), small(defaults__steps=20, datasets__synthetic__budgets=[0.02])
    assert list(differences(old, new)) == [
        "datasets.synthetic.budgets: added [0.02]", "defaults.steps: 10 -> 20"]
