"""The hot loop: tasks, their tiers, and the priority scheduler over backends.

One thread (the real-time one) runs :meth:`Scheduler.run`. Each round it walks
the tasks in priority order and starts every task that is due and whose
device lane (GPU, DLA, CPU) is still free this round: input, then
``stage_in``/``execute``/``stage_out`` queued on that backend's own stream. It
then completes the started tasks (``synchronize``, timing, publishing the
outputs). A GPU task and a DLA task therefore run concurrently (guide sections
6.1 and 12.2) while two tasks on one lane are served strictly by priority
(section 12.3); CPU backends run inside ``execute``, so their lane serialises.

Nothing here allocates per inference once warm: timings are integers from
``time.perf_counter_ns``, recorded in fixed histograms; results are copied into
preallocated arrays; events go to a fixed ring; no string is formatted.
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import isnan
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from jetson_rt.backends.base import Backend
from jetson_rt.runner import events
from jetson_rt.runner.config import TaskConfig, WarmupConfig
from jetson_rt.runner.events import EventRing
from jetson_rt.runner.histogram import LatencyHistogram
from jetson_rt.runner.sla import SlaTracker
from jetson_rt.runner.sources import FILLED, InputSource
from jetson_rt.runner.tiers import TierController

if TYPE_CHECKING:
    from jetson_rt.runner.results import ResultHub

Array = npt.NDArray[np.generic]

# Lanes a round can use once each: one engine per accelerator at a time.
LANE_BITS = {"gpu": 1, "dla": 2, "cpu": 4}

# Stage histograms every task keeps, in report order.
STAGES = ("pre", "h2d", "infer", "d2h", "post", "total", "enqueue", "e2e")
# Glass-to-result stages of a live source, from the frame's capture time (guide 1.3,
# 7.3, Appendix B): its input filled, its inference done; ``e2e`` is its result handed
# to the consumers, and the publisher keeps capture to published.
GLASS_STAGES = ("capture_to_input", "capture_to_done")


@dataclass
class WarmupResult:
    iterations: int
    cv: float
    stable: bool
    baseline_ms: float

    def to_dict(self) -> dict[str, object]:
        return {
            "iterations": self.iterations,
            "cv": round(self.cv, 6) if math.isfinite(self.cv) else None,
            "stable": self.stable,
            "baseline_ms": round(self.baseline_ms, 6),
        }


def run_once(backend: Backend) -> None:
    backend.stage_in()
    backend.execute()
    backend.stage_out()
    backend.synchronize()


def warm_up(backend: Backend, config: WarmupConfig) -> WarmupResult:
    """Run inferences until the coefficient of variation of the last ``window`` is low.

    At least ``min_iterations``, at most ``max_iterations``; unstable at the cap
    is reported (``stable: false``), not fatal.
    """
    window = np.zeros(config.window, dtype=np.float64)
    cv = math.inf
    done = 0
    for index in range(config.max_iterations):
        start = time.perf_counter_ns()
        run_once(backend)
        window[index % config.window] = time.perf_counter_ns() - start
        done = index + 1
        if done >= max(config.min_iterations, config.window):
            mean = float(window.mean())
            cv = float(window.std() / mean) if mean > 0 else 0.0
            if cv <= config.max_cv:
                return WarmupResult(done, cv, True, mean / 1e6)
    filled = window[: min(done, config.window)]
    mean = float(filled.mean()) if filled.size else 0.0
    if done < config.window and filled.size and mean > 0:
        cv = float(filled.std() / mean)
    return WarmupResult(done, cv, False, mean / 1e6)


class Tier:
    """One model of a task's ladder: its backend, arrays and lane."""

    __slots__ = (
        "backend",
        "device",
        "epoch",
        "frozen",
        "index",
        "input_specs",
        "inputs",
        "lane",
        "name",
        "output_names",
        "outputs",
        "stage_clock",
        "warmup",
    )

    def __init__(self, index: int, name: str, backend: Backend, device: str) -> None:
        self.index = index
        self.name = name
        self.backend = backend
        self.device = device
        self.lane = LANE_BITS[device]
        self.input_specs = backend.inputs
        host_in = backend.host_inputs()
        self.inputs: list[Array] = [host_in[spec.name] for spec in backend.inputs]
        host_out = backend.host_outputs()
        self.output_names = [spec.name for spec in backend.outputs]
        self.outputs: list[Array] = [host_out[spec.name] for spec in backend.outputs]
        self.frozen: dict[str, Array] | None = None
        self.warmup: WarmupResult | None = None
        # Per device stage: "backend" (the backend's own timer, device events on a GPU)
        # or "host" (the runner's clock around the call); known once warmed up.
        self.stage_clock: dict[str, str] = {}
        # Bumped as an inference of this tier starts: its outputs may change from then on
        # (consumers that read them in place check it, runner.results).
        self.epoch = 0

    def settle_clock(self) -> None:
        times = self.backend.stage_times_ms()
        self.stage_clock = {
            stage: "host" if isnan(value) else "backend" for stage, value in times.items()
        }

    def results(self) -> dict[str, Array]:
        """This tier's last outputs by name.

        While the backend is active these are its host output arrays, overwritten
        by the tier's next inference (no copy per inference); after
        :meth:`freeze` they are copies that outlive the backend's buffers.
        """
        if self.frozen is not None:
            return self.frozen
        return dict(zip(self.output_names, self.outputs, strict=True))

    def freeze(self) -> None:
        """Copy the last outputs before the backend frees its (possibly pinned) buffers."""
        self.frozen = {
            name: np.array(array, copy=True)
            for name, array in zip(self.output_names, self.outputs, strict=True)
        }


class Task:
    """A task's state in the loop: tiers, source, counters, histograms, SLA."""

    __slots__ = (
        "_glass",
        "_rec",
        "_t0",
        "_t1",
        "_t2",
        "_t3",
        "_t4",
        "_tier",
        "backend_errors",
        "config",
        "consecutive_errors",
        "controller",
        "deadline_misses",
        "deadline_ns",
        "emergency_ns",
        "emergency_results",
        "events",
        "fault",
        "hist",
        "hub",
        "index",
        "inferences",
        "name",
        "next_due_ns",
        "overruns",
        "period_ns",
        "priority",
        "result_seq",
        "result_tier",
        "sla",
        "source",
        "tier_counts",
        "tiers",
        "violation_ns",
    )

    def __init__(
        self,
        index: int,
        config: TaskConfig,
        tiers: Sequence[Tier],
        source: InputSource,
        event_ring: EventRing,
    ) -> None:
        self.index = index
        self.config = config
        self.name = config.name
        self.priority = config.priority
        self.tiers = list(tiers)
        self.source = source
        self.events = event_ring
        self.controller = TierController(len(self.tiers), config.degradation, event_ring, index)
        self.sla = SlaTracker(config.sla.window_s, config.sla.target_pct)
        self.deadline_ns = int(config.deadline_ms * 1e6)
        self.violation_ns = int(config.deadline_ms * config.degradation.violation_fraction * 1e6)
        self.period_ns = int(config.period_ms * 1e6)
        # Without a period, the emergency tier republishes once per deadline.
        self.emergency_ns = self.period_ns or self.deadline_ns
        self.next_due_ns = 0
        self.hist = {stage: LatencyHistogram() for stage in STAGES}
        # Bound record methods in STAGES order: no dict or attribute lookups per inference.
        self._rec = tuple(self.hist[stage].record for stage in STAGES)
        for stage in GLASS_STAGES:
            self.hist[stage] = LatencyHistogram()
        self._glass = tuple(self.hist[stage].record for stage in GLASS_STAGES)
        # Where results go (runner.results.ResultHub), None when nobody listens.
        self.hub: ResultHub | None = None
        self.inferences = 0
        self.deadline_misses = 0
        self.backend_errors = 0
        # Backend errors since the last good inference, and the reason the task can go
        # no further ("" while it can): a sticky CUDA error, or too many errors in a row.
        self.consecutive_errors = 0
        self.fault = ""
        self.emergency_results = 0
        self.overruns = 0
        self.result_seq = 0
        self.result_tier = -1
        self.tier_counts = array("q", bytes(8 * (len(self.tiers) + 1)))
        self._tier: Tier | None = None
        self._t0 = self._t1 = self._t2 = self._t3 = self._t4 = 0

    def prime(self) -> None:
        for tier in self.tiers:
            self.source.prime(tier.input_specs, tier.inputs)

    @property
    def tier_name(self) -> str:
        tier = self.controller.tier
        return self.tiers[tier].name if tier < len(self.tiers) else "emergency"

    def _advance(self, now_ns: int, period_ns: int) -> None:
        if period_ns:
            # The first start sets the phase; later ones keep it unless a period was missed.
            due = (self.next_due_ns or now_ns) + period_ns
            if due <= now_ns:
                self.overruns += 1
                due = now_ns + period_ns
            self.next_due_ns = due

    def begin(self, now_ns: int, busy_lanes: int) -> int:
        """Fill the input and queue the inference; the lane it took, or 0 if none."""
        controller = self.controller
        if controller.pending:
            controller.poll(now_ns)
        tier_index = controller.tier
        if tier_index == controller.emergency_tier:
            # Last-result tier: consume the input to keep live sources fresh, publish nothing new.
            lowest = self.tiers[-1]
            self.source.fill(lowest.inputs, now_ns)
            self.emergency_results += 1
            self.tier_counts[tier_index] += 1
            if self.next_due_ns <= now_ns:
                self.next_due_ns = now_ns + self.emergency_ns
            return 0
        tier = self.tiers[tier_index]
        if busy_lanes & tier.lane:
            return 0
        if self.source.fill(tier.inputs, now_ns) != FILLED:
            return 0
        self._advance(now_ns, self.period_ns)
        backend = tier.backend
        self._tier = tier
        self._t0 = now_ns
        clock = time.perf_counter_ns
        self._t1 = clock()
        tier.epoch += 1
        try:
            backend.stage_in()
            self._t2 = clock()
            backend.execute()
            self._t3 = clock()
            backend.stage_out()
        except Exception as exc:
            return self._failed(clock(), exc)
        self._t4 = clock()
        return tier.lane

    def _failed(self, now_ns: int, exc: Exception) -> int:
        """A backend raised: count it as an error and a violation; no result this round.

        A sticky CUDA error, or ``max_consecutive_errors`` errors in a row, sets
        :attr:`fault`; the scheduler then stops and the service exits for a restart.
        """
        self.backend_errors += 1
        self.consecutive_errors += 1
        self.events.push(now_ns, events.BACKEND_ERROR, self.index, self.controller.tier)
        self.controller.observe(True, now_ns)
        self._tier = None
        if not self.fault:
            from jetson_rt.backends.base import is_sticky

            limit = self.config.max_consecutive_errors
            if is_sticky(exc):
                self.fault = f"sticky CUDA error in tier {self.controller.tier}: {exc}"
            elif limit and self.consecutive_errors >= limit:
                self.fault = (
                    f"{self.consecutive_errors} backend errors in a row, the last: "
                    f"{type(exc).__name__}: {exc}"
                )
        return 0

    def finish(self) -> None:
        """Wait for the queued inference, time it, hand the result over, account for it."""
        tier = self._tier
        if tier is None:
            return
        self._tier = None
        backend = tier.backend
        clock = time.perf_counter_ns
        try:
            backend.synchronize()
        except Exception as exc:
            self._failed(clock(), exc)
            return
        t5 = clock()
        # Post: the hand-off of the result (the outputs stay in the backend's host arrays).
        times = backend.stage_times_ms()
        self.result_tier = tier.index
        self.result_seq += 1
        hub = self.hub
        if hub is not None and hub.queues:
            source = self.source
            capture = source.frame_time_ns
            met = t5 - (capture or self._t0) <= self.deadline_ns
            for queue in hub.queues:
                queue.offer(self, tier, source.frame_id, capture, self._t0, t5, met)
        t6 = clock()
        t0, t1, t2, t3, t4 = self._t0, self._t1, self._t2, self._t3, self._t4
        rec_pre, rec_h2d, rec_infer, rec_d2h, rec_post, rec_total, rec_enqueue, rec_e2e = self._rec
        rec_pre(t1 - t0)
        # Device time where the backend measures it (events), else the host call times.
        device = times["h2d"]
        rec_h2d(t2 - t1 if isnan(device) else int(device * 1e6))
        device = times["infer"]
        rec_infer(t3 - t2 + t5 - t4 if isnan(device) else int(device * 1e6))
        device = times["d2h"]
        rec_d2h(t4 - t3 if isnan(device) else int(device * 1e6))
        rec_post(t6 - t5)
        rec_enqueue(t4 - t1)
        latency = t6 - t0
        rec_total(latency)
        frame_time = self.source.frame_time_ns
        if frame_time:
            latency = t6 - frame_time
            rec_e2e(latency)
            glass_input, glass_done = self._glass
            glass_input(t1 - frame_time)
            glass_done(t5 - frame_time)
        self.inferences += 1
        self.consecutive_errors = 0
        self.tier_counts[tier.index] += 1
        missed = latency > self.deadline_ns
        if missed:
            self.deadline_misses += 1
        self.sla.record(t6, not missed)
        self.controller.observe(latency > self.violation_ns, t6)


class Scheduler:
    """Runs tasks by priority until stopped; beats the watchdog every round."""

    def __init__(self, tasks: Sequence[Task], beat: Callable[[], None] | None = None) -> None:
        # Highest priority first; equal priorities keep configuration order.
        self.tasks = sorted(tasks, key=lambda task: -task.priority)
        self._beat = beat if beat is not None else _no_beat
        self.stop_requested = False
        self.rounds = 0
        self.current_task = -1
        # Why the loop stopped on its own ("" when it did not): the service's exit reason.
        self.fault = ""

    def stop(self) -> None:
        self.stop_requested = True

    def _faulted(self, task: Task) -> None:
        """``task`` cannot go on (see :attr:`Task.fault`): stop the loop, keep the reason."""
        if not self.fault:
            self.fault = f"task {task.name}: {task.fault}"
        self.stop_requested = True

    def run(self, duration_s: float | None = None, max_inferences: int | None = None) -> None:
        tasks = self.tasks
        started: list[Task | None] = [None] * len(tasks)
        beat = self._beat
        clock = time.perf_counter_ns
        sleep = time.sleep
        end_ns = clock() + int(duration_s * 1e9) if duration_s is not None else 0
        limit = max_inferences if max_inferences is not None else 0
        self.fault = ""
        if len(tasks) == 1:
            self._run_one(tasks[0], end_ns, limit)
            return
        while not self.stop_requested:
            now = clock()
            if end_ns and now >= end_ns:
                break
            count = 0
            lanes = 0
            for task in tasks:
                if task.next_due_ns > now:
                    continue
                self.current_task = task.index
                lane = task.begin(now, lanes)
                if lane:
                    lanes |= lane
                    started[count] = task
                    count += 1
                now = clock()
            for slot in range(count):
                running = started[slot]
                if running is not None:
                    self.current_task = running.index  # for the watchdog's report
                    running.finish()
                    started[slot] = None
            self.current_task = -1
            faulted = _first_fault(tasks)
            if faulted is not None:
                self._faulted(faulted)
                break  # no beat: the service exits for a restart
            self.rounds += 1
            beat()
            if limit and _total(tasks) >= limit:
                break
            if count == 0:
                self._idle(tasks, clock(), sleep)

    def _run_one(self, task: Task, end_ns: int, limit: int) -> None:
        """The same loop for the common single-task case, with less bookkeeping."""
        beat = self._beat
        clock = time.perf_counter_ns
        sleep = time.sleep
        only = [task]
        self.current_task = task.index
        rounds = 0
        while not self.stop_requested:
            now = clock()
            if end_ns and now >= end_ns:
                break
            ran = task.next_due_ns <= now and task.begin(now, 0)
            if ran:
                task.finish()
            if task.fault:
                self._faulted(task)
                break  # no beat: the service exits for a restart
            rounds += 1
            beat()
            if limit and task.inferences >= limit:
                break
            if not ran:
                self._idle(only, clock(), sleep)
        self.rounds += rounds
        self.current_task = -1

    @staticmethod
    def _idle(tasks: Sequence[Task], now: int, sleep: Callable[[float], None]) -> None:
        """Nothing ran: sleep until the next task is due (at most 1 ms, to keep beating)."""
        wait = 1_000_000
        for task in tasks:
            ahead = task.next_due_ns - now
            wait = min(wait, ahead)
        if wait <= 0:
            # A due task had no input yet (live source): poll again shortly.
            wait = 100_000
        sleep(wait / 1e9)


def _first_fault(tasks: Sequence[Task]) -> Task | None:
    for task in tasks:
        if task.fault:
            return task
    return None


def _total(tasks: Sequence[Task]) -> int:
    return sum(task.inferences for task in tasks)


def _no_beat() -> None:
    pass
