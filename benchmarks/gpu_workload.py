"""A real GPU workload behind the Backend protocol, for runner benchmarks on any GPU.

TensorRT exists only on Jetsons; this stands in for an engine with the same
shape of work: a pinned-host-to-device copy of the input, ``launches`` kernel
launches (an NVRTC-compiled elementwise kernel, sized to take about
``target_ms`` in total on the present GPU), and a device-to-host copy of the
output, all on one non-blocking, highest-priority stream with per-stage
events, and the kernel launches captured into a CUDA graph as the tensorrt
backend captures ``execute_async_v3``. It is built only on ``jetson_rt.cuda``
plus cuda-python's NVRTC and driver bindings.

:func:`raw_graph_replay` replays the same work (copies included) as a single
CUDA graph with no Python between stages: the floor a Python runner's loop can
be compared against.

    python benchmarks/gpu_workload.py [--target-ms 1.0] [--replays 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from jetson_rt.backends.base import Stage, TensorSpec
from jetson_rt.cuda import (
    DeviceBuffer,
    Event,
    GraphLaunch,
    PinnedBuffer,
    StageTimer,
    Stream,
    copy_device_to_host_async,
    copy_host_to_device_async,
    device_info,
    require_device,
)
from jetson_rt.errors import PlatformError

KERNEL_NAME = b"jetson_rt_workload"
# A damped nonlinear recurrence: compute-bound, deterministic, and cheap to check
# on the host for a few iterations.
KERNEL_SOURCE = rb"""
extern "C" __global__ void jetson_rt_workload(const float* src, float* dst, int n, int iterations)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float x = src[i];
    for (int k = 0; k < iterations; ++k) {
        x = fmaf(x, 0.999f, 0.001f * __sinf(x));
    }
    dst[i] = x;
}
"""


def reference(x: npt.NDArray[np.float32], iterations: int) -> npt.NDArray[np.float32]:
    """The kernel on the host (float32, ``sin`` for ``__sinf``: compare with a tolerance)."""
    y = x.astype(np.float32, copy=True)
    for _ in range(iterations):
        y = (y * np.float32(0.999) + np.float32(0.001) * np.sin(y)).astype(np.float32)
    return y


def _nvrtc_check(nvrtc: Any, call: str, result: Any) -> Any:
    error, *values = result if isinstance(result, tuple) else (result,)
    if error != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise PlatformError(f"{call} failed: {error}")
    return values[0] if len(values) == 1 else values


def _driver_check(driver: Any, call: str, result: Any) -> Any:
    error, *values = result if isinstance(result, tuple) else (result,)
    if error != driver.CUresult.CUDA_SUCCESS:
        raise PlatformError(f"{call} failed: {error}")
    return values[0] if len(values) == 1 else (values or None)


def compile_kernel(compute_capability: tuple[int, int]) -> bytes:
    """CUBIN of :data:`KERNEL_SOURCE` for this GPU, compiled by NVRTC."""
    from cuda.bindings import nvrtc

    program = _nvrtc_check(
        nvrtc,
        "nvrtcCreateProgram",
        nvrtc.nvrtcCreateProgram(KERNEL_SOURCE, b"workload.cu", 0, [], []),
    )
    try:
        major, minor = compute_capability
        options = [f"--gpu-architecture=sm_{major}{minor}".encode()]
        result = nvrtc.nvrtcCompileProgram(program, len(options), options)
        if result[0] != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            size = _nvrtc_check(
                nvrtc, "nvrtcGetProgramLogSize", nvrtc.nvrtcGetProgramLogSize(program)
            )
            log = b" " * size
            nvrtc.nvrtcGetProgramLog(program, log)
            raise PlatformError(
                f"NVRTC could not compile the workload: {log.decode(errors='replace')}"
            )
        size = _nvrtc_check(nvrtc, "nvrtcGetCUBINSize", nvrtc.nvrtcGetCUBINSize(program))
        cubin = b" " * size
        _nvrtc_check(nvrtc, "nvrtcGetCUBIN", nvrtc.nvrtcGetCUBIN(program, cubin))
        return cubin
    finally:
        nvrtc.nvrtcDestroyProgram(program)


class GpuWorkload:
    """Backend-protocol object: H2D, ``launches`` NVRTC kernels, D2H.

    ``iterations`` (per launch) is calibrated in :meth:`activate` so that the
    launches take about ``target_ms`` together, unless given.
    """

    name = "gpu_workload"

    def __init__(
        self,
        *,
        elements: int = 1 << 18,
        launches: int = 8,
        target_ms: float = 1.0,
        iterations: int | None = None,
        use_cuda_graph: bool = True,
        device: int = 0,
    ) -> None:
        self.elements = elements
        self.launches = launches
        self.target_ms = target_ms
        self.iterations = iterations
        self.use_cuda_graph = use_cuda_graph
        self.device = device
        self.block = 256
        self.grid = (elements + self.block - 1) // self.block
        self._spec = TensorSpec("input", (1, elements), np.dtype(np.float32))
        self._out_spec = TensorSpec("output", (1, elements), np.dtype(np.float32))
        self._active = False
        self._stream: Stream | None = None
        self._host_in: PinnedBuffer | None = None
        self._host_out: PinnedBuffer | None = None
        self._dev_in: DeviceBuffer | None = None
        self._dev_work: DeviceBuffer | None = None
        self._timer: StageTimer | None = None
        self._graph: GraphLaunch | None = None
        self._driver: Any = None
        self._module: Any = None
        self._kernel: Any = None
        self._stream_cu: Any = None
        self._args: list[Any] = []
        self._host_inputs: dict[str, npt.NDArray[np.generic]] = {}
        self._host_outputs: dict[str, npt.NDArray[np.generic]] = {}
        self._stage_ms: dict[Stage, float] = {"h2d": math.nan, "infer": math.nan, "d2h": math.nan}

    # --- lifecycle -----------------------------------------------------------------

    def activate(self) -> None:
        if self._active:
            return
        try:
            self._open()
        except BaseException:
            self._close()
            raise
        self._active = True

    def _open(self) -> None:
        from cuda.bindings import driver

        self._driver = driver
        require_device(self.device)
        info = device_info(self.device)
        self.device_name = info.name
        cubin = compile_kernel(info.compute_capability)
        self._module = _driver_check(driver, "cuModuleLoadData", driver.cuModuleLoadData(cubin))
        self._kernel = _driver_check(
            driver, "cuModuleGetFunction", driver.cuModuleGetFunction(self._module, KERNEL_NAME)
        )
        self._stream = Stream()
        self._stream_cu = driver.CUstream(self._stream.address)
        shape = self._spec.shape
        self._host_in = PinnedBuffer(shape, np.float32)
        self._host_out = PinnedBuffer(shape, np.float32)
        self._dev_in = DeviceBuffer(self._spec.nbytes)
        self._dev_work = DeviceBuffer(self._spec.nbytes)
        self._host_inputs = {"input": self._host_in.array}
        self._host_outputs = {"output": self._host_out.array}
        self._timer = StageTimer(("h2d", "infer", "d2h"))
        if self.iterations is None:
            self.iterations = self._calibrate()
        self._set_args(self.iterations)
        self._graph = GraphLaunch(self._stream, self._enqueue, use_graph=self.use_cuda_graph)
        self._graph.prepare()

    def _set_args(self, iterations: int) -> None:
        """Kernel parameters packed once: launches pass a pointer, nothing is built per call."""
        assert self._dev_in is not None and self._dev_work is not None
        self._args = []
        for src in (self._dev_in, self._dev_work):
            values = [
                np.array([src.ptr], dtype=np.uint64),
                np.array([self._dev_work.ptr], dtype=np.uint64),
                np.array([self.elements], dtype=np.int32),
                np.array([iterations], dtype=np.int32),
            ]
            pointers = np.array([value.ctypes.data for value in values], dtype=np.uint64)
            self._args.append((values, pointers))

    def _launch(self, first: bool) -> None:
        driver = self._driver
        _, pointers = self._args[0 if first else 1]
        _driver_check(
            driver,
            "cuLaunchKernel",
            driver.cuLaunchKernel(
                self._kernel,
                self.grid,
                1,
                1,
                self.block,
                1,
                1,
                0,
                self._stream_cu,
                pointers.ctypes.data,
                0,
            ),
        )

    def _enqueue(self) -> None:
        for index in range(self.launches):
            self._launch(first=index == 0)

    def _calibrate(self) -> int:
        """Iterations per launch so that all launches take about ``target_ms``."""
        assert self._stream is not None
        iterations = 64
        with Event() as start, Event() as end:
            for _ in range(6):
                self._set_args(iterations)
                self._enqueue()  # warm-up at this size
                start.record(self._stream)
                self._enqueue()
                end.record(self._stream)
                end.synchronize()
                elapsed = end.elapsed_ms(start)
                if elapsed <= 0:
                    iterations *= 4
                    continue
                scale = self.target_ms / elapsed
                iterations = max(1, round(iterations * scale))
                if 0.9 < scale < 1.1:
                    break
        return iterations

    def deactivate(self) -> None:
        if not self._active:
            return
        self._active = False
        self._close()

    def _close(self) -> None:
        from cuda.bindings import driver

        if self._stream is not None:
            self._stream.synchronize()
        if self._graph is not None:
            self._graph.close()
        if self._timer is not None:
            self._timer.close()
        for buffer in (self._host_in, self._host_out, self._dev_in, self._dev_work):
            if buffer is not None:
                buffer.close()
        if self._module is not None:
            _driver_check(driver, "cuModuleUnload", driver.cuModuleUnload(self._module))
        if self._stream is not None:
            self._stream.close()
        self._graph = self._timer = None
        self._host_in = self._host_out = None
        self._dev_in = self._dev_work = None
        self._module = self._kernel = None
        self._stream = None
        self._args = []
        self._host_inputs = {}
        self._host_outputs = {}

    def __enter__(self) -> GpuWorkload:
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    # --- Backend protocol ------------------------------------------------------------

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return (self._spec,)

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return (self._out_spec,)

    def host_inputs(self) -> dict[str, npt.NDArray[np.generic]]:
        return self._host_inputs

    def host_outputs(self) -> dict[str, npt.NDArray[np.generic]]:
        return self._host_outputs

    def stage_in(self) -> None:
        assert self._stream is not None and self._timer is not None
        assert self._dev_in is not None and self._host_in is not None
        self._timer.begin("h2d", self._stream)
        copy_host_to_device_async(self._dev_in, self._host_in, self._stream)
        self._timer.end("h2d", self._stream)

    def execute(self) -> None:
        assert self._stream is not None and self._timer is not None and self._graph is not None
        self._timer.begin("infer", self._stream)
        self._graph.launch()
        self._timer.end("infer", self._stream)

    def stage_out(self) -> None:
        assert self._stream is not None and self._timer is not None
        assert self._dev_work is not None and self._host_out is not None
        self._timer.begin("d2h", self._stream)
        copy_device_to_host_async(self._host_out, self._dev_work, self._stream)
        self._timer.end("d2h", self._stream)

    def synchronize(self) -> None:
        assert self._stream is not None and self._timer is not None
        self._stream.synchronize()
        self._timer.read_into(self._stage_ms)
        self._timer.reset()

    def stage_times_ms(self) -> dict[Stage, float]:
        return self._stage_ms

    @property
    def uses_cuda_graph(self) -> bool:
        return self._graph is not None and self._graph.captured

    @property
    def total_iterations(self) -> int:
        return (self.iterations or 0) * self.launches


@dataclass(frozen=True)
class ReplayStats:
    """Latency of ``replays`` launches of one graph, host wall clock and GPU events (ms)."""

    replays: int
    host_p50_ms: float
    host_p99_ms: float
    host_max_ms: float
    gpu_p50_ms: float
    gpu_p99_ms: float
    gpu_max_ms: float


def _percentiles(values: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    p50, p99 = np.percentile(values, [50, 99])
    return float(p50), float(p99), float(values.max())


def raw_graph_replay(workload: GpuWorkload, replays: int = 2000, warmup: int = 100) -> ReplayStats:
    """Replay H2D + kernels + D2H of an active ``workload`` as one CUDA graph.

    Each replay is timed on the host (launch to stream sync, ``perf_counter_ns``)
    and on the GPU (events around the graph). The graph is destroyed afterwards;
    ``workload`` stays usable.
    """
    stream = workload._stream
    if stream is None:
        raise PlatformError("activate the workload before replaying it")

    dev_in, dev_work = workload._dev_in, workload._dev_work
    host_in, host_out = workload._host_in, workload._host_out
    assert dev_in is not None and dev_work is not None
    assert host_in is not None and host_out is not None

    def whole() -> None:
        copy_host_to_device_async(dev_in, host_in, stream)
        workload._enqueue()
        copy_device_to_host_async(host_out, dev_work, stream)

    host = np.empty(replays, dtype=np.float64)
    gpu = np.empty(replays, dtype=np.float64)
    with GraphLaunch(stream, whole) as graph, Event() as start, Event() as end:
        if not graph.prepare():
            raise PlatformError(f"the workload could not be captured: {graph.failure}")
        for _ in range(warmup):
            graph.launch()
        stream.synchronize()
        for index in range(replays):
            t0 = time.perf_counter_ns()
            start.record(stream)
            graph.launch()
            end.record(stream)
            stream.synchronize()
            host[index] = (time.perf_counter_ns() - t0) / 1e6
            gpu[index] = end.elapsed_ms(start)
    h50, h99, hmax = _percentiles(host)
    g50, g99, gmax = _percentiles(gpu)
    return ReplayStats(replays, h50, h99, hmax, g50, g99, gmax)


def staged_loop(workload: GpuWorkload, count: int = 2000, warmup: int = 100) -> dict[str, float]:
    """The Backend-protocol loop (stage_in, execute, stage_out, synchronize), host-timed."""
    host = np.empty(count, dtype=np.float64)
    infer = np.empty(count, dtype=np.float64)
    for index in range(warmup + count):
        t0 = time.perf_counter_ns()
        workload.stage_in()
        workload.execute()
        workload.stage_out()
        workload.synchronize()
        if index >= warmup:
            host[index - warmup] = (time.perf_counter_ns() - t0) / 1e6
            infer[index - warmup] = workload.stage_times_ms()["infer"]
    p50, p99, pmax = _percentiles(host)
    i50, i99, imax = _percentiles(infer)
    return {
        "count": count,
        "host_p50_ms": p50,
        "host_p99_ms": p99,
        "host_max_ms": pmax,
        "infer_p50_ms": i50,
        "infer_p99_ms": i99,
        "infer_max_ms": imax,
    }


def check_output(workload: GpuWorkload, seed: int = 0) -> float:
    """Run once on random input; return the largest error against :func:`reference`."""
    rng = np.random.default_rng(seed)
    value = rng.standard_normal(workload.inputs[0].shape, dtype=np.float32)
    workload.host_inputs()["input"][...] = value
    workload.stage_in()
    workload.execute()
    workload.stage_out()
    workload.synchronize()
    expected = reference(value, workload.total_iterations)
    return float(np.abs(workload.host_outputs()["output"] - expected).max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-ms", type=float, default=1.0)
    parser.add_argument("--elements", type=int, default=1 << 18)
    parser.add_argument("--launches", type=int, default=8)
    parser.add_argument("--replays", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    result: dict[str, Any] = {}
    # Correctness first, with few iterations, where the host reference is exact enough.
    with GpuWorkload(elements=args.elements, launches=2, iterations=3) as small:
        result["max_abs_error_6_iterations"] = check_output(small)
    for graph in (True, False):
        with GpuWorkload(
            elements=args.elements,
            launches=args.launches,
            target_ms=args.target_ms,
            use_cuda_graph=graph,
        ) as workload:
            key = "graph" if graph else "no_graph"
            result["device"] = workload.device_name
            result[f"{key}_captured"] = workload.uses_cuda_graph
            result["iterations_per_launch"] = workload.iterations
            result[f"staged_{key}"] = staged_loop(workload, args.replays)
            if graph:
                result["raw_graph_replay"] = asdict(raw_graph_replay(workload, args.replays))
                result["stage_times_ms"] = dict(workload.stage_times_ms())
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
