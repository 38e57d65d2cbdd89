"""Run a collection module the way a target does: ad hoc through the ansible CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

COLLECTIONS = Path(__file__).resolve().parents[1] / "collections"


def ansible_check_mode(module: str, args: str) -> dict[str, Any]:
    """Run ``module`` ad hoc on localhost in check mode through the real ansible CLI.

    The module is packaged with its module_utils as on a target, and run by JetPack
    6's Python 3.10 where that interpreter is installed. Returns the module's result.
    """
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_PYTHON_INTERPRETER": shutil.which("python3.10") or sys.executable,
    }
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible")),
            "localhost",
            "-c",
            "local",
            "--check",
            "-m",
            module,
            "-a",
            args,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=COLLECTIONS.parent,
        check=False,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    start = result.stdout.index(" => {") + 4
    payload, _ = json.JSONDecoder().raw_decode(result.stdout[start:])
    return dict(payload)
