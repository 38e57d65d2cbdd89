"""FAKES for tests: a stand-in ``tensorrt`` module and a host-memory CUDA runtime.

Neither TensorRT nor a GPU can exist on the development and CI machines, so the
TensorRT control flow (DLA refusal, profiles, calibration, timing cache, graph
capture fallback, corrupt engines) is tested against these fakes. They are NOT
TensorRT or CUDA and prove nothing about them; they only mirror the parts of
the TensorRT 10 Python API and cuda-python's runtime bindings that jetson-rt
calls, with the same call shapes and failure signals (``None`` engines,
``False`` returns, ``cudaError_t`` tuples).

Every TensorRT behaviour the fake imitates cites where it is documented or
implemented; paths are in NVIDIA/TensorRT at the 10.3 GA commit (84dd6ed1)
unless another line is named. A behaviour TensorRT does not document is
labelled as the fake's own choice. ``make_fake_tensorrt(version="8.6.1")``
gives the TensorRT 8.6 API of JetPack 6.0 where it differs.

* :class:`FakeCudart` keeps "device" memory in host ``ctypes`` buffers, runs
  stream work immediately, and records it instead while a stream captures, so
  CUDA graph replay and capture invalidation behave as on a GPU.
* :func:`make_fake_tensorrt` builds a module whose builder parses ONNX with the
  ``onnx`` package and serialises a JSON "engine"; the engine's execution is a
  device-to-device copy of its first input into every output (zero-padded),
  queued through whichever CUDA runtime ``jetson_rt.cuda`` uses, so it also
  runs on a real GPU.
"""

# The fake mirrors cuda-python's and TensorRT's names (cudaMalloc, cudaSuccess,
# num_DLA_cores), which break PEP 8 naming on purpose.
# ruff: noqa: N801, N802, N806, N815

from __future__ import annotations

import ctypes
import enum
import json
import sys
import time
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# --- fake CUDA runtime ---------------------------------------------------------------


class cudaError_t(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInvalidResourceHandle = 400
    cudaErrorNotReady = 600
    cudaErrorStreamCaptureUnsupported = 900
    cudaErrorStreamCaptureInvalidated = 901


class cudaMemcpyKind(enum.IntEnum):
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2
    cudaMemcpyDeviceToDevice = 3


class cudaStreamCaptureMode(enum.IntEnum):
    cudaStreamCaptureModeGlobal = 0
    cudaStreamCaptureModeThreadLocal = 1
    cudaStreamCaptureModeRelaxed = 2


OK = cudaError_t.cudaSuccess


@dataclass(eq=False)
class _Stream:
    address: int
    flags: int
    priority: int
    capture: list[Callable[[], None]] | None = None
    invalidated: bool = False

    def __int__(self) -> int:
        return self.address


@dataclass(eq=False)
class _Event:
    flags: int
    time: float | None = None


@dataclass(eq=False)
class _Graph:
    ops: list[Callable[[], None]] = field(default_factory=list)

    def __int__(self) -> int:
        return id(self)


@dataclass
class _Props:
    name: bytes = b"Fake Orin (ga10b)"
    major: int = 8
    minor: int = 7
    integrated: int = 1
    totalGlobalMem: int = 8 << 30


class FakeCudart:
    """The subset of ``cuda.bindings.runtime`` jetson-rt uses, over host memory."""

    cudaError_t = cudaError_t
    cudaMemcpyKind = cudaMemcpyKind
    cudaStreamCaptureMode = cudaStreamCaptureMode
    cudaStreamDefault = 0
    cudaStreamNonBlocking = 1
    cudaEventDefault = 0
    cudaEventBlockingSync = 1
    cudaEventDisableTiming = 2

    def __init__(self, devices: int = 1) -> None:
        self.devices = devices
        self.memory: dict[int, Any] = {}
        self.pinned: set[int] = set()
        self.streams: dict[int, _Stream] = {}
        self.events: set[int] = set()
        self.graphs = 0
        self.last_error = OK
        self.launches = 0
        self._next_stream = 0x1000

    # errors and devices
    def cudaGetErrorName(self, error: int) -> tuple[cudaError_t, bytes]:
        return OK, cudaError_t(error).name.encode()

    def cudaGetErrorString(self, error: int) -> tuple[cudaError_t, bytes]:
        return OK, f"fake error {int(error)}".encode()

    def cudaGetLastError(self) -> tuple[cudaError_t]:
        error, self.last_error = self.last_error, OK
        return (error,)

    def _fail(self, error: cudaError_t) -> cudaError_t:
        self.last_error = error
        return error

    def cudaGetDeviceCount(self) -> tuple[cudaError_t, int]:
        return OK, self.devices

    def cudaSetDevice(self, index: int) -> tuple[cudaError_t]:
        return (OK if index < self.devices else cudaError_t.cudaErrorInvalidValue,)

    def cudaGetDeviceProperties(self, index: int) -> tuple[cudaError_t, _Props]:
        return OK, _Props()

    def cudaRuntimeGetVersion(self) -> tuple[cudaError_t, int]:
        return OK, 12060

    def cudaDriverGetVersion(self) -> tuple[cudaError_t, int]:
        return OK, 12060

    def cudaDeviceSynchronize(self) -> tuple[cudaError_t]:
        return (OK,)

    # memory
    def _alloc(self, size: int) -> int:
        buffer = (ctypes.c_uint8 * size)()
        address = ctypes.addressof(buffer)
        self.memory[address] = buffer
        return address

    def cudaMalloc(self, size: int) -> tuple[cudaError_t, int]:
        if size > 1 << 40:
            return self._fail(cudaError_t.cudaErrorMemoryAllocation), 0
        return OK, self._alloc(size)

    def cudaMallocHost(self, size: int) -> tuple[cudaError_t, int]:
        address = self._alloc(size)
        self.pinned.add(address)
        return OK, address

    def cudaFree(self, ptr: int) -> tuple[cudaError_t]:
        if ptr not in self.memory or ptr in self.pinned:
            return (self._fail(cudaError_t.cudaErrorInvalidValue),)
        del self.memory[ptr]
        return (OK,)

    def cudaFreeHost(self, ptr: int) -> tuple[cudaError_t]:
        if ptr not in self.pinned:
            return (self._fail(cudaError_t.cudaErrorInvalidValue),)
        self.pinned.discard(ptr)
        del self.memory[ptr]
        return (OK,)

    def _stream(self, stream: Any) -> _Stream:
        return self.streams[int(stream)]

    def _submit(self, stream: Any, op: Callable[[], None]) -> cudaError_t:
        target = self._stream(stream)
        if target.capture is not None:
            target.capture.append(op)
        else:
            op()
        return OK

    def cudaMemcpyAsync(
        self, dst: int, src: int, count: int, kind: int, stream: Any
    ) -> tuple[cudaError_t]:
        return (self._submit(stream, lambda: ctypes.memmove(dst, src, count)),)

    def cudaMemsetAsync(self, ptr: int, value: int, count: int, stream: Any) -> tuple[cudaError_t]:
        return (self._submit(stream, lambda: ctypes.memset(ptr, value, count)),)

    # streams
    def cudaDeviceGetStreamPriorityRange(self) -> tuple[cudaError_t, int, int]:
        return OK, 0, -5

    def cudaStreamCreateWithPriority(
        self, flags: int, priority: int
    ) -> tuple[cudaError_t, _Stream]:
        self._next_stream += 16
        stream = _Stream(self._next_stream, flags, priority)
        self.streams[stream.address] = stream
        return OK, stream

    def cudaStreamGetPriority(self, stream: Any) -> tuple[cudaError_t, int]:
        return OK, self._stream(stream).priority

    def cudaStreamGetFlags(self, stream: Any) -> tuple[cudaError_t, int]:
        return OK, self._stream(stream).flags

    def cudaStreamDestroy(self, stream: Any) -> tuple[cudaError_t]:
        del self.streams[int(stream)]
        return (OK,)

    def cudaStreamSynchronize(self, stream: Any) -> tuple[cudaError_t]:
        target = self._stream(stream)
        if target.capture is not None:
            # As on a GPU: illegal during capture, and it invalidates the capture.
            target.invalidated = True
            return (self._fail(cudaError_t.cudaErrorStreamCaptureUnsupported),)
        return (OK,)

    # events
    def cudaEventCreateWithFlags(self, flags: int) -> tuple[cudaError_t, _Event]:
        event = _Event(flags)
        self.events.add(id(event))
        return OK, event

    def cudaEventDestroy(self, event: _Event) -> tuple[cudaError_t]:
        self.events.discard(id(event))
        return (OK,)

    def cudaEventRecord(self, event: _Event, stream: Any) -> tuple[cudaError_t]:
        def record() -> None:
            event.time = time.perf_counter()

        return (self._submit(stream, record),)

    def cudaEventSynchronize(self, event: _Event) -> tuple[cudaError_t]:
        return (OK,)

    def cudaEventElapsedTime(self, start: _Event, end: _Event) -> tuple[cudaError_t, float]:
        if start.time is None or end.time is None:
            return self._fail(cudaError_t.cudaErrorInvalidResourceHandle), 0.0
        return OK, (end.time - start.time) * 1000.0

    # graphs
    def cudaStreamBeginCapture(self, stream: Any, mode: int) -> tuple[cudaError_t]:
        target = self._stream(stream)
        target.capture, target.invalidated = [], False
        return (OK,)

    def cudaStreamEndCapture(self, stream: Any) -> tuple[cudaError_t, _Graph | None]:
        target = self._stream(stream)
        ops, invalidated = target.capture or [], target.invalidated
        target.capture, target.invalidated = None, False
        if invalidated:
            return self._fail(cudaError_t.cudaErrorStreamCaptureInvalidated), None
        self.graphs += 1
        return OK, _Graph(list(ops))

    def cudaGraphInstantiate(self, graph: _Graph, flags: int) -> tuple[cudaError_t, _Graph]:
        self.graphs += 1
        return OK, _Graph(list(graph.ops))

    def cudaGraphLaunch(self, graph_exec: _Graph, stream: Any) -> tuple[cudaError_t]:
        self.launches += 1
        for op in graph_exec.ops:
            self._submit(stream, op)
        return (OK,)

    def cudaGraphExecDestroy(self, graph_exec: _Graph) -> tuple[cudaError_t]:
        self.graphs -= 1
        return (OK,)

    def cudaGraphDestroy(self, graph: _Graph) -> tuple[cudaError_t]:
        self.graphs -= 1
        return (OK,)

    def live(self) -> dict[str, int]:
        """What is still allocated: every count is 0 after a clean shutdown."""
        return {
            "device_buffers": len(self.memory) - len(self.pinned),
            "pinned_buffers": len(self.pinned),
            "streams": len(self.streams),
            "events": len(self.events),
            "graphs": self.graphs,
        }


# --- fake tensorrt -------------------------------------------------------------------

ENGINE_MAGIC = b"FAKE-TRT-ENGINE\n"
TIMING_MAGIC = b"FAKE-TRT-TIMING\n"


class _Enum:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


def _enum(*names: str) -> type:
    return type("Enum", (), {name: _Enum(name) for name in names})


class Dims(list):  # type: ignore[type-arg]
    """TensorRT's Dims: a list of ints."""


@dataclass
class _Tensor:
    name: str
    shape: list[int]
    dtype: Any


def make_fake_tensorrt(
    *,
    dla_cores: int = 0,
    unsupported_ops: tuple[str, ...] = (),
    capture_unsafe: bool = False,
    version: str = "10.3.0.fake",
    device: str = "Orin (nvgpu) sm_87",
    io: dict[str, dict[str, Any]] | None = None,
) -> Any:
    """A fresh fake ``tensorrt`` module (state is per module, so per test).

    ``capture_unsafe`` makes every engine synchronise its stream inside
    ``execute_async_v3``, as some real engines do: fine when enqueued directly,
    fatal to a CUDA graph capture. ``device`` stands for the CUDA device
    properties a timing cache records. ``io`` overrides what built engines
    report for a tensor: ``{"out": {"dtype": "BF16", "format": "CHW32",
    "location": "HOST", "shape_io": True}}``.
    """
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version  # type: ignore[attr-defined]
    major_minor = tuple(int(part) for part in version.split(".")[:2])
    v10 = major_minor >= (10, 0)
    io_overrides = io or {}
    DataType = _enum(
        "FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8", "INT64", "BF16", "FP8", "INT4", "FP4"
    )
    TensorIOMode = _enum("INPUT", "OUTPUT")
    BuilderFlag = _enum("FP16", "INT8", "GPU_FALLBACK", "TF32")
    DeviceType = _enum("GPU", "DLA")
    LayerType = _enum("CONVOLUTION", "ACTIVATION", "SCALE", "QUANTIZE", "DEQUANTIZE", "OTHER")
    ns: dict[str, Any] = {
        "LayerType": LayerType,
        "NetworkDefinitionCreationFlag": type(
            "NetworkDefinitionCreationFlag", (), {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1}
        ),
        "TensorLocation": _enum("DEVICE", "HOST"),
        "TensorFormat": _enum("LINEAR", "CHW2", "HWC8", "CHW4", "CHW16", "CHW32", "HWC"),
        "DataType": DataType,
        "TensorIOMode": TensorIOMode,
        "BuilderFlag": BuilderFlag,
        "DeviceType": DeviceType,
        "MemoryPoolType": _enum("WORKSPACE"),
        "ProfilingVerbosity": _enum("LAYER_NAMES_ONLY", "DETAILED"),
        "LayerInformationFormat": _enum("ONELINE", "JSON"),
        "Dims": Dims,
    }
    if v10:
        # ExecutionContextAllocationStrategy arrived in 10.0 (Polygraphy runner.py
        # uses it unconditionally only on the 10.x code path).
        ns["ExecutionContextAllocationStrategy"] = _enum(
            "STATIC", "ON_PROFILE_CHANGE", "USER_MANAGED"
        )
    # tensorrt.nptype's table (python/packaging/bindings_wheel/tensorrt/__init__.py):
    # no BF16/FP8/INT4/FP4 ("no equivalent numpy type"): TypeError. INT64 is 10.0+.
    np_types = {
        "FLOAT": np.float32,
        "HALF": np.float16,
        "INT8": np.int8,
        "INT32": np.int32,
        "BOOL": np.bool_,
        "UINT8": np.uint8,
    }
    if v10:
        np_types["INT64"] = np.int64
    record: dict[str, Any] = {
        "builds": [],
        "calibration_batches": 0,
        "calibration_inputs": [],
        "parsers": 0,
        "stderr": [],
    }

    def nptype(dtype: Any) -> Any:
        if dtype.name not in np_types:
            raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")
        return np_types[dtype.name]

    def deprecated(use_instead: str) -> None:
        # From 10.1 the deprecated setters warn (python/src/utils.cpp,
        # issueDeprecationWarning: PyErr_WarnEx(PyExc_DeprecationWarning, "Use ... instead.")).
        if major_minor >= (10, 1):
            warnings.warn(f"Use {use_instead} instead.", DeprecationWarning, stacklevel=3)

    class Logger:
        WARNING = "WARNING"
        INFO = "INFO"
        ERROR = "ERROR"

        def __init__(self, severity: str = "WARNING") -> None:
            self.min_severity = severity

    class IInt8EntropyCalibrator2:
        def __init__(self) -> None:
            pass

    # NvOnnxParser.h IParserError: node(), nodeName(), nodeOperator(), desc().
    class ParserError:
        def __init__(self, node_index: int, node_name: str, op: str, text: str) -> None:
            self._node, self._name, self._op, self._text = node_index, node_name, op, text

        def node(self) -> int:
            return self._node

        def node_name(self) -> str:
            return self._name

        def node_operator(self) -> str:
            return self._op

        def desc(self) -> str:
            return self._text

    @dataclass
    class _Layer:
        name: str
        type: Any

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.inputs: list[_Tensor] = []
            self.outputs: list[_Tensor] = []
            self.layers: list[_Layer] = []

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        def get_input(self, index: int) -> _Tensor:
            return self.inputs[index]

        @property
        def num_layers(self) -> int:
            return len(self.layers)

        def get_layer(self, index: int) -> _Layer:
            return self.layers[index]

    class OnnxParser:
        def __init__(self, network: Network, logger: Logger) -> None:
            self.network = network
            self.errors: list[ParserError] = []
            record["parsers"] += 1

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, index: int) -> ParserError:
            return self.errors[index]

        def parse(self, data: bytes, path: str | None = None) -> bool:
            import onnx

            try:
                model = onnx.load_from_string(bytes(data))
            except Exception as exc:
                self.errors.append(ParserError(-1, "", "", f"cannot decode: {exc}"))
                return False
            for index, node in enumerate(model.graph.node):
                if node.op_type in unsupported_ops:
                    self.errors.append(
                        ParserError(
                            index,
                            node.name,
                            node.op_type,
                            f"No importer registered for op: {node.op_type}",
                        )
                    )
            if not v10 and not self.network.flags & (1 << 0):
                # TensorRT 8.x: the ONNX parser needs an explicit-batch network
                # (onnx-tensorrt release/8.6 ModelImporter.cpp: "This version of the
                # ONNX parser only supports TensorRT INetworkDefinitions with an
                # explicit batch dimension").
                self.errors.append(
                    ParserError(-1, "", "", "only supports an explicit batch dimension")
                )
            if self.errors:
                return False
            layer_types = {
                "Conv": LayerType.CONVOLUTION,
                "Relu": LayerType.ACTIVATION,
                "BatchNormalization": LayerType.SCALE,
                "QuantizeLinear": LayerType.QUANTIZE,
                "DequantizeLinear": LayerType.DEQUANTIZE,
            }
            self.network.layers = [
                _Layer(node.name, layer_types.get(node.op_type, LayerType.OTHER))
                for node in model.graph.node
            ]

            def tensors(values: Any) -> list[_Tensor]:
                return [
                    _Tensor(
                        v.name,
                        [
                            d.dim_value if d.HasField("dim_value") else -1
                            for d in v.type.tensor_type.shape.dim
                        ],
                        DataType.FLOAT,
                    )
                    for v in values
                ]

            self.network.inputs = tensors(model.graph.input)
            self.network.outputs = tensors(model.graph.output)
            return True

    class OptimizationProfile:
        def __init__(self) -> None:
            self.shapes: dict[str, list[list[int]]] = {}

        def set_shape(self, name: str, low: Dims, opt: Dims, high: Dims) -> None:
            self.shapes[name] = [list(low), list(opt), list(high)]

    class TimingCache:
        """A cache whose header records the TensorRT version and the device.

        Real caches carry a "verification header" with the CUDA device
        properties (NvInfer.h, IBuilderConfig::setTimingCache).
        """

        def __init__(self, entries: list[str], made_by: str = version, on: str = device) -> None:
            self.entries = entries
            self.version = made_by
            self.device = on

        def serialize(self) -> bytes:
            header = {"version": self.version, "device": self.device}
            body = {**header, "entries": sorted(set(self.entries))}
            return TIMING_MAGIC + json.dumps(body).encode()

        def combine(self, other: TimingCache, ignore_mismatch: bool) -> bool:
            # NvInfer.h ITimingCache::combine: "The input cache must be generated by
            # a TensorRT build of exact same version, otherwise combine will be
            # skipped and return false. ignoreMismatch must be set to true if
            # combining a timing cache created from a different device."
            if other.version != self.version:
                return False
            if other.device != self.device and not ignore_mismatch:
                return False
            # "Conflicting entries will be skipped": entries here are keys only.
            self.entries = sorted(set(self.entries) | set(other.entries))
            return True

    class BuilderConfig:
        def __init__(self) -> None:
            self.flags: set[str] = set()
            self.pools: dict[str, int] = {}
            self.builder_optimization_level = 3
            self.profiling_verbosity: Any = None
            self.default_device_type = DeviceType.GPU
            self.DLA_core = -1
            self._int8_calibrator: Any = None
            self.profiles: list[OptimizationProfile] = []
            self.calibration_profile: OptimizationProfile | None = None
            self.timing_cache: TimingCache | None = None

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            self.pools[pool.name] = size

        def set_flag(self, flag: Any) -> None:
            self.flags.add(flag.name)

        def get_flag(self, flag: Any) -> bool:
            return flag.name in self.flags

        def add_optimization_profile(self, profile: OptimizationProfile) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

        # pyCore.cpp (10.3): int8_calibrator's getter and setter and
        # set_calibration_profile are wrapped in utils::deprecateMember.
        @property
        def int8_calibrator(self) -> Any:
            deprecated("explicit quantization")
            return self._int8_calibrator

        @int8_calibrator.setter
        def int8_calibrator(self, calibrator: Any) -> None:
            deprecated("explicit quantization")
            self._int8_calibrator = calibrator

        def set_calibration_profile(self, profile: OptimizationProfile) -> bool:
            deprecated("explicit quantization")
            self.calibration_profile = profile
            return True

        def create_timing_cache(self, data: bytes) -> TimingCache | None:
            # pyCoreDoc.h create_timing_cache: b"" creates a new cache.
            raw = bytes(data)
            if not raw:
                return TimingCache([])
            if not raw.startswith(TIMING_MAGIC):
                # NOT documented by TensorRT: what it does with bytes that are no
                # timing cache. The fake's choice: None (createTimingCache's C++
                # return is a pointer), a signal jetson-rt must survive.
                return None
            body = json.loads(raw[len(TIMING_MAGIC) :])
            return TimingCache(body["entries"], body["version"], body["device"])

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            # NvInfer.h IBuilderConfig::setTimingCache: "A failure will be reported if
            # the CUDA device property in the provided cache is different from current
            # environment. ignoreMismatch = true skips strict verification";
            # "\return true if set successfully, false otherwise". NOT documented
            # for a cache of another TensorRT version: the fake refuses it as well.
            if cache.version != version:
                return False
            if cache.device != device and not ignore_mismatch:
                return False
            self.timing_cache = cache
            return True

        def get_timing_cache(self) -> TimingCache:
            assert self.timing_cache is not None
            return self.timing_cache

    def _callback(calibrator: Any, name: str, *args: Any) -> Any:
        """Call a calibrator method as TensorRT's trampoline does (pyInt8.cpp).

        Every exception is caught, printed ("[ERROR] Exception caught in
        get_batch(): ...") and turned into "no data" (False/nullptr).
        """
        try:
            return getattr(calibrator, name)(*args)
        except Exception as exc:
            record["stderr"].append(f"[ERROR] Exception caught in {name}(): {exc}")
            return None

    def _read_device(pointer: int, shape: list[int]) -> Any:
        from jetson_rt.cuda import runtime

        rt = runtime()
        host = np.zeros([int(d) for d in shape], dtype=np.float32)
        kind = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _, stream = rt.cudaStreamCreateWithPriority(0, 0)
        rt.cudaMemcpyAsync(host.ctypes.data, pointer, host.nbytes, kind, stream)
        rt.cudaStreamSynchronize(stream)
        rt.cudaStreamDestroy(stream)
        return host

    class Builder:
        platform_has_fast_fp16 = True
        platform_has_fast_int8 = True

        def __init__(self, logger: Logger) -> None:
            self.num_DLA_cores = dla_cores

        def create_network(self, flags: int = 0) -> Network:
            return Network(flags)

        def create_builder_config(self) -> BuilderConfig:
            return BuilderConfig()

        def create_optimization_profile(self) -> OptimizationProfile:
            return OptimizationProfile()

        def build_serialized_network(self, network: Network, config: BuilderConfig) -> Any:
            calibrated = False
            calibrator = config._int8_calibrator
            explicit = any(
                layer.type in (LayerType.QUANTIZE, LayerType.DEQUANTIZE) for layer in network.layers
            )
            profile = config.profiles[0].shapes if config.profiles else {}
            if "INT8" in config.flags and calibrator is not None and not explicit:
                calib_profile = (config.calibration_profile or OptimizationProfile()).shapes
                if any(-1 in t.shape and t.name not in calib_profile for t in network.inputs):
                    return None  # NvInfer.h: a calibration profile "must be set" for runtime dims
                cache = _callback(calibrator, "read_calibration_cache")
                if not cache:
                    names = [tensor.name for tensor in network.inputs]
                    while True:
                        pointers = _callback(calibrator, "get_batch", names)
                        if not pointers:
                            break
                        # Calibration runs at the calibration profile's OPT shape
                        # (NvInfer.h setCalibrationProfile: "MIN and MAX values will be
                        # overwritten by kOPT"), else the declared shape.
                        tensor = network.inputs[0]
                        shape = calib_profile.get(tensor.name, [None, tensor.shape])[1]
                        record["calibration_inputs"].append(_read_device(pointers[0], shape))
                        record["calibration_batches"] += 1
                    _callback(
                        calibrator,
                        "write_calibration_cache",
                        f"fake-calibration:{record['calibration_batches']}".encode(),
                    )
                calibrated = True
            for tensor in network.inputs:
                if -1 in tensor.shape and tensor.name not in profile:
                    # NvInfer.h addOptimizationProfile: "must be called at least once if
                    # the network has dynamic or shape input tensors"; the build then
                    # fails, and buildSerializedNetwork returns nullptr (None).
                    return None
            payload = {
                "explicit_int8": explicit and "INT8" in config.flags,
                "inputs": [{"name": t.name, "shape": t.shape} for t in network.inputs],
                "outputs": [{"name": t.name, "shape": t.shape} for t in network.outputs],
                "profile": profile,
                "flags": sorted(config.flags),
                "device": config.default_device_type.name,
                "dla_core": config.DLA_core,
                "workspace": config.pools.get("WORKSPACE"),
                "opt_level": config.builder_optimization_level,
                "calibrated": calibrated,
            }
            if config.timing_cache is None:
                # Without a set cache the builder uses a local one (NvInfer.h getTimingCache).
                config.timing_cache = TimingCache([])
            if config.timing_cache is not None:
                config.timing_cache.entries.append(
                    f"tactic:{sorted(config.flags)}:{[t.shape for t in network.inputs]}"
                )
            record["builds"].append(payload)
            return ENGINE_MAGIC + json.dumps(payload, sort_keys=True).encode()

    class Inspector:
        def __init__(self, payload: dict[str, Any]) -> None:
            self.payload = payload

        def get_engine_information(self, fmt: Any) -> str:
            return json.dumps(
                {"Layers": [{"Name": "fused_graph", "Precision": self.payload["flags"]}]}
            )

    class ExecutionContext:
        def __init__(self, engine: Engine, legacy: bool = False) -> None:
            self.engine = engine
            self.shapes: dict[str, list[int]] = {}
            self.addresses: dict[str, int] = {}
            # 8.6: the device_memory property; 10.1+: set_device_memory(ptr, size).
            self.device_memory: Any = None
            self.legacy = legacy
            self.executions = 0

        # NvInferRuntime.h setInputShape: "True on success, false if the provided name
        # does not map to an input tensor, or if some other error occurred"; shapes
        # outside the optimisation profile are such an error.
        def set_input_shape(self, name: str, shape: Any) -> bool:
            low, _, high = self.engine.profile.get(name, [None, None, None])
            shape = [int(d) for d in shape]
            if low is None:
                self.shapes[name] = shape
                return True
            if not all(a <= b <= c for a, b, c in zip(low, shape, high, strict=True)):
                return False
            self.shapes[name] = shape
            return True

        # pyCoreDoc.h infer_shapes: the names of insufficiently specified inputs.
        def infer_shapes(self) -> list[str]:
            return [
                t["name"]
                for t in self.engine.inputs
                if -1 in t["shape"] and t["name"] not in self.shapes
            ]

        def get_tensor_shape(self, name: str) -> Dims:
            if name in self.shapes:
                return Dims(self.shapes[name])
            shape = list(self.engine.tensor(name)["shape"])
            if shape and shape[0] == -1 and self.shapes:
                shape[0] = next(iter(self.shapes.values()))[0]
            return Dims(shape)

        def set_device_memory(self, ptr: int, size: int) -> None:
            if major_minor < (10, 1):
                raise AttributeError("set_device_memory is TensorRT 10.1+")
            self.device_memory = (ptr, size)

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            self.addresses[name] = ptr
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            from jetson_rt.cuda import runtime

            rt = runtime()
            self.executions += 1
            if capture_unsafe:
                # Stands for an engine that synchronises inside enqueue: legal
                # outside capture, fatal to a capture.
                error = rt.cudaStreamSynchronize(stream_handle)[0]
                if error != rt.cudaError_t.cudaSuccess:
                    rt.cudaGetLastError()
                    return False
            first = self.engine.inputs[0]["name"]
            src = self.addresses[first]
            src_bytes = int(np.prod(self.get_tensor_shape(first))) * 4
            for output in self.engine.outputs:
                dst = self.addresses[output["name"]]
                dst_bytes = int(np.prod(self.get_tensor_shape(output["name"]))) * 4
                count = min(src_bytes, dst_bytes)
                kind = rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
                if rt.cudaMemcpyAsync(dst, src, count, kind, stream_handle)[0] != 0:
                    return False
                if dst_bytes > count:
                    rt.cudaMemsetAsync(dst + count, 0, dst_bytes - count, stream_handle)
            return True

    class Engine:
        def __init__(self, payload: dict[str, Any]) -> None:
            self.payload = payload
            self.inputs = payload["inputs"]
            self.outputs = payload["outputs"]
            self.profile = payload["profile"]
            # device_memory_size_v2 is 10.1+ (Polygraphy runner.py gates it on 10.1);
            # device_memory_size is deprecated from 10.1 (pyCore.cpp deprecateMember).
            if major_minor >= (10, 1):
                self.device_memory_size_v2 = 4096
            else:
                self.device_memory_size = 4096

        def tensor(self, name: str) -> dict[str, Any]:
            return next(t for t in self.inputs + self.outputs if t["name"] == name)

        @property
        def num_io_tensors(self) -> int:
            return len(self.inputs) + len(self.outputs)

        def get_tensor_name(self, index: int) -> str:
            return str((self.inputs + self.outputs)[index]["name"])

        def get_tensor_mode(self, name: str) -> Any:
            is_input = any(t["name"] == name for t in self.inputs)
            return TensorIOMode.INPUT if is_input else TensorIOMode.OUTPUT

        def get_tensor_shape(self, name: str) -> Dims:
            return Dims(self.tensor(name)["shape"])

        def _io(self, name: str, key: str, default: Any) -> Any:
            return io_overrides.get(name, {}).get(key, default)

        def get_tensor_dtype(self, name: str) -> Any:
            return getattr(DataType, self._io(name, "dtype", "FLOAT"))

        def get_tensor_location(self, name: str) -> Any:
            return getattr(ns["TensorLocation"], self._io(name, "location", "DEVICE"))

        def is_shape_inference_io(self, name: str) -> bool:
            return bool(self._io(name, "shape_io", False))

        def get_tensor_format(self, name: str) -> Any:
            return getattr(ns["TensorFormat"], self._io(name, "format", "LINEAR"))

        def get_tensor_format_desc(self, name: str) -> str:
            fmt = self._io(name, "format", "LINEAR")
            return f"Row major {fmt} format" if fmt != "LINEAR" else "Row major linear FP32 format"

        def get_tensor_profile_shape(self, name: str, index: int) -> list[Dims]:
            return [Dims(shape) for shape in self.profile[name]]

        def create_execution_context(self, strategy: Any = None) -> ExecutionContext:
            if not v10:
                raise TypeError("8.6 create_execution_context() takes no allocation strategy")
            assert strategy is ns["ExecutionContextAllocationStrategy"].USER_MANAGED
            return ExecutionContext(self)

        def create_execution_context_without_device_memory(self) -> ExecutionContext:
            # 8.6's way to a context whose memory the caller provides; deprecated in 10.0.
            return ExecutionContext(self, legacy=True)

        def create_engine_inspector(self) -> Inspector:
            return Inspector(self.payload)

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            self.num_DLA_cores = dla_cores
            self.DLA_core = -1

        def deserialize_cuda_engine(self, data: Any) -> Engine | None:
            raw = bytes(data)
            # NvInferRuntime.h deserializeCudaEngine: "\return The engine, or nullptr if
            # it could not be deserialized."
            if not raw.startswith(ENGINE_MAGIC):
                return None
            try:
                payload = json.loads(raw[len(ENGINE_MAGIC) :])
            except ValueError:
                return None
            if payload["device"] == "DLA" and self.DLA_core < 0:
                # NOT documented by TensorRT (a DLA engine on a runtime without a DLA
                # core set): the fake's choice is the same None as any failed load.
                return None
            return Engine(payload)

    for name, value in {
        **ns,
        "nptype": nptype,
        "Logger": Logger,
        "IInt8EntropyCalibrator2": IInt8EntropyCalibrator2,
        "OnnxParser": OnnxParser,
        "Builder": Builder,
        "Runtime": Runtime,
        "record": record,
    }.items():
        setattr(trt, name, value)
    return trt


# Modules that bind ``tensorrt`` when imported, re-imported under each fake.
TRT_BOUND_MODULES = ("jetson_rt.engine.calibrator",)


def install_fake_tensorrt(monkeypatch: Any, **options: Any) -> Any:
    """Put a fresh FAKE ``tensorrt`` in ``sys.modules`` for one test (undone after it)."""
    module = make_fake_tensorrt(**options)
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    for name in TRT_BOUND_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    return module
