"""inference_runtime refuses bad video input and publishing variables in validate.yml, before
any task that changes a host: its tasks run here on the controller (connection local) with
one bad variable each, and the play must fail naming the problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")

MODEL = {
    "name": "det",
    "version": "1",
    "source": "models/det-1.onnx",
    "sha256": "0" * 64,
    "precision": "fp16",
    "dla_fallback": "gpu",
    "dla_wanted": False,
    "dla_blocked": False,
    "use_dla": False,
    "device": "cpu",
    "serve": True,
    "deadline_ms": 50,
    "tiers": [],
    "reference": None,
}
PIPELINE = "videotestsrc is-live=true ! video/x-raw,framerate=30/1"


def run_validate(tmp_path: Path, variables: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    inputs = variables.pop("input", {"source": "synthetic"})
    play = [
        {
            "name": "validate inference_runtime inputs",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {
                "__inference_runtime_models": [{**MODEL, "input": inputs}],
                "inference_runtime_cpus": None,
                "ansible_facts": {"jetson": {"dla_count": 0}},
                **variables,
            },
            "tasks": [
                {
                    "name": "validate",
                    "ansible.builtin.include_role": {
                        "name": "inference_runtime",
                        "tasks_from": "validate.yml",
                    },
                }
            ],
        }
    ]
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(playbook)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
    )


def failure(result: subprocess.CompletedProcess[str]) -> str:
    """The failed task's name and message, from ansible-playbook's default output."""
    lines = result.stdout.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("fatal:"):
            task = next(
                (lines[back] for back in range(index, -1, -1) if lines[back].startswith("TASK [")),
                "",
            )
            end = next(
                (
                    after
                    for after in range(index, len(lines))
                    if lines[after].startswith("PLAY RECAP")
                ),
                len(lines),
            )
            return task + " " + " ".join(part.strip() for part in lines[index:end])
    return ""


GOOD: dict[str, Any] = {
    "inference_runtime_publish": True,
    "inference_runtime_publish_connect": ["tcp/10.0.0.2:7447"],
    "input": {"source": "gstreamer", "pipeline": PIPELINE},
}


def test_good_settings_pass(tmp_path: Path) -> None:
    result = run_validate(tmp_path, dict(GOOD))
    assert result.returncode == 0, failure(result) or result.stdout[-2000:]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"inference_runtime_publish_key_prefix": "jetson-rt/*"}, 'wildcards), got "jetson-rt/*"'),
        (
            {"inference_runtime_publish_connect": ["10.0.0.2:7447"]},
            'endpoint "10.0.0.2:7447" is not',
        ),
        ({"inference_runtime_publish_mode": "router"}, 'peer or client, got "router"'),
        (
            {"inference_runtime_pip_extras": ["ort"]},
            'publish in inference_runtime_pip_extras, got ["ort"]',
        ),
        (
            {"input": {"source": "gstreamer"}},
            'gstreamer needs a pipeline, got {"source": "gstreamer"}',
        ),
        (
            {"input": {"source": "rtsp", "pipeline": PIPELINE}},
            "synthetic, npy, v4l2 or gstreamer, got",
        ),
    ],
    ids=["key-wildcard", "endpoint-no-protocol", "mode", "extra-missing", "no-pipeline", "source"],
)
def test_bad_settings_fail_with_the_value(
    tmp_path: Path, change: dict[str, Any], fragment: str
) -> None:
    result = run_validate(tmp_path, {**GOOD, **change})
    assert result.returncode != 0
    message = failure(result)
    assert "Validate | video input and result publishing" in message, result.stdout[-3000:]
    assert fragment in message, message
