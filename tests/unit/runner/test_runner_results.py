"""Results out of the runner: callbacks, iterators, Zenoh to another process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jetson_rt.runner.config import InputConfig, parse_config
from jetson_rt.runner.publish import Message, decode
from jetson_rt.runner.results import Result
from jetson_rt.runner.service import Runner
from jetson_rt.runner.sources import FrameSource
from jetson_rt.runner.stats import read_stats
from onnx_models import GeneratedModel

Doc = dict[str, Any]
REPO = Path(__file__).resolve().parents[3]


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def framed_runner(doc: Doc, **kwargs: Any) -> tuple[Runner, FrameSource, threading.Thread]:
    source = FrameSource(InputConfig(source="v4l2", policy="skip_n", skip=1, capacity=8))
    runner = Runner(parse_config(doc), sources={"classify": source}, **kwargs)
    return runner, source, threading.Thread(target=runner.run, daemon=True)


def push_and_wait(runner: Runner, source: FrameSource, frame: np.ndarray, frame_id: int) -> int:
    task = runner.tasks[0]
    seen = task.inferences
    stamp = time.perf_counter_ns()
    assert source.push(frame, stamp, frame_id)
    wait_for(lambda: task.inferences > seen)
    return stamp


def test_a_callback_gets_every_result_with_its_frame_times_and_outputs(
    base_config: Callable[..., Doc], models: dict[str, GeneratedModel]
) -> None:
    got: list[Result] = []
    runner, source, worker = framed_runner(base_config(), on_result=lambda r: got.append(r.copy()))
    runner.start()
    worker.start()
    rng = np.random.default_rng(3)
    sent = []
    try:
        for frame_id in range(100, 110):
            frame = rng.standard_normal((1, 64)).astype(np.float32)
            stamp = push_and_wait(runner, source, frame, frame_id)
            sent.append((frame_id, stamp, frame))
        wait_for(lambda: len(got) == 10)
    finally:
        runner.stop()
        worker.join(10)
    for result, (frame_id, stamp, frame) in zip(got, sent, strict=True):
        assert (result.task, result.model, result.tier) == ("classify", "mlp", 0)
        assert result.frame_id == frame_id
        assert result.capture_ns == stamp
        assert stamp <= result.start_ns <= result.end_ns
        assert result.deadline_ns == 50_000_000 and result.deadline_met
        expected = models["mlp"].reference({"input": frame})["output"]
        np.testing.assert_allclose(result.outputs["output"], expected, rtol=1e-4, atol=1e-5)
    assert [r.seq for r in got] == list(range(got[0].seq, got[0].seq + 10))
    latency = runner.snapshot()["tasks"]["classify"]["latency_ms"]  # type: ignore[index]
    assert latency["capture_to_input"]["count"] == 10
    assert latency["capture_to_done"]["count"] == 10


def test_a_raising_callback_is_counted_and_the_loop_goes_on(
    base_config: Callable[..., Doc], tmp_path: Path
) -> None:
    def explode(result: Result) -> None:
        raise RuntimeError(f"application bug on frame {result.frame_id}")

    runner = Runner(parse_config(base_config()), on_result=explode)
    runner.run(max_inferences=300)
    consumer = runner.hub.consumers[0]
    assert runner.tasks[0].inferences == 300
    info = consumer.describe()
    assert info["errors"] == info["delivered"] > 0
    stats = read_stats(tmp_path / "stats.json")
    assert stats["results"]["callback-1"]["errors"] == info["errors"]  # type: ignore[index]


def test_a_slow_callback_loses_results_not_inference_time(
    base_config: Callable[..., Doc],
) -> None:
    """A callback 200x slower than the model: the loop keeps its pace, results are dropped."""
    release = threading.Event()

    def slow(result: Result) -> None:
        release.wait(0.02)

    plain = Runner(parse_config(base_config()))
    plain.run(duration_s=1.0)
    runner = Runner(parse_config(base_config()), on_result=slow)
    runner.add_result_callback(lambda r: None, slow_ms=1000)  # a quick one alongside
    runner.run(duration_s=1.0)
    slow_info, quick_info = (c.describe() for c in runner.hub.consumers)
    inferences = runner.tasks[0].inferences
    # The loop ran about as often as without the callback (2 cores shared by CI: loose).
    assert inferences > 0.5 * plain.tasks[0].inferences
    assert slow_info["slow"] == slow_info["delivered"] <= 60
    assert slow_info["dropped"] > 0.8 * inferences
    assert int(slow_info["delivered"]) + int(slow_info["dropped"]) == inferences
    assert quick_info["slow"] == 0
    # A consumer is woken only while it sleeps: the busy one was handed results it found
    # queued when its callback returned (queue of 4), without a wake-up each.
    assert int(slow_info["wakeups"]) <= int(slow_info["delivered"]) // 2
    assert 0 < int(quick_info["wakeups"]) <= int(quick_info["delivered"])


def test_an_iterator_yields_results_until_the_runner_stops(
    base_config: Callable[..., Doc],
) -> None:
    runner = Runner(parse_config(base_config()))
    runner.start()
    results = runner.results(queue=2)
    worker = threading.Thread(target=runner.run, kwargs={"max_inferences": 200}, daemon=True)
    worker.start()
    seqs = [result.seq for result in results]  # ends when the runner stops
    worker.join(10)
    assert seqs and seqs == sorted(seqs)
    assert len(seqs) + results.queue.dropped == 200


def test_the_wire_format_round_trips() -> None:
    outputs = [
        ("boxes", np.arange(24, dtype=np.float32).reshape(1, 6, 4)),
        ("labels", np.array([[3, 1, 4, 1, 5, 9]], dtype=np.int64)),
        ("mask", np.ones((2, 3), dtype=np.uint8)),
    ]
    message = Message("detect", "yolo_n", outputs)
    result = Result(
        task="detect",
        model="yolo_n",
        tier=1,
        seq=7,
        frame_id=1234,
        capture_ns=10,
        start_ns=20,
        end_ns=30,
        deadline_ns=33_000_000,
        deadline_met=False,
        outputs=dict(outputs),
    )
    payload = bytes(message.fill(result, 40, 50))
    got = decode(payload)
    assert (got.publish_ns, got.publish_wall_ns, got.version) == (40, 50, 1)
    back = got.result
    assert (back.task, back.model, back.tier, back.seq, back.frame_id) == (
        "detect",
        "yolo_n",
        1,
        7,
        1234,
    )
    assert (back.capture_ns, back.start_ns, back.end_ns, back.deadline_met) == (10, 20, 30, False)
    for name, array in outputs:
        np.testing.assert_array_equal(back.outputs[name], array)
        assert back.outputs[name].dtype == array.dtype
    with pytest.raises(ValueError, match="magic"):
        decode(b"XXXX" + payload[4:])
    with pytest.raises(ValueError, match="shorter"):
        decode(payload[:10])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_zenoh_subscriber_in_another_process_gets_frame_ids_and_times(
    base_config: Callable[..., Doc], tmp_path: Path
) -> None:
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    record = tmp_path / "results.jsonl"
    listener = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jetson_rt",
            "listen",
            "--listen",
            endpoint,
            "--key",
            "jetson-rt/orin-7/**",  # not other runners found by multicast scouting
            "--count",
            "20",
            "--duration",
            "60",
            "--record",
            str(record),
            "--quiet",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "runtime")},
    )
    doc = base_config(publish={"enabled": True, "host": "orin-7", "connect": [endpoint]})
    runner, source, worker = framed_runner(doc)
    runner.start()
    worker.start()
    sent: dict[int, int] = {}
    rng = np.random.default_rng(5)
    try:
        frame_id = 5000
        deadline = time.monotonic() + 60
        while listener.poll() is None and time.monotonic() < deadline:
            frame = rng.standard_normal((1, 64)).astype(np.float32)
            sent[frame_id] = push_and_wait(runner, source, frame, frame_id)
            frame_id += 1
            time.sleep(0.01)
        out, err = listener.communicate(timeout=30)
    finally:
        runner.stop()
        worker.join(10)
        if listener.poll() is None:
            listener.kill()
    assert listener.returncode == 0, err
    summary = json.loads(out)
    assert summary["results"] == 20
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(lines) == 20
    for line in lines:
        assert line["key"] == "jetson-rt/orin-7/classify/result"
        assert line["model"] == "mlp"
        assert line["capture_ns"] == sent[line["frame_id"]]  # the frame's own capture time
        assert line["capture_ns"] <= line["start_ns"] <= line["end_ns"] <= line["publish_ns"]
        assert line["outputs"] == {"output": [1, 10]}
        assert 0 < line["latency_ms"] < 5000
    ids = [line["frame_id"] for line in lines]
    assert ids == sorted(ids)
    publisher = runner.snapshot()["results"]["zenoh"]  # type: ignore[index]
    assert publisher["published"] >= 20 and publisher["errors"] == 0
    latency = runner.snapshot()["tasks"]["classify"]["latency_ms"]  # type: ignore[index]
    assert latency["capture_to_published"]["count"] >= 20


def test_an_in_place_queue_detects_outputs_overwritten_by_the_next_inference(
    base_config: Callable[..., Doc],
) -> None:
    """The publisher's queue reads the tier's arrays in place and checks the tier's epoch."""
    from jetson_rt.runner.results import ResultQueue

    runner = Runner(parse_config(base_config()))
    scheduler = runner.prepare()
    queue = ResultQueue("in-place", 2, copy=False)
    runner.hub.add(
        type(
            "C",
            (),
            {
                "name": "c",
                "queue": queue,
                "start": lambda self: None,
                "stop": lambda self: None,
                "describe": lambda self: {},
            },
        )()
    )
    try:
        scheduler.run(max_inferences=1)
        result = queue.peek()
        assert result is not None
        tier = runner.tasks[0].tiers[0]
        assert result.outputs["output"] is tier.outputs[0]  # no copy
        assert queue.intact()
        scheduler.run(max_inferences=2)  # the tier's next inference rewrites its outputs
        assert not queue.intact()
        assert queue.overwritten == 1
    finally:
        runner.release()


def test_prometheus_exports_glass_to_result_and_result_counters(
    base_config: Callable[..., Doc],
) -> None:
    import urllib.request

    pytest.importorskip("prometheus_client")
    doc = base_config(prometheus={"port": 0, "address": "127.0.0.1"})
    runner, source, worker = framed_runner(doc, on_result=lambda r: None)
    runner.start()
    worker.start()
    try:
        for frame_id in range(5):
            push_and_wait(runner, source, np.zeros((1, 64), np.float32), frame_id)
        url = f"http://127.0.0.1:{runner.metrics.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            body = reply.read().decode()
    finally:
        runner.stop()
        worker.join(10)
    for stage in ("input_filled", "inference_done", "result"):
        assert (
            f'jetson_rt_glass_to_result_seconds_count{{stage="{stage}",task="classify"}} 5.0'
            in body
        ), body
    assert 'jetson_rt_results_total{consumer="callback-1",outcome="delivered"}' in body
    assert 'jetson_rt_input_events_total{event="dropped",task="classify"} 0.0' in body
