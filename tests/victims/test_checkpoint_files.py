"""Damaged or unsafe checkpoint FILES: one line saying what is wrong and what skelrobust accepts."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from skelrobust.checkpoints import read_state_dict
from skelrobust.cli import main
from skelrobust.errors import CheckpointError
from skelrobust.zoo import entry_path, find_entry


class Pickled:
    """A class a checkpoint should never need: weights_only=True refuses it."""


def _zoo_state(victim: str) -> dict[str, torch.Tensor]:
    return read_state_dict(entry_path(find_entry(victim, "synthetic", "lite")))


def test_empty_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pt is an empty file \(0 bytes\); skelrobust reads checkpoints"):
        read_state_dict(path)


def test_pickled_objects_are_refused_without_pointing_at_weights_only_false(tmp_path: Path) -> None:
    path = tmp_path / "pickled.pt"
    torch.save({"w": torch.zeros(2), "extra": collections.OrderedDict(cls=Pickled)}, path)
    with pytest.raises(CheckpointError) as info:
        read_state_dict(path)
    message = str(info.value)
    assert "not a plain state dict" in message and "Pickled" in message and "accepts a state dict" in message
    assert "weights_only=False" not in message and "will likely succeed" not in message
    assert "\n" not in message


@pytest.mark.parametrize("bad, word", [(float("nan"), "NaN"), (float("inf"), "infinite"), (float("-inf"), "infinite")])
def test_non_finite_weights_name_the_first_bad_key(tmp_path: Path, bad: float, word: str) -> None:
    state = {"a.weight": torch.ones(3), "b.weight": torch.tensor([1.0, bad]), "c.weight": torch.tensor([bad])}
    torch.save(state, tmp_path / "diverged.pt")
    with pytest.raises(CheckpointError, match=rf"weight 'b\.weight' holds {word} values"):
        read_state_dict(tmp_path / "diverged.pt")


def test_nan_zoo_weights_are_refused_by_eval_and_run(tmp_path: Path) -> None:
    state = _zoo_state("stgcn")
    key = sorted(k for k, v in state.items() if v.is_floating_point())[0]
    state[key] = torch.full_like(state[key], float("nan"))
    torch.save(state, tmp_path / "nan.pt")
    for args in (["eval", "--victim", "stgcn", "--dataset", "synthetic", "--checkpoint", str(tmp_path / "nan.pt")],
                 ["run", "--attack", "pgd", "--victim", "ctrgcn", "--surrogate", "stgcn", "--dataset", "synthetic",
                  "--victim-checkpoint", f"stgcn={tmp_path / 'nan.pt'}", "--steps", "1", "--n-samples", "2",
                  "--output", str(tmp_path / "run")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, result.output
        assert f"weight {key!r} holds NaN values" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("how", ["empty", "truncated", "bit-flipped", "retyped-list", "retyped-values", "retyped-dtype"])
def test_damaged_checkpoint_is_one_line_or_loads_finite_weights(tmp_path: Path, how: str) -> None:
    from skelrobust import load_victim

    source = entry_path(find_entry("stgcn", "synthetic", "lite"))
    path = tmp_path / "damaged.pt"
    blob = source.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif how == "bit-flipped":
        flipped = bytearray(blob)
        flipped[int(len(blob) * 0.6)] ^= 0x10
        path.write_bytes(bytes(flipped))
    elif how == "retyped-list":
        torch.save([1, 2, 3], path)
    elif how == "retyped-values":
        torch.save({k: "text" for k in _zoo_state("stgcn")}, path)
    else:
        torch.save({k: v.to(torch.int64) for k, v in _zoo_state("stgcn").items()}, path)
    try:
        victim = load_victim("stgcn", checkpoint=path, dataset="synthetic")
    except CheckpointError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:  # the damage missed the weights' bytes, or hit one that still decodes: the weights are at least finite
        assert all(torch.isfinite(p).all() for p in victim.network.state_dict().values() if p.is_floating_point())
    result = CliRunner().invoke(main, ["eval", "--victim", "stgcn", "--dataset", "synthetic", "--checkpoint", str(path),
                                       "--dataset-option", "num_subjects=4", "--dataset-option", "repetitions=1"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1) and "Traceback" not in result.output
