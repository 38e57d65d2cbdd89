"""The numpy lane against OpenCV and a reference NMS (runs everywhere)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from prepost_refs import (
    GREY_LEVEL_TOLERANCE,
    box_sets,
    cv2_preprocess,
    decode_reference,
    have_torchvision,
    head,
    onnxruntime_nms,
    pixel_error,
    pre_spec,
    torchvision_nms,
)

from jetson_rt.prepost.cpu import CpuPostprocess, CpuPreprocess
from jetson_rt.prepost.spec import PostprocessSpec, parse_postprocess, parse_preprocess

pytest.importorskip("cv2", reason="opencv-python-headless is not installed")

PRE_CASES = [
    ("nv12", 1920, 1080, "letterbox", [640, 640], None, "fp16", "chw"),
    ("nv12", 1000, 750, "letterbox", [640, 640], None, "fp32", "chw"),
    ("nv12", 640, 480, "bilinear", [256, 320], [224, 224], "fp32", "hwc"),
    ("bgr", 1000, 750, "letterbox", [384, 640], None, "fp16", "chw"),
    ("rgb", 320, 240, "bilinear", [600, 1000], None, "fp32", "chw"),
    ("gray", 1000, 750, "letterbox", [320, 320], None, "fp32", "chw"),
]


@pytest.mark.parametrize("case", PRE_CASES, ids=lambda c: "-".join(str(v) for v in c))
def test_numpy_preprocess_matches_opencv(case: tuple[object, ...]) -> None:
    fmt, width, height, resize, size, crop, dtype, layout = case
    spec = pre_spec(fmt, resize, size, crop, dtype, layout, width, height)
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    frame = rng.integers(0, 256, spec.frame_shape, dtype=np.uint8)
    out = np.full(spec.tensor_shape, np.nan, dtype=spec.np_dtype)
    pre = CpuPreprocess(spec)
    pre.run(frame, out)
    assert np.isfinite(out.astype(np.float32)).all()  # every element written
    tolerance = GREY_LEVEL_TOLERANCE + (0.25 if spec.dtype == "fp16" else 0.0)
    assert pixel_error(spec, out, cv2_preprocess(spec, frame)) <= tolerance
    # A second frame into the same buffers gives that frame's result, not a mix.
    other = rng.integers(0, 256, spec.frame_shape, dtype=np.uint8)
    pre.run(other, out)
    assert pixel_error(spec, out, cv2_preprocess(spec, other)) <= tolerance


def test_nv12_colour_conversion_is_bit_exact_with_opencv() -> None:
    # At a 3x downscale every sample falls on a source pixel: only the colour maths is left.
    spec = parse_preprocess(
        {
            "format": "nv12",
            "width": 1920,
            "height": 1080,
            "resize": "letterbox",
            "size": [640, 640],
            "scale": 1.0,
        },
        "pre",
        lambda p, m: None,
    )
    assert spec is not None
    frame = np.random.default_rng(1).integers(0, 256, spec.frame_shape, dtype=np.uint8)
    out = np.empty(spec.tensor_shape, dtype=np.float32)
    CpuPreprocess(spec).run(frame, out)
    np.testing.assert_array_equal(out, cv2_preprocess(spec, frame).astype(np.float32))


def _reference_rows(raw: np.ndarray, spec: PostprocessSpec) -> np.ndarray:  # type: ignore[type-arg]
    boxes, scores, classes = decode_reference(raw, spec, 80)
    nms = torchvision_nms if have_torchvision() else onnxruntime_nms
    return nms(boxes, scores, classes, spec.iou_threshold, spec.max_det)


@pytest.mark.parametrize("objectness", [False, True], ids=["no_obj", "obj"])
@pytest.mark.parametrize("name", list(box_sets(0)))
def test_numpy_detect_matches_reference_nms(name: str, objectness: bool) -> None:
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    boxes, scores, classes = box_sets(11)[name]
    n = len(boxes)
    low = np.tile(np.array([[0, 0, 10, 10]], dtype=np.float32), (64, 1))
    order = rng.permutation(n + 64)
    raw = head(
        np.concatenate([boxes, low])[order],
        np.concatenate([scores, np.full(64, 0.1, dtype=np.float32)])[order],
        np.concatenate([classes, np.zeros(64, dtype=np.int64)])[order],
        80,
        rng=rng,
        objectness=objectness,
    )
    spec = parse_postprocess(
        {
            "kind": "detect",
            "max_det": 100,
            "objectness": objectness,
            "layout": "channels_first",
            "boxes": "model",
        },
        "post",
        lambda p, m: None,
        has_preprocess=False,
    )
    assert spec is not None
    post = CpuPostprocess(spec, raw.shape)
    post.outputs["detections"][...] = np.nan
    post.run(raw)
    reference = _reference_rows(raw, spec)
    count = int(post.outputs["count"][0])
    assert count == len(reference)
    rows = post.outputs["detections"]
    np.testing.assert_array_equal(rows[:count], reference)
    assert not rows[count:].any()


def test_anchors_first_layout_gives_the_same_detections() -> None:
    rng = np.random.default_rng(2)
    boxes, scores, classes = box_sets(3)["random_300"]
    first = head(boxes, scores, classes, 80, rng=np.random.default_rng(9), channels_first=True)
    spec = PostprocessSpec(kind="detect", boxes="model", layout="auto")
    a = CpuPostprocess(spec, first.shape)
    a.run(first)
    b = CpuPostprocess(spec, (1, 300, 84))
    b.run(np.ascontiguousarray(first[0].T)[None])
    del rng
    np.testing.assert_array_equal(a.outputs["detections"], b.outputs["detections"])
    assert a.outputs["count"][0] > 0


def test_detections_are_mapped_back_to_source_pixels() -> None:
    pre = parse_preprocess(
        {
            "format": "nv12",
            "width": 1920,
            "height": 1080,
            "resize": "letterbox",
            "size": [640, 640],
        },
        "pre",
        lambda p, m: None,
    )
    assert pre is not None
    # 1080p letterboxed into 640: scale 1/3, 140 rows of padding on top.
    box = np.array([[100, 200, 300, 400]], dtype=np.float32)
    raw = head(
        box, np.array([0.9], dtype=np.float32), np.array([5]), 80, rng=np.random.default_rng(0)
    )
    raw = np.concatenate([raw] * 2, axis=2)  # two identical candidates: one survives
    post = CpuPostprocess(PostprocessSpec(kind="detect", layout="channels_first"), raw.shape, pre)
    post.run(raw)
    assert post.outputs["count"][0] == 1
    np.testing.assert_allclose(
        post.outputs["detections"][0], [300, 180, 900, 780, 0.9, 5], rtol=1e-5
    )


def test_classify_softmax_top_k() -> None:
    logits = np.random.default_rng(4).standard_normal((1, 1000)).astype(np.float32) * 3
    post = CpuPostprocess(PostprocessSpec(kind="classify", top_k=5), logits.shape)
    post.run(logits)
    exp = np.exp(logits[0].astype(np.float64) - logits.max())
    probability = exp / exp.sum()
    top = np.argsort(-probability)[:5]
    np.testing.assert_array_equal(post.outputs["classes"], top)
    np.testing.assert_allclose(post.outputs["scores"], probability[top], rtol=1e-5)


def test_every_yuv_value_converts_as_opencv_does() -> None:
    # 512x512 NV12: its chroma plane holds each of the 65536 (U, V) pairs once, its luma
    # plane every Y value; at scale 1 every output pixel is one source pixel.
    spec = parse_preprocess(
        {"format": "nv12", "width": 512, "height": 512, "size": [512, 512], "scale": 1.0},
        "pre",
        lambda p, m: None,
    )
    assert spec is not None
    rng = np.random.default_rng(5)
    luma = rng.integers(0, 256, (512, 512), dtype=np.uint8)
    luma.reshape(-1)[:256] = np.arange(256)
    pairs = rng.permutation(65536).astype(np.uint16)
    chroma = np.stack([pairs & 0xFF, pairs >> 8], axis=1).astype(np.uint8).reshape(256, 512)
    frame = np.concatenate([luma, chroma])
    out = np.empty(spec.tensor_shape, dtype=np.float32)
    CpuPreprocess(spec).run(frame, out)
    np.testing.assert_array_equal(out, cv2_preprocess(spec, frame).astype(np.float32))
