"""Explicit INT8 quantization on the controller: ONNX + calibration ``.npy`` to a Q/DQ ONNX.

TensorRT builds a Q/DQ model with explicit precision (the scales are in the
model), on TensorRT 8.6 and 10.x alike, with no calibrator on the device;
implicit calibration (``IInt8EntropyCalibrator2``) is deprecated from 10.1 on.
The Q/DQ model is made with NVIDIA ModelOpt's ONNX post-training quantization
(``modelopt.onnx.quantization.quantize``), which inserts QuantizeLinear /
DequantizeLinear pairs where TensorRT fuses them and calibrates with ONNX
Runtime on the CPU.

ModelOpt is not a dependency of the runtime: ``pip install 'jetson-rt[quantize]'``
on the controller (about 6.5 GB: ``modelopt.onnx.quantization`` imports PyTorch,
which pulls CUDA libraries, although the ONNX path calibrates on the CPU).

``jetson-rt quantize MODEL --calib-dir DIR -o OUT`` writes the Q/DQ model; the
inventory then names it as the model's source, and ``build-engine --precision
int8`` (or ``best``) builds it with explicit INT8 and no calibration data.
Layers ModelOpt leaves unquantized stay float32 (``--high-precision fp16``
converts them to float16 in the file; TensorRT's ``best`` picks fp16 for them
anyway).
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jetson_rt.errors import ConfigError, PlatformError
from jetson_rt.log import logger

QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


def model_is_quantized(model: Path) -> bool:
    """Whether the ONNX file has QuantizeLinear/DequantizeLinear nodes (a Q/DQ model)."""
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx comes with the ort extra
        return False
    try:
        proto = onnx.load(str(model), load_external_data=False)
    except Exception:  # not ONNX: the build's own checks say so
        return False
    nodes = list(proto.graph.node)
    for function in proto.functions:
        nodes.extend(function.node)
    return any(node.op_type in QDQ_OPS for node in nodes)


@dataclass(frozen=True)
class QuantizeResult:
    output: Path
    samples: int
    seconds: float
    qdq_nodes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "samples": self.samples,
            "seconds": self.seconds,
            "qdq_nodes": self.qdq_nodes,
        }


def load_calibration(model: Path, calib_dir: Path, limit: int | None = None) -> dict[str, Any]:
    """The ``.npy`` samples of ``calib_dir`` stacked along the batch axis, by input name."""
    import numpy as np
    import onnx

    from jetson_rt.engine.build import npy_samples

    proto = onnx.load(str(model), load_external_data=False)
    initializers = {init.name for init in proto.graph.initializer}
    inputs = [value for value in proto.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise ConfigError(
            f"calibration from .npy files supports models with one input; {model.name} has "
            f"{len(inputs)} ({', '.join(value.name for value in inputs)})"
        )
    dims = inputs[0].type.tensor_type.shape.dim
    sample_shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)[1:]
    arrays = []
    for path in npy_samples(calib_dir)[:limit]:
        try:
            sample = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"calibration sample {path} is not a readable .npy: {exc}") from exc
        if sample.ndim == len(sample_shape) + 1 and sample.shape[0] == 1:
            sample = sample[0]
        fixed = all(a == b or b < 0 for a, b in zip(sample.shape, sample_shape, strict=False))
        if sample.ndim != len(sample_shape) or not fixed:
            raise ConfigError(
                f"calibration sample {path.name} has shape {list(sample.shape)}; input "
                f"{inputs[0].name!r} takes {list(sample_shape)} per sample"
            )
        arrays.append(sample.astype(np.float32, copy=False))
    return {inputs[0].name: np.stack(arrays)}


def quantize_qdq(
    model: Path,
    calib_dir: Path,
    output: Path,
    *,
    calibration_method: str = "entropy",
    high_precision: str = "fp32",
    limit: int | None = None,
) -> QuantizeResult:
    """Write ``output``, the INT8 Q/DQ version of ``model``, calibrated on ``calib_dir``.

    ModelOpt writes its output file itself; it writes into a temporary file
    beside ``output``, which is renamed over ``output`` only when complete.
    """
    if not model.is_file():
        raise ConfigError(f"model {model} does not exist")
    if output.resolve() == model.resolve():
        raise ConfigError("the output would overwrite the model: choose another --output")
    if calibration_method not in ("entropy", "max"):
        raise ConfigError(
            f"--calibration-method must be entropy or max, not {calibration_method!r}"
        )
    if high_precision not in ("fp32", "fp16"):
        raise ConfigError(f"--high-precision must be fp32 or fp16, not {high_precision!r}")
    # Bad input is refused before ModelOpt is looked for.
    data = load_calibration(model, calib_dir, limit)
    try:
        quantize = importlib.import_module("modelopt.onnx.quantization").quantize
    except ImportError as exc:
        raise PlatformError(
            "NVIDIA ModelOpt is not installed: pip install 'jetson-rt[quantize]' on the "
            f"controller (it pulls PyTorch) ({exc})"
        ) from exc
    ((name, batch),) = data.items()
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial.onnx")
    started = time.monotonic()
    try:
        quantize(
            onnx_path=str(model),
            quantize_mode="int8",
            calibration_data={name: batch},
            calibration_method=calibration_method,
            calibration_eps=["cpu"],
            high_precision_dtype=high_precision,
            output_path=str(partial),
        )
        if not partial.is_file():
            raise PlatformError(f"ModelOpt finished but wrote no {partial}")
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    seconds = round(time.monotonic() - started, 3)
    import onnx

    nodes = onnx.load(str(output), load_external_data=False).graph.node
    qdq = sum(1 for node in nodes if node.op_type in QDQ_OPS)
    if qdq == 0:
        raise PlatformError(f"ModelOpt wrote {output} without any Q/DQ node")
    logger.info("quantized %s -> %s (%d Q/DQ nodes, %.1f s)", model.name, output, qdq, seconds)
    return QuantizeResult(
        output=output, samples=int(batch.shape[0]), seconds=seconds, qdq_nodes=qdq
    )


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "quantize",
        help="INT8 Q/DQ ONNX from an ONNX model and .npy calibration samples (ModelOpt, CPU)",
        description=(
            "Explicit INT8 quantization on the controller with NVIDIA ModelOpt's ONNX PTQ "
            "(calibrated with ONNX Runtime on the CPU). TensorRT builds the Q/DQ model with "
            "--precision int8 and no calibration data. Needs jetson-rt[quantize]."
        ),
    )
    parser.add_argument("model", type=Path, help="the float ONNX model")
    parser.add_argument("--calib-dir", type=Path, required=True, help="folder of .npy samples")
    parser.add_argument("-o", "--output", type=Path, help="default: MODEL.qdq.onnx")
    parser.add_argument("--calibration-method", choices=("entropy", "max"), default="entropy")
    parser.add_argument(
        "--high-precision",
        choices=("fp32", "fp16"),
        default="fp32",
        help="type of the layers left unquantized (default fp32)",
    )
    parser.add_argument("--limit", type=int, help="use at most this many samples")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    model = Path(args.model)
    output = args.output or model.with_name(model.stem + ".qdq.onnx")
    if args.limit is not None and args.limit <= 0:
        raise ConfigError(f"--limit must be positive, not {args.limit}")
    result = quantize_qdq(
        model,
        args.calib_dir,
        output,
        calibration_method=args.calibration_method,
        high_precision=args.high_precision,
        limit=args.limit,
    )
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(
            f"{result.output}: {result.qdq_nodes} Q/DQ nodes, {result.samples} samples, "
            f"{result.seconds:.1f} s"
        )
    return 0
