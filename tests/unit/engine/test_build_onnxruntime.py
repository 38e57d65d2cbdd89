"""build-engine --backend onnxruntime, run for real, and the manifest it writes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from jetson_rt.backends import create_backend, verify_model
from jetson_rt.engine import cli
from jetson_rt.engine.build import build
from jetson_rt.engine.manifest import load_manifest, manifest_path
from jetson_rt.engine.options import BuildOptions
from jetson_rt.errors import ConfigError, EngineError, JetsonRtError, ModelError
from onnx_models import GeneratedModel, write_mlp, write_unsupported_op


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["build-engine", *argv])
    result: int = args.func(args)
    return result


def ort_options(model: Path, **overrides: object) -> BuildOptions:
    fields: dict[str, object] = {
        "model": model,
        "output": BuildOptions.default_output(model, "onnxruntime"),
        "backend": "onnxruntime",
        "precision": "fp32",
    }
    fields.update(overrides)
    return BuildOptions(**fields)  # type: ignore[arg-type]


@pytest.fixture
def mlp(tmp_path: Path) -> GeneratedModel:
    return write_mlp(tmp_path)


def test_build_writes_model_and_manifest(mlp: GeneratedModel) -> None:
    result = build(ort_options(mlp.path))
    assert result.changed
    assert result.artifact.is_file()
    manifest = load_manifest(result.artifact)
    assert manifest is not None
    assert manifest.backend == "onnxruntime"
    assert manifest.artifact == result.artifact.name
    assert manifest.artifact_sha256 == result.artifact_sha256
    assert manifest.artifact_bytes == result.artifact.stat().st_size
    assert manifest.build_flags["ort_optimization"] == "all"
    assert manifest.platform["onnxruntime"]
    assert manifest.platform["l4t_release"] is None  # not a Jetson
    # The optimised model is a real model: the backend runs it and matches the reference.
    feeds = mlp.random_inputs(seed=4)
    with create_backend("onnxruntime", result.artifact) as backend:
        backend.host_inputs()["input"][...] = feeds["input"]
        backend.execute()
        np.testing.assert_allclose(
            backend.host_outputs()["output"], mlp.reference(feeds)["output"], rtol=1e-4, atol=1e-5
        )
    assert verify_model(result.artifact).artifact_sha256 == result.artifact_sha256


def test_if_changed_skips_an_up_to_date_build(mlp: GeneratedModel) -> None:
    first = build(ort_options(mlp.path), if_changed=True)
    assert first.changed
    mtime = first.artifact.stat().st_mtime_ns
    second = build(ort_options(mlp.path), if_changed=True)
    assert not second.changed
    assert second.reasons == []
    assert first.artifact.stat().st_mtime_ns == mtime


def test_if_changed_rebuilds_when_an_input_changes(mlp: GeneratedModel) -> None:
    build(ort_options(mlp.path), if_changed=True)
    changed_flag = build(ort_options(mlp.path, ort_optimization="basic"), if_changed=True)
    assert changed_flag.changed
    assert any("ort_optimization" in reason for reason in changed_flag.reasons)

    # A re-exported model at the same path.
    model = onnx.load(str(mlp.path))
    model.producer_version = "2"
    onnx.save_model(model, str(mlp.path))
    changed_model = build(ort_options(mlp.path, ort_optimization="basic"), if_changed=True)
    assert changed_model.changed
    assert "the ONNX model changed (sha256 differs)" in changed_model.reasons


def test_if_changed_rebuilds_a_corrupt_artifact(mlp: GeneratedModel) -> None:
    first = build(ort_options(mlp.path), if_changed=True)
    data = bytearray(first.artifact.read_bytes())
    data[-1] ^= 0xFF
    first.artifact.write_bytes(bytes(data))
    with pytest.raises(EngineError, match=r"corrupt or was replaced"):
        verify_model(first.artifact)
    again = build(ort_options(mlp.path), if_changed=True)
    assert again.changed
    assert any("differs from its manifest" in reason for reason in again.reasons)
    assert verify_model(again.artifact)


def test_cli_json_reports_changed(mlp: GeneratedModel, capsys: pytest.CaptureFixture[str]) -> None:
    argv = (str(mlp.path), "--backend", "onnxruntime", "--if-changed", "--json")
    assert run_cli(*argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["changed"] is True
    assert Path(first["manifest"]) == manifest_path(Path(first["artifact"]))
    assert run_cli(*argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert second == {**second, "changed": False, "reasons": []}
    assert run_cli(str(mlp.path), "--backend", "onnxruntime", "--if-changed") == 0
    assert "up to date with its manifest: nothing built" in capsys.readouterr().out


def test_dynamic_model_builds_and_test_runs_with_shapes(
    models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    model = models["dynamic_batch"]
    without = build(ort_options(model.path, output=tmp_path / "a.ort.onnx"))
    assert without.changed
    with_shapes = build(
        ort_options(
            model.path,
            output=tmp_path / "b.ort.onnx",
            opt_shapes={"input": (4, 3, 8, 8)},
        )
    )
    manifest = load_manifest(with_shapes.artifact)
    assert manifest is not None
    assert manifest.build_flags["opt_shapes"] == "input:4x3x8x8"
    with pytest.raises(ConfigError, match=r"axis 1 is 5 but the model fixes it at 3"):
        build(
            ort_options(
                model.path, output=tmp_path / "c.ort.onnx", opt_shapes={"input": (4, 5, 8, 8)}
            )
        )


def test_unsupported_op_is_refused_naming_the_node(tmp_path: Path) -> None:
    path = write_unsupported_op(tmp_path)
    expected = r"node 'postprocess_nms' \(com\.example\.vision::FancyNms"
    with pytest.raises(ModelError, match=expected):
        build(ort_options(path))
    assert not BuildOptions.default_output(path, "onnxruntime").exists()


def test_garbage_onnx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x0a\xff\xff\xff this is not protobuf")
    with pytest.raises(ModelError, match=r"not a readable ONNX model"):
        build(ort_options(path))


def test_invalid_onnx_is_refused_by_the_checker(tmp_path: Path) -> None:
    # Relu fed by a tensor nothing produces: a graph the checker rejects.
    graph = helper.make_graph(
        [helper.make_node("Relu", ["missing"], ["output"], name="relu")],
        "bad",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelError, match=r"fails the ONNX checker"):
        build(ort_options(path))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"precision": "fp16"}, r"--precision fp16 only apply to --backend tensorrt"),
        ({"dla_core": 0}, r"--dla-core only apply to --backend tensorrt"),
        ({"output": None}, r"would overwrite the ONNX model"),
    ],
)
def test_tensorrt_only_options_are_refused(
    mlp: GeneratedModel, overrides: dict[str, object], message: str
) -> None:
    if overrides.get("output", 1) is None:
        overrides = {"output": mlp.path}
    with pytest.raises(ConfigError, match=message):
        build(ort_options(mlp.path, **overrides))


def test_non_onnx_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"not an \.onnx file"):
        build(ort_options(path, output=tmp_path / "model.ort.onnx"))


def test_cli_errors_are_jetson_rt_errors(tmp_path: Path) -> None:
    with pytest.raises(JetsonRtError, match=r"does not exist"):
        run_cli(str(tmp_path / "absent.onnx"), "--backend", "onnxruntime")
    with pytest.raises(ConfigError, match=r"NAME:DxDx"):
        run_cli(str(tmp_path / "absent.onnx"), "--shapes", "input=1x3")
