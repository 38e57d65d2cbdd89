"""Fixtures for engine tests: generated ONNX models, and the FAKE TensorRT and CUDA.

The fakes (``trt_fakes.py``) stand in for TensorRT and a GPU, which cannot
exist on development and CI machines; see that module's docstring.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

_HERE = Path(__file__).resolve().parent
_TESTS_DIR = str(_HERE.parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

import onnx_models  # noqa: E402


def _load_fakes() -> ModuleType:
    spec = importlib.util.spec_from_file_location("jetson_rt_trt_fakes", _HERE / "trt_fakes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


trt_fakes = sys.modules.get("jetson_rt_trt_fakes") or _load_fakes()


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, onnx_models.GeneratedModel]:
    return onnx_models.write_all(tmp_path_factory.mktemp("models"))


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """FAKE CUDA runtime over host memory, in place of cuda-python for jetson_rt.cuda."""
    from jetson_rt.cuda import api

    fake = trt_fakes.FakeCudart()
    monkeypatch.setattr(api, "_cudart", fake)
    yield fake


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.gpu)])
def cuda_runtime(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CUDA runtime under test: the FAKE host-memory one, or the real GPU.

    Returns the fake (whose ``live()`` counts what is allocated) or ``None``
    for the real runtime, which is skipped without cuda-python or a GPU.
    """
    if request.param == "fake":
        from jetson_rt.cuda import api

        fake = trt_fakes.FakeCudart()
        monkeypatch.setattr(api, "_cudart", fake)
        return fake
    pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed")
    from jetson_rt.cuda import device_count

    if device_count() == 0:
        pytest.skip("no CUDA device")
    return None


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch, cuda_runtime: Any) -> Iterator[Any]:
    """FAKE ``tensorrt`` (no DLA, as Orin Nano) over the fake or the real CUDA runtime."""
    module = trt_fakes.install_fake_tensorrt(monkeypatch)
    yield module
    for name in trt_fakes.TRT_BOUND_MODULES:
        sys.modules.pop(name, None)
