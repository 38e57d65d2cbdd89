from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.unit.report.runs import (
    CYCLICTEST_FIXTURES,
    RunBuilder,
    cyclictest_json,
    thread,
    write_json,
)

from jetson_rt.errors import ReportError
from jetson_rt.report.evaluate import judge_run
from jetson_rt.report.loader import load_host, load_run

Builder = Callable[..., RunBuilder]


def hosts_by_name(run: RunBuilder) -> dict[str, object]:
    loaded = load_run(run.root)
    return {h.name: h for h in loaded.hosts}


def test_mixed_run_every_state(mixed_run: RunBuilder) -> None:
    loaded = load_run(mixed_run.root)
    hosts = {h.name: h for h in loaded.hosts}
    assert list(hosts) == [
        "orin-01", "orin-02", "orin-03", "orin-04", "orin-05", "orin-06", "orin-07", "sim-01",
    ]  # fmt: skip
    assert hosts["orin-01"].state == "ok" and hosts["orin-01"].runner is not None
    assert hosts["orin-04"].state == "unreachable"
    assert hosts["orin-04"].reachable is False
    assert "timed out" in hosts["orin-04"].problems[0]
    assert hosts["orin-05"].state == "corrupt"
    assert hosts["orin-05"].checks is not None  # what could be read is kept
    assert hosts["orin-05"].cyclictest is None
    assert hosts["orin-06"].cyclictest is not None
    assert hosts["orin-06"].cyclictest_file == "cyclictest.txt"
    assert hosts["orin-07"].state == "missing"
    assert hosts["orin-07"].groups == ("orin_nano",)  # from run.json
    assert hosts["sim-01"].groups == ("sim", "orin_nano")


def test_run_dir_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no such directory"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReportError, match="not a directory"):
        load_run(tmp_path / "file")
    with pytest.raises(ReportError, match=r"run\.json missing.*rt_validate"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text('{"schema_version": 1, "run_id": "x", ')
    with pytest.raises(ReportError, match="truncated or corrupt"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text('{"schema_version": 99, "run_id": "x"}')
    with pytest.raises(ReportError, match="upgrade jetson-rt"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text('{"schema_version": "1"}')
    with pytest.raises(ReportError, match="schema_version must be an integer"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text('{"schema_version": 1, "run_id": "x"}')
    with pytest.raises(ReportError, match="no hosts"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text('{"schema_version": 1, "hosts": 3}')
    with pytest.raises(ReportError, match="hosts must map"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text('{"schema_version": 1, "hosts": [], "gates": {"a": 1}}')
    with pytest.raises(ReportError, match=r"gates\.a must be an object"):
        load_run(tmp_path)


def test_run_id_defaults_to_directory_name(run_builder: Builder) -> None:
    run = run_builder("20261126-night")
    del run.run["run_id"]
    run.add_good_host("orin-01")
    assert load_run(run.root).info.run_id == "20261126-night"


def test_hosts_found_on_disk_but_not_listed(run_builder: Builder) -> None:
    run = run_builder()
    run.add_good_host("orin-02")
    run.add_good_host("orin-10")
    run.run["hosts"] = {}
    run.flush()
    (run.root / "hosts" / ".partial").mkdir()
    assert [h.name for h in load_run(run.root).hosts] == ["orin-02", "orin-10"]


@pytest.mark.parametrize(
    ("name", "content", "state", "message"),
    [
        (
            "host.json",
            '{"inventory_hostname": "orin-01", "gro',
            "corrupt",
            "host.json is truncated",
        ),
        ("host.json", "[]", "corrupt", "not a JSON object"),
        ("host.json", "", "corrupt", "host.json is empty"),
        ("audit.json", '{"checks": [{"id": "swap", "st', "corrupt", "audit.json is truncated"),
        ("audit.json", '{"checks": "all good"}', "corrupt", "no list of checks"),
        ("cyclictest.json", '{"thread": {"0": {"histo', "corrupt", "truncated or corrupt"),
        ("cyclictest.json", "\x00\x01\x02garbage", "corrupt", "no cyclictest thread"),
        ("runner_stats.json", '{"stages": 3}', "corrupt", "no stages"),
    ],
)
def test_corrupt_files_mark_the_host(
    run_builder: Builder, name: str, content: str, state: str, message: str
) -> None:
    run = run_builder()
    directory = run.add_good_host("orin-01")
    (directory / name).write_text(content)
    host = load_run(run.root).hosts[0]
    assert host.state == state
    assert any(message in problem for problem in host.problems), host.problems


@pytest.mark.parametrize("missing", ["host.json", "audit.json", "cyclictest.json"])
def test_crashed_mid_run_is_incomplete(run_builder: Builder, missing: str) -> None:
    run = run_builder()
    directory = run.add_good_host("orin-01")
    (directory / missing).unlink()
    host = load_run(run.root).hosts[0]
    assert host.state == "incomplete"
    assert missing.split(".", maxsplit=1)[0] in " ".join(host.problems)
    report = judge_run(load_run(run.root))
    assert report.hosts[0].verdict == "error"
    assert report.verdict == "fail"


def test_empty_host_directory_is_missing(run_builder: Builder) -> None:
    run = run_builder()
    run.add_good_host("orin-01")
    (run.root / "hosts" / "orin-02").mkdir()
    host = {h.name: h for h in load_run(run.root).hosts}["orin-02"]
    assert host.state == "missing"


def test_failed_host_keeps_partial_results(run_builder: Builder) -> None:
    run = run_builder()
    directory = run.add_host(
        "orin-01",
        error="cyclictest: sched_setscheduler: Operation not permitted",
        cyclictest=None,
    )
    raw = json.loads((directory / "host.json").read_text())
    write_json(directory / "host.json", {**raw, "failed_stage": "cyclictest"})
    host = load_run(run.root).hosts[0]
    assert host.state == "failed"
    assert "during cyclictest" in host.problems[0]
    assert host.checks is not None


def test_corrupt_json_falls_back_to_text(run_builder: Builder) -> None:
    run = run_builder()
    directory = run.add_good_host("orin-01")
    (directory / "cyclictest.json").write_text('{"thread": ')
    shutil.copy(CYCLICTEST_FIXTURES / "rt-tests-2.40-p90-h400.txt", directory / "cyclictest.txt")
    host = load_run(run.root).hosts[0]
    assert host.cyclictest is not None and host.cyclictest.source == "text"
    assert host.state == "corrupt"
    assert "used cyclictest.txt instead" in host.problems[0]


def test_audit_entries_are_read_leniently(run_builder: Builder) -> None:
    run = run_builder()
    audit = [
        {"id": "swap", "status": "OK", "observed": 0},
        {"id": "thp", "title": "THP off", "status": "failed", "observed": ["always"]},
        {"status": "skipped"},
        "not an object",
        {"id": "gov", "status": "bogus"},
    ]
    run.add_host("orin-01", audit=audit, cyclictest=cyclictest_json([thread(4)]))
    checks = load_run(run.root).hosts[0].checks
    assert checks is not None
    assert [c.status for c in checks] == ["pass", "fail", "unknown", "unknown", "unknown"]
    assert checks[0].observed == "0" and checks[0].title == "swap"
    assert checks[1].observed == '["always"]'
    assert checks[2].id == "check-2"
    assert checks[3].hint == "audit.json entry is not an object"


def test_audit_as_bare_list(run_builder: Builder) -> None:
    run = run_builder()
    directory = run.add_good_host("orin-01")
    write_json(directory / "audit.json", [{"id": "rt_kernel", "status": "pass"}])
    checks = load_run(run.root).hosts[0].checks
    assert checks is not None and checks[0].id == "rt_kernel"


def test_hostname_mismatch_is_reported(run_builder: Builder) -> None:
    run = run_builder()
    directory = run.add_good_host("orin-01")
    raw = json.loads((directory / "host.json").read_text())
    write_json(directory / "host.json", {**raw, "inventory_hostname": "orin-99"})
    host = load_run(run.root).hosts[0]
    assert host.state == "inconsistent"  # another host's data: never judged as this one
    assert "orin-99" in host.problems[0]


def test_runner_stats_shapes(run_builder: Builder) -> None:
    run = run_builder()
    as_list = {
        "stages": [
            {"name": "infer", "p50_ms": 7, "p99_ms": 8.5, "max_ms": "n/a"},
            {"p50_ms": 1},
            "junk",
        ],
        "frames": 100,
        "deadline_misses": True,
    }
    run.add_host("orin-01", runner=as_list, cyclictest=cyclictest_json([thread(4)]))
    runner = load_run(run.root).hosts[0].runner
    assert runner is not None
    assert [s.name for s in runner.stages] == ["infer"]
    assert runner.stages[0].max_ms is None
    assert runner.frames == 100 and runner.deadline_misses is None


def test_host_directory_read_errors_never_escape(tmp_path: Path) -> None:
    directory = tmp_path / "orin-01"
    directory.mkdir()
    (directory / "host.json").mkdir()  # a directory where a file should be
    (directory / "audit.json").write_text('{"checks": [1e999999]}')  # inf: not a mapping
    (directory / "cyclictest.json").write_bytes(b'{"thread": {"0": {"histogram": {"1": 1e400}}}}')
    host = load_host(directory, "orin-01")
    assert host.state in ("incomplete", "corrupt", "inconsistent")
    assert host.problems


def test_builders_write_what_the_run_dir_schemas_specify(mixed_run: RunBuilder) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from jetson_rt.report.schema import AUDIT_SCHEMA, HOST_SCHEMA, RUN_SCHEMA

    validator = jsonschema.Draft202012Validator
    for schema in (RUN_SCHEMA, HOST_SCHEMA, AUDIT_SCHEMA):
        validator.check_schema(schema)
    validator(RUN_SCHEMA).validate(json.loads((mixed_run.root / "run.json").read_text()))
    hosts = mixed_run.root / "hosts"
    for path in hosts.glob("*/host.json"):
        validator(HOST_SCHEMA).validate(json.loads(path.read_text()))
    for path in hosts.glob("*/audit.json"):
        validator(AUDIT_SCHEMA).validate(json.loads(path.read_text()))
    with pytest.raises(jsonschema.ValidationError):
        validator(AUDIT_SCHEMA).validate({"schema_version": 1, "checks": [{"id": "x"}]})


def test_text_results_take_cpus_from_the_cyclictest_command(run_builder: Builder) -> None:
    run = run_builder()  # run.json: cyclictest -m -p90 -i200 -h400 -q -a4-5 -t2 -D1h
    directory = run.add_host("orin-01", cyclictest=None)
    shutil.copy(CYCLICTEST_FIXTURES / "rt-tests-2.40-p90-h400.txt", directory / "cyclictest.txt")
    other = run.add_host("orin-02", cyclictest=None)
    shutil.copy(CYCLICTEST_FIXTURES / "rt-tests-2.40-p90-h400.txt", other / "cyclictest.txt")
    raw = json.loads((other / "host.json").read_text())
    write_json(other / "host.json", {**raw, "cyclictest_cmdline": "cyclictest -a2-3 -t2 -h400"})
    first, second = load_run(run.root).hosts
    assert first.cyclictest is not None and second.cyclictest is not None
    assert [t.label for t in first.cyclictest.threads] == ["CPU 4", "CPU 5"]
    assert [t.cpu for t in second.cyclictest.threads] == [2, 3]
    assert first.cyclictest.interval_us == 200


def test_links_inside_run_dir_are_followed(run_builder: Builder, tmp_path: Path) -> None:
    """Only links that leave RUN_DIR are refused: RUN_DIR itself may be a link, and a host
    file may link to another file inside it."""
    run = run_builder()
    directory = run.add_good_host("orin-01")
    shared = run.root / "shared"
    shared.mkdir()
    (directory / "cyclictest.json").rename(shared / "cyclictest.json")
    (directory / "cyclictest.json").symlink_to(Path("..", "..", "shared", "cyclictest.json"))
    alias = tmp_path / "latest"
    alias.symlink_to(run.root)
    host = load_run(alias).hosts[0]
    assert host.state == "ok", host.problems
    assert judge_run(load_run(alias)).hosts[0].verdict == "pass"


def test_a_link_out_of_run_dir_is_not_read(run_builder: Builder, tmp_path: Path) -> None:
    run = run_builder()
    directory = run.add_good_host("orin-01")
    outside = tmp_path / "elsewhere.json"
    (directory / "audit.json").rename(outside)
    (directory / "audit.json").symlink_to(outside)
    host = load_run(run.root).hosts[0]
    assert host.state == "inconsistent"
    assert host.checks is None  # not read
    assert "audit.json is a link that leaves RUN_DIR; not read" in host.problems
    assert judge_run(load_run(run.root)).hosts[0].verdict == "error"
