"""roles/rt_kernel/files/jetson-rt-boot-guard: counts unconfirmed boots of a candidate
entry and sets DEFAULT back to the known-good entry on the Nth."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

GUARD = (
    Path(__file__).resolve().parents[3] / "roles" / "rt_kernel" / "files" / "jetson-rt-boot-guard"
)
EXTLINUX = """TIMEOUT 30
DEFAULT real-time  # set by the installer
default primary

LABEL primary
      LINUX /boot/Image
      APPEND ${cbootargs} root=/dev/mmcblk0p1
# DEFAULT primary
LABEL real-time
      LINUX /boot/Image.real-time
      APPEND ${cbootargs} root=/dev/mmcblk0p1
"""


class Guard:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.conf = root / "extlinux.conf"
        self.conf.write_text(EXTLINUX)
        self.boot_id = root / "boot_id"
        self.new_boot()

    def new_boot(self) -> None:
        self.boot_id.write_text(os.urandom(8).hex() + "\n")

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "JETSON_RT_GUARD_DIR": str(self.root / "guard"),
            "JETSON_RT_GUARD_EXTLINUX": str(self.conf),
            "JETSON_RT_GUARD_BOOT_ID": str(self.boot_id),
        }
        return subprocess.run(
            ["sh", str(GUARD), *args], env=env, capture_output=True, text=True, check=False
        )

    def status(self) -> dict[str, str]:
        out = self("status").stdout
        return dict(line.split("=", 1) for line in out.splitlines())

    def default(self) -> str:
        lines = [line for line in self.conf.read_text().splitlines() if line.startswith("DEFAULT")]
        assert len(lines) == 1
        return lines[0].split()[1]


@pytest.fixture
def guard(tmp_path: Path) -> Guard:
    return Guard(tmp_path)


def test_unarmed_guard_does_nothing(guard: Guard) -> None:
    assert guard("boot").returncode == 0
    assert guard.conf.read_text() == EXTLINUX
    assert guard.status()["result"] == "none"


def test_reverts_on_the_nth_unconfirmed_boot(guard: Guard) -> None:
    assert guard("arm", "real-time", "primary", "2").returncode == 0
    assert guard("boot").returncode == 0
    assert guard.status()["boots"] == "1"
    assert guard.status()["booted_candidate"] == "1"
    assert guard.conf.read_text() == EXTLINUX  # boot 1 of 2: DEFAULT stays
    guard.new_boot()
    assert guard.status()["booted_candidate"] == "0"
    assert guard("boot").returncode == 0
    status = guard.status()
    assert status["result"] == "reverted"
    assert "booted 2 time(s) without being confirmed" in status["reason"]
    assert guard.default() == "primary"
    # only the DEFAULT line changed; comments and entries are kept
    assert guard.conf.read_text() == EXTLINUX.replace(
        "DEFAULT real-time  # set by the installer", "DEFAULT primary"
    )
    # a reverted guard no longer counts
    guard.new_boot()
    guard("boot")
    assert guard.status()["boots"] == "2"


def test_confirmed_candidate_is_left_alone(guard: Guard) -> None:
    guard("arm", "real-time", "primary", "1")
    guard("healthy")
    guard("boot")
    assert guard.default() == "real-time"
    assert guard.status()["result"] == "healthy"


def test_boots_of_another_entry_are_not_counted(guard: Guard) -> None:
    guard.conf.write_text(EXTLINUX.replace("DEFAULT real-time", "DEFAULT primary"))
    guard("arm", "real-time", "primary", "1")
    guard("boot")
    assert guard.status()["boots"] == "0"


def test_revert_records_the_reason_and_bad_arguments_are_refused(guard: Guard) -> None:
    guard("arm", "real-time", "primary", "3")
    guard("revert", "module nvgpu not loaded")
    assert guard.status()["reason"] == "module nvgpu not loaded"
    assert guard("arm", "real time", "primary", "1").returncode == 2
    assert guard("arm", "real-time", "primary", "0").returncode == 2
    assert guard("disarm").returncode == 0
    assert guard.status()["result"] == "none"


@pytest.mark.parametrize(
    ("lines", "counted"),
    [
        # L4TLauncher.c r36.5.1: a case-sensitive prefix (1139), the last DEFAULT wins (1231)
        ("DEFAULT primary\nDEFAULT real-time\n", True),
        ("DEFAULT real-time\nDEFAULT primary\n", False),
        ("default real-time\n", False),  # not a DEFAULT line: entry 0 boots
        ("DEFAULT\treal-time\t# tab and comment\n", True),
        ("DEFAULT real-time\r\n", True),  # CR dropped
        ("  # DEFAULT real-time\n", False),
    ],
)
def test_default_is_read_as_the_loader_reads_it(guard: Guard, lines: str, counted: bool) -> None:
    entries = EXTLINUX.split("\n", 3)[3]
    guard.conf.write_text("TIMEOUT 30\n" + lines + entries)
    guard("arm", "real-time", "primary", "1")
    guard("boot")
    assert guard.status()["boots"] == ("1" if counted else "0")
    if counted:
        # every DEFAULT line now names the known-good entry, CRLF kept
        text = guard.conf.read_bytes().decode()
        assert "DEFAULT real-time" not in text
        if "\r\n" in lines:
            assert "DEFAULT primary\r\n" in text
