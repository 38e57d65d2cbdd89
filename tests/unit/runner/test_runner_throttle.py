"""The RT throttling warning: when it is given, its words, and health's report of it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jetson_rt.runner.config import HealthConfig, ThermalConfig
from jetson_rt.runner.health import HealthMonitor
from jetson_rt.runner.throttle import (
    AUDIT_FIX,
    AUDIT_TITLE,
    fifo_threads,
    running_throttled,
    throttling_warning,
)

REPO = Path(__file__).resolve().parents[3]
RT_AUDIT = REPO / "collections/ansible_collections/jetson_rt/fleet/plugins/module_utils/rt_audit.py"


def kernel_root(tmp_path: Path, runtime: str, period: str = "1000000") -> str:
    kernel = tmp_path / "proc/sys/kernel"
    kernel.mkdir(parents=True)
    (kernel / "sched_rt_runtime_us").write_text(runtime + "\n")
    (kernel / "sched_rt_period_us").write_text(period + "\n")
    return str(tmp_path)


def test_stock_setting_warns_with_cause_and_fix(tmp_path: Path) -> None:
    warning = throttling_warning(80, kernel_root(tmp_path, "950000"))
    assert warning is not None
    assert "rt.priority: 80 runs the loop under SCHED_FIFO" in warning
    assert "kernel.sched_rt_runtime_us = 950000 of a 1000000 us period" in warning
    assert "up to 50 ms each period" in warning
    assert "sysctl kernel.sched_rt_runtime_us=-1 in /etc/sysctl.d (rt_tuning_sysctls)." in warning
    assert "The rt_tuning role sets it." in warning


@pytest.mark.parametrize(("priority", "runtime"), [(80, "-1"), (0, "950000"), (80, "not a number")])
def test_no_warning_when_off_not_fifo_or_unknown(
    tmp_path: Path, priority: int, runtime: str
) -> None:
    assert throttling_warning(priority, kernel_root(tmp_path, runtime)) is None


def test_the_words_are_rt_validates_audit() -> None:
    audit = RT_AUDIT.read_text(encoding="utf-8")
    assert f'"{AUDIT_TITLE}"' in audit
    assert f'"{AUDIT_FIX}"' in audit


def write_task(proc: Path, tid: int, comm: str, policy: int) -> None:
    task = proc / "task" / str(tid)
    task.mkdir(parents=True)
    # Fields 3..52 after "pid (comm)"; field 41 is the policy.
    fields = ["S"] + ["0"] * 49
    fields[41 - 3] = str(policy)
    (task / "stat").write_text(f"{tid} ({comm}) " + " ".join(fields) + "\n")


def test_fifo_threads_reads_the_policy_field(tmp_path: Path) -> None:
    write_task(tmp_path, 10, "jetson-rt", 0)
    write_task(tmp_path, 11, "loop (x) y", 1)  # comm with spaces and parentheses
    write_task(tmp_path, 12, "rr", 2)
    assert sorted(fifo_threads(tmp_path)) == [11, 12]


def test_health_reports_throttling_while_a_thread_is_fifo(tmp_path: Path) -> None:
    root = kernel_root(tmp_path / "root", "950000")
    proc = tmp_path / "proc-self"
    write_task(proc, 11, "loop", 1)
    assert "kernel.sched_rt_runtime_us = 950000" in (running_throttled(root, proc) or "")
    assert running_throttled(kernel_root(tmp_path / "off", "-1"), proc) is None

    monitor = HealthMonitor(HealthConfig(), ThermalConfig(enabled=False), [], root)
    assert not any("RT throttling" in w for w in monitor.check().warnings)  # no FIFO thread


def test_health_sees_a_real_fifo_thread(tmp_path: Path) -> None:
    """A thread of this process really switched to SCHED_FIFO is found (needs CAP_SYS_NICE)."""
    ready, done = threading.Event(), threading.Event()
    failure: list[BaseException] = []
    tid: list[int] = []

    def body() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            tid.append(threading.get_native_id())
        except OSError as exc:
            failure.append(exc)
        ready.set()
        done.wait(5)

    thread = threading.Thread(target=body)
    thread.start()
    try:
        ready.wait(5)
        if failure:
            pytest.skip(f"cannot switch a thread to SCHED_FIFO here: {failure[0]}")
        assert tid[0] in fifo_threads(Path(f"/proc/{os.getpid()}"))
        root = kernel_root(tmp_path, "950000")
        monitor = HealthMonitor(HealthConfig(), ThermalConfig(enabled=False), [], root)
        assert any("RT throttling is on" in w for w in monitor.check().warnings)
    finally:
        done.set()
        thread.join()


def test_run_warns_at_start_on_this_host(
    base_config: Callable[..., dict[str, Any]],
    write_config: Callable[[dict[str, Any]], Path],
) -> None:
    """``jetson-rt run`` (and so the service) logs the warning before it starts the loop."""
    runtime = Path("/proc/sys/kernel/sched_rt_runtime_us").read_text().strip()
    if runtime == "-1":
        pytest.skip("RT throttling is off on this machine: nothing to warn about")
    path = write_config(base_config(rt={"priority": 1, "cpus": "all", "mlockall": False}))
    result = subprocess.run(
        [sys.executable, "-m", "jetson_rt", "run", "--config", str(path), "--max-inferences", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"WARNING jetson_rt: rt.priority: 1 runs the loop under SCHED_FIFO, but RT throttling "
        f"is on (kernel.sched_rt_runtime_us = {runtime} of a"
    ) in result.stderr
