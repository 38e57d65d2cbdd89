"""build-engine --backend onnxruntime as exporters' models need it.

The session is the verdict (``Constant`` nodes are not refused), ``--shapes``
names may hold ``:``, every unsized dynamic axis is reported at once, the
manifest records the CPU features of an ``all`` artifact and a host that
does not match them is refused, and identical builds give identical bytes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from jetson_rt.backends import create_backend
from jetson_rt.engine import cli
from jetson_rt.engine.build import build
from jetson_rt.engine.manifest import load_manifest
from jetson_rt.engine.options import BuildOptions, parse_shapes
from jetson_rt.engine.ort_artifact import cpu_features, layout_domains, refuse_cpu_mismatch
from jetson_rt.errors import ConfigError, EngineError, ModelError
from onnx_models import write_conv_bn_relu, write_unsupported_op


def ort_options(model: Path, output: Path, **overrides: object) -> BuildOptions:
    fields: dict[str, object] = {
        "model": model,
        "output": output,
        "backend": "onnxruntime",
        "precision": "fp32",
    }
    fields.update(overrides)
    return BuildOptions(**fields)  # type: ignore[arg-type]


def write_constant_model(folder: Path, opset: int = 12) -> Path:
    """``Constant`` nodes feeding a Conv, as PyTorch and Paddle exports have them.

    Input ``image:0`` (a TensorFlow-style name with ``:``), dims ``?`` and a
    symbolic ``batch``; output ``head/scores`` (a name with ``/``).
    """
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(weight, "w_value")),
        helper.make_node(
            "Constant",
            [],
            ["scale"],
            value=numpy_helper.from_array(np.array([0.5], np.float32), "scale_value"),
        ),
        helper.make_node("Conv", ["image:0", "w"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["conv", "scale"], ["head/scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "constants",
        [helper.make_tensor_value_info("image:0", TensorProto.FLOAT, ["batch", 3, "?", "?"])],
        [helper.make_tensor_value_info("head/scores", TensorProto.FLOAT, ["batch", 4, "?", "?"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    onnx.checker.check_model(model, full_check=True)
    path = folder / "constants.onnx"
    onnx.save_model(model, str(path))
    return path


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["build-engine", *argv])
    result: int = args.func(args)
    return result


# --- the loader decides -----------------------------------------------------------


def test_constant_nodes_are_not_refused(tmp_path: Path) -> None:
    """Regression: ``Constant`` (no CPU kernel: resolved at load) was reported unsupported."""
    model = write_constant_model(tmp_path)
    assert sum(node.op_type == "Constant" for node in onnx.load(str(model)).graph.node) == 2
    out = tmp_path / "constants.ort.onnx"
    result = build(ort_options(model, out, opt_shapes={"image:0": (1, 3, 8, 8)}))
    assert result.changed
    feeds = {"image:0": np.random.default_rng(1).standard_normal((1, 3, 8, 8), np.float32)}
    expected = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(
        None, feeds
    )[0]
    with create_backend("onnxruntime", out, input_shapes={"image:0": (1, 3, 8, 8)}) as backend:
        backend.host_inputs()["image:0"][...] = feeds["image:0"]
        backend.execute()
        np.testing.assert_allclose(
            backend.host_outputs()["head/scores"], expected, rtol=1e-5, atol=1e-5
        )


def test_an_op_onnx_runtime_cannot_place_is_named_with_its_reason(tmp_path: Path) -> None:
    path = write_unsupported_op(tmp_path)
    with pytest.raises(ModelError) as caught:
        build(ort_options(path, tmp_path / "u.ort.onnx"))
    message = str(caught.value)
    assert "ONNX Runtime cannot load unsupported_op.onnx" in message
    assert "is not a registered function/op" in message  # ONNX Runtime's own words
    assert "node 'postprocess_nms' (com.example.vision::FancyNms, opset 1)" in message
    assert "relu" not in message.lower().replace("unsupported_op", "")  # only the culprit
    assert not (tmp_path / "u.ort.onnx").exists()


# --- shapes as users write them -------------------------------------------------------


def test_shapes_split_on_the_last_colon() -> None:
    assert parse_shapes("image:0:1x3x224x224,mask:1x4") == {
        "image:0": (1, 3, 224, 224),
        "mask": (1, 4),
    }
    with pytest.raises(ConfigError, match=r"if 'image:0' is the input's name, add its shape"):
        parse_shapes("image:0")
    with pytest.raises(ConfigError, match=r"is not NAME:DxDx"):
        parse_shapes("image:0:")


def test_cli_builds_an_input_named_with_a_colon(tmp_path: Path) -> None:
    model = write_constant_model(tmp_path)
    out = tmp_path / "colon.ort.onnx"
    assert run_cli(str(model), "--backend", "onnxruntime", "--shapes", "image:0:2x3x5x7",
                   "-o", str(out), "--json") == 0  # fmt: skip
    manifest = load_manifest(out)
    assert manifest is not None
    assert manifest.build_flags["opt_shapes"] == "image:0:2x3x5x7"


def test_every_unsized_axis_is_reported_at_once_with_the_text_to_add(tmp_path: Path) -> None:
    model = write_constant_model(tmp_path)
    backend = create_backend("onnxruntime", model)
    with pytest.raises(ConfigError) as caught:
        backend.activate()
    message = str(caught.value)
    assert "'image:0' axis 0 is dynamic ('batch'), axis 2 is dynamic ('?'), axis 3 is " in message
    assert "--shapes image:0:Dx3xDxD" in message
    assert 'shapes: {"image:0": [D, 3, D, D]}' in message
    assert "--option 'input_shapes={\"image:0\": [D, 3, D, D]}'" in message
    # The suggested runner text is valid YAML once D is replaced.
    import yaml

    mapping = message.split("shapes: ", 1)[1].split(" (runner.yaml", 1)[0]
    assert yaml.safe_load(mapping.replace("D", "4")) == {"image:0": [4, 3, 4, 4]}


# --- artifacts that say where they can run ------------------------------------------


def test_all_records_the_cpu_features_and_portable_none(tmp_path: Path) -> None:
    model = write_conv_bn_relu(tmp_path).path
    fast = build(ort_options(model, tmp_path / "all.ort.onnx"))
    portable = build(ort_options(model, tmp_path / "p.ort.onnx", ort_optimization="portable"))
    fast_manifest, portable_manifest = (
        load_manifest(fast.artifact),
        load_manifest(portable.artifact),
    )
    assert fast_manifest is not None and portable_manifest is not None
    assert fast_manifest.build_flags["ort_optimization"] == "all"
    assert fast_manifest.platform["cpu_features"] == (",".join(cpu_features()) or "none")
    assert portable_manifest.build_flags["ort_optimization"] == "portable"
    assert portable_manifest.platform["cpu_features"] is None
    assert layout_domains(onnx.load(str(portable.artifact))) == []


def test_a_host_without_the_recorded_features_is_refused(tmp_path: Path) -> None:
    model = write_conv_bn_relu(tmp_path).path
    out = build(ort_options(model, tmp_path / "all.ort.onnx")).artifact
    manifest = load_manifest(out)
    assert manifest is not None
    recorded = {"machine": "x86_64", "cpu_features": "avx,avx2,fma"}
    with pytest.raises(EngineError, match=r"this host lacks avx2, fma: rebuild it on this host"):
        refuse_cpu_mismatch(out, recorded, host_features=["avx"], host_machine="x86_64")
    with pytest.raises(EngineError, match=r"without avx512f, whose NCHWc layout differs"):
        refuse_cpu_mismatch(
            out, recorded, host_features=["avx", "avx2", "fma", "avx512f"], host_machine="x86_64"
        )
    with pytest.raises(EngineError, match=r"optimised for x86_64 .* this host is aarch64"):
        refuse_cpu_mismatch(out, recorded, host_features=[], host_machine="aarch64")
    refuse_cpu_mismatch(out, recorded, host_features=["avx", "avx2", "fma", "sse4_1"],
                        host_machine="x86_64")  # fmt: skip
    refuse_cpu_mismatch(out, {"machine": "aarch64", "cpu_features": None})  # portable


def test_loading_refuses_an_artifact_built_for_other_cpu_features(tmp_path: Path) -> None:
    """The backend (bench, run) refuses it before ONNX Runtime sees it."""
    model = write_conv_bn_relu(tmp_path).path
    out = build(ort_options(model, tmp_path / "all.ort.onnx")).artifact
    manifest_file = out.with_name(out.name + ".manifest.json")
    data = json.loads(manifest_file.read_text())
    data["platform"]["cpu_features"] = "avx,avx512f,avx_vnni_imaginary"
    manifest_file.write_text(json.dumps(data))
    with pytest.raises(EngineError, match=r"this host lacks .*avx_vnni_imaginary.*portable"):
        create_backend("onnxruntime", out).activate()


def test_identical_builds_give_identical_bytes(tmp_path: Path) -> None:
    model = write_conv_bn_relu(tmp_path).path
    digests = {
        build(ort_options(model, tmp_path / f"{index}.ort.onnx")).artifact_sha256
        for index in range(3)
    }
    assert len(digests) == 1


def test_an_integer_input_zeros_cannot_stand_for_does_not_refuse(tmp_path: Path) -> None:
    """Zeros are a guess for an integer input (here Range's step): the model loads, so it
    builds, with a warning, and runs with a real value."""
    nodes = [
        helper.make_node("Relu", ["x"], ["y"]),
        helper.make_node("Constant", [], ["start"], value=helper.make_tensor("s", 7, [], [0])),
        helper.make_node("Constant", [], ["limit"], value=helper.make_tensor("l", 7, [], [8])),
        helper.make_node("Range", ["start", "limit", "step"], ["r"]),
    ]
    graph = helper.make_graph(
        nodes,
        "steered",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("step", TensorProto.INT64, []),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("r", TensorProto.INT64, ["n"]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "steered.onnx"
    onnx.save_model(model, str(path))
    out = tmp_path / "steered.ort.onnx"
    build(ort_options(path, out, opt_shapes={"x": (1, 4)}))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    feeds = {"x": np.ones((1, 4), np.float32), "step": np.array(3, np.int64)}
    assert session.run(["r"], feeds)[0].tolist() == [0, 3, 6]
