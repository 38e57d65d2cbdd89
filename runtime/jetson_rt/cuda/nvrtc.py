"""Run-time compiled CUDA C kernels: NVRTC to CUBIN, loaded through the driver API.

:class:`Module` compiles a source once for the present GPU and loads it;
:class:`Kernel` launches one of its functions with arguments packed once
(``ctypes`` values and an array of their addresses), so a launch in the hot
path builds no Python object and is captured into a CUDA graph like any other
launch on the stream. cuda-python's ``nvrtc`` and ``driver`` modules are
imported on first use.
"""

from __future__ import annotations

import ctypes
import importlib
from collections.abc import Sequence
from typing import Any

from jetson_rt.cuda.api import CudaError
from jetson_rt.cuda.stream import Stream

# Argument kinds a kernel takes: device pointers, 32-bit ints and floats.
ArgKind = str  # "ptr" | "i32" | "f32"
_CTYPES: dict[str, type[ctypes._SimpleCData[Any]]] = {
    "ptr": ctypes.c_uint64,
    "i32": ctypes.c_int32,
    "f32": ctypes.c_float,
}


def _bindings(name: str) -> Any:
    return importlib.import_module(f"cuda.bindings.{name}")


def _nvrtc_check(call: str, result: Any) -> Any:
    nvrtc = _bindings("nvrtc")
    error, *values = result if isinstance(result, tuple) else (result,)
    if error != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise CudaError(call, int(error), str(error), "NVRTC call failed")
    return values[0] if len(values) == 1 else values


def driver_check(call: str, result: Any) -> Any:
    driver = _bindings("driver")
    error, *values = result if isinstance(result, tuple) else (result,)
    if error != driver.CUresult.CUDA_SUCCESS:
        _, text = driver.cuGetErrorString(error)
        raise CudaError(call, int(error), str(error), str(text))
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def compile_cubin(
    source: bytes, name: str, compute_capability: tuple[int, int], options: Sequence[str] = ()
) -> bytes:
    """CUBIN of ``source`` for ``sm_XY``; a compile error raises with NVRTC's log."""
    nvrtc = _bindings("nvrtc")
    program = _nvrtc_check(
        "nvrtcCreateProgram", nvrtc.nvrtcCreateProgram(source, name.encode(), 0, [], [])
    )
    try:
        major, minor = compute_capability
        flags = [f"--gpu-architecture=sm_{major}{minor}".encode()]
        flags += [option.encode() for option in options]
        result = nvrtc.nvrtcCompileProgram(program, len(flags), flags)
        if result[0] != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            size = _nvrtc_check("nvrtcGetProgramLogSize", nvrtc.nvrtcGetProgramLogSize(program))
            log = b" " * size
            nvrtc.nvrtcGetProgramLog(program, log)
            raise CudaError(
                "nvrtcCompileProgram", int(result[0]), name, log.decode(errors="replace")
            )
        size = _nvrtc_check("nvrtcGetCUBINSize", nvrtc.nvrtcGetCUBINSize(program))
        cubin: bytes = b" " * int(size)
        _nvrtc_check("nvrtcGetCUBIN", nvrtc.nvrtcGetCUBIN(program, cubin))
        return cubin
    finally:
        nvrtc.nvrtcDestroyProgram(program)


class Module:
    """A compiled and loaded CUDA C source; :meth:`close` unloads it."""

    def __init__(
        self,
        source: bytes,
        name: str,
        compute_capability: tuple[int, int],
        options: Sequence[str] = (),
    ) -> None:
        driver = _bindings("driver")
        # The runtime's primary context must exist before the driver API loads into it.
        from jetson_rt.cuda.api import check, runtime

        check("cudaFree", runtime().cudaFree(0))
        cubin = compile_cubin(source, name, compute_capability, options)
        self._module: Any = driver_check("cuModuleLoadData", driver.cuModuleLoadData(cubin))

    def function(self, name: str) -> Any:
        driver = _bindings("driver")
        if self._module is None:
            raise ValueError("Module is closed")
        return driver_check(
            "cuModuleGetFunction", driver.cuModuleGetFunction(self._module, name.encode())
        )

    def close(self) -> None:
        module, self._module = self._module, None
        if module is not None:
            driver_check("cuModuleUnload", _bindings("driver").cuModuleUnload(module))

    def __enter__(self) -> Module:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Kernel:
    """One launch configuration of a function, its arguments packed once.

    ``args`` is a sequence of ``(kind, value)``; :meth:`set` changes a value in
    place (the packed addresses stay valid, so a captured graph is not
    affected: set values before capture).
    """

    def __init__(
        self,
        module: Module,
        name: str,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        *,
        args: Sequence[tuple[ArgKind, float | int]],
        shared_bytes: int = 0,
    ) -> None:
        self.name = name
        self.function = module.function(name)
        self.grid = grid
        self.block = block
        self.shared_bytes = shared_bytes
        self._values = [_CTYPES[kind](value) for kind, value in args]
        self._pointers = (ctypes.c_void_p * max(1, len(self._values)))(
            *[ctypes.addressof(value) for value in self._values]
        )
        self._stream_cache: tuple[int, Any] = (0, None)

    def set(self, index: int, value: float | int) -> None:
        self._values[index].value = value

    def launch(self, stream: Stream) -> None:
        driver = _bindings("driver")
        address = stream.address
        cached, handle = self._stream_cache
        if cached != address or handle is None:
            handle = driver.CUstream(address)
            self._stream_cache = (address, handle)
        gx, gy, gz = self.grid
        bx, by, bz = self.block
        driver_check(
            f"cuLaunchKernel({self.name})",
            driver.cuLaunchKernel(
                self.function,
                gx,
                gy,
                gz,
                bx,
                by,
                bz,
                self.shared_bytes,
                handle,
                ctypes.addressof(self._pointers),
                0,
            ),
        )
