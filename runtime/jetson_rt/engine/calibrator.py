"""Implicit INT8 entropy calibration (``IInt8EntropyCalibrator2``) from ``.npy`` samples.

Import this module only after :func:`jetson_rt.engine.trt_build.require_tensorrt`:
its class derives from a TensorRT class. Implicit calibration is deprecated
from TensorRT 10.1 on (explicit Q/DQ quantization, ``jetson-rt quantize``,
supersedes it); the builder uses it only for models without Q/DQ layers.

Each ``.npy`` file holds one preprocessed input, shaped as the model's input
without the batch axis or with a batch of 1. A calibration batch has the shape
TensorRT calibrates at (the calibration profile's OPT shape, else the declared
shape; see :func:`jetson_rt.engine.trt_build._calibration_inputs`): its first
axis is the number of consecutive files (sorted by name) in it, and a trailing
partial batch is dropped. An existing cache file is handed to TensorRT first,
which then skips calibration: rebuilding with other flags reuses the scales.

TensorRT's Python wrapper catches every exception a callback raises and only
prints it (python/src/infer/pyInt8.cpp: ``catch (std::exception const& e)``
then ``std::cerr``), so each callback here keeps the first error in
:attr:`NpyEntropyCalibrator.error`, tells TensorRT to stop, and the builder
re-raises it after ``build_serialized_network`` returns.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import tensorrt as trt

from jetson_rt.atomic import atomic_write_bytes
from jetson_rt.cuda import DeviceBuffer, PinnedBuffer, Stream, copy_host_to_device_async
from jetson_rt.errors import ConfigError, EngineError, JetsonRtError
from jetson_rt.log import logger

if TYPE_CHECKING:
    from typing_extensions import Buffer

_R = TypeVar("_R")


def _kept(stop: Any) -> Callable[[Callable[..., _R]], Callable[..., _R]]:
    """Run a callback; on an exception keep it, return ``stop`` to TensorRT."""

    def decorate(method: Callable[..., _R]) -> Callable[..., _R]:
        @functools.wraps(method)
        def wrapper(self: NpyEntropyCalibrator, *args: Any) -> _R:
            if self.error is not None:
                return stop  # type: ignore[no-any-return]
            try:
                return method(self, *args)
            except JetsonRtError as exc:
                self.error = exc
            except Exception as exc:  # anything else TensorRT would print and drop
                self.error = EngineError(
                    f"INT8 calibration failed in {method.__name__}: {type(exc).__name__}: {exc}"
                )
                self.error.__cause__ = exc
            return stop  # type: ignore[no-any-return]

        return wrapper

    return decorate


class NpyEntropyCalibrator(trt.IInt8EntropyCalibrator2):
    """Feeds batches of ``.npy`` samples to TensorRT through one device buffer."""

    def __init__(
        self,
        *,
        samples: list[Path],
        cache: Path | None,
        inputs: dict[str, tuple[tuple[int, ...], Any]],
    ) -> None:
        trt.IInt8EntropyCalibrator2.__init__(self)
        if len(inputs) != 1:
            raise ConfigError(
                f"INT8 calibration from .npy files supports models with one input; this one "
                f"has {len(inputs)} ({', '.join(inputs)}): calibrate once with a single-input "
                "export and reuse the cache with --calib-cache"
            )
        ((self.input_name, (shape, dtype)),) = inputs.items()
        self.batch_shape = tuple(shape)
        self.batch_size = int(shape[0])
        self.sample_shape = tuple(shape[1:])
        self.dtype = np.dtype(dtype)
        self.samples = samples
        self.cache = cache
        self._next = 0
        self.batches = 0
        self.error: JetsonRtError | None = None
        self._stream: Stream | None = None
        self._host: PinnedBuffer | None = None
        self._device: DeviceBuffer | None = None
        if samples and len(samples) < self.batch_size:
            raise ConfigError(
                f"{len(samples)} calibration samples do not fill one batch of "
                f"{self.batch_size} (TensorRT calibrates {self.input_name!r} at "
                f"{list(self.batch_shape)}): add samples or lower the batch axis of the shapes"
            )

    def _buffers(self) -> tuple[Stream, PinnedBuffer, DeviceBuffer]:
        if self._stream is None or self._host is None or self._device is None:
            self._stream = Stream()
            self._host = PinnedBuffer(self.batch_shape, self.dtype)
            self._device = DeviceBuffer(self._host.nbytes)
        return self._stream, self._host, self._device

    # Deprecated with implicit batch (NvInfer.h: "Implicit batch support is
    # removed in TensorRT 10.0"); explicit-batch networks take the batch from
    # the input shape, and TensorRT still calls it: 1 is what Polygraphy's
    # calibrator returns for explicit batch.
    @_kept(stop=1)
    def get_batch_size(self) -> int:
        return 1

    # TensorRT ends calibration when get_batch returns None.
    @_kept(stop=None)
    def get_batch(self, names: list[str]) -> list[int] | None:
        if self._next + self.batch_size > len(self.samples):
            return None
        if names and self.input_name not in names:
            raise EngineError(
                f"TensorRT asks calibration data for {names}, not for {self.input_name!r}"
            )
        stream, host, device = self._buffers()
        for slot in range(self.batch_size):
            host.array[slot] = self._load(self.samples[self._next + slot])
        self._next += self.batch_size
        copy_host_to_device_async(device, host, stream)
        stream.synchronize()
        self.batches += 1
        logger.debug("calibration batch %d", self.batches)
        return [device.ptr]

    def _load(self, path: Path) -> Any:
        try:
            sample = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"calibration sample {path} is not a readable .npy: {exc}") from exc
        if sample.shape == (1, *self.sample_shape):
            sample = sample[0]
        if sample.shape != self.sample_shape:
            raise ConfigError(
                f"calibration sample {path.name} has shape {list(sample.shape)}; input "
                f"{self.input_name!r} takes {list(self.sample_shape)} per sample"
            )
        return sample.astype(self.dtype, copy=False)

    @_kept(stop=None)
    def read_calibration_cache(self) -> bytes | None:
        if self.cache is not None and self.cache.is_file() and self.cache.stat().st_size:
            logger.info("reusing calibration cache %s", self.cache)
            return self.cache.read_bytes()
        if not self.samples:
            raise EngineError(
                f"calibration cache {self.cache} is missing or empty and there are no "
                "samples: give --calib-dir"
            )
        return None

    @_kept(stop=None)
    def write_calibration_cache(self, cache: Buffer) -> None:
        if self.cache is not None:
            atomic_write_bytes(self.cache, memoryview(cache))
            logger.info("wrote calibration cache %s", self.cache)

    def close(self) -> None:
        for item in (self._device, self._host, self._stream):
            if item is not None:
                item.close()
        self._stream = self._host = self._device = None


def make_calibrator(
    *,
    samples: list[Path],
    cache: Path | None,
    inputs: dict[str, tuple[tuple[int, ...], Any]],
) -> NpyEntropyCalibrator:
    return NpyEntropyCalibrator(samples=samples, cache=cache, inputs=inputs)
