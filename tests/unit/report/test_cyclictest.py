from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jetson_rt.errors import ReportError
from jetson_rt.report.cyclictest import (
    CyclictestParseError,
    ThreadLatency,
    parse_cmdline,
    parse_file,
    parse_json,
    parse_text,
)

FIXTURES = Path(__file__).parent / "fixtures" / "cyclictest"


def fixture(name: str) -> Path:
    return FIXTURES / name


# --------------------------------------------------------------------------- real output


def test_real_json_with_histogram_matches_file() -> None:
    raw = json.loads(fixture("rt-tests-2.40-p90-h400.json").read_text())
    result = parse_file(fixture("rt-tests-2.40-p90-h400.json"))
    assert result.source == "json"
    assert result.version == "2.40"
    assert result.histogram_limit_us == 400
    assert result.interval_us == 200
    assert result.priority == 90
    assert result.kernel_realtime is False
    assert result.notes == ()
    assert len(result.threads) == raw["num_threads"]
    for thread in result.threads:
        source = raw["thread"][str(thread.index)]
        assert thread.cpu == source["cpu"]
        assert thread.cycles == source["cycles"]
        assert thread.max_us == source["max"]
        assert thread.avg_us == pytest.approx(source["avg"])
        assert int(thread.counts.sum()) == sum(source["histogram"].values())
        # JSON has no overflow count: it is what the histogram does not hold.
        assert thread.overflows == source["cycles"] - sum(source["histogram"].values())
        assert list(thread.buckets) == sorted(int(k) for k in source["histogram"])


def test_real_json_and_text_of_the_same_run_agree() -> None:
    from_json = parse_file(fixture("rt-tests-2.40-p90-h400.json"))
    from_text = parse_file(fixture("rt-tests-2.40-p90-h400.txt"))
    assert from_text.source == "text"
    assert from_text.histogram_limit_us == 400
    assert len(from_json.threads) == len(from_text.threads)
    for a, b in zip(from_json.threads, from_text.threads, strict=True):
        assert a.cycles == b.cycles
        assert a.overflows == b.overflows
        assert a.max_us == b.max_us
        assert a.min_us == b.min_us
        np.testing.assert_array_equal(a.buckets, b.buckets)
        np.testing.assert_array_equal(a.counts, b.counts)
        assert a.percentile(0.999) == b.percentile(0.999)
    # The text lists the cycle numbers of the first overflows.
    assert len(from_text.threads[0].overflow_cycles) == from_text.threads[0].overflows


def test_real_json_without_histogram() -> None:
    result = parse_file(fixture("rt-tests-2.40-p0-nohist.json"))
    assert result.histogram_limit_us is None
    assert result.priority == 0
    assert not result.has_histograms
    assert result.overflows is None
    for thread in result.threads:
        assert thread.overflows is None
        assert thread.percentile(0.999) is None
        assert thread.max_us is not None


def test_real_json_with_many_overflows() -> None:
    result = parse_file(fixture("rt-tests-2.40-many-overflows.json"))
    (thread,) = result.threads
    assert result.histogram_limit_us == 10
    assert thread.cpu == 1
    assert thread.overflows == thread.cycles - int(thread.counts.sum())
    assert thread.overflows > 0.001 * thread.cycles
    p999 = thread.percentile(0.999)
    assert p999 is not None
    assert p999.in_overflow
    assert p999.value_us == thread.max_us


def test_real_quiet_text_without_histogram() -> None:
    result = parse_file(fixture("rt-tests-2.40-noprio-quiet.txt"))
    assert [t.index for t in result.threads] == [0, 1]
    assert result.priority == 0
    assert not result.has_histograms
    first = result.threads[0]
    assert first.cycles > 0
    assert first.max_us is not None and first.min_us is not None
    assert first.max_us >= first.min_us
    assert first.cpu is None
    assert first.label == "thread 0"


def test_real_non_quiet_text_takes_the_last_update() -> None:
    text = fixture("rt-tests-2.40-nonquiet.txt").read_text()
    assert "\x1b[" in text  # the screen-update escapes are really there
    result = parse_text(text)
    last_lines = [line for line in text.splitlines() if line.lstrip("\x1b[0-9A").startswith("T:")]
    assert last_lines
    for thread in result.threads:
        assert thread.cycles > 0
        # The initial "Min: 1000000" placeholder never survives.
        assert thread.min_us is not None and thread.min_us < 1000


def test_real_histofall_output_drops_the_sum_column() -> None:
    result = parse_file(fixture("rt-tests-2.40-histofall-overflow.txt"))
    assert len(result.threads) == 2
    assert result.histogram_limit_us == 30
    for thread in result.threads:
        assert thread.overflows is not None and thread.overflows > 0
        assert thread.cycles == int(thread.counts.sum()) + thread.overflows
        # "# 00020 others": only the listed cycle numbers are kept.
        assert 0 < len(thread.overflow_cycles) < thread.overflows


# --------------------------------------------------------------------------- hand-made variants


def test_rt_tests_1x_key_names_without_colons() -> None:
    result = parse_file(fixture("variant-rt-tests-1.x-keys.json"))
    assert result.cmdline is not None and result.cmdline.startswith("cyclictest")
    assert result.version == "1.1"
    assert result.histogram_limit_us == 100  # "--histogram 100"
    assert result.interval_us == 1000  # "-i 1000"
    assert result.return_code is None
    assert [t.cpu for t in result.threads] == [4, 5]
    # "0017" and "17" are the same bucket.
    assert 17 in result.threads[1].buckets.tolist()
    assert all(t.overflows == 0 for t in result.threads)


def test_missing_and_malformed_fields_are_noted_not_fatal() -> None:
    result = parse_file(fixture("variant-missing-fields.json"))
    assert [t.index for t in result.threads] == [0, 1]
    first, second = result.threads
    assert first.cycles == 49998  # no "cycles": the histogram's sum
    assert first.overflows == 0
    assert first.avg_us is None and first.cpu is None
    assert second.buckets.tolist() == [5, 7]
    assert second.counts.tolist() == [12, 2]
    assert second.overflows == 6  # 20 cycles, 14 in range
    notes = " ".join(result.notes)
    assert "thread 2: not an object" in notes
    assert "'three' is not a number" in notes
    # Unreadable or negative buckets are not notes: the histogram cannot back a verdict.
    problems = " ".join(result.problems)
    assert "2 histogram bucket(s) unreadable" in problems
    assert "1 negative histogram bucket(s)" in problems
    assert "unreadable" not in notes


def test_nan_average_and_empty_thread() -> None:
    result = parse_file(fixture("variant-nan-avg.json"))
    assert result.return_code == 1
    busy, idle = result.threads
    assert busy.avg_us == pytest.approx(4.23)
    assert idle.cycles == 0
    assert idle.avg_us is None and idle.min_us is None and idle.max_us is None
    assert idle.percentile(0.999) is None


def test_future_file_version_and_thread_list() -> None:
    result = parse_file(fixture("variant-file-version-2-thread-list.json"))
    assert any("file_version 2" in note for note in result.notes)
    assert any("beyond the -h400 limit" in problem for problem in result.problems)
    assert result.histogram_limit_us == 400  # --histogram=400
    assert result.priority == 90  # --priority=90
    pairs, dense = result.threads
    assert pairs.buckets.tolist() == [5, 6, 401]
    assert pairs.overflows == 1000 - 996  # bucket 401 is in the file, so in range
    assert dense.buckets.tolist() == [5, 6]
    assert dense.overflows == 2


def test_truncated_json_is_an_error_that_says_so() -> None:
    with pytest.raises(CyclictestParseError, match="truncated or corrupt") as info:
        parse_file(fixture("variant-truncated.json"))
    assert isinstance(info.value, ReportError)
    assert "variant-truncated.json" in str(info.value)


def test_histogram_without_samples_parses_with_zero_cycles() -> None:
    result = parse_file(fixture("variant-truncated-histogram.txt"))
    assert len(result.threads) == 2
    assert all(t.cycles == 0 and t.max_us is None for t in result.threads)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("   \n", "empty file"),
        ("[1, 2, 3]", "no cyclictest thread"),
        ('{"thread": {}}', "no measurement thread"),
        ('{"thread": {"0": 5}}', "no measurement thread"),
        ("Segmentation fault\n", "no cyclictest thread"),
    ],
)
def test_unusable_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "cyclictest.out"
    path.write_text(content)
    with pytest.raises(CyclictestParseError, match=message):
        parse_file(path)


def test_json_array_is_rejected() -> None:
    with pytest.raises(CyclictestParseError, match="expected a JSON object"):
        parse_json("[1, 2]")


def test_guide_style_line_without_pid() -> None:
    result = parse_text("T: 0 Min: 3 Act: 5 Avg: 5 Max: 18\n")
    (thread,) = result.threads
    assert (thread.min_us, thread.avg_us, thread.max_us) == (3.0, 5.0, 18.0)


def test_brief_style_line() -> None:
    result = parse_text("T: 0 ( 1234) P:99 I:1000 C: 10000 Min: 3 Act: 5 Avg: 5 Max: 18\n")
    (thread,) = result.threads
    assert thread.cycles == 10000
    assert result.priority == 99 and result.interval_us == 1000


# --------------------------------------------------------------------------- percentiles


def make_thread(
    counts: dict[int, int], overflows: int = 0, max_us: float | None = None
) -> ThreadLatency:
    buckets = np.array(sorted(counts), dtype=np.int64)
    values = np.array([counts[b] for b in sorted(counts)], dtype=np.int64)
    total = int(values.sum()) + overflows
    return ThreadLatency(
        index=0,
        cpu=4,
        cycles=total,
        min_us=float(buckets[0]),
        avg_us=None,
        max_us=max_us if max_us is not None else float(buckets[-1]),
        buckets=buckets,
        counts=values,
        overflows=overflows,
    )


def test_percentile_nearest_rank() -> None:
    # 1000 samples: 990 at 5 us, 9 at 20 us, 1 at 90 us.
    thread = make_thread({5: 990, 20: 9, 90: 1})
    assert thread.percentile(0.99).value_us == 5  # rank 990
    assert thread.percentile(0.995).value_us == 20  # rank 995
    assert thread.percentile(0.999).value_us == 20  # rank 999
    assert thread.percentile(1.0).value_us == 90  # rank 1000
    assert not thread.percentile(0.999).in_overflow


def test_percentile_in_overflow_is_the_maximum() -> None:
    # 1000 samples: 998 in range, 2 beyond -h400, the worst at 731 us.
    thread = make_thread({5: 998}, overflows=2, max_us=731)
    p999 = thread.percentile(0.999)
    assert p999 is not None
    assert p999.in_overflow and p999.value_us == 731
    assert thread.percentile(0.998) is not None
    assert thread.percentile(0.998).value_us == 5


@pytest.mark.parametrize(
    ("cmdline", "limit", "interval", "priority"),
    [
        ("cyclictest -m -p90 -i200 -h400 -q", 400, 200, 90),
        ("cyclictest -m -p 80 -i 500 -h 100", 100, 500, 80),
        ("cyclictest --priority=99 --interval=1000 --histofall=50", 50, 1000, 99),
        ("cyclictest -m -Sp90 -i200 -H400", 400, 200, None),
        ("cyclictest 'unbalanced", None, None, None),
        (None, None, None, None),
    ],
)
def test_parse_cmdline(
    cmdline: str | None, limit: int | None, interval: int | None, priority: int | None
) -> None:
    options = parse_cmdline(cmdline)
    assert options.histogram_limit_us == limit
    assert options.interval_us == interval
    assert options.priority == priority


def test_absurd_counts_are_skipped_and_a_problem() -> None:
    result = parse_json('{"thread": {"0": {"histogram": {"5": 10, "6": 1' + "0" * 30 + "}}}}")
    (thread,) = result.threads
    assert thread.buckets.tolist() == [5]
    assert any("unreadable" in problem for problem in result.problems)


def test_unpinned_thread_and_max_without_cycles() -> None:
    result = parse_json('{"thread": {"0": {"max": 41, "avg": 7.5, "cpu": -1}}}')
    (thread,) = result.threads
    assert thread.cpu is None and thread.label == "thread 0"
    assert thread.max_us == 41 and thread.avg_us == 7.5  # kept: no count says "no sample"


@pytest.mark.parametrize(
    ("cmdline", "cpus"),
    [
        ("cyclictest -m -p90 -h400 -q -a4-5 -t2", [4, 5]),
        ("cyclictest -m -p90 -h400 -q --affinity=0,2,4-5 -t2", [0, 2]),
        ("cyclictest -m -p90 -h400 -q -a -t2", [0, 1]),  # thread N on CPU N
        ("cyclictest -m -p90 -h400 -q -a3 -t2", [3, 3]),  # round-robin over the set
        ("cyclictest -m -p90 -h400 -q -t2", [None, None]),  # not pinned
        ("cyclictest -m -a!1 -t2", [None, None]),  # a mask this parser does not read
    ],
)
def test_text_threads_get_cpus_from_the_command_line(cmdline: str, cpus: list[int | None]) -> None:
    from jetson_rt.report.cyclictest import with_cmdline

    text = parse_file(fixture("rt-tests-2.40-p90-h400.txt"))
    result = with_cmdline(text, cmdline)
    assert [t.cpu for t in result.threads] == cpus
    assert result.cmdline == cmdline
    assert result.priority == 90 or "-p90" not in cmdline
    assert result.threads[0].counts.tolist() == text.threads[0].counts.tolist()


def test_numbers_in_a_file_never_size_an_allocation() -> None:
    """A bucket at 10^12 us, a thread index of 10^12, a CPU range of 10^9 CPUs and 10^6
    threads cost what small ones cost: a bound or a parse error, never a huge array."""
    result = parse_json(
        '{"cmdline:": "cyclictest -S -h400 -a0-999999999", "thread": {"1000000000000": '
        '{"histogram": {"5": 1, "1000000000000": 1}, "cycles": 2, "min": 5, "max": 9}}}'
    )
    (thread,) = result.threads
    assert thread.buckets.tolist() == [5]  # the absurd bucket is dropped, and named
    assert any("beyond any possible latency" in p for p in result.problems)
    with pytest.raises(CyclictestParseError, match="cyclictest runs one per CPU"):
        parse_json('{"thread": [' + ",".join(["{}"] * 100_000) + "]}")
    with pytest.raises(CyclictestParseError, match="one thread per CPU"):
        parse_text("T: 999999999999 ( 1) P:90 I:200 C: 5 Min: 1 Act: 1 Avg: 1 Max: 2\n")
    with pytest.raises(CyclictestParseError, match="too long to be a count"):
        parse_text("# Histogram\n000001 " + "9" * 30 + "\n")
    assert parse_cmdline("taskset -c 0-999999999 cyclictest -S").affinity == ()


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("rt-tests-*")), ids=str)
def test_real_cyclictest_output_has_no_contradictions(name: str) -> None:
    """Captures of rt-tests 2.40 (quiet, non-quiet, -H, heavy overflows, no histogram):
    the consistency rules hold for what cyclictest really writes."""
    result = parse_file(FIXTURES / name)
    assert result.problems == ()
