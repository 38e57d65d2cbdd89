"""``jetson-rt bench``: trtexec-style latency of one model through one backend.

Per inference it records, like trtexec's report:

- ``enqueue``: host time to queue ``stage_in``, ``execute`` and ``stage_out``;
- ``h2d``, ``compute``, ``d2h``: the backend's own stage times (CUDA events on
  GPU backends; on CPU backends ``compute`` is the synchronous run and the
  copies are zero);
- ``host_latency``: from the start of ``stage_in`` to the end of ``synchronize``.

Each gets min, max, mean, median, p90, p95, p99 and p99.9 from the exact
samples (a benchmark may keep them; the runner's loop may not). ``--graph both``
runs the model twice, CUDA graph replay on and off, where the backend has that
option; ``--idle-ms`` sleeps between inferences to emulate a frame rate (and
expose clock ramp-down, guide section 17.5).
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jetson_rt import __version__
from jetson_rt.backends import backend_class, create_backend
from jetson_rt.backends.base import Backend
from jetson_rt.errors import ConfigError
from jetson_rt.runner.sources import synthetic_array

METRICS = ("enqueue", "h2d", "compute", "d2h", "host_latency")
# Option names a backend may use to switch CUDA graph replay.
GRAPH_OPTIONS = ("use_cuda_graph", "cuda_graph")
_PERCENTILES = (("median", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p99_9", 99.9))


@dataclass(frozen=True)
class BenchSettings:
    iterations: int = 1000
    warmup: int = 100
    duration_s: float | None = None
    idle_ms: float = 0.0
    graph: str = "default"  # default | on | off | both
    seed: int = 0

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ConfigError("--iterations must be at least 1")
        if self.warmup < 0:
            raise ConfigError("--warmup must not be negative")
        if self.idle_ms < 0:
            raise ConfigError("--idle-ms must not be negative")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ConfigError("--duration must be positive")


def describe(samples_ms: np.ndarray) -> dict[str, float] | None:
    """min/max/mean/percentiles of finite samples; None if the stage is not measured."""
    finite = samples_ms[np.isfinite(samples_ms)]
    if finite.size == 0:
        return None
    result = {"min": float(finite.min()), "max": float(finite.max()), "mean": float(finite.mean())}
    for key, pct in _PERCENTILES:
        result[key] = float(np.percentile(finite, pct))
    return {key: round(value, 6) for key, value in result.items()}


def bench_backend(backend: Backend, settings: BenchSettings) -> dict[str, object]:
    """Time an active backend; inputs are seeded random data written once."""
    rng = np.random.default_rng(settings.seed)
    host_in = backend.host_inputs()
    for spec in backend.inputs:
        np.copyto(host_in[spec.name], synthetic_array(spec, rng))
    for _ in range(settings.warmup):
        backend.stage_in()
        backend.execute()
        backend.stage_out()
        backend.synchronize()
    samples = {metric: np.full(settings.iterations, math.nan) for metric in METRICS}
    enqueue, h2d, compute, d2h, host = (samples[metric] for metric in METRICS)
    idle_s = settings.idle_ms / 1e3
    clock = time.perf_counter_ns
    deadline = clock() + int(settings.duration_s * 1e9) if settings.duration_s else 0
    done = 0
    wall_start = clock()
    for index in range(settings.iterations):
        t0 = clock()
        backend.stage_in()
        backend.execute()
        backend.stage_out()
        t1 = clock()
        backend.synchronize()
        t2 = clock()
        times = backend.stage_times_ms()
        enqueue[index] = (t1 - t0) / 1e6
        host[index] = (t2 - t0) / 1e6
        h2d[index] = times["h2d"]
        compute[index] = times["infer"]
        d2h[index] = times["d2h"]
        done = index + 1
        if deadline and t2 >= deadline:
            break
        if idle_s:
            time.sleep(idle_s)
    wall_s = (clock() - wall_start) / 1e9
    return {
        "iterations": done,
        "wall_s": round(wall_s, 6),
        "throughput_qps": round(done / wall_s, 3) if wall_s > 0 else None,
        "idle_ms": settings.idle_ms,
        "latency_ms": {metric: describe(samples[metric][:done]) for metric in METRICS},
    }


def graph_option(backend_name: str) -> str | None:
    """The backend's keyword for CUDA graph replay, if it has one."""
    params = inspect.signature(backend_class(backend_name).__init__).parameters
    return next((name for name in GRAPH_OPTIONS if name in params), None)


def run_bench(
    backend_name: str,
    model_path: Path,
    options: dict[str, object],
    settings: BenchSettings,
) -> dict[str, object]:
    """Benchmark ``model_path``; one run per graph variant asked for."""
    option = graph_option(backend_name)
    variants: list[tuple[str, bool | None]]
    if settings.graph == "default":
        variants = [("default", None)]
    elif settings.graph == "both":
        variants = [("graph_on", True), ("graph_off", False)] if option else [("default", None)]
    else:
        if option is None:
            raise ConfigError(
                f"backend {backend_name!r} has no CUDA graph option; use --graph default"
            )
        variants = [(f"graph_{settings.graph}", settings.graph == "on")]
    runs: dict[str, object] = {}
    for label, graph in variants:
        run_options = dict(options)
        if graph is not None and option is not None:
            run_options[option] = graph
        with create_backend(backend_name, model_path, **run_options) as backend:
            result = bench_backend(backend, settings)
            result["inputs"] = {spec.name: list(spec.shape) for spec in backend.inputs}
            result["outputs"] = {spec.name: list(spec.shape) for spec in backend.outputs}
        runs[label] = result
    report: dict[str, object] = {
        "tool": "jetson-rt bench",
        "version": __version__,
        "backend": backend_name,
        "model": str(model_path),
        "options": {key: repr(value) for key, value in options.items()},
        "warmup": settings.warmup,
        "graph": settings.graph if option else "unsupported by this backend",
        "runs": runs,
    }
    if "graph_on" in runs and "graph_off" in runs:
        report["graph_enqueue_ratio"] = _ratio(runs, "enqueue")
        report["graph_host_latency_ratio"] = _ratio(runs, "host_latency")
    return report


def _ratio(runs: dict[str, object], metric: str) -> float | None:
    def median(label: str) -> float | None:
        run = runs[label]
        assert isinstance(run, dict)
        stats = run["latency_ms"][metric]
        return None if stats is None else float(stats["median"])

    on, off = median("graph_on"), median("graph_off")
    if on is None or not off:
        return None
    return round(on / off, 4)


def format_table(report: dict[str, object]) -> str:
    """A trtexec-like text summary of :func:`run_bench`'s report."""
    lines = [f"{report['backend']} {report['model']}"]
    runs = report["runs"]
    assert isinstance(runs, dict)
    for label, run in runs.items():
        lines.append(
            f"[{label}] {run['iterations']} iterations, {run['throughput_qps']} qps, "
            f"idle {run['idle_ms']} ms"
        )
        lines.append(
            f"  {'ms':<13}{'min':>9}{'mean':>9}{'median':>9}{'p90':>9}{'p95':>9}"
            f"{'p99':>9}{'p99.9':>9}{'max':>9}"
        )
        for metric in METRICS:
            stats = run["latency_ms"][metric]
            if stats is None:
                lines.append(f"  {metric:<13}{'n/a':>9}")
                continue
            values = "".join(
                f"{stats[key]:>9.4f}"
                for key in ("min", "mean", "median", "p90", "p95", "p99", "p99_9", "max")
            )
            lines.append(f"  {metric:<13}{values}")
    for key in ("graph_enqueue_ratio", "graph_host_latency_ratio"):
        if key in report:
            lines.append(f"{key}: {report[key]}")
    return "\n".join(lines)
