"""The molecule scenario runs on the simulated fleet, from create to destroy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sim

REPO = Path(__file__).resolve().parents[2]


def test_molecule_default_scenario() -> None:
    if os.geteuid() != 0:
        pytest.skip("the simulated fleet needs root")
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "ANSIBLE_NOCOLOR": "1",
        "PY_COLORS": "0",
    }
    result = subprocess.run(
        [str(bin_dir / "molecule"), "test", "-s", "default"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for action in ("create", "converge", "idempotence", "check", "verify", "destroy"):
        assert f"{action}: Executed: Successful" in output, action
