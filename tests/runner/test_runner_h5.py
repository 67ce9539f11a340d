"""The runner and ``skelrobust run``: outputs, threat handling, attack-set determinism, resume, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from h5_helpers import NUM_CLASSES, T, spec, victim_a, write_split
from skelrobust.attack_set import select_attack_set
from skelrobust.cli import main
from skelrobust.data import load_dataset
from skelrobust.errors import ConfigError
from skelrobust.benchmark.cell_config import RunConfig
from skelrobust.benchmark.run_folder import RunDirectory
from skelrobust.benchmark.cell import run_cell
from skelrobust.victim import Victim

VICTIMS = f"{spec('victim_a')},{spec('victim_b')}"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("h5data")
    write_split(folder, "test", 40)
    write_split(folder, "train", 16)
    return folder


def _config(data_dir: Path, **overrides) -> RunConfig:
    base = dict(
        attack=spec("SignStep"), victims=[spec("victim_a"), spec("victim_b")], dataset="npz", root=str(data_dir),
        eps=0.05, steps=3, n_samples=10, batch_size=4, seed=7, device="cpu",
    )
    base.update(overrides)
    return RunConfig(**base)


def test_cli_run_end_to_end(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "run", "--attack", spec("SignStep"), "--victim", VICTIMS, "--dataset", "npz", "--root", str(data_dir),
        "--defense", "none,lowpass", "--eps", "0.05", "--steps", "3", "--n-samples", "10", "--batch-size", "4",
        "--seed", "7", "--output", str(out), "--quiet",
    ])
    assert result.exit_code == 0, result.output
    assert "white-box success rate" in result.output and "lowpass" in result.output

    res = json.loads((out / "results.json").read_text())
    for key in ("attack", "surrogate", "dataset", "eps", "eps_unit", "steps", "n_samples", "seed", "surrogate_clean_accuracy",
                "white_box_success_rate", "victims", "imperceptibility", "timing", "provenance"):
        assert key in res, key
    assert res["eps"] == 0.05 and res["eps_unit"] == "m" and res["steps"] == 3 and res["n_samples"] == 10
    assert res["surrogate"] == spec("victim_a") and res["threat_model"] == "white-box"
    assert 0 < res["surrogate_clean_accuracy"] <= 1 and isinstance(res["white_box_success_rate"], float)
    assert [(c["victim"], c["defense"]) for c in res["victims"]] == [
        (spec("victim_a"), "none"), (spec("victim_a"), "lowpass"), (spec("victim_b"), "none"), (spec("victim_b"), "lowpass")]
    prov = res["provenance"]
    assert prov["packages"]["torch"] is not None and prov["skelrobust"] and "git_commit" in prov
    assert prov["config"]["seed"] == 7 and prov["protocol"] == "skelrobust-standard-v1" and "python" in prov
    assert set(prov["checkpoints"]) == {spec("victim_a"), spec("victim_b")}
    for name in ("linf", "l2", "mean_joint_displacement", "bone_length_abs_error", "bone_length_rel_error",
                 "velocity_deviation", "acceleration_deviation", "jerk_deviation"):
        assert isinstance(res["imperceptibility"][name], float)
    assert 0 < res["imperceptibility"]["linf"] <= 0.05 + 1e-6
    assert res["imperceptibility_units"]["linf"] == "m" and res["imperceptibility_units"]["bone_length_rel_error"] == "1"
    assert res["timing"]["surrogate_gradient_evaluations"] == 10 * 3 and res["timing"]["seconds"] > 0

    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 10
    with np.load(out / "adversarial.npz", allow_pickle=False) as z:
        adv, clean, labels, ids, idx = z["adversarial"], z["clean"], z["labels"], z["sample_ids"], z["indices"]
        assert str(z["layout"]) == "ntu25" and list(z["class_names"]) == [f"action{i}" for i in range(NUM_CLASSES)]
    assert adv.shape == clean.shape == (10, 3, T, 25, 2) and adv.dtype == np.float32
    assert np.abs(adv - clean).max() <= 0.05 + 1e-6 and (adv[clean == 0] == 0).all()
    assert list(labels) == [r["label"] for r in records] and list(ids) == [r["sample_id"] for r in records]
    assert list(idx) == [r["index"] for r in records]
    # The attack set holds samples the attacked model classifies correctly.
    assert all(r["attacked_model"]["clean_prediction"] == r["label"] for r in records)
    # Every rate is the mean of the per-sample records.
    wb = np.mean([r["attacked_model"]["success"] for r in records])
    assert res["white_box_success_rate"] == pytest.approx(wb)
    for j, cell in enumerate(res["victims"]):
        rows = [r["victims"][j] for r in records]
        assert rows[0]["victim"] == cell["victim"] and rows[0]["defense"] == cell["defense"]
        clean_ok = np.array([x["clean_prediction"] == r["label"] for x, r in zip(rows, records)])
        success = np.array([x["success"] for x in rows])
        assert cell["clean_accuracy"] == pytest.approx(clean_ok.mean())
        assert cell["transfer_success_rate"] == pytest.approx(success.mean())
        assert cell["robust_accuracy"] == pytest.approx(1 - success.mean())
        if clean_ok.any():
            assert cell["conditional_transfer_success_rate"] == pytest.approx(success[clean_ok].mean())
        by_class = {row["label"]: row for row in cell["success_by_class"]}
        assert set(by_class) == set(labels.tolist())
        for label, row in by_class.items():
            assert row["class_name"] == f"action{label}" and row["n"] == int((labels == label).sum())
            assert row["successes"] == int(success[labels == label].sum())
    wb_by_class = {row["label"]: row["successes"] for row in res["white_box_success_by_class"]}
    assert sum(wb_by_class.values()) == sum(r["attacked_model"]["success"] for r in records)
    assert records[0]["gradient_evaluations"] == 3 and records[0]["iterations"] == 3
    assert res["victims"][0]["clean_accuracy"] == 1.0  # victim_a is the attacked model

    # The same command with the same seed in a fresh folder reproduces the adversarial set bit for bit.
    again = run_cell(_config(data_dir, defenses=["none", "lowpass"]), tmp_path / "again", progress=False)
    with np.load(tmp_path / "again" / "adversarial.npz", allow_pickle=False) as z:
        assert np.array_equal(z["adversarial"], adv)
    assert again["victims"] == res["victims"]


def test_attack_set_is_deterministic_and_independent_of_batch_size(data_dir: Path) -> None:
    ds = load_dataset("npz", "test", root=data_dir)
    model = Victim.wrap(victim_a(), layout="ntu25").eval()
    kw = dict(n_samples=8, device=torch.device("cpu"), model_name="a")
    a = select_attack_set(ds, model, seed=3, batch_size=4, **kw)
    b = select_attack_set(ds, model, seed=3, batch_size=16, **kw)
    c = select_attack_set(ds, model, seed=4, batch_size=4, **kw)
    assert list(a.indices) == list(b.indices) and a.sample_ids == b.sample_ids and len(a) == 8
    assert list(a.indices) != list(c.indices)
    with torch.no_grad():
        preds = model(torch.from_numpy(ds.data[a.indices])).argmax(1).numpy()
    assert (preds == ds.labels[a.indices]).all()
    assert a.pool_correct <= a.pool_size and a.pool_size >= 8
    targeted = select_attack_set(ds, model, seed=3, batch_size=4, targeted=True, **kw)
    assert targeted.targets is not None and (targeted.targets != targeted.labels).all()
    everything = select_attack_set(ds, model, seed=3, batch_size=4, selection="all", **kw)
    assert everything.pool_size == 8 and list(everything.indices) == list(np.random.default_rng(3).permutation(40)[:8])


def test_interrupted_run_resumes_bit_for_bit(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = run_cell(_config(data_dir), tmp_path / "ref", progress=False, keep_shards=True)
    with np.load(tmp_path / "ref" / "adversarial.npz", allow_pickle=False) as z:
        ref_adv = z["adversarial"]

    # Interrupt after the first finished batch: its shard survives, nothing else is written.
    original = RunDirectory.save_shard
    calls = {"n": 0}

    def failing(self: RunDirectory, batch: int, key: str, arrays: dict) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        original(self, batch, key, arrays)

    monkeypatch.setattr(RunDirectory, "save_shard", failing)
    with pytest.raises(KeyboardInterrupt):
        run_cell(_config(data_dir), tmp_path / "cut", progress=False)
    assert (tmp_path / "cut" / "shards" / "batch_00000.npz").exists() and not (tmp_path / "cut" / "results.json").exists()
    monkeypatch.setattr(RunDirectory, "save_shard", original)
    first_shard_mtime = (tmp_path / "cut" / "shards" / "batch_00000.npz").stat().st_mtime_ns
    resumed = run_cell(_config(data_dir), tmp_path / "cut", progress=False, keep_shards=True)
    assert (tmp_path / "cut" / "shards" / "batch_00000.npz").stat().st_mtime_ns == first_shard_mtime  # not recomputed
    with np.load(tmp_path / "cut" / "adversarial.npz", allow_pickle=False) as z:
        assert np.array_equal(z["adversarial"], ref_adv)
    assert resumed["victims"] == reference["victims"]

    # Lose the final outputs and one shard of the finished run: rerunning rebuilds them identically.
    for name in ("results.json", "samples.jsonl", "adversarial.npz"):
        (tmp_path / "ref" / name).unlink()
    (tmp_path / "ref" / "shards" / "batch_00001.npz").unlink()
    (tmp_path / "ref" / "shards" / "batch_00002.npz").write_bytes(b"torn write")  # a damaged shard is recomputed
    run_cell(_config(data_dir), tmp_path / "ref", progress=False)
    with np.load(tmp_path / "ref" / "adversarial.npz", allow_pickle=False) as z:
        assert np.array_equal(z["adversarial"], ref_adv)


def test_different_config_in_same_folder_is_refused_unless_overwrite(data_dir: Path, tmp_path: Path) -> None:
    run_cell(_config(data_dir), tmp_path / "r", progress=False)
    with pytest.raises(ConfigError, match=r"different configuration \(changed: attack_config\).*--overwrite"):
        run_cell(_config(data_dir, eps=0.02), tmp_path / "r", progress=False)
    res = run_cell(_config(data_dir, eps=0.02), tmp_path / "r", overwrite=True, progress=False)
    assert res["eps"] == 0.02
    # Evaluation-only changes (defenses, extra victims) reuse the adversarial set.
    res = run_cell(_config(data_dir, eps=0.02, defenses=["lowpass"]), tmp_path / "r", progress=False)
    assert [c["defense"] for c in res["victims"]] == ["lowpass", "lowpass"]


def test_threat_models_get_exactly_their_access(data_dir: Path, tmp_path: Path) -> None:
    nobox = run_cell(_config(data_dir, attack=spec("NoBoxNoise")), tmp_path / "nobox", progress=False)
    assert nobox["threat_model"] == "hard-no-box" and nobox["surrogate"] is None
    assert nobox["timing"]["surrogate_gradient_evaluations"] == 0

    query = run_cell(_config(data_dir, attack=spec("QueryRandom"), steps=2), tmp_path / "query", progress=False)
    assert query["threat_model"] == "query" and query["surrogate"] is None and query["timing"]["queries"] == 10 * 3
    assert query["attacked_model"] == spec("victim_a")

    transfer = run_cell(
        _config(data_dir, attack=spec("TransferStep"), victims=[spec("victim_b")], surrogate=spec("victim_a")),
        tmp_path / "transfer", progress=False,
    )
    assert transfer["surrogate"] == spec("victim_a") and transfer["threat_model"] == "transfer"
    assert transfer["attack_extras"][0]["prepared"] == {"model": spec("victim_a"), "split": "train", "n": 16}
    assert [c["victim"] for c in transfer["victims"]] == [spec("victim_b")]


def test_checkpoint_for_the_protocols_default_surrogate_is_used(tmp_path: Path) -> None:
    """A transfer attack without --surrogate attacks benchmark.yaml's surrogate, whose weights the user may give."""
    from skelrobust.zoo import entry_path, find_entry

    weights = entry_path(find_entry("stgcn", "synthetic", "lite"))
    result = run_cell(
        RunConfig(attack=spec("TransferStep"), victims=["ctrgcn"], dataset="synthetic", checkpoints={"stgcn": str(weights)},
                  eps=0.01, steps=1, n_samples=2, batch_size=2, seed=0, device="cpu"),
        tmp_path / "default-surrogate", progress=False,
    )
    assert result["surrogate"] == "stgcn" and result["attacked_model"] == "stgcn"
    assert result["provenance"]["checkpoints"]["stgcn"]["checkpoint"] == str(weights.resolve())


@pytest.mark.parametrize(
    "args,message",
    [
        (["--attack", "nosuchattack"], "unknown attack 'nosuchattack'"),
        (["--eps", "-1"], "--eps must be a finite number > 0"),
        (["--n-samples", "0"], "--n-samples must be >= 1"),
        (["--defense", "blur"], "unknown defense 'blur'"),
        (["--checkpoint", "x.pt"], "--checkpoint is for a single victim"),
        (["--victim-checkpoint", "other=x.pt"], "checkpoint given for 'other', which is neither a victim nor the attacked model"),
        (["--option", "no_such_option=3"], "has no option"),
        (["--option", "eps=3"], "set eps with its own flag"),
        (["--defense-option", "lowpass.sigma=2"], "options given for defense(s) lowpass that are not in --defense"),
        (["--device", "tpu:9"], "--device 'tpu:9'"),
    ],
)
def test_bad_arguments_give_one_clear_line(data_dir: Path, tmp_path: Path, args: list[str], message: str) -> None:
    base = {"--attack": spec("SignStep"), "--victim": VICTIMS, "--dataset": "npz", "--root": str(data_dir),
            "--eps": "0.05", "--steps": "1", "--n-samples": "2", "--output": str(tmp_path / "bad")}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    argv = ["run", "--quiet"] + [item for pair in base.items() for item in pair]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output


def test_targeted_run_judges_success_against_the_targets(data_dir: Path, tmp_path: Path) -> None:
    res = run_cell(_config(data_dir, targeted=True, eps=0.2, steps=5), tmp_path / "t", progress=False)
    assert res["targeted"] is True and res["success_definition"].startswith("targeted")
    records = [json.loads(line) for line in (tmp_path / "t" / "samples.jsonl").read_text().splitlines()]
    assert all(r["target"] != r["label"] for r in records)
    for r in records:
        for cell in r["victims"]:
            assert cell["success"] == (cell["adversarial_prediction"] == r["target"])
    assert res["white_box_success_rate"] == pytest.approx(np.mean([r["attacked_model"]["success"] for r in records]))
    with np.load(tmp_path / "t" / "adversarial.npz", allow_pickle=False) as z:
        assert list(z["targets"]) == [r["target"] for r in records]


def test_defense_options_reach_the_defense(data_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [
        "run", "--attack", spec("SignStep"), "--victim", spec("victim_a"), "--dataset", "npz", "--root", str(data_dir),
        "--defense", "lowpass", "--defense-option", "lowpass.sigma=2.5", "--defense-option", "lowpass.kernel=box",
        "--eps", "0.05", "--steps", "1", "--n-samples", "4", "--output", str(tmp_path / "d"), "--quiet", "--json",
    ])
    assert result.exit_code == 0, result.output
    res = json.loads(result.output)
    assert res["defenses"]["lowpass"]["sigma"] == 2.5 and res["defenses"]["lowpass"]["kernel"] == "box"
    assert [c["defense"] for c in res["victims"]] == ["lowpass"]


def test_file_order_walks_the_test_split_in_order(data_dir: Path) -> None:
    ds = load_dataset("npz", "test", root=data_dir)
    model = Victim.wrap(victim_a(), layout="ntu25").eval()
    chosen = select_attack_set(ds, model, n_samples=6, seed=5, batch_size=4, device=torch.device("cpu"), order="file")
    correct = [i for i in range(len(ds)) if i % 4 != 0]  # h5_helpers flips every fourth label
    assert list(chosen.indices) == correct[:6] and chosen.order == "file"
    with pytest.raises(ConfigError, match="order must be one of seeded, file"):
        select_attack_set(ds, model, n_samples=6, seed=5, batch_size=4, device=torch.device("cpu"), order="random")


def test_changed_data_with_the_same_ids_is_not_resumed(tmp_path: Path) -> None:
    from skelrobust.data.formats.npz import save_npz

    path = write_split(tmp_path / "data", "test", 12)
    cfg = _config(tmp_path / "data", n_samples=4, steps=1)
    run_cell(cfg, tmp_path / "r", progress=False)
    ds = load_dataset("npz", "test", root=path)
    save_npz(path, np.asarray(ds.data) * 1.01, ds.labels, "ntu25", class_names=ds.class_names,
             sample_ids=ds.sample_ids, lengths=ds.lengths)
    with pytest.raises(ConfigError, match=r"changed: dataset_fingerprint"):
        run_cell(cfg, tmp_path / "r", progress=False)


def test_dataset_options_reach_the_loader(tmp_path: Path) -> None:
    """--dataset-option is passed to load_dataset (here an option the synthetic loader rejects by name)."""
    result = CliRunner().invoke(main, [
        "run", "--quiet", "--attack", "pgd", "--victim", "stgcn", "--dataset", "synthetic", "--steps", "1",
        "--n-samples", "2", "--dataset-option", "benchmark=xview", "--output", str(tmp_path / "opt"),
    ])
    assert result.exit_code == 1
    assert "dataset 'synthetic' does not take option(s) benchmark" in result.output


def test_dataset_options_select_the_data(tmp_path: Path) -> None:
    cfg = RunConfig(attack="pgd", victims=["stgcn"], dataset="synthetic", dataset_options={"seed": 0}, steps=1,
                    n_samples=2, batch_size=2, seed=0, device="cpu")
    result = run_cell(cfg, tmp_path / "seeded", progress=False)
    assert result["provenance"]["config"]["dataset_options"] == {"seed": 0}


def test_missing_checkpoint_file_is_one_clear_error(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"checkpoint for .* not found: .*nope\.pt"):
        run_cell(_config(data_dir, checkpoints={spec("victim_a"): str(tmp_path / "nope.pt")}), tmp_path / "missing", progress=False)
