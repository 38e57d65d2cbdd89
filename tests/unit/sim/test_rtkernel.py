"""The simulated PREEMPT_RT kernel artifact `jetson-rt sim up` publishes."""

from __future__ import annotations

import tarfile
from pathlib import Path

from jetson_rt import kernel_artifact, platform
from jetson_rt.sim import bootloader, rtkernel
from jetson_rt.sim import hardware as hw


def test_artifact_is_reproducible(tmp_path: Path) -> None:
    first, sha_first = rtkernel.publish(tmp_path / "a")
    second, sha_second = rtkernel.publish(tmp_path / "b")
    assert sha_first == sha_second
    assert first.read_bytes() == second.read_bytes()
    # publishing again in place keeps one artifact
    rtkernel.publish(tmp_path / "a")
    assert [p.name for p in (tmp_path / "a").iterdir()] == [first.name]


def test_artifact_passes_the_checks_rt_kernel_makes(tmp_path: Path) -> None:
    path, sha256 = rtkernel.publish(tmp_path / "out")
    # the L4T release the simulated hosts report, as jetson_facts reads it
    release = platform.parse_nv_tegra_release(hw.NV_TEGRA_RELEASE)
    assert release is not None and release.release == "36.4.3"
    manifest = kernel_artifact.verify(
        path, sha256, tmp_path / "x", l4t_release=release.release, require_realtime=True
    )
    assert manifest["kernel_release"] == hw.RT_RELEASE
    assert manifest["realtime"] is True
    image = bootloader.parse_image((tmp_path / "x" / "Image").read_text())
    assert image is not None and image.realtime and image.release == hw.RT_RELEASE
    # every module the stock kernel loads, so the health check finds them after the boot
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
    for name, _size in hw.MODULES:
        assert f"modules/lib/modules/{hw.RT_RELEASE}/kernel/{name}.ko" in names
