"""A boot loader that picks what a simulated host boots, as L4TLauncher does.

It follows NVIDIA edk2-nvidia ``Silicon/NVIDIA/Application/L4TLauncher`` at r36.5.1
(``L4TLauncher.c``, ``L4TRootfsValidation.c``; ``ProcessExtLinuxConfig`` is the same
from r36.3.0 on). Line numbers below are of those files at that tag.

* Rootfs validation first (L4TRootfsValidation.c 609-731): each boot of slot A
  takes one from its retry count; at 0 the slot is marked unbootable and the
  recovery kernel boots, and keeps booting until the slot is made bootable again.
  A successful boot puts the count back (nv-l4t-bootloader-config.service runs
  ``nvbootctrl verify``; the sim's stand-in writes ``verify`` to the control file).
* ``/boot/extlinux/extlinux.conf`` is read by
  :func:`~ansible_collections.jetson_rt.fleet.plugins.module_utils.extlinux.loader_read`,
  the project's single reading of L4TLauncher's rules (the extlinux module uses the
  same line and key rules, and refuses what is ambiguous).
* The DEFAULT entry is booted (ExtLinuxBoot, 1390-1650): a missing INITRD fails the
  entry; a missing FDT is not fatal (1510-1514) and then OVERLAYS are skipped; with an FDT,
  every comma-separated overlay must load and be a device tree, or the entry fails
  (1531-1573); a FDT that is not a device tree fails it; a missing or unloadable
  LINUX fails it. An entry without APPEND makes r36.5.1 take StrSize of NULL (1452):
  the loader faults and the board resets.
* The command line is the APPEND with its first ``${cbootargs}`` deleted, then the
  platform's arguments appended (1279-1287, 1459-1468): no ``root=`` comes from
  the loader. A kernel without ``root=`` cannot mount its root file system: it panics.
* When the entry fails, L4TLauncher does **not** try another entry: it boots the
  ``kernel`` partition's image with that image's own command line (2740-2746, 2787-2796), and
  resets the board if that fails too.

A simulated kernel image is a small text file declaring its release and config::

    JETSON_RT_SIM_KERNEL=1
    RELEASE=5.15.148-rt-tegra
    VERSION=#1 SMP PREEMPT_RT Wed Jan  8 01:49:37 PST 2025
    CONFIG_PREEMPT_RT=y
    MODULES=nvgpu nvethernet nvmap
    BOOT=ok            # ok | panic | hang

``BOOT=panic`` panics after early user space has run (as a broken out-of-tree
module does when it is probed), ``BOOT=hang`` stops there forever.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from jetson_rt.sim import hardware as hw

IMAGE_MAGIC = "JETSON_RT_SIM_KERNEL=1"
BOOT_OUTCOMES = ("ok", "panic", "hang")
# What a boot can end in: an image's BOOT=, "reset" (the loader faulted), "recovery".
RECORD_OUTCOMES = (*BOOT_OUTCOMES, "reset", "recovery")


@dataclass(frozen=True)
class SimImage:
    release: str
    version: str
    realtime: bool
    modules: tuple[str, ...]
    boot: str


def make_image(
    release: str = hw.STOCK_RELEASE,
    *,
    realtime: bool = False,
    boot: str = "ok",
    modules: tuple[str, ...] | None = None,
    version: str | None = None,
) -> str:
    """The text of a simulated kernel image."""
    if boot not in BOOT_OUTCOMES:
        raise ValueError(f"boot must be one of {BOOT_OUTCOMES}, not {boot!r}")
    preempt = "PREEMPT_RT" if realtime else "PREEMPT"
    lines = [
        IMAGE_MAGIC,
        f"RELEASE={release}",
        f"VERSION={version or f'#1 SMP {preempt} Wed Jan  8 01:49:37 PST 2025'}",
        f"CONFIG_PREEMPT_RT={'y' if realtime else 'n'}",
        f"CONFIG_PREEMPT={'n' if realtime else 'y'}",
        "CONFIG_NO_HZ_FULL=y",
        f"MODULES={' '.join(modules if modules is not None else (m for m, _ in hw.MODULES))}",
        f"BOOT={boot}",
    ]
    return "\n".join(lines) + "\n"


def parse_image(text: str | None) -> SimImage | None:
    """A simulated kernel image, or None for anything that is not one."""
    if not text or not text.startswith(IMAGE_MAGIC):
        return None
    values: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    if "RELEASE" not in values:
        return None
    boot = (values.get("BOOT") or "ok").split()[0]
    return SimImage(
        release=values["RELEASE"],
        version=values.get("VERSION", "#1 SMP PREEMPT"),
        realtime=values.get("CONFIG_PREEMPT_RT") == "y",
        modules=tuple(values.get("MODULES", "").split()),
        boot=boot if boot in BOOT_OUTCOMES else "panic",
    )


# What sim-init passes for a file that begins with the device tree magic (0xd00dfeed).
FDT_MARK = "FDT"


def _reader() -> ModuleType:
    """The collection's extlinux module_utils (collections/ is on the path in a checkout)."""
    name = "ansible_collections.jetson_rt.fleet.plugins.module_utils.extlinux"
    try:
        return importlib.import_module(name)
    except ImportError:
        collections = Path(__file__).resolve().parents[3] / "collections"
        if str(collections) not in sys.path:
            sys.path.append(str(collections))
        return importlib.import_module(name)


_extlinux = _reader()
loader_read: Callable[[str], Any] = _extlinux.loader_read
loader_path: Callable[[str], str] = _extlinux.loader_path


@dataclass
class RootfsState:
    """Slot A's status and retry count, as L4TRootfsValidation.c keeps them."""

    retry_count: int = hw.ROOTFS_RETRY_MAX
    status: str = "normal"  # normal | unbootable
    retry_max: int = hw.ROOTFS_RETRY_MAX

    @classmethod
    def from_state(cls, data: dict[str, Any] | None) -> RootfsState:
        data = data or {}
        return cls(
            retry_count=int(data.get("retry_count", hw.ROOTFS_RETRY_MAX)),
            status=str(data.get("status", "normal")),
            retry_max=int(data.get("retry_max", hw.ROOTFS_RETRY_MAX)),
        )

    def validate(self) -> bool:
        """ValidateRootfsStatus for one slot: True to boot it, False for recovery."""
        if self.status == "unbootable":  # IsValidRootfs() is false (689)
            return False
        if self.retry_count != 0:  # IsRootfsSlotBootable, DecreaseRootfsRetryCount (718)
            self.retry_count -= 1
            return True
        self.status = "unbootable"  # no rootfs B: recovery (729-744)
        return False

    def verified(self) -> None:
        """A successful boot: ``nvbootctrl verify`` restores the retry count."""
        if self.status == "normal":
            self.retry_count = self.retry_max

    def reset(self) -> None:
        """The UEFI menu (or an OTA) marks the slot bootable again."""
        self.status, self.retry_count = "normal", self.retry_max


@dataclass
class BootRecord:
    """What was booted and how it went."""

    label: str | None
    linux: str | None
    cmdline: str
    release: str
    version: str
    realtime: bool
    modules: list[str]
    outcome: str
    attempts: list[str] = field(default_factory=list)
    at: float = field(default_factory=time.time)

    def as_state(self) -> dict[str, Any]:
        return asdict(self)

    def log_line(self, boot_number: int) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at))
        tried = "; ".join(self.attempts)
        return (
            f"{stamp} boot {boot_number}: {self.outcome} label={self.label} "
            f"linux={self.linux} release={self.release} rt={int(self.realtime)}"
            + (f" [{tried}]" if tried else "")
        )


def _partition_boot(which: str, cmdline: str, attempts: list[str]) -> BootRecord:
    """An Android-style boot image from the ``kernel`` or ``recovery`` partition."""
    image = parse_image(make_image())
    assert image is not None
    return BootRecord(
        label=None,
        linux=f"{which} partition",
        cmdline=f"{cmdline} {hw.PLATFORM_ARGS}",
        release=image.release,
        version=image.version,
        realtime=False,
        modules=list(image.modules),
        outcome="recovery" if which == "recovery" else "ok",
        attempts=attempts,
    )


def _load(path: str | None, files: dict[str, str | None]) -> str | None:
    if path is None:
        return None
    return files.get(loader_path(path))


def _fdt_failure(entry: Any, files: dict[str, str | None], attempts: list[str]) -> str | None:
    fdt = _load(entry.fdt, files)
    if fdt is None:
        attempts.append(f"{entry.label}: cannot load FDT {entry.fdt}: booting without it")
        return None
    if fdt != FDT_MARK:
        return f"FDT {entry.fdt} is not a device tree"
    overlays = entry.overlays.split(",") if entry.overlays is not None else []
    for overlay in overlays:
        text = _load(overlay, files)
        if text is None:
            return f"cannot load overlay {overlay!r}"
        if text != FDT_MARK:
            return f"overlay {overlay!r} has a bad header"
    return None


def _entry_failure(entry: Any, files: dict[str, str | None], attempts: list[str]) -> str | None:
    """Why ExtLinuxBoot fails to start ``entry``, or None when its kernel starts."""
    if entry.initrd is not None and _load(entry.initrd, files) is None:
        return f"cannot load INITRD {entry.initrd}"
    if entry.fdt is not None:
        failure = _fdt_failure(entry, files, attempts)
        if failure is not None:
            return failure
    if entry.linux is None:
        return "no LINUX"
    text = _load(entry.linux, files)
    if text is None:
        return f"cannot load LINUX {entry.linux}"
    if parse_image(text) is None:
        return f"LINUX {entry.linux} is not a bootable image"
    return None


def choose(
    extlinux: str | None,
    files: dict[str, str | None],
    rootfs: RootfsState | None = None,
) -> BootRecord:
    """Decide what boots given extlinux.conf, the files it names and slot A's state.

    ``files`` maps each absolute path (as :func:`loader_path` writes it) to its text,
    :data:`FDT_MARK` for a device tree, "" for any other file, or None when it is
    missing. ``rootfs`` is updated as the loader updates its scratch register.
    """
    attempts: list[str] = []
    slot = rootfs if rootfs is not None else RootfsState()
    if not slot.validate():
        attempts.append(
            f"rootfs slot A unbootable (retry count {slot.retry_count} of {slot.retry_max}): "
            "recovery kernel"
        )
        return _partition_boot("recovery", hw.RECOVERY_CMDLINE, attempts)
    if extlinux is None:
        attempts.append("extlinux.conf missing")
        return _partition_boot("kernel", hw.KERNEL_PARTITION_CMDLINE, attempts)
    config = loader_read(extlinux)
    index = config.boot_index
    if index is None:
        attempts.append("extlinux.conf has no entries")
        return _partition_boot("kernel", hw.KERNEL_PARTITION_CMDLINE, attempts)
    entry = config.entries[index]
    if entry.label != config.default:
        attempts.append(f"DEFAULT {config.default!r} matches no LABEL: entry 0")
    failure = _entry_failure(entry, files, attempts)
    if failure is not None:
        attempts.append(f"{entry.label}: {failure}: booting the kernel partition")
        return _partition_boot("kernel", hw.KERNEL_PARTITION_CMDLINE, attempts)
    image = parse_image(_load(entry.linux, files))
    assert image is not None
    if entry.append is None:
        attempts.append(f"{entry.label}: no APPEND: L4TLauncher r36.5.1 faults (StrSize(NULL))")
        cmdline, outcome = hw.PLATFORM_ARGS, "reset"
    else:
        cmdline = " ".join(f"{entry.append} {hw.PLATFORM_ARGS}".split())
        outcome = image.boot
        if outcome == "ok" and "root" not in cmdline_keys(cmdline):
            attempts.append(f"{entry.label}: no root= on the command line, cannot mount root")
            outcome = "panic"
    return BootRecord(
        label=entry.label,
        linux=loader_path(entry.linux),
        cmdline=cmdline,
        release=image.release,
        version=image.version,
        realtime=image.realtime,
        modules=list(image.modules),
        outcome=outcome,
        attempts=attempts,
    )


def cmdline_keys(cmdline: str) -> set[str]:
    return {word.partition("=")[0] for word in cmdline.split() if word.partition("=")[2]}
