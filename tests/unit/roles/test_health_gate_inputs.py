"""The target-side health gate (roles/inference_runtime/files/health_gate.py) fails a host
whose live input is not running, with the pipeline's own error."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

GATE = Path(__file__).resolve().parents[3] / "roles/inference_runtime/files/health_gate.py"


def load_gate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("health_gate", GATE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stats(inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "watchdog": {"systemd": True, "timeouts": 0},
        "rt": {},
        "health": {"inputs": inputs},
        "tasks": {
            "det": {
                "counts": {"inferences": 100, "deadline_misses": 0},
                "latency_ms": {"total": {"p99": 4.0}},
            }
        },
    }


SPEC = {
    "unit": "jetson-rt-runner",
    "require_rt": False,
    "tasks": [{"name": "det", "deadline_ms": 50, "p99_ms": 50, "miss_budget_pct": 1}],
}
STATE = {"WatchdogUSec": "5s"}


def test_a_running_pipeline_passes() -> None:
    gate = load_gate()
    live = {"det": {"state": "running", "healthy": True, "last_error": None}}
    failures, checks = gate.check_stats(SPEC, stats(live), STATE)
    assert failures == []
    assert checks["inputs"] == live


def test_a_restarting_pipeline_fails_the_host_with_its_error() -> None:
    gate = load_gate()
    live = {"det": {"state": "restarting", "healthy": False, "last_error": "Resource not found."}}
    failures, _ = gate.check_stats(SPEC, stats(live), STATE)
    assert failures == ["task det: its live input is restarting (Resource not found.)"]
