"""Linear evaluation: frozen encoder in eval mode, only the head trained, official layout, resumable, CLI rules."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import skelrobust
from skelrobust.cli import main
from skelrobust.data import load_dataset
from skelrobust.errors import ConfigError
from skelrobust.recipes import LinearEvalConfig, MocoConfig, linear_eval, pretrain_moco
from skelrobust.victim import VICTIMS

TINY = {"channels": [8, 8], "strides": [2, 2]}


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("moco")
    torch.manual_seed(0)
    victim = VICTIMS.get("skeletonclr").build(preset="lite", num_classes=16, **TINY)
    data = load_dataset("synthetic", "train").data[:32]
    return pretrain_moco(data, victim, MocoConfig(queue_size=16, batch_size=8, epochs=1, max_steps=2), out, progress=False).checkpoint


def test_only_the_head_changes_and_the_file_is_a_victim(encoder_file, tmp_path) -> None:
    cfg = LinearEvalConfig("skeletonclr", "synthetic", str(encoder_file), preset="lite", epochs=3, build_config=TINY)
    meta = linear_eval(cfg, tmp_path, progress=False)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    pre = torch.load(encoder_file, weights_only=True)
    assert all(k.startswith("encoder_q.") for k in best)
    for key, value in best.items():
        if not key.startswith("encoder_q.fc."):
            assert torch.equal(value, pre[key]), key  # weights and BatchNorm statistics frozen (eval mode throughout)
    assert best["encoder_q.fc.weight"].shape == (16, 8)
    assert meta["protocol"] == "linear-eval" and meta["pretraining"]["sha256"] == meta["encoder_sha256"]
    assert [h["lr"] for h in meta["history"]] == [3.0, 3.0, 3.0] and 0.0 <= meta["test_accuracy"] <= 1.0
    assert {"command", "test_accuracy", "val_accuracy", "num_parameters", "train_seconds", "sha256", "config"} <= set(meta)
    victim = skelrobust.load_victim("skeletonclr", checkpoint=tmp_path / "best.pt", dataset="synthetic", preset="lite", **TINY)
    assert victim.checkpoint_sha256 == meta["sha256"]
    again = linear_eval(cfg, tmp_path, progress=False)  # finished run: resumed, nothing retrained
    assert again["history"] == meta["history"]
    with pytest.raises(ConfigError, match="different linear evaluation .*lr"):
        linear_eval(LinearEvalConfig("skeletonclr", "synthetic", str(encoder_file), preset="lite", epochs=3, lr=1.0, build_config=TINY), tmp_path)


def test_linear_eval_needs_a_self_supervised_victim(encoder_file, tmp_path) -> None:
    with pytest.raises(ConfigError, match="has no encoder_q .*skeletonclr"):
        linear_eval(LinearEvalConfig("stgcn", "synthetic", str(encoder_file), preset="lite"), tmp_path)


def test_train_cli_linear_eval_refuses_bad_options(encoder_file, tmp_path) -> None:
    base = ["train", "--victim", "skeletonclr", "--dataset", "synthetic", "--preset", "lite", "--config", "channels=[8, 8]",
            "--config", "strides=[2, 2]", "--out", str(tmp_path)]
    missing = CliRunner().invoke(main, [*base, "--linear-eval"])
    assert missing.exit_code != 0 and "--encoder FILE" in missing.output and "Traceback" not in missing.output
    clash = CliRunner().invoke(main, [*base, "--linear-eval", "--encoder", str(encoder_file), "--rotate", "10"])
    assert clash.exit_code != 0 and "--rotate cannot apply" in clash.output


@pytest.mark.slow
def test_train_cli_linear_eval_uses_the_protocol_defaults(encoder_file, tmp_path) -> None:
    base = ["train", "--victim", "skeletonclr", "--dataset", "synthetic", "--preset", "lite", "--config", "channels=[8, 8]",
            "--config", "strides=[2, 2]", "--out", str(tmp_path)]
    ok = CliRunner().invoke(main, [*base, "--linear-eval", "--encoder", str(encoder_file), "--epochs", "2", "--json"])
    assert ok.exit_code == 0, ok.output
    meta = json.loads(ok.stdout[ok.stdout.index("{"):])
    assert meta["training"]["lr"] == 3.0 and meta["training"]["batch_size"] == 128 and meta["epochs"] == 2


def test_train_cli_lr_step_sets_the_head_schedule_and_is_checked(encoder_file, tmp_path) -> None:
    base = ["train", "--victim", "skeletonclr", "--dataset", "synthetic", "--preset", "lite", "--config", "channels=[8, 8]",
            "--config", "strides=[2, 2]"]
    ok = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "eval"), "--linear-eval", "--encoder", str(encoder_file),
                                   "--epochs", "4", "--lr", "2.0", "--lr-step", "1", "--lr-step", "3", "--json"])
    assert ok.exit_code == 0, ok.output
    meta = json.loads(ok.stdout[ok.stdout.index("{"):])
    assert meta["training"]["lr_steps"] == [1, 3]
    assert [h["lr"] for h in meta["history"]] == pytest.approx([2.0, 0.2, 0.2, 0.02])
    late = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "late"), "--linear-eval", "--encoder", str(encoder_file),
                                     "--epochs", "4", "--lr-step", "4"])
    assert late.exit_code != 0 and "--lr-step 4 never applies: a step must lie in 1..3 (--epochs 4)" in late.output
    assert not (tmp_path / "late").exists()
    supervised = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "sup"), "--lr-step", "2"])
    assert supervised.exit_code != 0 and "--lr-step sets the step schedule of --linear-eval" in supervised.output
    assert "Traceback" not in supervised.output + late.output
