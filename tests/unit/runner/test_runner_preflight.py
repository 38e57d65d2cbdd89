"""Host checks before startup: DLA cores (never assumed) and OpenCV for cameras."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jetson_rt.errors import PlatformError
from jetson_rt.runner.config import parse_config
from jetson_rt.runner.preflight import host_problems
from jetson_rt.runner.service import Runner
from jetson_rt.runner.sources import camera_available


def dla_doc(base_config: Callable[..., dict[str, Any]], core: int | None) -> dict[str, Any]:
    doc = base_config()
    options = {} if core is None else {"dla_core": core}
    doc["models"]["seg"] = {
        "backend": "tensorrt",
        "path": "seg_int8_dla.plan",
        "device": "dla",
        "options": options,
    }
    return doc


def device_tree(root: Path, statuses: list[str]) -> None:
    """A captured device tree with ``nvdla`` nodes (AGX Orin has two; no Jetson here)."""
    base = root / "sys/firmware/devicetree/base"
    (base / "model").parent.mkdir(parents=True, exist_ok=True)
    (base / "model").write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\0")
    for index, status in enumerate(statuses):
        node = base / f"bus@0/nvdla{index}@{0x15880000 + index * 0x40000:x}"
        node.mkdir(parents=True)
        (node / "status").write_bytes(status.encode() + b"\0")


def test_a_dla_model_on_a_host_without_dla_is_refused_before_loading(
    base_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = parse_config(dla_doc(base_config, None))
    problems = host_problems(config, root=str(tmp_path))
    assert len(problems) == 1
    assert problems[0].startswith("models.seg.device: dla, but this host has no usable DLA core")
    with pytest.raises(PlatformError, match=r"models\.seg\.device"):
        Runner(config, platform_root=str(tmp_path)).run(max_inferences=1)


def test_dla_cores_are_counted_from_the_device_tree(
    base_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    device_tree(tmp_path, ["okay", "okay"])
    assert host_problems(parse_config(dla_doc(base_config, 1)), root=str(tmp_path)) == []
    problems = host_problems(parse_config(dla_doc(base_config, 2)), root=str(tmp_path))
    assert problems == ["models.seg.options.dla_core: 2, but this host has 2 DLA core(s) (0-1)"]


def test_fused_off_dla_nodes_count_as_none(
    base_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    device_tree(tmp_path, ["disabled", "disabled"])
    problems = host_problems(parse_config(dla_doc(base_config, None)), root=str(tmp_path))
    assert "no usable DLA core" in problems[0]


def test_a_camera_task_fed_by_the_embedding_program_needs_no_opencv(
    base_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    doc = base_config()
    doc["tasks"][0]["input"] = {"source": "v4l2"}
    config = parse_config(doc)
    assert host_problems(config, str(tmp_path), frozenset({"classify"})) == []
    available, _ = camera_available()
    assert (host_problems(config, str(tmp_path)) == []) is available
