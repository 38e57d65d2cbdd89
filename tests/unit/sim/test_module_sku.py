"""A simulated host can be made another Orin module (control/module): its device tree says so."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from jetson_rt.sim.kernel import Dir, File, KernelError, Node, SimKernel


def compatible(kernel: SimKernel) -> list[str]:
    current: Node = kernel.tree()
    for part in ["sys", "firmware", "devicetree", "base", "compatible"]:
        assert isinstance(current, Dir)
        current = current.children()[part]
    assert isinstance(current, File)
    return [entry for entry in current.read().split("\0") if entry]


def test_module_part_number_changes_and_survives_a_reload(tmp_path: Path) -> None:
    kernel = SimKernel.load("orin-nano-02", tmp_path / "kernel.json")
    assert "nvidia,p3767-0005" in compatible(kernel)
    kernel.set_module("p3767-0003\n")
    assert compatible(kernel) == [
        "nvidia,p3768-0000+p3767-0003-super",
        "nvidia,p3767-0003",
        "nvidia,tegra234",
    ]
    again = SimKernel.load("orin-nano-02", tmp_path / "kernel.json")
    assert "nvidia,p3767-0003" in compatible(again)


def test_unknown_part_number_is_refused(tmp_path: Path) -> None:
    kernel = SimKernel.load("orin-nano-03", tmp_path / "kernel.json")
    with pytest.raises(KernelError) as info:
        kernel.set_module("p9999-0001")
    assert info.value.errno == errno.EINVAL
    assert "nvidia,p3767-0005" in compatible(kernel)
