"""jetson_rt.fleet.engine_build, in-process, against the real `jetson-rt build-engine`.

The module calls the ``jetson-rt`` console script of a venv; here that is a tiny
script next to this interpreter that runs ``jetson_rt.cli`` (so ``venv_python``
finds a real Python with jetson_rt and onnxruntime beside it), and the model is
a small real ONNX model from tests/onnx_models.py.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.jetson_rt.fleet.plugins.module_utils import engine_build as utils
from ansible_collections.jetson_rt.fleet.plugins.modules import engine_build
from tests.onnx_models import write_conv_bn_relu

pytest.importorskip("onnxruntime")

SHAPES = {"input": [1, 3, 16, 16]}


@pytest.fixture
def jetson_rt(tmp_path: Path) -> str:
    """A `jetson-rt` script in a folder whose `python` runs this interpreter."""
    bindir = tmp_path / "venv" / "bin"
    bindir.mkdir(parents=True)
    python = bindir / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    script = bindir / "jetson-rt"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom jetson_rt.cli import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    return str(script)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return write_conv_bn_relu(tmp_path / "det" / "1", "model.onnx").path


def args(jetson_rt: str, model: Path, **more: Any) -> dict[str, Any]:
    return {
        "jetson_rt": jetson_rt,
        "model": str(model),
        "output": str(model.with_name("model.ort.onnx")),
        "backend": "onnxruntime",
        "shapes": SHAPES,
        **more,
    }


def test_builds_then_changes_nothing(
    run_module: Callable[..., dict[str, Any]], jetson_rt: str, model: Path
) -> None:
    first = run_module(engine_build.main, **args(jetson_rt, model))
    assert first["changed"] is True
    assert Path(first["artifact"]).is_file()
    assert first["manifest"]["source_sha256"] and first["artifact_sha256"]
    assert first["cmd"][-2:] == ["--if-changed", "--json"]
    second = run_module(engine_build.main, **args(jetson_rt, model))
    assert second["changed"] is False
    assert second["reasons"] == []
    assert second["artifact_sha256"] == first["artifact_sha256"]


def test_check_mode_reports_without_building(
    run_module: Callable[..., dict[str, Any]], jetson_rt: str, model: Path
) -> None:
    output = model.with_name("model.ort.onnx")
    result = run_module(engine_build.main, check_mode=True, diff=True, **args(jetson_rt, model))
    assert result["changed"] is True
    assert not output.exists()
    assert "does not exist" in " ".join(result["reasons"])
    assert result["diff"]["before"] == "(no artifact)\n"
    run_module(engine_build.main, **args(jetson_rt, model))
    unchanged = run_module(engine_build.main, check_mode=True, **args(jetson_rt, model))
    assert unchanged["changed"] is False
    # a new ONNX file (a new model version in the same place) would rebuild
    model.write_bytes(model.read_bytes() + b"\n")
    again = run_module(engine_build.main, check_mode=True, **args(jetson_rt, model))
    assert again["changed"] is True
    assert any("sha256" in reason or "ONNX" in reason for reason in again["reasons"])


def test_check_mode_before_install(
    run_module: Callable[..., dict[str, Any]], tmp_path: Path, model: Path
) -> None:
    result = run_module(
        engine_build.main, check_mode=True, **args(str(tmp_path / "none" / "jetson-rt"), model)
    )
    assert result["changed"] is True
    assert "not installed" in result["reasons"][0]


def test_failed_build_leaves_the_artifact_alone(
    run_module: Callable[..., dict[str, Any]],
    module_failure: Callable[..., dict[str, Any]],
    jetson_rt: str,
    model: Path,
) -> None:
    built = run_module(engine_build.main, **args(jetson_rt, model))
    artifact = Path(built["artifact"])
    before = artifact.read_bytes()
    model.write_bytes(b"not an onnx model")
    failure = module_failure(engine_build.main, **args(jetson_rt, model))
    assert "build-engine failed" in failure["msg"]
    assert "untouched" in failure["msg"]
    assert artifact.read_bytes() == before
    assert (
        json.loads(artifact.with_name(artifact.name + ".manifest.json").read_text())[
            "artifact_sha256"
        ]
        == built["artifact_sha256"]
    )


def test_not_installed_fails_saying_so(
    module_failure: Callable[..., dict[str, Any]], tmp_path: Path, model: Path
) -> None:
    failure = module_failure(engine_build.main, **args(str(tmp_path / "jetson-rt"), model))
    assert "is not installed" in failure["msg"]


def test_gpu_fallback_needs_a_dla_core(
    module_failure: Callable[..., dict[str, Any]], jetson_rt: str, model: Path
) -> None:
    failure = module_failure(
        engine_build.main, **args(jetson_rt, model, backend="tensorrt", allow_gpu_fallback=True)
    )
    assert "dla_core" in failure["msg"]


def test_tensorrt_arguments() -> None:
    argv = utils.build_args(
        {
            "model": "/e/m.onnx",
            "output": "/e/m.engine",
            "backend": "tensorrt",
            "precision": "int8",
            "shapes": {"images": [1, 3, 640, 640]},
            "dla_core": 0,
            "allow_gpu_fallback": True,
            "calib_dir": "/e/calibration",
            "timing_cache": "/c/det.timing.cache",
            "workspace_mib": 2048,
            "extra_args": ["--builder-optimization-level", "4"],
        }
    )
    assert argv == [
        "/e/m.onnx",
        "--output",
        "/e/m.engine",
        "--backend",
        "tensorrt",
        "--precision",
        "int8",
        "--shapes",
        "images:1x3x640x640",
        "--workspace",
        "2048",
        "--dla-core",
        "0",
        "--allow-gpu-fallback",
        "--calib-dir",
        "/e/calibration",
        "--timing-cache",
        "/c/det.timing.cache",
        "--builder-optimization-level",
        "4",
    ]


def test_unparseable_output_is_a_failure() -> None:
    with pytest.raises(utils.BuildError, match="no JSON"):
        utils.parse_build_output(0, "built it\n", "", "/e/m.engine")
    assert utils.parse_check_output(1, "", "Traceback\nImportError: x\n")["changed"] is True


def store_copy(output: Path, store: Path) -> Path:
    """What the role's engine cache keeps for one fingerprint: every file of the artifact."""
    store.mkdir(parents=True, exist_ok=True)
    for path in output.parent.glob(output.name + "*"):
        (store / path.name).write_bytes(path.read_bytes())
    return store


def test_fingerprint_only_builds_nothing(
    run_module: Callable[..., dict[str, Any]], jetson_rt: str, model: Path
) -> None:
    result = run_module(engine_build.main, fingerprint_only=True, **args(jetson_rt, model))
    assert result["changed"] is False
    assert len(result["fingerprint"]) == 64
    assert result["fingerprint_inputs"]["target"] == "cpu"
    assert not model.with_name("model.ort.onnx").exists()


def test_imports_a_verified_copy_then_changes_nothing(
    run_module: Callable[..., dict[str, Any]], jetson_rt: str, model: Path, tmp_path: Path
) -> None:
    built = run_module(engine_build.main, **args(jetson_rt, model))
    assert built["source"] == "local" and len(built["fingerprint"]) == 64
    store = store_copy(Path(built["artifact"]), tmp_path / "store")
    other = write_conv_bn_relu(tmp_path / "other" / "1", "model.onnx").path
    first = run_module(engine_build.main, from_cache=str(store), **args(jetson_rt, other))
    assert (first["changed"], first["source"], first["cache_rejected"]) == (True, "cache", None)
    assert first["fingerprint"] == built["fingerprint"]
    copied = Path(first["artifact"]).read_bytes()
    assert copied == Path(built["artifact"]).read_bytes()
    again = run_module(engine_build.main, from_cache=str(store), **args(jetson_rt, other))
    assert (again["changed"], again["source"]) == (False, "none")


def test_a_corrupted_copy_is_refused_and_built_here(
    run_module: Callable[..., dict[str, Any]], jetson_rt: str, model: Path, tmp_path: Path
) -> None:
    built = run_module(engine_build.main, **args(jetson_rt, model))
    store = store_copy(Path(built["artifact"]), tmp_path / "store")
    (store / "model.ort.onnx").write_bytes(b"corrupted in the artifact store")
    other = write_conv_bn_relu(tmp_path / "other" / "1", "model.onnx").path
    result = run_module(engine_build.main, from_cache=str(store), **args(jetson_rt, other))
    assert (result["changed"], result["source"]) == (True, "local")
    assert (
        "differs from its manifest" in result["cache_rejected"]
        or "bytes but its manifest" in (result["cache_rejected"])
    )
    assert Path(result["artifact"]).read_bytes() == Path(built["artifact"]).read_bytes()
