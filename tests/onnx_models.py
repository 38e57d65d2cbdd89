"""Small, real ONNX models for tests, built with ``onnx.helper``.

Each ``write_*`` function writes one model under ``directory`` and returns a
:class:`GeneratedModel`: the file, its I/O names, shapes and dtypes, and a numpy
reference implementation that computes the same outputs from the same
(seeded) weights, so a test can check a backend's numbers and not only that it
ran. Models use opset 17 and IR version 8, which every onnxruntime from 1.16 on
and TensorRT 10's parser accept.

Usage::

    from onnx_models import write_mlp

    model = write_mlp(tmp_path)
    feeds = model.random_inputs(seed=0)
    expected = model.reference(feeds)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8

FloatArray = npt.NDArray[np.float32]
Feeds = dict[str, FloatArray]


@dataclass(frozen=True)
class GeneratedModel:
    """A model written to disk and what a test needs to drive it."""

    path: Path
    # name -> shape; ``-1`` marks a dynamic dimension (the batch).
    inputs: dict[str, tuple[int, ...]]
    outputs: dict[str, tuple[int, ...]]
    reference: Callable[[Feeds], Feeds] = field(repr=False)
    dtype: type[np.float32] = np.float32

    def random_inputs(self, seed: int = 0, batch: int = 1) -> Feeds:
        """Inputs drawn from N(0, 1); dynamic dimensions become ``batch``."""
        rng = np.random.default_rng(seed)
        return {
            name: rng.standard_normal(
                tuple(batch if dim < 0 else dim for dim in shape), dtype=np.float32
            )
            for name, shape in self.inputs.items()
        }


def _save(model: onnx.ModelProto, path: Path) -> Path:
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="jetson-rt-tests",
    )


def _weights(rng: np.random.Generator, *shape: int) -> FloatArray:
    return (rng.standard_normal(shape) * 0.2).astype(np.float32)


# --- numpy references -----------------------------------------------------


def _conv2d_same(x: FloatArray, w: FloatArray, b: FloatArray) -> FloatArray:
    """NCHW convolution, stride 1, square odd kernel, 'same' zero padding."""
    batch, _, height, width = x.shape
    out_ch, _, k, _ = w.shape
    pad = k // 2
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((batch, out_ch, height, width), dtype=np.float64)
    for dy in range(k):
        for dx in range(k):
            window = padded[:, :, dy : dy + height, dx : dx + width]
            out += np.einsum("nchw,oc->nohw", window, w[:, :, dy, dx])
    out += b.reshape(1, out_ch, 1, 1)
    return out.astype(np.float32)


# --- models -----------------------------------------------------------------

CONV_CHANNELS_IN = 3
CONV_CHANNELS_OUT = 8
CONV_SIZE = 16
BN_EPSILON = 1e-5


def write_conv_bn_relu(directory: Path, name: str = "conv_bn_relu.onnx") -> GeneratedModel:
    """Conv 3x3 -> BatchNormalization -> Relu on ``input`` [1, 3, 16, 16].

    The pattern TensorRT fuses into one kernel (guide, section 3.3).
    """
    rng = np.random.default_rng(1)
    cin, cout, size = CONV_CHANNELS_IN, CONV_CHANNELS_OUT, CONV_SIZE
    w = _weights(rng, cout, cin, 3, 3)
    b = _weights(rng, cout)
    scale = (1.0 + 0.1 * rng.standard_normal(cout)).astype(np.float32)
    shift = _weights(rng, cout)
    mean = _weights(rng, cout)
    var = (0.5 + rng.random(cout)).astype(np.float32)

    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w", "b"], ["conv"], pads=[1, 1, 1, 1], name="conv"),
            helper.make_node(
                "BatchNormalization",
                ["conv", "scale", "shift", "mean", "var"],
                ["bn"],
                epsilon=BN_EPSILON,
                name="bn",
            ),
            helper.make_node("Relu", ["bn"], ["output"], name="relu"),
        ],
        "conv_bn_relu",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, cin, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, cout, size, size])],
        initializer=[
            numpy_helper.from_array(arr, label)
            for label, arr in (
                ("w", w),
                ("b", b),
                ("scale", scale),
                ("shift", shift),
                ("mean", mean),
                ("var", var),
            )
        ],
    )

    def reference(feeds: Feeds) -> Feeds:
        conv = _conv2d_same(feeds["input"], w, b)
        c = (1, cout, 1, 1)
        bn = (conv - mean.reshape(c)) / np.sqrt(var.reshape(c) + BN_EPSILON)
        bn = bn * scale.reshape(c) + shift.reshape(c)
        return {"output": np.maximum(bn, 0).astype(np.float32)}

    path = _save(_model(graph), directory / name)
    return GeneratedModel(
        path=path,
        inputs={"input": (1, cin, size, size)},
        outputs={"output": (1, cout, size, size)},
        reference=reference,
    )


MLP_IN, MLP_HIDDEN, MLP_OUT = 64, 128, 10


def write_mlp(directory: Path, name: str = "mlp.onnx") -> GeneratedModel:
    """Gemm -> Relu -> Gemm on ``input`` [1, 64], ``output`` [1, 10]."""
    rng = np.random.default_rng(2)
    w1, b1 = _weights(rng, MLP_IN, MLP_HIDDEN), _weights(rng, MLP_HIDDEN)
    w2, b2 = _weights(rng, MLP_HIDDEN, MLP_OUT), _weights(rng, MLP_OUT)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "w1", "b1"], ["h"], name="fc1"),
            helper.make_node("Relu", ["h"], ["h_relu"], name="relu1"),
            helper.make_node("Gemm", ["h_relu", "w2", "b2"], ["output"], name="fc2"),
        ],
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, MLP_IN])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, MLP_OUT])],
        initializer=[
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(b1, "b1"),
            numpy_helper.from_array(w2, "w2"),
            numpy_helper.from_array(b2, "b2"),
        ],
    )

    def reference(feeds: Feeds) -> Feeds:
        hidden = np.maximum(feeds["input"].astype(np.float64) @ w1 + b1, 0)
        return {"output": (hidden @ w2 + b2).astype(np.float32)}

    path = _save(_model(graph), directory / name)
    return GeneratedModel(
        path=path,
        inputs={"input": (1, MLP_IN)},
        outputs={"output": (1, MLP_OUT)},
        reference=reference,
    )


TWO_IN, TWO_FEATURES, TWO_CLASSES = 16, 32, 4


def write_two_outputs(directory: Path, name: str = "two_outputs.onnx") -> GeneratedModel:
    """One input, two outputs of different shapes: ``features`` [1, 32], ``scores`` [1, 4].

    ``scores`` is a softmax over a projection of ``features``, as a detector
    head that returns an embedding and class scores.
    """
    rng = np.random.default_rng(3)
    w1 = _weights(rng, TWO_IN, TWO_FEATURES)
    w2 = _weights(rng, TWO_FEATURES, TWO_CLASSES)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "w1"], ["pre"], name="proj"),
            helper.make_node("Tanh", ["pre"], ["features"], name="tanh"),
            helper.make_node("MatMul", ["features", "w2"], ["logits"], name="head"),
            helper.make_node("Softmax", ["logits"], ["scores"], axis=-1, name="softmax"),
        ],
        "two_outputs",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, TWO_IN])],
        [
            helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, TWO_FEATURES]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, TWO_CLASSES]),
        ],
        initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )

    def reference(feeds: Feeds) -> Feeds:
        features = np.tanh(feeds["input"].astype(np.float64) @ w1)
        logits = features @ w2
        exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return {
            "features": features.astype(np.float32),
            "scores": (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32),
        }

    path = _save(_model(graph), directory / name)
    return GeneratedModel(
        path=path,
        inputs={"input": (1, TWO_IN)},
        outputs={"features": (1, TWO_FEATURES), "scores": (1, TWO_CLASSES)},
        reference=reference,
    )


DYN_CHANNELS_IN, DYN_CHANNELS_OUT, DYN_SIZE = 3, 8, 8


def write_dynamic_batch(directory: Path, name: str = "dynamic_batch.onnx") -> GeneratedModel:
    """Conv 3x3 -> Relu -> GlobalAveragePool -> Flatten with a symbolic batch.

    ``input`` is ["batch", 3, 8, 8] and ``output`` ["batch", 8]; a backend must be
    told the concrete batch (ONNX Runtime option, TensorRT min/opt/max shapes).
    """
    rng = np.random.default_rng(4)
    cin, cout, size = DYN_CHANNELS_IN, DYN_CHANNELS_OUT, DYN_SIZE
    w = _weights(rng, cout, cin, 3, 3)
    b = _weights(rng, cout)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w", "b"], ["conv"], pads=[1, 1, 1, 1], name="conv"),
            helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
            helper.make_node("GlobalAveragePool", ["relu"], ["pool"], name="pool"),
            helper.make_node("Flatten", ["pool"], ["output"], axis=1, name="flatten"),
        ],
        "dynamic_batch",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", cin, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", cout])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )

    def reference(feeds: Feeds) -> Feeds:
        relu = np.maximum(_conv2d_same(feeds["input"], w, b), 0)
        return {"output": relu.mean(axis=(2, 3), dtype=np.float64).astype(np.float32)}

    path = _save(_model(graph), directory / name)
    return GeneratedModel(
        path=path,
        inputs={"input": (-1, cin, size, size)},
        outputs={"output": (-1, cout)},
        reference=reference,
    )


CUSTOM_DOMAIN = "com.example.vision"


def write_unsupported_op(directory: Path, name: str = "unsupported_op.onnx") -> Path:
    """A valid ONNX model whose second node is an op no runtime implements.

    ``Relu`` then ``com.example.vision::FancyNms`` (node name ``postprocess_nms``):
    the checker accepts custom domains, so only a runtime-support check refuses it.
    """
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["input"], ["relu"], name="relu"),
            helper.make_node(
                "FancyNms", ["relu"], ["output"], domain=CUSTOM_DOMAIN, name="postprocess_nms"
            ),
        ],
        "unsupported_op",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(CUSTOM_DOMAIN, 1)],
        producer_name="jetson-rt-tests",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    onnx.save_model(model, str(path))
    return path


def write_all(directory: Path) -> dict[str, GeneratedModel]:
    """Every runnable model above, keyed by a short name."""
    return {
        "conv_bn_relu": write_conv_bn_relu(directory),
        "mlp": write_mlp(directory),
        "two_outputs": write_two_outputs(directory),
        "dynamic_batch": write_dynamic_batch(directory),
    }
