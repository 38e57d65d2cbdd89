"""The simulated fleet's PREEMPT_RT kernel, published as a kernel artifact.

NVIDIA's rt-kernel apt repository cannot be reached from a simulated fleet, so
``jetson-rt sim up`` packs the simulated RT kernel (an image the sim's boot loader
boots with ``/sys/kernel/realtime`` = 1, its module tree and its ``.config``) into an
artifact in the same format ``rt_kernel_build`` produces, and names it in the fleet's
inventory. The sim group's variables point the ``rt_kernel`` role's ``artifact``
method at it, so ``site.yml`` installs, boots and health-checks it like any prebuilt
kernel: copied to the host, checked against its SHA256SUMS there, added as the
``real-time`` candidate entry, reverted by the play or the boot guard when it fails.

The artifact is reproducible: the same recipe gives the same bytes and sha256, so a
re-created fleet does not make a second run of ``site.yml`` reinstall the kernel.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from jetson_rt import kernel_artifact
from jetson_rt.platform import parse_nv_tegra_release
from jetson_rt.sim import bootloader
from jetson_rt.sim import hardware as hw


def _l4t_release() -> str:
    """The L4T release the simulated hosts report in /etc/nv_tegra_release ("36.4.3")."""
    parsed = parse_nv_tegra_release(hw.NV_TEGRA_RELEASE)
    if parsed is None:
        raise ValueError("the simulated nv_tegra_release does not parse")
    return parsed.release


L4T_RELEASE = _l4t_release()
CONFIG = (
    'CONFIG_LOCALVERSION="-rt-tegra"\n'
    "CONFIG_PREEMPT_RT=y\n"
    "CONFIG_NO_HZ_FULL=y\n"
    "CONFIG_RCU_NOCB_CPU=y\n"
    "CONFIG_HZ_1000=y\n"
    "CONFIG_CPU_ISOLATION=y\n"
)
ARTIFACT_NAME = f"sim-rt-kernel-{L4T_RELEASE}-{hw.RT_RELEASE}.tar.gz"


def _modules(root: Path, release: str) -> None:
    """The module tree: one file per module the stock kernel loads, each stamped with the
    RT kernel's vermagic (what ``rt_kernel_build``'s audit reads)."""
    kernel = root / "lib" / "modules" / release / "kernel"
    kernel.mkdir(parents=True)
    for name, _size in hw.MODULES:
        (kernel / f"{name}.ko").write_text(
            f"vermagic={release} SMP preempt_rt mod_unload modversions aarch64\n"
        )


def publish(directory: Path) -> tuple[Path, str]:
    """Write the simulated RT kernel artifact into ``directory``; returns (path, sha256)."""
    directory.mkdir(parents=True, exist_ok=True)
    release = hw.RT_RELEASE
    with tempfile.TemporaryDirectory(prefix=".rt-kernel-", dir=directory) as tmp:
        src = Path(tmp)
        image = src / "Image"
        image.write_text(bootloader.make_image(release, realtime=True))
        config = src / "config"
        config.write_text(CONFIG)
        _modules(src / "modules", release)
        members = kernel_artifact.collect_members(image, config, modules_root=src / "modules")
        manifest = kernel_artifact.build_manifest(
            members, l4t_release=L4T_RELEASE, kernel_release=release, config=config
        )
        dest = directory / ARTIFACT_NAME
        sha256 = kernel_artifact.pack(members, manifest, dest)
    for stale in directory.glob("sim-rt-kernel-*.tar.gz"):
        if stale != dest:
            stale.unlink()
    return dest, sha256
