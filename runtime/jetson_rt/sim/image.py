"""The container image of a simulated Jetson, built from Debian packages.

Two caches: the debootstrap root file system (keyed by suite and package list)
as a tarball, and the finished image in podman (keyed by a hash of the whole
recipe: packages, the files under ``files/``, this module and the hardware
model). Changing any of them rebuilds only what depends on it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from jetson_rt.errors import SimError
from jetson_rt.log import logger
from jetson_rt.sim import bootloader, hardware

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "sudo",
    "iproute2",
    "procps",
    "kmod",
    "ca-certificates",
    "gnupg",
    "irqbalance",
    # the runner's video input (jetson_rt.runner.gst): GStreamer through PyGObject
    "python3-gi",
    "python3-gst-1.0",
    "gir1.2-gstreamer-1.0",
    "gir1.2-gst-plugins-base-1.0",
    "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-good",
    # dconf-service (pulled in by plugins-good) depends only on the virtual
    # dbus-session-bus, which debootstrap cannot resolve: name its provider
    "dbus-user-session",
)
IMAGE_REPO = "localhost/jetson-rt-sim"
FILES = Path(__file__).parent / "files"
CACHE_DIR = Path("/var/cache/jetson-rt-sim")
SIM_LIB = "usr/lib/jetson-rt-sim"

# (file under files/, destination in the image, mode)
INSTALL = (
    ("sim-init", f"{SIM_LIB}/sim-init", 0o755),
    ("sim-fault", f"{SIM_LIB}/sim-fault", 0o755),
    ("sim-fault.service", "lib/systemd/system/sim-fault.service", 0o644),
    ("nvpmodel", "usr/sbin/nvpmodel", 0o755),
    ("nvpmodel.service", "lib/systemd/system/nvpmodel.service", 0o644),
    ("jetson_clocks", "usr/bin/jetson_clocks", 0o755),
    ("nvbootctrl", "usr/sbin/nvbootctrl", 0o755),
    ("nvfancontrol", "usr/sbin/nvfancontrol", 0o755),
    ("nvfancontrol.service", "lib/systemd/system/nvfancontrol.service", 0o644),
    (
        "nv-l4t-bootloader-config.service",
        "lib/systemd/system/nv-l4t-bootloader-config.service",
        0o644,
    ),
    ("nvzramconfig.sh", "etc/systemd/nvzramconfig.sh", 0o755),
    ("nvzramconfig.service", "lib/systemd/system/nvzramconfig.service", 0o644),
    ("gdm.service", "lib/systemd/system/gdm.service", 0o644),
    ("extlinux.conf", "boot/extlinux/extlinux.conf", 0o644),
)
# Programs replaced by the sim's versions, kept as <name>.distrib by dpkg-divert.
DIVERTED = (
    ("uname", "usr/bin/uname"),
    ("swapon", "usr/sbin/swapon"),
    ("swapoff", "usr/sbin/swapoff"),
)
ENABLED_UNITS = (
    "ssh",
    "nvpmodel",
    "nvzramconfig",
    "gdm",
    "sim-fault",
    "irqbalance",
    "nv-l4t-bootloader-config",
    "nvfancontrol",
)
SIM_USER = "jetson"


def nvpmodel_conf() -> str:
    """/etc/nvpmodel.conf in the layout of nvpmodel_p3767_0003_super.conf."""
    lines = [
        "# Simulated Orin Nano power modes (layout of nvpmodel_p3767_0003_super.conf)",
        "< PARAM TYPE=FILE NAME=CPU_ONLINE >",
        *(f"CORE_{cpu} /sys/devices/system/cpu/cpu{cpu}/online" for cpu in range(hardware.CPUS)),
        "< PARAM TYPE=CLOCK NAME=CPU_A78_0 >",
        "FREQ_TABLE /sys/devices/system/cpu/cpufreq/policy0/scaling_available_frequencies",
        "MAX_FREQ /sys/devices/system/cpu/cpufreq/policy0/scaling_max_freq",
        "< PARAM TYPE=CLOCK NAME=CPU_A78_1 >",
        "MAX_FREQ /sys/devices/system/cpu/cpufreq/policy4/scaling_max_freq",
        "< PARAM TYPE=CLOCK NAME=GPU >",
        "MAX_FREQ /sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu/max_freq",
        "",
    ]
    for mode_id, name, online, cpu_max, gpu_max in hardware.POWER_MODES:
        lines.append(f"< POWER_MODEL ID={mode_id} NAME={name} >")
        lines.extend(f"CPU_ONLINE CORE_{cpu} {int(cpu < online)}" for cpu in range(hardware.CPUS))
        lines.append(f"CPU_A78_0 MAX_FREQ {cpu_max}")
        if online > 4:
            lines.append(f"CPU_A78_1 MAX_FREQ {cpu_max}")
        lines.append(f"GPU MAX_FREQ {gpu_max}")
        lines.append("")
    lines.append(f"< PM_CONFIG DEFAULT={hardware.POWER_MODE_DEFAULT} >")
    return "\n".join(lines) + "\n"


def recipe_hash() -> str:
    digest = hashlib.sha256()
    digest.update(" ".join((SUITE, MIRROR, *PACKAGES)).encode())
    for path in sorted(FILES.iterdir()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for module in (Path(__file__), Path(hardware.__file__), Path(bootloader.__file__)):
        digest.update(module.read_bytes())
    return digest.hexdigest()[:12]


def image_tag() -> str:
    return f"{IMAGE_REPO}:{recipe_hash()}"


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    logger.debug("running %s", " ".join(cmd))
    result = subprocess.run(cmd, text=True, capture_output=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise SimError(
            f"{' '.join(cmd[:3])} failed ({result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-2000:]}"
        )
    return result  # type: ignore[no-any-return]


def image_exists(tag: str) -> bool:
    return subprocess.run(["podman", "image", "exists", tag], check=False).returncode == 0


def _base_tarball() -> Path:
    key = hashlib.sha256(" ".join((SUITE, MIRROR, *PACKAGES)).encode()).hexdigest()[:12]
    tarball = CACHE_DIR / f"rootfs-{SUITE}-{key}.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        raise SimError("debootstrap is not installed (apt-get install debootstrap)")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
        rootfs = Path(tmp) / "rootfs"
        logger.info("debootstrap %s with %d packages (about a minute)", SUITE, len(PACKAGES))
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(rootfs),
                MIRROR,
            ]
        )
        partial = tarball.with_suffix(".partial")
        _run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."])
        partial.replace(tarball)
    return tarball


def _customise(rootfs: Path) -> None:
    def put(rel: str, text: str | bytes, mode: int = 0o644) -> None:
        target = rootfs / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)
        target.chmod(mode)

    def chroot(*cmd: str) -> None:
        _run(["chroot", str(rootfs), *cmd])

    for name, dest in DIVERTED:
        chroot(
            "dpkg-divert",
            "--local",
            "--rename",
            "--divert",
            f"/{dest}.distrib",
            "--add",
            f"/{dest}",
        )
        put(dest, (FILES / name).read_bytes(), 0o755)
    for name, dest, mode in INSTALL:
        put(dest, (FILES / name).read_bytes(), mode)
    put("etc/nv_tegra_release", hardware.NV_TEGRA_RELEASE)
    put("etc/nvpmodel/nvpmodel_p3767_0003_super.conf", nvpmodel_conf())
    (rootfs / "etc/nvpmodel.conf").symlink_to("nvpmodel/nvpmodel_p3767_0003_super.conf")
    (rootfs / "var/lib/nvpmodel").mkdir(parents=True, exist_ok=True)
    put("boot/Image", bootloader.make_image())
    put("boot/initrd", b"\x1f\x8b simulated initrd\n")
    for mountpoint in (".sim/kernel", ".sim/origsys"):
        (rootfs / mountpoint).mkdir(parents=True, exist_ok=True)
    put(
        "etc/apt/sources.list",
        f"deb {MIRROR} {SUITE} main\ndeb {MIRROR} {SUITE}-updates main\n"
        f"deb http://deb.debian.org/debian-security {SUITE}-security main\n",
    )
    put(
        "etc/ssh/sshd_config.d/jetson-rt-sim.conf",
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n"
        "PermitRootLogin prohibit-password\n",
    )
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    put("etc/machine-id", "")
    put("etc/hostname", "")
    chroot("useradd", "--create-home", "--shell", "/bin/bash", "--groups", "sudo", SIM_USER)
    chroot("install", "-d", "-o", SIM_USER, "-g", SIM_USER, "-m", "700", f"/home/{SIM_USER}/.ssh")
    put(f"etc/sudoers.d/{SIM_USER}", f"{SIM_USER} ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    # irqbalance skips containers; a Jetson runs it, and tuning has to stop it.
    put(
        "etc/systemd/system/irqbalance.service.d/jetson-rt-sim.conf",
        "[Unit]\nConditionVirtualization=\n",
    )
    chroot("systemctl", "enable", *ENABLED_UNITS)
    chroot("systemctl", "set-default", "graphical.target")
    # Units that need hardware or a real console and only fail in a container.
    chroot(
        "systemctl",
        "mask",
        "getty@tty1.service",
        "serial-getty@console.service",
        "systemd-udevd.service",
        "systemd-modules-load.service",
    )


def build(force: bool = False) -> str:
    """Build the image unless an image of the same recipe exists; returns its tag."""
    tag = image_tag()
    if image_exists(tag) and not force:
        logger.info("sim image %s is up to date", tag)
        return tag
    tarball = _base_tarball()
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
        rootfs = Path(tmp) / "rootfs"
        rootfs.mkdir()
        _run(["tar", "-C", str(rootfs), "--numeric-owner", "-xf", str(tarball)])
        _customise(rootfs)
        logger.info("importing %s", tag)
        tar = subprocess.Popen(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE
        )
        _run(
            [
                "podman",
                "import",
                "--change",
                f'CMD ["/{SIM_LIB}/sim-init"]',
                "--change",
                "STOPSIGNAL SIGRTMIN+3",
                "-",
                tag,
            ],
            stdin=tar.stdout,
        )
        tar.wait()
    return tag


def remove_images() -> None:
    """Every sim image and the rootfs cache."""
    listed = subprocess.run(
        ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}", IMAGE_REPO],
        capture_output=True,
        text=True,
        check=False,
    )
    for tag in listed.stdout.split():
        subprocess.run(["podman", "rmi", "-f", tag], capture_output=True, check=False)
    shutil.rmtree(CACHE_DIR, ignore_errors=True)
