"""The tensorrt backend's control flow over a FAKE ``tensorrt`` module.

TensorRT cannot be installed here. Engines come from the fake builder
(tests/unit/engine/trt_fakes.py): its "engine" copies its first input into
every output, zero-padded, with device-to-device copies queued on the
backend's stream. Each test runs over the fake host-memory CUDA runtime and,
where a GPU and cuda-python exist (marker ``gpu``), over the real one.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jetson_rt_trt_fakes import install_fake_tensorrt

from jetson_rt.backends import Backend, create_backend
from jetson_rt.backends.tensorrt import TensorRTBackend
from jetson_rt.engine.build import build
from jetson_rt.engine.manifest import manifest_path
from jetson_rt.engine.options import BuildOptions
from jetson_rt.errors import ConfigError, EngineError, PlatformError
from onnx_models import GeneratedModel


def build_engine(model: Path, output: Path, **overrides: Any) -> Path:
    fields: dict[str, Any] = {"model": model, "output": output, "backend": "tensorrt"}
    fields.update(overrides)
    return build(BuildOptions(**fields)).artifact


def expected_outputs(backend: Backend, source: np.ndarray) -> dict[str, np.ndarray]:
    """What the fake engine computes: the first input's values, zero-padded."""
    flat = source.reshape(-1)
    result = {}
    for spec in backend.outputs:
        out = np.zeros(int(np.prod(spec.shape)), dtype=np.float32)
        count = min(flat.size, out.size)
        out[:count] = flat[:count]
        result[spec.name] = out.reshape(spec.shape)
    return result


def run_once(backend: Backend, value: np.ndarray) -> dict[str, np.ndarray]:
    name = backend.inputs[0].name
    backend.host_inputs()[name][...] = value
    backend.stage_in()
    backend.execute()
    backend.stage_out()
    backend.synchronize()
    return {k: v.copy() for k, v in backend.host_outputs().items()}


def assert_all_freed(cuda_runtime: Any) -> None:
    if cuda_runtime is not None:
        assert cuda_runtime.live() == {
            "device_buffers": 0,
            "pinned_buffers": 0,
            "streams": 0,
            "events": 0,
            "graphs": 0,
        }


@pytest.mark.parametrize("model_name", ["conv_bn_relu", "mlp", "two_outputs"])
def test_runs_through_a_cuda_graph_and_frees_everything(
    cuda_runtime: Any,
    monkeypatch: pytest.MonkeyPatch,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
    model_name: str,
) -> None:
    install_fake_tensorrt(monkeypatch)
    model = models[model_name]
    engine = build_engine(model.path, tmp_path / f"{model_name}.engine")
    backend = create_backend("tensorrt", engine)
    with backend:
        assert isinstance(backend, TensorRTBackend)
        assert backend.uses_cuda_graph
        assert {s.name: s.shape for s in backend.outputs} == model.outputs
        executions = backend._context.executions
        for seed in range(3):
            value = model.random_inputs(seed=seed)["input"]
            got = run_once(backend, value)
            for name, expected in expected_outputs(backend, value).items():
                np.testing.assert_array_equal(got[name], expected)
        # Replays do not go through execute_async_v3 again.
        assert backend._context.executions == executions
        times = backend.stage_times_ms()
        assert all(not math.isnan(times[stage]) and times[stage] >= 0 for stage in times)
        context_memory = backend._context.device_memory
        assert context_memory is not None
        assert context_memory[1] == 4096  # device_memory_size_v2 of the fake engine
    assert_all_freed(cuda_runtime)


def test_capture_failure_falls_back_to_enqueue(
    cuda_runtime: Any,
    monkeypatch: pytest.MonkeyPatch,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_fake_tensorrt(monkeypatch, capture_unsafe=True)
    model = models["mlp"]
    engine = build_engine(model.path, tmp_path / "mlp.engine")
    with caplog.at_level(logging.WARNING, logger="jetson_rt"):
        backend = TensorRTBackend(engine)
        backend.activate()
    try:
        assert not backend.uses_cuda_graph
        assert "CUDA graph capture failed" in caplog.text
        before = backend._context.executions
        for seed in range(2):
            value = model.random_inputs(seed=seed)["input"]
            got = run_once(backend, value)
            np.testing.assert_array_equal(got["output"], expected_outputs(backend, value)["output"])
        assert backend._context.executions == before + 2
    finally:
        backend.deactivate()
    assert_all_freed(cuda_runtime)


def test_graph_can_be_turned_off(
    cuda_runtime: Any,
    monkeypatch: pytest.MonkeyPatch,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
) -> None:
    install_fake_tensorrt(monkeypatch)
    engine = build_engine(models["mlp"].path, tmp_path / "mlp.engine")
    with create_backend("tensorrt", engine, use_cuda_graph=False) as backend:
        assert isinstance(backend, TensorRTBackend)
        assert not backend.uses_cuda_graph


def test_dynamic_batch_within_and_outside_the_profile(
    cuda_runtime: Any,
    monkeypatch: pytest.MonkeyPatch,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
) -> None:
    install_fake_tensorrt(monkeypatch)
    model = models["dynamic_batch"]
    engine = build_engine(
        model.path,
        tmp_path / "dyn.engine",
        min_shapes={"input": (1, 3, 8, 8)},
        opt_shapes={"input": (2, 3, 8, 8)},
        max_shapes={"input": (4, 3, 8, 8)},
    )
    with pytest.raises(ConfigError, match=r"axis 0 is dynamic.*batch=N"):
        TensorRTBackend(engine).activate()
    with pytest.raises(ConfigError, match=r"outside the engine's profile"):
        TensorRTBackend(engine, batch=8).activate()
    with TensorRTBackend(engine, batch=3) as backend:
        assert backend.inputs[0].shape == (3, 3, 8, 8)
        assert backend.outputs[0].shape == (3, 8)
        value = model.random_inputs(seed=1, batch=3)["input"]
        got = run_once(backend, value)
        np.testing.assert_array_equal(got["output"], expected_outputs(backend, value)["output"])
    assert_all_freed(cuda_runtime)


def test_corrupt_engine_is_refused_by_its_manifest(
    fake_cuda: Any,
    monkeypatch: pytest.MonkeyPatch,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
) -> None:
    install_fake_tensorrt(monkeypatch)
    engine = build_engine(models["mlp"].path, tmp_path / "mlp.engine")
    data = bytearray(engine.read_bytes())
    data[len(data) // 2] ^= 0x55
    engine.write_bytes(bytes(data))
    with pytest.raises(EngineError, match=r"corrupt or was replaced; rebuild"):
        TensorRTBackend(engine).activate()
    assert_all_freed(fake_cuda)


def test_truncated_engine_is_refused_by_size(
    fake_cuda: Any,
    monkeypatch: pytest.MonkeyPatch,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
) -> None:
    install_fake_tensorrt(monkeypatch)
    engine = build_engine(models["mlp"].path, tmp_path / "mlp.engine")
    engine.write_bytes(engine.read_bytes()[:100])
    with pytest.raises(EngineError, match=r"is 100 bytes but its manifest records"):
        TensorRTBackend(engine).activate()


def test_unverified_garbage_is_refused_by_tensorrt(
    fake_cuda: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install_fake_tensorrt(monkeypatch)
    engine = tmp_path / "garbage.engine"
    engine.write_bytes(b"\x00" * 64)
    with pytest.raises(EngineError, match=r"cannot deserialise .*rebuild it on this device"):
        TensorRTBackend(engine, verify=False).activate()
    assert_all_freed(fake_cuda)
    empty = tmp_path / "empty.engine"
    empty.write_bytes(b"")
    with pytest.raises(EngineError, match=r"is empty"):
        TensorRTBackend(empty, verify=False).activate()


def test_missing_manifest_is_refused(
    fake_cuda: Any,
    monkeypatch: pytest.MonkeyPatch,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
) -> None:
    install_fake_tensorrt(monkeypatch)
    engine = build_engine(models["mlp"].path, tmp_path / "mlp.engine")
    manifest_path(engine).unlink()
    with pytest.raises(EngineError, match=r"has no manifest"):
        TensorRTBackend(engine).activate()


def test_engine_from_another_tensorrt_is_refused(
    fake_cuda: Any,
    monkeypatch: pytest.MonkeyPatch,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
) -> None:
    install_fake_tensorrt(monkeypatch)
    engine = build_engine(models["mlp"].path, tmp_path / "mlp.engine")
    path = manifest_path(engine)
    data = json.loads(path.read_text())
    data["platform"]["tensorrt"] = "10.0.1"
    path.write_text(json.dumps(data))
    with pytest.raises(EngineError, match=r"built with TensorRT 10\.0\.1; this host has"):
        TensorRTBackend(engine).activate()


def test_onnxruntime_artifact_is_refused(
    fake_cuda: Any,
    monkeypatch: pytest.MonkeyPatch,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
) -> None:
    install_fake_tensorrt(monkeypatch)
    artifact = build(
        BuildOptions(
            model=models["mlp"].path,
            output=tmp_path / "mlp.ort.onnx",
            backend="onnxruntime",
            precision="fp32",
        )
    ).artifact
    with pytest.raises(EngineError, match=r"built for the onnxruntime backend"):
        TensorRTBackend(artifact).activate()


def test_dla_engine_on_a_device_without_dla_is_refused(
    fake_cuda: Any,
    monkeypatch: pytest.MonkeyPatch,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
) -> None:
    install_fake_tensorrt(monkeypatch, dla_cores=2)
    engine = build_engine(
        models["conv_bn_relu"].path, tmp_path / "dla.engine", dla_core=1, allow_gpu_fallback=True
    )
    # Same engine on a two-core device: the manifest's core is used.
    with TensorRTBackend(engine) as backend:
        assert backend.dla_core == 1
        assert backend._runtime.DLA_core == 1
    # Copied to an Orin Nano (no DLA).
    install_fake_tensorrt(monkeypatch, dla_cores=0)
    with pytest.raises(PlatformError, match=r"no DLA .*rebuild the engine without --dla-core"):
        TensorRTBackend(engine).activate()
    assert_all_freed(fake_cuda)


def test_without_tensorrt_the_backend_says_what_to_install(
    fake_cuda: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    engine = tmp_path / "x.engine"
    engine.write_bytes(b"x")
    with pytest.raises(PlatformError, match=r"python3-libnvinfer"):
        create_backend("tensorrt", engine).activate()


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"batch must be a positive integer"):
        create_backend("tensorrt", tmp_path / "x.engine", batch=0)
    with pytest.raises(ConfigError, match=r"no option intra_op_threads"):
        create_backend("tensorrt", tmp_path / "x.engine", intra_op_threads=2)


def test_tensorrt_8_6_context_memory_through_its_own_api(
    cuda_runtime: Any,
    monkeypatch: pytest.MonkeyPatch,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
) -> None:
    # JetPack 6.0: no allocation strategy, device_memory_size, the device_memory property.
    install_fake_tensorrt(monkeypatch, version="8.6.2")
    model = models["conv_bn_relu"]
    engine = build_engine(model.path, tmp_path / "conv.engine")
    with TensorRTBackend(engine) as backend:
        assert backend._context.legacy
        assert isinstance(backend._context.device_memory, int)
        value = model.random_inputs(seed=1)["input"]
        got = run_once(backend, value)
        for name, expected in expected_outputs(backend, value).items():
            np.testing.assert_array_equal(got[name], expected)
    assert_all_freed(cuda_runtime)


def test_host_resident_output_is_bound_to_its_pinned_buffer(
    fake_cuda: Any,
    monkeypatch: pytest.MonkeyPatch,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
) -> None:
    install_fake_tensorrt(monkeypatch, io={"output": {"location": "HOST"}})
    model = models["mlp"]
    engine = build_engine(model.path, tmp_path / "mlp.engine")
    with TensorRTBackend(engine) as backend:
        assert backend._d2h == []  # nothing to copy back: TensorRT writes host memory
        pinned = backend._pinned["output"]
        assert backend._context.addresses["output"] == pinned.ptr
        value = model.random_inputs(seed=2)["input"]
        got = run_once(backend, value)
        np.testing.assert_array_equal(got["output"], expected_outputs(backend, value)["output"])
    assert_all_freed(fake_cuda)


@pytest.mark.parametrize(
    ("io", "message"),
    [
        ({"output": {"format": "CHW32"}}, r"vectorised format Row major CHW32"),
        ({"output": {"dtype": "BF16"}}, r"'output' is BF16, which numpy has no type for"),
        ({"input": {"dtype": "FP8"}}, r"'input' is FP8"),
        ({"input": {"shape_io": True}}, r"'input' is a shape tensor.*shape_values"),
    ],
    ids=["vectorised", "bf16", "fp8", "shape-tensor"],
)
def test_io_a_numpy_binding_cannot_hold_is_refused(  # noqa: PLR0917 (fixtures)
    fake_cuda: Any,
    monkeypatch: pytest.MonkeyPatch,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
    io: dict[str, dict[str, Any]],
    message: str,
) -> None:
    install_fake_tensorrt(monkeypatch, io=io)
    engine = build_engine(models["mlp"].path, tmp_path / "mlp.engine")
    with pytest.raises((EngineError, ConfigError), match=message):
        TensorRTBackend(engine).activate()
    assert_all_freed(fake_cuda)
