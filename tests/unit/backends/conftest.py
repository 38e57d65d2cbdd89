"""Fixtures for backend tests: the generated ONNX models."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/onnx_models.py is shared by every test package; make it importable
# however pytest was started.
_TESTS_DIR = str(Path(__file__).resolve().parents[2])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

import onnx_models  # noqa: E402


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, onnx_models.GeneratedModel]:
    return onnx_models.write_all(tmp_path_factory.mktemp("models"))
