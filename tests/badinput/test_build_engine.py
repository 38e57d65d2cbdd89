"""Bad input to ``jetson-rt build-engine``, refused before anything is built.

The ONNX Runtime backend is used (TensorRT does not exist here); the flags that
only TensorRT takes are refused for it, which is itself a case. Checked by
:func:`tests.badinput.harness.check_refused`: exit 2, one ``ERROR`` line, no
traceback, and no artifact, manifest or temporary file left in the folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.badinput import runner_files as rf
from tests.badinput.harness import Case, check_refused, ids

ORT = ("--backend", "onnxruntime")
EXIT = 2


def model(folder: Path) -> None:
    from onnx_models import write_mlp

    write_mlp(folder, rf.MODEL)


def model_and(extra: str) -> rf.Setup:
    def setup(folder: Path) -> None:
        model(folder)
        if extra == "file":
            (folder / "afile").write_text("x", encoding="utf-8")
        elif extra == "garbage":
            (folder / "bad.onnx").write_bytes(b"\x08\x07garbage")
        elif extra == "empty":
            (folder / "empty.onnx").write_bytes(b"")
        elif extra == "folder":
            (folder / "dir.onnx").mkdir()
        elif extra == "custom-op":
            from onnx_models import write_unsupported_op

            write_unsupported_op(folder, "custom.onnx")

    return setup


def case(id: str, args: tuple[str, ...], expect: str, setup: rf.Setup = model) -> Case:
    argv = ("build-engine", *args)
    return Case(id=id, argv=argv, expect=expect, setup=setup, exit_code=EXIT, timeout_s=60)


M = "{dir}/model.onnx"

CASES = [
    case("model-missing", ("{dir}/absent.onnx", *ORT), r"absent\.onnx does not exist"),
    case(
        "model-not-onnx-suffix", ("{dir}/afile", *ORT), r"is not an \.onnx file", model_and("file")
    ),
    case(
        "model-garbage",
        ("{dir}/bad.onnx", *ORT),
        r"not a readable ONNX model",
        model_and("garbage"),
    ),
    case("model-empty", ("{dir}/empty.onnx", *ORT), r"empty\.onnx", model_and("empty")),
    case("model-a-folder", ("{dir}/dir.onnx", *ORT), r"dir\.onnx", model_and("folder")),
    case("output-overwrites-model", (M, *ORT, "-o", M), r"would overwrite the ONNX model"),
    case("output-a-folder", (M, *ORT, "-o", "{dir}"), r"--output .* is a folder"),
    case(
        "output-under-a-file",
        (M, *ORT, "-o", "{dir}/afile/x.onnx"),
        r"afile is not a folder",
        model_and("file"),
    ),
    case(
        "shapes-not-dims",
        (M, *ORT, "--shapes", "input:1xnan"),
        r"--shapes item 'input:1xnan' is not NAME:DxDx",
    ),
    case("shapes-zero", (M, *ORT, "--shapes", "input:0x64"), r"has a dimension of 0"),
    case(
        "shapes-colon-name-without-dims",
        (M, *ORT, "--shapes", "image:0"),
        r"if 'image:0' is the input's name, add its shape: image:0:1x3x224x224",
    ),
    case(
        "op-onnx-runtime-cannot-load",
        ("{dir}/custom.onnx", *ORT),
        r"ONNX Runtime cannot load custom\.onnx: .*FancyNms.* Ops it could not place: "
        r"node 'postprocess_nms' \(com\.example\.vision::FancyNms, opset 1\)",
        model_and("custom-op"),
    ),
    case("shapes-no-name", (M, *ORT, "--shapes", "1x64"), r"--shapes item '1x64'"),
    case(
        "shapes-unknown-input",
        (M, *ORT, "--shapes", "wrong:1x64"),
        r"input_shapes names \['wrong'\]",
    ),
    case("shapes-fixed-axis", (M, *ORT, "--shapes", "input:7x64"), r"fixes it at 1"),
    case(
        "shapes-twice",
        (M, *ORT, "--shapes", "input:1x64", "--min-shapes", "input:1x64"),
        r"given both in --shapes",
    ),
    case(
        "trt-flag-for-ort",
        (M, *ORT, "--dla-core", "0"),
        r"--dla-core .*only apply to --backend tensorrt",
    ),
    case("workspace-negative", (M, "--workspace", "-5"), r"--workspace must be a positive number"),
    case("dla-core-negative", (M, "--dla-core", "-1"), r"--dla-core must be >= 0"),
    case(
        "calib-dir-missing",
        (M, "--precision", "int8", "--calib-dir", "{dir}/absent"),
        r"calibration folder .*absent does not exist",
    ),
    case(
        "calib-batch-zero",
        (M, "--precision", "int8", "--calib-batch-size", "0"),
        r"--calib-batch-size must be positive",
    ),
]

CASES += [
    case(
        "workspace-not-a-number",
        (M, "--workspace", "lots"),
        r"argument --workspace: invalid int value",
    ),
    case(
        "backend-unknown",
        (M, "--backend", "tflite"),
        r"argument --backend: invalid choice: 'tflite'",
    ),
    case(
        "optimization-level-6",
        (M, "--builder-optimization-level", "6"),
        r"argument --builder-optimization-level: invalid choice",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_refused(case: Case, tmp_path: Path) -> None:
    check_refused(case, tmp_path / "case")
