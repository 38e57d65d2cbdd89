"""The runner end to end on real ONNX Runtime models, with injected faults.

Faults come from :class:`runner_faults.FaultyBackend`, a wrapper around the
real ONNX Runtime backend (not a mock): it adds latency, hangs or raises on
request while the real model keeps computing the real outputs.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from runner_faults import FaultyBackend

from jetson_rt.backends.base import Backend
from jetson_rt.runner.config import InputConfig, ModelConfig, RunnerConfig, parse_config
from jetson_rt.runner.rt import move_other_threads, restore_threads
from jetson_rt.runner.service import WATCHDOG_EXIT_CODE, Runner, default_backend_factory
from jetson_rt.runner.sources import FrameSource
from jetson_rt.runner.stats import read_stats
from onnx_models import GeneratedModel

Doc = dict[str, Any]


class Factory:
    """Backend factory wrapping chosen models in FaultyBackend."""

    def __init__(self, faulty: tuple[str, ...] = ()) -> None:
        self.faulty_names = faulty
        self.faulty: dict[str, FaultyBackend] = {}

    def __call__(self, model: ModelConfig) -> Backend:
        backend = default_backend_factory(model)
        if model.name in self.faulty_names:
            wrapped = FaultyBackend(backend)
            self.faulty[model.name] = wrapped
            return wrapped
        return backend


def two_tier_doc(base_config: Callable[..., Doc], models: dict[str, GeneratedModel]) -> Doc:
    doc = base_config()
    doc["models"]["conv"] = {
        "backend": "onnxruntime",
        "path": str(models["conv_bn_relu"].path),
        "verify": False,
    }
    doc["tasks"] = [
        {
            "name": "classify",
            "tiers": ["mlp", "conv"],
            "deadline_ms": 40,
            "degradation": {"step_down_after": 3, "step_up_after": 20, "emergency": False},
        }
    ]
    return doc


def test_run_publishes_correct_results_and_writes_stats(
    base_config: Callable[..., Doc], models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    config = parse_config(base_config())
    switch_before = sys.getswitchinterval()
    runner = Runner(config)
    assert runner.run(max_inferences=300) == 0
    task = runner.tasks[0]
    assert task.inferences == 300
    # The published result is the model's real output for the synthetic input.
    tier = task.tiers[0]
    feeds = {"input": np.asarray(tier.inputs[0], dtype=np.float32)}
    expected = models["mlp"].reference(feeds)["output"]
    np.testing.assert_allclose(tier.results()["output"], expected, rtol=1e-4, atol=1e-5)

    stats = read_stats(tmp_path / "stats.json")
    assert stats["state"] == "stopped"
    assert stats["final"] is True
    classify = stats["tasks"]["classify"]  # type: ignore[index]
    assert classify["counts"]["inferences"] == 300
    assert classify["counts"]["deadline_misses"] == 0
    assert classify["tier"] == {
        "index": 0,
        "name": "mlp",
        "floor": 0,
        "changes": 0,
        "emergency": False,
        "ladder": ["mlp", "emergency"],
    }
    # Appendix B's budget needs p50/p99/max per stage.
    for stage in ("pre", "h2d", "infer", "d2h", "post", "total"):
        latency = classify["latency_ms"][stage]
        assert latency["count"] == 300
        assert latency["min"] <= latency["p50"] <= latency["p99"] <= latency["max"]
    total = classify["latency_ms"]["total"]
    assert total["p50"] >= classify["latency_ms"]["infer"]["p50"]
    assert classify["warmup"]["mlp"]["iterations"] >= 5
    assert classify["sla"]["within_deadline_pct"] == 100.0
    assert stats["rt"]["degraded"] is False  # type: ignore[index]
    assert stats["rt"]["gil_switch_interval_ms"] == 0.5  # type: ignore[index]
    assert sys.getswitchinterval() == switch_before  # restored on shutdown


def test_hot_loop_allocates_nothing_after_warm_up(base_config: Callable[..., Doc]) -> None:
    runner = Runner(parse_config(base_config()))
    runner.prepare()
    scheduler = runner.scheduler
    assert scheduler is not None
    try:
        gc.collect()
        tracemalloc.start()
        # Histograms restart under tracing, so the ints they keep (min, max) are traced;
        # then a loop warm-up, in which counters pass 256 (past the cached small ints)
        # and the interpreter's frame and float free lists settle.
        for hist in runner.tasks[0].hist.values():
            hist.reset()
        scheduler.run(max_inferences=5000)
        before = tracemalloc.take_snapshot()
        scheduler.run(max_inferences=15_000)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
        runner.release()
    assert runner.tasks[0].inferences == 15_000
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diff = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "lineno")
    growth = sum(stat.size_diff for stat in diff)
    # 10^4 inferences: one leaked float every inference would be 240 kB, one every
    # hundred 2.4 kB. What remains is interpreter free-list noise of a few hundred
    # bytes either way (0 or below on CPython 3.11).
    assert growth < 1024, [str(stat) for stat in diff[:8]]


def test_deadline_misses_step_the_tier_down_and_it_recovers(
    base_config: Callable[..., Doc], models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    factory = Factory(faulty=("mlp",))
    runner = Runner(parse_config(two_tier_doc(base_config, models)), backend_factory=factory)
    runner.start()
    faulty = factory.faulty["mlp"]
    faulty.slow(count=3, extra_ms=80.0)
    runner.run(max_inferences=200)
    task = runner.tasks[0]
    assert task.deadline_misses >= 3
    assert task.controller.changes >= 2  # down to conv, then back up to mlp
    assert task.controller.tier == 0
    assert task.tier_counts[1] >= 20  # conv carried the task while mlp was slow
    stats = read_stats(tmp_path / "stats.json")
    counts = stats["tasks"]["classify"]["counts"]  # type: ignore[index]
    assert counts["per_tier"]["conv"] == task.tier_counts[1]
    assert counts["deadline_misses"] == task.deadline_misses


def test_emergency_tier_keeps_the_last_result_then_probes_back(
    base_config: Callable[..., Doc],
) -> None:
    doc = base_config()
    doc["tasks"][0]["deadline_ms"] = 40
    doc["tasks"][0]["degradation"] = {
        "step_down_after": 2,
        "step_up_after": 10,
        "emergency": True,
        "emergency_hold_ms": 100,
    }
    factory = Factory(faulty=("mlp",))
    runner = Runner(parse_config(doc), backend_factory=factory)
    runner.start()
    factory.faulty["mlp"].slow(count=2, extra_ms=80.0)
    runner.run(duration_s=0.8)
    task = runner.tasks[0]
    assert task.emergency_results >= 1
    assert task.tier_counts[1] == task.emergency_results
    assert task.controller.tier == 0  # probed back after the hold
    assert task.inferences > 50


def test_backend_errors_are_counted_and_the_loop_goes_on(
    base_config: Callable[..., Doc],
) -> None:
    factory = Factory(faulty=("mlp",))
    runner = Runner(parse_config(base_config()), backend_factory=factory)
    runner.start()
    factory.faulty["mlp"].fail(2)
    runner.run(max_inferences=100)
    task = runner.tasks[0]
    assert task.backend_errors == 2
    assert task.inferences == 100


def test_malformed_frames_are_refused_and_the_loop_goes_on(
    base_config: Callable[..., Doc], models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    source = FrameSource(InputConfig(source="v4l2", policy="latest"))
    runner = Runner(parse_config(base_config()), sources={"classify": source})
    runner.start()
    worker = threading.Thread(target=runner.run, daemon=True)
    worker.start()
    try:
        ring = source.wait_ready(timeout=5)
        task = runner.tasks[0]
        rng = np.random.default_rng(7)
        for _ in range(5):
            assert not ring.push(np.zeros((1, 63), dtype=np.float32))  # wrong shape
            assert not ring.push(np.zeros((1, 64), dtype=np.float64))  # wrong dtype
            frame = rng.standard_normal((1, 64)).astype(np.float32)
            seen = task.inferences
            assert ring.push(frame)
            deadline = time.monotonic() + 5
            while task.inferences == seen and time.monotonic() < deadline:
                time.sleep(0.001)
            assert task.inferences == seen + 1
            expected = models["mlp"].reference({"input": frame})["output"]
            np.testing.assert_allclose(
                task.tiers[0].results()["output"], expected, rtol=1e-4, atol=1e-5
            )
    finally:
        runner.stop()
        worker.join(timeout=10)
    assert not worker.is_alive()
    stats = read_stats(tmp_path / "stats.json")
    classify = stats["tasks"]["classify"]  # type: ignore[index]
    assert classify["counts"]["input_rejected"] == 10
    assert classify["counts"]["inferences"] == 5
    assert classify["latency_ms"]["e2e"]["count"] == 5


def test_npy_folder_refuses_bad_files_and_runs_on_the_rest(
    base_config: Callable[..., Doc], tmp_path: Path
) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for index in range(3):
        np.save(folder / f"good{index}.npy", rng.standard_normal((1, 64)).astype(np.float32))
    np.save(folder / "bad_shape.npy", np.zeros((64,), dtype=np.float32))
    np.save(folder / "bad_dtype.npy", np.zeros((1, 64), dtype=np.int32))
    (folder / "garbage.npy").write_bytes(b"not numpy")
    doc = base_config()
    doc["tasks"][0]["input"] = {"source": "npy", "path": str(folder)}
    runner = Runner(parse_config(doc))
    runner.run(max_inferences=30)
    task = runner.tasks[0]
    assert task.inferences == 30
    assert task.source.rejected == 3
    stats = read_stats(tmp_path / "stats.json")
    assert stats["tasks"]["classify"]["input"]["frames"] == 3  # type: ignore[index]


def test_hung_inference_trips_the_watchdog_within_its_timeout(
    base_config: Callable[..., Doc], tmp_path: Path
) -> None:
    doc = base_config(watchdog={"timeout_ms": 200})
    factory = Factory(faulty=("mlp",))
    exits: list[tuple[int, float]] = []

    def exit_fn(code: int) -> None:
        # In production this is os._exit; here record it and let the hung call return.
        exits.append((code, time.monotonic()))
        factory.faulty["mlp"].release.set()
        runner.stop()

    runner = Runner(parse_config(doc), backend_factory=factory, exit_fn=exit_fn)
    runner.start()
    faulty = factory.faulty["mlp"]
    faulty.hang_after(20)
    hung_at: list[float] = []
    waiter = threading.Thread(
        target=lambda: (faulty.hanging.wait(10), hung_at.append(time.monotonic())), daemon=True
    )
    waiter.start()
    runner.run(duration_s=10)
    waiter.join(timeout=1)
    assert len(exits) == 1
    code, exited_at = exits[0]
    assert code == WATCHDOG_EXIT_CODE
    delay = exited_at - hung_at[0]
    # The timeout, plus one poll period (20 ms) and scheduling delay on a busy host.
    assert 0.2 <= delay < 0.2 + 0.2, delay
    stats = read_stats(tmp_path / "stats.json")
    assert stats["state"] == "watchdog_timeout"
    assert stats["watchdog"]["timeouts"] == 1  # type: ignore[index]


def test_watchdog_fallback_switches_to_the_emergency_tier(
    base_config: Callable[..., Doc], models: dict[str, GeneratedModel]
) -> None:
    doc = two_tier_doc(base_config, models)
    doc["watchdog"] = {"timeout_ms": 150, "action": "fallback"}
    doc["tasks"][0]["degradation"] = {"emergency": True, "emergency_hold_ms": 100}
    factory = Factory(faulty=("mlp",))
    exits: list[int] = []
    runner = Runner(parse_config(doc), backend_factory=factory, exit_fn=exits.append)
    runner.start()
    faulty = factory.faulty["mlp"]
    faulty.hang_after(10)

    def release_after_fallback() -> None:
        deadline = time.monotonic() + 10
        while runner.watchdog_fallbacks == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        faulty.release.set()

    helper = threading.Thread(target=release_after_fallback, daemon=True)
    helper.start()
    runner.run(duration_s=1.0)
    helper.join(timeout=1)
    task = runner.tasks[0]
    assert exits == []
    assert runner.watchdog_fallbacks == 1
    assert task.emergency_results >= 1
    # Recovered after the hold, to the tier below the one that hung (retired until restart).
    assert task.controller.tier == 1


def test_rt_steps_that_fail_degrade_with_a_reason(
    base_config: Callable[..., Doc], tmp_path: Path
) -> None:
    # CPU 1000 exists on no test machine: sched_setaffinity fails with EINVAL.
    doc = base_config(rt={"priority": 0, "cpus": [1000], "mlockall": False})
    runner = Runner(parse_config(doc))
    assert runner.run(max_inferences=20) == 0
    rt = read_stats(tmp_path / "stats.json")["rt"]
    assert rt["degraded"] is True  # type: ignore[index]
    assert rt["affinity"]["applied"] is False  # type: ignore[index]
    assert "CPUs [1000]" in rt["affinity"]["detail"]  # type: ignore[index]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_a_pinned_loop_moves_every_other_thread_off_its_cpu_and_back(
    base_config: Callable[..., Doc], tmp_path: Path
) -> None:
    """Consumers and the process's other threads run beside the loop, not on its CPU."""
    allowed = sorted(os.sched_getaffinity(0))
    loop_cpu = allowed[-1]
    doc = base_config(rt={"priority": 0, "cpus": [loop_cpu], "mlockall": False})
    # An intra-op pool computes the loop's inferences: its threads are left where they are.
    doc["models"]["mlp"]["options"] = {"intra_op_threads": 3}
    seen: dict[str, set[int]] = {}

    def on_result(_result: object) -> None:
        seen.setdefault("consumer", os.sched_getaffinity(0))

    runner = Runner(parse_config(doc), on_result=on_result)

    def loop() -> None:
        seen["loop_before"] = os.sched_getaffinity(0)
        runner.run(duration_s=0.5)
        seen["loop"] = os.sched_getaffinity(0)

    worker = threading.Thread(target=loop)
    worker.start()
    while worker.is_alive() and "consumer" not in seen:
        time.sleep(0.005)
    during = os.sched_getaffinity(0)  # this thread is one of the others while the loop runs
    pool = {tid: os.sched_getaffinity(tid) for tid in runner._backend_threads}
    worker.join()
    assert len(pool) >= 2 and all(mask == set(allowed) for mask in pool.values())
    assert seen["loop"] == {loop_cpu}
    assert seen["consumer"] == set(allowed) - {loop_cpu}
    assert during == set(allowed) - {loop_cpu}
    assert os.sched_getaffinity(0) == set(allowed)  # given back at shutdown
    others = read_stats(tmp_path / "stats.json")["rt"]["other_threads"]  # type: ignore[index]
    assert others["applied"] is True and others["cpus"] == allowed[:-1]


def test_with_no_cpu_left_the_other_threads_stay_and_the_status_says_why() -> None:
    cpu = sorted(os.sched_getaffinity(0))[0]
    status = move_other_threads([cpu], {cpu})
    assert status.others.requested and not status.others.applied
    assert "no CPU left for the other threads" in status.others.detail
    assert status.moved == {}
    restore_threads({2**22 + 1: {cpu}})  # a thread that is gone: nothing to do, no error


def test_config_without_stats_path_runs(base_config: Callable[..., Doc]) -> None:
    doc = base_config()
    del doc["stats"]["path"]
    config: RunnerConfig = parse_config(doc)
    assert config.stats.path is None
    assert Runner(config).run(max_inferences=10) == 0


def test_stats_file_is_valid_json_while_running(
    base_config: Callable[..., Doc], tmp_path: Path
) -> None:
    runner = Runner(parse_config(base_config()))
    runner.start()
    worker = threading.Thread(target=runner.run, kwargs={"duration_s": 0.6}, daemon=True)
    worker.start()
    seen_running = False
    while worker.is_alive():
        data = json.loads((tmp_path / "stats.json").read_text())  # never torn
        seen_running = seen_running or data["state"] == "running"
        time.sleep(0.02)
    worker.join()
    assert seen_running
    assert read_stats(tmp_path / "stats.json")["final"] is True


@pytest.mark.parametrize("period_ms", [5.0])
def test_priority_scheduler_serves_a_periodic_high_task_and_a_background_task(
    base_config: Callable[..., Doc], models: dict[str, GeneratedModel], period_ms: float
) -> None:
    doc = base_config()
    doc["models"]["conv"] = {
        "backend": "onnxruntime",
        "path": str(models["conv_bn_relu"].path),
        "verify": False,
    }
    doc["tasks"] = [
        {"name": "background", "tiers": ["conv"], "deadline_ms": 50, "priority": 10},
        {
            "name": "control",
            "tiers": ["mlp"],
            "deadline_ms": 20,
            "priority": 90,
            "period_ms": period_ms,
        },
    ]
    runner = Runner(parse_config(doc))
    runner.run(duration_s=0.5)
    control = next(task for task in runner.tasks if task.name == "control")
    background = next(task for task in runner.tasks if task.name == "background")
    assert runner.scheduler is not None
    assert [task.name for task in runner.scheduler.tasks] == ["control", "background"]
    # 0.5 s at 5 ms: the period caps the rate at 101; how many periods a loaded CI
    # host misses is its business (the ordering itself is checked by the lane tests).
    assert 10 <= control.inferences <= 101
    assert background.inferences > control.inferences


def test_stats_file_feeds_the_validation_report_budget(
    base_config: Callable[..., Doc], tmp_path: Path
) -> None:
    from jetson_rt.report.loader import RUNNER_FILE, load_host

    runner = Runner(parse_config(base_config()))
    runner.run(max_inferences=100)
    host_dir = tmp_path / "hosts" / "nano-01"
    host_dir.mkdir(parents=True)
    (host_dir / RUNNER_FILE).write_text((tmp_path / "stats.json").read_text())
    host = load_host(host_dir, "nano-01")
    assert host.runner is not None
    names = [stage.name for stage in host.runner.stages]
    assert names == ["preprocess", "h2d", "infer", "d2h", "postprocess", "total"]
    assert host.runner.frames == 100
    assert host.runner.deadline_misses == 0
    assert host.runner.deadline_ms == 50.0
    total = host.runner.stages[-1]
    assert total.p50_ms is not None and total.max_ms is not None
    assert 0 < total.p50_ms <= total.max_ms


class Recorder(FaultyBackend):
    """Records the order of hot-path calls across backends (shared log)."""

    def __init__(self, inner: Backend, label: str, log: list[str]) -> None:
        super().__init__(inner)
        self.label = label
        self.log = log

    def stage_in(self) -> None:
        self.log.append(f"{self.label}.in")
        super().stage_in()

    def synchronize(self) -> None:
        self.log.append(f"{self.label}.sync")
        super().synchronize()


def lane_tasks(
    models: dict[str, GeneratedModel], devices: tuple[str, str], log: list[str]
) -> list[Any]:
    from jetson_rt.runner.config import TaskConfig
    from jetson_rt.runner.events import EventRing
    from jetson_rt.runner.loop import Task, Tier
    from jetson_rt.runner.sources import SyntheticSource

    config = parse_config(
        {
            "schema_version": 1,
            "models": {
                "m": {"backend": "onnxruntime", "path": str(models["mlp"].path), "verify": False}
            },
            "tasks": [{"name": "t", "tiers": ["m"], "deadline_ms": 100}],
        }
    )
    ring = EventRing()
    tasks = []
    for index, (label, device) in enumerate(zip(("A", "B"), devices, strict=True)):
        backend = Recorder(default_backend_factory(config.models["m"]), label, log)
        backend.activate()
        task_config: TaskConfig = config.tasks[0]
        tier = Tier(0, f"m{label}", backend, device)
        task = Task(index, task_config, [tier], SyntheticSource(), ring)
        task.priority = 90 - index
        task.prime()
        tasks.append(task)
    return tasks


def test_gpu_and_dla_tasks_are_started_together_then_completed(
    models: dict[str, GeneratedModel],
) -> None:
    from jetson_rt.runner.loop import Scheduler

    log: list[str] = []
    tasks = lane_tasks(models, ("gpu", "dla"), log)
    try:
        Scheduler(tasks).run(max_inferences=6)
    finally:
        for task in tasks:
            task.tiers[0].backend.deactivate()
    # Both lanes are queued before either is waited for: the streams overlap.
    assert log == ["A.in", "B.in", "A.sync", "B.sync"] * 3


def test_tasks_on_one_lane_take_turns_by_priority(models: dict[str, GeneratedModel]) -> None:
    from jetson_rt.runner.loop import Scheduler

    log: list[str] = []
    tasks = lane_tasks(models, ("gpu", "gpu"), log)
    tasks[0].period_ns = 10_000_000  # the high-priority task runs at most every 10 ms
    try:
        Scheduler(tasks).run(duration_s=0.1)
    finally:
        for task in tasks:
            task.tiers[0].backend.deactivate()
    # Never two on the lane in one round: every start is followed by its own sync.
    pairs = list(zip(log[::2], log[1::2], strict=True))
    assert all(start[0] == done[0] for start, done in pairs)
    assert 2 <= tasks[0].inferences <= 11
    assert tasks[1].inferences > tasks[0].inferences
    assert log[:2] == ["A.in", "A.sync"]  # the higher priority goes first


def test_thermal_throttling_moves_tasks_down_a_tier(
    base_config: Callable[..., Doc], models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    # A captured Orin sysfs layout (no Jetson here): one zone at 90 C.
    root = tmp_path / "sysfs"
    zone = root / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text("90000\n")
    doc = two_tier_doc(base_config, models)
    doc["thermal"] = {"enabled": True, "throttle_c": 85, "resume_c": 80, "tier": 1}
    doc["health"] = {"interval_s": 0.05}
    runner = Runner(parse_config(doc), platform_root=str(root))
    runner.start()
    worker = threading.Thread(target=runner.run, kwargs={"duration_s": 5}, daemon=True)
    worker.start()
    task = runner.tasks[0]
    try:
        deadline = time.monotonic() + 3
        while task.controller.tier != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert task.controller.tier == 1
        assert task.controller.floor == 1
        (zone / "temp").write_text("70000\n")
        deadline = time.monotonic() + 3
        while task.controller.floor != 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert task.controller.floor == 0
        deadline = time.monotonic() + 3
        while task.controller.tier != 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert task.controller.tier == 0  # compliance climbs back once released
    finally:
        runner.stop()
        worker.join(timeout=10)
    stats = read_stats(tmp_path / "stats.json")
    assert stats["health"]["max_temp_c"] == 70.0  # type: ignore[index]
    assert stats["tasks"]["classify"]["counts"]["per_tier"]["conv"] > 0  # type: ignore[index]


def test_cli_check_config_and_run_through_the_main_entry_point(
    base_config: Callable[..., Doc],
    write_config: Callable[[Doc], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from jetson_rt.cli import main

    good = write_config(base_config())
    assert main(["check-config", str(good)]) == 0
    assert main(["run", "--config", str(good), "--max-inferences", "25"]) == 0
    assert read_stats(tmp_path / "stats.json")["tasks"]["classify"]["counts"]["inferences"] == 25  # type: ignore[index]
    bad = base_config()
    bad["rt"]["priority"] = 100
    assert main(["check-config", str(write_config(bad))]) == 2
    assert "rt.priority: must be at most 99, got 100" in capsys.readouterr().err


def test_a_failed_start_leaves_a_stats_file_saying_why(
    base_config: Callable[..., Doc], tmp_path: Path
) -> None:
    from jetson_rt.errors import ModelError

    doc = base_config()
    doc["models"]["mlp"]["path"] = str(tmp_path / "missing.onnx")
    runner = Runner(parse_config(doc))
    with pytest.raises(ModelError, match=r"missing\.onnx"):
        runner.run(max_inferences=10)
    stats = read_stats(tmp_path / "stats.json")
    assert stats["state"] == "failed"
    assert stats["final"] is True
    assert "ModelError" in str(stats["error"])
    assert "missing.onnx" in str(stats["error"])
