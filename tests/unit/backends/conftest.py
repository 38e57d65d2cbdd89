"""Fixtures for backend tests: generated ONNX models, and FAKE TensorRT/CUDA runtimes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# tests/onnx_models.py is shared by every test package; make it importable
# however pytest was started.
_TESTS_DIR = str(Path(__file__).resolve().parents[2])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

import onnx_models  # noqa: E402


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, onnx_models.GeneratedModel]:
    return onnx_models.write_all(tmp_path_factory.mktemp("models"))


# --- FAKE TensorRT and CUDA (see tests/unit/engine/trt_fakes.py) -------------------

_FAKES_PATH = Path(__file__).resolve().parents[1] / "engine" / "trt_fakes.py"


def _load_fakes() -> ModuleType:
    spec = importlib.util.spec_from_file_location("jetson_rt_trt_fakes", _FAKES_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


trt_fakes = sys.modules.get("jetson_rt_trt_fakes") or _load_fakes()


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.gpu)])
def cuda_runtime(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CUDA runtime under test: the FAKE host-memory one, or the real GPU.

    Yields the fake (whose ``live()`` counts what is allocated) or ``None`` for
    the real runtime.
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
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The FAKE host-memory CUDA runtime alone (for checks that need no GPU)."""
    from jetson_rt.cuda import api

    fake = trt_fakes.FakeCudart()
    monkeypatch.setattr(api, "_cudart", fake)
    return fake
