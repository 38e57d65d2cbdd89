from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.unit.report.runs import RUNNER_STATS, RunBuilder, cyclictest_json, thread

from jetson_rt.cli import main
from jetson_rt.errors import ReportError
from jetson_rt.report import REPORT_SCHEMA_VERSION
from jetson_rt.report.atomic import write_atomic
from jetson_rt.report.build import build_report
from jetson_rt.report.schema import REPORT_SCHEMA

Builder = Callable[..., RunBuilder]


def build(run: RunBuilder, out: Path, previous: Path | None = None) -> dict[str, Any]:
    outputs = build_report(run.root, out, previous)
    data: dict[str, Any] = json.loads(outputs.json.read_text())
    return data


def check_schema(data: dict[str, Any]) -> None:
    try:
        import jsonschema
    except ImportError:  # structural checks when jsonschema is not installed
        assert data["schema_version"] == REPORT_SCHEMA_VERSION
        assert set(data) == set(REPORT_SCHEMA["required"])
        for host in data["hosts"]:
            assert set(host) == set(REPORT_SCHEMA["properties"]["hosts"]["items"]["required"])
        return
    jsonschema.Draft202012Validator.check_schema(REPORT_SCHEMA)
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(data)


# --------------------------------------------------------------------------- report.json


def test_report_json_matches_schema(mixed_run: RunBuilder, tmp_path: Path) -> None:
    data = build(mixed_run, tmp_path / "out")
    check_schema(data)
    written = json.loads((tmp_path / "out" / "report.schema.json").read_text())
    assert written == REPORT_SCHEMA


def test_schema_rejects_a_broken_report(mixed_run: RunBuilder, tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    data = build(mixed_run, tmp_path / "out")
    data["hosts"][0]["verdict"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, REPORT_SCHEMA)


def test_report_json_verdicts(mixed_run: RunBuilder, tmp_path: Path) -> None:
    data = build(mixed_run, tmp_path / "out")
    verdicts = {h["name"]: h["verdict"] for h in data["hosts"]}
    assert verdicts == {
        "orin-01": "pass",
        "orin-02": "fail",  # max 87 us > 50 us
        "orin-03": "fail",  # swap on
        "orin-04": "error",  # unreachable
        "orin-05": "error",  # truncated cyclictest.json
        "orin-06": "fail",  # real VM capture judged by the hardware gate
        "orin-07": "error",  # nothing fetched
        "sim-01": "pass",  # the same VM capture under the loose, exclusive sim gate
    }
    assert data["verdict"] == "fail" and data["exit_code"] == 1
    assert data["summary"]["hosts"] == 8
    assert data["summary"]["pass"] == 2 and data["summary"]["error"] == 3
    sim = next(h for h in data["hosts"] if h["name"] == "sim-01")
    assert sim["gate"]["sources"] == ["sim"]
    assert "not PREEMPT_RT" in sim["gate"]["notes"][0]
    orin2 = next(h for h in data["hosts"] if h["name"] == "orin-02")
    assert orin2["latency"]["max_us"] == 87
    assert orin2["latency"]["max_cpu"] == "CPU 4"
    assert any("87 us > 50 us" in r for r in orin2["reasons"])


def test_budget_table_from_runner_figures(mixed_run: RunBuilder, tmp_path: Path) -> None:
    data = build(mixed_run, tmp_path / "out")
    budget = next(h for h in data["hosts"] if h["name"] == "orin-01")["budget"]
    stages = [row["stage"] for row in budget["rows"]]
    assert stages[:7] == [
        "Camera capture", "Preprocessing", "H2D transfer", "Inference", "D2H transfer",
        "Postprocessing", "Application logic",
    ]  # fmt: skip
    inference = budget["rows"][3]
    assert (inference["budget_ms"], inference["p50_ms"], inference["p99_ms"]) == (15, 6.8, 7.9)
    assert budget["rows"][6]["p99_ms"] is None  # the runner has no app-logic stage
    assert budget["total"]["p99_ms"] == 13.0
    assert budget["total"]["budget_ms"] == 30  # sum of stage budgets
    assert budget["meets_sla"] == "yes"  # 0 misses in 108000 frames
    assert budget["deadline_ms"] == 33.3


def test_budget_missed_sla(run_builder: Builder, tmp_path: Path) -> None:
    run = run_builder()
    run.run["budget"] = {"target_fps": 60}
    run.flush()
    stats = {**RUNNER_STATS, "frames": 1000, "deadline_misses": 30}
    run.add_host("orin-01", runner=stats, cyclictest=cyclictest_json([thread(4)]))
    budget = build(run, tmp_path / "out")["hosts"][0]["budget"]
    assert budget["deadline_ms"] == pytest.approx(1000 / 60)
    assert budget["meets_sla"] == "no"
    assert "97.000 %" in budget["sla_detail"]


# --------------------------------------------------------------------------- junit.xml


def test_junit_parses_and_counts(mixed_run: RunBuilder, tmp_path: Path) -> None:
    build(mixed_run, tmp_path / "out")
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    assert root.tag == "testsuites"
    suites = {s.get("name", "").rsplit(".", 1)[-1]: s for s in root.findall("testsuite")}
    assert len(suites) == 8
    for suite in suites.values():
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(cases)
        assert int(suite.get("failures", "-1")) == sum(c.find("failure") is not None for c in cases)
        assert int(suite.get("errors", "-1")) == sum(c.find("error") is not None for c in cases)
    assert int(root.get("tests", "0")) == sum(int(s.get("tests", "0")) for s in suites.values())

    passing = suites["orin-01"]
    names = {(c.get("classname", "").rsplit(".", 1)[-1], c.get("name")) for c in passing}
    assert ("audit", "rt_kernel") in names
    assert {("latency", m) for m in ("max_us", "avg_us", "p99_9_us", "overflows")} <= names
    assert passing.get("failures") == "0" and passing.get("errors") == "0"

    unreachable = suites["orin-04"].findall("testcase")
    assert len(unreachable) == 1
    error = unreachable[0].find("error")
    assert error is not None and "timed out" in error.get("message", "")

    latency_failure = suites["orin-02"].find("testcase[@name='max_us']/failure")
    assert latency_failure is not None and "87 us > 50 us" in latency_failure.get("message", "")
    audit_failure = suites["orin-03"].find("testcase[@name='swap']/failure")
    assert audit_failure is not None and "3.7 GiB" in audit_failure.get("message", "")
    assert suites["orin-05"].find("testcase[@name='results']/error") is not None


# --------------------------------------------------------------------------- HTML


def test_html_is_self_contained(mixed_run: RunBuilder, tmp_path: Path) -> None:
    build(mixed_run, tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<script" not in html
    assert "<link" not in html
    assert "@import" not in html
    assert not re.search(r"""\b(?:src|href)=["']?(?:https?:)?//""", html)
    assert not re.search(r"url\((?!#)", html)  # only same-document references
    # One histogram per host with a histogram, plus the fleet chart.
    assert html.count("<svg") == 5 + 1
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "ids must be unique once SVGs are inlined"
    assert "Latency budget (guide Appendix B)" in html
    assert "a virtual machine" in html  # the sim gate's explanation


def test_html_escapes_inventory_data(run_builder: Builder, tmp_path: Path) -> None:
    run = run_builder()
    run.add_host(
        "orin-01",
        facts={"model": "<script>alert(1)</script>"},
        audit=[{"id": "x", "title": "<b>bold</b>", "status": "fail", "observed": "a & b"}],
        cyclictest=cyclictest_json([thread(4)]),
    )
    build(run, tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "a &amp; b" in html


def test_trend_against_previous_run(run_builder: Builder, tmp_path: Path) -> None:
    before = run_builder("before", "run-1")
    before.add_good_host("orin-01", max_us=30)
    before.add_good_host("orin-02", max_us=20)
    before.add_good_host("orin-09", max_us=20)
    after = run_builder("after", "run-2")
    after.add_good_host("orin-01", max_us=42)
    after.add_good_host("orin-02", max_us=19)
    after.add_good_host("orin-03", max_us=19)
    data = build(after, tmp_path / "out", previous=before.root)
    previous = data["previous"]
    assert previous["run_id"] == "run-1"
    assert previous["new_hosts"] == ["orin-03"]
    assert previous["gone_hosts"] == ["orin-09"]
    trends = {h["name"]: h["trend"] for h in data["hosts"]}
    assert trends["orin-01"]["previous_max_us"] == 30
    assert trends["orin-01"]["delta_max_us"] == 12
    assert trends["orin-02"]["delta_max_us"] == -1
    assert trends["orin-03"] is None
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Trend against run-1" in html
    assert "+12" in html


def test_host_without_histogram_renders_without_plot(run_builder: Builder, tmp_path: Path) -> None:
    run = run_builder()
    run.add_host(
        "orin-01",
        cyclictest="T: 0 ( 1234) P:90 I:200 C: 10000 Min: 3 Act: 5 Avg: 5 Max: 18\n",
    )
    data = build(run, tmp_path / "out")
    host = data["hosts"][0]
    assert host["verdict"] == "error"  # p99.9 and overflows cannot be decided
    html = (tmp_path / "out" / "report.html").read_text()
    assert "ran without <code>-h</code>" in html


# --------------------------------------------------------------------------- CLI, exit codes


def test_cli_exit_codes(
    run_builder: Builder, mixed_run: RunBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = run_builder("good")
    good.add_good_host("orin-01")
    good.add_host(
        "sim-01",
        ("sim",),
        cyclictest=cyclictest_json([thread(0, max_us=3000, peak=60)], realtime=0),
    )
    assert main(["report", str(good.root), "--out", str(tmp_path / "good")]) == 0
    out = capsys.readouterr().out
    assert "Verdict: PASS" in out
    assert "hosts: 2 (2 pass" in out

    assert main(["report", str(mixed_run.root), "--out", str(tmp_path / "mixed")]) == 1
    out = capsys.readouterr().out
    assert "Verdict: FAIL" in out
    assert "ERROR orin-04: unreachable" in out

    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_cli_default_out_is_inside_run_dir(run_builder: Builder) -> None:
    run = run_builder()
    run.add_good_host("orin-01")
    assert main(["report", str(run.root)]) == 0
    assert (run.root / "report" / "report.html").is_file()
    # A report directory inside the RUN_DIR is not mistaken for a host.
    assert main(["report", str(run.root)]) == 0


def test_previous_run_errors_are_clear(run_builder: Builder, tmp_path: Path) -> None:
    run = run_builder()
    run.add_good_host("orin-01")
    with pytest.raises(ReportError, match="no such directory"):
        build_report(run.root, tmp_path / "out", tmp_path / "nope")


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_replaces_and_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_atomic(target, "old")
    write_atomic(target, b"new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_atomic_write_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_atomic(target, "old")
    blocker = tmp_path / "dir"
    blocker.mkdir()
    (blocker / "x").write_text("")
    with pytest.raises(ReportError, match="cannot write"):
        write_atomic(blocker, "new")  # cannot replace a non-empty directory
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "report.json"]


def test_unwritable_output_is_a_report_error(run_builder: Builder, tmp_path: Path) -> None:
    run = run_builder()
    run.add_good_host("orin-01")
    (tmp_path / "file").write_text("")
    with pytest.raises(ReportError, match=r"cannot create .*out: Not a directory"):
        build_report(run.root, tmp_path / "file" / "out")


# --------------------------------------------------------------------------- all or none


def test_outputs_replace_a_previous_report_whole(tmp_path: Path) -> None:
    from jetson_rt.report.atomic import write_together

    out = tmp_path / "out"
    write_together(out, {"a.json": "old a", "b.xml": "old b"})
    write_together(out, {"a.json": "new a", "b.xml": b"new b"})
    assert {p.name: p.read_text() for p in out.iterdir()} == {"a.json": "new a", "b.xml": "new b"}


def test_a_failed_write_leaves_nothing_and_removes_the_folders_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jetson_rt.report import atomic

    real = atomic._write_temp
    calls: list[str] = []

    def failing(folder: Path, name: str, data: bytes) -> Path:
        calls.append(name)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(folder, name, data)

    monkeypatch.setattr(atomic, "_write_temp", failing)
    with pytest.raises(ReportError, match="No space left on device; nothing was written"):
        atomic.write_together(tmp_path / "new" / "out", {"a": "1", "b": "2", "c": "3", "d": "4"})
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rename_puts_the_previous_report_back(tmp_path: Path) -> None:
    from jetson_rt.report.atomic import write_together

    out = tmp_path / "out"
    write_together(out, {"a.json": "old a", "b.xml": "old b"})
    (out / "c.html").mkdir()
    (out / "c.html" / "x").write_text("")  # a folder where the page goes: rename fails
    with pytest.raises(ReportError, match=r"c\.html.*no report file was left behind"):
        write_together(out, {"a.json": "new a", "b.xml": "new b", "c.html": "page"})
    files = {p.name: p.read_text() for p in out.iterdir() if p.is_file()}
    assert files == {"a.json": "old a", "b.xml": "old b"}  # no temporary file, no backup


def test_text_no_file_can_hold_is_replaced_not_fatal(run_builder: Builder, tmp_path: Path) -> None:
    """A lone surrogate (JSON "\\ud800") cannot be written as UTF-8, and control characters
    make XML ill-formed: both become U+FFFD instead of ending the report."""
    run = run_builder()
    directory = run.add_good_host("orin-01")
    audit = (directory / "audit.json").read_text()
    (directory / "audit.json").write_text(
        audit.replace('"observed": "1"', '"observed": "\\ud800\\u0001"')
    )
    outputs = build_report(run.root, tmp_path / "out")
    ET.parse(outputs.junit)
    observed = [c.observed for c in outputs.report.hosts[0].record.checks or []]
    assert "\ufffd\x01" in observed
    assert "\ufffd" in outputs.html.read_text(encoding="utf-8")
