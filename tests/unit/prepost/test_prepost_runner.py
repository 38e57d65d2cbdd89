"""Pre/post stages in runner.yaml: validation, refusals, and the CPU lane in the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from yolo_model import write_yolo_model

from jetson_rt.errors import ConfigError
from jetson_rt.prepost.check import model_file_problems
from jetson_rt.runner.config import InputConfig, check_files, parse_config

PRE = {
    "format": "nv12",
    "width": 128,
    "height": 96,
    "resize": "letterbox",
    "size": [64, 64],
}
POST = {"kind": "detect", "score_threshold": 0.25, "iou_threshold": 0.45, "max_det": 10}


def _doc(model: Path, tmp_path: Path, **model_keys: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"backend": "onnxruntime", "path": str(model), "verify": False}
    body.update(model_keys)
    return {
        "schema_version": 1,
        "models": {"det": body},
        "tasks": [{"name": "det", "tiers": ["det"], "deadline_ms": 200}],
        "warmup": {"min_iterations": 3, "max_iterations": 20, "window": 3, "max_cv": 5.0},
        "rt": {"priority": 0, "cpus": "all", "mlockall": False},
        "watchdog": {"timeout_ms": 5000},
        "stats": {"path": str(tmp_path / "stats.json"), "interval_s": 0.1},
        "thermal": {"enabled": False},
    }


@pytest.fixture
def yolo(tmp_path: Path) -> tuple[Path, Any]:
    path = tmp_path / "yolo.onnx"
    return path, write_yolo_model(path)


def test_stages_are_parsed_into_the_model(yolo: tuple[Path, Any], tmp_path: Path) -> None:
    config = parse_config(_doc(yolo[0], tmp_path, preprocess=PRE, postprocess=POST))
    model = config.models["det"]
    assert model.preprocess is not None and model.postprocess is not None
    assert model.preprocess.frame_shape == (144, 128)
    assert model.preprocess.tensor_shape == (1, 3, 64, 64)
    assert model.postprocess.max_det == 10
    assert check_files(config) == []


@pytest.mark.parametrize(
    ("pre", "post", "shapes", "field", "fragment"),
    [
        (PRE, {**POST, "max_det": 0}, None, "postprocess.max_det", "at least 1, got 0"),
        (PRE, {**POST, "max_det": -3}, None, "postprocess.max_det", "at least 1"),
        (
            {**PRE, "size": [640, 640]},
            POST,
            {"images": [1, 3, 64, 64]},
            "preprocess.size",
            "bigger than the model input 64x64",
        ),
        ({**PRE, "crop": [80, 80]}, POST, None, "preprocess.crop", "bigger than size"),
        ({**PRE, "format": "yuyv"}, POST, None, "preprocess.format", "one of nv12, bgr"),
        ({**PRE, "width": 127}, POST, None, "preprocess.width", "even width"),
        (PRE, {**POST, "iou_threshold": 1.5}, None, "postprocess.iou_threshold", "at most 1"),
        (PRE, {**POST, "kind": "segment"}, None, "postprocess.kind", "none, classify, detect"),
        (PRE, {**POST, "max_dets": 5}, None, "postprocess.max_dets", "unknown key"),
        ({**PRE, "std": [1, 0, 1]}, POST, None, "preprocess.std", "must not contain 0"),
        (None, {**POST, "boxes": "source"}, None, "postprocess.boxes", "needs a preprocess"),
    ],
)
def test_impossible_stages_are_refused_naming_the_field(  # noqa: PLR0917 - parametrized
    yolo: tuple[Path, Any],
    tmp_path: Path,
    pre: Any,
    post: Any,
    shapes: Any,
    field: str,
    fragment: str,
) -> None:
    keys: dict[str, Any] = {"postprocess": post}
    if pre is not None:
        keys["preprocess"] = pre
    if shapes is not None:
        keys["shapes"] = shapes
    with pytest.raises(ConfigError) as info:
        parse_config(_doc(yolo[0], tmp_path, **keys))
    message = str(info.value)
    assert f"models.det.{field}: " in message
    assert fragment in message


def test_a_model_whose_output_does_not_fit_detect_is_refused(tmp_path: Path) -> None:
    import onnx_models

    mlp = onnx_models.write_mlp(tmp_path)
    config = parse_config(_doc(mlp.path, tmp_path, postprocess={**POST, "boxes": "model"}))
    problems = check_files(config)
    assert any(p.startswith("models.det.postprocess.kind: detect") for p in problems), problems


def test_a_letterbox_bigger_than_the_model_input_is_refused_by_the_file_check(
    yolo: tuple[Path, Any],
) -> None:
    from jetson_rt.prepost.spec import parse_preprocess

    pre = parse_preprocess({**PRE, "size": [128, 128]}, "p", lambda p, m: None)
    problems = model_file_problems("det", yolo[0], pre, None, {})
    assert problems == [
        "models.det.preprocess.size: letterbox to 128x128 is bigger than the model input "
        "64x64 ([1, 3, 64, 64])"
    ]


def _nv12(rng: np.random.Generator) -> Any:
    return rng.integers(0, 256, (144, 128), dtype=np.uint8)


def test_runner_cpu_lane_end_to_end_with_bad_frames(yolo: tuple[Path, Any], tmp_path: Path) -> None:
    from jetson_rt.runner.service import Runner
    from jetson_rt.runner.sources import FrameSource

    path, _ = yolo
    config = parse_config(_doc(path, tmp_path, preprocess=PRE, postprocess=POST))
    source = FrameSource(InputConfig(capacity=4))
    runner = Runner(config, sources={"det": source})
    scheduler = runner.prepare()
    try:
        task = runner.tasks[0]
        tier = task.tiers[0]
        assert [spec.name for spec in tier.input_specs] == ["frame"]
        assert tier.output_names == ["count", "detections"]
        rng = np.random.default_rng(0)
        wrong = [
            rng.integers(0, 256, (96, 128, 3), dtype=np.uint8),  # BGR where NV12 is declared
            rng.integers(0, 256, (1080 * 3 // 2, 1920), dtype=np.uint8),  # another size
            _nv12(rng).astype(np.float32),  # not uint8
        ]
        for frame in wrong:
            assert not source.push(frame)
        before = task.inferences
        for _ in range(3):
            assert source.push(_nv12(rng))
            scheduler.run(max_inferences=task.inferences + 1)
        assert task.inferences == before + 3
        assert source.rejected == len(wrong)
        result = tier.results()
        # The model's head holds two objects: three overlapping class-1 boxes and one class-2.
        assert int(result["count"][0]) == 2
        rows = result["detections"]
        np.testing.assert_array_equal(rows[:2, 5], [1, 2])
        np.testing.assert_allclose(rows[:2, 4], [0.9, 0.6], rtol=1e-6)
        # Mapped back to the 128x96 frame: the letterbox scaled by 1/2, 8 rows of padding.
        np.testing.assert_allclose(rows[0, :4], [30, 14, 50, 34], rtol=1e-6)
        assert not rows[2:].any()
    finally:
        runner.release()
