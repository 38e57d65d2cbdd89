"""Models and inventories for rollouts of the role inference_runtime on a simulated fleet.

Three versions of one small real model (tests/onnx_models.py, conv-bn-relu on
[1, 3, 16, 16]): v1, v2 (the same network, another file: a new version to roll
out) and v3 (a bias flipped: it runs, but its output no longer matches the
reference pair made from v1's numpy reference). Used by the sim tests and by
benchmarks/engines_rollout.py.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import yaml
from onnx import numpy_helper
from tests.onnx_models import write_conv_bn_relu
from tests.simfleet import REPO

MODEL = "det"
SHAPES = {"input": [1, 3, 16, 16]}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_versions(directory: Path) -> dict[str, Path]:
    """det v1, v2, v3 ONNX files and the reference pair, under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    generated = write_conv_bn_relu(directory, "det-1.onnx")
    feeds = generated.random_inputs(seed=7)
    np.save(directory / "det-ref-input.npy", feeds["input"])
    np.save(directory / "det-ref-output.npy", generated.reference(feeds)["output"])

    v2 = onnx.load(str(generated.path))
    v2.doc_string = "det version 2: same network, retrained checkpoint stand-in"
    onnx.save(v2, str(directory / "det-2.onnx"))

    v3 = onnx.load(str(generated.path))
    v3.doc_string = "det version 3: a bad export (bias sign flipped)"
    for init in v3.graph.initializer:
        if init.name == "b":
            init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), "b"))
    onnx.save(v3, str(directory / "det-3.onnx"))
    return {
        "1": directory / "det-1.onnx",
        "2": directory / "det-2.onnx",
        "3": directory / "det-3.onnx",
        "ref_input": directory / "det-ref-input.npy",
        "ref_output": directory / "det-ref-output.npy",
    }


def model_entry(files: dict[str, Path], version: str, **overrides: Any) -> dict[str, Any]:
    """One inference_runtime_models entry for det ``version``."""
    entry: dict[str, Any] = {
        "name": MODEL,
        "version": version,
        "source": str(files[version]),
        "sha256": sha256(files[version]),
        "precision": "fp16",
        "shapes": SHAPES,
        # a modest frame rate: a sim host has ~37-100 ms of RT time per second
        "deadline_ms": 50,
        "period_ms": 50,
        "priority": 80,
        "sla": {"window_s": 30, "target_pct": 99.0},
        "reference": {
            "input": str(files["ref_input"]),
            "output": str(files["ref_output"]),
            "rtol": 1e-3,
            "atol": 1e-4,
        },
    }
    entry.update(overrides)
    return entry


def snapshot_source(directory: Path) -> Path:
    """A copy of what the jetson-rt wheel is built from (see build_wheelhouse.py)."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, directory / name)
    shutil.copytree(
        REPO / "runtime",
        directory / "runtime",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
    )
    return directory


def prepare_inventory(inventory_dir: Path) -> None:
    """The repository's sim group_vars beside a fleet's generated hosts.yml."""
    group_vars = inventory_dir / "group_vars"
    if group_vars.exists():
        shutil.rmtree(group_vars)
    shutil.copytree(REPO / "inventories" / "sim" / "group_vars", group_vars)


def set_group_models(
    inventory_dir: Path, group: str, models: list[dict[str, Any]], **extra: Any
) -> None:
    """Write ``inference_runtime_models`` (and extra variables) for one inventory group."""
    path = inventory_dir / "group_vars" / f"{group}.yml"
    data = yaml.safe_load(
        (REPO / "inventories" / "sim" / "group_vars" / f"{group}.yml").read_text()
    )
    data = {**(data or {}), "inference_runtime_models": models, **extra}
    path.write_text("---\n" + yaml.safe_dump(data, sort_keys=False))
