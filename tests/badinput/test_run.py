"""Bad input to ``jetson-rt run``: refused before anything starts.

``run`` shares ``check-config``'s validation (:func:`jetson_rt.runner.cli.validated_config`),
so these cases are a cross-section of ``test_check_config.py``'s, one or more per
class, plus the command's own flags. Each case passes ``--max-inferences`` and
``--duration``: a case accepted by mistake ends on its own instead of hanging, and
its stats file shows up as a change in the folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.badinput import runner_files as rf
from tests.badinput.harness import Case, check_refused, ids, run_cli

LIMITS = ("--max-inferences", "5", "--duration", "5")
ARGV = ("run", "--config", "{dir}/runner.yaml", *LIMITS)
EXIT = 2


def case(id: str, setup: rf.Setup, expect: str, argv: tuple[str, ...] = ARGV) -> Case:
    return Case(id=id, argv=argv, expect=expect, setup=setup, exit_code=EXIT, timeout_s=60)


def good(folder: Path) -> None:
    rf.write_doc(folder, rf.good_doc(folder))


CONFIGS = [
    case("alias", rf.text(rf.BILLION_LAUGHS), r"aliases are not accepted"),
    case(
        "duplicate-key",
        rf.good_text_with("deadline_ms: 50", "deadline_ms: 50, deadline_ms: 5"),
        r"'deadline_ms' is given twice",
    ),
    case("latin-1", rf.raw(b"schema_version: 1\n# \xff\n"), r"not UTF-8 text: byte 0xff on line 2"),
    case(
        "is-a-folder", rf.copy_model, r"not a regular file", ("run", "--config", "{dir}", *LIMITS)
    ),
    case(
        "deadline-nan", rf.task(deadline_ms=float("nan")), r"deadline_ms: must be a finite number"
    ),
    case("period-inf", rf.task(period_ms=float("inf")), r"period_ms: must be a finite number"),
    case("watchdog-nan", rf.section("watchdog", timeout_ms=float("nan")), r"watchdog\.timeout_ms"),
    case("option-unknown", rf.options(batchsize=1), r"options\.batchsize: unknown key"),
    case("option-batch-zero", rf.options(batch=0), r"options\.batch: must be at least 1"),
    case("option-batch-string", rf.options(batch="x"), r"options\.batch: must be an integer"),
    case("option-threads-negative", rf.options(intra_op_threads=-2), r"intra_op_threads"),
    case("shape-huge", rf.model(shapes={"input": [1 << 20, 1 << 20]}), r"elements"),
    case("path-nul", rf.model(path="a\x00b"), r"control characters"),
    case("model-missing", rf.model(path="absent.onnx"), r"absent\.onnx does not exist"),
    case("max-errors-zero", rf.task(max_consecutive_errors=0), r"max_consecutive_errors"),
]

ENGINES = [
    case("no-manifest", rf.artifact(lambda d: (d / rf.MANIFEST).unlink()), r"has no manifest"),
    case("artifact-changed", rf.artifact(lambda d: rf.flip_byte(d / rf.ARTIFACT)), r"differs"),
    case(
        "source-model-edited",
        rf.artifact(lambda d: rf.flip_byte(d / rf.MODEL)),
        r"model\.onnx changed after model\.ort\.onnx was built",
    ),
    case(
        "source-model-gone",
        rf.artifact(lambda d: (d / rf.MODEL).unlink()),
        r"which does not exist",
    ),
    case("manifest-schema", rf.artifact(rf.edit_manifest(schema=2)), r"has schema 2"),
]

FLAGS = [
    case(
        "duration-nan", good, r"--duration must be a positive number", (*ARGV, "--duration", "nan")
    ),
    case(
        "duration-inf", good, r"--duration must be a positive number", (*ARGV, "--duration", "inf")
    ),
    case("duration-negative", good, r"--duration must be a positive", (*ARGV, "--duration", "-1")),
    case("duration-zero", good, r"--duration must be a positive", (*ARGV, "--duration", "0")),
    case(
        "max-inferences-zero",
        good,
        r"--max-inferences must be at least 1",
        (*ARGV, "--max-inferences", "0"),
    ),
    case("stats-a-folder", good, r"stats\.path: .* is a folder", (*ARGV, "--stats", "{dir}")),
    case(
        "config-missing",
        good,
        r"cannot read runner configuration",
        ("run", "--config", "{dir}/absent.yaml", *LIMITS),
    ),
]

FLAGS += [
    case(
        "duration-not-a-number",
        good,
        r"argument --duration: invalid float value: 'soon'",
        (*ARGV, "--duration", "soon"),
    ),
    case(
        "max-inferences-float",
        good,
        r"argument --max-inferences: invalid int value: '1\.5'",
        (*ARGV, "--max-inferences", "1.5"),
    ),
    case(
        "config-flag-missing",
        good,
        r"the following arguments are required: --config",
        ("run", *LIMITS),
    ),
]

CASES = CONFIGS + ENGINES + FLAGS


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_refused(case: Case, tmp_path: Path) -> None:
    check_refused(case, tmp_path / "case")


def test_what_check_config_accepts_run_starts(tmp_path: Path) -> None:
    """The good configuration the cases break: accepted by check-config, run by run."""
    good(tmp_path)
    config = str(tmp_path / rf.CONFIG)
    assert run_cli(["check-config", config], tmp_path).returncode == 0
    outcome = run_cli(["run", "--config", config, *LIMITS], tmp_path)
    assert outcome.returncode == 0, outcome.stderr
    stats = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    assert stats["state"] == "stopped"
    assert stats["tasks"]["classify"]["counts"]["inferences"] >= 5
