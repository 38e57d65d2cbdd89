"""Loading the CUDA runtime bindings and checking what they return.

cuda-python's runtime functions return a tuple whose first item is a
``cudaError_t``; :func:`check` turns a failure into :class:`CudaError` naming
the call, and returns the remaining items. The bindings are imported on first
use, so this package imports on machines without cuda-python or a GPU.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from jetson_rt.errors import PlatformError

_cudart: Any = None


class CudaError(PlatformError):
    """A CUDA runtime call failed."""

    def __init__(self, call: str, code: int, name: str, description: str) -> None:
        self.call = call
        self.code = code
        self.name = name
        self.description = description
        super().__init__(f"{call} failed: {name} ({code}): {description}")


def runtime() -> Any:
    """The ``cuda.bindings.runtime`` module (cuda-python 12.x/13.x)."""
    global _cudart  # noqa: PLW0603 - the module is imported once and cached
    if _cudart is None:
        try:
            _cudart = importlib.import_module("cuda.bindings.runtime")
        except ImportError as exc:
            raise PlatformError(
                "the CUDA runtime bindings are missing: install jetson-rt with the 'gpu' extra "
                "(pip install 'jetson-rt[gpu]', cuda-python 12.9.1 or newer)"
            ) from exc
    return _cudart


def _decode(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def error_text(error: Any) -> tuple[str, str]:
    """``(name, description)`` of a ``cudaError_t``."""
    rt = runtime()
    _, name = rt.cudaGetErrorName(error)
    _, text = rt.cudaGetErrorString(error)
    return _decode(name), _decode(text)


def check(call: str, result: Any) -> Any:
    """Raise :class:`CudaError` unless ``result[0]`` is ``cudaSuccess``.

    Returns ``None`` for calls that return only an error, the single value for
    calls that return one, else the tuple of values.
    """
    if isinstance(result, tuple):
        error, values = result[0], result[1:]
    else:
        error, values = result, ()
    if error != runtime().cudaError_t.cudaSuccess:
        name, text = error_text(error)
        raise CudaError(call, int(error), name, text)
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return values


def clear_last_error() -> None:
    """Reset the runtime's last (non-sticky) error, after a failure that was handled."""
    runtime().cudaGetLastError()


@dataclass(frozen=True)
class DeviceInfo:
    """What a manifest and a report say about the GPU."""

    index: int
    name: str
    compute_capability: tuple[int, int]
    integrated: bool
    total_memory_bytes: int
    runtime_version: str
    driver_version: str


def _version(encoded: int) -> str:
    # CUDA encodes 12.6 as 12060.
    return f"{encoded // 1000}.{(encoded % 1000) // 10}"


def device_count() -> int:
    """Visible CUDA devices; 0 when there is no driver or no GPU."""
    rt = runtime()
    error, count = rt.cudaGetDeviceCount()
    if error != rt.cudaError_t.cudaSuccess:
        clear_last_error()
        return 0
    return int(count)


def device_info(index: int = 0) -> DeviceInfo:
    rt = runtime()
    props = check("cudaGetDeviceProperties", rt.cudaGetDeviceProperties(index))
    name = props.name
    if isinstance(name, bytes):
        name = name.split(b"\0", 1)[0].decode()
    return DeviceInfo(
        index=index,
        name=str(name),
        compute_capability=(int(props.major), int(props.minor)),
        integrated=bool(props.integrated),
        total_memory_bytes=int(props.totalGlobalMem),
        runtime_version=_version(int(check("cudaRuntimeGetVersion", rt.cudaRuntimeGetVersion()))),
        driver_version=_version(int(check("cudaDriverGetVersion", rt.cudaDriverGetVersion()))),
    )


def set_device(index: int) -> None:
    check("cudaSetDevice", runtime().cudaSetDevice(index))


def require_device(index: int = 0) -> None:
    """Refuse clearly when there is no usable CUDA device ``index``."""
    count = device_count()
    if count <= index:
        raise PlatformError(
            f"no CUDA device {index} (found {count}): the GPU backends need an NVIDIA GPU "
            "and its driver; use the onnxruntime backend on this host"
        )
    set_device(index)
