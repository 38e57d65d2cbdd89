"""INT8 entropy calibration (``IInt8EntropyCalibrator2``) from a folder of ``.npy`` samples.

Import this module only after :func:`jetson_rt.engine.trt_build.require_tensorrt`:
its class derives from a TensorRT class.

Each ``.npy`` file holds one preprocessed input, shaped as the model's input
without the batch axis or with a batch of 1; ``batch_size`` consecutive files
(sorted by name) make one calibration batch, and a trailing partial batch is
dropped. An existing cache file is handed to TensorRT first, which then skips
calibration: rebuilding with other flags reuses the scales.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorrt as trt

from jetson_rt.atomic import atomic_write_bytes
from jetson_rt.cuda import DeviceBuffer, PinnedBuffer, Stream, copy_host_to_device_async
from jetson_rt.errors import ConfigError, EngineError
from jetson_rt.log import logger

if TYPE_CHECKING:
    from typing_extensions import Buffer


class NpyEntropyCalibrator(trt.IInt8EntropyCalibrator2):
    """Feeds batches of ``.npy`` samples to TensorRT through one device buffer."""

    def __init__(
        self,
        *,
        samples: list[Path],
        cache: Path | None,
        inputs: dict[str, tuple[tuple[int, ...], Any]],
        batch_size: int,
    ) -> None:
        trt.IInt8EntropyCalibrator2.__init__(self)
        if len(inputs) != 1:
            raise ConfigError(
                f"INT8 calibration from .npy files supports models with one input; this one "
                f"has {len(inputs)} ({', '.join(inputs)}): calibrate once with a single-input "
                "export and reuse the cache with --calib-cache"
            )
        ((self.input_name, (shape, dtype)),) = inputs.items()
        self.batch_shape = (batch_size, *shape[1:])
        self.sample_shape = tuple(shape[1:])
        self.dtype = np.dtype(dtype)
        self.samples = samples
        self.cache = cache
        self.batch_size = batch_size
        self._next = 0
        self.error: ConfigError | None = None
        self._stream: Stream | None = None
        self._host: PinnedBuffer | None = None
        self._device: DeviceBuffer | None = None
        if samples and len(samples) < batch_size:
            raise ConfigError(
                f"{len(samples)} calibration samples do not fill one batch of {batch_size}: "
                "add samples or lower --calib-batch-size"
            )

    def _buffers(self) -> tuple[Stream, PinnedBuffer, DeviceBuffer]:
        if self._stream is None or self._host is None or self._device is None:
            self._stream = Stream()
            self._host = PinnedBuffer(self.batch_shape, self.dtype)
            self._device = DeviceBuffer(self._host.nbytes)
        return self._stream, self._host, self._device

    def get_batch_size(self) -> int:
        return self.batch_size

    # TensorRT ends calibration when get_batch returns None.
    def get_batch(self, names: list[str]) -> list[int] | None:
        if self.error is not None or self._next + self.batch_size > len(self.samples):
            return None
        stream, host, device = self._buffers()
        try:
            for slot in range(self.batch_size):
                path = self.samples[self._next + slot]
                host.array[slot] = self._load(path)
        except ConfigError as exc:
            # An exception raised into TensorRT becomes a generic build failure;
            # keep ours and end calibration, the builder re-raises it.
            self.error = exc
            return None
        self._next += self.batch_size
        copy_host_to_device_async(device, host, stream)
        stream.synchronize()
        logger.debug("calibration batch %d", self._next // self.batch_size)
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

    def read_calibration_cache(self) -> bytes | None:
        if self.cache is not None and self.cache.is_file() and self.cache.stat().st_size:
            logger.info("reusing calibration cache %s", self.cache)
            return self.cache.read_bytes()
        if not self.samples:
            raise EngineError("no calibration cache and no samples: give --calib-dir")
        return None

    def write_calibration_cache(self, cache: Buffer) -> None:
        if self.cache is not None and self.error is None:
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
    batch_size: int,
) -> NpyEntropyCalibrator:
    return NpyEntropyCalibrator(samples=samples, cache=cache, inputs=inputs, batch_size=batch_size)
