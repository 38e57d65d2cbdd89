"""Property tests of the runner's YAML loader and validator: whatever the file holds,
``load_config`` returns a configuration or raises ConfigError (never another exception),
quickly, and its message stays short and never echoes an expanded alias."""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jetson_rt.errors import ConfigError
from jetson_rt.runner.config import RunnerConfig, load_config, parse_config
from jetson_rt.yamlload import parse_yaml

GOOD = """\
schema_version: 1
models:
  mlp: {backend: onnxruntime, path: m.onnx, shapes: {input: [1, 64]}, options: {batch: 1}}
  lite:
    backend: tensorrt
    path: /opt/m.engine
    options: {use_cuda_graph: false}
tasks:
  - name: classify
    tiers: [mlp, lite]
    period_ms: 33.3
    deadline_ms: 20
    input: {source: synthetic, seed: 3}
    sla: {window_s: 30, target_pct: 99.5}
    degradation: {step_down_after: 2, emergency: true}
rt: {priority: 80, cpus: [4, 5]}
watchdog: {timeout_ms: 100, action: fallback, fallback_tier: 1}
stats: {path: /run/jetson-rt/stats.json}
"""

# Pieces that steer generated text into the YAML grammar's corners and the schema's keys.
PIECES = st.sampled_from(
    [
        "&a ", "*a", "<<: ", "!!python/object:os.system ", "!!binary ", "? ", ": ", "- ",
        "[", "]", "{", "}", ",", "'", '"', "\\", "\n", "\t", "  ", "#", "---\n", "...\n",
        ".nan", ".inf", "-.inf", "1e999", "1.0e+999", "0x1F", "0o17", "1_000", "9" * 40,
        "~", "null", "yes", "on", "2024-02-30", "\x00", "\x85", "\ufeff", "é", "%YAML 1.1\n",
        "schema_version", "models", "tasks", "deadline_ms", "period_ms", "options", "batch",
        "shapes", "tiers", "mlp", "verify", "watchdog", "timeout_ms", "rt", "cpus",
    ]
)  # fmt: skip

SETTINGS = settings(
    max_examples=int(os.environ.get("JETSON_RT_HYPOTHESIS_EXAMPLES", "300")),
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def check_text(text: str) -> None:
    started = time.monotonic()
    try:
        config = parse_config(parse_yaml(text, "runner configuration"))
    except ConfigError as exc:
        message = str(exc)
        assert len(message.splitlines()[0]) < 600, message[:200]
    else:
        assert isinstance(config, RunnerConfig)
    assert time.monotonic() - started < 2.0


@SETTINGS
@given(st.text(max_size=400))
def test_any_text(text: str) -> None:
    check_text(text)


@SETTINGS
@given(st.lists(PIECES, max_size=60).map("".join))
def test_yaml_shaped_text(text: str) -> None:
    check_text(text)


@SETTINGS
@given(
    st.integers(0, len(GOOD)),
    st.integers(0, 40),
    st.lists(PIECES | st.text(max_size=3), max_size=6).map("".join),
)
def test_a_good_file_edited_anywhere(at: int, cut: int, insert: str) -> None:
    check_text(GOOD[:at] + insert + GOOD[at + cut :])


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10) | st.integers(), inner, max_size=4)
    ),
    max_leaves=12,
)

PATHS = st.sampled_from(
    [
        ("schema_version",),
        ("models",),
        ("models", "mlp"),
        ("models", "mlp", "options"),
        ("models", "mlp", "options", "batch"),
        ("models", "mlp", "shapes"),
        ("models", "mlp", "shapes", "input"),
        ("models", "mlp", "path"),
        ("models", "mlp", "verify"),
        ("models", "lite", "options", "shape_values"),
        ("tasks",),
        ("tasks", 0),
        ("tasks", 0, "deadline_ms"),
        ("tasks", 0, "tiers"),
        ("tasks", 0, "input"),
        ("tasks", 0, "sla"),
        ("tasks", 0, "degradation"),
        ("tasks", 0, "max_consecutive_errors"),
        ("rt", "cpus"),
        ("watchdog",),
        ("watchdog", "fallback_tier"),
        ("stats", "path"),
        ("prometheus",),
    ]
)


def good_doc() -> dict[str, Any]:
    data = parse_yaml(GOOD)
    assert isinstance(data, dict)
    return data


def put(doc: Any, path: tuple[str | int, ...], value: object) -> None:
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@SETTINGS
@given(PATHS, JSONISH)
def test_any_value_anywhere(path: tuple[str | int, ...], value: object) -> None:
    doc = good_doc()
    put(doc, path, value)
    try:
        config = parse_config(doc)
    except ConfigError:
        return
    # Accepted: then every float it holds is finite and every shape bounded.
    for task in config.tasks:
        assert math.isfinite(task.deadline_ms) and task.deadline_ms > 0
        assert math.isfinite(task.period_ms)
    for model in config.models.values():
        for dims in model.shapes.values():
            assert 1 <= len(dims) <= 8
            assert math.prod(dims) <= 1 << 30


def test_the_unedited_file_is_valid() -> None:
    assert [task.name for task in parse_config(good_doc()).tasks] == ["classify"]


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_in_a_file(tmp_path_factory: Any, data: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("bytes")) / "runner.yaml"
    path.write_bytes(data)
    started = time.monotonic()
    with contextlib.suppress(ConfigError):
        load_config(path)
    assert time.monotonic() - started < 2.0


def test_an_alias_bomb_is_refused_at_once_and_never_echoed() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    started = time.monotonic()
    try:
        parse_yaml("\n".join(lines))
    except ConfigError as exc:
        assert "aliases are not accepted (*a0)" in str(exc)
        assert "x, x" not in str(exc)
    else:
        raise AssertionError("an alias was accepted")
    assert time.monotonic() - started < 0.5
