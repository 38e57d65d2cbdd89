"""Engine fingerprints and the import of an engine built on another host of its class.

ONNX Runtime builds run for real; TensorRT builds run over the FAKE tensorrt
(trt_fakes.py). Hosts are Jetson root trees (tests/jetson_trees.py): the
module id in the device tree is what tells two Orin Nano SKUs apart.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from jetson_rt_trt_fakes import install_fake_tensorrt

from jetson_rt.atomic import sha256_file
from jetson_rt.engine import fingerprint
from jetson_rt.engine.build import build
from jetson_rt.engine.manifest import manifest_path
from jetson_rt.engine.options import BuildOptions
from jetson_trees import orin_nano_r36, put
from onnx_models import GeneratedModel


def host(root: Path, module: str = "p3767-0005") -> str:
    orin_nano_r36(root)
    compatible = f"nvidia,p3768-0000+{module}-super\0nvidia,{module}\0nvidia,tegra234\0"
    put(root, "sys/firmware/devicetree/base/compatible", compatible.encode())
    return str(root)


def options(model: Path, folder: Path, backend: str = "onnxruntime", **extra: Any) -> BuildOptions:
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "model.onnx"
    if not copy.exists():
        shutil.copyfile(model, copy)
    artifact = "model.ort.onnx" if backend == "onnxruntime" else "model.engine"
    fields: dict[str, Any] = {
        "model": copy,
        "output": folder / artifact,
        "backend": backend,
        "precision": "fp32" if backend == "onnxruntime" else "fp16",
        "ort_optimization": "portable",
    }
    fields.update(extra)
    return BuildOptions(**fields)


def build_and_store(opts: BuildOptions, root: str, store: Path) -> fingerprint.Fingerprint:
    """What the canary does: build, write the fingerprint, hand the files to the controller."""
    build(opts, root=root)
    made = fingerprint.write(opts, root)
    store.mkdir(parents=True, exist_ok=True)
    for path in opts.output.parent.iterdir():
        if path.name.startswith(opts.output.name):
            shutil.copy2(path, store / path.name)
    return made


def test_same_class_imports_the_engine_byte_for_byte(
    models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    a, b = host(tmp_path / "a"), host(tmp_path / "b")
    built = options(models["mlp"].path, tmp_path / "a-engines")
    made = build_and_store(built, a, tmp_path / "store")
    target = options(models["mlp"].path, tmp_path / "b-engines")
    assert fingerprint.compute(target, b).key == made.key
    result = fingerprint.import_cached(target, tmp_path / "store", b)
    assert result == {
        "imported": True,
        "fingerprint": made.key,
        "artifact_sha256": result["artifact_sha256"],
        "reason": None,
    }
    assert target.output.read_bytes() == built.output.read_bytes()
    assert manifest_path(target.output).is_file()
    # An import is a build as far as --if-changed is concerned: nothing to rebuild.
    assert not build(target, if_changed=True, root=b).changed


def test_another_carrier_board_shares_the_engine_and_stays_up_to_date(
    models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    a, b = host(tmp_path / "a"), host(tmp_path / "b")
    put(Path(b), "sys/firmware/devicetree/base/model", b"Production carrier, Orin Nano 8GB\0")
    made = build_and_store(options(models["mlp"].path, tmp_path / "a-e"), a, tmp_path / "st")
    target = options(models["mlp"].path, tmp_path / "b-e")
    assert fingerprint.import_cached(target, tmp_path / "st", b)["fingerprint"] == made.key
    manifest = json.loads(manifest_path(target.output).read_text())
    assert manifest["platform"]["device_model"] == "Production carrier, Orin Nano 8GB"
    assert manifest["environment"]["installed_from"] == "engine cache"
    assert not build(target, if_changed=True, root=b).changed


def test_another_module_id_is_refused_and_nothing_is_installed(
    models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    a = host(tmp_path / "a")
    b = host(tmp_path / "b", module="p3767-0003")
    build_and_store(options(models["mlp"].path, tmp_path / "a-e"), a, tmp_path / "store")
    target = options(models["mlp"].path, tmp_path / "b-e")
    result = fingerprint.import_cached(target, tmp_path / "store", b)
    assert not result["imported"]
    assert "module_sku: 'p3767-0005' here 'p3767-0003'" in result["reason"]
    assert not target.output.exists() and not manifest_path(target.output).exists()


def test_a_corrupted_copy_is_refused_by_its_sha256(
    models: dict[str, GeneratedModel], tmp_path: Path
) -> None:
    a, b = host(tmp_path / "a"), host(tmp_path / "b")
    opts = options(models["mlp"].path, tmp_path / "a-e")
    build_and_store(opts, a, tmp_path / "store")
    copied = tmp_path / "store" / opts.output.name
    data = bytearray(copied.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copied.write_bytes(bytes(data))
    target = options(models["mlp"].path, tmp_path / "b-e")
    result = fingerprint.import_cached(target, tmp_path / "store", b)
    assert not result["imported"]
    assert "sha256" in result["reason"] and "differs from its manifest" in result["reason"]
    assert not target.output.exists()


def test_fingerprint_inputs(models: dict[str, GeneratedModel], tmp_path: Path) -> None:
    a = host(tmp_path / "a")
    base = fingerprint.compute(options(models["mlp"].path, tmp_path / "x"), a)
    assert base.inputs["module_sku"] == "p3767-0005"
    assert base.inputs["platform"]["l4t_release"] == "36.4.3"
    assert base.inputs["target"] == "cpu"
    other_level = options(models["mlp"].path, tmp_path / "x", ort_optimization="basic")
    assert fingerprint.compute(other_level, a).key != base.key
    # The carrier board's name is no engine input.
    put(Path(a), "sys/firmware/devicetree/base/model", b"Custom carrier with an Orin Nano\0")
    assert fingerprint.compute(options(models["mlp"].path, tmp_path / "x"), a).key == base.key


def test_tensorrt_copy_that_does_not_deserialise_is_refused(
    monkeypatch: pytest.MonkeyPatch,
    fake_cuda: Any,
    models: dict[str, GeneratedModel],
    tmp_path: Path,
) -> None:
    install_fake_tensorrt(monkeypatch)
    a, b = host(tmp_path / "a"), host(tmp_path / "b")
    opts = options(models["conv_bn_relu"].path, tmp_path / "a-e", backend="tensorrt")
    made = build_and_store(opts, a, tmp_path / "store")
    assert made.inputs["target"] == "gpu"
    assert made.inputs["platform"]["tensorrt"] == "10.3.0.fake"
    # A copy whose manifest was rewritten to match garbage passes the sha256 check;
    # TensorRT's deserialisation is the last word.
    copied = tmp_path / "store" / "model.engine"
    copied.write_bytes(b"not an engine")
    manifest = json.loads(manifest_path(copied).read_text())
    manifest["artifact_bytes"] = copied.stat().st_size
    manifest["artifact_sha256"] = sha256_file(copied)
    manifest_path(copied).write_text(json.dumps(manifest))
    target = options(models["conv_bn_relu"].path, tmp_path / "b-e", backend="tensorrt")
    result = fingerprint.import_cached(target, tmp_path / "store", b)
    assert result["reason"] == "TensorRT cannot deserialise the copy on this host"
    # Another TensorRT on the target: another fingerprint, refused before any load.
    install_fake_tensorrt(monkeypatch, version="10.3.1")
    result = fingerprint.import_cached(target, tmp_path / "store", b)
    assert "platform.tensorrt: '10.3.0.fake' here '10.3.1'" in result["reason"]


def test_command_line_prints_json(
    models: dict[str, GeneratedModel], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opts = options(models["mlp"].path, tmp_path / "e")
    args = [str(opts.model), "--backend", "onnxruntime", "--ort-optimization", "portable"]
    assert fingerprint.main(["--print", *args]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["fingerprint"]) == 64
    assert fingerprint.main(["--import", str(tmp_path / "nothing"), *args]) == 0
    refused = json.loads(capsys.readouterr().out)
    assert not refused["imported"] and "no readable fingerprint" in refused["reason"]
    assert fingerprint.main(["--write", *args]) == 2
    assert "ERROR jetson_rt: " in capsys.readouterr().err
