"""The JSON stats file, the periodic summary line, and the thread that writes both.

The file is rewritten atomically (a temporary file in the same folder, fsync,
``os.replace``) every ``stats.interval_s`` and once more on exit, so a reader
(the validation report, ``jq``, an Ansible check) never sees a torn file. Its
schema is versioned by ``schema_version`` and documented in ``docs/runner.md``.
Everything here runs off the real-time thread: it reads the loop's counters and
histograms (plain integers, consistent enough under the GIL) and formats them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from jetson_rt.atomic import atomic_write_text
from jetson_rt.errors import ReportError
from jetson_rt.log import logger
from jetson_rt.runner.loop import STAGES, Task

# Stages every task reports, even at count 0 (the glass-to-result ones need a live
# source, the published ones a publisher).
CORE_STAGES = frozenset(STAGES) - {"e2e"}

STATS_SCHEMA_VERSION = 1


def write_atomic(path: Path, data: Mapping[str, object]) -> None:
    """Write ``data`` as JSON to ``path`` so readers see the old or the new file, whole."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_stats(path: Path) -> dict[str, object]:
    """Load a stats file and check its schema version (for reports and tests)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read runner stats {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema_version") != STATS_SCHEMA_VERSION:
        raise ReportError(
            f"{path} is not a runner stats file of schema_version {STATS_SCHEMA_VERSION}"
        )
    return data


def task_snapshot(task: Task, now_ns: int) -> dict[str, object]:
    controller = task.controller
    tier_names = [tier.name for tier in task.tiers]
    if controller.emergency_tier >= 0:
        tier_names.append("emergency")
    total, within = task.sla.window(now_ns)
    pct = 100.0 * within / total if total else None
    latency: dict[str, object] = {}
    for stage, hist in task.hist.items():
        if stage not in CORE_STAGES and hist.count == 0:
            continue  # live-source and publishing stages of a task without them
        latency[stage] = hist.summary_ms()
    return {
        "name": task.name,
        "priority": task.priority,
        "deadline_ms": task.config.deadline_ms,
        "period_ms": task.config.period_ms,
        "tier": {
            "index": controller.tier,
            "name": task.tier_name,
            "floor": controller.floor,
            "changes": controller.changes,
            "emergency": controller.in_emergency,
            "ladder": tier_names,
        },
        "counts": {
            "inferences": task.inferences,
            "deadline_misses": task.deadline_misses,
            "input_rejected": task.source.rejected,
            "frames_dropped": task.source.dropped,
            "backend_errors": task.backend_errors,
            "emergency_results": task.emergency_results,
            "period_overruns": task.overruns,
            "per_tier": dict(zip(tier_names, task.tier_counts, strict=False)),
        },
        "sla": {
            "window_s": task.sla.window_s,
            "target_pct": task.sla.target_pct,
            "window_inferences": total,
            "within_deadline_pct": None if pct is None else round(pct, 4),
            "compliant": task.sla.compliant(now_ns),
        },
        "latency_ms": latency,
        "stage_clock": {tier.name: dict(tier.stage_clock) for tier in task.tiers},
        "warmup": {
            tier.name: tier.warmup.to_dict() if tier.warmup is not None else None
            for tier in task.tiers
        },
        "devices": {tier.name: tier.device for tier in task.tiers},
        "input": task.source.describe(),
    }


# Runner stage -> Appendix B row name the validation report matches.
BUDGET_STAGES = (
    ("pre", "preprocess"),
    ("h2d", "h2d"),
    ("infer", "infer"),
    ("d2h", "d2h"),
    ("post", "postprocess"),
    ("total", "total"),
)


# With a live source, the rows measured from the frame's capture time: camera capture
# is capture to input filled (the frame's age when the loop took it, plus the fill),
# application logic is the result's trip to the subscriber (inference done to
# published), and the total is glass to result: capture to published, or to the
# result handed over when nothing publishes.
GLASS_ROWS = (
    ("capture_to_input", "capture"),
    ("result_to_published", "app"),
)
GLASS_TOTALS = ("capture_to_published", "e2e")


def budget_summary(task: Task) -> dict[str, object]:
    """The guide's Appendix B figures of one task, in the validation report's layout.

    ``stages`` maps a row name to p50/p99/max in ms; ``frames``, ``deadline_misses``
    and ``deadline_ms`` let the report answer "Meets SLA?". ``total_from`` says
    which histogram the total row is (``capture_to_published`` on a live,
    published task: glass to result).
    """
    stages: dict[str, dict[str, float | int]] = {}
    live = task.hist["e2e"].count > 0
    glass_total = next(
        (name for name in GLASS_TOTALS if name in task.hist and task.hist[name].count), "total"
    )
    rows = [*BUDGET_STAGES]
    if live:
        rows = [row for row in rows if row[1] != "total"]
        rows += [(stage, row) for stage, row in GLASS_ROWS if stage in task.hist]
        rows.append((glass_total, "total"))
    for stage, row in rows:
        hist = task.hist[stage]
        if hist.count == 0:
            continue
        counts = hist.counts()
        stages[row] = {
            "p50_ms": round(hist.percentile_ns(50, counts) / 1e6, 6),
            "p99_ms": round(hist.percentile_ns(99, counts) / 1e6, 6),
            "max_ms": round(hist.max_ns / 1e6, 6),
            "count": sum(counts),
        }
    return {
        "task": task.name,
        "total_from": glass_total if live else "total",
        "stages": stages,
        "frames": task.inferences,
        "deadline_misses": task.deadline_misses,
        "deadline_ms": task.config.deadline_ms,
    }


def summary_line(task: Task) -> str:
    """``detect tier=det p50=4.1 p99=5.0 max=7.2 ms n=1200 miss=0 rej=0``."""
    total = task.hist["total"]
    return (
        f"{task.name} tier={task.tier_name} "
        f"p50={total.percentile_ns(50) / 1e6:.3f} p99={total.percentile_ns(99) / 1e6:.3f} "
        f"max={total.max_ns / 1e6:.3f} ms n={task.inferences} "
        f"miss={task.deadline_misses} rej={task.source.rejected} err={task.backend_errors}"
    )


class StatsReporter:
    """Background thread: drains loop events, writes the stats file, logs the summary."""

    def __init__(
        self,
        *,
        interval_s: float,
        summary_interval_s: float,
        write: Callable[[], None],
        summary: Callable[[], str],
        drain_events: Callable[[], None],
        status: Callable[[str], object] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self.summary_interval_s = summary_interval_s
        self._write = write
        self._summary = summary
        self._drain = drain_events
        self._status = status
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.writes = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="jetson-rt-stats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        period = min(self.interval_s, self.summary_interval_s or self.interval_s, 1.0)
        since_write = since_summary = 0.0
        while not self._stop.wait(period):
            since_write += period
            since_summary += period
            try:
                self._drain()
                if since_write >= self.interval_s:
                    since_write = 0.0
                    self._write()
                    self.writes += 1
                if self.summary_interval_s and since_summary >= self.summary_interval_s:
                    since_summary = 0.0
                    line = self._summary()
                    logger.info("%s", line)
                    if self._status is not None:
                        self._status(line)
            except Exception:
                logger.exception("stats reporting failed")
