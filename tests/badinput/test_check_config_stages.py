"""Bad ``preprocess``/``postprocess`` sections refused by ``jetson-rt check-config``.

Each case writes a runner.yaml over a small ONNX model with a YOLO-style head
(``images [1, 3, 64, 64]`` -> ``output0 [1, 7, 64]``) or over an MLP whose
output is no detection head, and breaks one thing about the stages. Checked by
:func:`tests.badinput.harness.check_refused`: exit 2, one ``ERROR`` line naming
the field, no traceback, nothing in the folder changed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.badinput.harness import Case, check_refused, ids

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "prepost"))

from yolo_model import write_yolo_model

PRE = {"format": "nv12", "width": 128, "height": 96, "resize": "letterbox", "size": [64, 64]}
POST = {"kind": "detect", "max_det": 10}


def setup(model: str = "yolo", **stages: Any) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        if model == "yolo":
            write_yolo_model(folder / "model.onnx")
        else:
            import onnx_models

            onnx_models.write_mlp(folder, "model.onnx")
        body: dict[str, Any] = {"backend": "onnxruntime", "path": "model.onnx", "verify": False}
        body.update({key: value for key, value in stages.items() if value is not None})
        doc = {
            "schema_version": 1,
            "models": {"det": body},
            "tasks": [{"name": "det", "tiers": ["det"], "deadline_ms": 100}],
            "rt": {"priority": 0, "cpus": "all", "mlockall": False},
        }
        (folder / "runner.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))

    return write


def case(id: str, write: Callable[[Path], None], expect: str) -> Case:
    return Case(
        id=id,
        argv=("check-config", "{dir}/runner.yaml"),
        expect=expect,
        setup=write,
        exit_code=2,
        timeout_s=60,
    )


CASES = [
    case(
        "max-det-zero",
        setup(preprocess=PRE, postprocess={**POST, "max_det": 0}),
        r"models\.det\.postprocess\.max_det: must be at least 1, got 0",
    ),
    case(
        "max-det-negative",
        setup(preprocess=PRE, postprocess={**POST, "max_det": -1}),
        r"models\.det\.postprocess\.max_det: must be at least 1",
    ),
    case(
        "letterbox-bigger-than-the-input",
        setup(preprocess={**PRE, "size": [640, 640]}, postprocess=POST),
        r"models\.det\.preprocess\.size: letterbox to 640x640 is bigger than the model input 64x64",
    ),
    case(
        "letterbox-bigger-than-declared-shape",
        setup(
            preprocess={**PRE, "size": [640, 640]},
            postprocess=POST,
            shapes={"images": [1, 3, 64, 64]},
        ),
        r"models\.det\.preprocess\.size: .*bigger than the model input",
    ),
    case(
        "output-is-not-a-detection-head",
        setup("mlp", postprocess={**POST, "boxes": "model"}),
        r"models\.det\.postprocess\.kind: detect reads 4 box values .* output \[1, 10\]",
    ),
    case(
        "crop-bigger-than-size",
        setup(preprocess={**PRE, "crop": [96, 96]}, postprocess=POST),
        r"models\.det\.preprocess\.crop: \[96, 96\] is bigger than size \[64, 64\]",
    ),
    case(
        "unknown-source-format",
        setup(preprocess={**PRE, "format": "yuyv"}, postprocess=POST),
        r"models\.det\.preprocess\.format: must be one of nv12, bgr, rgb, gray",
    ),
    case(
        "odd-nv12-height",
        setup(preprocess={**PRE, "height": 95}, postprocess=POST),
        r"models\.det\.preprocess\.height: NV12 frames have an even width and height",
    ),
    case(
        "unknown-postprocess-kind",
        setup(preprocess=PRE, postprocess={"kind": "segment"}),
        r"models\.det\.postprocess\.kind: must be one of none, classify, detect",
    ),
    case(
        "iou-threshold-above-one",
        setup(preprocess=PRE, postprocess={**POST, "iou_threshold": 2}),
        r"models\.det\.postprocess\.iou_threshold: must be at most 1",
    ),
    case(
        "top-k-more-than-classes",
        setup("mlp", postprocess={"kind": "classify", "top_k": 50}),
        r"models\.det\.postprocess\.top_k: is 50, but the model has 10 classes",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_refused(case: Case, tmp_path: Path) -> None:
    check_refused(case, tmp_path / "case")
