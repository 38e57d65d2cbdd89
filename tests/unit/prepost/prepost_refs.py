"""References nobody here wrote, and the input sets both lanes are checked on.

Pre-processing: OpenCV (``cv2.cvtColor`` NV12/BGR -> RGB, ``cv2.resize``
INTER_LINEAR, ``cv2.copyMakeBorder`` for the letterbox padding). NMS:
``torchvision.ops.batched_nms`` where torchvision is installed (on the GPU
machine), else ONNX Runtime's ``NonMaxSuppression`` operator (per class, IoU >
threshold suppresses), which CI already installs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from jetson_rt.prepost.spec import (
    PostprocessSpec,
    PreprocessSpec,
    letterbox_box,
    parse_preprocess,
)

Array = npt.NDArray[Any]

# Stated tolerance of pre-processing against OpenCV: OpenCV resizes uint8 in
# 11-bit fixed point and rounds to uint8, the lanes blend in float32 and do
# not round: at most one grey level (of 255) apart, before normalisation.
GREY_LEVEL_TOLERANCE = 1.0


def pre_spec(  # noqa: PLR0917 - one test case's columns
    fmt: str,
    resize: str,
    size: list[int],
    crop: Any,
    dtype: str,
    layout: str,
    width: int,
    height: int,
) -> Any:
    errors: list[str] = []
    spec = parse_preprocess(
        {
            "format": fmt,
            "width": width,
            "height": height,
            "resize": resize,
            "size": size,
            "crop": crop,
            "dtype": dtype,
            "layout": layout,
            "mean": [0.485, 0.456, 0.406] if fmt != "gray" else 0.5,
            "std": [0.229, 0.224, 0.225] if fmt != "gray" else 0.25,
            "channels": "bgr" if fmt == "bgr" else "rgb",
        },
        "pre",
        lambda p, m: errors.append(f"{p}: {m}"),
    )
    assert spec is not None, errors
    return spec


def cv2_preprocess(spec: PreprocessSpec, frame: Array) -> Array:
    """The model input as OpenCV computes it, float64, ``spec.tensor_shape``."""
    import cv2

    if spec.format == "nv12":
        rgb = cv2.cvtColor(frame, cv2.COLOR_YUV2RGB_NV12)
    elif spec.format == "bgr":
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    else:
        rgb = frame
    top, left, inner_h, inner_w = letterbox_box(spec)
    image = cv2.resize(rgb, (inner_w, inner_h), interpolation=cv2.INTER_LINEAR)
    size_h, size_w = spec.size
    pad = spec.pad_value
    image = cv2.copyMakeBorder(
        image,
        top,
        size_h - inner_h - top,
        left,
        size_w - inner_w - left,
        cv2.BORDER_CONSTANT,
        value=(pad, pad, pad),
    )
    if spec.crop is not None:
        oy = (size_h - spec.crop[0]) // 2
        ox = (size_w - spec.crop[1]) // 2
        image = image[oy : oy + spec.crop[0], ox : ox + spec.crop[1]]
    pixels = image.astype(np.float64)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if spec.channels == "bgr" and pixels.shape[-1] == 3:
        pixels = pixels[..., ::-1]
    a, b = spec.affine()
    tensor = pixels * a.astype(np.float64) + b.astype(np.float64)
    if spec.layout == "chw":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor[None])


def pixel_error(spec: PreprocessSpec, ours: Array, reference: Array) -> float:
    """Largest difference in grey levels (undoing ``scale``/``std``)."""
    a, _ = spec.affine()
    axis = 1 if spec.layout == "chw" else 3
    shape = [1, 1, 1, 1]
    shape[axis] = len(a)
    diff = np.abs(ours.astype(np.float64) - reference) / np.abs(a.astype(np.float64)).reshape(shape)
    return float(diff.max())


# --- detection heads -------------------------------------------------------------


def head(
    boxes_xyxy: Array,
    scores: Array,
    classes: Array,
    num_classes: int,
    *,
    rng: np.random.Generator,
    objectness: bool = False,
    channels_first: bool = True,
) -> Array:
    """A YOLO-style raw output holding these candidates (cxcywh, one class each)."""
    n = len(boxes_xyxy)
    first = 5 if objectness else 4
    table = np.zeros((n, first + num_classes), dtype=np.float32)
    boxes = boxes_xyxy.astype(np.float32)
    table[:, 0] = (boxes[:, 0] + boxes[:, 2]) / 2
    table[:, 1] = (boxes[:, 1] + boxes[:, 3]) / 2
    table[:, 2] = boxes[:, 2] - boxes[:, 0]
    table[:, 3] = boxes[:, 3] - boxes[:, 1]
    # Other classes score below the best one.
    table[:, first:] = rng.uniform(0, 0.02, (n, num_classes)).astype(np.float32)
    if objectness:
        table[:, 4] = 1.0
    table[np.arange(n), first + classes] = scores.astype(np.float32)
    return table.T[None].copy() if channels_first else table[None].copy()


def decode_reference(
    raw: Array, spec: PostprocessSpec, classes: int, *, channels_first: bool = True
) -> tuple[Array, ...]:
    """Plain decode (written for the test): xyxy boxes, scores, classes above the threshold."""
    table = raw[0].T if channels_first else raw[0]
    table = table.astype(np.float32)
    first = 5 if spec.objectness else 4
    cls_scores = table[:, first : first + classes]
    best = cls_scores.argmax(axis=1)
    score = cls_scores.max(axis=1)
    if spec.objectness:
        score = score * table[:, 4]
    keep = score > spec.score_threshold
    cx, cy, w, h = (table[keep, k] for k in range(4))
    boxes = np.stack([cx - w * 0.5, cy - h * 0.5, cx + w * 0.5, cy + h * 0.5], axis=1)
    return boxes.astype(np.float32), score[keep].astype(np.float32), best[keep]


def have_torchvision() -> bool:
    try:
        import torchvision.ops  # noqa: F401
    except Exception:
        return False
    return True


def torchvision_nms(boxes: Array, scores: Array, classes: Array, iou: float, max_det: int) -> Array:
    """Rows ``[x1, y1, x2, y2, score, class]`` kept by ``torchvision.ops.batched_nms``."""
    import torch
    from torchvision.ops import batched_nms

    keep = batched_nms(
        torch.from_numpy(boxes),
        torch.from_numpy(scores),
        torch.from_numpy(classes.astype(np.int64)),
        iou,
    ).numpy()[:max_det]
    return _rows(boxes, scores, classes, keep)


def onnxruntime_nms(boxes: Array, scores: Array, classes: Array, iou: float, max_det: int) -> Array:
    """The same rows from ONNX Runtime's NonMaxSuppression, one class per candidate."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    n = len(boxes)
    if n == 0:
        return np.zeros((0, 6), dtype=np.float32)
    num_classes = int(classes.max()) + 1
    node = helper.make_node(
        "NonMaxSuppression",
        ["boxes", "scores", "max_out", "iou", "score_thr"],
        ["selected"],
        center_point_box=0,
    )
    graph = helper.make_graph(
        [node],
        "nms",
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, n, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, num_classes, n]),
            helper.make_tensor_value_info("max_out", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("iou", TensorProto.FLOAT, [1]),
            helper.make_tensor_value_info("score_thr", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    # ONNX boxes are [y1, x1, y2, x2] when center_point_box is 0.
    yx = boxes[:, [1, 0, 3, 2]][None].astype(np.float32)
    matrix = np.full((1, num_classes, n), -1.0, dtype=np.float32)
    matrix[0, classes, np.arange(n)] = scores
    (selected,) = session.run(
        None,
        {
            "boxes": yx,
            "scores": matrix,
            "max_out": np.array([n], dtype=np.int64),
            "iou": np.array([iou], dtype=np.float32),
            "score_thr": np.array([-0.5], dtype=np.float32),
        },
    )
    del onnx
    index = selected[:, 2]
    order = np.lexsort((index, -scores[index]))
    keep = index[order][:max_det]
    return _rows(boxes, scores, classes, keep)


def _rows(boxes: Array, scores: Array, classes: Array, keep: Array) -> Array:
    rows = np.zeros((len(keep), 6), dtype=np.float32)
    rows[:, :4] = boxes[keep]
    rows[:, 4] = scores[keep]
    rows[:, 5] = classes[keep]
    return rows


def box_sets(seed: int, num_classes: int = 80) -> dict[str, tuple[Array, Array, Array]]:
    """Random and adversarial candidate sets: name -> (xyxy boxes, scores, classes)."""
    rng = np.random.default_rng(seed)

    def random_set(n: int, classes: int, spread: float = 640) -> tuple[Array, Array, Array]:
        xy = rng.uniform(0, spread, (n, 2))
        wh = rng.uniform(4, 160, (n, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
        scores = rng.uniform(0.3, 1.0, n).astype(np.float32)
        return boxes, scores, rng.integers(0, classes, n)

    sets: dict[str, tuple[Array, Array, Array]] = {}
    sets["random_300"] = random_set(300, num_classes)
    sets["random_dense_2000_3cls"] = random_set(2000, 3, spread=200)
    sets["thousands_8400"] = random_set(8400, num_classes)
    same = np.tile(np.array([[100, 100, 200, 220]], dtype=np.float32), (50, 1))
    sets["identical_boxes_same_score"] = (
        same,
        np.full(50, 0.9, dtype=np.float32),
        np.zeros(50, dtype=np.int64),
    )
    sets["identical_boxes_distinct_classes"] = (
        same[:10],
        np.linspace(0.5, 0.95, 10).astype(np.float32),
        np.arange(10),
    )
    # Fully overlapping: each box inside the previous one, a slightly lower score.
    nested = np.array([[i, i, 400 - i, 400 - i] for i in range(0, 150, 3)], dtype=np.float32)
    sets["fully_overlapping_nested"] = (
        nested,
        np.linspace(0.99, 0.5, len(nested)).astype(np.float32),
        np.zeros(len(nested), dtype=np.int64),
    )
    sets["zero_candidates"] = (
        np.zeros((0, 4), dtype=np.float32),
        np.zeros(0, dtype=np.float32),
        np.zeros(0, dtype=np.int64),
    )
    # Far apart, so none suppresses another: more survivors than max_det.
    grid = np.array(
        [[x * 20, y * 20, x * 20 + 10, y * 20 + 10] for y in range(30) for x in range(30)],
        dtype=np.float32,
    )
    sets["more_than_max_det"] = (
        grid,
        rng.permutation(np.linspace(0.3, 0.99, len(grid))).astype(np.float32),
        rng.integers(0, num_classes, len(grid)),
    )
    zero_area = np.tile(np.array([[50, 50, 50, 80]], dtype=np.float32), (5, 1))
    sets["zero_area_boxes"] = (
        zero_area,
        np.linspace(0.9, 0.5, 5).astype(np.float32),
        np.zeros(5, dtype=np.int64),
    )
    return sets
