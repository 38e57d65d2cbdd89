"""Input sources: synthetic data, a folder of ``.npy`` files, and live frames.

A source writes the next input into the active tier's preallocated host arrays
(:meth:`InputSource.fill`); nothing is allocated per inference. Live frames
(camera, or frames an embedding program pushes) arrive on a producer thread
into the lock-free :class:`~jetson_rt.runner.handoff.FrameSlots` hand-off, and
the loop takes one per iteration, without ever waiting for the producer, under
the guide's buffering policies (section 15.3):

- ``latest``: drop everything but the newest frame;
- ``skip_n``: keep every N-th frame (camera fps / inference fps), oldest first;
- ``deadline``: drop frames older than ``max_age_ms``, take the oldest fresh one.

A frame of the wrong shape or dtype is refused, counted in the stats, and the
loop goes on with the next one. Video comes through GStreamer
(:mod:`jetson_rt.runner.gst`, PyGObject); the ``v4l2`` source reads a camera
through OpenCV, which is optional. Without their libraries both fail at startup
with a :class:`~jetson_rt.errors.PlatformError` that says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from jetson_rt.backends.base import TensorSpec
from jetson_rt.errors import ConfigError, PlatformError
from jetson_rt.log import logger
from jetson_rt.runner.config import InputConfig
from jetson_rt.runner.handoff import FrameSlots, matches

Array = npt.NDArray[np.generic]

# fill() results
FILLED = 0
NO_INPUT = 1


class InputSource(Protocol):
    """What the loop asks of an input: fill the host arrays, count what was refused."""

    kind: str
    # Capture time (CLOCK_MONOTONIC, the perf_counter_ns clock) of the frame last filled;
    # 0 if not a live source.
    frame_time_ns: int
    # The source's number of the frame last filled (a camera's sequence number).
    frame_id: int

    @property
    def rejected(self) -> int:
        """Inputs refused for their shape, dtype or format."""

    @property
    def dropped(self) -> int:
        """Frames dropped by the buffering policy."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def prime(self, specs: Sequence[TensorSpec], arrays: Sequence[Array]) -> None:
        """Called once per tier before the loop with that tier's host input arrays."""

    def fill(self, arrays: Sequence[Array], now_ns: int) -> int:
        """Write the next input into ``arrays``; FILLED, or NO_INPUT if none is ready."""

    def describe(self) -> dict[str, object]: ...


def synthetic_array(spec: TensorSpec, rng: np.random.Generator) -> Array:
    """Random data of the spec's dtype: N(0, 1) for floats, the full range for integers."""
    if np.issubdtype(spec.dtype, np.floating):
        return rng.standard_normal(spec.shape).astype(spec.dtype)
    if spec.dtype == np.bool_:
        return rng.integers(0, 2, spec.shape).astype(np.bool_)
    info = np.iinfo(spec.dtype)  # type: ignore[type-var]
    return rng.integers(info.min, info.max, spec.shape, dtype=spec.dtype, endpoint=True)


class SyntheticSource:
    """Seeded random inputs written once per tier; ``fill`` has nothing left to do."""

    kind = "synthetic"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.rejected = 0
        self.dropped = 0
        self.frame_time_ns = 0
        self.frame_id = -1

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def prime(self, specs: Sequence[TensorSpec], arrays: Sequence[Array]) -> None:
        rng = np.random.default_rng(self.seed)
        for spec, array in zip(specs, arrays, strict=True):
            np.copyto(array, synthetic_array(spec, rng))

    def fill(self, arrays: Sequence[Array], now_ns: int) -> int:
        self.frame_id += 1
        return FILLED

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "seed": self.seed}


class NpyFolderSource:
    """Every ``.npy`` file of a folder, loaded at startup, fed in name order, round robin.

    Files are checked against the model's first input when the tiers are primed:
    a file of the wrong shape or dtype is refused (counted, logged once) and the
    rest are used. Other inputs of a multi-input model keep synthetic data.
    """

    kind = "npy"

    def __init__(self, folder: Path, seed: int = 0) -> None:
        self.folder = folder
        self.seed = seed
        self.rejected = 0
        self.dropped = 0
        self.frame_time_ns = 0
        self.frame_id = -1
        self._files: list[tuple[Path, Array]] = []
        self._frames: list[Array] = []
        self._next = 0
        self._spec: TensorSpec | None = None

    def start(self) -> None:
        if not self.folder.is_dir():
            raise ConfigError(f"input folder {self.folder} does not exist")
        paths = sorted(self.folder.glob("*.npy"))
        if not paths:
            raise ConfigError(f"input folder {self.folder} holds no .npy files")
        for path in paths:
            try:
                array = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                self.rejected += 1
                logger.error("input %s refused: not a readable .npy file (%s)", path, exc)
                continue
            self._files.append((path, np.ascontiguousarray(array)))

    def stop(self) -> None:
        pass

    def prime(self, specs: Sequence[TensorSpec], arrays: Sequence[Array]) -> None:
        SyntheticSource(self.seed).prime(specs, arrays)
        spec = specs[0]
        if self._spec is not None:
            if (spec.shape, spec.dtype) != (self._spec.shape, self._spec.dtype):
                raise ConfigError(
                    f"tiers fed from {self.folder} need the same first input; "
                    f"{spec.name} is {spec.shape} {spec.dtype}, "
                    f"not {self._spec.shape} {self._spec.dtype}"
                )
            return
        self._spec = spec
        for path, array in self._files:
            if matches(array, spec):
                self._frames.append(array)
            else:
                self.rejected += 1
                logger.error(
                    "input %s refused: shape %s dtype %s, but input %r needs shape %s dtype %s",
                    path,
                    array.shape,
                    array.dtype,
                    spec.name,
                    spec.shape,
                    spec.dtype,
                )
        if not self._frames:
            raise ConfigError(
                f"no file in {self.folder} matches input {spec.name!r} "
                f"(shape {spec.shape}, dtype {spec.dtype}); {self.rejected} refused"
            )

    def fill(self, arrays: Sequence[Array], now_ns: int) -> int:
        frames = self._frames
        np.copyto(arrays[0], frames[self._next])
        self.frame_id += 1
        self._next = (self._next + 1) % len(frames)
        return FILLED

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "folder": str(self.folder), "frames": len(self._frames)}


# The lock-free hand-off that replaced the locked ring (same policies and counters).
FrameRing = FrameSlots


class FrameSource:
    """Frames pushed by a producer (capture thread, embedding program, test) into slots."""

    kind = "frames"

    def __init__(self, config: InputConfig) -> None:
        self.config = config
        self.ring: FrameSlots | None = None
        self.frame_time_ns = 0
        self.frame_id = -1
        self._ready = threading.Event()

    @property
    def rejected(self) -> int:
        return self.ring.rejected if self.ring is not None else 0

    @property
    def dropped(self) -> int:
        return self.ring.dropped if self.ring is not None else 0

    @property
    def healthy(self) -> bool:
        return True

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def prime(self, specs: Sequence[TensorSpec], arrays: Sequence[Array]) -> None:
        SyntheticSource(self.config.seed).prime(specs, arrays)
        spec = specs[0]
        if self.ring is None:
            self.ring = FrameSlots(
                spec,
                self.config.capacity,
                self.config.policy,
                self.config.skip,
                self.config.max_age_ms,
            )
            self._ready.set()
        elif (spec.shape, spec.dtype) != (self.ring.spec.shape, self.ring.spec.dtype):
            raise ConfigError(
                f"every tier fed by a {self.kind} source needs the same first input; "
                f"{spec.name} is {spec.shape} {spec.dtype}"
            )

    def wait_ready(self, timeout: float | None = None) -> FrameSlots:
        """The slots, once the runner has primed the tiers (for producers)."""
        if not self._ready.wait(timeout) or self.ring is None:
            raise PlatformError("the frame hand-off was not set up in time")
        return self.ring

    def push(self, frame: Array, stamp_ns: int | None = None, frame_id: int = -1) -> bool:
        if self.ring is None:
            raise PlatformError("frames can be pushed only after the runner primed its tiers")
        return self.ring.push(frame, stamp_ns, frame_id)

    def fill(self, arrays: Sequence[Array], now_ns: int) -> int:
        ring = self.ring
        if ring is None:
            return NO_INPUT
        stamp = ring.take(arrays[0], now_ns)
        if stamp == 0:
            return NO_INPUT
        self.frame_time_ns = stamp
        self.frame_id = ring.frame_id
        return FILLED

    def describe(self) -> dict[str, object]:
        ring = self.ring
        info: dict[str, object] = {"kind": self.kind, "policy": self.config.policy}
        if ring is not None:
            info.update(pushed=ring.pushed, skipped=ring.skipped, taken=ring.taken)
        return info


def import_cv2() -> Any:
    """OpenCV, or a PlatformError that says the camera sources are unavailable."""
    try:
        import cv2  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise PlatformError(
            "camera input (v4l2, gstreamer) is unavailable: OpenCV is not importable. "
            "Install JetPack's python3-opencv (GStreamer-enabled) or opencv-python-headless, "
            "or use input source synthetic or npy"
        ) from exc
    return cv2


def camera_available() -> tuple[bool, str]:
    """Whether camera sources can work here, and why not."""
    try:
        import_cv2()
    except PlatformError as exc:
        return False, str(exc)
    return True, ""


class CameraSource(FrameSource):
    """V4L2 or GStreamer capture through OpenCV on a producer thread.

    Each BGR frame is resized to the model's input, converted to RGB, scaled to
    [0, 1] for float inputs and laid out NCHW or NHWC to match the input shape,
    then pushed into the ring. That work happens on the capture thread, not in
    the loop; it allocates, which is why it is not on the real-time thread.
    """

    def __init__(self, config: InputConfig) -> None:
        super().__init__(config)
        self.kind = config.source
        self._cv2 = import_cv2()
        self._capture: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.read_failures = 0

    def start(self) -> None:
        cv2 = self._cv2
        if self.config.source == "gstreamer":
            capture = cv2.VideoCapture(self.config.pipeline, cv2.CAP_GSTREAMER)
            what = f"GStreamer pipeline {self.config.pipeline!r}"
        else:
            capture = cv2.VideoCapture(self.config.device, cv2.CAP_V4L2)
            what = f"V4L2 device {self.config.device}"
        if not capture.isOpened():
            raise PlatformError(
                f"cannot open {what} with OpenCV {cv2.__version__}; check the device and "
                "that this OpenCV build has the backend (cv2.getBuildInformation())"
            )
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._capture = capture
        self._thread = threading.Thread(target=self._run, name="jetson-rt-camera", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._capture is not None:
            self._capture.release()

    def _convert(self, frame: Array, spec: TensorSpec) -> Array:
        cv2 = self._cv2
        shape = spec.shape
        channels_first = len(shape) == 4 and shape[1] in (1, 3)
        height, width = (shape[2], shape[3]) if channels_first else (shape[-3], shape[-2])
        resized = cv2.cvtColor(cv2.resize(frame, (width, height)), cv2.COLOR_BGR2RGB)
        data = np.asarray(resized)
        if np.issubdtype(spec.dtype, np.floating):
            data = data.astype(spec.dtype) / spec.dtype.type(255.0)
        else:
            data = data.astype(spec.dtype)
        if channels_first:
            data = data.transpose(2, 0, 1)
        return np.ascontiguousarray(data.reshape(shape))

    def _run(self) -> None:
        ring = self.wait_ready(timeout=None)
        while not self._stop.is_set():
            ok, frame = self._capture.read()
            stamp = time.perf_counter_ns()
            if not ok:
                self.read_failures += 1
                time.sleep(0.01)
                continue
            try:
                converted = self._convert(frame, ring.spec)
            except Exception:  # a frame OpenCV cannot convert: count it, keep capturing
                ring.rejected += 1
                continue
            ring.push(converted, stamp)


def source_available(kind: str) -> tuple[bool, str]:
    """Whether input source ``kind`` can work here, and why not."""
    if kind == "gstreamer":
        from jetson_rt.runner.gst import gstreamer_available

        return gstreamer_available()
    if kind == "v4l2":
        return camera_available()
    return True, ""


def create_source(config: InputConfig) -> InputSource:
    if config.source == "gstreamer":
        from jetson_rt.runner.gst import GstSource

        return GstSource(config)
    if config.source == "synthetic":
        return SyntheticSource(config.seed)
    if config.source == "npy":
        if config.path is None:
            raise ConfigError("input source npy needs input.path (a folder of .npy files)")
        return NpyFolderSource(config.path, config.seed)
    return CameraSource(config)
