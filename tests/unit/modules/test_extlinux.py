"""extlinux.conf as L4TLauncher reads it: module_utils.extlinux and the extlinux module."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils import basic
from ansible_collections.jetson_rt.fleet.plugins.module_utils.extlinux import (
    MAX_ENTRIES,
    ExtlinuxConf,
    ExtlinuxError,
    isolation_args,
    parse_args,
)
from ansible_collections.jetson_rt.fleet.plugins.modules import extlinux as extlinux_module

REPO = Path(__file__).resolve().parents[3]
COLLECTIONS = REPO / "collections"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE_NAMES = sorted(path.name for path in (FIXTURES / "extlinux").glob("*.conf"))
STOCK_ARGS = (
    "${cbootargs} root=/dev/mmcblk0p1 rw rootwait rootfstype=ext4 mminit_loglevel=4 "
    "console=ttyTCU0,115200 firmware_class.path=/etc/firmware fbcon=map:0 nospectre_bhb "
    "video=efifb:off console=tty0"
)
RunModule = Callable[..., dict[str, Any]]


def conf(fixture_text: Callable[[str], bytes], name: str) -> ExtlinuxConf:
    return ExtlinuxConf.from_bytes(fixture_text(name))


def text_of(document: ExtlinuxConf) -> str:
    return document.render()


# --- parsing -------------------------------------------------------------------


def test_fixtures_cover_the_jetpack_variants() -> None:
    assert FIXTURE_NAMES == [
        "jp6-crlf.conf",
        "jp6-jetsonio.conf",
        "jp6-nvme.conf",
        "jp6-realtime.conf",
        "jp6-sdcard.conf",
        "jp6-tabs.conf",
    ]
    crlf = (FIXTURES / "extlinux" / "jp6-crlf.conf").read_bytes()
    # a checkout that converted line endings would make the CRLF tests meaningless
    assert crlf.count(b"\r\n") == crlf.count(b"\n") > 20
    assert b"\n\tLINUX /boot/Image\n" in (FIXTURES / "extlinux" / "jp6-tabs.conf").read_bytes()


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_unedited_round_trip_is_byte_identical(
    fixture_text: Callable[[str], bytes], name: str
) -> None:
    data = fixture_text(name)
    assert ExtlinuxConf.from_bytes(data).to_bytes() == data


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"LABEL a\n LINUX /x",  # no final newline
        b"LABEL a\n LINUX /x\n\n\n",
        b"LABEL a\r\n LINUX /x\n  \t \n# c\r\n",  # mixed endings, blank with spaces
        b"LABEL a\n LINUX /x\nMENU BACKGROUND x.png\nKERNEL /y\n",  # unknown lines
        "LABEL caf\u00e9\n LINUX /x\n".encode(),  # non-ASCII bytes survive
        b"LABEL a\n LINUX /x\n\x0c\x0b\n",  # form feeds are not line breaks
    ],
)
def test_round_trip_of_odd_files(data: bytes) -> None:
    assert ExtlinuxConf.from_bytes(data).to_bytes() == data


def test_stock_sd_card_facts(fixture_text: Callable[[str], bytes]) -> None:
    facts = conf(fixture_text, "jp6-sdcard.conf").facts()
    assert facts["timeout"] == 30
    assert facts["default"] == "primary"
    assert facts["default_found"] is True
    assert facts["menu_title"] == "L4T boot options"
    # NVIDIA's commented "# LABEL backup" template is not an entry
    assert facts["labels"] == ["primary"]
    assert (facts["boot_index"], facts["boot_label"]) == (0, "primary")
    assert facts["line_ending"] == "LF"
    assert facts["ignored_lines"] == []
    entry = facts["entries"][0]
    assert entry["line"] == 6
    assert entry["menu_label"] == "primary kernel"
    assert entry["linux"] == "/boot/Image"
    assert entry["initrd"] == "/boot/initrd"
    assert entry["fdt"] is None
    assert entry["overlays"] is None
    assert entry["append"] == STOCK_ARGS
    assert entry["args"]["root"] == "/dev/mmcblk0p1"
    assert entry["args"]["${cbootargs}"] is None
    assert entry["args"]["rw"] is None
    assert entry["args"]["console"] == "tty0"  # the last console= wins in the dict
    assert entry["args_list"][:2] == ["${cbootargs}", "root=/dev/mmcblk0p1"]
    assert entry["args_list"].count("console=ttyTCU0,115200") == 1
    assert entry["isolation"] == {
        "isolcpus": None,
        "isolcpus_flags": [],
        "nohz_full": None,
        "rcu_nocbs": None,
        "irqaffinity": None,
    }


def test_nvme_facts(fixture_text: Callable[[str], bytes]) -> None:
    entry = conf(fixture_text, "jp6-nvme.conf").facts()["entries"][0]
    assert entry["args"]["root"] == "PARTUUID=b6dcd88c-b06d-438f-b715-23ef3a2855a3"
    assert entry["fdt"] == "/boot/dtb/kernel_tegra234-p3768-0000+p3767-0005-nv-super.dtb"
    assert entry["args"]["nv-auto-config"] is None


def test_jetson_io_entry_is_the_default(fixture_text: Callable[[str], bytes]) -> None:
    facts = conf(fixture_text, "jp6-jetsonio.conf").facts()
    assert facts["labels"] == ["primary", "JetsonIO"]
    assert (facts["boot_index"], facts["boot_label"]) == (1, "JetsonIO")
    jetson_io = facts["entries"][1]
    assert (
        jetson_io["menu_label"] == "Custom Header Config: <HDR40 User Custom [2025-02-25-120902]>"
    )
    assert jetson_io["fdt"] == "/boot/dtb/kernel_tegra234-p3768-0000+p3767-0003-nv.dtb"
    assert jetson_io["overlays"] == (
        "/boot/kernel_tegra234-p3768-0000+p3767-0003-nv-hdr40-user-custom.dtbo"
    )


def test_real_time_entry(fixture_text: Callable[[str], bytes]) -> None:
    facts = conf(fixture_text, "jp6-realtime.conf").facts()
    assert facts["labels"] == ["primary", "real-time"]
    assert facts["boot_label"] == "real-time"
    assert facts["entries"][1]["linux"] == "/boot/Image.real-time"
    assert facts["entries"][1]["menu_label"] == "real-time kernel"


def test_crlf_file_reads_like_lf(fixture_text: Callable[[str], bytes]) -> None:
    crlf = conf(fixture_text, "jp6-crlf.conf").facts()
    lf = conf(fixture_text, "jp6-sdcard.conf").facts()
    assert crlf["line_ending"] == "CRLF"
    assert {**crlf, "line_ending": "LF"} == lf  # no value carries a stray CR


@pytest.mark.parametrize(
    ("text", "boot_label"),
    [
        ("DEFAULT nope\nLABEL a\n LINUX /a\nLABEL b\n LINUX /b\n", "a"),  # no match: entry 0
        ("LABEL a\n LINUX /a\nLABEL b\n LINUX /b\n", "a"),  # no DEFAULT: entry 0
        ("LABEL a\n LINUX /a\nLABEL b\n LINUX /b\nDEFAULT b\n", "b"),  # DEFAULT anywhere
        ("DEFAULT b  # the tuned one\nLABEL a\n LINUX /a\nLABEL b\n LINUX /b\n", "b"),
        ("DEFAULT B\nLABEL a\n LINUX /a\nLABEL b\n LINUX /b\n", "a"),  # case-sensitive
    ],
)
def test_boot_entry_as_l4tlauncher_picks_it(text: str, boot_label: str) -> None:
    assert ExtlinuxConf(text).facts()["boot_label"] == boot_label


def test_default_that_matches_nothing_is_reported() -> None:
    facts = ExtlinuxConf("DEFAULT nope\nLABEL a\n LINUX /a\n").facts()
    assert facts["default"] == "nope"
    assert facts["default_found"] is False
    assert facts["boot_index"] == 0


def test_hash_ends_the_line_even_inside_append() -> None:
    entry = ExtlinuxConf("LABEL a\n LINUX /a\n APPEND ${cbootargs} quiet#splash\n").entry("a")
    assert entry is not None
    assert entry["append"] == "${cbootargs} quiet"


def test_ignored_lines_are_reported_and_kept() -> None:
    text = "LABEL a\n LINUX /a\n KERNEL /b\n"
    document = ExtlinuxConf(text)
    assert document.facts()["ignored_lines"] == [{"line": 3, "text": "KERNEL /b"}]
    assert document.render() == text


def test_quoted_and_init_args() -> None:
    parsed = parse_args('${cbootargs} dyndbg="file x.c +p" quiet -- single x=1')
    assert parsed["args"]["dyndbg"] == "file x.c +p"
    assert parsed["args_list"] == ["${cbootargs}", 'dyndbg="file x.c +p"', "quiet"]
    assert parsed["init_args"] == ["single", "x=1"]


MALFORMED = [
    ("TIMEOUT 30\nAPPEND ${cbootargs}\nLABEL a\n LINUX /a\n", 2, "APPEND before any LABEL"),
    ("# c\n  LINUX /boot/Image\n", 2, "LINUX before any LABEL"),
    ("MENU LABEL x\nLABEL a\n LINUX /a\n", 1, "MENU LABEL before any LABEL"),
    ("LABEL a\n LINUX /a\nLABEL a\n LINUX /b\n", 3, "duplicate LABEL 'a' (first on line 1)"),
    ("LABEL a\n LINUX /a\nLABEL b\n INITRD /i\n", 3, "LABEL 'b' has no LINUX line"),
    ("LABEL a\n LINUX /a\n APPEND x\n APPEND y\n", 4, "second APPEND in entry 'a'"),
    ("DEFAULT a\nDEFAULT b\nLABEL a\n LINUX /a\n", 2, "second DEFAULT (first on line 1)"),
    ("LABEL a\n LINUX /a\n FDTDIR /boot/dtb\n", 3, "reads it as FDT 'DIR /boot/dtb'"),
    ("LABEL a\n LINUX /a\n INITRD\n", 3, "INITRD without a path"),
    ("LABEL\n LINUX /a\n", 1, "LABEL without a name"),
]


@pytest.mark.parametrize(("text", "line", "message"), MALFORMED)
def test_malformed_files_refused_with_line_number(text: str, line: int, message: str) -> None:
    with pytest.raises(ExtlinuxError) as error:
        ExtlinuxConf(text)
    assert error.value.line == line
    assert str(error.value).startswith(f"line {line}: ")
    assert message in str(error.value)


def _entries(count: int) -> str:
    return "".join(f"LABEL e{n}\n LINUX /boot/Image\n" for n in range(count))


def test_more_than_ten_entries_refused() -> None:
    assert ExtlinuxConf(_entries(MAX_ENTRIES)).labels[-1] == "e9"
    with pytest.raises(ExtlinuxError, match=r"line 21: LABEL 'e10' is entry 11"):
        ExtlinuxConf(_entries(MAX_ENTRIES + 1))


def test_no_eleventh_entry_by_edit() -> None:
    document = ExtlinuxConf(_entries(MAX_ENTRIES))
    with pytest.raises(ExtlinuxError, match="already has 10 entries"):
        document.copy_entry("e0", "rt")
    with pytest.raises(ExtlinuxError, match="already has 10 entries"):
        document.add_entry("rt", "/boot/Image")
    assert document.render() == _entries(MAX_ENTRIES)


def test_utf16_refused() -> None:
    with pytest.raises(ExtlinuxError, match="UTF-16"):
        ExtlinuxConf.from_bytes("LABEL a\n".encode("utf-16"))


# --- editing APPEND -----------------------------------------------------------------


def edited_append(document: ExtlinuxConf, label: str = "primary") -> str:
    entry = document.entry(label)
    assert entry is not None
    return str(entry["append"])


def test_isolation_appended_and_other_lines_untouched(fixture_text: Callable[[str], bytes]) -> None:
    before = fixture_text("jp6-sdcard.conf").decode()
    document = ExtlinuxConf(before)
    to_set, to_remove = isolation_args("4-5", ncpus=6)
    document.edit_args("primary", to_set, to_remove)
    iso = "isolcpus=managed_irq,domain,4-5 nohz_full=4-5 rcu_nocbs=4-5 irqaffinity=0-3"
    assert edited_append(document) == f"{STOCK_ARGS} {iso}"
    assert document.render() == before.replace(STOCK_ARGS, f"{STOCK_ARGS} {iso}")


def test_existing_values_replaced_in_place_never_duplicated() -> None:
    document = ExtlinuxConf(
        "LABEL primary\n LINUX /a\n APPEND ${cbootargs} root=/dev/sda1 isolcpus=2,3 quiet "
        "rcu-nocbs=1 nohz_full=2 isolcpus=3 splash\n"
    )
    to_set, to_remove = isolation_args([4, 5], flags=[], housekeeping="0-3")
    document.edit_args("primary", to_set, to_remove)
    # isolcpus keeps its place, its later copy goes; rcu-nocbs is rcu_nocbs to the kernel
    assert edited_append(document) == (
        "${cbootargs} root=/dev/sda1 isolcpus=4-5 quiet rcu_nocbs=4-5 nohz_full=4-5 splash "
        "irqaffinity=0-3"
    )


def test_set_args_is_idempotent(fixture_text: Callable[[str], bytes]) -> None:
    document = conf(fixture_text, "jp6-nvme.conf")
    edits = [("nosoftlockup", None), ("skew_tick", "1"), ("transparent_hugepage", "never")]
    document.edit_args("primary", edits)
    once = document.render()
    document.edit_args("primary", edits)
    assert document.render() == once
    assert once.count("skew_tick=1") == 1
    assert edited_append(document).endswith(
        "nv-auto-config nosoftlockup skew_tick=1 transparent_hugepage=never"
    )


def test_remove_args_by_name_and_by_value(fixture_text: Callable[[str], bytes]) -> None:
    document = conf(fixture_text, "jp6-sdcard.conf")
    document.edit_args("primary", remove_args=["console=tty0", "fbcon", "not-there"])
    append = edited_append(document)
    assert "console=ttyTCU0,115200" in append
    assert "console=tty0" not in append.split()
    assert "fbcon=map:0" not in append
    assert append.startswith("${cbootargs} root=/dev/mmcblk0p1 rw")


def test_spacing_of_untouched_args_kept() -> None:
    document = ExtlinuxConf("LABEL a\n LINUX /a\n APPEND ${cbootargs}  root=/r\tfoo=1   bar\n")
    document.edit_args("a", [("foo", "2")], ["bar"])
    assert document.render() == "LABEL a\n LINUX /a\n APPEND ${cbootargs}  root=/r\tfoo=2\n"


def test_first_arg_removed_without_leading_space() -> None:
    document = ExtlinuxConf("LABEL a\n LINUX /a\n APPEND quiet ${cbootargs} root=/r\n")
    document.edit_args("a", remove_args=["quiet"])
    assert edited_append(document, "a") == "${cbootargs} root=/r"


def test_new_args_go_before_init_args() -> None:
    document = ExtlinuxConf(
        "LABEL a\n LINUX /a\n APPEND ${cbootargs} root=/r quiet -- single quiet=1\n"
    )
    document.edit_args("a", [("nosoftlockup", None), ("quiet", "0")])
    assert (
        edited_append(document, "a")
        == "${cbootargs} root=/r quiet=0 nosoftlockup -- single quiet=1"
    )


def test_values_with_spaces_are_quoted() -> None:
    document = ExtlinuxConf("LABEL a\n LINUX /a\n APPEND ${cbootargs} root=/r\n")
    document.edit_args("a", [("dyndbg", "file x.c +p")])
    entry = document.entry("a")
    assert entry is not None
    assert entry["append"] == '${cbootargs} root=/r dyndbg="file x.c +p"'
    assert entry["args"]["dyndbg"] == "file x.c +p"


def test_comment_after_append_kept() -> None:
    document = ExtlinuxConf("LABEL a\n LINUX /a\n APPEND ${cbootargs} root=/r  # keep me\n")
    document.edit_args("a", [("isolcpus", "4-5")])
    assert (
        document.render()
        == "LABEL a\n LINUX /a\n APPEND ${cbootargs} root=/r isolcpus=4-5  # keep me\n"
    )


@pytest.mark.parametrize(
    ("set_args", "remove_args", "message"),
    [
        ([("quiet", "a#b")], [], "'#'"),
        ([("quiet", 'a"b')], [], "'\"'"),
        ([("bad key", None)], [], "has a space"),
        ([], ["${cbootargs}"], "${cbootargs} is not an argument"),
        ([("${cbootargs}", None)], [], "${cbootargs} is not an argument"),
        ([("quiet", None)], ["quiet"], "both set and removed"),
        ([("rcu_nocbs", "1"), ("rcu-nocbs", "2")], [], "set twice"),
    ],
)
def test_bad_argument_edits_refused_and_file_kept(
    set_args: list[tuple[str, str | None]], remove_args: list[str], message: str
) -> None:
    text = "LABEL a\n LINUX /a\n APPEND ${cbootargs} quiet\n"
    document = ExtlinuxConf(text)
    with pytest.raises(ExtlinuxError) as error:
        document.edit_args("a", set_args, remove_args)
    assert message in str(error.value)
    assert document.render() == text


def test_append_must_keep_cbootargs() -> None:
    document = ExtlinuxConf("LABEL a\n LINUX /a\n APPEND ${cbootargs} quiet\n")
    with pytest.raises(ExtlinuxError, match=r"drops \$\{cbootargs\}"):
        document.set_value("a", "APPEND", "root=/dev/sda1")


def test_entry_without_append_gets_the_booted_entrys_root() -> None:
    # The APPEND it derives from: the entry L4TLauncher boots now (DEFAULT "b").
    document = ExtlinuxConf(
        "DEFAULT b\nLABEL a\n\tLINUX /a\n\tINITRD /i\n"
        "LABEL b\n\tLINUX /b\n\tAPPEND ${cbootargs} quiet root=PARTUUID=1-2 rw rootwait x=1\n"
    )
    document.edit_args("a", [("quiet", None)])
    entry = document.entry("a")
    assert entry is not None
    assert entry["append"] == "${cbootargs} root=PARTUUID=1-2 rw rootwait quiet"


def test_entry_without_append_and_nothing_to_derive_from_is_refused() -> None:
    text = "LABEL a\n\tLINUX /a\n\tINITRD /i\n"
    document = ExtlinuxConf(text)
    with pytest.raises(ExtlinuxError, match="would have no root="):
        document.edit_args("a", [("quiet", None)])
    assert document.render() == text


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.set_value("a", "APPEND", "${cbootargs} quiet"), "has no root="),
        (lambda d: d.edit_args("a", remove_args=["root"]), "has no root="),
        (lambda d: d.add_entry("n", "/n", append="${cbootargs} rw"), "has no root="),
        (lambda d: d.copy_entry("b", "n"), "copied from 'b'"),
    ],
)
def test_an_append_without_root_is_never_written(
    edit: Callable[[ExtlinuxConf], None], message: str
) -> None:
    # L4TLauncher.c 1459-1468: only the platform's arguments are appended, never root=.
    text = (
        "DEFAULT a\nLABEL a\n LINUX /a\n APPEND ${cbootargs} root=/dev/sda1\n"
        "LABEL b\n LINUX /b\n APPEND ${cbootargs} quiet\n"
    )
    document = ExtlinuxConf(text)
    with pytest.raises(ExtlinuxError, match=message):
        edit(document)
    assert document.render() == text


# --- isolation helper ------------------------------------------------------------------


def test_isolation_args_defaults() -> None:
    assert isolation_args("4-5", ncpus=6) == (
        [
            ("isolcpus", "managed_irq,domain,4-5"),
            ("nohz_full", "4-5"),
            ("rcu_nocbs", "4-5"),
            ("irqaffinity", "0-3"),
        ],
        [],
    )


def test_isolation_args_switches_and_removal() -> None:
    to_set, to_remove = isolation_args("4,5", flags=["domain"], nohz_full=False, irqaffinity=False)
    assert to_set == [("isolcpus", "domain,4-5"), ("rcu_nocbs", "4-5")]
    assert to_remove == ["nohz_full", "irqaffinity"]
    assert isolation_args("") == ([], ["isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cpus": "4-6", "ncpus": 6}, "CPU 6 outside 0-5"),
        ({"cpus": "4-5", "housekeeping": "0-4"}, "include isolated CPUs 4"),
        ({"cpus": "0-5", "ncpus": 6}, "leaves no housekeeping CPU"),
        ({"cpus": "4-", "ncpus": 6}, "'4-' is an open range"),
        ({"cpus": "4-5", "flags": ["managed-irq"]}, "isolcpus flag 'managed-irq'"),
    ],
)
def test_isolation_args_refusals(kwargs: dict[str, Any], message: str) -> None:
    cpus = kwargs.pop("cpus")
    with pytest.raises(ExtlinuxError) as error:
        isolation_args(cpus, **kwargs)
    assert message in str(error.value)


def test_isolation_read_back_from_facts() -> None:
    entry = ExtlinuxConf(
        "LABEL a\n LINUX /a\n APPEND ${cbootargs} isolcpus=nohz,domain,managed_irq,2-3,5 "
        "nohz_full=2-3,5 rcu_nocbs=x irqaffinity=0-1,4\n"
    ).entry("a")
    assert entry is not None
    assert entry["isolation"] == {
        "isolcpus": [2, 3, 5],
        "isolcpus_flags": ["nohz", "domain", "managed_irq"],
        "nohz_full": [2, 3, 5],
        "rcu_nocbs": None,  # not a CPU list
        "irqaffinity": [0, 1, 4],
    }


# --- entries ---------------------------------------------------------------------------


def test_copy_entry_then_edit_keeps_the_source(fixture_text: Callable[[str], bytes]) -> None:
    before = fixture_text("jp6-tabs.conf").decode()
    document = ExtlinuxConf(before)
    document.copy_entry("primary", "rt")
    document.set_value("rt", "MENU LABEL", "real-time tuned")
    document.set_value("rt", "FDT", "/boot/dtb/x.dtb")
    document.edit_args("rt", [("isolcpus", "4-5")])
    after = document.render()
    assert after.startswith(before)  # the stock entry and the comments are untouched
    assert after[len(before) :] == (
        "\nLABEL rt\n"
        "\tMENU LABEL real-time tuned\n"
        "\tLINUX /boot/Image\n"
        "\tFDT /boot/dtb/x.dtb\n"  # inserted where NVIDIA puts FDT, with the entry's tab
        "\tINITRD /boot/initrd\n"
        f"\tAPPEND {STOCK_ARGS} isolcpus=4-5\n"
    )
    assert document.labels == ["primary", "rt"]


def test_crlf_kept_on_every_new_line(fixture_text: Callable[[str], bytes]) -> None:
    document = conf(fixture_text, "jp6-crlf.conf")
    document.copy_entry("primary", "rt")
    document.set_value("rt", "FDT", "/boot/dtb/x.dtb")
    document.edit_args("rt", [("nosoftlockup", None)])
    document.set_default("rt")
    data = document.to_bytes()
    assert data.count(b"\n") == data.count(b"\r\n")
    assert b"DEFAULT rt\r\n" in data
    assert b"\r\n      FDT /boot/dtb/x.dtb\r\n" in data


def test_add_entry_uses_the_file_indentation(fixture_text: Callable[[str], bytes]) -> None:
    document = conf(fixture_text, "jp6-sdcard.conf")
    document.add_entry(
        "real-time",
        "/boot/Image.real-time",
        menu_label="real-time kernel",
        initrd="/boot/initrd",
        append=STOCK_ARGS,
    )
    assert document.render().endswith(
        "#    APPEND ${cbootargs}\n"
        "\n"
        "LABEL real-time\n"
        "      MENU LABEL real-time kernel\n"
        "      LINUX /boot/Image.real-time\n"
        "      INITRD /boot/initrd\n"
        f"      APPEND {STOCK_ARGS}\n"
    )


def test_add_then_remove_gives_back_the_same_bytes(fixture_text: Callable[[str], bytes]) -> None:
    for name in FIXTURE_NAMES:
        data = fixture_text(name)
        document = ExtlinuxConf.from_bytes(data)
        document.copy_entry("primary", "rt")
        document.remove_entry("rt")
        assert document.to_bytes() == data, name


def test_remove_jetson_io_entry_after_moving_default(fixture_text: Callable[[str], bytes]) -> None:
    document = conf(fixture_text, "jp6-jetsonio.conf")
    with pytest.raises(ExtlinuxError, match="'JetsonIO' is the DEFAULT"):
        document.remove_entry("JetsonIO")
    document.set_default("primary")
    document.remove_entry("JetsonIO")
    text = document.render()
    assert "JetsonIO" not in text
    assert text.endswith("#    APPEND ${cbootargs}\n")
    assert document.facts()["boot_label"] == "primary"


def test_last_entry_cannot_be_removed() -> None:
    with pytest.raises(ExtlinuxError, match="only entry"):
        ExtlinuxConf("LABEL a\n LINUX /a\n").remove_entry("a")


def test_set_default_needs_an_existing_label(fixture_text: Callable[[str], bytes]) -> None:
    document = conf(fixture_text, "jp6-sdcard.conf")
    with pytest.raises(ExtlinuxError, match="DEFAULT 'rt' names no LABEL"):
        document.set_default("rt")


def test_default_and_timeout_inserted_when_missing() -> None:
    document = ExtlinuxConf("LABEL a\n LINUX /a\nLABEL b\n LINUX /b\n")
    document.set_timeout(30)
    document.set_default("b")
    assert document.render() == "TIMEOUT 30\nDEFAULT b\nLABEL a\n LINUX /a\nLABEL b\n LINUX /b\n"


def test_value_layout_and_comment_kept_when_changed() -> None:
    document = ExtlinuxConf("DEFAULT\ta   # stock\nLABEL a\n LINUX /a\nLABEL b\n LINUX /b\n")
    document.set_default("b")
    assert document.render().startswith("DEFAULT\tb   # stock\n")


def test_removing_optional_lines() -> None:
    document = ExtlinuxConf("LABEL a\n LINUX /a\n FDT /f\n INITRD /i\n")
    document.set_value("a", "FDT", "")
    assert document.render() == "LABEL a\n LINUX /a\n INITRD /i\n"
    with pytest.raises(ExtlinuxError, match="cannot be removed"):
        document.set_value("a", "LINUX", "")


def test_values_with_hash_refused() -> None:
    document = ExtlinuxConf("LABEL a\n LINUX /a\n")
    with pytest.raises(ExtlinuxError, match="rest of the line as a comment"):
        document.set_value("a", "INITRD", "/boot/initrd#2")


# --- the module, in-process ----------------------------------------------------------


@pytest.fixture
def target(tmp_path: Path, fixture_text: Callable[[str], bytes]) -> Callable[[str], Path]:
    def install(name: str) -> Path:
        path = tmp_path / "extlinux.conf"
        path.write_bytes(fixture_text(name))
        path.chmod(0o644)
        return path

    return install


ISOLATE = {"label": "rt", "copy_from": "primary", "isolation": {"cpus": "4-5", "ncpus": 6}}


def test_module_check_mode_writes_nothing(
    run_module: RunModule, target: Callable[[str], Path]
) -> None:
    path = target("jp6-sdcard.conf")
    before = path.read_bytes()
    result = run_module(extlinux_module.main, check_mode=True, diff=True, path=str(path), **ISOLATE)
    assert result["changed"] is True
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["extlinux.conf"]  # no backups
    assert "original_backup" not in result
    # what check mode reports is what a real run then writes
    assert result["diff"]["before"] == before.decode()
    real = run_module(extlinux_module.main, path=str(path), **ISOLATE)
    assert path.read_bytes().decode() == result["diff"]["after"]
    assert real["extlinux"] == result["extlinux"]


def test_module_diff_and_facts(run_module: RunModule, target: Callable[[str], Path]) -> None:
    path = target("jp6-sdcard.conf")
    result = run_module(extlinux_module.main, diff=True, path=str(path), **ISOLATE)
    assert result["changed"] is True
    diff = result["diff"]
    assert diff["before_header"] == diff["after_header"] == result["file"] == str(path)
    assert diff["after"] == path.read_text()
    assert diff["after"].startswith(diff["before"])
    assert result["entry"]["label"] == "rt"
    assert result["entry"]["isolation"]["isolcpus"] == [4, 5]
    assert result["entry"]["isolation"]["irqaffinity"] == [0, 1, 2, 3]
    assert result["extlinux"]["labels"] == ["primary", "rt"]
    # a new entry that is not the default does not change the next boot
    assert result["reboot_required"] is False


def test_module_no_diff_key_without_diff_mode(
    run_module: RunModule, target: Callable[[str], Path]
) -> None:
    result = run_module(extlinux_module.main, path=str(target("jp6-sdcard.conf")), **ISOLATE)
    assert result["changed"] is True
    assert "diff" not in result


def test_module_idempotent(run_module: RunModule, target: Callable[[str], Path]) -> None:
    path = target("jp6-jetsonio.conf")
    args = {
        "path": str(path),
        "label": "JetsonIO",
        "isolation": {"cpus": [4, 5], "ncpus": 6},
        "set_args": {"nosoftlockup": None, "skew_tick": 1},
        "remove_args": ["console=tty0"],
    }
    first = run_module(extlinux_module.main, **args)
    written = path.read_bytes()
    second = run_module(extlinux_module.main, diff=True, **args)
    assert first["changed"] is True
    assert first["reboot_required"] is True  # JetsonIO is what boots
    assert second["changed"] is False
    assert second["reboot_required"] is False
    assert "diff" not in second
    assert path.read_bytes() == written


def test_module_original_backup_kept_once(
    run_module: RunModule, target: Callable[[str], Path]
) -> None:
    path = target("jp6-sdcard.conf")
    pristine = path.read_bytes()
    original = Path(f"{path}.jetson-rt.orig")
    first = run_module(extlinux_module.main, path=str(path), **ISOLATE)
    assert first["original_backup"] == str(original)
    assert original.read_bytes() == pristine
    second = run_module(extlinux_module.main, path=str(path), default="rt")
    assert second["changed"] is True
    assert second["original_backup"] == str(original)
    assert original.read_bytes() == pristine  # not overwritten by the second change


def test_module_timestamped_backup(run_module: RunModule, target: Callable[[str], Path]) -> None:
    path = target("jp6-sdcard.conf")
    before = path.read_bytes()
    result = run_module(
        extlinux_module.main, path=str(path), backup=True, default="primary", timeout=10
    )
    assert result["changed"] is True
    backup = Path(result["backup_file"])
    assert backup.parent == path.parent
    assert backup.name.startswith("extlinux.conf.")
    assert backup.read_bytes() == before


def test_module_replaces_atomically(
    run_module: RunModule, target: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = target("jp6-sdcard.conf")
    path.chmod(0o600)
    moves: list[tuple[str, str]] = []
    real_move = basic.AnsibleModule.atomic_move

    def spy(module: basic.AnsibleModule, src: str, dest: str, *args: Any, **kwargs: Any) -> None:
        moves.append((src, dest))
        assert Path(src).parent == path.parent  # same file system: rename, not copy
        real_move(module, src, dest, *args, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "atomic_move", spy)
    inode = path.stat().st_ino
    run_module(extlinux_module.main, path=str(path), **ISOLATE)
    assert [dest for _, dest in moves] == [str(path)]
    assert path.stat().st_ino != inode  # a new file was renamed over the old one
    assert path.stat().st_mode & 0o777 == 0o600  # mode kept
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".extlinux.")]
    assert leftovers == []


def test_module_default_change_requires_reboot(
    run_module: RunModule, target: Callable[[str], Path]
) -> None:
    path = target("jp6-realtime.conf")
    result = run_module(extlinux_module.main, path=str(path), default="primary")
    assert result["changed"] is True
    assert result["reboot_required"] is True
    assert result["extlinux"]["boot_label"] == "primary"
    assert "DEFAULT primary\n" in path.read_text()


def test_module_new_entry_from_linux(run_module: RunModule, target: Callable[[str], Path]) -> None:
    path = target("jp6-sdcard.conf")
    result = run_module(
        extlinux_module.main,
        path=str(path),
        label="real-time",
        linux="/boot/Image.real-time",
        initrd="/boot/initrd",
        menu_label="real-time kernel",
    )
    # root= and its companions come from the entry L4TLauncher boots now (primary)
    assert (
        result["entry"]["append"] == "${cbootargs} root=/dev/mmcblk0p1 rw rootwait rootfstype=ext4"
    )
    assert result["entry"]["linux"] == "/boot/Image.real-time"
    assert result["entry"]["index"] == 1


def test_module_absent(
    run_module: RunModule, target: Callable[[str], Path], fixture_text: Callable[[str], bytes]
) -> None:
    path = target("jp6-realtime.conf")
    result = run_module(
        extlinux_module.main,
        diff=True,
        path=str(path),
        label="real-time",
        state="absent",
        default="primary",
    )
    assert result["changed"] is True
    assert result["extlinux"]["labels"] == ["primary"]
    assert result["entry"] is None
    again = run_module(
        extlinux_module.main, path=str(path), label="real-time", state="absent", default="primary"
    )
    assert again["changed"] is False
    assert (
        path.read_text()
        == fixture_text("jp6-realtime.conf")
        .decode()
        .replace("DEFAULT real-time", "DEFAULT primary")
        .split("\nLABEL real-time")[0]
    )


def test_module_read_changes_nothing(run_module: RunModule, target: Callable[[str], Path]) -> None:
    path = target("jp6-jetsonio.conf")
    before = path.read_bytes()
    result = run_module(extlinux_module.main, path=str(path), state="read", label="JetsonIO")
    assert result["changed"] is False
    assert result["extlinux"]["boot_label"] == "JetsonIO"
    assert result["entry"]["overlays"].endswith("hdr40-user-custom.dtbo")
    assert path.read_bytes() == before
    assert list(path.parent.iterdir()) == [path]


def test_module_malformed_file_untouched(module_failure: RunModule, tmp_path: Path) -> None:
    path = tmp_path / "extlinux.conf"
    text = (
        b"TIMEOUT 30\nDEFAULT primary\nAPPEND ${cbootargs} quiet\n"
        b"LABEL primary\n LINUX /boot/Image\n"
    )
    path.write_bytes(text)
    failure = module_failure(
        extlinux_module.main, path=str(path), label="primary", set_args={"quiet": None}
    )
    assert failure["line"] == 3
    assert "line 3: APPEND before any LABEL" in failure["msg"]
    assert str(path) in failure["msg"]
    assert path.read_bytes() == text
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"label": "rt", "set_args": {"quiet": None}}, "entry 'rt' does not exist; give copy_from"),
        ({"label": "rt", "copy_from": "nope"}, "no entry LABEL 'nope' (entries: primary)"),
        ({"set_args": {"quiet": None}}, "label is required with set_args"),
        ({"label": "primary", "set_args": {"quiet": True}}, "use null for a bare flag"),
        ({"default": "rt"}, "DEFAULT 'rt' names no LABEL"),
        ({"label": "primary", "state": "absent"}, "only entry"),
        (
            {"label": "primary", "isolation": {"cpus": "4-5"}, "set_args": {"isolcpus": "1"}},
            "isolcpus is given both in isolation and in set_args",
        ),
        ({"label": "primary", "isolation": {"cpus": "4-9", "ncpus": 6}}, "outside 0-5"),
        ({"label": "primary", "append": "root=/dev/sda1"}, "drops ${cbootargs}"),
    ],
)
def test_module_refusals_leave_file(
    module_failure: RunModule, target: Callable[[str], Path], args: dict[str, Any], message: str
) -> None:
    path = target("jp6-sdcard.conf")
    before = path.read_bytes()
    failure = module_failure(extlinux_module.main, path=str(path), **args)
    assert message in failure["msg"]
    assert path.read_bytes() == before
    assert list(path.parent.iterdir()) == [path]


def test_module_absent_needs_label(
    module_failure: RunModule, target: Callable[[str], Path]
) -> None:
    failure = module_failure(
        extlinux_module.main, path=str(target("jp6-sdcard.conf")), state="absent"
    )
    assert "needs label" in failure["msg"]


def test_module_refuses_signed_file(
    run_module: RunModule, module_failure: RunModule, target: Callable[[str], Path]
) -> None:
    path = target("jp6-sdcard.conf")
    Path(f"{path}.sig").write_bytes(b"signature")
    before = path.read_bytes()
    failure = module_failure(extlinux_module.main, path=str(path), **ISOLATE)
    assert "Secure Boot" in failure["msg"]
    assert path.read_bytes() == before
    result = run_module(extlinux_module.main, path=str(path), allow_signed=True, **ISOLATE)
    assert result["changed"] is True
    assert result["signed"] is True


def test_module_missing_file(module_failure: RunModule, tmp_path: Path) -> None:
    failure = module_failure(
        extlinux_module.main, path=str(tmp_path / "extlinux.conf"), state="read"
    )
    assert "no such file" in failure["msg"]


def test_module_default_path() -> None:
    assert extlinux_module.ARGUMENT_SPEC["path"]["default"] == "/boot/extlinux/extlinux.conf"


def _doc_matches_spec(docs: dict[str, Any], spec: dict[str, Any], where: str) -> None:
    assert set(docs) == set(spec), where
    for name, option in spec.items():
        doc = docs[name]
        here = f"{where}.{name}"
        assert doc["description"], here
        assert doc.get("type", "str") == option.get("type", "str"), here
        assert doc.get("default") == option.get("default"), here
        assert doc.get("choices") == option.get("choices"), here
        assert doc.get("elements") == option.get("elements"), here
        assert bool(doc.get("required")) == bool(option.get("required")), here
        if "options" in option:
            _doc_matches_spec(doc["suboptions"], option["options"], here)


def test_module_documentation_matches_its_argument_spec() -> None:
    """What validate-modules checks first: the docs describe the real options."""
    documentation = yaml.safe_load(extlinux_module.DOCUMENTATION)
    assert documentation["module"] == "extlinux"
    _doc_matches_spec(documentation["options"], extlinux_module.ARGUMENT_SPEC, "options")
    examples = yaml.safe_load(extlinux_module.EXAMPLES)
    assert all(
        "jetson_rt.fleet.extlinux" in task or "ansible.builtin.debug" in task for task in examples
    )
    returned = yaml.safe_load(extlinux_module.RETURN)
    assert {
        "extlinux",
        "entry",
        "reboot_required",
        "original_backup",
        "backup_file",
        "signed",
        "file",
    } <= set(returned)


# --- a real run through ansible ----------------------------------------------------------


def _ansible(path: Path, module_args: str, *flags: str) -> tuple[dict[str, Any], str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",  # whatever ansible.cfg prefers
        # the targets run modules with JetPack 6's Python 3.10: use it where it is installed
        ANSIBLE_PYTHON_INTERPRETER=shutil.which("python3.10") or str(REPO / ".venv/bin/python"),
    )
    done = subprocess.run(
        [
            str(REPO / ".venv/bin/ansible"),
            "localhost",
            "-c",
            "local",
            "-m",
            "jetson_rt.fleet.extlinux",
            "-a",
            f"path={shlex.quote(str(path))} {module_args}",
            *flags,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=180,
        check=False,
    )
    output = done.stdout
    start = output.index(" => {") + 4
    result, _ = json.JSONDecoder().raw_decode(output[start:])
    result["failed"] = " | FAILED! => {" in output
    assert done.returncode == (2 if result["failed"] else 0), output + done.stderr
    return result, output


def test_ansible_ad_hoc_check_diff_then_apply_then_idempotent(
    target: Callable[[str], Path],
) -> None:
    path = target("jp6-nvme.conf")
    before = path.read_text()
    args = (
        "label=rt copy_from=primary menu_label='real-time tuned' "
        'isolation=\'{"cpus": "4-5", "ncpus": 6}\' '
        'set_args=\'{"nosoftlockup": null, "skew_tick": 1}\' default=rt'
    )
    checked, output = _ansible(path, args, "--check", "--diff")
    assert checked["changed"] is True
    assert path.read_text() == before  # --check wrote nothing
    assert not Path(f"{path}.jetson-rt.orig").exists()
    assert "+LABEL rt" in output  # the diff is shown
    assert "-DEFAULT primary" in output
    assert "+DEFAULT rt" in output

    applied, _ = _ansible(path, args)
    assert applied["changed"] is True
    assert applied["reboot_required"] is True
    assert Path(f"{path}.jetson-rt.orig").read_text() == before
    after = path.read_text()
    # --check --diff told the truth: every line it announced is there now
    added = [
        line[1:]
        for line in output.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
    assert added
    assert all(line in after.splitlines() for line in added)
    assert applied["extlinux"] == checked["extlinux"]
    assert applied["entry"]["args"]["isolcpus"] == "managed_irq,domain,4-5"

    again, again_output = _ansible(path, args, "--check", "--diff")
    assert again["changed"] is False
    assert "+LABEL" not in again_output
    final, _ = _ansible(path, args)
    assert final["changed"] is False
    assert path.read_text() == after


def test_ansible_ad_hoc_reports_malformed_line(tmp_path: Path) -> None:
    path = tmp_path / "extlinux.conf"
    text = "LABEL primary\n  LINUX /boot/Image\nLABEL primary\n  LINUX /boot/Image\n"
    path.write_text(text)
    result, _ = _ansible(path, "state=read")
    assert result["failed"] is True
    assert result["line"] == 3
    assert "duplicate LABEL 'primary'" in result["msg"]
    assert path.read_text() == text
