"""CUDA graph capture and replay, with a fallback to plain enqueueing.

A graph replays a captured sequence of launches with one call, which removes
most of the per-launch CPU cost and its jitter. Capture is not always
possible: a library may synchronise, allocate or query inside its enqueue
(TensorRT does for some engines, e.g. with data-dependent shapes or DLA
layers). As trtexec does, a failed capture is reported once and the work is
then enqueued directly every time; the caller's results are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jetson_rt.cuda.api import CudaError, check, clear_last_error, runtime
from jetson_rt.cuda.stream import Stream
from jetson_rt.log import logger


class GraphLaunch:
    """Run ``enqueue`` on ``stream`` as a CUDA graph where possible.

    ``enqueue`` queues work on ``stream`` and returns nothing (it raises on
    failure). Call :meth:`prepare` once, after everything the work reads
    (shapes, addresses) is fixed: it runs ``enqueue`` once directly (libraries
    finish their lazy set-up there, which must not happen during capture),
    then captures, instantiates and test-launches the graph. :meth:`launch`
    then replays the graph, or calls ``enqueue`` if there is none.
    """

    def __init__(
        self, stream: Stream, enqueue: Callable[[], None], *, use_graph: bool = True
    ) -> None:
        self.stream = stream
        self.enqueue = enqueue
        self.use_graph = use_graph
        self.failure: str | None = None
        self._graph: Any = None
        self._exec: Any = None
        self._prepared = False

    @property
    def captured(self) -> bool:
        """True when :meth:`launch` replays a graph."""
        return self._exec is not None

    def prepare(self) -> bool:
        """Warm up, then try to capture; return :attr:`captured`."""
        if self._prepared:
            return self.captured
        self.enqueue()
        self.stream.synchronize()
        self._prepared = True
        if not self.use_graph:
            return False
        try:
            self._capture()
            # A graph that instantiates can still fail at launch (e.g. a node
            # the driver rejects); find out now rather than in the loop.
            self.launch()
            self.stream.synchronize()
        except CudaError as exc:
            self._fall_back(str(exc))
        return self.captured

    def _capture(self) -> None:
        rt = runtime()
        stream = self.stream.handle
        check(
            "cudaStreamBeginCapture",
            rt.cudaStreamBeginCapture(
                stream, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
            ),
        )
        enqueue_error: BaseException | None = None
        try:
            self.enqueue()
        except Exception as exc:  # whatever the library raises, capture must be ended
            enqueue_error = exc
        # End the capture in every case, or the stream stays unusable.
        error, graph = rt.cudaStreamEndCapture(stream)
        if graph is not None and int(graph):
            self._graph = graph
        if enqueue_error is not None:
            raise CudaError(
                "enqueue during stream capture",
                -1,
                type(enqueue_error).__name__,
                str(enqueue_error),
            ) from enqueue_error
        check("cudaStreamEndCapture", (error,))
        if self._graph is None:
            raise CudaError("cudaStreamEndCapture", -1, "empty", "no graph was captured")
        self._exec = check("cudaGraphInstantiate", rt.cudaGraphInstantiate(self._graph, 0))

    def _fall_back(self, reason: str) -> None:
        self._destroy()
        clear_last_error()
        self.failure = reason
        logger.warning("CUDA graph capture failed, enqueueing directly instead: %s", reason)
        # The work must still run: check the plain path now.
        self.enqueue()
        self.stream.synchronize()

    def launch(self) -> None:
        """Queue the work once: replay the graph, or enqueue directly."""
        if self._exec is not None:
            check("cudaGraphLaunch", runtime().cudaGraphLaunch(self._exec, self.stream.handle))
        else:
            self.enqueue()

    def _destroy(self) -> None:
        rt = runtime()
        graph_exec, self._exec = self._exec, None
        graph, self._graph = self._graph, None
        if graph_exec is not None:
            check("cudaGraphExecDestroy", rt.cudaGraphExecDestroy(graph_exec))
        if graph is not None:
            check("cudaGraphDestroy", rt.cudaGraphDestroy(graph))

    def close(self) -> None:
        """Destroy the graph (the stream belongs to the caller)."""
        self._destroy()
        self._prepared = False

    def __enter__(self) -> GraphLaunch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
