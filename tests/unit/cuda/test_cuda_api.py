"""The CUDA layer's loading and error handling; these need no GPU."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jetson_rt.cuda import api
from jetson_rt.errors import PlatformError


def test_package_imports_without_loading_cuda_python() -> None:
    code = "import sys, jetson_rt.cuda; print('cuda.bindings.runtime' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_missing_cuda_python_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "_cudart", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", None)
    with pytest.raises(PlatformError, match=r"'gpu' extra"):
        api.runtime()


def test_check_turns_an_error_code_into_a_named_exception() -> None:
    cudart = pytest.importorskip("cuda.bindings.runtime")
    err = cudart.cudaError_t.cudaErrorInvalidValue
    with pytest.raises(api.CudaError, match=r"cudaMalloc failed: cudaErrorInvalidValue") as info:
        api.check("cudaMalloc", (err, None))
    assert info.value.code == int(err)
    assert info.value.call == "cudaMalloc"
    assert "invalid argument" in info.value.description
    assert isinstance(info.value, PlatformError)


def test_check_returns_the_values() -> None:
    cudart = pytest.importorskip("cuda.bindings.runtime")
    ok = cudart.cudaError_t.cudaSuccess
    assert api.check("a", (ok,)) is None
    assert api.check("b", (ok, 7)) == 7
    assert api.check("c", (ok, 1, 2)) == (1, 2)
    assert api.check("d", ok) is None


def test_require_device_refuses_clearly_without_a_gpu() -> None:
    pytest.importorskip("cuda.bindings.runtime")
    if api.device_count() > 0:
        pytest.skip("this host has a GPU")
    with pytest.raises(PlatformError, match=r"no CUDA device 0 \(found 0\).*onnxruntime"):
        api.require_device(0)


def test_version_encoding() -> None:
    assert api._version(12060) == "12.6"
    assert api._version(13000) == "13.0"
