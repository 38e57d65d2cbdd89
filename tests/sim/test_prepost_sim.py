"""A runner.yaml with pre/post stages, rolled out by playbooks/engines.yml to a sim host.

The model is a trained YOLOv8n detector (NudeNet 320n, from its PyPI wheel:
``tests/realmodels/corpus.py``), ``images [1, 3, 320, 320]`` -> ``[1, 22, 2100]``.
The sim host's runner reads a live 160x120 GStreamer ``videotestsrc`` as RGB
frames; the CPU lane letterboxes each frame into the model input (numpy),
ONNX Runtime runs the model and the numpy lane decodes and NMSes the head, so
what the runner publishes over Zenoh is ``count`` + ``detections [50, 6]``.
Checked: the rollout succeeds (its health gate saw the runner serve), the
rendered runner.yaml carries the stages, the runner counts inferences and no
refused frame, and ``jetson-rt listen`` on the controller receives
post-processed results.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.engine_rollout import prepare_inventory, sha256, snapshot_source
from tests.realmodels.corpus import BY_NAME, fetch
from tests.simfleet import SimFleet, sim_fleet

pytestmark = pytest.mark.sim

FLEET_NAME = "prepost"
PIPELINE = (
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120,framerate=10/1"
)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    with sim_fleet(FLEET_NAME, 1, tmp_path_factory.mktemp("prepost") / "sim") as sim:
        yield sim


def model_entry(model: Path) -> dict[str, object]:
    return {
        "name": "yolo",
        "version": "1",
        "source": str(model),
        "sha256": sha256(model),
        "precision": "fp32",
        "shapes": {"images": [1, 3, 320, 320]},
        "deadline_ms": 400,
        # 2 Hz: a sim host's SCHED_FIFO runner has at most 150 ms of CPU per second
        "period_ms": 500,
        "priority": 80,
        "input": {"source": "gstreamer", "pipeline": PIPELINE, "policy": "latest"},
        "preprocess": {
            "format": "rgb",
            "width": 160,
            "height": 120,
            "resize": "letterbox",
            "size": [320, 320],
            "pad_value": 114,
            "scale": 1 / 255,
        },
        "postprocess": {
            "kind": "detect",
            "score_threshold": 0.25,
            "iou_threshold": 0.45,
            "max_det": 50,
        },
    }


def test_engines_yml_rolls_out_a_runner_with_stages(
    fleet: SimFleet, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model = fetch(BY_NAME["yolo_det"])
    source = snapshot_source(tmp_path_factory.mktemp("source"))
    prepare_inventory(fleet.inventory.parent)
    extra = tmp_path_factory.mktemp("vars") / "vars.json"
    extra.write_text(
        json.dumps(
            {
                "inference_runtime_models": [model_entry(model)],
                # YOLOv8n takes ~0.1 s per frame on a loaded sim host; its warm-up, back to
                # back on the runner's one SCHED_FIFO CPU, keeps the systemd ping thread
                # off that CPU: a short warm-up and a longer WatchdogSec= cover it.
                "inference_runtime_watchdog_sec": 30,
                "inference_runtime_runner_watchdog_ms": 5000,
                "inference_runtime_runner_extra": {
                    "warmup": {
                        "min_iterations": 3,
                        "max_iterations": 10,
                        "window": 3,
                        "max_cv": 5.0,
                    }
                },
            }
        )
    )
    record = tmp_path_factory.mktemp("listen") / "results.jsonl"
    # Listen on the controller while the rollout runs: the runner publishes there.
    listener = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jetson_rt",
            "listen",
            # this test's task only: other fleets on this machine publish here too
            "--key",
            "jetson-rt/**/yolo/**",
            "--listen",
            "tcp/0.0.0.0:7447",
            "--count",
            "5",
            "--duration",
            "900",
            "--quiet",
            "--record",
            str(record),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        result = fleet.playbook(
            "playbooks/engines.yml",
            "-e",
            f"inference_runtime_source_dir={source}",
            "-e",
            f"@{extra}",
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
        host = fleet.hosts[0]
        config = fleet.sudo(host, "cat /etc/jetson-rt/runner.yaml")
        assert "preprocess:" in config and "postprocess:" in config
        stats = json.loads(fleet.sudo(host, "cat /run/jetson-rt/stats.json"))
        task = stats["tasks"]["yolo"]
        assert task["counts"]["inferences"] > 0
        assert task["counts"]["input_rejected"] == 0
        assert task["counts"]["backend_errors"] == 0
        _, err = listener.communicate(timeout=120)
        assert listener.returncode == 0, err
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(lines) >= 5
    assert all(line["outputs"] == {"count": [1], "detections": [50, 6]} for line in lines)
