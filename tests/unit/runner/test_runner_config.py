"""Strict validation of the runner configuration and ``jetson-rt check-config``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from jetson_rt.errors import ConfigError
from jetson_rt.runner import cli
from jetson_rt.runner.config import load_config, parse_config


def check_config(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="jetson-rt")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["check-config", *argv])
    result: int = args.func(args)
    return result


def errors_of(doc: object) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(doc)
    return str(info.value)


def test_full_example_parses(base_config: Callable[..., dict[str, Any]]) -> None:
    doc = base_config(
        models={
            "mlp_lite": {
                "backend": "onnxruntime",
                "path": "lite.onnx",
                "shapes": {"input": [1, 64]},
            }
        },
        tasks=[
            {
                "name": "classify",
                "tiers": ["mlp", "mlp_lite"],
                "priority": 70,
                "period_ms": 33.3,
                "deadline_ms": 20,
                "input": {"source": "synthetic", "seed": 3},
                "sla": {"window_s": 30, "target_pct": 99.5},
                "degradation": {"step_down_after": 2, "step_up_after": 10, "emergency": True},
            }
        ],
        rt={"priority": 80, "cpus": [4, 5], "mlockall": True},
        watchdog={"timeout_ms": 100, "action": "fallback", "fallback_tier": 1},
        prometheus={"port": 9108},
    )
    config = parse_config(doc, Path("/etc/jetson-rt/runner.yaml"))
    task = config.tasks[0]
    assert task.tiers == ("mlp", "mlp_lite")
    assert task.degradation.step_down_after == 2
    assert config.rt.cpus == (4, 5)
    assert config.watchdog.fallback_tier == 1
    # Relative paths resolve against the configuration file's folder.
    assert config.models["mlp_lite"].path == Path("/etc/jetson-rt/lite.onnx")
    assert config.models["mlp_lite"].device == "cpu"
    assert config.models["mlp_lite"].shapes == {"input": (1, 64)}


def test_unknown_key_names_its_path_and_the_closest_key(
    base_config: Callable[..., dict[str, Any]],
) -> None:
    doc = base_config()
    doc["tasks"][0]["deadline_msec"] = 5
    message = errors_of(doc)
    assert "tasks[0].deadline_msec: unknown key; did you mean 'deadline_ms'?" in message


def test_every_problem_is_reported_at_once(base_config: Callable[..., dict[str, Any]]) -> None:
    doc = base_config(rt={"priority": 120, "cpus": "some"}, watchdog={"timeout_ms": "fast"})
    doc["models"]["mlp"]["backend"] = "tflite"
    doc["tasks"][0]["tiers"] = ["mlp", "missing"]
    doc["warmup"]["max_cv"] = 0
    message = errors_of(doc)
    for expected in (
        "rt.priority: must be at most 99, got 120",
        "rt.cpus: must be 'isolated', 'all' or a list of CPU numbers, got 'some'",
        "watchdog.timeout_ms: must be a number, got a string",
        "models.mlp.backend: must be one of onnxruntime, tensorrt, got 'tflite'",
        "tasks[0].tiers[1]: 'missing' is not a model under models: (mlp)",
        "warmup.max_cv: must be greater than 0",
    ):
        assert expected in message


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"schema_version": 2}, "schema_version: this runner reads schema_version 1, got 2"),
        ({"tasks": []}, "tasks: must be a list with at least one task"),
        ({"rt": {"mlockall": "yes"}}, "rt.mlockall: must be true or false"),
        ({"rt": {"priority": True}}, "rt.priority: must be an integer, got a boolean"),
        ({"rt": {"cpus": [4, 4]}}, "rt.cpus: lists a CPU twice"),
        ({"thermal": {"throttle_c": 80, "resume_c": 85}}, "thermal.resume_c: must be below"),
        ({"warmup": {"min_iterations": 100, "max_iterations": 10}}, "warmup.max_iterations"),
        ({"watchdog": {"action": "reboot"}}, "watchdog.action: must be one of exit, fallback"),
        ({"watchdog": {"action": "fallback", "fallback_tier": 3}}, "has 1 tier(s)"),
        ({"stats": {"interval_s": -1}}, "stats.interval_s: must be at least 0.05"),
        ({"prometheus": {"port": 70000}}, "prometheus.port: must be at most 65535"),
        ({"watchdog": {"timeout_ms": 40}}, "not above tasks[0].deadline_ms (50 ms)"),
        (
            {"models": {"mlp": {"backend": "onnxruntime", "path": "m.onnx", "device": "dla"}}},
            "models.mlp.device: the onnxruntime backend runs on the CPU",
        ),
    ],
)
def test_bad_values_are_refused_with_their_key(
    base_config: Callable[..., dict[str, Any]], patch: dict[str, Any], expected: str
) -> None:
    doc = base_config()
    for key, value in patch.items():
        doc[key] = {**doc[key], **value} if isinstance(value, dict) and key in doc else value
    assert expected in errors_of(doc)


def test_task_needs_deadline_and_input_needs_its_path(
    base_config: Callable[..., dict[str, Any]],
) -> None:
    doc = base_config()
    del doc["tasks"][0]["deadline_ms"]
    doc["tasks"][0]["input"] = {"source": "npy"}
    message = errors_of(doc)
    assert "tasks[0].deadline_ms: is required" in message
    assert "tasks[0].input.path: is required for source: npy" in message


def test_top_level_must_be_a_mapping() -> None:
    assert "<top>: must be a mapping, got a list" in errors_of([1, 2])


def test_load_config_reports_yaml_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("models: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_check_config_accepts_a_valid_file(
    base_config: Callable[..., dict[str, Any]],
    write_config: Callable[[dict[str, Any]], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_config(base_config())
    assert check_config(str(path)) == 0
    assert "valid (schema_version 1, 1 model(s), 1 task(s))" in capsys.readouterr().out


def test_check_config_refuses_missing_model_file_unless_schema_only(
    base_config: Callable[..., dict[str, Any]],
    write_config: Callable[[dict[str, Any]], Path],
) -> None:
    doc = base_config()
    doc["models"]["mlp"]["path"] = "nowhere/mlp.onnx"
    path = write_config(doc)
    with pytest.raises(ConfigError, match=r"models\.mlp\.path: .*nowhere/mlp\.onnx does not exist"):
        check_config(str(path))
    assert check_config("--no-files", str(path)) == 0


def test_check_config_reports_camera_sources_unavailable_without_opencv(
    base_config: Callable[..., dict[str, Any]],
    write_config: Callable[[dict[str, Any]], Path],
) -> None:
    try:
        import cv2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("OpenCV is installed here; the unavailable path cannot be exercised")
    doc = base_config()
    doc["tasks"][0]["input"] = {"source": "v4l2", "device": "/dev/video0"}
    with pytest.raises(ConfigError, match=r"camera input .* unavailable: OpenCV is not importable"):
        check_config(str(write_config(doc)))


def test_yaml_round_trip_of_documented_example() -> None:
    """The example in docs/runner.md is a valid configuration (schema only)."""
    doc_path = Path(__file__).resolve().parents[3] / "docs" / "runner.md"
    text = doc_path.read_text(encoding="utf-8")
    start = text.index("```yaml\n") + len("```yaml\n")
    example = yaml.safe_load(text[start : text.index("```", start)])
    config = parse_config(example)
    assert [task.name for task in config.tasks] == ["detect", "classify"]
    assert config.models["det"].shapes == {"images": (1, 3, 640, 640)}
