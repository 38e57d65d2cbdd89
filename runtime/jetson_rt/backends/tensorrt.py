"""TensorRT (8.6, 10.x) on the GPU or a DLA core, driven without allocation in the loop.

:meth:`TensorRTBackend.activate` does all the work once: checks the engine
against its manifest, deserialises it from an mmap of the file, creates the
execution context with caller-provided device memory (10.x:
``USER_MANAGED`` and ``device_memory_size_v2``/``set_device_memory`` from
10.1; 8.6: ``create_execution_context_without_device_memory`` and the
``device_memory`` property, per :data:`jetson_rt.engine.trt_build.TRT_LINES`),
fixes the input shapes, allocates a pinned host buffer and a device buffer per
I/O tensor, binds every address with ``set_tensor_address``, and captures
``execute_async_v3`` into a CUDA graph (falling back to plain enqueueing when
capture fails). The hot path then only queues copies, replays the graph and
records timing events on one non-blocking stream at the highest priority.

I/O by location and format (as Polygraphy's runner.py): a tensor TensorRT
keeps in host memory (``get_tensor_location`` HOST, shape tensors with
``is_shape_inference_io``) is bound to its pinned host buffer and never
copied; a shape-tensor input's values are fixed at activation
(``shape_values``), since they decide every other shape. Vectorised formats
(CHW4, CHW32, HWC8, DLA formats...) and types numpy lacks (BF16, FP8, INT4,
FP4) are refused with a message: the runner hands plain numpy arrays to the
application.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jetson_rt.backends._lifecycle import BackendLifecycle
from jetson_rt.backends.base import BackendName, TensorSpec
from jetson_rt.cuda import (
    DeviceBuffer,
    GraphLaunch,
    PinnedBuffer,
    StageTimer,
    Stream,
    copy_device_to_host_async,
    copy_host_to_device_async,
    require_device,
)
from jetson_rt.engine.trt_build import (
    TrtLine,
    dims_tuple,
    numpy_dtype,
    require_tensorrt,
    tensorrt_api,
)
from jetson_rt.errors import ConfigError, EngineError, PlatformError
from jetson_rt.log import logger

if TYPE_CHECKING:
    import tensorrt as trt

    from jetson_rt.engine.manifest import Manifest


class TensorRTBackend(BackendLifecycle):
    """One serialised TensorRT engine with preallocated, pre-bound I/O.

    Options:
        batch: size of a dynamic leading dimension (within the engine's profile).
        input_shapes: concrete shapes by input name, for other dynamic axes.
        dla_core: DLA core for an engine built for DLA; by default the core
            recorded in the engine's manifest.
        use_cuda_graph: capture the enqueue into a CUDA graph (default True).
        verify: check the engine against its manifest first (default True).
        device: CUDA device index (default 0).
        shape_values: values of shape-tensor inputs (fixed for the backend's life).
    """

    name: BackendName = "tensorrt"

    def __init__(
        self,
        model_path: str | Path,
        *,
        batch: int | None = None,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        dla_core: int | None = None,
        use_cuda_graph: bool = True,
        verify: bool = True,
        device: int = 0,
        shape_values: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        if batch is not None and batch <= 0:
            raise ConfigError(f"batch must be a positive integer, not {batch}")
        if dla_core is not None and dla_core < 0:
            raise ConfigError(f"dla_core must be >= 0, not {dla_core}")
        self.model_path = Path(model_path)
        self.batch = batch
        self.input_shapes = {name: tuple(shape) for name, shape in (input_shapes or {}).items()}
        self.dla_core = dla_core
        self.use_cuda_graph = use_cuda_graph
        self.verify = verify
        self.device = device
        self.shape_values = {name: tuple(v) for name, v in (shape_values or {}).items()}
        self.manifest: Manifest | None = None
        self._api: TrtLine | None = None
        self._host_resident: set[str] = set()
        self._trt_logger: trt.Logger | None = None
        self._runtime: trt.Runtime | None = None
        self._engine: trt.ICudaEngine | None = None
        self._context: trt.IExecutionContext | None = None
        self._stream: Stream | None = None
        self._context_memory: DeviceBuffer | None = None
        self._device_buffers: dict[str, DeviceBuffer] = {}
        self._pinned: dict[str, PinnedBuffer] = {}
        self._graph: GraphLaunch | None = None
        self._timer: StageTimer | None = None
        # (device, pinned) pairs in binding order, so the hot path walks a list.
        self._h2d: list[tuple[DeviceBuffer, PinnedBuffer]] = []
        self._d2h: list[tuple[PinnedBuffer, DeviceBuffer]] = []
        self._stream_address = 0

    # --- lifecycle ----------------------------------------------------------

    def _open(self) -> None:
        require_tensorrt()
        import tensorrt as trt

        self._api = tensorrt_api(trt.__version__)
        self._check_manifest(trt.__version__)
        require_device(self.device)
        self._trt_logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._trt_logger)
        self._select_dla(self._runtime)
        engine = self._engine = self._deserialize(self._runtime)
        self._stream = Stream()
        self._stream_address = self._stream.address
        if self._api.allocation_strategy:
            self._context = engine.create_execution_context(
                trt.ExecutionContextAllocationStrategy.USER_MANAGED
            )
        else:  # 8.6
            self._context = engine.create_execution_context_without_device_memory()
        if self._context is None:
            raise EngineError(
                f"TensorRT could not create an execution context for {self.model_path}"
            )
        self._bind_shapes(engine, self._context)
        self._allocate_and_bind(engine, self._context)
        self._timer = StageTimer(("h2d", "infer", "d2h"))
        self._graph = GraphLaunch(self._stream, self._enqueue, use_graph=self.use_cuda_graph)
        captured = self._graph.prepare()
        logger.info(
            "TensorRT %s: %s, inputs %s, outputs %s, context memory %d bytes, %s",
            trt.__version__,
            self.model_path.name,
            {s.name: s.shape for s in self._inputs},
            {s.name: s.shape for s in self._outputs},
            self._context_memory.nbytes if self._context_memory else 0,
            "CUDA graph" if captured else f"plain enqueue ({self._graph.failure or 'disabled'})",
        )

    def _check_manifest(self, trt_version: str) -> None:
        if not self.model_path.is_file():
            raise EngineError(
                f"engine {self.model_path} does not exist: build it with `jetson-rt build-engine`"
            )
        if not self.verify:
            return
        from jetson_rt.engine.manifest import verify_artifact

        self.manifest = verify_artifact(self.model_path)
        if self.manifest.backend != "tensorrt":
            raise EngineError(
                f"{self.model_path} was built for the {self.manifest.backend} backend, not tensorrt"
            )
        built_with = self.manifest.platform.get("tensorrt")
        if built_with is not None and built_with != trt_version:
            raise EngineError(
                f"{self.model_path.name} was built with TensorRT {built_with}; this host has "
                f"{trt_version}. Engines are not portable across versions: rebuild it here"
            )
        if self.dla_core is None:
            recorded = self.manifest.build_flags.get("dla_core")
            if isinstance(recorded, int):
                self.dla_core = recorded

    def _select_dla(self, runtime: trt.Runtime) -> None:
        if self.dla_core is None:
            return
        cores = runtime.num_DLA_cores
        if cores == 0:
            raise PlatformError(
                f"{self.model_path.name} runs on DLA core {self.dla_core}, but this device has "
                "no DLA (Orin Nano's is fused off): rebuild the engine without --dla-core"
            )
        if self.dla_core >= cores:
            raise PlatformError(f"DLA core {self.dla_core} does not exist: this device has {cores}")
        runtime.DLA_core = self.dla_core

    def _deserialize(self, runtime: trt.Runtime) -> trt.ICudaEngine:
        try:
            with self.model_path.open("rb") as handle:
                if self.model_path.stat().st_size == 0:
                    raise EngineError(f"engine {self.model_path} is empty: rebuild it")
                with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                    # TensorRT copies what it needs; the mapping can go afterwards.
                    engine = runtime.deserialize_cuda_engine(mapped)
        except OSError as exc:
            raise EngineError(f"cannot read engine {self.model_path}: {exc}") from exc
        if engine is None:
            raise EngineError(
                f"TensorRT cannot deserialise {self.model_path}: the file is corrupt, or was "
                "built by another TensorRT version or for another GPU; rebuild it on this device"
            )
        return engine

    def _resolve_input_shape(
        self, name: str, declared: tuple[int, ...], profile: Sequence[tuple[int, ...]]
    ) -> tuple[int, ...]:
        wanted = self.input_shapes.get(name)
        if wanted is None:
            resolved = list(declared)
            for axis, dim in enumerate(declared):
                if dim >= 0:
                    continue
                if axis == 0 and self.batch is not None:
                    resolved[axis] = self.batch
                else:
                    hint = "batch=N" if axis == 0 else f"input_shapes={{{name!r}: (...)}}"
                    raise ConfigError(
                        f"input {name!r} axis {axis} is dynamic in {list(declared)}: "
                        f"give its size with {hint}"
                    )
            wanted = tuple(resolved)
        elif len(wanted) != len(declared):
            raise ConfigError(
                f"input_shapes[{name!r}] has {len(wanted)} dimensions; the engine's input "
                f"has {len(declared)}: {list(declared)}"
            )
        if profile:
            low, _, high = profile
            if not all(a <= b <= c for a, b, c in zip(low, wanted, high, strict=True)):
                raise ConfigError(
                    f"shape {list(wanted)} of {name!r} is outside the engine's profile "
                    f"{list(low)}..{list(high)}: rebuild with a wider --min/--max-shapes"
                )
        return wanted

    def _bind_shapes(self, engine: trt.ICudaEngine, context: trt.IExecutionContext) -> None:
        import tensorrt as trt

        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        input_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        unknown = sorted(set(self.input_shapes) - set(input_names))
        if unknown:
            raise ConfigError(
                f"input_shapes names {unknown}; the engine's inputs are {sorted(input_names)}"
            )
        inputs: list[TensorSpec] = []
        self._shape_inputs: list[TensorSpec] = []
        for name in names:
            self._check_io(engine, name)
        unknown_values = sorted(
            set(self.shape_values) - {n for n in input_names if engine.is_shape_inference_io(n)}
        )
        if unknown_values:
            raise ConfigError(
                f"shape_values names {unknown_values}, which are not shape-tensor inputs"
            )
        for name in input_names:
            declared = dims_tuple(engine.get_tensor_shape(name))
            if engine.is_shape_inference_io(name):
                self._shape_inputs.append(self._shape_input(engine, name, declared))
                continue
            profile: list[tuple[int, ...]] = []
            if any(dim < 0 for dim in declared):
                profile = [dims_tuple(s) for s in engine.get_tensor_profile_shape(name, 0)]
            shape = self._resolve_input_shape(name, declared, profile)
            if not context.set_input_shape(name, shape):
                raise ConfigError(f"TensorRT refused shape {list(shape)} for input {name!r}")
            dtype = np.dtype(numpy_dtype(engine.get_tensor_dtype(name), name))
            inputs.append(TensorSpec(name=name, shape=shape, dtype=dtype))
            if engine.get_tensor_location(name) == trt.TensorLocation.HOST:
                self._host_resident.add(name)
        self._bind_shape_tensors(context)
        missing = context.infer_shapes()
        if missing:
            raise ConfigError(f"TensorRT still needs shapes for {missing}")
        self._inputs = tuple(inputs)
        self._outputs = tuple(
            self._output_spec(engine, context, name) for name in names if name not in input_names
        )

    def _bind_shape_tensors(self, context: trt.IExecutionContext) -> None:
        """Shape tensors live in host memory and are bound before ``infer_shapes``."""
        for spec in self._shape_inputs:
            pinned = PinnedBuffer(spec.shape, spec.dtype)
            values = np.asarray(self.shape_values[spec.name], dtype=spec.dtype)
            pinned.array[...] = values.reshape(spec.shape)
            self._pinned[spec.name] = pinned
            if not context.set_tensor_address(spec.name, pinned.ptr):
                raise EngineError(f"TensorRT refused the host address of {spec.name!r}")

    def _output_spec(
        self, engine: trt.ICudaEngine, context: trt.IExecutionContext, name: str
    ) -> TensorSpec:
        import tensorrt as trt

        shape = dims_tuple(context.get_tensor_shape(name))
        if any(dim < 0 for dim in shape):
            raise EngineError(
                f"output {name!r} has a data-dependent shape {list(shape)}, which a "
                "preallocated runner cannot bind: export the model with a bounded output"
            )
        dtype = np.dtype(numpy_dtype(engine.get_tensor_dtype(name), name))
        if engine.get_tensor_location(name) == trt.TensorLocation.HOST:
            self._host_resident.add(name)
        return TensorSpec(name=name, shape=shape, dtype=dtype)

    def _check_io(self, engine: trt.ICudaEngine, name: str) -> None:
        """Refuse I/O a preallocated numpy binding cannot represent."""
        import tensorrt as trt

        numpy_dtype(engine.get_tensor_dtype(name), name)
        fmt = engine.get_tensor_format(name)
        if fmt != trt.TensorFormat.LINEAR:
            raise EngineError(
                f"tensor {name!r} of {self.model_path.name} has the vectorised format "
                f"{engine.get_tensor_format_desc(name)}: the runner binds linear numpy arrays; "
                "rebuild without I/O format constraints (linear I/O, the default)"
            )

    def _shape_input(
        self, engine: trt.ICudaEngine, name: str, declared: tuple[int, ...]
    ) -> TensorSpec:
        dtype = np.dtype(numpy_dtype(engine.get_tensor_dtype(name), name))
        if name not in self.shape_values:
            raise ConfigError(
                f"input {name!r} is a shape tensor (its values decide the other shapes): give "
                f"them once with shape_values={{{name!r}: [...]}}; they are fixed while active"
            )
        values = self.shape_values[name]
        shape = tuple(max(dim, 0) for dim in declared) or ()
        if int(np.prod(shape)) != len(values):
            raise ConfigError(
                f"shape_values[{name!r}] has {len(values)} values; the tensor holds "
                f"{int(np.prod(shape))} ({list(declared)})"
            )
        self._host_resident.add(name)
        return TensorSpec(name=name, shape=shape, dtype=dtype)

    def _bind_context_memory(self, engine: trt.ICudaEngine, context: trt.IExecutionContext) -> None:
        api = self._api
        assert api is not None  # set by _open
        # device_memory_size_v2 and set_device_memory arrived in TensorRT 10.1
        # (Polygraphy runner.py gates both on 10.1).
        if api.device_memory_v2:
            size = int(engine.device_memory_size_v2)
        else:
            size = int(engine.device_memory_size)
        self._context_memory = DeviceBuffer(size)
        if size:
            if api.device_memory_v2:
                context.set_device_memory(self._context_memory.ptr, size)
            else:
                context.device_memory = self._context_memory.ptr

    def _allocate_and_bind(self, engine: trt.ICudaEngine, context: trt.IExecutionContext) -> None:
        self._bind_context_memory(engine, context)
        for spec in (*self._inputs, *self._outputs):
            pinned = PinnedBuffer(spec.shape, spec.dtype)
            self._pinned[spec.name] = pinned
            if spec.name in self._host_resident:
                # TensorRT reads/writes it in host memory: bind the pinned buffer.
                if not context.set_tensor_address(spec.name, pinned.ptr):
                    raise EngineError(f"TensorRT refused the host address of {spec.name!r}")
                continue
            # A zero-sized tensor still needs a valid, distinct address.
            device = DeviceBuffer(max(spec.nbytes, 1))
            self._device_buffers[spec.name] = device
            if not context.set_tensor_address(spec.name, device.ptr):
                raise EngineError(f"TensorRT refused the address bound to {spec.name!r}")
        for spec in self._inputs:
            self._host_inputs[spec.name] = self._pinned[spec.name].array
            if spec.name not in self._host_resident:
                self._h2d.append((self._device_buffers[spec.name], self._pinned[spec.name]))
        for spec in self._outputs:
            self._host_outputs[spec.name] = self._pinned[spec.name].array
            if spec.name not in self._host_resident:
                self._d2h.append((self._pinned[spec.name], self._device_buffers[spec.name]))

    def _enqueue(self) -> None:
        context = self._context
        assert context is not None  # active by contract
        if not context.execute_async_v3(self._stream_address):
            raise EngineError(f"execute_async_v3 failed for {self.model_path.name}")

    def _close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.synchronize()
            except Exception:  # a failed run must still free everything below
                logger.exception("stream synchronisation failed while deactivating")
        if self._graph is not None:
            self._graph.close()
        if self._timer is not None:
            self._timer.close()
        self._graph = self._timer = None
        self._h2d.clear()
        self._d2h.clear()
        # The context goes before the memory it runs in; the engine before its runtime.
        self._context = None
        if self._context_memory is not None:
            self._context_memory.close()
        self._context_memory = None
        for buffer in (*self._device_buffers.values(), *self._pinned.values()):
            buffer.close()
        self._device_buffers.clear()
        self._pinned.clear()
        self._engine = None
        self._runtime = None
        self._trt_logger = None
        if self._stream is not None:
            self._stream.close()
        self._stream = None

    # --- hot path -------------------------------------------------------------

    def stage_in(self) -> None:
        stream, timer = self._stream, self._timer
        assert stream is not None and timer is not None  # active by contract
        timer.begin("h2d", stream)
        for device, pinned in self._h2d:
            copy_host_to_device_async(device, pinned, stream)
        timer.end("h2d", stream)

    def execute(self) -> None:
        stream, timer, graph = self._stream, self._timer, self._graph
        assert stream is not None and timer is not None and graph is not None
        timer.begin("infer", stream)
        graph.launch()
        timer.end("infer", stream)

    def stage_out(self) -> None:
        stream, timer = self._stream, self._timer
        assert stream is not None and timer is not None
        timer.begin("d2h", stream)
        for pinned, device in self._d2h:
            copy_device_to_host_async(pinned, device, stream)
        timer.end("d2h", stream)

    def synchronize(self) -> None:
        stream, timer = self._stream, self._timer
        assert stream is not None and timer is not None
        stream.synchronize()
        timer.read_into(self._stage_ms)
        timer.reset()

    def gpu_stage_hook(self) -> tuple[Stream, dict[str, int], Callable[[Stream], None]]:
        """For pre/post stages captured with the inference (:mod:`jetson_rt.prepost`):
        the stream, each device-bound tensor's address, and a call queuing the inference."""
        if self._stream is None:
            raise EngineError("activate the backend first")
        buffers = {name: buffer.ptr for name, buffer in self._device_buffers.items()}
        return self._stream, buffers, lambda _stream: self._enqueue()

    @property
    def uses_cuda_graph(self) -> bool:
        """True when ``execute`` replays a captured CUDA graph."""
        return self._graph is not None and self._graph.captured
