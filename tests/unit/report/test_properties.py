"""Property tests for the readers of the outside world: cyclictest's JSON and text, and a
whole RUN_DIR. Whatever the bytes, a reader either returns or raises the module's own
error (:class:`CyclictestParseError`, :class:`ReportError`); nothing hangs, nothing
allocates in proportion to a number in the file, and a host whose data contradicts
itself never passes. ``report.json`` never carries NaN or infinity.

Examples are drawn around the real formats (rt-tests 2.x JSON, ``-q``/``-h`` text, the
RUN_DIR layout) with hostile values in every field: huge and negative integers, NaN,
infinity, text, nesting, truncation. The example budget keeps the module under 30 s.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jetson_rt.errors import ReportError
from jetson_rt.report.cyclictest import (
    MAX_THREADS,
    CyclictestParseError,
    CyclictestResult,
    parse_file,
    parse_json,
    parse_text,
    with_cmdline,
)
from jetson_rt.report.evaluate import judge_run
from jetson_rt.report.gates import DEFAULT_GATES, evaluate, summarise
from jetson_rt.report.junit import build_junit
from jetson_rt.report.loader import load_run, safe_host_name
from jetson_rt.report.plots import _steps
from jetson_rt.report.report_json import build_report_dict

SETTINGS = settings(
    max_examples=150,
    deadline=timedelta(seconds=5),  # a hang or a 10^12 allocation takes far longer
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------- values

HUGE = st.sampled_from([2**63, 10**19, 10**30, 10**400, -(2**63), 10**12 + 1])
numbers: st.SearchStrategy[Any] = st.one_of(
    st.integers(min_value=-1000, max_value=1000),
    st.integers(),
    HUGE,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["nan", "-nan", "inf", "12", " 7 ", "0x10", "1e3", "", "1_000"]),
    st.none(),
    st.booleans(),
)
# Text no UTF-8 file or XML document can carry as it is: a lone surrogate (JSON's
# "\ud800"), NUL and other control characters.
awkward_text = st.sampled_from(["\ud800", "x\udfffy", "a\x00b", "\x01", "\x1b[31m", "\ufffe"])
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=12) | awkward_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20,
)  # fmt: skip
bucket_keys = st.one_of(
    st.integers(min_value=-5, max_value=500).map(str),
    st.integers(min_value=0, max_value=10**15).map(str),
    st.sampled_from(["0005", "5", "-0", "abc", "", "1e3", "99999999999999999999999"]),
)
histograms = st.one_of(
    st.dictionaries(bucket_keys, numbers, max_size=25),
    st.dictionaries(st.integers(0, 450).map(str), st.integers(0, 10**6), max_size=40),
    st.lists(st.tuples(numbers, numbers).map(list), max_size=10),
    st.lists(numbers, max_size=10),
    json_values,
)
threads = st.fixed_dictionaries(
    {},
    optional={
        "histogram": histograms,
        "cycles": numbers,
        "min": numbers,
        "max": numbers,
        "avg": numbers,
        "cpu": numbers,
        "count": numbers,
    },
)
cmdlines = st.one_of(
    st.builds(
        lambda h, a, extra: f"cyclictest -m -p90 -i200 -h{h} -a{a} {extra}",
        st.one_of(st.integers(-5, 10**6), st.sampled_from(["", "x", "99999999999999999999"])),
        st.sampled_from(["4-5", "0-999999999", "0-3,5", "", "1-0", "!2", "4-99999"]),
        st.sampled_from(["", "-S", "--histogram=400", "-h", "--affinity", "-t999999"]),
    ),
    st.builds(lambda cpus: f"taskset -c {cpus} cyclictest -S -h400 -q",
              st.sampled_from(["0-999999999", "4-5", "x", ""])),
    st.text(max_size=40),
)  # fmt: skip
cyclictest_docs = st.fixed_dictionaries(
    {
        "thread": st.one_of(
            st.dictionaries(st.one_of(st.integers(-3, 10**13).map(str), st.text(max_size=4)),
                            threads, max_size=4),
            st.lists(threads, max_size=4),
            json_values,
        ),
    },
    optional={
        "cmdline:": cmdlines,
        "num_threads": numbers,
        "file_version": numbers,
        "return_code": numbers,
        "sysinfo": st.dictionaries(st.sampled_from(["realtime", "release", "nodename"]),
                                   json_values, max_size=3),
    },
)  # fmt: skip


def exercise(result: CyclictestResult) -> None:
    """Everything the report computes from a parsed result."""
    problems = result.problems
    assert all(isinstance(p, str) and "\n" not in p for p in problems)
    summary = summarise(result)
    for thread in result.threads:
        for fraction in (0.5, 0.99, 0.999, 1.0):
            thread.percentile(fraction)
        if thread.counts.size:
            xs, _ = _steps(thread.buckets, thread.counts)
            assert xs.size <= 2 * thread.counts.size + 2  # never one point per microsecond
    assert summary.cycles >= 0 or problems
    for gate in DEFAULT_GATES.values():
        evaluate(summary, gate)


@st.composite
def json_texts(draw: st.DrawFn) -> str:
    text = json.dumps(draw(cyclictest_docs))
    mode = draw(st.sampled_from(["as is", "truncated", "glibc nan", "nested", "noise"]))
    if mode == "truncated":
        text = text[: draw(st.integers(0, len(text)))]
    elif mode == "glibc nan":
        text = text.replace("null", draw(st.sampled_from(["nan", "-nan", "inf", "-inf"])))
    elif mode == "nested":
        depth = draw(st.integers(1, 50_000))
        text = '{"thread": ' + "[" * depth + "]" * depth + "}"
    elif mode == "noise":
        position = draw(st.integers(0, len(text)))
        text = text[:position] + draw(st.text(max_size=5)) + text[position:]
    return text


@SETTINGS
@given(json_texts())
def test_cyclictest_json_reader(text: str) -> None:
    try:
        result = parse_json(text)
    except CyclictestParseError:
        return
    exercise(result)
    exercise(with_cmdline(result, "cyclictest -S -h400 -a0-999999999"))


@SETTINGS
@given(st.binary(max_size=200))
def test_cyclictest_json_reader_any_bytes(data: bytes) -> None:
    with contextlib.suppress(CyclictestParseError):
        exercise(parse_json(b"{" + data))


# --------------------------------------------------------------------------- text

big_ints = st.one_of(st.integers(0, 500), st.integers(0, 10**25), HUGE.map(abs))


@st.composite
def text_outputs(draw: st.DrawFn) -> str:
    width = draw(st.integers(1, 4))
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["T", "row", "summary", "overflow", "noise", "ansi"]))
        if kind == "T":
            index = draw(st.one_of(st.integers(0, 5), st.integers(0, 10**12)))
            c, mn, avg, mx = (draw(st.one_of(big_ints, st.integers(-50, 0))) for _ in range(4))
            lines.append(f"T: {index} ( 1201) P:90 I:200 C: {c} Min: {mn} Act: 5 Avg: {avg} "
                         f"Max: {mx}")  # fmt: skip
        elif kind == "row":
            cells = [draw(big_ints) for _ in range(draw(st.integers(1, width + 2)))]
            lines.append(" ".join(f"{v:06d}" for v in cells))
        elif kind == "summary":
            key = draw(
                st.sampled_from(
                    [
                        "Total",
                        "Min Latencies",
                        "Avg Latencies",
                        "Max Latencies",
                        "Histogram Overflows",
                    ]
                )
            )
            values = [draw(big_ints) for _ in range(draw(st.integers(0, width + 1)))]
            lines.append(f"# {key}: " + " ".join(str(v) for v in values))
        elif kind == "overflow":
            index = draw(st.one_of(st.integers(0, 3), st.integers(0, 10**9)))
            cycles = [draw(big_ints) for _ in range(draw(st.integers(0, 4)))]
            lines.append(f"# Thread {index}: " + " ".join(str(v) for v in cycles))
        elif kind == "ansi":
            lines.append("\x1b[2K\x1b[1A" + draw(st.text(max_size=20)))
        else:
            lines.append(draw(st.text(max_size=30)))
    return "\n".join(lines)


@SETTINGS
@given(text_outputs())
def test_cyclictest_text_reader(text: str) -> None:
    try:
        result = parse_text(text)
    except CyclictestParseError:
        return
    assert len(result.threads) <= MAX_THREADS
    exercise(result)
    exercise(with_cmdline(result, "taskset -c 0-999999999 cyclictest -S -h400"))


@SETTINGS
@given(st.binary(max_size=300))
def test_cyclictest_file_reader_any_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "cyclictest.txt")
        path.write_bytes(data)
        with contextlib.suppress(CyclictestParseError):
            exercise(parse_file(path))


# --------------------------------------------------------------------------- RUN_DIR

host_names = st.one_of(
    st.sampled_from(["orin-01", "orin-02", "sim-01"]),
    awkward_text,
    st.sampled_from(["..", ".", "", "/etc", "../x", "a/b", "-rf", "a\nb", ".hidden"]),
    st.text(max_size=10),
)
gates = st.dictionaries(
    st.sampled_from(["all", "orin_nano", "sim", "line_a"]),
    st.one_of(
        st.fixed_dictionaries({}, optional={"max_us": numbers, "avg_us": numbers,
                                            "p99_9_us": numbers, "max_overflows": numbers,
                                            "exclusive": json_values}),
        json_values,
    ),
    max_size=2,
)  # fmt: skip
run_docs = st.fixed_dictionaries(
    {"schema_version": st.one_of(st.just(1), numbers)},
    optional={
        "hosts": st.one_of(
            st.dictionaries(host_names, st.lists(st.sampled_from(["orin_nano", "sim"])),
                            max_size=3),
            st.lists(host_names, max_size=3),
            json_values,
        ),
        "gates": st.one_of(gates, json_values),
        "budget": st.one_of(
            st.fixed_dictionaries({}, optional={"target_fps": numbers, "deadline_ms": numbers,
                                                "stages_ms": st.dictionaries(
                                                    st.sampled_from(["infer", "capture"]),
                                                    numbers, max_size=2)}),
            json_values,
        ),
        "cyclictest": st.fixed_dictionaries({}, optional={"cmdline": cmdlines,
                                                          "measured": json_values}),
        "run_id": json_values,
    },
)  # fmt: skip
host_docs = st.fixed_dictionaries(
    {},
    optional={
        "inventory_hostname": st.one_of(host_names, json_values),
        "groups": json_values,
        "reachable": st.one_of(st.booleans(), json_values),
        "error": json_values,
        "facts": json_values,
    },
)
audit_docs = st.one_of(
    st.fixed_dictionaries({"checks": st.lists(st.fixed_dictionaries(
        {"id": json_values, "status": st.sampled_from(["pass", "fail", "warn", "ok", "x"])}),
        max_size=3)}),
    json_values,
)  # fmt: skip
runner_docs = st.fixed_dictionaries(
    {
        "stages": st.dictionaries(
            st.sampled_from(["infer", "total"]),
            st.fixed_dictionaries({}, optional={"p50_ms": numbers, "p99_ms": numbers,
                                                "max_ms": numbers}),
            max_size=2,
        )
    },
    optional={"frames": numbers, "deadline_misses": numbers, "deadline_ms": numbers},
)  # fmt: skip
# One of a host's files: what a writer meant, or bytes.
file_bodies = st.one_of(st.binary(max_size=60), st.just(b""))


@st.composite
def run_dirs(draw: st.DrawFn, root: Path) -> None:
    run = draw(run_docs)
    root.mkdir()
    if draw(st.booleans()):
        (root / "run.json").write_text(json.dumps(run))
    else:
        (root / "run.json").write_bytes(draw(st.binary(max_size=80)))
    hosts = run.get("hosts")
    names = list(hosts) if isinstance(hosts, dict | list) else []
    names += draw(st.lists(st.sampled_from(["orin-03", "extra"]), max_size=1))
    outside = root.parent / "outside.json"
    outside.write_text(json.dumps({"inventory_hostname": "elsewhere", "reachable": True}))
    for name in dict.fromkeys(n for n in names if isinstance(n, str)):
        if not safe_host_name(name):
            continue
        folder = root / "hosts" / name
        folder.mkdir(parents=True, exist_ok=True)
        for file, docs in (
            ("host.json", host_docs),
            ("audit.json", audit_docs),
            ("cyclictest.json", cyclictest_docs),
            ("runner_stats.json", runner_docs),
        ):
            how = draw(st.sampled_from(["doc", "doc", "bytes", "absent", "link out"]))
            if how == "doc":
                (folder / file).write_text(json.dumps(draw(docs)))
            elif how == "bytes":
                (folder / file).write_bytes(draw(file_bodies))
            elif how == "link out":
                (folder / file).symlink_to(outside)
        if draw(st.booleans()):
            (folder / "cyclictest.txt").write_text(draw(text_outputs()))


@settings(SETTINGS, max_examples=60)
@given(st.data())
def test_run_dir_reader(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder, "run")
        data.draw(run_dirs(root))
        try:
            loaded = load_run(root)
        except ReportError:
            return
        for host in loaded.hosts:
            assert safe_host_name(host.name) or host.state == "inconsistent"
            if host.cyclictest is not None:
                exercise(host.cyclictest)
        report = judge_run(loaded)
        # report.json: no NaN or infinity, and text a UTF-8 file can hold
        json.dumps(build_report_dict(report), allow_nan=False, ensure_ascii=False).encode()
        ElementTree.fromstring(build_junit(report))  # well-formed XML whatever the files held
        for host in report.hosts:
            if host.verdict == "pass":
                assert host.record.state == "ok", host.reasons
                assert host.record.cyclictest is None or not host.record.cyclictest.problems
            if any("leaves RUN_DIR" in p for p in host.record.problems):
                assert host.verdict == "error"
            assert not any("elsewhere" in p for p in host.record.problems), (
                "a file outside RUN_DIR was read"
            )
