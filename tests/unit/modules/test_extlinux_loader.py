"""One reading of extlinux.conf: L4TLauncher's, for the module and the simulated loader.

Every case names the lines of NVIDIA/edk2-nvidia r36.5.1
``Silicon/NVIDIA/Application/L4TLauncher/L4TLauncher.c`` it mirrors
(``ProcessExtLinuxConfig`` is the same in r36.3.0, r36.4.0, r36.4.4 and r36.5.1).
"""

from __future__ import annotations

import pytest
from ansible_collections.jetson_rt.fleet.plugins.module_utils.extlinux import (
    ExtlinuxConf,
    ExtlinuxError,
    loader_path,
    loader_read,
    parse_args,
)

BASE = "DEFAULT b\nLABEL a\n LINUX /a\n APPEND ${cbootargs} root=/r\nLABEL b\n LINUX /b\n"


# (id, file text, DEFAULT as read, booted label, {label: {field: value}}, L4TLauncher lines)
CASES: list[tuple[str, str, str | None, str | None, dict[str, dict[str, str | None]]]] = [
    ("stock file", BASE, "b", "b", {"a": {"linux": "/a", "append": "root=/r"}}),  # 1223-1277
    # CleanExtLinuxLine, 516-541: '#' anywhere cuts the line; spaces and tabs trimmed
    (
        "comment mid-line",
        "LABEL a\n LINUX /a # old\n APPEND x #y\n",
        None,
        "a",
        {"a": {"linux": "/a", "append": "x"}},
    ),
    ("indented comment", "LABEL a\n LINUX /a\n   # LINUX /z\n", None, "a", {"a": {"linux": "/a"}}),
    ("tab after key", "LABEL a\n\tLINUX\t/a\t\n", None, "a", {"a": {"linux": "/a"}}),
    # FileHandleReturnLine: every CR dropped, also inside the line
    ("CRLF and stray CR", "LABEL a\r\n LIN\rUX /a\r\n", None, "a", {"a": {"linux": "/a"}}),
    # CheckCommandString 1137-1141: case-sensitive prefix match, glued value accepted
    (
        "lower-case key ignored",
        "LABEL a\n linux /z\n LINUX /a\n",
        None,
        "a",
        {"a": {"linux": "/a"}},
    ),
    (
        "glued key",
        "LABEL a\n LINUX/a\n FDTDIR /d\n",
        None,
        "a",
        {"a": {"linux": "/a", "fdt": "DIR /d"}},
    ),
    # 1231: DEFAULT is re-read on every line: the last one wins
    (
        "last DEFAULT wins",
        "DEFAULT a\nLABEL a\n LINUX /a\nLABEL b\n LINUX /b\nDEFAULT b\n",
        "b",
        "b",
        {},
    ),
    ("DEFAULTx is DEFAULT", "DEFAULTb\nLABEL a\n LINUX /a\nLABEL b\n LINUX /b\n", "b", "b", {}),
    # 1302-1308: exact StrCmp, the first matching entry; no match or none -> entry 0
    ("DEFAULT case differs", "DEFAULT B\nLABEL a\n LINUX /a\nLABEL b\n LINUX /b\n", "B", "a", {}),
    (
        "duplicate LABEL: first",
        "DEFAULT a\nLABEL a\n LINUX /1\nLABEL a\n LINUX /2\n",
        "a",
        "a",
        {"a": {"linux": "/1"}},
    ),
    ("no DEFAULT", "LABEL a\n LINUX /a\nLABEL b\n LINUX /b\n", None, "a", {}),
    # 1249-1253: entry keys need an entry; before the first LABEL they are ignored
    (
        "key before LABEL",
        "LINUX /z\nLABEL a\n APPEND x\n",
        None,
        "a",
        {"a": {"linux": None, "append": "x"}},
    ),
    # a key twice in one entry: the last value stays
    (
        "second APPEND wins",
        "LABEL a\n LINUX /a\n APPEND one\n APPEND two\n",
        None,
        "a",
        {"a": {"append": "two"}},
    ),
    # 1279-1287: the first ${cbootargs} and the spaces after it are deleted, nothing else
    (
        "cbootargs deleted",
        "LABEL a\n LINUX /a\n APPEND x ${cbootargs}   y ${cbootargs}\n",
        None,
        "a",
        {"a": {"append": "x y ${cbootargs}"}},
    ),
    (
        "cbootargs then tab",
        "LABEL a\n LINUX /a\n APPEND ${cbootargs}\ty\n",
        None,
        "a",
        {"a": {"append": "\ty"}},
    ),
    ("no APPEND", "LABEL a\n LINUX /a\n", None, "a", {"a": {"append": None}}),
    # unknown lines are ignored (the if-chain has no else)
    ("unknown key", "LABEL a\n LINUX /a\n KERNEL /z\n SAY hi\n", None, "a", {"a": {"linux": "/a"}}),
    (
        "MENU LABEL not LABEL",
        "LABEL a\n MENU LABEL b\n LINUX /a\n",
        None,
        "a",
        {"a": {"menu_label": "b"}},
    ),
]


@pytest.mark.parametrize(
    ("text", "default", "booted", "fields"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_loader_reading(
    text: str, default: str | None, booted: str | None, fields: dict[str, dict[str, str | None]]
) -> None:
    config = loader_read(text)
    assert config.default == default
    index = config.boot_index
    assert (None if index is None else config.entries[index].label) == booted
    by_label: dict[str, object] = {}
    for entry in config.entries:
        by_label.setdefault(entry.label, entry)
    for label, values in fields.items():
        for name, value in values.items():
            assert getattr(by_label[label], name) == value, (label, name)


def test_eleventh_label_is_dropped_and_its_keys_overwrite_entry_ten() -> None:
    # 1241: LABEL only while NumberOfBootOptions < 10; 1249: later keys go to entry 10
    text = "".join(f"LABEL e{n}\n LINUX /e{n}\n" for n in range(11))
    config = loader_read(text + "DEFAULT e10\n")
    assert [e.label for e in config.entries] == [f"e{n}" for n in range(10)]
    assert config.entries[9].linux == "/e10"
    assert config.boot_index == 0  # e10 is no LABEL


def test_timeout_is_the_leading_decimal_digits() -> None:
    # 1223-1228: StrDecimalToUintn
    assert loader_read("TIMEOUT 30\n").timeout == 30
    assert loader_read("TIMEOUT 5s\n").timeout == 5
    assert loader_read("TIMEOUT x\n").timeout == 0


@pytest.mark.parametrize(
    ("written", "opened"),
    [
        ("/boot/Image", "/boot/Image"),
        ("boot/Image", "/boot/Image"),  # relative to the partition's root
        ("/boot/./x/../Image", "/boot/Image"),  # PathCleanUpDirectories, 1312-1327
        ("//boot//Image", "/boot/Image"),
        ("\\boot\\Image", "/boot/Image"),
    ],
)
def test_paths_as_uefi_opens_them(written: str, opened: str) -> None:
    assert loader_path(written) == opened


def test_what_the_module_accepts_it_reads_as_the_loader_does() -> None:
    # The module refuses what is ambiguous; what it accepts, it must read like L4TLauncher.
    accepted = [case for case in CASES if _accepts(case[1])]
    assert len(accepted) >= 8
    for _, text, *_ in accepted:
        module = ExtlinuxConf(text).facts()
        loader = loader_read(text)
        assert module["default"] == loader.default
        assert module["boot_index"] == loader.boot_index
        for fact, entry in zip(module["entries"], loader.entries, strict=True):
            assert fact["label"] == entry.label
            assert fact["linux"] == entry.linux
            assert fact["initrd"] == entry.initrd
            if fact["append"] is None:
                assert entry.append is None
                continue
            # the same kernel arguments, ${cbootargs} (deleted by the loader) aside
            words = list(fact["args_list"])
            if "${cbootargs}" in words:
                words.remove("${cbootargs}")
            assert parse_args(entry.append or "")["args_list"] == words


def _accepts(text: str) -> bool:
    try:
        ExtlinuxConf(text)
    except ExtlinuxError:
        return False
    return True
