"""Bad input to ``jetson-rt report``.

Two tables:

- ``REFUSED``: the run itself cannot be judged or the report cannot be written (a
  gate or budget figure that is NaN, infinite, negative or absurd; a host name
  that would read outside RUN_DIR; a ``run.json`` or ``hosts/`` link that leaves
  it; JSON a parser cannot take; an output that cannot be written). Checked by
  :func:`tests.badinput.harness.check_refused`: exit 2, one ``ERROR`` line, no
  traceback, no file written or changed (not even part of the report).
- ``HOST_ERRORS``: one host's data contradicts itself or lies outside RUN_DIR.
  The report is written, and that host is an ERROR with the reason, never a PASS
  (nor a FAIL: no verdict rests on such data). Checked by :func:`check_host_error`:
  exit 1, the console names the host and the reason, ``report.json`` says
  ``error``/``inconsistent`` with the reason, RUN_DIR is unchanged.

Add a case by appending to a table. The host-error cases start from a host that
passes (:func:`good_run`) and break one thing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.badinput.harness import Case, check_refused, ids, run_cli, snapshot
from tests.unit.report.runs import RUNNER_STATS, RunBuilder, cyclictest_json, write_json

HOST = "orin-01"
EXIT_FAIL = 1
EXIT_UNUSABLE = 2


# --------------------------------------------------------------------------- RUN_DIRs


def good_cyclictest(**changes: Any) -> dict[str, Any]:
    """Two threads of a run that passes the default gate; ``changes`` edits thread 0."""
    threads = [
        {"histogram": {3: 100, 5: 800, 7: 95, 12: 5}, "cycles": 1000,
         "min": 3, "max": 12, "avg": 5.4, "cpu": 4},
        {"histogram": {4: 500, 6: 499, 9: 1}, "cycles": 1000,
         "min": 4, "max": 9, "avg": 5.0, "cpu": 5},
    ]  # fmt: skip
    threads[0].update(changes)
    return cyclictest_json(threads)


def good_run(root: Path, **host: Any) -> RunBuilder:
    """A RUN_DIR whose one host passes; ``host`` overrides :meth:`RunBuilder.add_host`."""
    run = RunBuilder(root)
    run.add_host(HOST, **{"cyclictest": good_cyclictest(), **host})
    return run


def run_json(root: Path, **changes: Any) -> None:
    """A passing RUN_DIR at ``root`` whose ``run.json`` gets ``changes``."""
    run = good_run(root)
    run.run.update(changes)
    run.flush()


def raw_run_json(text: str) -> Callable[[Path], None]:
    """A passing RUN_DIR whose ``run.json`` is ``text`` (JSON that json.dumps cannot write)."""

    def setup(root: Path) -> None:
        good_run(root)
        (root / "run.json").write_text(text)

    return setup


def with_gate(**gate: Any) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        run_json(root, gates={"orin_nano": gate})

    return setup


def with_budget(**budget: Any) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        run_json(root, budget={"application": "line a", "target_fps": 30, **budget})

    return setup


def with_host_names(*names: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        run = good_run(root)
        for name in names:
            run.run["hosts"][name] = ["orin_nano"]
        run.flush()

    return setup


def outside_run_dir(root: Path) -> Path:
    """A passing RUN_DIR beside the case's folder: what a link out of RUN_DIR reaches."""
    outside = root.parent / f"{root.name}-outside"
    if not outside.exists():
        good_run(outside)
    return outside


def run_json_link(root: Path) -> None:
    good_run(root)
    (root / "run.json").unlink()
    (root / "run.json").symlink_to(outside_run_dir(root) / "run.json")


def hosts_link(root: Path) -> None:
    good_run(root)
    outside = outside_run_dir(root)
    for path in sorted((root / "hosts").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (root / "hosts").rmdir()
    (root / "hosts").symlink_to(outside / "hosts")


def blocked_output(name: str) -> Callable[[Path], None]:
    """A passing RUN_DIR and an output folder where ``name`` is a non-empty folder, so the
    rename onto it fails after the other outputs could have been written."""

    def setup(root: Path) -> None:
        good_run(root)
        blocker = root / "out" / name
        blocker.mkdir(parents=True)
        (blocker / "keep").write_text("not a report\n")

    return setup


def old_report_and_blocked(name: str) -> Callable[[Path], None]:
    """As :func:`blocked_output`, with a previous report in the folder that must survive."""

    def setup(root: Path) -> None:
        blocked_output(name)(root)
        for old in ("report.json", "report.schema.json", "junit.xml", "report.html"):
            if old != name:
                (root / "out" / old).write_text(f"previous {old}\n")

    return setup


def previous_with(setup: Callable[[Path], None]) -> Callable[[Path], None]:
    """A good RUN_DIR at ``root`` and a bad one at ``root/previous`` for --previous."""

    def both(root: Path) -> None:
        good_run(root)
        setup(root / "previous")

    return both


REPORT = ("report", "{dir}")
OUT = ("report", "{dir}", "--out", "{dir}/out")
DEEP = '{"schema_version": 1, "hosts": {"orin-01": []}, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"

REFUSED: list[Case] = [
    # gates: a limit that is not a finite non-negative number passes or fails at random
    Case("gate-max-nan", REPORT, r"gates\.orin_nano\.max_us .*finite.*NaN",
         raw_run_json('{"schema_version": 1, "hosts": {"orin-01": ["orin_nano"]}, '
                      '"gates": {"orin_nano": {"max_us": NaN}}}'), EXIT_UNUSABLE),
    Case("gate-max-infinity", REPORT, r"max_us .*finite.*inf",
         raw_run_json('{"schema_version": 1, "hosts": {"orin-01": ["orin_nano"]}, '
                      '"gates": {"orin_nano": {"max_us": Infinity}}}'), EXIT_UNUSABLE),
    Case("gate-avg-minus-infinity", REPORT, r"avg_us .*finite",
         raw_run_json('{"schema_version": 1, "hosts": {"orin-01": ["orin_nano"]}, '
                      '"gates": {"orin_nano": {"avg_us": -Infinity}}}'), EXIT_UNUSABLE),
    Case("gate-p999-overflowing-float", REPORT, r"p99_9_us .*finite",
         raw_run_json('{"schema_version": 1, "hosts": {"orin-01": ["orin_nano"]}, '
                      '"gates": {"orin_nano": {"p99_9_us": 1e999}}}'), EXIT_UNUSABLE),
    Case("gate-overflows-nan", REPORT, r"max_overflows .*finite",
         raw_run_json('{"schema_version": 1, "hosts": {"orin-01": ["orin_nano"]}, '
                      '"gates": {"orin_nano": {"max_overflows": NaN}}}'), EXIT_UNUSABLE),
    Case("gate-overflows-fraction", REPORT, r"max_overflows must be a whole number.*2\.5",
         with_gate(max_overflows=2.5), EXIT_UNUSABLE),
    Case("gate-max-huge-int", REPORT, r"max_us must be a finite .*at most",
         with_gate(max_us=10**400), EXIT_UNUSABLE),
    Case("gate-max-1e300", REPORT, r"max_us must be a finite .*at most", with_gate(max_us=1e300),
         EXIT_UNUSABLE),
    Case("gate-in-all-nan", REPORT, r"gates\.all\.max_us",
         raw_run_json('{"schema_version": 1, "hosts": {"orin-01": ["orin_nano"]}, '
                      '"gates": {"all": {"max_us": NaN}}}'), EXIT_UNUSABLE),
    # budget: the Appendix B figures are numbers of milliseconds or frames
    Case("budget-fps-nan", REPORT, r"budget\.target_fps must be a finite",
         raw_run_json('{"schema_version": 1, "hosts": {"orin-01": ["orin_nano"]}, '
                      '"budget": {"target_fps": NaN}}'), EXIT_UNUSABLE),
    Case("budget-deadline-negative", REPORT, r"budget\.deadline_ms .*-33",
         with_budget(deadline_ms=-33), EXIT_UNUSABLE),
    Case("budget-stage-infinity", REPORT, r"budget\.stages_ms\.infer must be a finite",
         raw_run_json('{"schema_version": 1, "hosts": {"orin-01": ["orin_nano"]}, '
                      '"budget": {"stages_ms": {"infer": Infinity}}}'), EXIT_UNUSABLE),
    Case("budget-sla-text", REPORT, r"budget\.sla_percent .*'high'",
         with_budget(sla_percent="high"), EXIT_UNUSABLE),
    # host names that would make the report read outside RUN_DIR
    Case("host-dotdot", REPORT, r"host name '\.\./outside' is not an inventory host name",
         with_host_names("../outside"), EXIT_UNUSABLE),
    Case("host-absolute", REPORT, r"host name '/etc' is not", with_host_names("/etc"),
         EXIT_UNUSABLE),
    Case("host-slash", REPORT, r"host name 'line-a/orin-02' is not",
         with_host_names("line-a/orin-02"), EXIT_UNUSABLE),
    Case("host-parent", REPORT, r"host name '\.\.' is not", with_host_names(".."), EXIT_UNUSABLE),
    Case("host-dot", REPORT, r"host name '\.' is not", with_host_names("."), EXIT_UNUSABLE),
    Case("host-empty", REPORT, r"host name '' is not", with_host_names(""), EXIT_UNUSABLE),
    Case("host-nul", REPORT, r"host name 'a\\x00b' is not", with_host_names("a\x00b"),
         EXIT_UNUSABLE),
    Case("host-newline", REPORT, r"host name 'a\\nb' is not", with_host_names("a\nb"),
         EXIT_UNUSABLE),
    Case("host-option-like", REPORT, r"host name '-rf' is not", with_host_names("-rf"),
         EXIT_UNUSABLE),
    Case("host-list-dotdot", REPORT, r"host name '\.\./\.\./etc' is not",
         raw_run_json('{"schema_version": 1, "hosts": ["orin-01", "../../etc"]}'), EXIT_UNUSABLE),
    # links that leave RUN_DIR
    Case("run-json-link-outside", REPORT, r"run\.json: a link that leaves RUN_DIR",
         run_json_link, EXIT_UNUSABLE),
    Case("hosts-link-outside", REPORT, r"hosts: a link that leaves RUN_DIR", hosts_link,
         EXIT_UNUSABLE),
    # JSON no parser should be asked to take
    Case("run-json-5000-digit-int", REPORT, r"run\.json.*not readable JSON",
         raw_run_json('{"schema_version": ' + "9" * 5000 + "}"), EXIT_UNUSABLE),
    Case("run-json-nested-100000", REPORT, r"run\.json.*nested too deeply", raw_run_json(DEEP),
         EXIT_UNUSABLE),
    # outputs: all or none, whatever was in the folder before stays as it was
    Case("out-html-blocked", OUT, r"cannot write .*report\.html.*no report file was left",
         blocked_output("report.html"), EXIT_UNUSABLE),
    Case("out-junit-blocked", OUT, r"cannot write .*junit\.xml.*no report file was left",
         blocked_output("junit.xml"), EXIT_UNUSABLE),
    Case("out-schema-blocked", OUT, r"cannot write .*report\.schema\.json",
         blocked_output("report.schema.json"), EXIT_UNUSABLE),
    Case("out-html-blocked-old-report-kept", OUT, r"cannot write .*report\.html",
         old_report_and_blocked("report.html"), EXIT_UNUSABLE),
    Case("out-junit-blocked-old-report-kept", OUT, r"cannot write .*junit\.xml",
         old_report_and_blocked("junit.xml"), EXIT_UNUSABLE),
    # --previous is read by the same loader, with the same rules
    Case("previous-gate-nan", (*REPORT, "--previous", "{dir}/previous"), r"max_us .*NaN",
         previous_with(raw_run_json('{"schema_version": 1, "hosts": {"orin-01": []}, '
                                    '"gates": {"all": {"max_us": NaN}}}')), EXIT_UNUSABLE),
    Case("previous-host-dotdot", (*REPORT, "--previous", "{dir}/previous"),
         r"host name '\.\./x' is not", previous_with(with_host_names("../x")), EXIT_UNUSABLE),
]  # fmt: skip


@pytest.mark.parametrize("case", REFUSED, ids=ids(REFUSED))
def test_refused(case: Case, tmp_path: Path) -> None:
    check_refused(case, tmp_path / "case")


# --------------------------------------------------------------------------- host errors


@dataclass(frozen=True)
class HostErrorCase:
    """A RUN_DIR (``setup`` writes it) in which host ``orin-01`` must be an ERROR whose
    reasons match ``expect`` (a regular expression, case-insensitive)."""

    id: str
    setup: Callable[[Path], None]
    expect: str


def check_host_error(case: HostErrorCase, folder: Path) -> None:
    run_dir, out = folder / "run", folder / "out"
    run_dir.mkdir(parents=True)
    case.setup(run_dir)
    before = snapshot(run_dir)
    outcome = run_cli(["report", str(run_dir), "--out", str(out)], folder)
    shown = f"exit {outcome.returncode}\nstdout:\n{outcome.stdout}\nstderr:\n{outcome.stderr}"
    assert "Traceback" not in outcome.stdout + outcome.stderr, shown
    assert outcome.returncode == EXIT_FAIL, shown
    console = [line.strip() for line in outcome.stdout.splitlines()]
    assert any(line.startswith(f"ERROR {HOST}: ") for line in console), shown
    assert snapshot(run_dir) == before, f"the report changed its RUN_DIR\n{shown}"
    assert sorted(p.name for p in out.iterdir()) == [
        "junit.xml",
        "report.html",
        "report.json",
        "report.schema.json",
    ], shown
    report = json.loads((out / "report.json").read_text())
    host = next(h for h in report["hosts"] if h["name"] == HOST)
    assert host["verdict"] == "error", json.dumps(host, indent=1)[:3000]
    assert host["state"] == "inconsistent", json.dumps(host, indent=1)[:3000]
    assert any(re.search(case.expect, reason, re.IGNORECASE) for reason in host["reasons"]), (
        f"{case.expect!r} not in {host['reasons']}"
    )
    assert report["verdict"] == "fail"
    junit = (out / "junit.xml").read_text()
    assert "<error" in junit


def cyclictest(**changes: Any) -> Callable[[Path], None]:
    """A passing run whose host's first thread (CPU 4) gets ``changes``."""

    def setup(root: Path) -> None:
        good_run(root, cyclictest=good_cyclictest(**changes))

    return setup


def cyclictest_text(text: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        run = good_run(root, cyclictest=None)
        (run.host_dir(HOST) / "cyclictest.txt").write_text(text)

    return setup


def cyclictest_raw(replace: tuple[str, str]) -> Callable[[Path], None]:
    """A passing run whose cyclictest.json has ``replace[0]`` replaced by ``replace[1]``
    (for what json.dumps will not write: NaN, bare glibc ``nan``)."""

    def setup(root: Path) -> None:
        run = good_run(root)
        path = run.host_dir(HOST) / "cyclictest.json"
        text = path.read_text()
        assert replace[0] in text
        path.write_text(text.replace(replace[0], replace[1], 1))

    return setup


def host_json(**changes: Any) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        run = good_run(root)
        path = run.host_dir(HOST) / "host.json"
        write_json(path, {**json.loads(path.read_text()), **changes})

    return setup


def runner(stage: str, **changes: Any) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        stats = json.loads(json.dumps(RUNNER_STATS))
        if stage:
            stats["stages"][stage].update(changes)
        else:
            stats.update(changes)
        good_run(root, runner=stats)

    return setup


def runner_raw(old: str, new: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        run = good_run(root, runner=RUNNER_STATS)
        path = run.host_dir(HOST) / "runner_stats.json"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))

    return setup


def linked(name: str) -> Callable[[Path], None]:
    """A passing run whose host file ``name`` (or the host folder, for ``""``) is a link to
    the same, valid, data outside RUN_DIR."""

    def setup(root: Path) -> None:
        good_run(root)
        outside = outside_run_dir(root) / "hosts" / HOST
        target = root / "hosts" / HOST / name if name else root / "hosts" / HOST
        if name:
            target.unlink()
        else:
            for path in target.iterdir():
                path.unlink()
            target.rmdir()
        target.symlink_to(outside / name if name else outside)

    return setup


TEXT_OK = """\
# /dev/cpu_dma_latency set to 0us
T: 0 ( 1201) P:90 I:200 C:   1000 Min:      3 Act:    5 Avg:    5 Max:      12
T: 1 ( 1202) P:90 I:200 C:   1000 Min:      4 Act:    5 Avg:    5 Max:       9
# Histogram
000003 000100 000000
000004 000000 000500
000005 000800 000000
000006 000000 000499
000007 000095 000000
000009 000000 000001
000012 000005 000000
# Total: 000001000 000001000
# Min Latencies: 00003 00004
# Avg Latencies: 00005 00005
# Max Latencies: 00012 00009
# Histogram Overflows: 00000 00000
"""

HOST_ERRORS: list[HostErrorCase] = [
    # the figures of one thread contradict its own histogram
    HostErrorCase("max-below-highest-bucket", cyclictest(max=8),
                  r"CPU 4: max 8 us is below its histogram's highest bucket \(12 us\)"),
    HostErrorCase("min-above-lowest-bucket", cyclictest(min=5),
                  r"CPU 4: min 5 us is above its histogram's lowest bucket \(3 us\)"),
    HostErrorCase("min-above-max", cyclictest(min=30, max=12, histogram={}),
                  r"CPU 4: min 30 us is above max 12 us"),
    HostErrorCase("avg-above-max", cyclictest(avg=40.0), r"CPU 4: avg 40 us is above max 12 us"),
    HostErrorCase("avg-below-min", cyclictest(avg=1.0), r"CPU 4: avg 1 us is below min 3 us"),
    HostErrorCase("bucket-beyond-limit", cyclictest(histogram={3: 100, 5: 800, 7: 95, 450: 5},
                                                     max=450),
                  r"CPU 4: 1 histogram bucket\(s\) at or beyond the -h400 limit"),
    HostErrorCase("bucket-at-limit", cyclictest(histogram={3: 100, 5: 800, 7: 95, 400: 5},
                                                 max=400),
                  r"at or beyond the -h400 limit \(up to 400 us\)"),
    HostErrorCase("counts-exceed-cycles", cyclictest(cycles=900),
                  r"CPU 4: histogram holds 1000 samples but cycles is only 900"),
    HostErrorCase("overflows-below-limit", cyclictest(cycles=1200),
                  r"CPU 4: 200 overflow\(s\) \(latencies of 400 us or more\) but max is 12 us"),
    HostErrorCase("bucket-at-10e12-us", cyclictest(histogram={3: 100, 5: 800, 7: 95,
                                                               10**12: 5}, max=10**12),
                  r"CPU 4: 1 histogram bucket\(s\) beyond any possible latency"),
    HostErrorCase("cycles-10e13", cyclictest(cycles=10**13),
                  r"CPU 4: cycles 10000000000000 is not a possible count"),
    # negative, NaN, infinite or non-numeric latencies and counts
    HostErrorCase("max-negative", cyclictest(max=-12, histogram={}),
                  r"CPU 4: max latency is negative"),
    HostErrorCase("min-negative", cyclictest(min=-3), r"CPU 4: min latency is negative"),
    HostErrorCase("avg-nan-literal", cyclictest_raw(('"avg": 5.4', '"avg": NaN')),
                  r"CPU 4: avg latency is nan"),
    HostErrorCase("avg-glibc-nan", cyclictest_raw(('"avg": 5.4', '"avg": -nan')),
                  r"CPU 4: avg latency is '-nan'"),
    HostErrorCase("max-infinity", cyclictest_raw(('"max": 12', '"max": Infinity')),
                  r"CPU 4: max latency is inf"),
    HostErrorCase("max-text", cyclictest(max="fast"), r"CPU 4: max latency is 'fast'"),
    HostErrorCase("negative-bucket", cyclictest(histogram={-3: 100, 5: 800, 7: 95, 12: 5}),
                  r"CPU 4: 1 negative histogram bucket"),
    HostErrorCase("negative-count", cyclictest(histogram={3: 100, 5: 800, 7: -95, 12: 5}),
                  r"CPU 4: 1 negative histogram bucket\(s\) or count"),
    HostErrorCase("unreadable-bucket", cyclictest(histogram={"3": 100, "five": 800, "12": 5}),
                  r"CPU 4: 1 histogram bucket\(s\) unreadable"),
    HostErrorCase("cycles-negative", cyclictest(cycles=-1000, histogram={}),
                  r"CPU 4: cycles -1000 is not a possible count"),
    HostErrorCase("cycles-text", cyclictest(cycles="lots"), r"CPU 4: cycles is 'lots'"),
    # the text output, parsed by its own parser, checked by the same rules
    HostErrorCase("text-max-below-bucket", cyclictest_text(TEXT_OK.replace(
        "# Max Latencies: 00012", "# Max Latencies: 00008")),
                  r"CPU 4: max 8 us is below its histogram's highest bucket"),
    HostErrorCase("text-total-below-histogram", cyclictest_text(TEXT_OK.replace(
        "# Total: 000001000", "# Total: 000000900")),
                  r"histogram holds 1000 samples but '# Total' is 900"),
    HostErrorCase("text-negative-max", cyclictest_text(
        "T: 0 ( 1201) P:90 I:200 C:   1000 Min:      3 Act:    5 Avg:    5 Max:     -12\n"),
                  r"max latency is negative"),
    # host.json names another host
    HostErrorCase("host-json-other-host", host_json(inventory_hostname="orin-02"),
                  r"host\.json names host 'orin-02', not 'orin-01'"),
    HostErrorCase("host-json-name-not-text", host_json(inventory_hostname=42),
                  r"host\.json names host 42, not 'orin-01'"),
    # the inference runner's figures
    HostErrorCase("runner-p99-nan", runner_raw('"p99_ms": 7.9', '"p99_ms": NaN'),
                  r"runner_stats\.json: stage infer: p99_ms is nan"),
    HostErrorCase("runner-max-negative", runner("total", max_ms=-15.2),
                  r"runner_stats\.json: stage total: max_ms is -15\.2"),
    HostErrorCase("runner-p50-above-max", runner("infer", p50_ms=20.0),
                  r"stage infer: p50_ms <= p99_ms <= max_ms does not hold"),
    HostErrorCase("runner-misses-exceed-frames", runner("", deadline_misses=200_000),
                  r"deadline_misses 200000 exceeds frames 108000"),
    HostErrorCase("runner-frames-negative", runner("", frames=-1),
                  r"frames is -1, not a count"),
    # links that leave RUN_DIR (to valid data, which would otherwise pass)
    HostErrorCase("host-folder-link-outside", linked(""),
                  r"hosts/orin-01 is a link that leaves RUN_DIR"),
    HostErrorCase("cyclictest-link-outside", linked("cyclictest.json"),
                  r"cyclictest\.json is a link that leaves RUN_DIR"),
    HostErrorCase("host-json-link-outside", linked("host.json"),
                  r"host\.json is a link that leaves RUN_DIR"),
    HostErrorCase("audit-link-outside", linked("audit.json"),
                  r"audit\.json is a link that leaves RUN_DIR"),
]  # fmt: skip


def _host_error_ids() -> list[str]:
    seen = [case.id for case in HOST_ERRORS]
    assert len(set(seen)) == len(seen), "duplicate case ids"
    return seen


@pytest.mark.parametrize("case", HOST_ERRORS, ids=_host_error_ids())
def test_host_error(case: HostErrorCase, tmp_path: Path) -> None:
    check_host_error(case, tmp_path / "case")


def test_the_good_run_passes(tmp_path: Path) -> None:
    """The cases break one thing each in a run that passes: it must pass unbroken."""
    good_run(tmp_path / "run")
    outcome = run_cli(["report", str(tmp_path / "run"), "--out", str(tmp_path / "out")], tmp_path)
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    text_run = tmp_path / "text"
    cyclictest_text(TEXT_OK)(text_run)
    outcome = run_cli(["report", str(text_run), "--out", str(tmp_path / "out2")], tmp_path)
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
