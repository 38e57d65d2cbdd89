"""Runner faults that only a new process cures: the service exits so systemd restarts it.

Faults come from :class:`runner_faults.FaultyBackend` around the real ONNX Runtime
backend. A sticky CUDA error cannot happen on this machine (no GPU); it is the
:class:`~jetson_rt.cuda.api.CudaError` the CUDA runtime wrapper raises for
``cudaErrorIllegalAddress``, raised by the fault injector in the backend's place.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from runner_faults import FaultyBackend

from jetson_rt.backends.base import Backend, is_sticky
from jetson_rt.cuda.api import CudaError
from jetson_rt.runner.config import ModelConfig, parse_config
from jetson_rt.runner.service import (
    BACKEND_FAULT_EXIT_CODE,
    WATCHDOG_EXIT_CODE,
    Runner,
    default_backend_factory,
)
from jetson_rt.runner.stats import read_stats
from jetson_rt.runner.tiers import TierController
from onnx_models import GeneratedModel

Doc = dict[str, Any]
HERE = Path(__file__).resolve().parent


def illegal_address() -> CudaError:
    return CudaError(
        "cudaStreamSynchronize", 700, "cudaErrorIllegalAddress", "an illegal memory access"
    )


class Factory:
    def __init__(self) -> None:
        self.faulty: dict[str, FaultyBackend] = {}

    def __call__(self, model: ModelConfig) -> Backend:
        wrapped = FaultyBackend(default_backend_factory(model))
        self.faulty[model.name] = wrapped
        return wrapped


def two_tiers(base_config: Callable[..., Doc], models: dict[str, GeneratedModel]) -> Doc:
    doc = base_config()
    doc["models"]["conv"] = {
        "backend": "onnxruntime",
        "path": str(models["conv_bn_relu"].path),
        "verify": False,
    }
    doc["tasks"][0]["tiers"] = ["mlp", "conv"]
    return doc


def test_sticky_cuda_codes_are_the_context_killing_ones() -> None:
    assert is_sticky(illegal_address())
    assert is_sticky(CudaError("cudaGraphLaunch", 719, "cudaErrorLaunchFailure", "launch"))
    assert is_sticky(CudaError("x", 214, "cudaErrorECCUncorrectable", "ecc"))
    # Out of memory or a bad argument leave the context usable.
    assert not is_sticky(CudaError("cudaMalloc", 2, "cudaErrorMemoryAllocation", "oom"))
    assert not is_sticky(RuntimeError("illegal address"))


def test_consecutive_backend_errors_end_the_run_with_the_fault_code(
    base_config: Callable[..., Doc], tmp_path: Path
) -> None:
    doc = base_config()
    doc["tasks"][0]["max_consecutive_errors"] = 5
    doc["tasks"][0]["degradation"] = {"emergency": False}
    factory = Factory()
    runner = Runner(parse_config(doc), backend_factory=factory, exit_fn=pytest.fail)
    runner.start()
    factory.faulty["mlp"].fail(1000)
    started = time.monotonic()
    assert runner.run(duration_s=30) == BACKEND_FAULT_EXIT_CODE
    assert time.monotonic() - started < 10
    task = runner.tasks[0]
    assert task.backend_errors == 5
    assert runner.watchdog.timeouts == 0
    stats = read_stats(tmp_path / "stats.json")
    assert stats["state"] == "backend_fault"
    assert stats["final"] is True
    assert "5 backend errors in a row" in str(stats["error"])
    assert "injected backend failure" in str(stats["error"])


def test_errors_with_good_inferences_between_do_not_end_the_run(
    base_config: Callable[..., Doc],
) -> None:
    doc = base_config()
    doc["tasks"][0]["max_consecutive_errors"] = 5
    doc["tasks"][0]["degradation"] = {"emergency": False}
    factory = Factory()
    runner = Runner(parse_config(doc), backend_factory=factory)
    runner.start()
    faulty = factory.faulty["mlp"]

    def intermittent() -> None:
        for _ in range(6):
            faulty.fail(4)  # one short of the limit, then good inferences again
            time.sleep(0.05)

    helper = threading.Thread(target=intermittent, daemon=True)
    helper.start()
    assert runner.run(duration_s=0.6) == 0
    helper.join(timeout=2)
    task = runner.tasks[0]
    assert task.backend_errors >= 8
    assert task.fault == ""
    assert runner.state == "stopped"


def test_a_sticky_cuda_error_ends_the_run_at_once_without_touching_the_context(
    base_config: Callable[..., Doc], tmp_path: Path
) -> None:
    doc = base_config()
    doc["tasks"][0]["max_consecutive_errors"] = 1000
    factory = Factory()
    runner = Runner(parse_config(doc), backend_factory=factory, exit_fn=pytest.fail)
    runner.start()
    faulty = factory.faulty["mlp"]
    faulty.fail(1000, illegal_address())
    assert runner.run(duration_s=30) == BACKEND_FAULT_EXIT_CODE
    assert runner.tasks[0].backend_errors == 1
    # No deactivate (a free in a dead context); the process exit releases it.
    assert not faulty.release.is_set()
    assert faulty.inner.active
    faulty.inner.deactivate()
    stats = read_stats(tmp_path / "stats.json")
    assert stats["state"] == "backend_fault"
    assert "sticky CUDA error" in str(stats["error"])
    assert "cudaErrorIllegalAddress" in str(stats["error"])


def test_a_tier_that_hung_is_not_climbed_back_into(
    base_config: Callable[..., Doc], models: dict[str, GeneratedModel]
) -> None:
    doc = two_tiers(base_config, models)
    # Long enough that a loaded machine's scheduling gap is not taken for the hang.
    doc["watchdog"] = {"timeout_ms": 400, "action": "fallback"}
    doc["tasks"][0]["degradation"] = {
        "emergency": True,
        "emergency_hold_ms": 20,
        "step_up_after": 5,
    }
    factory = Factory()
    exits: list[int] = []
    runner = Runner(parse_config(doc), backend_factory=factory, exit_fn=exits.append)
    runner.start()
    best = factory.faulty["mlp"]
    warmed = best.executed
    best.hang_after(10)

    def release_after_fallback() -> None:
        deadline = time.monotonic() + 10
        while runner.watchdog_fallbacks == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        best.release.set()

    helper = threading.Thread(target=release_after_fallback, daemon=True)
    helper.start()
    assert runner.run(duration_s=1.0) == 0
    helper.join(timeout=1)
    task = runner.tasks[0]
    assert exits == []
    assert runner.watchdog_fallbacks == 1
    # Tier 1 served for the rest of the run, well past step_up_after good inferences,
    # and tier 0 (which hung on its 11th call) was never entered again.
    assert task.tier_counts[1] > 50
    assert best.executed == warmed + 11
    assert task.controller.tier == 1
    assert task.controller.floor == 1


def test_the_only_model_tier_hanging_ends_the_run_for_a_restart(
    base_config: Callable[..., Doc], tmp_path: Path
) -> None:
    doc = base_config(watchdog={"timeout_ms": 150, "action": "fallback"})
    doc["tasks"][0]["degradation"] = {"emergency": True, "emergency_hold_ms": 20}
    factory = Factory()
    runner = Runner(parse_config(doc), backend_factory=factory, exit_fn=pytest.fail)
    runner.start()
    faulty = factory.faulty["mlp"]
    warmed = faulty.executed
    faulty.hang_after(10)

    def release_after_fallback() -> None:
        deadline = time.monotonic() + 10
        while runner.watchdog_fallbacks == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        faulty.release.set()

    helper = threading.Thread(target=release_after_fallback, daemon=True)
    helper.start()
    assert runner.run(duration_s=10.0) == BACKEND_FAULT_EXIT_CODE
    helper.join(timeout=1)
    assert faulty.executed == warmed + 11
    stats = read_stats(tmp_path / "stats.json")
    assert stats["state"] == "backend_fault"
    assert "hung, no tier below it" in str(stats["error"])


def test_retire_keeps_the_floor_under_a_thermal_request_that_lifts() -> None:
    from jetson_rt.runner.config import DegradationConfig

    controller = TierController(3, DegradationConfig(step_up_after=1))
    controller.retire(0)
    controller.request_floor(2)
    controller.poll(1)
    assert controller.tier == 2
    controller.request_floor(0)  # thermal recovery lifts its floor, not the retirement
    controller.poll(2)
    for now in range(3, 10):
        controller.observe(False, now)
    assert controller.tier == 1
    assert controller.floor == 1


SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from jetson_rt.cuda.api import CudaError
    from jetson_rt.log import configure
    from jetson_rt.runner.config import load_config
    from jetson_rt.runner.service import Runner, default_backend_factory
    from runner_faults import FaultyBackend

    configure(0)

    backends = []

    def factory(model):
        backends.append(FaultyBackend(default_backend_factory(model)))
        return backends[-1]

    runner = Runner(load_config(Path(sys.argv[1])), backend_factory=factory)
    runner.start()  # warmed up, READY=1 sent; then every inference fails
    error = CudaError("cudaStreamSynchronize", 700, "cudaErrorIllegalAddress", "illegal")
    backends[0].fail(1_000_000, error if os.environ.get("STICKY") else None)
    sys.exit(runner.run(duration_s=float(sys.argv[2])))
    """
)


@pytest.mark.parametrize("sticky", [False, True], ids=["errors-in-a-row", "sticky-cuda"])
def test_the_process_exits_with_the_fault_code_and_stops_feeding_systemd(
    base_config: Callable[..., Doc], tmp_path: Path, sticky: bool
) -> None:
    doc = base_config(watchdog={"timeout_ms": 300})
    config = tmp_path / "runner.yaml"
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    script = tmp_path / "run_runner.py"
    script.write_text(SCRIPT, encoding="utf-8")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock_path = str(tmp_path / "notify.sock")
    sock.bind(sock_path)
    path = os.pathsep.join([str(HERE), str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")])
    env = {
        **os.environ,
        "PYTHONPATH": path,
        "NOTIFY_SOCKET": sock_path,
        "WATCHDOG_USEC": "200000",
        **({"STICKY": "1"} if sticky else {}),
    }
    messages: list[str] = []
    done = threading.Event()

    def read() -> None:  # a full socket queue would block the runner's sends
        sock.settimeout(0.2)
        while not done.is_set():
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                continue

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            [sys.executable, str(script), str(config), "60"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        time.sleep(0.5)
    finally:
        done.set()
        reader.join(timeout=5)
        sock.close()
    output = proc.stdout + proc.stderr
    assert proc.returncode == BACKEND_FAULT_EXIT_CODE != WATCHDOG_EXIT_CODE, output
    assert "Traceback" not in output
    assert f"exiting with {BACKEND_FAULT_EXIT_CODE} so systemd restarts the service" in output
    ready = next(index for index, m in enumerate(messages) if m.startswith("READY=1"))
    stopping = next(index for index, m in enumerate(messages) if "STOPPING=1" in m)
    # After STOPPING=1 no watchdog ping: systemd's WatchdogSec= would catch a stuck exit.
    assert ready < stopping
    assert not any("WATCHDOG=1" in m for m in messages[stopping:])
    stats = read_stats(tmp_path / "stats.json")
    assert stats["state"] == "backend_fault"
