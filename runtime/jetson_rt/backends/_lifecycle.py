"""Lifecycle shared by the backends: activate once, free deterministically, warn on leaks."""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from jetson_rt.backends.base import Stage, TensorSpec
from jetson_rt.errors import EngineError

if TYPE_CHECKING:
    import numpy.typing as npt

    from jetson_rt.backends.base import BackendName


class BackendLifecycle(ABC):
    """``activate``/``deactivate`` around ``_open``/``_close``; a context manager.

    Subclasses allocate everything in ``_open`` and free it in ``_close``;
    ``_close`` must tolerate a partly completed ``_open`` (it is called when
    ``_open`` raises). A backend dropped while active frees itself and emits a
    :class:`ResourceWarning`, as an unclosed file does.
    """

    name: BackendName

    def __init__(self) -> None:
        self._active = False
        self._inputs: tuple[TensorSpec, ...] = ()
        self._outputs: tuple[TensorSpec, ...] = ()
        self._host_inputs: dict[str, npt.NDArray[np.generic]] = {}
        self._host_outputs: dict[str, npt.NDArray[np.generic]] = {}
        # Overwritten in place after every inference: reading it allocates nothing.
        self._stage_ms: dict[Stage, float] = {"h2d": math.nan, "infer": math.nan, "d2h": math.nan}

    @abstractmethod
    def _open(self) -> None:
        """Load the model and allocate every buffer."""

    @abstractmethod
    def _close(self) -> None:
        """Free what ``_open`` allocated, in reverse order."""

    @property
    def active(self) -> bool:
        return self._active

    def activate(self) -> None:
        if self._active:
            return
        try:
            self._open()
        except BaseException:
            self._close()
            self._reset_io()
            raise
        self._active = True

    def deactivate(self) -> None:
        if not self._active:
            return
        self._active = False
        try:
            self._close()
        finally:
            self._reset_io()

    def _reset_io(self) -> None:
        self._inputs = ()
        self._outputs = ()
        self._host_inputs = {}
        self._host_outputs = {}

    def _require_active(self) -> None:
        if not self._active:
            raise EngineError(f"the {self.name} backend is not active: call activate() first")

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        self._require_active()
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        self._require_active()
        return self._outputs

    def host_inputs(self) -> dict[str, npt.NDArray[np.generic]]:
        self._require_active()
        return self._host_inputs

    def host_outputs(self) -> dict[str, npt.NDArray[np.generic]]:
        self._require_active()
        return self._host_outputs

    def stage_times_ms(self) -> dict[Stage, float]:
        return self._stage_ms

    def __enter__(self) -> BackendLifecycle:
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def __del__(self) -> None:
        if getattr(self, "_active", False):
            warnings.warn(
                f"{type(self).__name__} was garbage-collected while active; "
                "call deactivate() or use it as a context manager",
                ResourceWarning,
                stacklevel=2,
            )
            self.deactivate()
