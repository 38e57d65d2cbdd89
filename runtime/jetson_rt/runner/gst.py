"""Video input through GStreamer (PyGObject and ``appsink``), fed by a pipeline string.

The configured pipeline produces the video (``videotestsrc``, ``v4l2src``,
``nvarguscamerasrc``, an RTSP or file decoder); unless it ends in its own
``appsink``, the runner appends ``videoconvert ! videoscale`` and caps that give
the model's input size in RGB (GRAY8 for one channel), then an ``appsink`` that
keeps one buffer and drops older ones. A capture thread pulls samples and writes
each frame straight into a hand-off slot (:mod:`jetson_rt.runner.handoff`),
converted to the model's layout (NCHW or NHWC) and dtype (floats scaled to
[0, 1]); the loop never waits on it.

Capture time: a buffer's PTS is mapped to CLOCK_MONOTONIC through the pipeline
clock (GStreamer's system clock is CLOCK_MONOTONIC): ``base_time +
running_time(PTS)``. That is the time the source stamped the frame (the sensor
timestamp on a live camera), the same clock as ``time.perf_counter_ns`` on Linux.
A buffer without a usable PTS gets its arrival time (``pts_fallbacks``).

Per frame, the capture thread calls GStreamer's C API through ctypes
(:class:`FrameCalls`): pull the sample (the GIL released while it waits), read
the buffer's PTS and offset from its struct, map it and copy its bytes into a
preallocated staging array, unref the sample. Through PyGObject the same calls
left Python memory behind that grew with the frames (tracemalloc: a few dozen
58-byte blocks per 10^4 frames at ``try_pull_sample`` and at ``Buffer.map``'s
``Gst.MapFlags(0)``, in every window); the ctypes path leaves none. PyGObject
still builds the pipeline, reads the bus and parses new caps.

Counted: frames, frame-number gaps (buffer offsets that skip, e.g. frames a V4L2
driver or the appsink dropped), ends of stream, pipeline errors, stalls (no
frame for ``stall_ms``) and restarts. After an error or a stall the pipeline is
torn down and rebuilt with exponential backoff; at end of stream it is restarted
(a file plays again) unless ``on_eos: stop``. The task fed by it just has no
input meanwhile; the runner's other tasks keep running.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.util
import sys
import threading
import time
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

from jetson_rt.backends.base import TensorSpec
from jetson_rt.errors import ConfigError, PlatformError
from jetson_rt.log import logger
from jetson_rt.runner.config import InputConfig
from jetson_rt.runner.handoff import FrameSlots
from jetson_rt.runner.sources import FrameSource

SINK_NAME = "jetson_rt_sink"
# GST_BUFFER_OFFSET_NONE and GST_CLOCK_TIME_NONE
_NONE = 2**64 - 1
# Pull timeout: how often the capture thread looks at the bus and its stop flag.
_PULL_NS = 50_000_000
# GST_MAP_READ, GST_FORMAT_TIME
_MAP_READ = 1
_FORMAT_TIME = 3
_P = ctypes.c_void_p
_U64 = ctypes.c_uint64


class _MiniObject(ctypes.Structure):
    """``GstMiniObject`` (gst/gstminiobject.h, stable ABI since 1.0)."""

    _fields_ = (
        ("type", ctypes.c_size_t),
        ("refcount", ctypes.c_int),
        ("lockstate", ctypes.c_int),
        ("flags", ctypes.c_uint),
        ("copy", _P),
        ("dispose", _P),
        ("free", _P),
        ("priv_uint", ctypes.c_uint),
        ("priv_pointer", _P),
    )


class _Buffer(ctypes.Structure):
    """The public head of ``GstBuffer`` (gst/gstbuffer.h)."""

    _fields_ = (
        ("mini_object", _MiniObject),
        ("pool", _P),
        ("pts", _U64),
        ("dts", _U64),
        ("duration", _U64),
        ("offset", _U64),
        ("offset_end", _U64),
    )


class _MapInfo(ctypes.Structure):
    """``GstMapInfo`` (gst/gstmemory.h)."""

    _fields_ = (
        ("memory", _P),
        ("flags", ctypes.c_int),
        ("data", _P),
        ("size", ctypes.c_size_t),
        ("maxsize", ctypes.c_size_t),
        ("user_data", _P * 4),
        ("_gst_reserved", _P * 4),
    )


def gpointer(obj: Any) -> int:
    """The C pointer of a PyGObject GObject wrapper (its ``__gpointer__`` capsule)."""
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype = _P
    get.argtypes = (ctypes.py_object, ctypes.c_char_p)
    return int(get(obj.__gpointer__, None))


class FrameCalls:
    """The capture thread's per-frame GStreamer calls, through ctypes.

    The pull goes through ``CDLL`` (the GIL is released while it waits); the short
    calls through ``PyDLL`` (the GIL is kept: no hand-off per call). A frame's bytes
    are copied into a caller's array while the buffer is mapped; nothing that
    outlives the frame is created.
    """

    def __init__(self) -> None:
        try:
            core = ctypes.PyDLL("libgstreamer-1.0.so.0")
            app = ctypes.CDLL("libgstapp-1.0.so.0")
            glib = ctypes.PyDLL("libglib-2.0.so.0")
        except OSError as exc:
            raise PlatformError(f"GStreamer's C libraries are not loadable: {exc}") from exc
        self.pull = _fn(app.gst_app_sink_try_pull_sample, _P, _P, _U64)
        self.sample_buffer = _fn(core.gst_sample_get_buffer, _P, _P)
        self.sample_caps = _fn(core.gst_sample_get_caps, _P, _P)
        self.sample_segment = _fn(core.gst_sample_get_segment, _P, _P)
        self.running_time = _fn(core.gst_segment_to_running_time, _U64, _P, ctypes.c_int, _U64)
        self.base_time = _fn(core.gst_element_get_base_time, _U64, _P)
        self.ref = _fn(core.gst_mini_object_ref, _P, _P)
        self.unref = _fn(core.gst_mini_object_unref, None, _P)
        self.caps_to_string = _fn(core.gst_caps_to_string, _P, _P)
        self.free = _fn(glib.g_free, None, _P)
        self._map = _fn(
            core.gst_buffer_map, ctypes.c_int, _P, ctypes.POINTER(_MapInfo), ctypes.c_int
        )
        self._unmap = _fn(core.gst_buffer_unmap, None, _P, ctypes.POINTER(_MapInfo))
        self._info = _MapInfo()
        self._info_ref = ctypes.byref(self._info)

    def caps_text(self, caps: int) -> str:
        raw = self.caps_to_string(caps)
        try:
            return ctypes.string_at(raw).decode()
        finally:
            self.free(raw)

    def copy_out(self, buffer: int, into: int, size: int) -> bool:
        """Copy the first ``size`` bytes of ``buffer`` to address ``into``; False if short."""
        info = self._info
        if not self._map(buffer, self._info_ref, _MAP_READ):
            return False
        try:
            if info.size < size:
                return False
            ctypes.memmove(into, info.data, size)
        finally:
            self._unmap(buffer, self._info_ref)
        return True


def _fn(func: Any, restype: Any, *argtypes: Any) -> Any:
    func.restype = restype
    func.argtypes = argtypes
    return func


def _load_cxx_backends_first() -> None:
    """Load the C++ inference libraries before GStreamer.

    Debian's libgstreamer links libunwind, whose ``_Unwind_*`` symbols then win over
    libgcc's for every library loaded later: ONNX Runtime loaded after GStreamer
    aborts on its first (normally caught) C++ exception. Loaded first, it binds to
    libgcc's and works.
    """
    for name in ("onnxruntime", "tensorrt"):
        if name not in sys.modules and importlib.util.find_spec(name) is not None:
            with contextlib.suppress(Exception):
                importlib.import_module(name)


def import_gst() -> tuple[Any, Any, Any]:
    """``(Gst, GstApp, GstVideo)``, initialised; a PlatformError if PyGObject is missing."""
    if "gi.repository.Gst" not in sys.modules:
        _load_cxx_backends_first()
    try:
        with warnings.catch_warnings():
            # PyGObject before 3.44 loads gi.repository modules the pre-3.4 way.
            warnings.simplefilter("ignore", ImportWarning)
            import gi  # type: ignore[import-not-found,import-untyped,unused-ignore]

            gi.require_version("Gst", "1.0")
            gi.require_version("GstApp", "1.0")
            gi.require_version("GstVideo", "1.0")
            from gi.repository import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
                Gst,
                GstApp,
                GstVideo,
            )
    except (ImportError, ValueError) as exc:
        raise PlatformError(
            "input source gstreamer is unavailable: GStreamer's Python bindings are not "
            f"importable ({exc}). Install python3-gi, python3-gst-1.0, gir1.2-gstreamer-1.0 "
            "and gir1.2-gst-plugins-base-1.0 (JetPack ships them) and run the runner from a "
            "venv with system site packages"
        ) from exc
    Gst.init(None)
    return Gst, GstApp, GstVideo


def gstreamer_available() -> tuple[bool, str]:
    """Whether the gstreamer source can work here, and why not."""
    try:
        import_gst()
    except PlatformError as exc:
        return False, str(exc)
    return True, ""


def layout(spec: TensorSpec) -> tuple[int, int, int, bool]:
    """``(height, width, channels, channels_first)`` of an image input, or a ConfigError."""
    shape = spec.shape
    dims = shape[1:] if len(shape) == 4 and shape[0] == 1 else shape
    if len(dims) == 3:
        if dims[0] in (1, 3) and dims[2] not in (1, 3):
            return dims[1], dims[2], dims[0], True
        if dims[2] in (1, 3):
            return dims[0], dims[1], dims[2], False
        if dims[0] in (1, 3):
            return dims[1], dims[2], dims[0], True
    raise ConfigError(
        f"input {spec.name!r} has shape {shape}: a video source feeds an image input "
        "[1, C, H, W] or [1, H, W, C] with C = 1 or 3"
    )


def full_pipeline(pipeline: str, spec: TensorSpec) -> str:
    """The configured pipeline with the conversion and the appsink appended if it has none."""
    text = pipeline.strip().rstrip("!").strip()
    last = text.rsplit("!", 1)[-1].split()
    if last and last[0] == "appsink":
        return text
    height, width, channels, _ = layout(spec)
    fmt = "RGB" if channels == 3 else "GRAY8"
    return (
        f"{text} ! videoconvert ! videoscale ! "
        f"video/x-raw,format={fmt},width={width},height={height} ! "
        f"appsink name={SINK_NAME} max-buffers=1 drop=true sync=false"
    )


def check_pipeline(pipeline: str) -> str | None:
    """Why GStreamer cannot build ``pipeline`` here (syntax, unknown element), or None."""
    gst, _, _ = import_gst()
    text = pipeline.strip().rstrip("!").strip()
    last = text.rsplit("!", 1)[-1].split()
    if not last or last[0] != "appsink":
        text += " ! fakesink"  # where the runner appends its conversion and appsink
    try:
        built = gst.parse_launch(text)
    except Exception as exc:  # GLib.Error: syntax error or no such element
        return str(getattr(exc, "message", exc))
    built.set_state(gst.State.NULL)
    return None


class GstSource(FrameSource):
    """Frames from a GStreamer pipeline, pulled from its appsink on a capture thread."""

    kind = "gstreamer"

    def __init__(self, config: InputConfig) -> None:
        super().__init__(config)
        self._gst, self._gst_app, self._gst_video = import_gst()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pipeline: Any = None
        self.state = "created"
        self.frames = 0
        self.gaps = 0
        self.eos = 0
        self.errors = 0
        self.stalls = 0
        self.restarts = 0
        self.pts_fallbacks = 0
        self.last_error = ""
        self._last_offset = -1
        self._format_logged = False
        self._launch = ""
        self._calls = FrameCalls()
        # The caps of the frames last checked (a reference held, so that the pointer
        # cannot be reused) and what they give: the staging array one frame's bytes are
        # copied into, the bytes to copy, and the pixels as the model's layout sees them.
        self._caps = 0
        self._staging: npt.NDArray[np.uint8] | None = None
        self._frame_bytes = 0
        self._staging_at = 0
        self._source: npt.NDArray[np.uint8] | None = None
        self._view_shape: tuple[int, ...] = ()
        self._scale: np.generic | None = None  # 1/255 in the input's float type

    @property
    def healthy(self) -> bool:
        return self.state == "running"

    def start(self) -> None:
        problem = check_pipeline(self.config.pipeline)
        if problem is not None:
            raise ConfigError(f"input pipeline {self.config.pipeline!r}: {problem}")
        self._thread = threading.Thread(target=self._run, name="jetson-rt-capture", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5.0)
            self._thread = None
        self._close()
        if self._caps and (thread is None or not thread.is_alive()):
            self._calls.unref(self._caps)
            self._caps = 0

    # --- the capture thread ------------------------------------------------------------

    def _run(self) -> None:
        slots = self.wait_ready(timeout=None)
        settings = self.config
        self._launch = full_pipeline(settings.pipeline, slots.spec)
        first = settings.video.restart_backoff_ms / 1e3
        backoff = first
        while not self._stop.is_set():
            frames_before = self.frames
            outcome = self._play(slots)
            self._close()
            if outcome == "stop":
                break
            if self.frames > frames_before:
                backoff = first  # it worked for a while: start over from the short wait
            if outcome == "eos":
                self.eos += 1
                if settings.video.on_eos == "stop":
                    self.state = "eos"
                    logger.warning("input pipeline reached end of stream; not restarted")
                    return
                self.state = "restarting"
            else:
                self.state = "restarting"
                logger.error(
                    "input pipeline failed (%s); restarting in %.2f s", self.last_error, backoff
                )
            if self._stop.wait(backoff):
                break
            self.restarts += 1
            if outcome != "eos":
                backoff = min(backoff * 2, settings.video.restart_backoff_max_ms / 1e3)
        self.state = "stopped"

    def _fail(self, message: str) -> str:
        self.errors += 1
        self.last_error = message
        return "error"

    def _play(self, slots: FrameSlots) -> str:  # noqa: PLR0911 - one return per outcome
        """Run the pipeline once: ``stop``, ``eos`` or ``error`` (or a stall)."""
        gst = self._gst
        try:
            pipeline = gst.parse_launch(self._launch)
        except Exception as exc:
            return self._fail(str(getattr(exc, "message", exc)))
        self._pipeline = pipeline
        sink = self._find_sink(pipeline)
        if sink is None:
            return self._fail("the pipeline has no appsink")
        pipeline.use_clock(gst.SystemClock.obtain())
        sink_ptr = gpointer(sink)
        pipeline_ptr = gpointer(pipeline)
        calls = self._calls
        bus = pipeline.get_bus()
        self._last_offset = -1
        if pipeline.set_state(gst.State.PLAYING) == gst.StateChangeReturn.FAILURE:
            return self._fail(self._bus_error(bus) or "the pipeline refused to start")
        self.state = "running"
        stall_ns = int(self.config.video.stall_ms * 1e6)
        last_frame = time.monotonic_ns()
        kinds = gst.MessageType.ERROR | gst.MessageType.EOS
        while not self._stop.is_set():
            sample = calls.pull(sink_ptr, _PULL_NS)
            now = time.monotonic_ns()
            if sample:
                last_frame = now
                try:
                    self._frame(sample, slots, pipeline_ptr, now)
                finally:
                    calls.unref(sample)
                continue
            message = bus.pop_filtered(kinds)
            if message is not None and message.type == gst.MessageType.ERROR:
                error, _debug = message.parse_error()
                return self._fail(str(error.message))
            if sink.is_eos() or (message is not None and message.type == gst.MessageType.EOS):
                return "eos"
            if now - last_frame > stall_ns:
                self.stalls += 1
                return self._fail(f"no frame for {self.config.video.stall_ms:g} ms")
        return "stop"

    def _find_sink(self, pipeline: Any) -> Any:
        sink = pipeline.get_by_name(SINK_NAME)
        if sink is not None:
            return sink
        appsink = self._gst_app.AppSink
        iterator = pipeline.iterate_sinks()
        while True:
            result, element = iterator.next()
            if result != self._gst.IteratorResult.OK:
                return None
            if isinstance(element, appsink):
                return element

    def _bus_error(self, bus: Any) -> str:
        message = bus.timed_pop_filtered(0, self._gst.MessageType.ERROR)
        if message is None:
            return ""
        error, _debug = message.parse_error()
        return str(error.message)

    def _frame(self, sample: int, slots: FrameSlots, pipeline: int, now: int) -> None:
        calls = self._calls
        buffer = calls.sample_buffer(sample)
        if not buffer:
            return
        head = _Buffer.from_address(buffer)
        offset = head.offset
        if offset != _NONE:
            if self._last_offset >= 0 and offset > self._last_offset + 1:
                self.gaps += offset - self._last_offset - 1
            self._last_offset = offset
        self.frames += 1
        stamp = self._capture_time(sample, head.pts, pipeline, now)
        if not slots.offer():
            return
        caps = calls.sample_caps(sample) or 0
        if caps != self._caps:
            self._new_caps(caps, slots.spec)
        staging = self._staging
        source = self._source
        if staging is None or source is None:
            slots.rejected += 1
            return
        if not calls.copy_out(buffer, self._staging_at, self._frame_bytes):
            slots.rejected += 1
            return
        view = slots.begin().reshape(self._view_shape)
        # Cast, then scale in place: a ufunc that casts as it goes allocates buffers
        # (about 130 kB per 64x64 frame) and takes longer.
        np.copyto(view, source, casting="unsafe")
        scale = self._scale
        if scale is not None:
            np.multiply(view, scale, out=view)
        slots.commit(stamp, offset if offset != _NONE else -1)

    def _capture_time(self, sample: int, pts: int, pipeline: int, now: int) -> int:
        """PTS on CLOCK_MONOTONIC (base time + running time), else the arrival time."""
        if pts != _NONE:
            calls = self._calls
            running = calls.running_time(calls.sample_segment(sample), _FORMAT_TIME, pts)
            if running != _NONE:
                mapped = calls.base_time(pipeline) + running
                # A non-live source stamps frames ahead of the clock: keep arrival time.
                if now - 10_000_000_000 < mapped <= now:
                    return int(mapped)
        self.pts_fallbacks += 1
        return now

    def _new_caps(self, caps: int, spec: TensorSpec) -> None:
        """Frames come with new caps: check them, size the staging array (not per frame)."""
        calls = self._calls
        if self._caps:
            calls.unref(self._caps)
        self._caps = 0
        self._staging = self._source = None
        if not caps:
            return
        self._caps = int(calls.ref(caps))
        height, width, channels, channels_first = layout(spec)
        parsed = self._gst.Caps.from_string(calls.caps_text(caps))
        stride = self._check_caps(parsed, spec, height, width, channels)
        if stride == 0:
            return
        staging = np.zeros((height, stride), dtype=np.uint8)
        pixels: npt.NDArray[np.uint8] = np.ndarray(
            (height, width, channels),
            dtype=np.uint8,
            buffer=staging,
            strides=(stride, channels, 1),
        )
        self._staging = staging
        # Its address once: ``ndarray.ctypes`` builds objects on every access.
        self._staging_at = int(staging.ctypes.data)
        self._frame_bytes = (height - 1) * stride + width * channels
        self._source = pixels.transpose(2, 0, 1) if channels_first else pixels
        self._view_shape = (channels, height, width) if channels_first else spec.shape[-3:]
        floating = np.issubdtype(spec.dtype, np.floating)
        self._scale = spec.dtype.type(1.0 / 255.0) if floating else None

    def _check_caps(
        self, caps: Any, spec: TensorSpec, height: int, width: int, channels: int
    ) -> int:
        """The row stride of frames with these caps, or 0 if they do not fit the input."""
        info = self._gst_video.VideoInfo.new_from_caps(caps)
        fmt = "RGB" if channels == 3 else "GRAY8"
        if info is not None and (info.width, info.height, info.finfo.name) == (width, height, fmt):
            return int(info.stride[0])
        if not self._format_logged:
            self._format_logged = True
            got = f"{info.finfo.name} {info.width}x{info.height}" if info else caps.to_string()
            logger.error(
                "input pipeline delivers %s but input %r needs %s %dx%d; end the "
                "pipeline without an appsink to let the runner convert",
                got,
                spec.name,
                fmt,
                width,
                height,
            )
        return 0

    def _close(self) -> None:
        pipeline = self._pipeline
        if pipeline is not None:
            self._pipeline = None
            pipeline.set_state(self._gst.State.NULL)

    def describe(self) -> dict[str, object]:
        info = super().describe()
        info.update(
            kind=self.kind,
            pipeline=self.config.pipeline,
            state=self.state,
            frames=self.frames,
            frame_gaps=self.gaps,
            eos=self.eos,
            errors=self.errors,
            stalls=self.stalls,
            restarts=self.restarts,
            pts_fallbacks=self.pts_fallbacks,
            last_error=self.last_error or None,
        )
        return info
