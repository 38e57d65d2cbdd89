"""Fixtures for the report tests; the builders live in runs.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.unit.report.runs import RunBuilder, build_mixed_run


@pytest.fixture
def run_builder(tmp_path: Path) -> Callable[..., RunBuilder]:
    def make(name: str = "run", run_id: str = "20261126T060000Z") -> RunBuilder:
        return RunBuilder(tmp_path / name, run_id)

    return make


@pytest.fixture
def mixed_run(run_builder: Callable[..., RunBuilder]) -> RunBuilder:
    """One host in every state the report must survive."""
    return build_mixed_run(run_builder())
