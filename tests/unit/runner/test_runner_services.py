"""systemd notify, the watchdog thread, the health monitor and the Prometheus endpoint."""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jetson_rt.runner.config import DegradationConfig, HealthConfig, ThermalConfig, parse_config
from jetson_rt.runner.health import HealthMonitor
from jetson_rt.runner.notify import SystemdNotifier
from jetson_rt.runner.service import Runner
from jetson_rt.runner.tiers import TierController
from jetson_rt.runner.watchdog import Watchdog


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(2.0)
    yield sock, path
    sock.close()


def receive(sock: socket.socket) -> set[str]:
    return set(sock.recv(4096).decode().split("\n"))


def test_notify_sends_ready_status_and_stopping_to_a_path_socket(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready("warming done\nrunning")
    assert receive(sock) == {"READY=1", f"MAINPID={os.getpid()}", "STATUS=warming done running"}
    assert notifier.status("p99=4.2 ms")
    assert receive(sock) == {"STATUS=p99=4.2 ms"}
    assert notifier.watchdog()
    assert receive(sock) == {"WATCHDOG=1"}
    assert notifier.stopping()
    assert receive(sock) == {"STOPPING=1"}
    notifier.close()


def test_notify_reaches_an_abstract_namespace_socket() -> None:
    name = f"jetson-rt-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        with SystemdNotifier({"NOTIFY_SOCKET": "@" + name}) as notifier:
            assert notifier.watchdog()
            assert receive(sock) == {"WATCHDOG=1"}
    finally:
        sock.close()


def test_notify_is_a_no_op_outside_systemd_and_survives_a_vanished_socket(
    tmp_path: Path,
) -> None:
    assert not SystemdNotifier({}).send("READY=1")
    with SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "absent.sock")}) as gone:
        assert gone.enabled
        assert not gone.ready()  # logged once, not raised


def test_watchdog_interval_is_half_of_watchdog_usec_and_only_for_our_pid() -> None:
    ours = SystemdNotifier({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())})
    assert ours.watchdog_interval_ns == 1_000_000_000
    theirs = SystemdNotifier({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"})
    assert theirs.watchdog_interval_ns == 0


def test_watchdog_fires_once_per_timeout_while_beats_are_missing() -> None:
    calls: list[tuple[float, int]] = []
    watchdog = Watchdog(100.0, lambda elapsed, strikes: calls.append((elapsed / 1e6, strikes)))
    watchdog.start()
    try:
        watchdog.arm()
        for _ in range(30):  # 300 ms of beats: nothing fires
            watchdog.beat()
            time.sleep(0.01)
        assert calls == []
        silent_from = time.monotonic()
        while len(calls) < 2 and time.monotonic() - silent_from < 2:
            time.sleep(0.005)
    finally:
        watchdog.stop()
    assert [strikes for _, strikes in calls] == [1, 2]
    # Fired after the timeout, within a poll period plus scheduling delay on a busy host.
    assert 100 <= calls[0][0] < 200
    assert 200 <= calls[1][0] < 300
    assert watchdog.timeouts == 2


def test_watchdog_pings_systemd_only_while_the_loop_beats(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"}  # ping every 20 ms
    notifier = SystemdNotifier(env)
    watchdog = Watchdog(60.0, lambda elapsed, strikes: None, notifier)
    watchdog.start()
    watchdog.arm()
    try:
        for _ in range(10):
            watchdog.beat()
            time.sleep(0.01)
        sock.settimeout(0.2)
        assert receive(sock) == {"WATCHDOG=1"}
        time.sleep(0.15)  # the loop goes silent for longer than the timeout
        while True:  # drain what was sent before the silence
            try:
                sock.recv(4096)
            except TimeoutError:
                break
        sock.settimeout(0.15)
        with pytest.raises(TimeoutError):
            sock.recv(4096)
    finally:
        watchdog.stop()
        notifier.close()


# --- health monitor over a captured sysfs tree (Jetson hardware cannot exist here) ---


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def fake_jetson(root: Path, cpu_temp_c: float, gpu_hz: int, avail_kb: int, swap: bool) -> None:
    """Files laid out as on an Orin Nano with L4T r36 (values chosen by the test)."""
    for index, (kind, temp) in enumerate((("cpu-thermal", cpu_temp_c), ("gpu-thermal", 50.0))):
        zone = f"sys/class/thermal/thermal_zone{index}"
        write(root, f"{zone}/type", f"{kind}\n")
        write(root, f"{zone}/temp", f"{int(temp * 1000)}\n")
        write(root, f"{zone}/trip_point_0_type", "passive\n")
        write(root, f"{zone}/trip_point_0_temp", "95500\n")
    devfreq = "sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu"
    write(root, f"{devfreq}/cur_freq", f"{gpu_hz}\n")
    write(root, f"{devfreq}/max_freq", "1020000000\n")
    write(root, f"{devfreq}/min_freq", "306000000\n")
    write(
        root,
        "proc/meminfo",
        f"MemTotal:        7620000 kB\nMemAvailable:    {avail_kb} kB\n"
        f"SwapTotal: {3800000 if swap else 0} kB\nSwapFree: {3700000 if swap else 0} kB\n",
    )
    header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
    write(root, "proc/swaps", header + ("/dev/zram0 partition 634980 1000 5\n" if swap else ""))


def test_health_monitor_warns_and_holds_tiers_down_while_hot(tmp_path: Path) -> None:
    controller = TierController(3, DegradationConfig())
    monitor = HealthMonitor(
        HealthConfig(min_mem_available_mb=500),
        ThermalConfig(enabled=True, throttle_c=82.0, resume_c=77.0, tier=2),
        [controller],
        root=str(tmp_path),
    )
    fake_jetson(tmp_path, cpu_temp_c=60.0, gpu_hz=1_020_000_000, avail_kb=4_000_000, swap=False)
    snap = monitor.check()
    assert snap.warnings == []
    assert snap.max_temp_c == 60.0
    assert snap.gpu_clock_ratio == 1.0
    assert not snap.thermal_throttled

    fake_jetson(tmp_path, cpu_temp_c=96.0, gpu_hz=612_000_000, avail_kb=300_000, swap=True)
    snap = monitor.check()
    assert snap.thermal_throttled
    assert snap.hottest_zone == "cpu-thermal"
    text = " ".join(snap.warnings)
    assert "cpu-thermal at 96.0 C, at or above its passive trip 95.5 C" in text
    assert "GPU clock 612 MHz is below 95% of max 1020 MHz" in text
    assert "MemAvailable 293 MB is below 500 MB" in text
    assert "swap is active (/dev/zram0" in text
    controller.poll(0)
    assert controller.tier == 2

    fake_jetson(tmp_path, cpu_temp_c=80.0, gpu_hz=1_020_000_000, avail_kb=4_000_000, swap=False)
    assert monitor.check().thermal_throttled  # 80 C is inside the hysteresis band
    fake_jetson(tmp_path, cpu_temp_c=70.0, gpu_hz=1_020_000_000, avail_kb=4_000_000, swap=False)
    snap = monitor.check()
    assert not snap.thermal_throttled
    assert snap.warnings == []
    controller.poll(0)
    assert controller.floor == 0
    assert monitor.throttle_events == 1


def test_health_monitor_on_a_host_without_jetson_files(tmp_path: Path) -> None:
    monitor = HealthMonitor(HealthConfig(), ThermalConfig(), [], root=str(tmp_path))
    snap = monitor.check()
    assert snap.max_temp_c is None
    assert snap.gpu_clock_ratio is None
    assert snap.warnings == []


def test_prometheus_endpoint_exports_runner_metrics(
    base_config: Callable[..., dict[str, Any]],
) -> None:
    pytest.importorskip("prometheus_client")
    runner = Runner(parse_config(base_config(prometheus={"port": 0, "address": "127.0.0.1"})))
    runner.start()
    try:
        runner.scheduler.run(max_inferences=50)  # type: ignore[union-attr]
        port = runner.metrics.port
        assert runner.metrics.status == "serving"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            body = reply.read().decode()
    finally:
        runner.shutdown()
    assert 'jetson_rt_inferences_total{task="classify"} 50.0' in body
    assert 'jetson_rt_inference_latency_seconds_count{task="classify"} 50.0' in body
    assert 'jetson_rt_inference_latency_seconds_bucket{le="+Inf",task="classify"} 50.0' in body
    assert 'jetson_rt_tier{task="classify"} 0.0' in body
    assert "jetson_rt_rt_degraded 0.0" in body
    assert runner.metrics.status == "stopped"


def test_threads_are_stopped_after_shutdown(base_config: Callable[..., dict[str, Any]]) -> None:
    before = {thread.name for thread in threading.enumerate()}
    runner = Runner(parse_config(base_config()))
    runner.run(max_inferences=10)
    after = {thread.name for thread in threading.enumerate()} - before
    assert not any(name.startswith("jetson-rt-") for name in after), after
