"""The runner's data path: live input and publishing against the closed loop, in one run.

Placement, as the service does it with ``rt.cpus`` and ``rt.priority``
(``jetson_rt.runner.rt``): on a host with two CPUs or more the loop (this script's
main thread) runs alone on the last CPU and every other thread (capture,
GStreamer's streaming threads, result consumers, Zenoh's runtime) and the
subscriber process on the others (on a Jetson the loop is on an isolated core);
the loop runs SCHED_FIFO (``--fifo``, 80 as the service's default; 0 or a denial
leaves it SCHED_OTHER) in parts 1 and 3, so that other processes on a shared
host do not preempt it. ``--no-pin`` leaves everything on every CPU.

1. Loop overhead: the same model (1x3x64x64, two 3x3 convolutions, about half
   a millisecond here) run by the runner at 120 Hz (a) with ``synthetic`` input
   and no consumer, (b) fed by a live GStreamer ``videotestsrc`` pipeline at 120
   fps, (c) synthetic with every result published over Zenoh to a subscriber in
   another process, (d) both. Blocks alternate; the ratios are of the p50 of
   the ``total`` stage (input fill to result handed over) against (a), pooled
   and per round. The p50 of the ``pre`` (input fill), ``infer`` and ``post``
   (hand-off to the consumers, the wake-up included) stages say where a
   difference comes from.
2. Allocation: tracemalloc's traced-memory growth over three consecutive windows
   of 10^4 inferences of (b)'s setup with publishing on (non-live pipeline, so
   frames come as fast as the loop takes them), by line, split between the
   capture thread (``runner/gst.py``, PyGObject) and everything else (loop,
   hand-off, result queues, publisher, Zenoh's binding). The threads keep
   running while a snapshot is taken, so the few objects one of them holds at
   that instant show up as a few hundred bytes either way; growth is a line
   that grows in every window (``growing_lines``).
3. Publishing latency, Zenoh against an in-process callback: from inference
   done (``Result.end_ns``) to the callback running, and to a Zenoh subscriber
   in another process receiving it (both CLOCK_MONOTONIC on one host), at 30 and
   120 results per second.

    python benchmarks/runner_datapath.py [--seconds 3] [--rounds 3] [--no-pin] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from jetson_rt.runner.config import parse_config
from jetson_rt.runner.histogram import LatencyHistogram
from jetson_rt.runner.results import Result
from jetson_rt.runner.rt import move_other_threads, restore_threads
from jetson_rt.runner.service import Runner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from runner_cpu import write_medium_model  # noqa: E402

LIVE_120 = "videotestsrc is-live=true ! video/x-raw,width=64,height=64,framerate=120/1"

SUBSCRIBER = """
import sys, time, zenoh
from jetson_rt.runner.publish import decode
c = zenoh.Config()
c.insert_json5("mode", '"peer"')
c.insert_json5("listen/endpoints", '["%s"]')
c.insert_json5("scouting/multicast/enabled", "false")
out = open(sys.argv[1], "w")
def on(sample):
    now = time.monotonic_ns()
    got = decode(sample.payload.to_bytes())
    out.write(f"{now - got.result.end_ns}\\n")
    out.flush()
s = zenoh.open(c)
sub = s.declare_subscriber("jetson-rt/bench/**", on)
print("ready", flush=True)
time.sleep(float(sys.argv[2]))
"""


class Placement:
    """The loop on the last allowed CPU, everything else on the others (or nothing)."""

    def __init__(self, pin: bool, fifo: int) -> None:
        self.fifo = fifo
        self.fifo_applied = False
        self.allowed = sorted(os.sched_getaffinity(0))
        self.pin = pin and len(self.allowed) >= 2
        self.loop = self.allowed[-1:] if self.pin else self.allowed
        self.others = self.allowed[:-1] if self.pin else self.allowed
        self._moved: dict[int, set[int]] = {}

    def describe(self) -> dict[str, Any]:
        return {
            "pinned": self.pin,
            "loop_cpus": self.loop,
            "other_cpus": self.others,
            "fifo": self.fifo if self.fifo_applied else 0,
        }

    def process(self, pid: int) -> None:
        if self.pin:
            os.sched_setaffinity(pid, self.others)

    def apply(self, fifo: bool = True) -> None:
        """After the runners started their threads: the service's rt.cpus placement."""
        if self.pin:
            status = move_other_threads(self.loop, set(self.allowed))
            self._moved.update(status.moved)
            os.sched_setaffinity(0, self.loop)
        if fifo and self.fifo > 0:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.fifo))
            except PermissionError:
                return
            self.fifo_applied = True

    def undo(self) -> None:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        if self.pin:
            restore_threads(self._moved)
            os.sched_setaffinity(0, self.allowed)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def doc(model: Path, **task: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "models": {"m": {"backend": "onnxruntime", "path": str(model), "verify": False}},
        "tasks": [{"name": "t", "tiers": ["m"], "deadline_ms": 50, **task}],
        "warmup": {"min_iterations": 20, "max_iterations": 200, "window": 20, "max_cv": 5.0},
        "rt": {"priority": 0, "cpus": "all", "mlockall": False},
        "watchdog": {"timeout_ms": 5000},
        "thermal": {"enabled": False},
    }


def start_subscriber(
    endpoint: str, path: Path, seconds: float, placement: Placement
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SUBSCRIBER % endpoint, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "runtime")},
    )
    placement.process(proc.pid)
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc


def p50(hist: LatencyHistogram) -> float:
    return hist.percentile_ns(50) / 1e3


def _add(into: LatencyHistogram, before: list[int], task_hist: LatencyHistogram) -> int:
    """Add the samples ``task_hist`` gained since ``before``; their p50 (ns) alone."""
    block = LatencyHistogram()
    for index, (a, b) in enumerate(zip(before, task_hist.counts(), strict=True)):
        block._counts[index] = b - a
        block.count += b - a
        into._counts[index] += b - a
        into.count += b - a
    for hist in (block, into):
        hist.max_ns = max(hist.max_ns, task_hist.max_ns)
        hist.min_ns = min(hist.min_ns or task_hist.min_ns, task_hist.min_ns)
    return block.percentile_ns(50)


STAGES = ("pre", "infer", "post")


def overhead(
    model: Path, seconds: float, rounds: int, endpoint: str, placement: Placement
) -> dict[str, Any]:
    """Alternating blocks of four loops at 120 Hz; p50 ratios against the closed one."""
    live_input = {"source": "gstreamer", "pipeline": LIVE_120}
    publish = {"enabled": True, "host": "bench", "connect": [endpoint]}
    # The closed loop at the live source's 120 Hz, so that every loop idles between
    # inferences alike.
    docs = {
        "closed": doc(model, period_ms=8.333),
        "live": doc(model, input=live_input),
        "published": {**doc(model, period_ms=8.333), "publish": publish},
        "live_published": {**doc(model, input=live_input), "publish": publish},
    }
    runners = {name: Runner(parse_config(config)) for name, config in docs.items()}
    totals = {name: LatencyHistogram() for name in runners}
    stages = {name: {stage: LatencyHistogram() for stage in STAGES} for name in runners}
    block_p50: dict[str, list[int]] = {name: [] for name in runners}
    try:
        for runner in runners.values():
            runner.prepare()
        placement.apply()
        for _ in range(rounds):
            for name, runner in runners.items():
                task = runner.tasks[0]
                before = task.hist["total"].counts()
                stage_before = {stage: task.hist[stage].counts() for stage in STAGES}
                assert runner.scheduler is not None
                runner.scheduler.run(duration_s=seconds)
                block_p50[name].append(_add(totals[name], before, task.hist["total"]))
                for stage in STAGES:
                    _add(stages[name][stage], stage_before[stage], task.hist[stage])
    finally:
        placement.undo()
        for runner in runners.values():
            runner.release()
    # Results the publishers put (the subscriber process is connected throughout).
    published = {
        name: sum(getattr(consumer, "published", 0) for consumer in runner.hub.consumers)
        for name, runner in runners.items()
    }
    closed = p50(totals["closed"])
    report: dict[str, Any] = {
        "closed_p50_us": round(closed, 1),
        "stage_p50_us": {
            name: {stage: round(p50(hist), 1) for stage, hist in per.items()}
            for name, per in stages.items()
        },
    }
    for name in ("live", "published", "live_published"):
        ratios = sorted(
            ours / base for ours, base in zip(block_p50[name], block_p50["closed"], strict=True)
        )
        report[name] = {
            "p50_us": round(p50(totals[name]), 1),
            "ratio_p50": round(p50(totals[name]) / closed, 3),
            "ratio_per_round": [round(r, 3) for r in ratios],
            "inferences": totals[name].count,
            "published": published[name],
        }
    return report


def _capture_line(filename: str) -> bool:
    """Lines of the capture thread: its source and PyGObject."""
    return "/gi/" in filename or filename.endswith("runner/gst.py")


def allocation(model: Path, frames: int, endpoint: str, placement: Placement) -> dict[str, Any]:
    """Traced growth by line over three windows of ``frames`` inferences, split by origin.

    A per-frame leak grows with the frames, in every window; what a thread holds
    at the snapshot instant (the frame in flight, the latest counters) shows up
    in one window and goes in the next.
    """
    config = doc(
        model,
        input={
            "source": "gstreamer",
            "pipeline": "videotestsrc ! video/x-raw,width=64,height=64",
        },
    )
    config["publish"] = {"enabled": True, "host": "bench", "connect": [endpoint]}
    tracemalloc.start()
    runner = Runner(parse_config(config))
    runner.prepare()
    placement.apply(fifo=False)  # the loop runs back to back here: no real-time policy
    snapshots = []
    try:
        assert runner.scheduler is not None
        runner.scheduler.run(max_inferences=2000)  # warm: every slot and message used
        task = runner.tasks[0]
        for _ in range(4):
            gc.collect()
            snapshots.append(tracemalloc.take_snapshot())
            runner.scheduler.run(max_inferences=task.inferences + frames)
    finally:
        placement.undo()
        runner.release()
        tracemalloc.stop()
    ignore = (tracemalloc.Filter(False, tracemalloc.__file__),)
    snapshots = [snapshot.filter_traces(ignore) for snapshot in snapshots]
    capture: list[int] = []
    rest: list[int] = []
    per_line: dict[str, list[int]] = {}
    for window, (before, after) in enumerate(itertools.pairwise(snapshots)):
        capture.append(0)
        rest.append(0)
        for stat in after.compare_to(before, "lineno"):
            frame = stat.traceback[0]
            if _capture_line(frame.filename):
                capture[-1] += stat.size_diff
            else:
                rest[-1] += stat.size_diff
            line = f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno}"
            per_line.setdefault(line, [0] * 3)[window] = stat.size_diff
    growing = {line: sizes for line, sizes in per_line.items() if min(sizes) > 0}
    return {
        "frames_per_window": frames,
        "loop_and_publisher_bytes": rest,
        "capture_thread_bytes": capture,
        "growing_lines": growing,
    }


def publish_latency(
    model: Path, rate: float, seconds: float, endpoint: str, placement: Placement
) -> dict[str, Any]:
    window = [LatencyHistogram()]

    def on_result(result: Result) -> None:
        window[0].record(time.perf_counter_ns() - result.end_ns)

    config = doc(model, period_ms=round(1000.0 / rate, 3))
    config["publish"] = {"enabled": True, "host": "bench", "connect": [endpoint]}
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "zenoh.txt"
        subscriber = start_subscriber(endpoint, record, seconds + 8, placement)
        runner = Runner(parse_config(config), on_result=on_result)
        runner.prepare()
        placement.apply()
        try:
            assert runner.scheduler is not None
            runner.scheduler.run(duration_s=1.0)  # connect and warm
            window[0] = LatencyHistogram()
            mark = record.stat().st_size if record.exists() else 0
            runner.scheduler.run(duration_s=seconds)
            time.sleep(0.2)
        finally:
            placement.undo()
            runner.release()
            subscriber.kill()
        lines = record.read_text()[mark:].split()
    in_process = window[0]
    zenoh = LatencyHistogram()
    for line in lines:
        zenoh.record(int(line))
    return {
        "rate_hz": rate,
        "results": in_process.count,
        "received": zenoh.count,
        "callback_p50_us": round(in_process.percentile_ns(50) / 1e3, 1),
        "callback_p99_us": round(in_process.percentile_ns(99) / 1e3, 1),
        "zenoh_p50_us": round(zenoh.percentile_ns(50) / 1e3, 1),
        "zenoh_p99_us": round(zenoh.percentile_ns(99) / 1e3, 1),
        "extra_p50_us": round((zenoh.percentile_ns(50) - in_process.percentile_ns(50)) / 1e3, 1),
        "extra_p99_us": round((zenoh.percentile_ns(99) - in_process.percentile_ns(99)) / 1e3, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only-overhead", action="store_true", help="part 1 only")
    parser.add_argument(
        "--no-pin", action="store_true", help="leave the loop and the other threads unpinned"
    )
    parser.add_argument(
        "--fifo", type=int, default=80, help="the loop's SCHED_FIFO priority (0: SCHED_OTHER)"
    )
    args = parser.parse_args()
    placement = Placement(not args.no_pin, args.fifo)
    # What Runner.start() sets (rt.switch_interval_ms, default 0.5 ms); prepare(), used
    # here to drive the scheduler directly, applies no real-time setting.
    sys.setswitchinterval(0.0005)
    with tempfile.TemporaryDirectory() as tmp:
        model = write_medium_model(Path(tmp) / "medium.onnx")
        endpoint = f"tcp/127.0.0.1:{free_port()}"
        subscriber = start_subscriber(endpoint, Path(tmp) / "sink.txt", 3600, placement)
        try:
            report: dict[str, Any] = {
                "load_average": [round(value, 2) for value in os.getloadavg()],
            }
            report["overhead"] = overhead(model, args.seconds, args.rounds, endpoint, placement)
            report["placement"] = placement.describe()
            print("placement:", json.dumps(report["placement"]), flush=True)
            print("loop overhead:", json.dumps(report["overhead"]), flush=True)
            if args.only_overhead:
                return 0
            report["allocation"] = allocation(model, args.frames, endpoint, placement)
            print("allocation:", json.dumps(report["allocation"]), flush=True)
        finally:
            subscriber.kill()
        report["publishing"] = []
        for rate in (30.0, 120.0):
            row = publish_latency(
                model, rate, args.seconds * 2, f"tcp/127.0.0.1:{free_port()}", placement
            )
            report["publishing"].append(row)
            print("publishing:", json.dumps(row), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
