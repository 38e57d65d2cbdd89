"""Device buffers and pinned host buffers, freed when closed.

A :class:`PinnedBuffer` is page-locked host memory from ``cudaMallocHost``
seen as a numpy array: the runner fills it in place, and asynchronous copies
from it neither stage through a bounce buffer nor block. The array is a view
of memory this object owns; it must not be used after :meth:`PinnedBuffer.close`.
"""

from __future__ import annotations

import ctypes
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from jetson_rt.cuda.api import check, runtime
from jetson_rt.cuda.stream import Stream

if TYPE_CHECKING:
    import numpy.typing as npt
    from numpy.typing import DTypeLike


class _Allocation:
    """A CUDA allocation with an idempotent ``close`` and a leak warning."""

    _free_call = ""

    def __init__(self, nbytes: int) -> None:
        if nbytes < 0:
            raise ValueError(f"cannot allocate {nbytes} bytes")
        self.nbytes = nbytes
        self._ptr = 0

    @property
    def ptr(self) -> int:
        """The address, as an int (what TensorRT and cuda-python take)."""
        if not self._ptr and self.nbytes:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._ptr

    @property
    def closed(self) -> bool:
        return not self._ptr

    def _free(self, ptr: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        ptr, self._ptr = self._ptr, 0
        if ptr:
            self._free(ptr)

    def __enter__(self) -> _Allocation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_ptr", 0):
            warnings.warn(
                f"{type(self).__name__} of {self.nbytes} bytes was not closed",
                ResourceWarning,
                stacklevel=2,
            )
            self.close()


class DeviceBuffer(_Allocation):
    """``nbytes`` of device memory from ``cudaMalloc`` (a 0-byte buffer holds no memory)."""

    def __init__(self, nbytes: int) -> None:
        super().__init__(nbytes)
        if nbytes:
            self._ptr = int(check("cudaMalloc", runtime().cudaMalloc(nbytes)))

    def _free(self, ptr: int) -> None:
        check("cudaFree", runtime().cudaFree(ptr))

    def memset_async(self, value: int, stream: Stream | Any) -> None:
        if self.nbytes:
            rt = runtime()
            handle = _stream_handle(stream)
            check("cudaMemsetAsync", rt.cudaMemsetAsync(self.ptr, value, self.nbytes, handle))


class PinnedBuffer(_Allocation):
    """A page-locked host array of ``shape`` and ``dtype``, zero-filled."""

    def __init__(self, shape: tuple[int, ...], dtype: DTypeLike) -> None:
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(dim) for dim in shape)
        count = 1
        for dim in self.shape:
            count *= dim
        super().__init__(count * self.dtype.itemsize)
        self._array: npt.NDArray[Any]
        if self.nbytes:
            self._ptr = int(check("cudaMallocHost", runtime().cudaMallocHost(self.nbytes)))
            raw = (ctypes.c_uint8 * self.nbytes).from_address(self._ptr)
            self._array = np.ctypeslib.as_array(raw).view(self.dtype).reshape(self.shape)
            self._array.fill(0)
        else:
            self._array = np.zeros(self.shape, dtype=self.dtype)

    @property
    def array(self) -> npt.NDArray[Any]:
        """The numpy view of the pinned memory (valid until :meth:`close`)."""
        if self.closed and self.nbytes:
            raise ValueError("PinnedBuffer is closed")
        return self._array

    def _free(self, ptr: int) -> None:
        # Drop the view first so no array outlives the memory through this object.
        self._array = np.zeros(self.shape, dtype=self.dtype)
        check("cudaFreeHost", runtime().cudaFreeHost(ptr))


def _stream_handle(stream: Stream | Any) -> Any:
    return stream.handle if isinstance(stream, Stream) else stream


def copy_host_to_device_async(dst: DeviceBuffer, src: PinnedBuffer, stream: Stream | Any) -> None:
    """Queue a copy of all of ``src`` to the start of ``dst`` on ``stream``.

    ``stream`` is a :class:`Stream` or a raw ``cudaStream_t``.
    """
    if src.nbytes > dst.nbytes:
        raise ValueError(f"{src.nbytes} bytes do not fit a {dst.nbytes}-byte device buffer")
    rt = runtime()
    check(
        "cudaMemcpyAsync",
        rt.cudaMemcpyAsync(
            dst.ptr,
            src.ptr,
            src.nbytes,
            rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
            _stream_handle(stream),
        ),
    )


def copy_device_to_host_async(dst: PinnedBuffer, src: DeviceBuffer, stream: Stream | Any) -> None:
    """Queue a copy of the first ``dst.nbytes`` of ``src`` into ``dst`` on ``stream``."""
    if dst.nbytes > src.nbytes:
        raise ValueError(f"a {src.nbytes}-byte device buffer cannot fill {dst.nbytes} bytes")
    rt = runtime()
    check(
        "cudaMemcpyAsync",
        rt.cudaMemcpyAsync(
            dst.ptr,
            src.ptr,
            dst.nbytes,
            rt.cudaMemcpyKind.cudaMemcpyDeviceToHost,
            _stream_handle(stream),
        ),
    )
