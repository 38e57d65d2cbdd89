"""The simulated boot loader picks entries the way L4TLauncher does."""

from __future__ import annotations

import pytest

from jetson_rt.sim import hardware as hw
from jetson_rt.sim.bootloader import choose, make_image, parse_extlinux, parse_image

STOCK = make_image()
RT = make_image(hw.RT_RELEASE, realtime=True)


def conf(default: str, *entries: tuple[str, str, str]) -> str:
    lines = ["TIMEOUT 30", f"DEFAULT {default}", "MENU TITLE L4T boot options", ""]
    for label, linux, append in entries:
        lines += [
            f"LABEL {label}",
            f"      MENU LABEL {label} kernel",
            f"      LINUX {linux}",
            "      INITRD /boot/initrd",
            f"      APPEND {append}",
            "",
        ]
    return "\n".join(lines)


PRIMARY = ("primary", "/boot/Image", "${cbootargs} root=/dev/mmcblk0p1 rw rootwait")
REALTIME = (
    "real-time",
    "/boot/Image.real-time",
    "${cbootargs} root=/dev/mmcblk0p1 rw isolcpus=managed_irq,domain,4-5 nohz_full=4-5",
)
FILES = {"/boot/Image": STOCK, "/boot/Image.real-time": RT, "/boot/initrd": ""}


def test_default_entry_boots_with_its_append_and_kernel() -> None:
    record = choose(conf("real-time", PRIMARY, REALTIME), FILES)
    assert record.label == "real-time"
    assert record.realtime and record.release == hw.RT_RELEASE
    assert record.outcome == "ok"
    assert "isolcpus=managed_irq,domain,4-5" in record.cmdline
    # ${cbootargs} is replaced by what UEFI passes, never left literally.
    assert "${cbootargs}" not in record.cmdline
    assert record.cmdline.startswith(hw.CBOOTARGS)


def test_default_matching_no_label_boots_entry_zero() -> None:
    record = choose(conf("no-such-label", REALTIME, PRIMARY), FILES)
    assert record.label == "real-time"
    assert "matches no LABEL" in record.attempts[0]


def test_missing_image_falls_back_to_entry_zero() -> None:
    files = {**FILES, "/boot/Image.real-time": None}
    record = choose(conf("real-time", PRIMARY, REALTIME), files)
    assert record.label == "primary"
    assert not record.realtime
    assert "cannot load /boot/Image.real-time" in record.attempts[0]


def test_missing_initrd_fails_to_load() -> None:
    files = {**FILES, "/boot/initrd": None}
    record = choose(conf("primary", PRIMARY), files)
    assert record.label is None and record.linux == "kernel partition"
    assert "cannot load /boot/initrd" in record.attempts[0]


def test_not_a_bootable_image_falls_back() -> None:
    files = {**FILES, "/boot/Image.real-time": ""}
    record = choose(conf("real-time", PRIMARY, REALTIME), files)
    assert record.label == "primary"
    assert "not a bootable image" in record.attempts[0]


def test_a_panicking_kernel_is_not_retried_with_another_entry() -> None:
    files = {
        **FILES,
        "/boot/Image.real-time": make_image(hw.RT_RELEASE, realtime=True, boot="panic"),
    }
    record = choose(conf("real-time", PRIMARY, REALTIME), files)
    assert record.label == "real-time"
    assert record.outcome == "panic"


def test_hang_outcome() -> None:
    files = {**FILES, "/boot/Image": make_image(boot="hang")}
    assert choose(conf("primary", PRIMARY), files).outcome == "hang"


def test_no_root_argument_cannot_mount_root() -> None:
    record = choose(conf("x", ("x", "/boot/Image", "quiet")), FILES)
    assert record.outcome == "panic"
    assert "no root=" in record.attempts[-1]


def test_missing_or_empty_extlinux_boots_the_kernel_partition() -> None:
    assert choose(None, FILES).linux == "kernel partition"
    assert choose("TIMEOUT 30\n", FILES).linux == "kernel partition"


def test_crlf_and_tabs_and_comments() -> None:
    text = (
        "TIMEOUT 30\r\nDEFAULT rt\r\n# LABEL rt\r\nLABEL rt\r\n\tLINUX /boot/Image.real-time\r\n"
        "\tAPPEND ${cbootargs} root=/dev/nvme0n1p1\r\n"
    )
    default, entries = parse_extlinux(text)
    assert default == "rt"
    assert [(e.label, e.linux) for e in entries] == [("rt", "/boot/Image.real-time")]
    assert choose(text, FILES).realtime


def test_image_round_trip_and_rejects() -> None:
    image = parse_image(make_image("5.15.148-rt-tegra", realtime=True, modules=("nvgpu",)))
    assert image is not None
    assert image.realtime and image.modules == ("nvgpu",) and image.boot == "ok"
    assert image.version.startswith("#1 SMP PREEMPT_RT")
    assert parse_image("\x7fELF....") is None
    assert parse_image(None) is None
    with pytest.raises(ValueError, match="boot must be one of"):
        make_image(boot="explode")
