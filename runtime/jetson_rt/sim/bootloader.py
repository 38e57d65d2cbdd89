"""A boot loader that picks what a simulated host boots, as L4TLauncher would.

L4TLauncher (NVIDIA edk2-nvidia) reads ``/boot/extlinux/extlinux.conf``, boots the
entry named by DEFAULT, or entry 0 when DEFAULT names no LABEL, and falls back only
when an entry fails to *load* (a missing kernel image or initrd). A kernel that
panics or hangs after hand-off is not retried with another entry. This module is a
separate, deliberately small reading of the file, so the project's own extlinux
editor is tested against an independent parser.

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

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from jetson_rt.sim import hardware as hw

IMAGE_MAGIC = "JETSON_RT_SIM_KERNEL=1"
BOOT_OUTCOMES = ("ok", "panic", "hang")


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


@dataclass
class Entry:
    label: str
    linux: str | None = None
    initrd: str | None = None
    append: str = ""


def parse_extlinux(text: str) -> tuple[str | None, list[Entry]]:
    """DEFAULT and the entries, read the way L4TLauncher reads them."""
    default = None
    entries: list[Entry] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        key, value = key.upper(), value.strip()
        if key == "DEFAULT":
            default = value
        elif key == "LABEL":
            entries.append(Entry(label=value))
        elif entries and key == "LINUX":
            entries[-1].linux = value
        elif entries and key == "INITRD":
            entries[-1].initrd = value
        elif entries and key == "APPEND":
            entries[-1].append = value
    return default, entries[:10]


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


def _kernel_partition(attempts: list[str]) -> BootRecord:
    """L4TLauncher's last resort: the kernel in the A/B kernel partition."""
    image = parse_image(make_image())
    assert image is not None
    return BootRecord(
        label=None,
        linux="kernel partition",
        cmdline=hw.CBOOTARGS,
        release=image.release,
        version=image.version,
        realtime=False,
        modules=list(image.modules),
        outcome="ok",
        attempts=attempts,
    )


def choose(extlinux: str | None, files: dict[str, str | None]) -> BootRecord:
    """Decide what boots given extlinux.conf and the contents of the files it names.

    ``files`` maps each path the entries name to its text, or None when it is
    missing or unreadable.
    """
    attempts: list[str] = []
    if extlinux is None:
        attempts.append("extlinux.conf missing")
        return _kernel_partition(attempts)
    default, entries = parse_extlinux(extlinux)
    if not entries:
        attempts.append("extlinux.conf has no entries")
        return _kernel_partition(attempts)
    first = next((e for e in entries if e.label == default), None)
    if first is None:
        attempts.append(f"DEFAULT {default!r} matches no LABEL: entry 0")
        first = entries[0]
    order = [first] + ([entries[0]] if first is not entries[0] else [])
    for entry in order:
        image = parse_image(files.get(entry.linux or ""))
        if entry.linux is None or files.get(entry.linux) is None:
            attempts.append(f"{entry.label}: cannot load {entry.linux}")
            continue
        if image is None:
            attempts.append(f"{entry.label}: {entry.linux} is not a bootable image")
            continue
        if entry.initrd and files.get(entry.initrd) is None:
            attempts.append(f"{entry.label}: cannot load {entry.initrd}")
            continue
        cmdline = " ".join(entry.append.replace("${cbootargs}", hw.CBOOTARGS).split())
        outcome = image.boot
        if outcome == "ok" and "root=" not in cmdline:
            attempts.append(f"{entry.label}: no root= on the command line, cannot mount root")
            outcome = "panic"
        return BootRecord(
            label=entry.label,
            linux=entry.linux,
            cmdline=cmdline,
            release=image.release,
            version=image.version,
            realtime=image.realtime,
            modules=list(image.modules),
            outcome=outcome,
            attempts=attempts,
        )
    return _kernel_partition(attempts)
