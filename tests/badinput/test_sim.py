"""Bad input to ``jetson-rt sim``: fleet names that are not letters, digits and '-'.

The name becomes folders under /var/lib/jetson-rt-sim and /run/jetson-rt-sim that
``down`` removes, container and network names, so every action refuses such a name
before it does anything: no podman call, no folder created or removed. Each case runs
with a stand-in ``podman`` (and ``fusermount``, ``ssh-keygen``) first on PATH that only
records that it was called; the test asserts it never was. So no case can start or
remove a container, whatever the code under test does.

The ``down`` cases use names that resolve to folders that do not exist, so that even a
version without the check removes nothing (and the stand-in ``podman`` answers as if a
fleet were running, so such a version leaves the shared cgroups alone too).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from tests.badinput.harness import Case, check_refused, ids

from jetson_rt.sim.fleet import Fleet, inventory_header

NAME = r"fleet name %s is not allowed: use 1 to 32 letters, digits or '-'"
ABSENT = "jrt-badinput-absent"

CASES: list[Case] = [
    Case("status-empty", ("sim", "--name", "", "status"), NAME % "''"),
    Case("status-slash", ("sim", "--name", "a/b", "status"), NAME % "'a/b'"),
    Case("status-root", ("sim", "--name", "/", "status"), NAME % "'/'"),
    Case("status-dot", ("sim", "--name", ".", "status"), NAME % r"'\.'"),
    Case("status-dotdot", ("sim", "--name", "..", "status"), NAME % r"'\.\.'"),
    Case("status-parent-path", ("sim", "--name", "../jrt", "status"), NAME % r"'\.\./jrt'"),
    Case("status-leading-dash", ("sim", "--name=-jrt", "status"), NAME % "'-jrt'"),
    Case("status-space", ("sim", "--name", "jrt 2", "status"), NAME % "'jrt 2'"),
    Case("status-underscore", ("sim", "--name", "jrt_2", "status"), NAME % "'jrt_2'"),
    Case("status-dot-inside", ("sim", "--name", "jrt.2", "status"), NAME % r"'jrt\.2'"),
    Case("status-shell", ("sim", "--name", "jrt;rm -rf x", "status"), NAME % "'jrt;rm -rf x'"),
    Case("status-glob", ("sim", "--name", "jrt*", "status"), NAME % r"'jrt\*'"),
    Case("status-newline", ("sim", "--name", "jrt\n", "status"), NAME % r"'jrt\\n'"),
    Case("status-non-ascii", ("sim", "--name", "jrt\u00e9", "status"), NAME % "'jrt\u00e9'"),
    Case("status-33-chars", ("sim", "--name", "j" * 33, "status"), NAME % f"'{'j' * 33}'"),
    Case("up-empty", ("sim", "--name", "", "up", "--hosts", "0"), NAME % "''"),
    Case("up-parent-path", ("sim", "--name", "../x", "up", "--hosts", "0"), NAME % r"'\.\./x'"),
    Case("up-absolute", ("sim", "--name", "/tmp/x", "up", "--hosts", "0"), NAME % "'/tmp/x'"),
    Case("reboot-slash", ("sim", "--name", "a/b", "reboot", "orin-nano-01"), NAME % "'a/b'"),
    Case("down-parent-path", ("sim", "--name", f"../{ABSENT}", "down"),
         NAME % rf"'\.\./{ABSENT}'"),
    Case("down-through-fleet", ("sim", "--name", f"jrt/../{ABSENT}", "down"),
         NAME % rf"'jrt/\.\./{ABSENT}'"),
    Case("down-dotdot-inside", ("sim", "--name", f"{ABSENT}/..", "down"),
         NAME % rf"'{ABSENT}/\.\.'"),
]  # fmt: skip

STAND_INS = ("podman", "fusermount", "ssh-keygen", "umount")


@pytest.fixture
def stand_ins(tmp_path: Path) -> tuple[Path, Path]:
    """A folder of commands that record their call and fail, and the record file."""
    bin_dir, record = tmp_path / "bin", tmp_path / "called"
    bin_dir.mkdir()
    for name in STAND_INS:
        script = bin_dir / name
        # Prints something, so that a `down` that gets this far takes it for a running
        # fleet and leaves the shared cgroups alone.
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{record}"\necho stand-in\nexit 1\n')
        script.chmod(0o755)
    return bin_dir, record


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_refused(case: Case, tmp_path: Path, stand_ins: tuple[Path, Path]) -> None:
    bin_dir, record = stand_ins
    env = {**case.env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    check_refused(dataclasses.replace(case, env=env), tmp_path / "case")
    assert not record.exists(), f"refused, but ran: {record.read_text()}"
    assert not Path("/var/lib", ABSENT).exists()
    assert not Path("/run", ABSENT).exists()


# --------------------------------------------------------------------------- down's inventory


def inventory(folder: Path, fleet: str) -> None:
    (folder / "ssh").mkdir(parents=True)
    (folder / "hosts.yml").write_text(inventory_header(fleet) + "all: {}\n")
    (folder / "ssh" / "known_hosts").write_text("127.0.1.1 ssh-ed25519 AAAA\n")
    (folder / "ssh" / "fleet_ed25519").write_text("key\n")
    (folder / "ssh" / "fleet_ed25519.pub").write_text(
        f"ssh-ed25519 AAAA jetson-rt sim fleet {fleet}\n"
    )


def test_down_removes_its_own_inventory_and_only_that(tmp_path: Path) -> None:
    folder = tmp_path / "inventory"
    inventory(folder, "jrtmine")
    (folder / "group_vars").mkdir()
    (folder / "group_vars" / "sim.yml").write_text("x: 1\n")
    (folder / "ssh" / "config").write_text("Host *\n")  # the user's, not the fleet's
    Fleet(name="jrtmine", inventory_dir=folder)._remove_inventory()
    left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert left == ["group_vars", "group_vars/sim.yml", "ssh", "ssh/config"]


def test_down_leaves_another_fleets_inventory(tmp_path: Path) -> None:
    folder = tmp_path / "inventory"
    inventory(folder, "jrt")
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    Fleet(name="jrt2", inventory_dir=folder)._remove_inventory()
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before


def test_down_after_a_failed_up_removes_its_key(tmp_path: Path) -> None:
    folder = tmp_path / "inventory"
    inventory(folder, "jrtkey")
    (folder / "hosts.yml").unlink()  # `up` failed before writing the inventory
    Fleet(name="jrtkey", inventory_dir=folder)._remove_inventory()
    assert list(folder.iterdir()) == []


def test_fleet_refuses_a_bad_name_before_anything(tmp_path: Path) -> None:
    from jetson_rt.errors import SimError

    with pytest.raises(SimError, match=r"fleet name '\.\./x' is not allowed"):
        Fleet(name="../x", inventory_dir=tmp_path, state_root=tmp_path / "state")
    assert list(tmp_path.iterdir()) == []
    for name in ("jrt", "jrt2", "line-a-01", "A" * 32):
        assert Fleet(name=name, inventory_dir=tmp_path).state_dir.name == name
