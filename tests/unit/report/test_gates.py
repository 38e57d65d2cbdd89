from __future__ import annotations

from pathlib import Path

import pytest

from jetson_rt.errors import ReportError
from jetson_rt.report.cyclictest import parse_file
from jetson_rt.report.gates import (
    DEFAULT_GATES,
    Gate,
    LatencySummary,
    effective_gate,
    evaluate,
    gate_from_mapping,
    gates_from_run,
    summarise,
)

FIXTURES = Path(__file__).parent / "fixtures" / "cyclictest"


def summary(**values: float | int | bool | None) -> LatencySummary:
    base: dict[str, object] = {
        "max_us": 20.0,
        "max_cpu": "CPU 4",
        "avg_us": 5.0,
        "p99_9_us": 12.0,
        "p99_9_in_overflow": False,
        "overflows": 0,
        "cycles": 1000,
    }
    base.update(values)
    return LatencySummary(**base)  # type: ignore[arg-type]


def test_strictest_limit_per_figure_across_groups() -> None:
    gates = {
        "all": DEFAULT_GATES["all"],
        "line_a": Gate(max_us=40, avg_us=None, p99_9_us=30, max_overflows=2),
        "orin_nano": Gate(max_us=60, avg_us=8, p99_9_us=None, max_overflows=None),
    }
    chosen = effective_gate(["line_a", "orin_nano", "no_gate_here"], gates)
    assert chosen.sources == ("line_a", "orin_nano")
    assert chosen.gate.max_us == 40
    assert chosen.gate.avg_us == 8
    assert chosen.gate.p99_9_us == 30
    assert chosen.gate.max_overflows == 2


def test_all_applies_only_when_no_group_has_a_gate() -> None:
    gates = dict(DEFAULT_GATES)
    assert effective_gate(["line_b"], gates).sources == ("all",)
    assert effective_gate([], gates).gate.max_us == DEFAULT_GATES["all"].max_us
    gates["line_b"] = Gate(max_us=200)
    chosen = effective_gate(["line_b"], gates)
    assert chosen.sources == ("line_b",)
    assert chosen.gate.max_us == 200  # looser than "all", and that is the group's choice


def test_sim_gate_is_exclusive_and_explains_itself() -> None:
    gates = {**DEFAULT_GATES, "orin_nano": Gate(max_us=30)}
    chosen = effective_gate(["orin_nano", "sim"], gates)
    assert chosen.sources == ("sim",)
    assert chosen.gate.exclusive
    assert chosen.gate.max_us is not None and chosen.gate.max_us >= 10_000
    assert chosen.notes and "not" in chosen.notes[0] and "real-time" in chosen.notes[0]


def test_run_json_overrides_only_given_keys() -> None:
    gates = gates_from_run({"sim": {"max_us": 20000}, "line_a": {"max_us": 35, "note": "cell 3"}})
    assert gates["sim"].max_us == 20000
    assert gates["sim"].exclusive  # kept from the default
    assert gates["sim"].note == DEFAULT_GATES["sim"].note
    assert gates["line_a"] == Gate(max_us=35, note="cell 3")
    assert gates["all"] == DEFAULT_GATES["all"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1], "must be an object"),
        ({"max_us": "fast"}, "max_us must be a finite non-negative number"),
        ({"max_us": -1}, "non-negative"),
        ({"max_us": True}, "non-negative number"),
        ({"p99": 10}, "unknown key"),
        ({"exclusive": "yes"}, "exclusive must be true or false"),
        ({"note": 3}, "note must be a string"),
    ],
)
def test_bad_gates_are_clear_errors(raw: object, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        gate_from_mapping("line_a", raw)


def test_gates_must_be_a_mapping() -> None:
    with pytest.raises(ReportError, match="map inventory group names"):
        gates_from_run(["all"])


def test_evaluate_pass_and_fail() -> None:
    gate = Gate(max_us=50, avg_us=10, p99_9_us=25, max_overflows=0)
    results = {r.metric: r for r in evaluate(summary(), gate)}
    assert {r.status for r in results.values()} == {"pass"}
    results = {r.metric: r for r in evaluate(summary(max_us=87.0, overflows=3), gate)}
    assert results["max_us"].status == "fail"
    assert results["max_us"].detail == "87 us > 50 us"
    assert results["overflows"].status == "fail"
    assert results["avg_us"].status == "pass"


def test_limits_that_are_none_are_not_checked() -> None:
    assert evaluate(summary(max_us=1e6), Gate()) == []


def test_missing_histogram_makes_percentile_gates_unknown() -> None:
    result = summarise(parse_file(FIXTURES / "rt-tests-2.40-p0-nohist.json"))
    assert result.p99_9_us is None and result.overflows is None
    results = {r.metric: r for r in evaluate(result, DEFAULT_GATES["all"])}
    assert results["p99_9_us"].status == "unknown"
    assert "-h" in results["p99_9_us"].detail
    assert results["overflows"].status == "unknown"
    assert results["max_us"].status == "fail"  # a VM without RT priority: ms spikes


def test_p999_in_overflow_is_flagged() -> None:
    result = summarise(parse_file(FIXTURES / "rt-tests-2.40-many-overflows.json"))
    assert result.p99_9_in_overflow
    (p999,) = [r for r in evaluate(result, Gate(p99_9_us=25)) if r.metric == "p99_9_us"]
    assert p999.status == "fail"
    assert "in overflow" in p999.detail


def test_summary_takes_the_worst_thread() -> None:
    result = summarise(parse_file(FIXTURES / "rt-tests-2.40-p90-h400.json"))
    threads = parse_file(FIXTURES / "rt-tests-2.40-p90-h400.json").threads
    worst = max(threads, key=lambda t: t.max_us or 0)
    assert result.max_us == worst.max_us
    assert result.max_cpu == worst.label
    assert result.avg_us == max(t.avg_us or 0 for t in threads)
    assert result.overflows == sum(t.overflows or 0 for t in threads)
    assert result.cycles == sum(t.cycles for t in threads)
