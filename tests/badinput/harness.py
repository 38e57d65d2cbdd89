"""Table-driven bad-input cases for the ``jetson-rt`` commands.

A case names a command line, the files it needs (written by ``setup`` into a fresh
folder) and a fragment the error must contain. :func:`check_refused` runs it as a user
would, in a child process, and asserts what every refusal owes its user:

- a non-zero exit code (``exit_code`` when the case names one);
- exactly one ``ERROR`` line on stderr, naming the problem (``expect``, a regular
  expression searched case-insensitively), and no Python traceback anywhere;
- nothing changed: the folder holds the same files with the same bytes afterwards
  (inputs untouched, no output left behind, not even half-written).

Add a case by appending a :class:`Case` to a command's table; nothing else is needed.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """One bad input. ``argv`` follows ``jetson-rt``; ``{dir}`` in it becomes the case's
    folder. ``id`` names the case in pytest's output."""

    id: str
    argv: Sequence[str]
    expect: str
    setup: Setup | None = None
    exit_code: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 120.0


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``: a file's sha256, a link's target, ``dir`` for a folder."""
    state: dict[str, str] = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = Path(root, name)
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                state[rel] = "link:" + str(path.readlink())
            elif path.is_dir():
                state[rel] = "dir"
            else:
                state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def run_cli(
    argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None, timeout_s: float = 120.0
) -> Outcome:
    """``jetson-rt ARGV`` in a child process, as a user types it."""
    result = subprocess.run(
        [sys.executable, "-m", "jetson_rt", *argv],
        cwd=cwd,
        env={**os.environ, "JETSON_RT_LOG_LEVEL": "WARNING", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return Outcome(result.returncode, result.stdout, result.stderr)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ERROR ")]


def check_refused(case: Case, folder: Path) -> Outcome:
    """Run ``case`` in ``folder`` and assert it was refused cleanly (see the module doc)."""
    folder.mkdir(parents=True, exist_ok=True)
    if case.setup is not None:
        case.setup(folder)
    before = snapshot(folder)
    argv = [arg.replace("{dir}", str(folder)) for arg in case.argv]
    outcome = run_cli(argv, folder, case.env, case.timeout_s)
    shown = f"exit {outcome.returncode}\nstdout:\n{outcome.stdout}\nstderr:\n{outcome.stderr}"
    assert "Traceback" not in outcome.stdout + outcome.stderr, shown
    assert outcome.returncode != 0, shown
    if case.exit_code is not None:
        assert outcome.returncode == case.exit_code, shown
    errors = error_lines(outcome.stderr)
    assert len(errors) == 1, f"expected one ERROR line\n{shown}"
    assert re.search(case.expect, errors[0], re.IGNORECASE), f"{case.expect!r} not in\n{shown}"
    assert snapshot(folder) == before, f"the command changed {folder}\n{shown}"
    return outcome


def ids(cases: Sequence[Case]) -> list[str]:
    seen = [case.id for case in cases]
    duplicates = {name for name in seen if seen.count(name) > 1}
    assert not duplicates, f"duplicate case ids: {sorted(duplicates)}"
    return seen
