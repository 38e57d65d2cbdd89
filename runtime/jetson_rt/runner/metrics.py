"""The optional Prometheus endpoint (``prometheus.port``), through ``prometheus_client``.

Nothing is observed from the hot loop: a custom collector reads the runner's own
histograms, counters, tiers and health snapshot at scrape time, on the HTTP
server's thread. The latency histogram is exported with coarse buckets derived
from the runner's fine ones. Without ``prometheus_client`` the endpoint is
reported unavailable (log and stats file) and the runner carries on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from jetson_rt.log import logger
from jetson_rt.runner.config import PrometheusConfig

if TYPE_CHECKING:
    from jetson_rt.runner.service import Runner

# Exported bucket edges in ns: 50 us to 1 s.
EXPORT_EDGES_NS: tuple[int, ...] = (
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_000_000,
    3_000_000,
    5_000_000,
    7_500_000,
    10_000_000,
    15_000_000,
    20_000_000,
    30_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
)


class RunnerCollector:
    """Builds metric families from a :class:`Runner` at each scrape."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        runner = self.runner
        latency = HistogramMetricFamily(
            "jetson_rt_inference_latency_seconds",
            "Host latency of one inference, input to published result",
            labels=["task"],
        )
        inferences = CounterMetricFamily(
            "jetson_rt_inferences", "Completed inferences", labels=["task"]
        )
        misses = CounterMetricFamily(
            "jetson_rt_deadline_misses", "Inferences over the deadline", labels=["task"]
        )
        rejected = CounterMetricFamily(
            "jetson_rt_input_rejected", "Inputs refused for shape or dtype", labels=["task"]
        )
        errors = CounterMetricFamily(
            "jetson_rt_backend_errors", "Inferences whose backend raised", labels=["task"]
        )
        tier = GaugeMetricFamily(
            "jetson_rt_tier", "Active degradation tier (0 = best model)", labels=["task"]
        )
        sla = GaugeMetricFamily(
            "jetson_rt_sla_within_deadline_ratio",
            "Share of inferences within the deadline over the SLA window",
            labels=["task"],
        )
        for task in runner.tasks:
            hist = task.hist["total"]
            buckets = [
                (repr(edge) if edge != float("inf") else "+Inf", count)
                for edge, count in hist.cumulative_buckets(EXPORT_EDGES_NS)
            ]
            latency.add_metric([task.name], buckets, sum_value=hist.sum_ns / 1e9)
            inferences.add_metric([task.name], task.inferences)
            misses.add_metric([task.name], task.deadline_misses)
            rejected.add_metric([task.name], task.source.rejected)
            errors.add_metric([task.name], task.backend_errors)
            tier.add_metric([task.name], task.controller.tier)
            pct = task.sla.compliance_pct(time.perf_counter_ns())
            if pct is not None:
                sla.add_metric([task.name], pct / 100.0)
        yield from (latency, inferences, misses, rejected, errors, tier, sla)
        yield from self._data_path()

        health = runner.health.latest
        temps = GaugeMetricFamily(
            "jetson_rt_temperature_celsius", "Thermal zone temperature", labels=["zone"]
        )
        for zone, value in health.zones.items():
            temps.add_metric([zone], value)
        yield temps
        if health.gpu_clock_ratio is not None:
            yield GaugeMetricFamily(
                "jetson_rt_gpu_clock_ratio",
                "GPU clock over its maximum",
                value=health.gpu_clock_ratio,
            )
        if health.mem_available_mb is not None:
            yield GaugeMetricFamily(
                "jetson_rt_mem_available_bytes",
                "MemAvailable from /proc/meminfo",
                value=health.mem_available_mb * 1024 * 1024,
            )
        yield GaugeMetricFamily(
            "jetson_rt_rt_degraded",
            "1 if a requested real-time setting was not applied",
            value=1.0 if runner.rt.degraded else 0.0,
        )
        yield CounterMetricFamily(
            "jetson_rt_watchdog_timeouts", "Watchdog timeouts", value=runner.watchdog.timeouts
        )

    def _data_path(self) -> Iterator[Any]:
        """Glass-to-result histograms, live input state, result consumers."""
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        glass = HistogramMetricFamily(
            "jetson_rt_glass_to_result_seconds",
            "From a frame's capture time (buffer PTS on CLOCK_MONOTONIC) to a stage: "
            "input filled, inference done, result handed over, result published",
            labels=["task", "stage"],
        )
        for task in self.runner.tasks:
            for stage, label in GLASS_EXPORT:
                hist = task.hist.get(stage)
                if hist is None or hist.count == 0:
                    continue
                buckets = [
                    (repr(edge) if edge != float("inf") else "+Inf", count)
                    for edge, count in hist.cumulative_buckets(EXPORT_EDGES_NS)
                ]
                glass.add_metric([task.name, label], buckets, sum_value=hist.sum_ns / 1e9)
        yield glass
        events = CounterMetricFamily(
            "jetson_rt_input_events",
            "Live input events: frames, frame-number gaps, ends of stream, errors, restarts",
            labels=["task", "event"],
        )
        for task in self.runner.tasks:
            source = task.source
            for event in ("frames", "gaps", "eos", "errors", "stalls", "restarts"):
                value = getattr(source, event, None)
                if isinstance(value, int):
                    events.add_metric([task.name, event], value)
            events.add_metric([task.name, "dropped"], source.dropped)
        yield events
        results = CounterMetricFamily(
            "jetson_rt_results",
            "Results per consumer: delivered, or dropped because the consumer was busy",
            labels=["consumer", "outcome"],
        )
        for consumer in self.runner.hub.consumers:
            results.add_metric([consumer.name, "delivered"], consumer.queue.delivered)
            results.add_metric([consumer.name, "dropped"], consumer.queue.dropped)
        yield results


# Task histogram -> stage label of jetson_rt_glass_to_result_seconds.
GLASS_EXPORT = (
    ("capture_to_input", "input_filled"),
    ("capture_to_done", "inference_done"),
    ("e2e", "result"),
    ("capture_to_published", "published"),
)


class MetricsServer:
    def __init__(self, config: PrometheusConfig, runner: Runner) -> None:
        self.config = config
        self.runner = runner
        self.status = "off" if config.port is None else "not started"
        self.port: int | None = None
        self._server: Any = None

    def start(self) -> None:
        if self.config.port is None:
            return
        try:
            from prometheus_client import CollectorRegistry, start_http_server
        except ImportError:
            self.status = (
                "unavailable: prometheus_client is not installed (pip install 'jetson-rt[metrics]')"
            )
            logger.warning("Prometheus endpoint %s", self.status)
            return
        registry = CollectorRegistry(auto_describe=False)
        registry.register(RunnerCollector(self.runner))
        try:
            started = start_http_server(self.config.port, self.config.address, registry=registry)
        except OSError as exc:
            where = f"{self.config.address}:{self.config.port}"
            self.status = f"unavailable: cannot listen on {where}: {exc.strerror}"
            logger.warning("Prometheus endpoint %s", self.status)
            return
        self._server = started[0] if isinstance(started, tuple) else None
        if self._server is not None:
            self.port = int(self._server.server_port)
        else:
            self.port = self.config.port
        self.status = "serving"
        logger.info("Prometheus metrics on http://%s:%s/metrics", self.config.address, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self.status = "stopped"

    def describe(self) -> dict[str, object]:
        return {"prometheus": self.status, "port": self.port}
