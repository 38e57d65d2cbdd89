"""Bad input to ``jetson-rt check-config`` (the runner unit's ExecStartPre).

Every case starts from a configuration that passes (:func:`runner_files.good_doc`:
a built ONNX Runtime artifact, its manifest and its source model) and breaks one
thing: the YAML itself, a value, a backend option, a path, or the artifact behind
it. Checked by :func:`tests.badinput.harness.check_refused`: exit 2, one ``ERROR``
line naming the problem, no traceback, nothing in the folder changed.

``test_run.py`` runs the same validation through ``jetson-rt run``: whatever one
refuses, the other refuses.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.badinput import runner_files as rf
from tests.badinput.harness import Case, check_refused, ids, run_cli

ARGV = ("check-config", "{dir}/runner.yaml")
EXIT = 2


def case(id: str, setup: rf.Setup, expect: str, argv: tuple[str, ...] = ARGV) -> Case:
    return Case(id=id, argv=argv, expect=expect, setup=setup, exit_code=EXIT, timeout_s=60)


def _fifo(folder: Path) -> None:
    # Outside the case folder: the harness's snapshot would block reading a FIFO.
    rf.copy_model(folder)
    os.mkfifo(folder.parent / "runner.fifo")


YAML = [
    case(
        "alias",
        rf.good_text_with(
            "  mlp: {backend: onnxruntime, path: model.ort.onnx}\n",
            "  mlp: &m {backend: onnxruntime, path: model.ort.onnx}\n  copy: *m\n",
        ),
        r"aliases are not accepted",
    ),
    case("billion-laughs", rf.text(rf.BILLION_LAUGHS), r"aliases are not accepted \(\*a\)"),
    case(
        "duplicate-top-level-key",
        rf.text(rf.GOOD_TEXT + "thermal: {enabled: true}\n"),
        r"line 10.*'thermal' is given twice \(first on line 8\)",
    ),
    case(
        "duplicate-nested-key",
        rf.good_text_with("deadline_ms: 50", "deadline_ms: 50, deadline_ms: 5"),
        r"'deadline_ms' is given twice",
    ),
    case(
        "duplicate-model-name",
        rf.good_text_with("models:\n", "models:\n  mlp: {backend: tensorrt, path: x}\n"),
        r"'mlp' is given twice",
    ),
    case(
        "latin-1",
        rf.raw(rf.GOOD_TEXT.encode() + b"# caf\xe9\n"),
        r"not UTF-8 text: byte 0xe9 on line 10",
    ),
    case("utf-16", rf.raw(rf.GOOD_TEXT.encode("utf-16")), r"not UTF-8 text"),
    case("nul-byte", rf.raw(rf.GOOD_TEXT.encode() + b"\x00\n"), r"NUL byte"),
    case("empty-file", rf.text(""), r"schema_version: is required"),
    case("only-a-comment", rf.text("# nothing\n"), r"schema_version: is required"),
    case("a-list", rf.text("- 1\n- 2\n"), r"<top>: must be a mapping, got a list"),
    case("a-string", rf.text("hello\n"), r"<top>: must be a mapping, got a string"),
    case("deep-nesting", rf.text("a: " + "[" * 200 + "]" * 200 + "\n"), r"nested deeper than 64"),
    case(
        "python-tag",
        rf.text("!!python/object/apply:os.system [true]\n"),
        r"could not determine a constructor",
    ),
    case(
        "huge-integer", rf.text("schema_version: 1" + "0" * 5000 + "\n"), r"not valid YAML.*digits"
    ),
    case("two-documents", rf.text(rf.GOOD_TEXT + "---\n" + rf.GOOD_TEXT), r"single document"),
    case("tab-indent", rf.good_text_with("  mlp:", "\tmlp:"), r"line 3.*'\\t'"),
    case("unclosed-flow", rf.good_text_with("[mlp]", "[mlp"), r"not valid YAML: line \d+"),
    case("mapping-key-a-list", rf.text("? [1, 2]\n: x\n"), r"a mapping key must be a plain value"),
    case(
        "too-large", rf.text(rf.GOOD_TEXT + "#" * (1024 * 1024) + "\n"), r"at most 1048576 are read"
    ),
    case("is-a-folder", rf.copy_model, r"not a regular file", ("check-config", "{dir}")),
    case("missing-file", rf.copy_model, r"cannot read runner configuration .*No such file"),
    case("fifo", _fifo, r"not a regular file", ("check-config", "{dir}/../runner.fifo")),
]

FLOATS = [
    case(
        "deadline-nan",
        rf.task(deadline_ms=float("nan")),
        r"tasks\[0\]\.deadline_ms: must be a finite number, got nan",
    ),
    case(
        "deadline-inf",
        rf.task(deadline_ms=float("inf")),
        r"tasks\[0\]\.deadline_ms: must be a finite number, got inf",
    ),
    case(
        "deadline-1e999",
        rf.good_text_with("deadline_ms: 50", "deadline_ms: 1.0e+999"),
        r"deadline_ms: must be a finite number",
    ),
    case(
        "period-minus-inf", rf.task(period_ms=float("-inf")), r"period_ms: must be a finite number"
    ),
    case(
        "watchdog-nan",
        rf.section("watchdog", timeout_ms=float("nan")),
        r"watchdog\.timeout_ms: must be a finite",
    ),
    case(
        "sla-target-nan",
        rf.task(sla={"target_pct": float("nan")}),
        r"sla\.target_pct: must be a finite",
    ),
    case(
        "sla-window-inf",
        rf.task(sla={"window_s": float("inf")}),
        r"sla\.window_s: must be a finite",
    ),
    case(
        "violation-nan",
        rf.task(degradation={"violation_fraction": float("nan")}),
        r"violation_fraction: must be a finite",
    ),
    case(
        "hold-inf",
        rf.task(degradation={"emergency_hold_ms": float("inf")}),
        r"emergency_hold_ms: must be a finite",
    ),
    case(
        "max-age-nan", rf.task(input={"max_age_ms": float("nan")}), r"max_age_ms: must be a finite"
    ),
    case(
        "max-cv-nan", rf.section("warmup", max_cv=float("nan")), r"warmup\.max_cv: must be a finite"
    ),
    case(
        "throttle-inf",
        rf.section("thermal", throttle_c=float("inf")),
        r"thermal\.throttle_c: must be a finite",
    ),
    case(
        "health-nan",
        rf.section("health", interval_s=float("nan")),
        r"health\.interval_s: must be a finite",
    ),
    case(
        "switch-interval-nan",
        rf.section("rt", switch_interval_ms=float("nan")),
        r"switch_interval_ms: must be a finite",
    ),
    case(
        "stats-interval-inf",
        rf.section("stats", interval_s=float("inf")),
        r"stats\.interval_s: must be a finite",
    ),
]

OPTIONS = [
    case(
        "option-misspelt",
        rf.options(batchsize=1),
        r"options\.batchsize: unknown key; did you mean 'batch'\?",
    ),
    case("option-of-the-other-backend", rf.options(dla_core=0), r"options\.dla_core: unknown key"),
    case("option-batch-zero", rf.options(batch=0), r"options\.batch: must be at least 1, got 0"),
    case("option-batch-negative", rf.options(batch=-4), r"options\.batch: must be at least 1"),
    case("option-batch-huge", rf.options(batch=10**12), r"options\.batch: must be at most 4096"),
    case(
        "option-batch-string",
        rf.options(batch="four"),
        r"options\.batch: must be an integer, got a string",
    ),
    case(
        "option-batch-float",
        rf.options(batch=1.5),
        r"options\.batch: must be an integer, got a number",
    ),
    case(
        "option-batch-bool",
        rf.options(batch=True),
        r"options\.batch: must be an integer, got a boolean",
    ),
    case(
        "option-threads-negative",
        rf.options(intra_op_threads=-1),
        r"intra_op_threads: must be at least 0",
    ),
    case(
        "option-threads-string",
        rf.options(inter_op_threads="all"),
        r"inter_op_threads: must be an integer",
    ),
    case(
        "option-optimization",
        rf.options(graph_optimization="turbo"),
        r"graph_optimization: must be one of disable, basic, extended, all",
    ),
    case(
        "option-spinning-string",
        rf.options(allow_spinning="yes"),
        r"allow_spinning: must be true or false",
    ),
    case(
        "option-verify",
        rf.options(verify=False),
        r"options\.verify: is not a backend option here: set models\.mlp\.verify",
    ),
    case(
        "option-input-shapes",
        rf.options(input_shapes={"input": [1, 64]}),
        r"options\.input_shapes: .*models\.mlp\.shapes",
    ),
    case(
        "options-a-list",
        rf.model(options=["batch=1"]),
        r"models\.mlp\.options: must be a mapping .*got a list",
    ),
    case(
        "options-int-key",
        rf.text(
            rf.GOOD_TEXT.replace("path: model.ort.onnx}", "path: model.ort.onnx, options: {1: 2}}")
        ),
        r"option names are strings",
    ),
    case(
        "shape-zero",
        rf.model(shapes={"input": [1, 0]}),
        r"shapes\.input\[1\]: must be an integer from 1",
    ),
    case(
        "shape-huge",
        rf.model(shapes={"input": [65536, 65536]}),
        r"shapes\.input: has 4294967296 elements",
    ),
    case(
        "shape-too-many-dims",
        rf.model(shapes={"input": [1] * 9}),
        r"shapes\.input: must be a list of 1 to 8",
    ),
    case("shape-not-a-list", rf.model(shapes={"input": "1x64"}), r"shapes\.input: must be a list"),
    case(
        "shape-float",
        rf.model(shapes={"input": [1, 64.0]}),
        r"shapes\.input\[1\]: must be an integer",
    ),
    case(
        "batch-disagrees-with-shape",
        rf.model(shapes={"input": [2, 64]}, options={"batch": 4}),
        r"options\.batch: is 4 but shapes\.input starts with 2",
    ),
]

VALUES_AND_PATHS = [
    case(
        "path-nul",
        rf.model(path="model\x00.onnx"),
        r"models\.mlp\.path: must not contain control characters",
    ),
    case(
        "path-newline",
        rf.model(path="model\n.onnx"),
        r"models\.mlp\.path: must not contain control characters",
    ),
    case("path-empty", rf.model(path=""), r"models\.mlp\.path: is required"),
    case("path-huge", rf.model(path="m" * 5000), r"models\.mlp\.path: is 5000 characters long"),
    case(
        "path-a-list", rf.model(path=["a.onnx"]), r"models\.mlp\.path: must be a string, got a list"
    ),
    case(
        "model-missing",
        rf.model(path="absent.onnx"),
        r"models\.mlp\.path: .*absent\.onnx does not exist",
    ),
    case("stats-path-a-folder", rf.section("stats", path="."), r"stats\.path: .* is a folder"),
    case(
        "input-path-nul",
        rf.task(input={"source": "npy", "path": "in\x00put"}),
        r"input\.path: must not contain control",
    ),
    case("period-negative", rf.task(period_ms=-5), r"period_ms: must be at least 0"),
    case("deadline-zero", rf.task(deadline_ms=0), r"deadline_ms: must be greater than 0"),
    case(
        "hold-negative",
        rf.task(degradation={"emergency_hold_ms": -1}),
        r"emergency_hold_ms: must be at least 0",
    ),
    case(
        "verify-a-string",
        rf.model(verify="no"),
        r"models\.mlp\.verify: must be true or false, got a string 'no'",
    ),
    case(
        "max-errors-zero",
        rf.task(max_consecutive_errors=0),
        r"max_consecutive_errors: must be at least 1",
    ),
    case(
        "huge-string-value-cut-short",
        rf.model(backend="x" * 100_000),
        r"backend: must be one of onnxruntime, tensorrt, got 'xxx.*\.\.\.$",
    ),
]

VALUES_AND_PATHS += [
    case(
        "prometheus-address-space",
        rf.section("prometheus", port=9108, address="bad host"),
        r"prometheus\.address: must be an IP address or a host name, got 'bad host'",
    ),
    case(
        "prometheus-address-label-too-long",
        rf.section("prometheus", port=9108, address="a" * 64),
        r"prometheus\.address: must be an IP address or a host name",
    ),
    case(
        "prometheus-port-string",
        rf.section("prometheus", port="http"),
        r"prometheus\.port: must be an integer, got a string",
    ),
]

ENGINES = [
    case("no-manifest", rf.artifact(lambda d: (d / rf.MANIFEST).unlink()), r"has no manifest"),
    case(
        "artifact-changed",
        rf.artifact(lambda d: rf.flip_byte(d / rf.ARTIFACT)),
        r"sha256 .* differs from its manifest",
    ),
    case(
        "artifact-truncated",
        rf.artifact(lambda d: (d / rf.ARTIFACT).write_bytes(b"onnx")),
        r"is 4 bytes but its manifest records",
    ),
    case(
        "source-model-edited",
        rf.artifact(lambda d: rf.flip_byte(d / rf.MODEL)),
        r"model\.onnx changed after model\.ort\.onnx was built",
    ),
    case(
        "source-model-gone",
        rf.artifact(lambda d: (d / rf.MODEL).unlink()),
        r"was built from .*model\.onnx, which does not exist",
    ),
    case(
        "source-elsewhere",
        rf.artifact(rf.edit_manifest(source="/nonexistent/model.onnx")),
        r"/nonexistent/model\.onnx, which does not exist",
    ),
    case(
        "source-sha-wrong",
        rf.artifact(rf.edit_manifest(source_sha256="0" * 64)),
        r"changed after .* was built",
    ),
    case(
        "manifest-not-json",
        rf.artifact(lambda d: (d / rf.MANIFEST).write_text("{")),
        r"is not valid JSON",
    ),
    case(
        "manifest-a-list",
        rf.artifact(lambda d: (d / rf.MANIFEST).write_text("[]")),
        r"is not a JSON object",
    ),
    case("manifest-schema", rf.artifact(rf.edit_manifest(schema=99)), r"has schema 99"),
    case(
        "manifest-names-another-file",
        rf.artifact(rf.edit_manifest(artifact="other.onnx")),
        r"describes 'other\.onnx'",
    ),
]

YAML += [
    case(
        "file-argument-missing",
        rf.copy_model,
        r"the following arguments are required: file",
        ("check-config",),
    ),
]

ENGINES += [
    case(
        "manifest-sha-a-number",
        rf.artifact(rf.edit_manifest(artifact_sha256=5)),
        r"artifact_sha256 must be a string, got int",
    ),
    case(
        "manifest-source-null",
        rf.artifact(rf.edit_manifest(source=None)),
        r"source must be a string, got NoneType",
    ),
    case(
        "manifest-bytes-a-string",
        rf.artifact(rf.edit_manifest(artifact_bytes="12")),
        r"artifact_bytes must be a number, got str",
    ),
]

CASES = YAML + FLOATS + OPTIONS + VALUES_AND_PATHS + ENGINES


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_refused(case: Case, tmp_path: Path) -> None:
    check_refused(case, tmp_path / "case")


def test_the_good_configuration_is_accepted(tmp_path: Path) -> None:
    """Every case breaks one thing in this configuration: unbroken, it must pass."""
    rf.write_doc(tmp_path, rf.good_doc(tmp_path))
    outcome = run_cli(["check-config", str(tmp_path / rf.CONFIG)], tmp_path)
    assert outcome.returncode == 0, outcome.stderr
    rf.text(rf.GOOD_TEXT)(tmp_path)
    outcome = run_cli(["check-config", str(tmp_path / rf.CONFIG)], tmp_path)
    assert outcome.returncode == 0, outcome.stderr


def test_verification_off_is_explicit_and_logged(tmp_path: Path) -> None:
    data = rf.good_doc(tmp_path)
    data["models"]["mlp"]["verify"] = False
    rf.write_doc(tmp_path, data)
    (tmp_path / rf.MANIFEST).unlink()
    outcome = run_cli(["check-config", str(tmp_path / rf.CONFIG)], tmp_path)
    assert outcome.returncode == 0, outcome.stderr
    assert "WARNING jetson_rt: models.mlp.verify is false" in outcome.stderr
