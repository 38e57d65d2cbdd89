"""Bad input to ``jetson-rt bench``, refused before the first inference.

``--option`` values are read with the runner's YAML loader and checked with the
same table as ``models.NAME.options`` in runner.yaml. Checked by
:func:`tests.badinput.harness.check_refused`: exit 2, one ``ERROR`` line, no
traceback, no ``--json`` file written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.badinput import runner_files as rf
from tests.badinput.harness import Case, check_refused, ids, run_cli

EXIT = 2
LIMITS = ("--iterations", "5", "--warmup", "1")


def model(folder: Path) -> None:
    from onnx_models import write_mlp

    write_mlp(folder, rf.MODEL)


def with_file(folder: Path) -> None:
    model(folder)
    (folder / "afile").write_text("x", encoding="utf-8")


def case(id: str, args: tuple[str, ...], expect: str, setup: rf.Setup = model) -> Case:
    argv = ("bench", "{dir}/model.onnx", *LIMITS, *args)
    return Case(id=id, argv=argv, expect=expect, setup=setup, exit_code=EXIT, timeout_s=60)


def option(value: str, expect: str, id: str) -> Case:
    return case(id, ("--option", value), expect)


def other_cpu_artifact(folder: Path) -> None:
    """An ``all`` artifact whose manifest records a CPU feature no host has."""
    import json

    from jetson_rt.engine.build import build
    from jetson_rt.engine.options import BuildOptions

    model(folder)
    artifact = folder / "model.ort.onnx"
    build(
        BuildOptions(
            model=folder / rf.MODEL, output=artifact, backend="onnxruntime", precision="fp32"
        )
    )
    manifest = folder / "model.ort.onnx.manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["platform"]["cpu_features"] = "avx,avx_imaginary"
    manifest.write_text(json.dumps(data), encoding="utf-8")


CASES = [
    case("idle-nan", ("--idle-ms", "nan"), r"--idle-ms must be a number >= 0, got nan"),
    case("idle-inf", ("--idle-ms", "inf"), r"--idle-ms must be a number >= 0, got inf"),
    case("idle-negative", ("--idle-ms", "-1"), r"--idle-ms must be a number >= 0"),
    case("duration-nan", ("--duration", "nan"), r"--duration must be a positive number of seconds"),
    case("duration-negative", ("--duration", "-3"), r"--duration must be a positive number"),
    case("iterations-zero", ("--iterations", "0"), r"--iterations must be at least 1"),
    case("warmup-negative", ("--warmup", "-1"), r"--warmup must not be negative"),
    case("backend-unknown", ("--backend", "tflite"), r"--backend must be onnxruntime or tensorrt"),
    case("json-a-folder", ("--json", "{dir}"), r"--json .* is a folder"),
    case(
        "json-under-a-file", ("--json", "{dir}/afile/out.json"), r"afile is not a folder", with_file
    ),
    Case(
        id="model-missing",
        argv=("bench", "{dir}/absent.onnx", *LIMITS),
        expect=r"absent\.onnx does not exist",
        setup=model,
        exit_code=EXIT,
    ),
    option("batch", r"--option 'batch': expected KEY=VALUE", "option-no-equals"),
    option("=4", r"expected KEY=VALUE", "option-no-key"),
    option(
        "batchsize=4", r"--option\.batchsize: unknown key; did you mean 'batch'", "option-unknown"
    ),
    option("batch=0", r"--option\.batch: must be at least 1", "option-batch-zero"),
    option(
        "batch=four", r"--option\.batch: must be an integer, got a string", "option-batch-string"
    ),
    option("batch=.nan", r"--option\.batch: must be an integer, got a number", "option-batch-nan"),
    option("intra_op_threads=-1", r"intra_op_threads: must be at least 0", "option-threads"),
    option("graph_optimization=max", r"graph_optimization: must be one of", "option-optimization"),
    option("verify=maybe", r"--option verify: must be true or false", "option-verify"),
    option(
        "input_shapes=[1, 64]", r"--option input_shapes: must map input names", "option-shapes-list"
    ),
    option(
        "input_shapes={input: [0, 64]}",
        r"input_shapes\.input\[0\]: must be an integer from 1",
        "option-shapes-zero",
    ),
    option("batch=[1, 2", r"--option batch is not valid YAML", "option-bad-yaml"),
    option("batch=*a", r"aliases are not accepted", "option-alias"),
    case(
        "option-twice",
        ("--option", "batch=1", "--option", "batch=2"),
        r"--option batch is given twice",
    ),
    Case(
        id="artifact-built-for-other-cpu-features",
        argv=("bench", "{dir}/model.ort.onnx", *LIMITS),
        expect=r"optimised \(--ort-optimization all\) for a CPU with .*; this host lacks "
        r"avx_imaginary: rebuild it on this host .* --ort-optimization portable",
        setup=other_cpu_artifact,
        exit_code=EXIT,
        timeout_s=60,
    ),
]

CASES += [
    case(
        "iterations-not-a-number",
        ("--iterations", "many"),
        r"argument --iterations: invalid int value",
    ),
    case("graph-unknown", ("--graph", "maybe"), r"argument --graph: invalid choice: 'maybe'"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_refused(case: Case, tmp_path: Path) -> None:
    check_refused(case, tmp_path / "case")


def test_the_good_command_runs(tmp_path: Path) -> None:
    model(tmp_path)
    argv = ["bench", str(tmp_path / rf.MODEL), *LIMITS, "--json", str(tmp_path / "out/b.json")]
    outcome = run_cli([*argv, "--option", "intra_op_threads=1"], tmp_path)
    assert outcome.returncode == 0, outcome.stderr
    assert (tmp_path / "out/b.json").is_file()
