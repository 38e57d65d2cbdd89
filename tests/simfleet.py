"""Helpers for tests against the simulated fleet: a fleet for a test module, SSH, ansible
and ansible-playbook.

Each test module that needs hosts of its own names its fleet (its own containers,
addresses and inventory), so a developer's `jetson-rt sim up` fleet and the other
modules' fleets are left alone. Without root or podman these tests skip, unless
JETSON_RT_REQUIRE_SIM=1 (CI sets it) turns that into a failure.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from jetson_rt.sim.fleet import Fleet, Host

REPO = Path(__file__).resolve().parents[1]


def require_sim() -> None:
    """Skip the calling test or fixture where the simulated fleet cannot run."""
    if os.geteuid() != 0:
        reason = "the simulated fleet needs root (rootful podman)"
    elif shutil.which("podman") is None:
        reason = "podman is not installed"
    else:
        return
    if os.environ.get("JETSON_RT_REQUIRE_SIM") == "1":
        pytest.fail(f"sim tests required but {reason}")
    pytest.skip(reason)


@contextmanager
def sim_fleet(name: str, count: int, inventory_dir: Path) -> Iterator[SimFleet]:
    """A fresh fleet of ``count`` hosts, removed afterwards (a fleet of that name left
    over by an interrupted run is removed first)."""
    require_sim()
    fleet = Fleet(name=name, inventory_dir=inventory_dir)
    fleet.down()
    try:
        yield SimFleet(fleet=fleet, hosts=fleet.up(count))
    finally:
        fleet.down()


@dataclass
class SimFleet:
    fleet: Fleet
    hosts: list[Host]

    @property
    def inventory(self) -> Path:
        return self.fleet.inventory_dir / "hosts.yml"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        }

    def ssh(
        self, host: Host | str, command: str, check: bool = True, known_hosts: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        address = host.address if isinstance(host, Host) else host
        ssh_dir = self.fleet.inventory_dir / "ssh"
        result = subprocess.run(
            [
                "ssh",
                "-i",
                str(ssh_dir / "fleet_ed25519"),
                "-o",
                "BatchMode=yes",
                "-o",
                f"UserKnownHostsFile={known_hosts or ssh_dir / 'known_hosts'}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "ConnectTimeout=10",
                f"jetson@{address}",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check:
            assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
        return result

    def sudo(self, host: Host | str, command: str, check: bool = True) -> str:
        return self.ssh(host, f"sudo sh -c {shlex.quote(command)}", check=check).stdout

    def _tool(
        self, tool: str, args: tuple[str, ...], timeout: float, inventory: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(Path(sys.executable).with_name(tool)),
                "-i",
                str(inventory or self.inventory),
                *args,
            ],
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=REPO,
            timeout=timeout,
            check=False,
        )

    def ansible(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return self._tool("ansible", args, timeout)

    def playbook(
        self, *args: str, timeout: float = 900, inventory: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """ansible-playbook on the fleet's inventory, or on ``inventory`` (another view of
        the same hosts)."""
        return self._tool("ansible-playbook", args, timeout, inventory)


def recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP counters (ok, changed, unreachable, failed...) of each host."""
    rows = {}
    for host, counters in re.findall(r"^(\S+)\s+: (ok=.*)$", output, re.MULTILINE):
        rows[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
    return rows
