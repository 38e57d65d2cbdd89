"""The runner's data path: live input and publishing against the closed loop, in one run.

1. Loop overhead: the same model (1x3x64x64, two 3x3 convolutions, about half
   a millisecond here) run by the runner at 120 Hz (a) with ``synthetic`` input
   and no consumer, (b) fed by a live GStreamer ``videotestsrc`` pipeline at 120
   fps, (c) synthetic with every result published over Zenoh to a subscriber in
   another process, (d) both. Blocks alternate; the ratios are of the p50 of
   the ``total`` stage (input fill to result handed over) against (a), pooled
   and per round.
2. Allocation: tracemalloc's traced-memory growth over two consecutive windows
   of 10^4 inferences of (b)'s setup (non-live pipeline, so frames come as fast
   as the loop takes them), split between the capture thread (PyGObject's
   wrappers, the frame conversion) and everything else (loop, hand-off, result
   queues, publisher, Zenoh's binding).
3. Publishing latency, Zenoh against an in-process callback: from inference
   done (``Result.end_ns``) to the callback running, and to a Zenoh subscriber
   in another process receiving it (both CLOCK_MONOTONIC on one host), at 30 and
   120 results per second.

    python benchmarks/runner_datapath.py [--seconds 3] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
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


def start_subscriber(endpoint: str, path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SUBSCRIBER % endpoint, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "runtime")},
    )
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


def overhead(model: Path, seconds: float, rounds: int, endpoint: str) -> dict[str, Any]:
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
    block_p50: dict[str, list[int]] = {name: [] for name in runners}
    try:
        for runner in runners.values():
            runner.prepare()
        for _ in range(rounds):
            for name, runner in runners.items():
                task = runner.tasks[0]
                before = task.hist["total"].counts()
                assert runner.scheduler is not None
                runner.scheduler.run(duration_s=seconds)
                block_p50[name].append(_add(totals[name], before, task.hist["total"]))
    finally:
        for runner in runners.values():
            runner.release()
    closed = p50(totals["closed"])
    report: dict[str, Any] = {"closed_p50_us": round(closed, 1)}
    for name in ("live", "published", "live_published"):
        ratios = sorted(
            ours / base for ours, base in zip(block_p50[name], block_p50["closed"], strict=True)
        )
        report[name] = {
            "p50_us": round(p50(totals[name]), 1),
            "ratio_p50": round(p50(totals[name]) / closed, 3),
            "ratio_per_round": [round(r, 3) for r in ratios],
            "inferences": totals[name].count,
        }
    return report


def _split(after: tracemalloc.Snapshot, before: tracemalloc.Snapshot) -> tuple[int, int]:
    """Growth between two snapshots: (capture thread, everything else).

    tracemalloc's own snapshot objects are left out: they are the measurement.
    """
    capture = 0  # the capture thread: PyGObject wrappers and the frame conversion
    rest = 0  # the loop, the hand-off, the result queues, the publisher, Zenoh's binding
    for stat in after.compare_to(before, "filename"):
        name = stat.traceback[0].filename
        if name.endswith("tracemalloc.py"):
            continue
        if "/gi/" in name or name.endswith("runner/gst.py"):
            capture += stat.size_diff
        else:
            rest += stat.size_diff
    return capture, rest


def allocation(model: Path, frames: int, endpoint: str) -> dict[str, Any]:
    """Traced growth over two windows of ``frames`` inferences, split by origin.

    A per-frame leak grows with the frames; what is alive at one instant (the
    frame in flight, the latest counters) shows up once, in either window.
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
    snapshots = []
    try:
        assert runner.scheduler is not None
        runner.scheduler.run(max_inferences=2000)  # warm: every slot and message used
        task = runner.tasks[0]
        for _ in range(3):
            gc.collect()
            snapshots.append(tracemalloc.take_snapshot())
            runner.scheduler.run(max_inferences=task.inferences + frames)
    finally:
        runner.release()
        tracemalloc.stop()
    first = _split(snapshots[1], snapshots[0])
    second = _split(snapshots[2], snapshots[1])
    return {
        "frames_per_window": frames,
        "loop_and_publisher_bytes": [first[1], second[1]],
        "capture_thread_bytes": [first[0], second[0]],
    }


def publish_latency(model: Path, rate: float, seconds: float, endpoint: str) -> dict[str, Any]:
    window = [LatencyHistogram()]

    def on_result(result: Result) -> None:
        window[0].record(time.perf_counter_ns() - result.end_ns)

    config = doc(model, period_ms=round(1000.0 / rate, 3))
    config["publish"] = {"enabled": True, "host": "bench", "connect": [endpoint]}
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "zenoh.txt"
        subscriber = start_subscriber(endpoint, record, seconds + 8)
        runner = Runner(parse_config(config), on_result=on_result)
        runner.prepare()
        try:
            assert runner.scheduler is not None
            runner.scheduler.run(duration_s=1.0)  # connect and warm
            window[0] = LatencyHistogram()
            mark = record.stat().st_size if record.exists() else 0
            runner.scheduler.run(duration_s=seconds)
            time.sleep(0.2)
        finally:
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
    args = parser.parse_args()
    # What Runner.start() sets (rt.switch_interval_ms, default 0.5 ms); prepare(), used
    # here to drive the scheduler directly, applies no real-time setting.
    sys.setswitchinterval(0.0005)
    with tempfile.TemporaryDirectory() as tmp:
        model = write_medium_model(Path(tmp) / "medium.onnx")
        endpoint = f"tcp/127.0.0.1:{free_port()}"
        subscriber = start_subscriber(endpoint, Path(tmp) / "sink.txt", 3600)
        try:
            report: dict[str, Any] = {
                "overhead": overhead(model, args.seconds, args.rounds, endpoint)
            }
            print("loop overhead:", json.dumps(report["overhead"]), flush=True)
            if args.only_overhead:
                return 0
            report["allocation"] = allocation(model, args.frames, endpoint)
            print("allocation:", json.dumps(report["allocation"]), flush=True)
        finally:
            subscriber.kill()
        report["publishing"] = []
        for rate in (30.0, 120.0):
            row = publish_latency(model, rate, args.seconds * 2, f"tcp/127.0.0.1:{free_port()}")
            report["publishing"].append(row)
            print("publishing:", json.dumps(row), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
