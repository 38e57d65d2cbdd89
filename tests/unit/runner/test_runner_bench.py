"""``jetson-rt bench`` on a real ONNX Runtime model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from jetson_rt.errors import ConfigError
from jetson_rt.runner import cli
from jetson_rt.runner.bench import METRICS, BenchSettings, run_bench
from onnx_models import GeneratedModel


def bench(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="jetson-rt")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *argv])
    result: int = args.func(args)
    return result


def test_bench_reports_trtexec_style_percentiles(
    models: dict[str, GeneratedModel], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    path = str(models["dynamic_batch"].path)
    assert (
        bench(
            path, "--option", "batch=2", "--iterations", "200", "--warmup", "10", "--json", str(out)
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["graph"] == "unsupported by this backend"
    run = report["runs"]["default"]
    assert run["iterations"] == 200
    assert run["inputs"] == {"input": [2, 3, 8, 8]}
    latency = run["latency_ms"]
    assert set(latency) == set(METRICS)
    for metric in ("enqueue", "compute", "host_latency"):
        stats = latency[metric]
        assert stats["min"] <= stats["median"] <= stats["p90"] <= stats["p95"] <= stats["p99"]
        assert stats["p99"] <= stats["p99_9"] <= stats["max"]
    # On the CPU backend the copies are no-ops, measured as zero.
    assert latency["h2d"]["max"] == 0.0
    assert latency["host_latency"]["median"] >= latency["compute"]["median"]
    text = capsys.readouterr().out
    assert "host_latency" in text
    assert "p99.9" in text


def test_bench_idle_time_spaces_inferences(models: dict[str, GeneratedModel]) -> None:
    settings = BenchSettings(iterations=20, warmup=2, idle_ms=5.0)
    report = run_bench("onnxruntime", models["mlp"].path, {}, settings)
    run = report["runs"]["default"]  # type: ignore[index]
    assert run["wall_s"] >= 20 * 0.005
    assert run["throughput_qps"] < 200


def test_bench_refuses_graph_on_a_backend_without_graphs(
    models: dict[str, GeneratedModel],
) -> None:
    with pytest.raises(ConfigError, match="has no CUDA graph option"):
        run_bench("onnxruntime", models["mlp"].path, {}, BenchSettings(graph="on"))
    with pytest.raises(ConfigError, match="iterations"):
        BenchSettings(iterations=0)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        bench(str(models["mlp"].path), "--option", "batch")


def test_bench_drives_the_tensorrt_graph_option_or_says_tensorrt_is_missing(
    models: dict[str, GeneratedModel],
) -> None:
    from jetson_rt.errors import JetsonRtError
    from jetson_rt.runner.bench import graph_option

    assert graph_option("tensorrt") == "use_cuda_graph"
    try:
        import tensorrt  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        # tensorrt-stubs installs an empty namespace package; a real TensorRT has Builder.
        if hasattr(tensorrt, "Builder"):
            pytest.skip("TensorRT is installed here")
    with pytest.raises(JetsonRtError, match=r"(?i)tensorrt"):
        run_bench("tensorrt", models["mlp"].path, {}, BenchSettings(graph="both", iterations=1))
