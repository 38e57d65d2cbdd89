"""The CUDA layer the GPU backends share, over cuda-python's runtime bindings.

Device and pinned host buffers, highest-priority non-blocking streams, events
and per-stage timing, and CUDA graph capture with a fallback to plain
enqueueing. Every object is freed by ``close()`` (or ``with``), never left to
the garbage collector, and warns if it is. cuda-python is imported on first
use: importing this package needs neither it nor a GPU.
"""

from __future__ import annotations

from jetson_rt.cuda.api import (
    CudaError,
    DeviceInfo,
    check,
    device_count,
    device_info,
    require_device,
    runtime,
)
from jetson_rt.cuda.graph import GraphLaunch
from jetson_rt.cuda.memory import (
    DeviceBuffer,
    PinnedBuffer,
    copy_device_to_host_async,
    copy_host_to_device_async,
)
from jetson_rt.cuda.stream import Event, StageTimer, Stream

__all__ = [
    "CudaError",
    "DeviceBuffer",
    "DeviceInfo",
    "Event",
    "GraphLaunch",
    "PinnedBuffer",
    "StageTimer",
    "Stream",
    "check",
    "copy_device_to_host_async",
    "copy_host_to_device_async",
    "device_count",
    "device_info",
    "require_device",
    "runtime",
]
