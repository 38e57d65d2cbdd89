"""build-engine --backend tensorrt control flow, over the FAKE tensorrt and CUDA runtime.

TensorRT cannot be installed here; these tests check what jetson-rt asks of it
and how it reacts (see trt_fakes.py). They say nothing about TensorRT's own
behaviour.
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jetson_rt_trt_fakes import install_fake_tensorrt

from jetson_rt.cuda import device_info
from jetson_rt.engine.build import build
from jetson_rt.engine.manifest import load_manifest
from jetson_rt.engine.options import BuildOptions
from jetson_rt.engine.trt_build import LAYER_REPORT_SUFFIX, require_tensorrt
from jetson_rt.errors import ConfigError, EngineError, ModelError, PlatformError
from onnx_models import GeneratedModel, write_unsupported_op


def trt_options(model: Path, output: Path, **overrides: Any) -> BuildOptions:
    fields: dict[str, Any] = {"model": model, "output": output, "backend": "tensorrt"}
    fields.update(overrides)
    return BuildOptions(**fields)


def write_samples(folder: Path, count: int, shape: tuple[int, ...]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        np.save(folder / f"sample_{index:03d}.npy", rng.standard_normal(shape, dtype=np.float32))
    return folder


def test_fp16_build_writes_engine_manifest_report_and_timing_cache(
    fake_trt: Any, models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    engine = tmp_path / "conv.engine"
    timing = tmp_path / "cache" / "timing.cache"
    result = build(
        trt_options(
            models["conv_bn_relu"].path,
            engine,
            precision="fp16",
            workspace_mib=256,
            builder_optimization_level=5,
            timing_cache=timing,
        )
    )
    assert result.changed
    payload = fake_trt.record["builds"][-1]
    assert payload["flags"] == ["FP16"]
    assert payload["workspace"] == 256 << 20
    assert payload["opt_level"] == 5
    assert payload["device"] == "GPU"

    manifest = load_manifest(engine)
    assert manifest is not None
    assert manifest.platform["tensorrt"] == "10.3.0.fake"
    gpu = device_info(0)  # the fake's "Fake Orin (ga10b)" 8.7, or the real GPU
    assert manifest.platform["gpu"] == gpu.name
    assert manifest.platform["compute_capability"] == "{}.{}".format(*gpu.compute_capability)
    assert manifest.environment["cuda_runtime"] == gpu.runtime_version
    assert "cuda_runtime" not in manifest.platform  # recorded, not a rebuild trigger
    assert manifest.built_by.startswith("jetson-rt ")
    assert manifest.build_flags["precision"] == "fp16"
    assert manifest.build_flags["dla_core"] is None
    report = engine.with_name(engine.name + LAYER_REPORT_SUFFIX)
    assert manifest.extras == {"layer_report": report.name}
    assert json.loads(report.read_text())["Layers"][0]["Name"] == "fused_graph"
    assert timing.read_bytes().startswith(b"FAKE-TRT-TIMING")


def test_if_changed_skips_and_timing_cache_is_merged(
    fake_trt: Any, models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    timing = tmp_path / "timing.cache"
    options = trt_options(models["mlp"].path, tmp_path / "mlp.engine", timing_cache=timing)
    assert build(options, if_changed=True).changed
    assert not build(options, if_changed=True).changed
    assert len(fake_trt.record["builds"]) == 1

    # Another model's build keeps the first model's timings in the shared cache.
    other = trt_options(models["two_outputs"].path, tmp_path / "two.engine", timing_cache=timing)
    build(other)
    entries = json.loads(timing.read_bytes()[len(b"FAKE-TRT-TIMING\n") :])["entries"]
    assert len(entries) == 2

    # A report-only file going missing is a reason to rebuild.
    (tmp_path / ("mlp.engine" + LAYER_REPORT_SUFFIX)).unlink()
    again = build(options, if_changed=True)
    assert again.changed
    assert any("side file" in reason for reason in again.reasons)


def test_precision_change_triggers_a_rebuild(
    fake_trt: Any, models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    engine = tmp_path / "mlp.engine"
    build(trt_options(models["mlp"].path, engine, precision="fp16"), if_changed=True)
    result = build(trt_options(models["mlp"].path, engine, precision="fp32"), if_changed=True)
    assert result.changed
    assert "flag precision: 'fp16' -> 'fp32'" in result.reasons
    assert fake_trt.record["builds"][-1]["flags"] == []


def test_dla_is_refused_on_a_device_without_one(
    fake_trt: Any, models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    engine = tmp_path / "dla.engine"
    with pytest.raises(PlatformError, match=r"has none .*fused off.*drop --dla-core"):
        build(trt_options(models["conv_bn_relu"].path, engine, dla_core=0))
    assert fake_trt.record["parsers"] == 0  # refused before any work
    assert not engine.exists()


def test_dla_core_and_gpu_fallback_on_a_device_with_two(
    monkeypatch: pytest.MonkeyPatch,
    fake_cuda: Any,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
) -> None:
    trt = install_fake_tensorrt(monkeypatch, dla_cores=2)
    model = models["conv_bn_relu"].path
    build(trt_options(model, tmp_path / "dla1.engine", dla_core=1, allow_gpu_fallback=True))
    payload = trt.record["builds"][-1]
    assert payload["device"] == "DLA"
    assert payload["dla_core"] == 1
    assert "GPU_FALLBACK" in payload["flags"]
    with pytest.raises(PlatformError, match=r"--dla-core 2 does not exist.*0\.\.1"):
        build(trt_options(model, tmp_path / "dla2.engine", dla_core=2))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dla_core": 0, "precision": "fp32"}, r"DLA runs only fp16 and int8"),
        ({"allow_gpu_fallback": True}, r"only applies with --dla-core"),
        ({"precision": "int8"}, r"give --calib-dir"),
        ({"workspace_mib": 0}, r"--workspace must be a positive"),
        ({"builder_optimization_level": 6}, r"0\.\.5"),
        ({"min_shapes": {"input": (1, 64)}}, r"needs all of --min-shapes"),
    ],
)
def test_bad_flag_combinations_are_refused(
    fake_trt: Any,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
    overrides: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(ConfigError, match=message):
        build(trt_options(models["mlp"].path, tmp_path / "x.engine", **overrides))


def test_empty_calibration_folder_is_refused(
    fake_trt: Any, models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    empty = tmp_path / "calib"
    empty.mkdir()
    (empty / "README.txt").write_text("no samples here")
    with pytest.raises(ConfigError, match=r"has no \.npy samples"):
        build(
            trt_options(
                models["mlp"].path, tmp_path / "x.engine", precision="int8", calib_dir=empty
            )
        )


def test_int8_calibrates_then_reuses_the_cache(
    fake_trt: Any, models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    samples = write_samples(tmp_path / "calib", 10, (64,))
    cache = tmp_path / "mlp.calib"
    options = trt_options(
        models["mlp"].path,
        tmp_path / "mlp.engine",
        precision="int8",
        calib_dir=samples,
        calib_cache=cache,
        calib_batch_size=4,
    )
    with pytest.raises(EngineError, match=r"--calib-batch-size 4 does not match.*\[1, 64\]"):
        build(options)
    # Batches take the model's shape [1, 64]: one sample each.
    options = trt_options(
        models["mlp"].path,
        tmp_path / "mlp.engine",
        precision="int8",
        calib_dir=samples,
        calib_cache=cache,
    )
    first = build(options)
    assert fake_trt.record["calibration_batches"] == 10
    assert cache.read_bytes() == b"fake-calibration:10"
    # What TensorRT read from the device is the samples, in order.
    sample_3 = np.load(samples / "sample_003.npy")
    np.testing.assert_array_equal(fake_trt.record["calibration_inputs"][3], sample_3[None])
    assert fake_trt.record["builds"][-1]["calibrated"]
    manifest = load_manifest(first.artifact)
    assert manifest is not None
    assert str(manifest.build_flags["calibration"]).startswith("samples:")

    # Same samples, another optimisation level: the cache is reused, no new batches.
    best = trt_options(
        models["mlp"].path,
        tmp_path / "mlp.engine",
        precision="best",
        calib_dir=samples,
        calib_cache=cache,
        builder_optimization_level=1,
    )
    rebuilt = build(best, if_changed=True)
    assert rebuilt.changed
    assert fake_trt.record["calibration_batches"] == 10
    assert fake_trt.record["builds"][-1]["flags"] == ["FP16", "INT8"]
    # And an unchanged rerun builds nothing, although the cache file now exists.
    assert not build(best, if_changed=True).changed


def test_calibration_sample_of_the_wrong_shape_is_refused(
    fake_trt: Any, models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    samples = write_samples(tmp_path / "calib", 2, (3, 8, 8))
    cache = tmp_path / "x.calib"
    options = trt_options(
        models["mlp"].path,
        tmp_path / "x.engine",
        precision="int8",
        calib_dir=samples,
        calib_cache=cache,
    )
    with pytest.raises(ConfigError, match=r"has shape \[3, 8, 8\].*takes \[64\]"):
        build(options)
    # No cache from a failed calibration, or the next build would reuse bad scales.
    assert not cache.exists()
    assert not (tmp_path / "x.engine").exists()


def test_calibration_frees_its_buffers(
    fake_trt: Any, cuda_runtime: Any, models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    samples = write_samples(tmp_path / "calib", 3, (1, 64))
    options = trt_options(
        models["mlp"].path, tmp_path / "x.engine", precision="int8", calib_dir=samples
    )
    build(options)
    if cuda_runtime is None:
        return  # the real runtime has no allocation census; the fake checks the logic
    assert cuda_runtime.live() == {
        "device_buffers": 0,
        "pinned_buffers": 0,
        "streams": 0,
        "events": 0,
        "graphs": 0,
    }


def test_dynamic_input_needs_a_profile(
    fake_trt: Any, models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    model = models["dynamic_batch"].path
    with pytest.raises(EngineError, match=r"'input' has dynamic shape \[-1, 3, 8, 8\]"):
        build(trt_options(model, tmp_path / "d.engine"))
    build(
        trt_options(
            model,
            tmp_path / "d.engine",
            min_shapes={"input": (1, 3, 8, 8)},
            opt_shapes={"input": (4, 3, 8, 8)},
            max_shapes={"input": (8, 3, 8, 8)},
        )
    )
    assert fake_trt.record["builds"][-1]["profile"] == {
        "input": [[1, 3, 8, 8], [4, 3, 8, 8], [8, 3, 8, 8]]
    }
    with pytest.raises(EngineError, match=r"fixes it at 3"):
        fixed = {"input": (1, 4, 8, 8)}
        build(
            trt_options(
                model, tmp_path / "e.engine", min_shapes=fixed, opt_shapes=fixed, max_shapes=fixed
            )
        )


def test_unparsable_op_is_refused_naming_the_node(
    monkeypatch: pytest.MonkeyPatch, fake_cuda: Any, tmp_path: Path
) -> None:
    install_fake_tensorrt(monkeypatch, unsupported_ops=("FancyNms",))
    model = write_unsupported_op(tmp_path)
    with pytest.raises(ModelError, match=r"node 'postprocess_nms' \(FancyNms\): No importer"):
        build(trt_options(model, tmp_path / "u.engine"))


@pytest.mark.parametrize(
    "made_by",
    [{"device": "Orin NX (nvgpu) other properties"}, {"version": "10.0.1.fake"}, None],
    ids=["another device", "another TensorRT", "not a timing cache"],
)
def test_unusable_timing_cache_is_replaced_not_fatal(  # noqa: PLR0917 (fixtures)
    monkeypatch: pytest.MonkeyPatch,
    fake_cuda: Any,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
    made_by: dict[str, str] | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    timing = tmp_path / "timing.cache"
    if made_by is None:
        timing.write_bytes(b"garbage")
    else:
        other = install_fake_tensorrt(monkeypatch, **made_by)
        build(trt_options(models["mlp"].path, tmp_path / "other.engine", timing_cache=timing))
        assert other.record["builds"]
    fake = install_fake_tensorrt(monkeypatch)
    build(trt_options(models["conv_bn_relu"].path, tmp_path / "x.engine", timing_cache=timing))
    assert "starts a new one and replaces it" in caplog.text
    body = json.loads(timing.read_bytes()[len(b"FAKE-TRT-TIMING\n") :])
    # Only this device's and version's timings: the other cache's are not mixed in.
    assert body["version"] == fake.__version__
    assert body["entries"] == ["tactic:['FP16']:[[1, 3, 16, 16]]"]


def test_merge_timing_caches_skips_other_versions(
    monkeypatch: pytest.MonkeyPatch,
    fake_cuda: Any,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
) -> None:
    from jetson_rt.engine.trt_build import merge_timing_caches

    caches = []
    for name, version in (("a", "10.3.0.fake"), ("b", "10.3.0.fake"), ("c", "8.6.1")):
        install_fake_tensorrt(monkeypatch, version=version)
        model = models["mlp" if name == "a" else "conv_bn_relu"].path
        caches.append(tmp_path / f"{name}.cache")
        build(trt_options(model, tmp_path / f"{name}.engine", timing_cache=caches[-1]))
    install_fake_tensorrt(monkeypatch)
    result = merge_timing_caches(caches, tmp_path / "merged.cache")
    assert result["skipped"] == [str(caches[2])]
    body = json.loads((tmp_path / "merged.cache").read_bytes()[len(b"FAKE-TRT-TIMING\n") :])
    assert len(body["entries"]) == 2


def test_missing_tensorrt_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    # What `import tensorrt` gives where only tensorrt-stubs is installed.
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    with pytest.raises(PlatformError, match=r"python3-libnvinfer.*--system-site-packages"):
        require_tensorrt()
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(PlatformError, match=r"--backend onnxruntime"):
        require_tensorrt()


def write_qdq_model(path: Path) -> Path:
    """input [1, 16] -> QuantizeLinear -> DequantizeLinear -> Relu: an explicit-INT8 graph."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("QuantizeLinear", ["input", "scale", "zero"], ["q"], name="q"),
            helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["dq"], name="dq"),
            helper.make_node("Relu", ["dq"], ["output"], name="relu"),
        ],
        "qdq",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 16])],
        [
            helper.make_tensor("scale", TensorProto.FLOAT, [], [0.05]),
            helper.make_tensor("zero", TensorProto.INT8, [], [0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))
    return path


def test_calibration_batches_take_the_calibration_profile_opt_shape(
    fake_trt: Any,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    samples = write_samples(tmp_path / "calib", 9, (3, 8, 8))
    options = trt_options(
        models["dynamic_batch"].path,
        tmp_path / "d.engine",
        precision="int8",
        calib_dir=samples,
        min_shapes={"input": (1, 3, 8, 8)},
        opt_shapes={"input": (4, 3, 8, 8)},
        max_shapes={"input": (8, 3, 8, 8)},
    )
    # filterwarnings = error: TensorRT 10.1+'s DeprecationWarning of the implicit
    # calibration setters would fail this build if it escaped.
    build(options)
    shapes = [batch.shape for batch in fake_trt.record["calibration_inputs"]]
    assert shapes == [(4, 3, 8, 8), (4, 3, 8, 8)]  # 9 samples: two batches of OPT's 4
    first_four = np.stack([np.load(samples / f"sample_{i:03d}.npy") for i in range(4)])
    np.testing.assert_array_equal(fake_trt.record["calibration_inputs"][0], first_four)
    assert "implicit INT8 calibration is deprecated since TensorRT 10.1" in caplog.text
    # The fake's setter does warn, so the build above proves the warning is handled.
    config = fake_trt.Builder(None).create_builder_config()
    with pytest.warns(DeprecationWarning, match="explicit quantization"):
        config.int8_calibrator = None


def test_calibrator_exceptions_survive_tensorrt_swallowing_them(
    fake_trt: Any,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    samples = write_samples(tmp_path / "calib", 3, (64,))
    cache = tmp_path / "mlp.calib"
    options = trt_options(
        models["mlp"].path,
        tmp_path / "x.engine",
        precision="int8",
        calib_dir=samples,
        calib_cache=cache,
    )
    # sys.modules' copy: the one bound to this test's fake tensorrt.
    calibrator = importlib.import_module("jetson_rt.engine.calibrator")

    def broken_copy(*args: Any) -> None:
        raise RuntimeError("cudaMemcpyAsync: device lost")

    monkeypatch.setattr(calibrator, "copy_host_to_device_async", broken_copy)
    with pytest.raises(EngineError, match=r"failed in get_batch: RuntimeError: cudaMemcpyAsync"):
        build(options)
    assert not cache.exists() and not (tmp_path / "x.engine").exists()


def test_tensorrt_8_6_of_jetpack_6_0_builds_with_explicit_batch_and_calibrates(
    monkeypatch: pytest.MonkeyPatch,
    fake_cuda: Any,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = install_fake_tensorrt(monkeypatch, version="8.6.2")
    samples = write_samples(tmp_path / "calib", 2, (64,))
    options = trt_options(
        models["mlp"].path, tmp_path / "x.engine", precision="int8", calib_dir=samples
    )
    build(options)  # the fake 8.6 parser refuses a network without EXPLICIT_BATCH
    assert fake.record["calibration_batches"] == 2
    assert "deprecated" not in caplog.text


@pytest.mark.parametrize(
    ("version", "message"),
    [("8.5.2", r"older than 8\.6.*JetPack 6"), ("11.0.0", r"newer than this jetson-rt knows")],
)
def test_tensorrt_lines_outside_the_table_are_refused(
    monkeypatch: pytest.MonkeyPatch, fake_cuda: Any, version: str, message: str
) -> None:
    install_fake_tensorrt(monkeypatch, version=version)
    with pytest.raises(PlatformError, match=message):
        require_tensorrt()


def test_version_table_rows() -> None:
    from jetson_rt.engine.trt_build import tensorrt_api

    assert tensorrt_api("8.6.2").explicit_batch_flag
    assert not tensorrt_api("8.6.2").allocation_strategy
    assert tensorrt_api("10.0.1").allocation_strategy
    assert not tensorrt_api("10.0.1").device_memory_v2
    assert tensorrt_api("10.3.0").device_memory_v2
    assert tensorrt_api("10.3.0").implicit_int8 == "deprecated"
    assert tensorrt_api("8.6.2").implicit_int8 == "supported"


def test_qdq_model_builds_explicit_int8_without_calibration(
    fake_trt: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = write_qdq_model(tmp_path / "qdq.onnx")
    result = build(trt_options(model, tmp_path / "qdq.engine", precision="int8"))
    payload = fake_trt.record["builds"][-1]
    assert payload["explicit_int8"] and payload["flags"] == ["INT8"]
    assert not payload["calibrated"] and fake_trt.record["calibration_batches"] == 0
    manifest = load_manifest(result.artifact)
    assert manifest is not None and manifest.build_flags["calibration"] == "qdq"
    assert "deprecated" not in caplog.text
