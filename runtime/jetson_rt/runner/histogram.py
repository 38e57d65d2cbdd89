"""A fixed-bucket latency histogram that never stores samples.

Buckets are log-spaced (``BUCKETS_PER_DECADE`` per factor of ten) from 10 ns to
100 s, so a percentile read from the histogram is at most one bucket width
(about 2.3 %) above the true value, whatever the run length. Recording is a
binary search over a constant tuple and three integer updates: no allocation
survives the call, which is what the runner's hot loop needs. ``min``, ``max``,
``count`` and ``sum`` are exact.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Sequence

BUCKETS_PER_DECADE = 100
LOWEST_NS = 10
HIGHEST_NS = 100_000_000_000  # 100 s; slower samples land in the overflow bucket


def _bounds() -> tuple[int, ...]:
    decades = round(math.log10(HIGHEST_NS / LOWEST_NS))
    steps = decades * BUCKETS_PER_DECADE
    bounds: list[int] = []
    for step in range(steps + 1):
        bound = math.ceil(LOWEST_NS * 10 ** (step / BUCKETS_PER_DECADE))
        if not bounds or bound > bounds[-1]:
            bounds.append(bound)
    return tuple(bounds)


# Inclusive upper bound of each bucket, in ns; bucket ``len(BOUNDS_NS)`` is overflow.
BOUNDS_NS: tuple[int, ...] = _bounds()

# Percentiles every summary reports, and the key each gets in JSON.
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p99_9", 99.9),
)


class LatencyHistogram:
    """Counts of latencies (ns) per log-spaced bucket, plus exact min/max/sum."""

    __slots__ = ("_counts", "count", "max_ns", "min_ns", "sum_ns")

    def __init__(self) -> None:
        # array('q'), not list: a count past 256 is stored unboxed, so nothing piles up.
        self._counts = array("q", bytes(8 * (len(BOUNDS_NS) + 1)))
        self.count = 0
        self.sum_ns = 0
        self.min_ns = 0
        self.max_ns = 0

    def record(self, value_ns: int) -> None:
        """Add one sample. Allocation-free apart from transient ints."""
        self._counts[bisect_left(BOUNDS_NS, value_ns)] += 1
        if self.count == 0:
            self.min_ns = value_ns
            self.max_ns = value_ns
        elif value_ns > self.max_ns:
            self.max_ns = value_ns
        elif value_ns < self.min_ns:
            self.min_ns = value_ns
        self.count += 1
        self.sum_ns += value_ns

    def reset(self) -> None:
        self._counts = array("q", bytes(8 * (len(BOUNDS_NS) + 1)))
        self.count = 0
        self.sum_ns = 0
        self.min_ns = 0
        self.max_ns = 0

    def merge(self, other: LatencyHistogram) -> None:
        """Add another histogram's samples to this one."""
        if other.count == 0:
            return
        for index, value in enumerate(other._counts):
            self._counts[index] += value
        if self.count == 0:
            self.min_ns, self.max_ns = other.min_ns, other.max_ns
        else:
            self.min_ns = min(self.min_ns, other.min_ns)
            self.max_ns = max(self.max_ns, other.max_ns)
        self.count += other.count
        self.sum_ns += other.sum_ns

    def counts(self) -> list[int]:
        """A copy of the per-bucket counts (read by another thread: copy first)."""
        return self._counts.tolist()

    def percentile_ns(self, pct: float, counts: Sequence[int] | None = None) -> int:
        """The upper bound of the bucket holding the ``pct`` percentile, clamped to min/max."""
        counts = self._counts if counts is None else counts
        total = sum(counts)
        if total == 0:
            return 0
        rank = max(1, math.ceil(total * pct / 100.0))
        seen = 0
        for index, value in enumerate(counts):
            seen += value
            if seen >= rank:
                bound = BOUNDS_NS[index] if index < len(BOUNDS_NS) else self.max_ns
                return max(self.min_ns, min(bound, self.max_ns))
        return self.max_ns

    def estimate_ns(self, pct: float) -> float:
        """The ``pct`` percentile interpolated inside its bucket (log-uniform), for comparisons.

        :meth:`percentile_ns` is conservative (a bucket's upper bound, up to one
        bucket width high); this estimate is unbiased for smooth distributions,
        so ratios of two histograms are not quantised to whole buckets.
        """
        counts = self.counts()
        total = sum(counts)
        if total == 0:
            return 0.0
        rank = total * pct / 100.0
        seen = 0
        for index, value in enumerate(counts):
            if value and seen + value >= rank:
                if index == 0 or index >= len(BOUNDS_NS):
                    return float(self.percentile_ns(pct, counts))
                low, high = BOUNDS_NS[index - 1], BOUNDS_NS[index]
                fraction = (rank - seen) / value
                estimate = float(low * (high / low) ** fraction)
                return max(float(self.min_ns), min(estimate, float(self.max_ns)))
            seen += value
        return float(self.max_ns)

    def summary_ms(self) -> dict[str, float | int]:
        """count, min, mean, percentiles and max, in milliseconds (JSON-ready).

        One pass over the buckets for every percentile: this runs on the stats
        thread, and its time holding the GIL is time the loop may wait.
        """
        counts = self.counts()
        count = sum(counts)
        summary: dict[str, float | int] = {"count": count}
        if count == 0:
            return summary
        ranks = [(key, max(1, math.ceil(count * pct / 100.0))) for key, pct in PERCENTILES]
        values: dict[str, int] = {}
        seen = 0
        pending = 0
        for index, value in enumerate(counts):
            if not value:
                continue
            seen += value
            while pending < len(ranks) and seen >= ranks[pending][1]:
                bound = BOUNDS_NS[index] if index < len(BOUNDS_NS) else self.max_ns
                values[ranks[pending][0]] = max(self.min_ns, min(bound, self.max_ns))
                pending += 1
            if pending == len(ranks):
                break
        summary["min"] = round(self.min_ns / 1e6, 6)
        summary["mean"] = round(self.sum_ns / max(self.count, 1) / 1e6, 6)
        for key, _ in PERCENTILES:
            summary[key] = round(values.get(key, self.max_ns) / 1e6, 6)
        summary["max"] = round(self.max_ns / 1e6, 6)
        return summary

    def cumulative_buckets(self, edges_ns: Sequence[int]) -> list[tuple[float, int]]:
        """(upper edge in seconds, cumulative count) for coarser, Prometheus-style buckets.

        Each fine bucket is attributed to the first coarse edge at or above its
        upper bound, so cumulative counts are exact at every edge that coincides
        with a fine bound and conservative elsewhere.
        """
        counts = self.counts()
        result: list[tuple[float, int]] = []
        cumulative = 0
        index = 0
        for edge in edges_ns:
            while index < len(BOUNDS_NS) and BOUNDS_NS[index] <= edge:
                cumulative += counts[index]
                index += 1
            result.append((edge / 1e9, cumulative))
        result.append((math.inf, sum(counts)))
        return result
