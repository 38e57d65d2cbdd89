"""The onnxruntime backend, run for real on generated models."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from jetson_rt.backends import Backend, create_backend
from jetson_rt.backends.onnxruntime import OnnxRuntimeBackend
from jetson_rt.engine.manifest import manifest_path
from jetson_rt.errors import ConfigError, EngineError, ModelError
from onnx_models import GeneratedModel, write_unsupported_op


def infer_once(backend: Backend, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    host_in = backend.host_inputs()
    for name, value in feeds.items():
        host_in[name][...] = value
    backend.stage_in()
    backend.execute()
    backend.stage_out()
    backend.synchronize()
    return {name: array.copy() for name, array in backend.host_outputs().items()}


@pytest.mark.parametrize("model_name", ["conv_bn_relu", "mlp", "two_outputs"])
def test_outputs_match_numpy_reference(models: dict[str, GeneratedModel], model_name: str) -> None:
    model = models[model_name]
    with create_backend("onnxruntime", model.path) as backend:
        assert isinstance(backend, Backend)
        assert [spec.name for spec in backend.inputs] == list(model.inputs)
        assert {spec.name: spec.shape for spec in backend.outputs} == model.outputs
        for seed in range(3):
            feeds = model.random_inputs(seed=seed)
            got = infer_once(backend, feeds)
            expected = model.reference(feeds)
            assert set(got) == set(expected)
            for name in expected:
                np.testing.assert_allclose(got[name], expected[name], rtol=1e-4, atol=1e-5)
        times = backend.stage_times_ms()
        assert times["h2d"] == 0.0
        assert times["d2h"] == 0.0
        assert 0.0 < times["infer"] < 1000.0


def test_host_buffers_are_bound_in_place(models: dict[str, GeneratedModel]) -> None:
    """The same arrays carry every inference: the session reads and writes them directly."""
    model = models["mlp"]
    with create_backend("onnxruntime", model.path) as backend:
        host_in = backend.host_inputs()["input"]
        host_out = backend.host_outputs()["output"]
        for seed in (10, 11):
            feeds = model.random_inputs(seed=seed)
            host_in[...] = feeds["input"]
            backend.execute()
            assert backend.host_inputs()["input"] is host_in
            assert backend.host_outputs()["output"] is host_out
            np.testing.assert_allclose(
                host_out, model.reference(feeds)["output"], rtol=1e-4, atol=1e-5
            )


def test_execute_allocates_no_arrays(models: dict[str, GeneratedModel]) -> None:
    """No numpy buffer is created per inference (the conv output alone is 8 KiB)."""
    model = models["conv_bn_relu"]
    with create_backend("onnxruntime", model.path) as backend:
        backend.host_inputs()["input"][...] = model.random_inputs()["input"]
        for _ in range(5):
            backend.execute()
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            for _ in range(50):
                backend.stage_in()
                backend.execute()
                backend.stage_out()
                backend.synchronize()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    output_bytes = 8 * 16 * 16 * 4
    assert peak - before < output_bytes // 2


def test_dynamic_batch_needs_a_batch(models: dict[str, GeneratedModel]) -> None:
    backend = OnnxRuntimeBackend(models["dynamic_batch"].path)
    with pytest.raises(ConfigError, match=r"axis 0 is dynamic \('batch'\).*batch=N"):
        backend.activate()
    assert not backend.active


@pytest.mark.parametrize("batch", [1, 3])
def test_dynamic_batch_takes_its_shape_from_options(
    models: dict[str, GeneratedModel], batch: int
) -> None:
    model = models["dynamic_batch"]
    with create_backend("onnxruntime", model.path, batch=batch) as backend:
        assert backend.inputs[0].shape == (batch, 3, 8, 8)
        assert backend.outputs[0].shape == (batch, 8)
        feeds = model.random_inputs(seed=5, batch=batch)
        got = infer_once(backend, feeds)
    np.testing.assert_allclose(
        got["output"], model.reference(feeds)["output"], rtol=1e-4, atol=1e-5
    )


def test_input_shapes_option_sets_a_dynamic_batch(models: dict[str, GeneratedModel]) -> None:
    model = models["dynamic_batch"]
    with create_backend("onnxruntime", model.path, input_shapes={"input": (2, 3, 8, 8)}) as backend:
        assert backend.outputs[0].shape == (2, 8)


def test_input_shapes_cannot_change_a_fixed_dimension(
    models: dict[str, GeneratedModel],
) -> None:
    backend = create_backend(
        "onnxruntime", models["dynamic_batch"].path, input_shapes={"input": (2, 3, 9, 8)}
    )
    with pytest.raises(ConfigError, match=r"axis 2 is 9 but the model fixes it at 8"):
        backend.activate()


def test_batch_on_a_fixed_batch_model_is_refused(models: dict[str, GeneratedModel]) -> None:
    backend = create_backend("onnxruntime", models["mlp"].path, batch=4)
    with pytest.raises(ConfigError, match=r"fixed batch of 1"):
        backend.activate()


def test_input_shapes_for_an_unknown_input_is_refused(
    models: dict[str, GeneratedModel],
) -> None:
    backend = create_backend("onnxruntime", models["mlp"].path, input_shapes={"image": (1, 64)})
    with pytest.raises(ConfigError, match=r"\['input'\]"):
        backend.activate()


def test_unsupported_op_is_refused_with_the_op_name(tmp_path: Path) -> None:
    backend = create_backend("onnxruntime", write_unsupported_op(tmp_path))
    with pytest.raises(ModelError, match=r"FancyNms"):
        backend.activate()


def test_corrupt_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07 definitely not a protobuf model")
    with pytest.raises(ModelError, match=r"cannot load"):
        create_backend("onnxruntime", path).activate()


def test_missing_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"does not exist"):
        create_backend("onnxruntime", tmp_path / "absent.onnx").activate()


def test_session_options(models: dict[str, GeneratedModel], tmp_path: Path) -> None:
    optimized = tmp_path / "out" / "mlp.opt.onnx"
    backend = OnnxRuntimeBackend(
        models["mlp"].path,
        intra_op_threads=2,
        inter_op_threads=1,
        graph_optimization="basic",
        optimized_model_path=optimized,
    )
    with backend:
        options = backend.session.get_session_options()
        assert options.intra_op_num_threads == 2
        assert options.inter_op_num_threads == 1
        assert options.use_deterministic_compute
        assert options.graph_optimization_level.name == "ORT_ENABLE_BASIC"
    assert optimized.is_file()
    assert optimized.stat().st_size > 0


def test_outputs_are_deterministic(models: dict[str, GeneratedModel]) -> None:
    model = models["conv_bn_relu"]
    feeds = model.random_inputs(seed=3)
    results = []
    for _ in range(2):
        with create_backend("onnxruntime", model.path) as backend:
            results.append(infer_once(backend, feeds)["output"])
    assert np.array_equal(results[0], results[1])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch": 0}, r"batch must be a positive integer"),
        ({"intra_op_threads": -1}, r"intra_op_threads must be >= 0"),
        ({"graph_optimization": "max"}, r"graph_optimization must be one of"),
        ({"precision": "fp16"}, r"no option precision; its options are: batch"),
    ],
)
def test_bad_options_are_refused(
    models: dict[str, GeneratedModel], options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        create_backend("onnxruntime", models["mlp"].path, **options)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"choose one of tensorrt, onnxruntime"):
        create_backend("openvino", "model.onnx")


def test_lifecycle(models: dict[str, GeneratedModel]) -> None:
    backend = OnnxRuntimeBackend(models["mlp"].path)
    with pytest.raises(EngineError, match=r"call activate\(\) first"):
        _ = backend.inputs
    backend.activate()
    first = backend.host_inputs()["input"]
    backend.activate()  # idempotent: same buffers
    assert backend.host_inputs()["input"] is first
    backend.deactivate()
    backend.deactivate()
    assert backend.session is None
    with pytest.raises(EngineError):
        backend.host_outputs()


def test_leaked_backend_warns(models: dict[str, GeneratedModel]) -> None:
    backend = OnnxRuntimeBackend(models["mlp"].path)
    backend.activate()
    with pytest.warns(ResourceWarning, match=r"garbage-collected while active"):
        del backend
        gc.collect()


def test_failed_activation_leaves_nothing_active(models: dict[str, GeneratedModel]) -> None:
    backend = OnnxRuntimeBackend(models["dynamic_batch"].path)
    with pytest.raises(ConfigError):
        backend.activate()
    assert not backend.active
    assert backend.session is None


def _write_manifest(model: Path, sha256: str, size: int) -> None:
    data = {
        "schema": 1,
        "backend": "onnxruntime",
        "source": model.name,
        "source_sha256": sha256,
        "artifact": model.name,
        "artifact_sha256": sha256,
        "artifact_bytes": size,
        "build_flags": {},
        "platform": {},
        "build_seconds": 0.0,
        "built_at": "2026-01-01T00:00:00Z",
        "extras": {},
    }
    manifest_path(model).write_text(json.dumps(data))


def test_manifest_mismatch_is_refused_when_a_manifest_exists(
    models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    model = tmp_path / "mlp.onnx"
    model.write_bytes(models["mlp"].path.read_bytes())
    _write_manifest(model, "0" * 64, model.stat().st_size)
    with pytest.raises(EngineError, match=r"sha256 .* differs from its manifest"):
        OnnxRuntimeBackend(model).activate()
    with OnnxRuntimeBackend(model, verify=False) as backend:
        assert backend.active


def test_verify_true_needs_a_manifest(models: dict[str, GeneratedModel]) -> None:
    with pytest.raises(EngineError, match=r"has no manifest"):
        OnnxRuntimeBackend(models["mlp"].path, verify=True).activate()


def test_package_loads_without_heavy_imports() -> None:
    code = (
        "import sys, jetson_rt.backends as b;"
        "b.create_backend('onnxruntime', 'x.onnx');"
        "heavy = {'onnxruntime', 'tensorrt', 'cuda', 'onnx'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
