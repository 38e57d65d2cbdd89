"""Fixtures for the CUDA layer: a real device, or a clean skip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def cuda_device() -> Iterator[int]:
    """Device 0, current; skips where cuda-python or a GPU is missing."""
    pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed")
    from jetson_rt.cuda import device_count, require_device

    if device_count() == 0:
        pytest.skip("no CUDA device")
    require_device(0)
    yield 0
    from jetson_rt.cuda import check, runtime

    # Every test must leave the device usable: no sticky error, nothing queued.
    check("cudaDeviceSynchronize", runtime().cudaDeviceSynchronize())
