"""Streams at the highest priority, events, and per-stage device timing."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

from jetson_rt.cuda.api import check, runtime


class Stream:
    """A non-blocking CUDA stream, by default at the device's highest priority.

    Non-blocking: it does not synchronise with the legacy default stream, so
    another library's work on stream 0 cannot stall the inference. Highest
    priority: the GPU's scheduler runs its blocks ahead of normal-priority
    streams' pending blocks (a lower number is a higher priority).
    """

    def __init__(self, *, highest_priority: bool = True, non_blocking: bool = True) -> None:
        rt = runtime()
        least, greatest = check(
            "cudaDeviceGetStreamPriorityRange", rt.cudaDeviceGetStreamPriorityRange()
        )
        self.priority = int(greatest if highest_priority else least)
        flags = rt.cudaStreamNonBlocking if non_blocking else rt.cudaStreamDefault
        self._handle: Any = check(
            "cudaStreamCreateWithPriority", rt.cudaStreamCreateWithPriority(flags, self.priority)
        )

    @property
    def handle(self) -> Any:
        """The ``cudaStream_t`` (pass ``int(stream.handle)`` to TensorRT)."""
        if self._handle is None:
            raise ValueError("Stream is closed")
        return self._handle

    @property
    def address(self) -> int:
        return int(self.handle)

    def synchronize(self) -> None:
        check("cudaStreamSynchronize", runtime().cudaStreamSynchronize(self.handle))

    def query_priority(self) -> int:
        return int(check("cudaStreamGetPriority", runtime().cudaStreamGetPriority(self.handle)))

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            check("cudaStreamDestroy", runtime().cudaStreamDestroy(handle))

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_handle", None) is not None:
            warnings.warn("Stream was not closed", ResourceWarning, stacklevel=2)
            self.close()


class Event:
    """A CUDA event; timing events (the default) can measure elapsed time."""

    def __init__(self, *, timing: bool = True, blocking_sync: bool = False) -> None:
        rt = runtime()
        flags = rt.cudaEventDefault if timing else rt.cudaEventDisableTiming
        if blocking_sync:
            flags |= rt.cudaEventBlockingSync
        self._handle: Any = check("cudaEventCreateWithFlags", rt.cudaEventCreateWithFlags(flags))

    @property
    def handle(self) -> Any:
        if self._handle is None:
            raise ValueError("Event is closed")
        return self._handle

    def record(self, stream: Stream) -> None:
        check("cudaEventRecord", runtime().cudaEventRecord(self.handle, stream.handle))

    def synchronize(self) -> None:
        check("cudaEventSynchronize", runtime().cudaEventSynchronize(self.handle))

    def elapsed_ms(self, start: Event) -> float:
        """Milliseconds from ``start`` to this event (both recorded and complete)."""
        return float(
            check("cudaEventElapsedTime", runtime().cudaEventElapsedTime(start.handle, self.handle))
        )

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            check("cudaEventDestroy", runtime().cudaEventDestroy(handle))

    def __enter__(self) -> Event:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_handle", None) is not None:
            warnings.warn("Event was not closed", ResourceWarning, stacklevel=2)
            self.close()


class StageTimer:
    """A start and an end event per named stage, read after the stream syncs.

    ``begin(stage)``/``end(stage)`` record on the stream around the work of
    that stage. :meth:`read_into` fills a dict with each stage's milliseconds,
    NaN for a stage not recorded since the last :meth:`reset`.
    """

    def __init__(self, stages: Iterable[str]) -> None:
        self._events: dict[str, tuple[Event, Event]] = {}
        self._recorded: dict[str, bool] = {}
        try:
            for stage in stages:
                self._events[stage] = (Event(), Event())
                self._recorded[stage] = False
        except BaseException:
            self.close()
            raise

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(self._events)

    def begin(self, stage: str, stream: Stream) -> None:
        self._events[stage][0].record(stream)

    def end(self, stage: str, stream: Stream) -> None:
        self._events[stage][1].record(stream)
        self._recorded[stage] = True

    def reset(self) -> None:
        for stage in self._recorded:
            self._recorded[stage] = False

    def read_into(self, out: dict[Any, float]) -> None:
        """Write each stage's device time (ms) into ``out``; call after synchronising."""
        for stage, (start, end) in self._events.items():
            out[stage] = end.elapsed_ms(start) if self._recorded[stage] else math.nan

    def close(self) -> None:
        events, self._events = self._events, {}
        for start, end in events.values():
            start.close()
            end.close()

    def __enter__(self) -> StageTimer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
