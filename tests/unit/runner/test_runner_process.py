"""The runner as systemd runs it: a separate process, signals, exit codes, notify socket."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from jetson_rt.runner.service import WATCHDOG_EXIT_CODE
from jetson_rt.runner.stats import read_stats

HERE = Path(__file__).resolve().parent

# Runs a configuration; with HANG=N the MLP backend (wrapped in the fault
# injector) hangs on its N-th inference, as a stuck driver call would.
SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from jetson_rt.log import configure
    from jetson_rt.runner.config import load_config
    from jetson_rt.runner.service import Runner, default_backend_factory
    from runner_faults import FaultyBackend

    configure(1)
    hang = int(os.environ.get("HANG", "0"))

    def factory(model):
        backend = FaultyBackend(default_backend_factory(model))
        if hang:
            backend.hang_after(hang)
        return backend

    runner = Runner(load_config(Path(sys.argv[1])), backend_factory=factory)
    sys.exit(runner.run(duration_s=float(sys.argv[2])))
    """
)


def start(
    tmp_path: Path,
    doc: dict[str, Any],
    duration: float,
    prefix: tuple[str, ...] = (),
    **env: str,
) -> subprocess.Popen[str]:
    config = tmp_path / "runner.yaml"
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    script = tmp_path / "run_runner.py"
    script.write_text(SCRIPT, encoding="utf-8")
    path = os.pathsep.join([str(HERE), str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [*prefix, sys.executable, str(script), str(config), str(duration)],
        env={**os.environ, "PYTHONPATH": path, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_sigterm_stops_cleanly_after_ready_and_writes_final_stats(
    base_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock_path = str(tmp_path / "notify.sock")
    sock.bind(sock_path)
    sock.settimeout(20)
    try:
        proc = start(tmp_path, base_config(), 60.0, NOTIFY_SOCKET=sock_path)
        messages: list[str] = []
        while not any(m.startswith("READY=1") for m in messages):
            messages.append(sock.recv(4096).decode())
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
        sock.settimeout(1)
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                break
    finally:
        sock.close()
    assert proc.returncode == 0, output
    assert any("STOPPING=1" in m for m in messages)
    ready = next(m for m in messages if m.startswith("READY=1"))
    assert f"MAINPID={proc.pid}" in ready
    stats = read_stats(tmp_path / "stats.json")
    assert stats["state"] == "stopped"
    assert stats["final"] is True
    assert stats["tasks"]["classify"]["counts"]["inferences"] > 0  # type: ignore[index]
    assert "runner stopped" in output


def test_hung_inference_exits_with_the_watchdog_code(
    base_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    doc = base_config(watchdog={"timeout_ms": 300})
    started = time.monotonic()
    proc = start(tmp_path, doc, 60.0, HANG="200")
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == WATCHDOG_EXIT_CODE, output
    assert time.monotonic() - started < 20
    assert "watchdog: no heartbeat for" in output
    assert "in classify" in output
    stats = read_stats(tmp_path / "stats.json")
    assert stats["state"] == "watchdog_timeout"
    assert stats["final"] is True


def test_denied_real_time_settings_degrade_with_reasons_and_the_run_goes_on(
    base_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        # Root may do everything: drop every capability, as an unprivileged unit would be.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("needs setpriv (util-linux) to drop capabilities when run as root")
        prefix = (setpriv, "--bounding-set=-all", "--inh-caps=-all")
    elif resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= 50:
        pytest.skip("this user may use SCHED_FIFO 50: the denial cannot be exercised")
    doc = base_config(rt={"priority": 50, "cpus": [0], "mlockall": True})
    proc = start(tmp_path, doc, 0.5, prefix=prefix)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    rt = read_stats(tmp_path / "stats.json")["rt"]
    assert rt["degraded"] is True  # type: ignore[index]
    assert rt["sched_fifo"]["applied"] is False  # type: ignore[index]
    assert "LimitRTPRIO=50" in rt["sched_fifo"]["detail"]  # type: ignore[index]
    assert rt["affinity"] == {  # type: ignore[index]
        "requested": True,
        "applied": True,
        "detail": "pinned",
        "cpus": [0],
    }
    if resource.getrlimit(resource.RLIMIT_MEMLOCK)[0] != resource.RLIM_INFINITY:
        assert rt["mlockall"]["applied"] is False  # type: ignore[index]
        assert "raise the memlock limit" in rt["mlockall"]["detail"]  # type: ignore[index]
    assert "real-time setting SCHED_FIFO not applied" in output
    assert "fifo=DENIED" in output
