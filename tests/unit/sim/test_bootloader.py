"""The simulated boot loader boots what L4TLauncher boots.

Each case names the lines of NVIDIA/edk2-nvidia r36.5.1
``Silicon/NVIDIA/Application/L4TLauncher/L4TLauncher.c`` (or ``L4TRootfsValidation.c``)
whose behaviour it checks.
"""

from __future__ import annotations

import pytest

from jetson_rt.sim import hardware as hw
from jetson_rt.sim.bootloader import FDT_MARK, RootfsState, choose, make_image, parse_image

STOCK = make_image()
RT = make_image(hw.RT_RELEASE, realtime=True)
ROOT = "root=/dev/mmcblk0p1 rw rootwait"


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


PRIMARY = ("primary", "/boot/Image", f"${{cbootargs}} {ROOT}")
REALTIME = (
    "real-time",
    "/boot/Image.real-time",
    f"${{cbootargs}} {ROOT} isolcpus=managed_irq,domain,4-5 nohz_full=4-5",
)
FILES: dict[str, str | None] = {
    "/boot/Image": STOCK,
    "/boot/Image.real-time": RT,
    "/boot/initrd": "",
    "/boot/a.dtb": FDT_MARK,
    "/boot/b.dtbo": FDT_MARK,
    "/boot/c.dtbo": FDT_MARK,
    "/boot/not-a-dtbo": "",
}


def test_default_entry_boots_with_its_append_and_the_platform_args_at_the_end() -> None:
    # 1279-1287: ${cbootargs} deleted; 1459-1468: the platform's arguments appended
    record = choose(conf("real-time", PRIMARY, REALTIME), FILES)
    assert record.label == "real-time"
    assert record.realtime and record.release == hw.RT_RELEASE
    assert record.outcome == "ok"
    assert record.cmdline == (
        f"{ROOT} isolcpus=managed_irq,domain,4-5 nohz_full=4-5 {hw.PLATFORM_ARGS}"
    )


def test_platform_args_are_appended_without_the_token_too() -> None:
    # 1459-1468 runs whether or not ${cbootargs} was in the APPEND
    record = choose(conf("a", ("a", "/boot/Image", f"{ROOT} quiet")), FILES)
    assert record.cmdline == f"{ROOT} quiet {hw.PLATFORM_ARGS}"


def test_an_append_that_is_only_cbootargs_and_isolation_has_no_root() -> None:
    # The platform's arguments are profiler pointers, not root=: the kernel panics.
    record = choose(conf("a", ("a", "/boot/Image", "${cbootargs} isolcpus=4-5")), FILES)
    assert record.outcome == "panic"
    assert "root=" not in record.cmdline
    assert "no root=" in record.attempts[-1]


def test_default_matching_no_label_boots_entry_zero() -> None:
    # 1302-1308: StrCmp, no match leaves DefaultBootEntry at 0
    record = choose(conf("no-such-label", REALTIME, PRIMARY), FILES)
    assert record.label == "real-time"
    assert "matches no LABEL" in record.attempts[0]


def test_missing_image_boots_the_kernel_partition_not_entry_zero() -> None:
    # 2741-2796: ExtLinuxBoot fails -> BOOTMODE_BOOTIMG: the kernel partition
    files = {**FILES, "/boot/Image.real-time": None}
    record = choose(conf("real-time", PRIMARY, REALTIME), files)
    assert record.label is None and record.linux == "kernel partition"
    assert record.outcome == "ok" and not record.realtime
    assert record.cmdline == f"{hw.KERNEL_PARTITION_CMDLINE} {hw.PLATFORM_ARGS}"
    assert "cannot load LINUX /boot/Image.real-time" in record.attempts[0]
    # none of the candidate's arguments: the kernel image carries its own command line
    assert "isolcpus" not in record.cmdline


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        ({"/boot/initrd": None}, "cannot load INITRD /boot/initrd"),  # 1470-1480
        ({"/boot/Image.real-time": ""}, "is not a bootable image"),  # 1602-1615 LoadImage
    ],
)
def test_load_failures_boot_the_kernel_partition(
    changed: dict[str, str | None], reason: str
) -> None:
    record = choose(conf("real-time", PRIMARY, REALTIME), {**FILES, **changed})
    assert record.linux == "kernel partition"
    assert reason in record.attempts[-1]


def fdt_conf(fdt: str | None, overlays: str | None) -> str:
    lines = ["DEFAULT a", "LABEL a", " LINUX /boot/Image", f" APPEND ${{cbootargs}} {ROOT}"]
    if fdt is not None:
        lines.append(f" FDT {fdt}")
    if overlays is not None:
        lines.append(f" OVERLAYS {overlays}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("fdt", "overlays", "boots_entry", "why"),
    [
        ("/boot/a.dtb", "/boot/b.dtbo,/boot/c.dtbo", True, ""),  # 1531-1573, ',' splits
        ("/boot/missing.dtb", "/boot/missing.dtbo", True, "booting without it"),  # 1510-1514
        ("/boot/a.dtb", "/boot/b.dtbo,/boot/missing.dtbo", False, "cannot load overlay"),
        ("/boot/a.dtb", "/boot/not-a-dtbo", False, "bad header"),  # 1564 fdt_check_header
        ("/boot/initrd", None, False, "not a device tree"),  # 1518 fdt_open_into fails
        (None, "/boot/missing.dtbo", True, ""),  # OVERLAYS only apply with FDT
    ],
)
def test_fdt_and_overlay_rules(
    fdt: str | None, overlays: str | None, boots_entry: bool, why: str
) -> None:
    record = choose(fdt_conf(fdt, overlays), FILES)
    assert (record.label == "a") is boots_entry, record.attempts
    if why:
        assert why in record.attempts[-1]


def test_an_entry_without_append_faults_the_loader() -> None:
    # 1452: r36.5.1 takes StrSize(BootOption->BootArgs) of NULL
    record = choose("DEFAULT a\nLABEL a\n LINUX /boot/Image\n", FILES)
    assert record.outcome == "reset"
    assert "StrSize(NULL)" in record.attempts[-1]


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


def test_missing_or_empty_extlinux_boots_the_kernel_partition() -> None:
    # 2731-2736: ProcessExtLinuxConfig fails (no file, or no entry: 1329) -> BOOTIMG
    assert choose(None, FILES).linux == "kernel partition"
    assert choose("TIMEOUT 30\n", FILES).linux == "kernel partition"


def test_crlf_tabs_comments_and_relative_paths() -> None:
    # 516-541: CRs dropped, '#' cuts, tabs trimmed; PathCleanUpDirectories on paths
    text = (
        "TIMEOUT 30\r\nDEFAULT rt\r\n# LABEL rt\r\nLABEL rt\r\n"
        "\tLINUX\tboot/./x/../Image.real-time\r\n"
        "\tAPPEND ${cbootargs} root=/dev/nvme0n1p1 # quiet\r\n"
    )
    record = choose(text, FILES)
    assert record.realtime and record.linux == "/boot/Image.real-time"
    assert "quiet" not in record.cmdline


def test_keys_are_case_sensitive_and_the_last_default_wins() -> None:
    # 1139: StrnCmp; a 'default' line is ignored, the second DEFAULT overwrites the first
    text = conf("primary", PRIMARY, REALTIME) + "default primary\nDEFAULT real-time\n"
    assert choose(text, FILES).label == "real-time"


def test_rootfs_retry_count_runs_out_into_the_recovery_kernel() -> None:
    # L4TRootfsValidation.c 609-731: decremented each boot; at 0 slot A is unbootable
    files = {**FILES, "/boot/Image": make_image(boot="panic")}
    slot = RootfsState()
    outcomes = [choose(conf("primary", PRIMARY), files, slot).outcome for _ in range(4)]
    assert outcomes == ["panic", "panic", "panic", "recovery"]
    assert slot.status == "unbootable" and slot.retry_count == 0
    # and it stays there: IsValidRootfs() is false until the slot is made bootable
    record = choose(conf("primary", PRIMARY), FILES, slot)
    assert record.outcome == "recovery" and record.linux == "recovery partition"
    assert record.cmdline.startswith("root=/dev/initrd")
    slot.reset()
    assert choose(conf("primary", PRIMARY), FILES, slot).outcome == "ok"


def test_a_verified_boot_restores_the_retry_count() -> None:
    slot = RootfsState()
    for _ in range(10):
        assert choose(conf("primary", PRIMARY), FILES, slot).outcome == "ok"
        slot.verified()  # nv-l4t-bootloader-config.service: nvbootctrl verify
    assert slot.retry_count == hw.ROOTFS_RETRY_MAX


def test_image_round_trip_and_rejects() -> None:
    image = parse_image(make_image("5.15.148-rt-tegra", realtime=True, modules=("nvgpu",)))
    assert image is not None
    assert image.realtime and image.modules == ("nvgpu",) and image.boot == "ok"
    assert image.version.startswith("#1 SMP PREEMPT_RT")
    assert parse_image("\x7fELF....") is None
    assert parse_image(None) is None
    with pytest.raises(ValueError, match="boot must be one of"):
        make_image(boot="explode")
