"""A hard no-box run through the runner: unfiltered attack set, unlabelled samples to prepare, fooling rates."""

from __future__ import annotations

import json

from skelrobust.benchmark.cell_config import RunConfig
from skelrobust.benchmark.cell import run_cell
from user_encoder_source import FRAME_ENCODER_SOURCE


def test_hard_no_box_run_end_to_end(tmp_path) -> None:
    (tmp_path / "my_encoder.py").write_text(FRAME_ENCODER_SOURCE)
    spec = f"{tmp_path / 'my_encoder.py'}:FrameEncoder"  # user code, as --option encoder=FILE.py:ATTR passes it
    cfg = RunConfig(
        attack="s2mi", victims=["stgcn"], dataset="synthetic", eps=0.05, steps=3, n_samples=8, batch_size=4, device="cpu",
        attack_options={"encoder": spec, "tvar_bandwidths": 3, "cache": False, "progress": False},
    )
    results = run_cell(cfg, tmp_path / "run", progress=False)
    assert results["threat_model"] == "hard-no-box" and results["surrogate"] is None
    assert results["attack_set"]["selection"] == "all" and results["n_samples"] == 8
    cell = results["victims"][0]
    assert 0.0 <= cell["fooling_rate"] <= 1.0 and results["steps"] == 3
    extras = results["attack_extras"][0]["nobox"]
    # the attack learned its negatives on the 8 clean attack samples (unlabelled), not on the 4 of its batch
    assert extras["encoder"]["manifold_split"] == "attack" and extras["encoder"]["unlabelled_samples"] == 8
    assert extras["encoder"]["source"] == "user code" and results["attack_config"]["encoder"] == spec
    assert extras["negatives"]["clusters"] == 4 and extras["smi_order"] == 2
    records = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert all(r["gradient_evaluations"] == 3 for r in records)
    fooled = sum(v["adversarial_prediction"] != v["clean_prediction"] for r in records for v in r["victims"])
    assert fooled / 8 == cell["fooling_rate"]


def test_learned_encoder_through_the_runner_uses_the_whole_attack_set(tmp_path) -> None:
    cfg = RunConfig(
        attack="nobox-ifgsm", victims=["stgcn"], dataset="synthetic", eps=0.03, steps=2, n_samples=12, batch_size=6,
        device="cpu", attack_options={"pretrain_steps": 2, "pretrain_batch_size": 4, "progress": False},
    )
    results = run_cell(cfg, tmp_path / "run", progress=False)
    extras = [e["nobox"] for e in results["attack_extras"]]
    assert [e["encoder"]["unlabelled_samples"] for e in extras] == [12, 12]
    assert extras[0]["encoder"]["fingerprint"] == extras[1]["encoder"]["fingerprint"]  # learned once for both batches
    assert extras[0]["negatives"]["clusters"] == 6 and extras[0]["smi_order"] == 0


def test_quiet_silences_the_encoder_learning_bar_and_keeps_the_recorded_option(tmp_path, capsys, monkeypatch) -> None:
    from skelrobust.nobox import manifold

    def run(folder: str, progress: bool) -> tuple[dict, str]:
        monkeypatch.setattr(manifold, "_MEMORY", {})  # each run learns its encoder (no in-process cache hit)
        cfg = RunConfig(
            attack="nobox-ifgsm", victims=["stgcn"], dataset="synthetic", eps=0.03, steps=1, n_samples=4, batch_size=4,
            device="cpu", attack_options={"pretrain_steps": 1, "pretrain_batch_size": 4, "cache": False, "tvar_bandwidths": 3},
        )
        capsys.readouterr()
        results = run_cell(cfg, tmp_path / folder, progress=progress)
        return results, capsys.readouterr().err

    quiet, quiet_err = run("quiet", False)
    loud, loud_err = run("loud", True)
    assert "moco" in loud_err  # the control: the attack's own MoCo bar is on by default
    assert "moco" not in quiet_err and quiet_err.strip() == ""
    assert quiet["attack_config"]["progress"] is True and quiet["attack_config"] == loud["attack_config"]
