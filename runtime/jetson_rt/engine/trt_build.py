"""ONNX to a serialised TensorRT engine, on the device that will run it.

TensorRT is imported inside the functions (it exists only on Jetsons, from
JetPack's python3-libnvinfer); each function imports it after
:func:`require_tensorrt` has checked that the real bindings are there.

JetPack 6.0 ships TensorRT 8.6 and JetPack 6.1/6.2 ship 10.3: :data:`TRT_LINES`
is the one table of what each line offers, and every call that differs
between them goes through :func:`tensorrt_api`. The calls follow NVIDIA's
Polygraphy (``tools/Polygraphy/polygraphy/backend/trt/``: ``loader.py``
``NetworkFromOnnxBytes``/``EngineBytesFromNetwork``, ``config.py``
``CreateConfig``, ``calibrator.py``, ``runner.py``), which gates on the
same versions; the places are cited where they are used.
"""

from __future__ import annotations

import importlib
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from jetson_rt.atomic import atomic_write_bytes, atomic_write_text
from jetson_rt.engine.build import npy_samples
from jetson_rt.engine.options import BuildOptions
from jetson_rt.errors import EngineError, ModelError, PlatformError
from jetson_rt.log import logger

if TYPE_CHECKING:
    import tensorrt as trt
    from typing_extensions import Buffer

LAYER_REPORT_SUFFIX = ".layers.json"


@dataclass(frozen=True)
class TrtLine:
    """What one TensorRT release line offers, as far as jetson-rt uses it."""

    since: tuple[int, int]
    jetpack: str
    # INetworkDefinition needs NetworkDefinitionCreationFlag.EXPLICIT_BATCH for
    # ONNX (8.x); 10.0 removed implicit batch and deprecated the flag
    # (Polygraphy loader.py: explicit_batch defaults to True below 10.0).
    explicit_batch_flag: bool
    # create_execution_context(ExecutionContextAllocationStrategy.USER_MANAGED)
    # arrived in 10.0; 8.6 has create_execution_context_without_device_memory().
    allocation_strategy: bool
    # device_memory_size_v2 and IExecutionContext.set_device_memory(ptr, size)
    # arrived in 10.1; before, device_memory_size and the device_memory property
    # (Polygraphy runner.py gates both on 10.1).
    device_memory_v2: bool
    # Implicit INT8 calibration (IInt8Calibrator, config.int8_calibrator,
    # set_calibration_profile): deprecated in 10.1 (NvInfer.h: "Superseded by
    # explicit quantization"); the Python setters then raise DeprecationWarning
    # (python/src/infer/pyCore.cpp, utils::deprecateMember).
    implicit_int8: Literal["supported", "deprecated"]
    # I/O data types of the line that numpy has (tensorrt.nptype's table).
    numpy_dtypes: frozenset[str]


_NUMPY_86 = frozenset({"FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8"})
TRT_LINES: tuple[TrtLine, ...] = (
    TrtLine((8, 6), "6.0", True, False, False, "supported", _NUMPY_86),
    TrtLine(
        (10, 0),
        "none (10.0 is not in a JetPack 6 release)",
        False,
        True,
        False,
        "supported",
        _NUMPY_86 | {"INT64"},
    ),
    TrtLine(
        (10, 1), "6.1, 6.2 (TensorRT 10.3)", False, True, True, "deprecated", _NUMPY_86 | {"INT64"}
    ),
)
# The newest major line the table describes; 11.0 removed implicit calibration
# and other deprecated calls, and is not in a JetPack 6 release.
_NEWEST_MAJOR = 10


def parse_trt_version(version: str) -> tuple[int, int]:
    match = re.match(r"^(\d+)\.(\d+)", version)
    if match is None:
        raise PlatformError(f"cannot read the TensorRT version {version!r}")
    return int(match[1]), int(match[2])


def tensorrt_api(version: str) -> TrtLine:
    """The row of :data:`TRT_LINES` for ``tensorrt.__version__``; refuse other lines."""
    parsed = parse_trt_version(version)
    if parsed < TRT_LINES[0].since:
        raise PlatformError(
            f"TensorRT {version} is older than 8.6, the oldest JetPack 6 ships (JetPack 6.0): "
            "upgrade the board to JetPack 6, or use --backend onnxruntime"
        )
    if parsed[0] > _NEWEST_MAJOR:
        raise PlatformError(
            f"TensorRT {version} is newer than this jetson-rt knows (8.6 of JetPack 6.0 and "
            "10.x of JetPack 6.1/6.2): its API removed calls jetson-rt still makes; use "
            "--backend onnxruntime or a jetson-rt release that supports it"
        )
    return [line for line in TRT_LINES if line.since <= parsed][-1]


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
    tensorrt_api(str(module.__version__))
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
    """Attach the timing cache at ``path`` to ``config``; an unusable one is replaced.

    A timing cache only saves build time, so one TensorRT cannot use (another
    TensorRT version, another device, damaged) starts a fresh cache with a
    warning instead of failing the build. ``set_timing_cache`` reports a cache
    made on a device with other CUDA properties by returning False when
    ``ignore_mismatch`` is False (NvInfer.h, IBuilderConfig::setTimingCache);
    Polygraphy (config.py) passes False too. A cache from another device is
    never used: its tactics may be wrong for this GPU.
    """
    if path is None:
        return None
    data = path.read_bytes() if path.is_file() else b""
    cache = _create_timing_cache(config, data) if data else None
    if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
        logger.info("timing cache %s: %d bytes loaded", path, len(data))
        return cache
    if data:
        logger.warning(
            "timing cache %s was made by another TensorRT version or device, or is damaged: "
            "this build starts a new one and replaces it",
            path,
        )
    # An empty blob makes a new cache (pyCoreDoc.h, IBuilderConfig.create_timing_cache).
    fresh = config.create_timing_cache(b"")
    config.set_timing_cache(fresh, ignore_mismatch=False)
    return fresh


def _create_timing_cache(config: trt.IBuilderConfig, data: bytes) -> trt.ITimingCache | None:
    """``create_timing_cache`` of bytes that may not be a timing cache at all.

    TensorRT does not document what it does with bytes that are no timing
    cache; both failure signals a binding can give (None, an exception) mean
    "unusable" here.
    """
    try:
        cache: trt.ITimingCache | None = config.create_timing_cache(data)
    except (RuntimeError, TypeError, ValueError) as exc:
        logger.debug("create_timing_cache refused the file: %s", exc)
        return None
    return cache


def _save_timing_cache(config: trt.IBuilderConfig, path: Path) -> None:
    """Merge what this build learnt with the file (another build may have extended it).

    As Polygraphy's EngineBytesFromNetwork (loader.py) the file's cache is
    combined into this build's, but with ``ignore_mismatch=False`` where
    Polygraphy passes True: ``combine`` then returns False for a cache of
    another TensorRT version or device (NvInfer.h, ITimingCache::combine: such
    a mix "may lead to functional/performance bugs"), and this build's cache
    replaces the file.
    """
    merged = config.get_timing_cache()
    if path.is_file():
        on_disk = _create_timing_cache(config, path.read_bytes())
        if on_disk is None or not merged.combine(on_disk, ignore_mismatch=False):
            logger.warning("timing cache %s could not be merged; this build's replaces it", path)
    atomic_write_bytes(path, memoryview(merged.serialize()))


def merge_timing_caches(sources: list[Path], output: Path) -> dict[str, Any]:
    """Combine timing caches of one TensorRT version and device class into ``output``.

    Runs where TensorRT runs (a board of the class): the controller keeps the
    caches, a board merges them. Returns what was merged and what was skipped.
    """
    trt = require_tensorrt()
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    config = builder.create_builder_config()
    merged = config.create_timing_cache(b"")
    used: list[str] = []
    skipped: list[str] = []
    for source in sources:
        cache = _create_timing_cache(config, source.read_bytes()) if source.is_file() else None
        if cache is not None and merged.combine(cache, ignore_mismatch=False):
            used.append(str(source))
        else:
            skipped.append(str(source))
    atomic_write_bytes(output, memoryview(merged.serialize()))
    return {"output": str(output), "merged": used, "skipped": skipped}


def is_explicitly_quantized(network: trt.INetworkDefinition) -> bool:
    """Whether the parsed network has Q/DQ layers (explicit INT8 quantization)."""
    import tensorrt as trt

    quantizing = (trt.LayerType.QUANTIZE, trt.LayerType.DEQUANTIZE)
    return any(network.get_layer(i).type in quantizing for i in range(network.num_layers))


def _create_network(builder: trt.Builder, api: TrtLine) -> trt.INetworkDefinition:
    import tensorrt as trt

    flags = 0
    if api.explicit_batch_flag:
        # Polygraphy loader.py NetworkFromOnnx: EXPLICIT_BATCH below 10.0.
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    return builder.create_network(flags)


def build_tensorrt(options: BuildOptions) -> dict[str, str]:
    """Build and save the engine and its layer report; return the side files."""
    trt_module = require_tensorrt()
    import tensorrt as trt

    from jetson_rt.cuda import require_device

    api = tensorrt_api(str(trt_module.__version__))
    require_device(0)
    log = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(log)
    _check_dla_early(builder, options)
    network = _create_network(builder, api)
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
    explicit = is_explicitly_quantized(network)
    if options.precision in ("int8", "best") and explicit:
        # Q/DQ scales are in the model: TensorRT builds them with the INT8 flag
        # and no calibrator, on 8.6 and 10.x alike.
        logger.info("%s has Q/DQ layers: explicit INT8, no calibration", options.model.name)
    elif options.precision in ("int8", "best"):
        calibrator = _attach_calibrator(config, network, options, profile, api)

    _load_timing_cache(config, options.timing_cache)
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.close()
    if calibrator is not None and calibrator.error is not None:
        # TensorRT's Python wrapper catches what a calibrator callback raises and
        # only prints it (python/src/infer/pyInt8.cpp); the calibrator kept it.
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


def _attach_calibrator(
    config: trt.IBuilderConfig,
    network: trt.INetworkDefinition,
    options: BuildOptions,
    profile: trt.IOptimizationProfile | None,
    api: TrtLine,
) -> Any:
    """Implicit INT8 calibration: a calibrator fed from the calibration profile's shapes.

    Deprecated from TensorRT 10.1 on (explicit Q/DQ quantization supersedes it;
    see ``jetson-rt quantize``). The two deprecated setters are called inside a
    local warnings filter, so their DeprecationWarning does not end the build
    where warnings are errors; one log line says so instead.
    """
    from jetson_rt.engine.calibrator import make_calibrator

    if api.implicit_int8 == "deprecated":
        logger.warning(
            "implicit INT8 calibration is deprecated since TensorRT 10.1: quantize the model "
            "on the controller (jetson-rt quantize, Q/DQ ONNX) to build it with explicit INT8"
        )
    calibrator = make_calibrator(
        samples=npy_samples(options.calib_dir) if options.calib_dir else [],
        cache=options.calib_cache,
        inputs=_calibration_inputs(network, options),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        config.int8_calibrator = calibrator
        if profile is not None:
            # MIN and MAX of the calibration profile are overwritten by its OPT
            # (NvInfer.h, setCalibrationProfile): batches are OPT-shaped.
            config.set_calibration_profile(profile)
    return calibrator


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
    """Name -> (shape of one calibration batch, numpy dtype) for every network input.

    A batch has the shape TensorRT calibrates at: the calibration profile's OPT
    shape for an input in the profile (NvInfer.h, setCalibrationProfile), the
    declared shape for a fixed input. ``--calib-batch-size`` must agree with it.
    """

    result: dict[str, tuple[tuple[int, ...], Any]] = {}
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = options.opt_shapes.get(tensor.name) or dims_tuple(tensor.shape)
        if any(dim < 0 for dim in shape):
            raise EngineError(f"input {tensor.name!r} needs --shapes for calibration")
        if options.calib_batch_size not in (1, shape[0]):
            source = "--opt-shapes" if tensor.name in options.opt_shapes else "the model"
            raise EngineError(
                f"--calib-batch-size {options.calib_batch_size} does not match input "
                f"{tensor.name!r}: TensorRT calibrates at {list(shape)} ({source}), so a "
                f"batch is {shape[0]} sample(s); drop --calib-batch-size or set the batch "
                "axis of the shapes"
            )
        result[tensor.name] = (shape, numpy_dtype(tensor.dtype, tensor.name))
    return result


def numpy_dtype(dtype: trt.DataType, name: str) -> Any:
    """``tensorrt.nptype``, refusing with a message the types numpy lacks.

    ``nptype`` raises TypeError for BF16, FP8, INT4, FP4 and E8M0
    (python/packaging/bindings_wheel/tensorrt/__init__.py: "fp8 and bfloat16
    have no equivalent numpy type").
    """
    import tensorrt as trt

    try:
        return trt.nptype(dtype)
    except TypeError:
        kind = getattr(dtype, "name", str(dtype))
        raise EngineError(
            f"tensor {name!r} is {kind}, which numpy has no type for: jetson-rt binds "
            "host buffers as numpy arrays; cast it to float16/float32 in the model "
            "(an ONNX Cast at the input or output) and rebuild"
        ) from None


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
