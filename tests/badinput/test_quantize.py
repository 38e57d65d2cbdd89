"""Bad input to ``jetson-rt quantize``, refused before ModelOpt is asked for anything.

The project's venv has no ModelOpt (it is the ``quantize`` extra): a valid request
is refused for that reason, saying what to install, which is itself a case.
Checked by :func:`tests.badinput.harness.check_refused`: exit 2, one ``ERROR``
line, no traceback, and no output or temporary file left in the folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.badinput import runner_files as rf
from tests.badinput.harness import Case, check_refused, ids

EXIT = 2
M = "{dir}/model.onnx"


def model(folder: Path) -> None:
    from onnx_models import write_mlp

    write_mlp(folder, rf.MODEL)


def model_and_samples(shape: tuple[int, ...]) -> rf.Setup:
    def setup(folder: Path) -> None:
        model(folder)
        (folder / "calib").mkdir()
        for index in range(2):
            np.save(folder / "calib" / f"{index}.npy", np.zeros(shape, np.float32))

    return setup


def case(id: str, args: tuple[str, ...], expect: str, setup: rf.Setup = model) -> Case:
    return Case(
        id=id, argv=("quantize", *args), expect=expect, setup=setup, exit_code=EXIT, timeout_s=60
    )


CASES = [
    case("model-missing", ("{dir}/absent.onnx", "--calib-dir", "{dir}"), r"absent\.onnx does"),
    case(
        "calib-dir-missing",
        (M, "--calib-dir", "{dir}/absent"),
        r"calibration folder .*absent does not exist",
    ),
    case("calib-dir-empty", (M, "--calib-dir", "{dir}"), r"has no \.npy samples"),
    case(
        "output-is-the-model",
        (M, "--calib-dir", "{dir}", "-o", M),
        r"would overwrite the model",
    ),
    case("limit-zero", (M, "--calib-dir", "{dir}", "--limit", "0"), r"--limit must be positive"),
    case(
        "no-modelopt",
        (M, "--calib-dir", "{dir}/calib"),
        r"pip install 'jetson-rt\[quantize\]'",
        setup=model_and_samples((64,)),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_refused(case: Case, tmp_path: Path) -> None:
    check_refused(case, tmp_path / "case")
