"""The simulated fleet's demo model: committed files, the inventory that names them, and
their numbers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from tools import sim_models

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventories" / "sim"


def _models() -> list[dict[str, object]]:
    data = yaml.safe_load((INVENTORY / "group_vars" / "sim.yml").read_text())
    models: list[dict[str, object]] = data["inference_runtime_models"]
    return models


def test_committed_files_are_what_the_tool_writes(tmp_path: Path) -> None:
    written = sim_models.write(tmp_path)
    for name, path in written.items():
        assert (INVENTORY / "models" / name).read_bytes() == path.read_bytes(), name


def test_inventory_names_the_files_with_their_sha256() -> None:
    (model,) = _models()
    source = INVENTORY / str(model["source"])
    assert hashlib.sha256(source.read_bytes()).hexdigest() == model["sha256"]
    reference = model["reference"]
    assert isinstance(reference, dict)
    for key in ("input", "output"):
        assert (INVENTORY / reference[key]).is_file()


def test_reference_output_is_what_onnxruntime_computes() -> None:
    ort = pytest.importorskip("onnxruntime")
    (model,) = _models()
    reference = model["reference"]
    assert isinstance(reference, dict)
    session = ort.InferenceSession(
        str(INVENTORY / str(model["source"])), providers=["CPUExecutionProvider"]
    )
    feed = np.load(INVENTORY / reference["input"])
    (output,) = session.run(None, {"input": feed})
    expected = np.load(INVENTORY / reference["output"])
    np.testing.assert_allclose(output, expected, rtol=reference["rtol"], atol=reference["atol"])
