"""A small ONNX model with a YOLOv8-style head, for runner tests of the CPU lane.

Input ``images`` ``[1, 3, H, W]`` float32; output ``output0`` ``[1, 4 + C, N]``:
a fixed head (known boxes and class scores) plus ``0 x mean(images)``, so the
model really reads its input through ONNX Runtime and its detections are known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

CLASSES = 3


def yolo_head(anchors: int = 64, seed: int = 0) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    head = np.zeros((1, 4 + CLASSES, anchors), dtype=np.float32)
    head[0, 0:2] = rng.uniform(8, 56, (2, anchors))
    head[0, 2:4] = rng.uniform(2, 6, (2, anchors))
    head[0, 4:] = rng.uniform(0, 0.1, (CLASSES, anchors))
    # Two objects: anchors 0-2 overlap (class 1), anchor 3 stands alone (class 2).
    head[0, 0:4, 0] = [20, 20, 10, 10]
    head[0, 0:4, 1] = [21, 20, 10, 10]
    head[0, 0:4, 2] = [20, 21, 10, 10]
    head[0, 0:4, 3] = [48, 40, 8, 12]
    head[0, 4 + 1, 0:3] = [0.9, 0.8, 0.7]
    head[0, 4 + 2, 3] = 0.6
    return head


def write_yolo_model(
    path: Path, size: tuple[int, int] = (64, 64), anchors: int = 64
) -> npt.NDArray[np.float32]:
    """Write the model; return its head (what the output is for any input)."""
    head = yolo_head(anchors)
    h, w = size
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["head", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "yolo_head",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(head.shape))],
        initializer=[
            numpy_helper.from_array(head, "head"),
            numpy_helper.from_array(np.zeros((), dtype=np.float32), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return head
