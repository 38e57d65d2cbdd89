"""The fixed-bucket histogram: percentiles within one bucket, exact extremes, no allocation."""

from __future__ import annotations

import gc
import math
import tracemalloc

import numpy as np
import pytest

from jetson_rt.runner.histogram import BOUNDS_NS, BUCKETS_PER_DECADE, LatencyHistogram

# One bucket is a factor 10 ** (1 / BUCKETS_PER_DECADE) wide: about 2.3 %.
BUCKET_RATIO = 10 ** (1 / BUCKETS_PER_DECADE)


def test_bounds_are_log_spaced_and_increasing() -> None:
    assert BOUNDS_NS[0] == 10
    assert BOUNDS_NS[-1] == 100_000_000_000
    ratios = np.array(BOUNDS_NS[1:]) / np.array(BOUNDS_NS[:-1])
    assert (ratios > 1).all()
    # Away from the integer rounding at the bottom, the spacing is exactly log-uniform.
    upper = ratios[np.array(BOUNDS_NS[:-1]) > 100_000]
    assert np.allclose(upper, BUCKET_RATIO, rtol=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_percentiles_are_within_one_bucket_of_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # A latency-like distribution: log-normal around 4 ms with a heavy tail.
    samples = (rng.lognormal(mean=np.log(4e6), sigma=0.4, size=20_000)).astype(np.int64)
    hist = LatencyHistogram()
    for value in samples.tolist():
        hist.record(value)
    assert hist.count == samples.size
    assert hist.min_ns == samples.min()
    assert hist.max_ns == samples.max()
    assert hist.sum_ns == samples.sum()
    ordered = np.sort(samples)
    for pct in (50.0, 90.0, 95.0, 99.0, 99.9):
        # Nearest-rank percentile: the smallest sample with at least pct % at or below it.
        exact = float(ordered[math.ceil(samples.size * pct / 100) - 1])
        estimate = hist.percentile_ns(pct)
        # Reported value is the bucket's upper bound: never below, at most one bucket above.
        assert exact <= estimate <= exact * BUCKET_RATIO * 1.001, pct


def test_summary_and_empty_histogram() -> None:
    hist = LatencyHistogram()
    assert hist.summary_ms() == {"count": 0}
    assert hist.percentile_ns(99) == 0
    for value in (1_000_000, 2_000_000, 3_000_000):
        hist.record(value)
    summary = hist.summary_ms()
    assert summary["count"] == 3
    assert summary["min"] == 1.0
    assert summary["max"] == 3.0
    assert summary["mean"] == 2.0
    assert 2.0 <= float(summary["p50"]) <= 2.0 * BUCKET_RATIO
    assert summary["p99_9"] == 3.0  # clamped to the exact maximum


def test_merge_and_reset() -> None:
    left, right = LatencyHistogram(), LatencyHistogram()
    for value in range(1000, 2000):
        left.record(value)
    for value in range(50_000, 51_000):
        right.record(value)
    left.merge(right)
    assert left.count == 2000
    assert left.min_ns == 1000
    assert left.max_ns == 50_999
    left.reset()
    assert left.count == 0
    assert sum(left.counts()) == 0


def test_overflow_and_zero_samples() -> None:
    hist = LatencyHistogram()
    hist.record(0)
    hist.record(10**12)  # 1000 s, past the last bound
    assert hist.counts()[0] == 1
    assert hist.counts()[-1] == 1
    assert hist.percentile_ns(100) == 10**12


def test_cumulative_buckets_for_export() -> None:
    hist = LatencyHistogram()
    for value in (400_000, 900_000, 1_500_000, 40_000_000):
        hist.record(value)
    buckets = dict(hist.cumulative_buckets((500_000, 1_000_000, 2_000_000, 10_000_000)))
    assert buckets == {0.0005: 1, 0.001: 2, 0.002: 3, 0.01: 3, float("inf"): 4}


def test_record_leaves_no_allocation_behind() -> None:
    hist = LatencyHistogram()
    values = list(range(1_000, 10_000_000, 997))
    gc.collect()
    # Trace from before the first pass, so that objects replaced later were traced too.
    tracemalloc.start()
    try:
        for value in values:
            hist.record(value)
        before = tracemalloc.take_snapshot()
        for value in values:
            hist.record(value)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diff = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "filename")
    growth = sum(stat.size_diff for stat in diff)
    assert growth <= 0, [str(stat) for stat in diff[:5]]


def test_interpolated_estimate_is_close_to_the_exact_percentile() -> None:
    rng = np.random.default_rng(5)
    samples = rng.normal(50_000, 3_000, size=50_000).astype(np.int64)
    hist = LatencyHistogram()
    for value in samples.tolist():
        hist.record(value)
    ordered = np.sort(samples)
    for pct in (10.0, 50.0, 90.0, 99.0):
        exact = float(ordered[math.ceil(samples.size * pct / 100) - 1])
        # Well inside one bucket width (2.3 %), unlike the conservative upper bound.
        assert abs(hist.estimate_ns(pct) - exact) / exact < 0.004, pct
    assert LatencyHistogram().estimate_ns(50) == 0.0


def test_summary_percentiles_match_single_percentile_queries() -> None:
    rng = np.random.default_rng(11)
    hist = LatencyHistogram()
    for value in rng.lognormal(np.log(2e6), 0.6, size=5000).astype(np.int64).tolist():
        hist.record(value)
    summary = hist.summary_ms()
    for key, pct in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("p99_9", 99.9)):
        assert summary[key] == round(hist.percentile_ns(pct) / 1e6, 6), key
