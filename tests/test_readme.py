"""Every command in README.md's bash blocks runs, in small form, so the README cannot drift from the code.

The commands run in README order (later ones use what earlier ones wrote, e.g. ``runs/pgd``) in one scratch
folder, in-process through the CLI, with these substitutions (the README's Development section names them):

- ``--n-samples N`` -> 4, ``--steps N`` -> 2, ``--epochs N`` -> 1; ``--lr-step N`` is dropped (no step fits in one epoch);
- the embedded ``synthetic`` set at 4 subjects x 1 repetition (``--dataset-option num_subjects=4
  --dataset-option repetitions=1``), 32 test clips;
- a relative path into this repository's ``protocols/``, ``bench/``, ``docs/`` or ``skelrobust/`` -> its absolute path.

A command this test cannot run is listed in :data:`NOT_RUN` with the reason; a slow one in :data:`SLOW`
(run with SKELROBUST_RUN_SLOW=1). Anything else that is not a ``skelrobust`` command fails the test until it
is listed, so a command added to the README is never silently left out.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from skelrobust.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"

#: (pattern searched in the command, reason): commands that cannot run inside the test suite.
NOT_RUN: list[tuple[str, str]] = [
    (r"^python3? -m venv ", "creates the virtual environment; .ci/run checks the set-up on a fresh machine"),
    (r"^\. \S*activate$", "activates that virtual environment"),
    (r"^pip install ", "installs packages; .ci/run checks the installation"),
    (r"^(SKELROBUST_RUN_SLOW=1 )?python -m pytest", "runs the test suite this test belongs to"),
    (r"mypkg\.models:build|path/to/model\.py:build", "stands for the reader's own model code and checkpoint"),
    (r"--dataset ntu60 --root data/", "needs NTU RGB+D files, which cannot be shipped"),
]

#: (pattern, reason): commands run only with SKELROBUST_RUN_SLOW=1.
SLOW: list[tuple[str, str]] = [
    (r"^skelrobust (data )?show ", "renders an animated GIF: several seconds of matplotlib per clip"),
    (r"^skelrobust benchmark protocols/embedded-grid\.yaml", "runs the 72-cell embedded grid (tests/benchmark runs a small protocol)"),
    (r"^skelrobust (results|report) runs/grid", "reads the embedded grid's folder, written by the slow command above"),
]

#: Top-level folders of this repository whose files README commands name by relative path (run from the scratch
#: folder, so they are passed as absolute paths).
REPO_FOLDERS = ("protocols", "bench", "docs", "skelrobust")
SHRINK = {"--n-samples": "4", "--steps": "2", "--epochs": "1"}
SMALL_SYNTHETIC = ["--dataset-option", "num_subjects=4", "--dataset-option", "repetitions=1"]
#: Commands whose ``synthetic`` dataset takes ``--dataset-option``.
_DATASET_COMMANDS = ("run", "train", "eval")


@dataclass(frozen=True)
class Command:
    line: int  #: README line where the command starts
    text: str  #: the command as written (continuations joined, comments removed)
    argv: tuple[str, ...]


def bash_commands(text: str) -> list[Command]:
    """Every command of the README's ``bash``/``sh``/``shell`` blocks: continuations joined, ``&&`` split."""
    commands: list[Command] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        i += 1
        if not fence:
            continue
        block, start = [], i
        while i < len(lines) and not lines[i].startswith("```"):
            block.append(lines[i])
            i += 1
        i += 1
        if fence.group(1) not in ("bash", "sh", "shell"):
            continue
        logical, first = "", start
        for number, raw in enumerate(block, start=start + 1):
            if not logical:
                first = number
            logical += raw[:-1] + " " if raw.rstrip().endswith("\\") else raw
            if raw.rstrip().endswith("\\"):
                continue
            tokens = shlex.split(logical, comments=True)
            logical = ""
            part: list[str] = []
            for token in [*tokens, "&&"]:
                if token in ("&&", ";"):
                    if part:
                        commands.append(Command(first, shlex.join(part), tuple(part)))
                    part = []
                else:
                    part.append(token)
    return commands


def _match(rules: list[tuple[str, str]], text: str) -> str | None:
    return next((reason for pattern, reason in rules if re.search(pattern, text)), None)


def small(argv: tuple[str, ...]) -> list[str]:
    """The command in small form (the module docstring's substitutions)."""
    out = [str(README.parent / t) if "/" in t and t.split("/")[0] in REPO_FOLDERS and (README.parent / t).exists() else t for t in argv]
    for i, token in enumerate(out):
        flag, eq, _ = token.partition("=")
        if flag in SHRINK:
            if eq:
                out[i] = f"{flag}={SHRINK[flag]}"
            elif i + 1 < len(out):
                out[i + 1] = SHRINK[flag]
    while "--lr-step" in out:  # a step schedule has no room in the single epoch of the small form
        del out[out.index("--lr-step") : out.index("--lr-step") + 2]
    uses_synthetic = ("--dataset" in out and out[out.index("--dataset") + 1] == "synthetic" and out[1] in _DATASET_COMMANDS) or (
        out[1:2] == ["data"] and len(out) > 3 and out[3] == "synthetic"
    )
    return out + SMALL_SYNTHETIC if uses_synthetic else out


COMMANDS = bash_commands(README.read_text(encoding="utf-8"))


def test_readme_has_runnable_commands() -> None:
    assert sum(c.argv[0] == "skelrobust" for c in COMMANDS) >= 10


def test_every_listed_rule_still_matches_a_command() -> None:
    """Rules for commands the README no longer has are removed, so the lists stay honest."""
    for pattern, reason in NOT_RUN + SLOW:
        assert any(re.search(pattern, c.text) for c in COMMANDS), f"no README command matches {pattern!r} ({reason})"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("readme")


@pytest.mark.parametrize("command", COMMANDS, ids=[f"L{c.line}:{' '.join(c.argv[:3])}" for c in COMMANDS])
def test_readme_command_runs_in_small_form(command: Command, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reason = _match(NOT_RUN, command.text)
    if reason:
        pytest.skip(f"not run: {reason}")
    slow = _match(SLOW, command.text)
    if slow and os.environ.get("SKELROBUST_RUN_SLOW") != "1":
        pytest.skip(f"slow ({slow}); runs with SKELROBUST_RUN_SLOW=1")
    assert command.argv[0] == "skelrobust", (
        f"README line {command.line}: {command.text!r} is not a skelrobust command; list it in tests/test_readme.py "
        "(NOT_RUN or SLOW) with the reason it cannot run here"
    )
    monkeypatch.chdir(scratch)
    argv = small(command.argv)
    result = CliRunner().invoke(main, argv[1:])
    assert result.exit_code == 0, f"README line {command.line}: {shlex.join(argv)}\n{result.output}"
