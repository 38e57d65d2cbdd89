"""The contract every inference backend implements.

A backend owns one loaded model and every buffer the model touches. All memory
is allocated in :meth:`Backend.activate`; the hot path (``stage_in``,
``execute``, ``stage_out``, ``synchronize``) allocates nothing, neither Python
objects nor device memory. The runner writes inputs into the arrays returned by
:meth:`Backend.host_inputs` and reads results from :meth:`Backend.host_outputs`
(numpy views over pinned memory on GPU backends, plain preallocated arrays on
CPU backends).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

BackendName = Literal["tensorrt", "onnxruntime"]

# Stages the runner times; a backend that cannot time a stage reports NaN for it.
Stage = Literal["h2d", "infer", "d2h"]


# cudaError_t values after which the process's CUDA context is unusable: "any further
# CUDA work will return the same error ... the process must be terminated and
# relaunched" (CUDA runtime API). ECC uncorrectable (214), illegal address (700),
# launch timeout (702), device assert (710), hardware stack error (714), illegal
# instruction (715), misaligned address (716), invalid address space (717), invalid
# PC (718), launch failure (719).
STICKY_CUDA_ERRORS = frozenset({214, 700, 702, 710, 714, 715, 716, 717, 718, 719})


def is_sticky(exc: BaseException) -> bool:
    """True when ``exc`` is a CUDA error that leaves the context unusable (see above)."""
    from jetson_rt.cuda.api import CudaError

    return isinstance(exc, CudaError) and exc.code in STICKY_CUDA_ERRORS


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (concrete, after profile selection) and dtype of one I/O tensor."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[np.generic]

    @property
    def nbytes(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count * self.dtype.itemsize


@runtime_checkable
class Backend(Protocol):
    """One loaded model with preallocated I/O, driven by the runner."""

    name: BackendName

    def activate(self) -> None:
        """Load the model and allocate every buffer. Idempotent."""

    def deactivate(self) -> None:
        """Free every resource deterministically. Idempotent."""

    @property
    def inputs(self) -> tuple[TensorSpec, ...]: ...

    @property
    def outputs(self) -> tuple[TensorSpec, ...]: ...

    def host_inputs(self) -> dict[str, npt.NDArray[np.generic]]:
        """Preallocated host arrays the caller fills before ``stage_in``."""

    def host_outputs(self) -> dict[str, npt.NDArray[np.generic]]:
        """Preallocated host arrays valid after ``synchronize``."""

    def stage_in(self) -> None:
        """Queue host-to-device copies of the inputs (no-op on CPU backends)."""

    def execute(self) -> None:
        """Queue (GPU) or run (CPU) one inference on the bound buffers."""

    def stage_out(self) -> None:
        """Queue device-to-host copies of the outputs (no-op on CPU backends)."""

    def synchronize(self) -> None:
        """Block until everything queued has finished."""

    def stage_times_ms(self) -> dict[Stage, float]:
        """Device-side time of each stage of the last completed inference."""

    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc: object) -> None: ...
