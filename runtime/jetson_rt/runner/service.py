"""The runner as a service: the startup sequence, the loop, and a clean stop.

Startup follows the guide's section 17.7, in this order:

1. every model's backend is created and activated (all buffers allocated once);
2. every tier is warmed up until its latency is stable (CV under
   ``warmup.max_cv``, at most ``warmup.max_iterations``); CUDA graph capture,
   where a backend does it, happens inside the backend;
3. the background threads start (stats, health, metrics, watchdog) so they
   keep the normal scheduling policy and every CPU;
4. ``mlockall``, ``SCHED_FIFO`` and CPU affinity are applied to the loop's
   thread; a denied step is a warning and a ``degraded`` flag, never a crash;
5. ``READY=1`` goes to systemd, the watchdog is armed, and the loop runs.

SIGTERM and SIGINT stop the loop between rounds; the final stats are written,
the backends deactivated, ``STOPPING=1`` sent. A watchdog timeout writes the
stats with state ``watchdog_timeout`` and exits with :data:`WATCHDOG_EXIT_CODE`
(or first switches to the fallback tier when ``watchdog.action`` is
``fallback``, and never climbs back into the tier that hung), so that systemd's
``Restart=on-failure`` restarts the service. A backend that cannot go on (a
sticky CUDA error, or ``max_consecutive_errors`` errors in a row) stops the loop
and the watchdog's beats, writes the stats with state ``backend_fault`` and
exits with :data:`BACKEND_FAULT_EXIT_CODE`, for the same restart.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from jetson_rt import __version__, platform
from jetson_rt.backends import create_backend
from jetson_rt.backends.base import Backend
from jetson_rt.errors import ConfigError, EngineError, JetsonRtError, PlatformError
from jetson_rt.log import logger
from jetson_rt.prepost.backend import wrap as wrap_stages
from jetson_rt.runner import events
from jetson_rt.runner.config import ModelConfig, RunnerConfig, engine_problem, problem_list
from jetson_rt.runner.events import Event, EventRing
from jetson_rt.runner.health import HealthMonitor
from jetson_rt.runner.loop import Scheduler, Task, Tier, WarmupResult, warm_up
from jetson_rt.runner.metrics import MetricsServer
from jetson_rt.runner.notify import SystemdNotifier
from jetson_rt.runner.preflight import host_problems
from jetson_rt.runner.results import CallbackConsumer, Result, ResultHub, ResultIterator
from jetson_rt.runner.rt import RtStatus, apply_rt, restore_threads, thread_ids
from jetson_rt.runner.sources import InputSource, create_source
from jetson_rt.runner.stats import (
    STATS_SCHEMA_VERSION,
    StatsReporter,
    budget_summary,
    summary_line,
    task_snapshot,
    write_atomic,
)
from jetson_rt.runner.watchdog import Watchdog

# EX_SOFTWARE from sysexits.h: the loop hung; systemd's Restart=on-failure restarts it.
WATCHDOG_EXIT_CODE = 70
# EX_UNAVAILABLE from sysexits.h: a backend cannot go on (a sticky CUDA error, or too
# many errors in a row); only a new process recovers, so systemd restarts it.
BACKEND_FAULT_EXIT_CODE = 69

BackendFactory = Callable[[ModelConfig], Backend]


def default_backend_factory(model: ModelConfig) -> Backend:
    """``create_backend`` with the model's options; ``shapes`` become ``input_shapes``."""
    options = dict(model.options)
    if model.shapes and "input_shapes" not in options:
        options["input_shapes"] = {name: list(dims) for name, dims in model.shapes.items()}
    if not model.verify:
        options["verify"] = False
    # A model with pre/post stages takes camera frames and gives post-processed results.
    return wrap_stages(create_backend(model.backend, model.path, **options), model)


def verify_engines(config: RunnerConfig) -> None:
    """Refuse to load any model whose manifest, sha256 or source model does not match.

    A model with ``verify: false`` is loaded unchecked, and the log says so.
    """
    problems: list[str] = []
    for name, model in config.models.items():
        if not model.verify:
            logger.warning(
                "models.%s.verify is false: %s is loaded without checking its manifest, "
                "its sha256 or its source model",
                name,
                model.path,
            )
            continue
        problem = engine_problem(model)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise EngineError(problem_list("refusing to load", problems))


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class Runner:
    """Owns the backends, tasks, threads and the stats of one ``jetson-rt run``."""

    def __init__(
        self,
        config: RunnerConfig,
        *,
        backend_factory: BackendFactory = default_backend_factory,
        sources: dict[str, InputSource] | None = None,
        notifier: SystemdNotifier | None = None,
        exit_fn: Callable[[int], object] = os._exit,
        platform_root: str = platform.ROOT,
        stats_path: Path | None = None,
        on_result: Callable[[Result], object] | None = None,
    ) -> None:
        self.config = config
        self._factory = backend_factory
        self._sources = dict(sources or {})
        self._owns_notifier = notifier is None
        self.notifier = notifier if notifier is not None else SystemdNotifier()
        self._exit = exit_fn
        self._root = platform_root
        self.stats_path = stats_path if stats_path is not None else config.stats.path
        self.state = "created"
        self.started_at = ""
        self._started_ns = 0
        self.events = EventRing(256)
        self.backends: dict[str, Backend] = {}
        self.tasks: list[Task] = []
        self.scheduler: Scheduler | None = None
        self.rt = RtStatus()
        self.health = HealthMonitor(config.health, config.thermal, [], platform_root)
        self.watchdog = Watchdog(config.watchdog.timeout_ms, self._on_watchdog, self.notifier)
        self.watchdog_fallbacks = 0
        self.metrics = MetricsServer(config.prometheus, self)
        self.reporter: StatsReporter | None = None
        self._final_written = False
        self._stopped = False
        self._switch_interval: float | None = None
        self._backend_threads: set[int] = set()
        self._stop_requested = False
        # After a sticky CUDA error no call into the context is made again, not even a free.
        self._context_lost = False
        self.error: str | None = None
        # Result consumers: the embedding program's callback and iterators, the publisher.
        self.hub = ResultHub()
        if on_result is not None:
            self.add_result_callback(on_result)
        if config.publish.enabled:
            from jetson_rt.runner.publish import ZenohPublisher

            self.hub.add(ZenohPublisher(config.publish))

    # --- startup ----------------------------------------------------------------

    def start(self) -> None:
        """Steps 1-5 of the startup sequence; the loop itself runs in :meth:`run`."""
        self.state = "starting"
        self.started_at = _now_iso()
        self._started_ns = time.monotonic_ns()
        # Unarmed, the watchdog thread only keeps systemd's WatchdogSec= fed while models
        # load and warm up (TimeoutStartSec= bounds that); it judges the loop once armed.
        self.watchdog.start()
        try:
            self._load()
            self.state = "warming_up"
            self._warm_up()
        except BaseException:
            self.watchdog.stop()
            self._release()
            raise
        self.health.controllers = [task.controller for task in self.tasks]
        self.health.start()
        self.hub.start()
        self.metrics.start()
        self.reporter = StatsReporter(
            interval_s=self.config.stats.interval_s,
            summary_interval_s=self.config.stats.summary_interval_s,
            write=self.write_stats,
            summary=self.summary,
            drain_events=self.drain_events,
            status=self.notifier.status,
        )
        self.reporter.start()
        self._switch_interval = sys.getswitchinterval()
        self.rt = apply_rt(
            self.config.rt, lambda: platform.isolated_cpus(self._root), self._backend_threads
        )
        self.state = "running"
        self.write_stats()
        self.notifier.ready(f"running: {self.rt.short()}")
        logger.info(
            "runner ready: %d task(s), %d model(s); %s",
            len(self.tasks),
            len(self.backends),
            self.rt.short(),
        )

    def prepare(self) -> Scheduler:
        """Steps 1 and 2 only (backends active, tiers warmed), for benchmarks and embedding.

        No thread is started and no real-time setting applied; drive the returned
        scheduler directly, then call :meth:`release`.
        """
        try:
            self._load()
            self._warm_up()
        except BaseException:
            self._release()
            raise
        if self.scheduler is None:
            raise ConfigError("the runner has no tasks")
        self.hub.start()
        return self.scheduler

    def add_result_callback(
        self, callback: Callable[[Result], object], *, queue: int = 4, slow_ms: float = 10.0
    ) -> CallbackConsumer:
        """Call ``callback(result)`` for every result, on a thread of its own.

        The result's output views stay valid until the callback returns (use
        ``result.copy()`` to keep them). A callback that raises is counted and
        logged; one slower than ``slow_ms`` is counted; while it is busy, results
        beyond ``queue`` are dropped for it and counted. None of it slows the loop.
        """
        consumer = CallbackConsumer(
            callback, name=f"callback-{len(self.hub.consumers) + 1}", size=queue, slow_ms=slow_ms
        )
        self.hub.add(consumer)
        return consumer

    def results(self, queue: int = 4) -> ResultIterator:
        """An iterator over results, for a thread of the embedding program.

        Each result's views stay valid until the next ``next()``; results the
        reader was too slow for are dropped (counted); iteration ends when the
        runner stops.
        """
        iterator = ResultIterator(queue, name=f"iterator-{len(self.hub.consumers) + 1}")
        self.hub.add(iterator)
        return iterator

    def release(self) -> None:
        """Free what :meth:`prepare` set up (results are kept, see ``Tier.results``)."""
        self._release()

    def _load(self) -> None:
        problems = host_problems(self.config, self._root, frozenset(self._sources))
        if problems:
            raise PlatformError(
                "this host cannot run the configuration:\n  " + "\n  ".join(problems)
            )
        verify_engines(self.config)
        before = thread_ids()
        for name, model in self.config.models.items():
            backend = self._factory(model)
            self.backends[name] = backend
            backend.activate()
        # Started by the backends (an intra-op pool, CUDA's helpers): not moved off the
        # loop's CPUs when it is pinned (rt.py).
        self._backend_threads = thread_ids() - before
        for index, task_config in enumerate(self.config.tasks):
            source = self._sources.get(task_config.name) or create_source(task_config.input)
            tiers = [
                Tier(tier_index, name, self.backends[name], self.config.models[name].device)
                for tier_index, name in enumerate(task_config.tiers)
            ]
            task = Task(index, task_config, tiers, source, self.events)
            source.start()
            task.prime()
            self.tasks.append(task)
        fallback = self.config.watchdog.fallback_tier
        for task in self.tasks:
            if fallback >= len(task.tiers):
                raise ConfigError(
                    f"watchdog.fallback_tier {fallback} is past task {task.name}'s tiers"
                )
        self.hub.bind(self.tasks)
        for task in self.tasks:
            task.hub = self.hub
        self.scheduler = Scheduler(self.tasks, self.watchdog.beat)

    def _warm_up(self) -> None:
        done: dict[int, WarmupResult] = {}  # a model shared by tasks is warmed once
        for task in self.tasks:
            for tier in task.tiers:
                if self._stop_requested:
                    return  # SIGTERM during startup: no need to finish warming up
                known = done.get(id(tier.backend))
                if known is not None:
                    tier.warmup = known
                    tier.settle_clock()
                    continue
                try:
                    result = warm_up(tier.backend, self.config.warmup)
                except JetsonRtError:
                    raise
                except Exception as exc:  # a backend's own error type: say where it happened
                    raise EngineError(
                        f"warm-up of {task.name}/{tier.name} failed: {type(exc).__name__}: {exc}"
                    ) from exc
                done[id(tier.backend)] = result
                tier.warmup = result
                tier.settle_clock()
                log = logger.info if result.stable else logger.warning
                log(
                    "warm-up %s/%s: %d iterations, CV %.3f (bound %.3f)%s, baseline %.3f ms",
                    task.name,
                    tier.name,
                    result.iterations,
                    result.cv,
                    self.config.warmup.max_cv,
                    "" if result.stable else " NOT stable at the iteration cap",
                    result.baseline_ms,
                )

    # --- the loop ------------------------------------------------------------------

    def run(self, duration_s: float | None = None, max_inferences: int | None = None) -> int:
        """Start (if needed), loop until stopped, shut down; the exit status.

        SIGTERM/SIGINT are handled from the start: during startup they skip the
        loop (after the current warm-up finishes) and the runner stops cleanly.
        """
        with self._signals():
            if self.state == "created":
                try:
                    self.start()
                except BaseException as exc:
                    self._record_failure(exc)
                    raise
            scheduler = self.scheduler
            if scheduler is None:
                raise ConfigError("the runner has no tasks")
            fault = ""
            try:
                if not self._stop_requested:
                    self.watchdog.arm()
                    scheduler.run(duration_s=duration_s, max_inferences=max_inferences)
                    fault = scheduler.fault
                    if fault:
                        self._on_fault(fault)
            except BaseException as exc:
                self.state = "failed"
                self.error = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                self.shutdown()
        return BACKEND_FAULT_EXIT_CODE if fault else 0

    def _on_fault(self, reason: str) -> None:
        """The loop stopped on a backend fault: say why, exit for a restart."""
        self.watchdog.disarm()
        self.state = "backend_fault"
        self.error = reason
        self._context_lost = "sticky CUDA error" in reason
        logger.error(
            "%s; exiting with %d so systemd restarts the service", reason, BACKEND_FAULT_EXIT_CODE
        )

    def stop(self) -> None:
        """Stop the loop between rounds (any thread, or a signal handler)."""
        self._stop_requested = True
        if self.scheduler is not None:
            self.scheduler.stop()

    def _record_failure(self, exc: BaseException) -> None:
        """A start that failed still leaves a stats file saying why."""
        self.state = "failed"
        self.error = f"{type(exc).__name__}: {exc}"
        self._stopped = True
        self.write_stats(final=True)
        self._final_written = True
        if self._owns_notifier:
            self.notifier.close()

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT stop the runner between rounds (main thread only)."""

        def handler(signum: int, frame: FrameType | None) -> None:
            del signum, frame
            self.stop()

        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def shutdown(self, state: str = "stopped") -> None:
        """Write the final stats and free everything; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.watchdog.disarm()
        if self.state not in ("failed", "watchdog_timeout", "backend_fault"):
            self.state = state
        self.notifier.stopping(f"stopping: {self.summary()}")
        if self.reporter is not None:
            self.reporter.stop()
        self.health.stop()
        self.metrics.stop()
        self.watchdog.stop()
        self.drain_events()
        # consumers finish the results already handed to them, so the final stats count them
        self.hub.stop()
        if not self._final_written:
            self.write_stats(final=True)
            self._final_written = True
        self._release()
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
        # The threads moved off the loop's CPUs (rt.py) get their masks back.
        restore_threads(self.rt.moved)
        if self._owns_notifier:
            self.notifier.close()
        logger.info("runner stopped: %s", self.summary())

    def _release(self) -> None:
        self.hub.stop()
        for task in self.tasks:
            with contextlib.suppress(Exception):
                task.source.stop()
            for tier in task.tiers:
                tier.freeze()
        for name, backend in self.backends.items():
            if self._context_lost:
                break  # the process exits next; its end frees the context
            try:
                backend.deactivate()
            except Exception:
                logger.exception("deactivating %s failed", name)

    # --- watchdog --------------------------------------------------------------------

    def _on_watchdog(self, elapsed_ns: int, strikes: int) -> None:
        scheduler = self.scheduler
        current = scheduler.current_task if scheduler is not None else -1
        where = self.tasks[current].name if 0 <= current < len(self.tasks) else "between tasks"
        action = self.config.watchdog.action
        if action == "fallback" and strikes == 1:
            self.watchdog_fallbacks += 1
            fallback = self.config.watchdog.fallback_tier
            logger.error(
                "watchdog: no heartbeat for %.1f ms (timeout %.1f ms) in %s; "
                "switching to fallback tier %s",
                elapsed_ns / 1e6,
                self.config.watchdog.timeout_ms,
                where,
                "emergency" if fallback < 0 else fallback,
            )
            targets = [self.tasks[current]] if 0 <= current < len(self.tasks) else self.tasks
            for task in targets:
                hung = task.controller.tier
                if hung < task.controller.model_tiers:
                    # Not climbed back into until the service restarts.
                    task.controller.retire(hung)
                    logger.error(
                        "task %s: tier %d (%s) is retired until the service restarts",
                        task.name,
                        hung,
                        task.tiers[hung].name,
                    )
                    if hung == task.controller.model_tiers - 1:
                        # No model tier is left to serve: once the call returns, the
                        # loop stops and the service exits for a restart.
                        task.fault = f"tier {hung} ({task.tiers[hung].name}) hung, no tier below it"
                task.controller.request_tier(fallback)
            return
        self.state = "watchdog_timeout"
        logger.error(
            "watchdog: no heartbeat for %.1f ms (timeout %.1f ms) in %s; exiting with %d "
            "so systemd restarts the service",
            elapsed_ns / 1e6,
            self.config.watchdog.timeout_ms,
            where,
            WATCHDOG_EXIT_CODE,
        )
        try:
            self.drain_events()
            self.write_stats(final=True)
            self._final_written = True
            self.notifier.stopping(f"watchdog timeout in {where}")
        finally:
            for handler in logger.handlers:
                handler.flush()
            self._exit(WATCHDOG_EXIT_CODE)

    # --- reporting ---------------------------------------------------------------------

    def drain_events(self) -> None:
        self.events.drain(self._log_event)

    def _log_event(self, event: Event) -> None:
        task = self.tasks[event.task] if 0 <= event.task < len(self.tasks) else None
        name = task.name if task is not None else "?"

        def tier_name(index: int) -> str:
            if task is not None and 0 <= index < len(task.tiers):
                return task.tiers[index].name
            return "emergency"

        if event.kind in (events.TIER_DOWN, events.TIER_UP, events.TIER_FORCED):
            verb = {
                events.TIER_DOWN: "stepped down",
                events.TIER_UP: "stepped up",
                events.TIER_FORCED: "forced",
            }[event.kind]
            logger.warning(
                "task %s %s from tier %d (%s) to tier %d (%s)",
                name,
                verb,
                event.a,
                tier_name(event.a),
                event.b,
                tier_name(event.b),
            )
        elif event.kind == events.THERMAL_FLOOR:
            logger.warning("task %s: thermal floor now tier %d", name, event.a)
        elif event.kind == events.BACKEND_ERROR:
            logger.error("task %s: the backend of tier %s raised", name, tier_name(event.a))

    def summary(self) -> str:
        parts = [summary_line(task) for task in self.tasks]
        return "; ".join(parts) + f" | {self.rt.short()}"

    def snapshot(self, *, final: bool = False) -> dict[str, object]:
        now_ns = time.perf_counter_ns()
        uptime = (time.monotonic_ns() - self._started_ns) / 1e9 if self._started_ns else 0.0
        # Appendix B summary of the highest-priority task, where the report looks for it.
        primary = max(self.tasks, key=lambda task: task.priority) if self.tasks else None
        budget = budget_summary(primary) if primary is not None else {"stages": {}}
        return {
            "schema_version": STATS_SCHEMA_VERSION,
            "runner_version": __version__,
            "state": self.state,
            "final": final,
            "error": self.error,
            "pid": os.getpid(),
            "config": str(self.config.source) if self.config.source else None,
            "started_at": self.started_at,
            "written_at": _now_iso(),
            "uptime_s": round(uptime, 3),
            "rt": self.rt.to_dict(),
            "watchdog": {
                "timeout_ms": self.config.watchdog.timeout_ms,
                "action": self.config.watchdog.action,
                "timeouts": self.watchdog.timeouts,
                "fallbacks": self.watchdog_fallbacks,
                "systemd": self.notifier.watchdog_interval_ns > 0,
            },
            "health": {**self.health.latest.to_dict(), "inputs": self._input_health()},
            "metrics": self.metrics.describe(),
            "results": self.hub.describe(),
            "events_lost": self.events.lost,
            **budget,
            "tasks": {task.name: task_snapshot(task, now_ns) for task in self.tasks},
        }

    def _input_health(self) -> dict[str, object]:
        """State of every live source (a failing camera shows here and in its task)."""
        found: dict[str, object] = {}
        for task in self.tasks:
            state = getattr(task.source, "state", None)
            if state is not None:
                found[task.name] = {
                    "state": state,
                    "healthy": bool(getattr(task.source, "healthy", True)),
                    "last_error": getattr(task.source, "last_error", "") or None,
                }
        return found

    def write_stats(self, final: bool = False) -> None:
        if self.stats_path is None:
            return
        try:
            write_atomic(self.stats_path, self.snapshot(final=final))
        except OSError as exc:
            logger.error("cannot write stats file %s: %s", self.stats_path, exc)
