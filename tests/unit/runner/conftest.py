"""Fixtures for the runner tests: generated ONNX models and configuration files."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

# tests/onnx_models.py and this folder's helpers, however pytest was started.
_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parents[1]), str(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import onnx_models  # noqa: E402


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, onnx_models.GeneratedModel]:
    return onnx_models.write_all(tmp_path_factory.mktemp("runner-models"))


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture
def base_config(
    models: dict[str, onnx_models.GeneratedModel], tmp_path: Path
) -> Callable[..., dict[str, Any]]:
    """A minimal valid configuration document (dict) over the MLP; keyword overrides merge in."""

    def make(**overrides: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schema_version": 1,
            "models": {
                # A generated plain ONNX file, not a built artifact: no manifest to check.
                "mlp": {
                    "backend": "onnxruntime",
                    "path": str(models["mlp"].path),
                    "verify": False,
                },
            },
            "tasks": [{"name": "classify", "tiers": ["mlp"], "deadline_ms": 50}],
            "warmup": {"min_iterations": 5, "max_iterations": 50, "window": 5, "max_cv": 5.0},
            # Tests run inside pytest's process: no real-time settings unless a test asks.
            "rt": {"priority": 0, "cpus": "all", "mlockall": False},
            "watchdog": {"timeout_ms": 2000},
            "stats": {"path": str(tmp_path / "stats.json"), "interval_s": 0.1},
            "thermal": {"enabled": False},
        }
        return _merge(doc, overrides)

    return make


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    def write(doc: dict[str, Any]) -> Path:
        path = tmp_path / "runner.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return path

    return write
