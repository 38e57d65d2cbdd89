"""What rt_validate writes that the reader must understand: audit-only runs (check mode,
cyclictest disabled) and cyclictest run as ``taskset -c LIST cyclictest -S``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.unit.report.runs import CYCLICTEST_FIXTURES, RunBuilder

from jetson_rt.report.cyclictest import parse_cmdline, parse_file, with_cmdline
from jetson_rt.report.evaluate import judge_run
from jetson_rt.report.loader import load_run

Builder = Callable[..., RunBuilder]


def test_audit_only_run_judges_the_audit_and_misses_nothing(run_builder: Builder) -> None:
    run = run_builder()
    run.run["profile"] = "audit"
    run.run["cyclictest"] = {"measured": False, "why": "check mode"}
    run.add_host("orin-01")  # the passing audit, no cyclictest file
    failing = [{"id": "thp", "title": "THP", "status": "fail", "observed": "always",
                "expected": "never", "hint": "echo never"}]  # fmt: skip
    run.add_host("orin-02", audit=failing)
    run.add_host("orin-03", reachable=False, error="timed out")
    loaded = load_run(run.flush())
    assert loaded.info.latency_measured is False
    hosts = {h.name: h for h in loaded.hosts}
    assert hosts["orin-01"].state == "ok" and hosts["orin-01"].cyclictest is None
    assert hosts["orin-03"].state == "unreachable"
    verdicts = {h.record.name: h.verdict for h in judge_run(loaded).hosts}
    assert verdicts == {"orin-01": "pass", "orin-02": "fail", "orin-03": "error"}


def test_a_measured_run_still_misses_a_cyclictest_file(run_builder: Builder) -> None:
    run = run_builder()
    run.add_host("orin-01")
    loaded = load_run(run.flush())
    assert loaded.info.latency_measured is True
    assert loaded.hosts[0].state == "incomplete"


@pytest.mark.parametrize(
    ("cmdline", "cpus"),
    [
        ("taskset -c 4-5 cyclictest -m -S -p90 -i200 -h400 -q -D1h", [4, 5]),
        ("taskset --cpu-list 0,2 cyclictest -S -p99 -h400 -q", [0, 2]),
        ("taskset -c 4-5 cyclictest -m -Sp90 -h400 -q", [4, 5]),  # OSADL's cluster
        ("cyclictest -m --smp -p90 -h400 -q", [0, 1]),  # all CPUs: thread N on CPU N
        ("taskset -c 4-5 cyclictest -m -p90 -h400 -q -a5 -t2", [5, 5]),  # -a wins
        ("taskset -c 4-5 cyclictest -m -p90 -h400 -q -t2", [None, None]),  # not pinned
    ],
)
def test_taskset_and_smp_place_text_threads(cmdline: str, cpus: list[int | None]) -> None:
    text = parse_file(CYCLICTEST_FIXTURES / "rt-tests-2.40-p90-h400.txt")
    result = with_cmdline(text, cmdline)
    assert [t.cpu for t in result.threads] == cpus
    assert result.histogram_limit_us == 400


def test_taskset_arguments_are_not_cyclictest_options() -> None:
    options = parse_cmdline("taskset -c 0-1 cyclictest -m -S -p99 -i1000 -h400 -q -D10s")
    assert (options.priority, options.interval_us, options.histogram_limit_us) == (99, 1000, 400)
    assert options.affinity == (0, 1)


def test_rt_validate_writes_what_the_schema_accepts(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from jetson_rt.report.schema import RUN_SCHEMA

    jsonschema.Draft202012Validator(RUN_SCHEMA).validate(
        {
            "schema_version": 1,
            "run_id": "r",
            "hosts": {},
            "profile": "audit",
            "cyclictest": {"measured": False, "why": "check mode"},
        }
    )
