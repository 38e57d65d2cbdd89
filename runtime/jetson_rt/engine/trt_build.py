"""ONNX to a serialised TensorRT 10 engine, on the device that will run it.

TensorRT is imported inside the functions (it exists only on Jetsons, from
JetPack's python3-libnvinfer); each function imports it after
:func:`require_tensorrt` has checked that the real bindings are there.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from jetson_rt.atomic import atomic_write_bytes, atomic_write_text
from jetson_rt.engine.build import npy_samples
from jetson_rt.engine.options import BuildOptions
from jetson_rt.errors import EngineError, ModelError, PlatformError
from jetson_rt.log import logger

if TYPE_CHECKING:
    import tensorrt as trt
    from typing_extensions import Buffer

LAYER_REPORT_SUFFIX = ".layers.json"


def dims_tuple(shape: trt.Dims) -> tuple[int, ...]:
    """A TensorRT ``Dims`` as a tuple (``Dims`` indexes, but is not typed as iterable)."""
    return tuple(int(shape[index]) for index in range(len(shape)))


def require_tensorrt() -> ModuleType:
    """The ``tensorrt`` module, or a clear refusal where it is missing.

    Type stubs (``tensorrt-stubs``) install a ``tensorrt`` folder without
    code, which imports as an empty namespace package: that is refused too.
    """
    try:
        module = importlib.import_module("tensorrt")
    except ImportError as exc:
        raise PlatformError(_NO_TENSORRT) from exc
    if not hasattr(module, "Builder"):
        raise PlatformError(_NO_TENSORRT)
    return module


_NO_TENSORRT = (
    "TensorRT's Python bindings are not importable: on a Jetson install JetPack's "
    "python3-libnvinfer and create the virtual environment with --system-site-packages; "
    "elsewhere use --backend onnxruntime"
)


def tensorrt_platform() -> dict[str, Any]:
    """TensorRT and CUDA versions and the GPU an engine is built for."""
    require_tensorrt()
    import tensorrt as trt

    from jetson_rt.cuda import device_info, require_device

    require_device(0)
    info = device_info(0)
    return {
        "tensorrt": trt.__version__,
        "cuda_runtime": info.runtime_version,
        "cuda_driver": info.driver_version,
        "gpu": info.name,
        "compute_capability": "{}.{}".format(*info.compute_capability),
        "integrated_gpu": info.integrated,
    }


def _profile(
    builder: trt.Builder, network: trt.INetworkDefinition, options: BuildOptions
) -> trt.IOptimizationProfile | None:
    """One optimisation profile over the dynamic inputs; refuse unknown or missing ones."""
    import tensorrt as trt

    inputs = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
    unknown = sorted(set(options.opt_shapes) - set(inputs))
    if unknown:
        raise EngineError(
            f"shapes given for {', '.join(unknown)}, which {options.model.name} does not have; "
            f"its inputs are {', '.join(sorted(inputs))}"
        )
    profile = builder.create_optimization_profile()
    needs_profile = False
    for name, tensor in inputs.items():
        declared = dims_tuple(tensor.shape)
        dynamic = any(dim < 0 for dim in declared)
        if name not in options.opt_shapes:
            if dynamic:
                raise EngineError(
                    f"input {name!r} has dynamic shape {list(declared)}: give its range with "
                    f"--min-shapes/--opt-shapes/--max-shapes (or --shapes {name}:...)"
                )
            continue
        shapes = [options.min_shapes[name], options.opt_shapes[name], options.max_shapes[name]]
        for shape in shapes:
            _check_against_declared(name, declared, shape)
        profile.set_shape(
            name, trt.Dims(list(shapes[0])), trt.Dims(list(shapes[1])), trt.Dims(list(shapes[2]))
        )
        needs_profile = True
    return profile if needs_profile else None


def _check_against_declared(name: str, declared: tuple[int, ...], shape: tuple[int, ...]) -> None:
    if len(shape) != len(declared):
        raise EngineError(
            f"shape {list(shape)} for {name!r} has {len(shape)} dimensions; the model "
            f"declares {len(declared)}: {list(declared)}"
        )
    for axis, (fixed, wanted) in enumerate(zip(declared, shape, strict=True)):
        if fixed >= 0 and fixed != wanted:
            raise EngineError(
                f"shape {list(shape)} for {name!r} sets axis {axis} to {wanted}, but the model "
                f"fixes it at {fixed}"
            )


def _set_precision(builder: trt.Builder, config: trt.IBuilderConfig, options: BuildOptions) -> None:
    import tensorrt as trt

    if options.precision in ("fp16", "best"):
        if not builder.platform_has_fast_fp16:
            logger.warning("this GPU has no fast fp16: the fp16 engine may be slower than fp32")
        config.set_flag(trt.BuilderFlag.FP16)
    if options.precision in ("int8", "best"):
        if not builder.platform_has_fast_int8:
            logger.warning("this GPU has no fast int8: the int8 engine may be slower")
        config.set_flag(trt.BuilderFlag.INT8)


def _set_dla(builder: trt.Builder, config: trt.IBuilderConfig, options: BuildOptions) -> None:
    import tensorrt as trt

    if options.dla_core is None:
        return
    _check_dla_early(builder, options)
    cores = builder.num_DLA_cores
    if options.dla_core >= cores:
        raise PlatformError(
            f"--dla-core {options.dla_core} does not exist: this device has {cores} "
            f"DLA core(s), numbered 0..{cores - 1}"
        )
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = options.dla_core
    if options.allow_gpu_fallback:
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)


def _load_timing_cache(config: trt.IBuilderConfig, path: Path | None) -> trt.ITimingCache | None:
    if path is None:
        return None
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        raise EngineError(
            f"timing cache {path} was made by another TensorRT or GPU: delete it, "
            "it is rebuilt on the next build"
        )
    logger.info("timing cache %s: %s", path, f"{len(data)} bytes loaded" if data else "new")
    return cache


def _save_timing_cache(config: trt.IBuilderConfig, path: Path) -> None:
    """Merge what this build learnt into the file (another build may have extended it)."""
    merged = config.get_timing_cache()
    if path.is_file():
        on_disk = config.create_timing_cache(path.read_bytes())
        if not merged.combine(on_disk, ignore_mismatch=True):
            logger.warning("timing cache %s could not be merged; overwriting it", path)
    atomic_write_bytes(path, memoryview(merged.serialize()))


def build_tensorrt(options: BuildOptions) -> dict[str, str]:
    """Build and save the engine and its layer report; return the side files."""
    require_tensorrt()
    import tensorrt as trt

    from jetson_rt.cuda import require_device

    require_device(0)
    log = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(log)
    _check_dla_early(builder, options)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, log)
    if not parser.parse(options.model.read_bytes(), str(options.model)):
        raise ModelError(_parser_errors(parser, options.model))

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    config.builder_optimization_level = options.builder_optimization_level
    # Layer names, tactics and formats in the inspector's report.
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    _set_precision(builder, config, options)
    _set_dla(builder, config, options)
    profile = _profile(builder, network, options)
    if profile is not None:
        config.add_optimization_profile(profile)

    calibrator = None
    if options.precision in ("int8", "best"):
        from jetson_rt.engine.calibrator import make_calibrator

        calibrator = make_calibrator(
            samples=npy_samples(options.calib_dir) if options.calib_dir else [],
            cache=options.calib_cache,
            inputs=_calibration_inputs(network, options),
            batch_size=options.calib_batch_size,
        )
        config.int8_calibrator = calibrator
        if profile is not None:
            config.set_calibration_profile(profile)

    _load_timing_cache(config, options.timing_cache)
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.close()
    if calibrator is not None and calibrator.error is not None:
        raise calibrator.error
    if serialized is None:
        raise EngineError(
            f"TensorRT could not build an engine from {options.model.name} with "
            f"{options.precision} precision: see TensorRT's messages above "
            "(a larger --workspace or another --precision may help)"
        )
    if options.timing_cache is not None:
        _save_timing_cache(config, options.timing_cache)
    atomic_write_bytes(options.output, memoryview(serialized))

    report = options.output.with_name(options.output.name + LAYER_REPORT_SUFFIX)
    atomic_write_text(report, layer_report(serialized, log, options.dla_core))
    return {"layer_report": report.name}


def _check_dla_early(builder: trt.Builder, options: BuildOptions) -> None:
    """Refuse a DLA request before parsing: the answer does not depend on the model."""
    if options.dla_core is not None and builder.num_DLA_cores == 0:
        raise PlatformError(
            f"--dla-core {options.dla_core} asks for a DLA, but this device has none "
            "(TensorRT reports 0 DLA cores; Orin Nano's DLA is fused off): "
            "drop --dla-core to build for the GPU"
        )


def _parser_errors(parser: trt.OnnxParser, model: Path) -> str:
    import tensorrt as trt

    problems = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)
        node = error.node_name() or f"#{error.node()}"
        problems.append(f"node {node!r} ({error.node_operator()}): {error.desc()}")
    return (
        f"TensorRT {trt.__version__} cannot parse {model.name}: "
        + "; ".join(problems or ["unknown parser error"])
        + ". Replace or remove the op, or build with --backend onnxruntime"
    )


def _calibration_inputs(
    network: trt.INetworkDefinition, options: BuildOptions
) -> dict[str, tuple[tuple[int, ...], Any]]:
    """Name -> (shape of one calibration batch, numpy dtype) for every network input."""
    import tensorrt as trt

    result: dict[str, tuple[tuple[int, ...], Any]] = {}
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = options.opt_shapes.get(tensor.name) or dims_tuple(tensor.shape)
        if any(dim < 0 for dim in shape):
            raise EngineError(f"input {tensor.name!r} needs --shapes for calibration")
        if options.calib_batch_size != shape[0]:
            shape = (options.calib_batch_size, *shape[1:])
        result[tensor.name] = (shape, trt.nptype(tensor.dtype))
    return result


def layer_report(serialized: Buffer, log: trt.Logger, dla_core: int | None = None) -> str:
    """The engine inspector's per-layer JSON (fusions, precisions, tactics)."""
    import tensorrt as trt

    runtime = trt.Runtime(log)
    if dla_core is not None:
        # A DLA engine deserialises only on a runtime bound to its core.
        runtime.DLA_core = dla_core
    engine = runtime.deserialize_cuda_engine(serialized)
    if engine is None:
        raise EngineError("TensorRT cannot deserialise the engine it has just built")
    inspector = engine.create_engine_inspector()
    text = str(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text
    return json.dumps(parsed, indent=2) + "\n"
