"""A fault-injecting Backend wrapper for the runner tests.

Not a mock: it wraps a real, active backend (ONNX Runtime here) and forwards
every call, adding on request what a real deployment meets: extra latency on
the next N inferences (a thermal or contention spike), an inference that hangs
(a stuck driver call), or an exception (a runtime error).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from jetson_rt.backends.base import Backend, BackendName, Stage, TensorSpec


class FaultyBackend:
    """Forwards to ``inner``; ``slow``/``hang``/``fail`` arm one-shot or counted faults."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name: BackendName = inner.name
        self.executed = 0
        self._slow_left = 0
        self._slow_s = 0.0
        self._fail_left = 0
        self._fail_with: Exception | None = None
        self._hang_after = -1
        self.hanging = threading.Event()
        self.release = threading.Event()

    # --- fault switches (test thread) ------------------------------------------------

    def slow(self, count: int, extra_ms: float) -> None:
        self._slow_s = extra_ms / 1e3
        self._slow_left = count

    def fail(self, count: int, error: Exception | None = None) -> None:
        """Raise in the next ``count`` executions (``error``, else a RuntimeError)."""
        self._fail_left = count
        self._fail_with = error

    def hang_after(self, executions: int) -> None:
        """Block inside ``execute`` once ``executions`` more calls were made, until released."""
        self._hang_after = self.executed + executions

    # --- Backend ------------------------------------------------------------------------

    def activate(self) -> None:
        self.inner.activate()

    def deactivate(self) -> None:
        self.release.set()
        self.inner.deactivate()

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self.inner.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self.inner.outputs

    def host_inputs(self) -> dict[str, npt.NDArray[np.generic]]:
        return self.inner.host_inputs()

    def host_outputs(self) -> dict[str, npt.NDArray[np.generic]]:
        return self.inner.host_outputs()

    def stage_in(self) -> None:
        self.inner.stage_in()

    def execute(self) -> None:
        self.executed += 1
        if self._hang_after >= 0 and self.executed > self._hang_after:
            self._hang_after = -1
            self.hanging.set()
            self.release.wait(timeout=30.0)
        if self._fail_left > 0:
            self._fail_left -= 1
            raise self._fail_with or RuntimeError("injected backend failure")
        if self._slow_left > 0:
            self._slow_left -= 1
            time.sleep(self._slow_s)
        self.inner.execute()

    def stage_out(self) -> None:
        self.inner.stage_out()

    def synchronize(self) -> None:
        self.inner.synchronize()

    def stage_times_ms(self) -> dict[Stage, float]:
        return self.inner.stage_times_ms()

    def __enter__(self) -> FaultyBackend:
        self.activate()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.deactivate()
