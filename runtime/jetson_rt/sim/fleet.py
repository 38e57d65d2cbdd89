"""Bring a simulated fleet of Orin Nanos up and down, and reboot its hosts.

A host is a rootful podman container running systemd and sshd, never privileged:
its kernel files come from the fleet's kernelfs daemon (FUSE), and its PID 1
(``files/sim-init``) is a boot loader that drops CAP_SYS_ADMIN before systemd
starts. Each host publishes SSH on its own loopback address (127.0.1.N:22 for the
default fleet, another 127.0.X.0/24 for each other fleet), so
Ansible reaches it over real SSH with host-key checking on.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from jetson_rt.atomic import atomic_write_text
from jetson_rt.errors import SimError
from jetson_rt.log import logger
from jetson_rt.sim import image, rtkernel

STATE_ROOT = Path("/var/lib/jetson-rt-sim")
RUN_ROOT = Path("/run/jetson-rt-sim")
LABEL = "io.jetson-rt.sim"
SSH_WAIT_S = 90.0
# Real-time budget on kernels with RT group scheduling (cgroup v1): every fleet's
# hosts live under one parent cgroup holding most of the machine's RT budget, and
# each host gets a share of it, less when many hosts share the parent. A host that
# runs out is throttled for the rest of the period: all its RT tasks, cyclictest
# included, stall (up to ~0.9 s). Measured on a sim host: the runner serving the
# demo model at 20 Hz (the whole process SCHED_FIFO) uses ~36 ms/s and cyclictest on
# two CPUs at 1 kHz 20-40 ms/s, so 50 ms/s stalled cyclictest by 46-160 ms; 150 ms/s
# leaves room for both.
RT_CGROUP = "jetson-rt-sim"
RT_PERIOD_US = 1_000_000
RT_PARENT_US = 900_000
RT_HOST_US = 150_000
RT_HOST_MIN_US = 10_000


@dataclass(frozen=True)
class Quirks:
    """What this machine needs for systemd containers (see detect_quirks)."""

    runtime: str | None
    ulimits: tuple[str, ...]
    rt_cgroup_v1: bool

    def describe(self) -> list[str]:
        notes = []
        if self.runtime:
            notes.append(f"hybrid cgroups: OCI runtime {self.runtime}")
        if self.ulimits:
            notes.append(f"hard limits below podman's defaults: {' '.join(self.ulimits)}")
        if self.rt_cgroup_v1:
            notes.append("RT group scheduling: a parent cgroup with an RT budget")
        return notes


def detect_quirks() -> Quirks:
    """Work-arounds this machine needs; a cgroup-v2 workstation needs none."""
    cgroup_v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    runtime = None if cgroup_v2 or shutil.which("runc") is None else "runc"
    ulimits: list[str] = []
    for name, limit in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        _, hard = resource.getrlimit(limit)
        if hard != resource.RLIM_INFINITY and hard < 1_048_576:
            value = min(hard, 32768)
            ulimits.append(f"{name}={value}:{value}")
    rt_v1 = not cgroup_v2 and Path("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists()
    return Quirks(runtime=runtime, ulimits=tuple(ulimits), rt_cgroup_v1=rt_v1)


def _run(cmd: list[str], check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    logger.debug("running %s", " ".join(cmd))
    result = subprocess.run(cmd, text=True, capture_output=True, check=False, **kwargs)
    if check and result.returncode != 0:
        raise SimError(
            f"{' '.join(cmd[:4])} failed ({result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-1500:]}"
        )
    return result


def fleet_octet(name: str) -> int:
    """The third octet of a fleet's loopback addresses: 1 for the default fleet."""
    return 1 if name == "jrt" else 10 + zlib.crc32(name.encode()) % 240


@dataclass(frozen=True)
class Host:
    name: str
    index: int
    fleet: str

    @property
    def container(self) -> str:
        return f"{self.fleet}-{self.name}"

    @property
    def address(self) -> str:
        return f"127.0.{fleet_octet(self.fleet)}.{self.index}"


class Fleet:
    """One simulated fleet, named so that several can coexist."""

    def __init__(
        self,
        name: str = "jrt",
        inventory_dir: Path = Path("inventories/sim"),
        state_root: Path = STATE_ROOT,
        run_root: Path = RUN_ROOT,
    ) -> None:
        self.name = name
        self.inventory_dir = inventory_dir.resolve()
        self.state_dir = state_root / name
        self.mount = run_root / name / "kfs"
        self.network = f"{name}-net"
        self.cgroup = Path("/sys/fs/cgroup/cpu") / RT_CGROUP

    # --- hosts ----------------------------------------------------------------------

    def host(self, index: int) -> Host:
        return Host(name=f"orin-nano-{index:02d}", index=index, fleet=self.name)

    def containers(self) -> list[dict[str, Any]]:
        result = _run(
            ["podman", "ps", "-a", "--filter", f"label={LABEL}={self.name}", "--format", "json"],
            check=False,
        )
        if result.returncode != 0 or not result.stdout.strip():
            return []
        data: list[dict[str, Any]] = json.loads(result.stdout)
        return sorted(data, key=lambda c: str(c.get("Names", [""])[0]))

    def hosts(self) -> list[Host]:
        found = []
        for container in self.containers():
            labels = container.get("Labels") or {}
            if "io.jetson-rt.sim.index" in labels:
                found.append(self.host(int(labels["io.jetson-rt.sim.index"])))
        return sorted(found, key=lambda h: h.index)

    # --- up -------------------------------------------------------------------------

    def up(self, count: int = 4, rebuild: bool = False) -> list[Host]:
        _require_root()
        if not 1 <= count <= 60:
            raise SimError(f"--hosts must be between 1 and 60, not {count}")
        quirks = detect_quirks()
        for note in quirks.describe():
            logger.info("machine quirk handled: %s", note)
        tag = image.build(force=rebuild)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        missing = {h.container for h in (self.host(i) for i in range(1, count + 1))} - {
            c["Names"][0] for c in self.containers()
        }
        rt_budget = self._ensure_cgroup(quirks, len(missing))
        self._ensure_network()
        self._ensure_kernelfs()
        key = self._ensure_fleet_key()
        kernel = rtkernel.publish(self.state_dir / "rt-kernel")
        wanted = [self.host(i) for i in range(1, count + 1)]
        for extra in self.hosts():
            if extra.index > count:
                self._remove_host(extra)
        existing = {c["Names"][0]: c for c in self.containers()}
        for host in wanted:
            container = existing.get(host.container)
            if container is None:
                self._create_host(host, tag, quirks, key, rt_budget)
            elif container.get("State") != "running":
                _run(["podman", "start", host.container])
        for host in wanted:
            self.wait_ssh(host)
        self._write_inventory(wanted, key, kernel)
        for host in wanted:
            self._check_login(host, key)
        return wanted

    def _ensure_cgroup(self, quirks: Quirks, count: int) -> int:
        """The shared RT parent cgroup; returns the RT budget for each of ``count`` new hosts.

        0 means no budget is left: those hosts start, but SCHED_FIFO is refused
        inside them (as on a kernel whose RT throttling leaves nothing), and a
        warning says so.
        """
        if not quirks.rt_cgroup_v1 or count == 0:
            return 0
        root = self.cgroup.parent
        self.cgroup.mkdir(exist_ok=True)
        own = self.cgroup / "cpu.rt_runtime_us"
        if int(own.read_text()) < RT_PARENT_US:
            others = sum(
                int((d / "cpu.rt_runtime_us").read_text())
                for d in root.iterdir()
                if d.is_dir() and d != self.cgroup and (d / "cpu.rt_runtime_us").exists()
            )
            # a margin: the kernel compares budgets as fixed-point ratios
            target = min(
                RT_PARENT_US, (int((root / "cpu.rt_runtime_us").read_text()) - others) * 95 // 100
            )
            # A cgroup removed moments ago keeps its budget until the kernel frees
            # it: retry for a few seconds.
            deadline = time.monotonic() + 10
            while int(own.read_text()) < target:
                try:
                    own.write_text(str(target))
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
        used = sum(
            int((d / "cpu.rt_runtime_us").read_text())
            for d in self.cgroup.iterdir()
            if (d / "cpu.rt_runtime_us").exists()
        )
        per_host = min(RT_HOST_US, (int(own.read_text()) - used) // count)
        if per_host < RT_HOST_MIN_US:
            logger.warning(
                "no real-time budget left for %d more sim hosts: SCHED_FIFO will be "
                "refused inside them (take other fleets down to get it back)",
                count,
            )
            return 0
        return per_host

    def _ensure_network(self) -> None:
        if _run(["podman", "network", "exists", self.network], check=False).returncode != 0:
            _run(["podman", "network", "create", "--label", f"{LABEL}={self.name}", self.network])

    def _ensure_kernelfs(self) -> None:
        if os.path.ismount(self.mount):
            return
        self.mount.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "hosts").mkdir(parents=True, exist_ok=True)
        # setsid -f: the daemon is no child of ours and outlives this process;
        # it writes its pid file and is stopped by down().
        with (self.state_dir / "kernelfs.log").open("ab") as log:
            _run_detached(
                [
                    sys.executable,
                    "-m",
                    "jetson_rt",
                    "sim",
                    "kernelfs",
                    "--state-dir",
                    str(self.state_dir),
                    "--mount",
                    str(self.mount),
                ],
                log,
            )
        deadline = time.monotonic() + 15
        while not os.path.ismount(self.mount):
            if time.monotonic() > deadline:
                raise SimError(
                    f"the kernel file daemon did not mount {self.mount}; "
                    f"see {self.state_dir / 'kernelfs.log'}"
                )
            time.sleep(0.1)

    def _ensure_fleet_key(self) -> Path:
        key = self.inventory_dir / "ssh" / "fleet_ed25519"
        _ssh_keygen(key, f"jetson-rt sim fleet {self.name}")
        return key

    def _create_host(self, host: Host, tag: str, quirks: Quirks, key: Path, rt_budget: int) -> None:
        host_dir = self.state_dir / "hosts" / host.name
        host_key = host_dir / "ssh_host_ed25519_key"
        _ssh_keygen(host_key, f"root@{host.name}")
        cmd = [
            "podman",
            "create",
            "--name",
            host.container,
            "--hostname",
            host.name,
            "--label",
            f"{LABEL}={self.name}",
            "--label",
            f"io.jetson-rt.sim.index={host.index}",
            "--network",
            self.network,
            "--publish",
            f"{host.address}:22:22",
            "--systemd=always",
            "--restart=always",
            # sim-init needs CAP_SYS_ADMIN to lay the kernel files; it drops it
            # from the bounding set before systemd starts.
            "--cap-add",
            "SYS_ADMIN",
            "--cap-add",
            "SYS_NICE",
            "--cap-add",
            "IPC_LOCK",
            "--cap-add",
            "AUDIT_WRITE",
            "--volume",
            f"{self.mount / host.name}:/.sim/kernel",
        ]
        if quirks.runtime:
            cmd += ["--runtime", quirks.runtime]
        for ulimit in quirks.ulimits:
            cmd += ["--ulimit", ulimit]
        if quirks.rt_cgroup_v1:
            cmd.append(f"--cgroup-parent=/{RT_CGROUP}")
            if rt_budget:
                cmd += [f"--cpu-rt-period={RT_PERIOD_US}", f"--cpu-rt-runtime={rt_budget}"]
        _run([*cmd, tag])
        _run(["podman", "cp", str(host_key), f"{host.container}:/etc/ssh/ssh_host_ed25519_key"])
        _run(
            [
                "podman",
                "cp",
                f"{host_key}.pub",
                f"{host.container}:/etc/ssh/ssh_host_ed25519_key.pub",
            ]
        )
        _run(
            [
                "podman",
                "cp",
                f"{key}.pub",
                f"{host.container}:/home/{image.SIM_USER}/.ssh/authorized_keys",
            ]
        )
        machine_id = host_dir / "machine-id"
        if not machine_id.exists():
            machine_id.write_text(uuid.uuid4().hex + "\n")
        _run(["podman", "cp", str(machine_id), f"{host.container}:/etc/machine-id"])
        _run(["podman", "start", host.container])

    def wait_ssh(self, host: Host, timeout: float = SSH_WAIT_S) -> float:
        """Seconds until the host's sshd answers; raises SimError on timeout."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                with socket.create_connection((host.address, 22), timeout=2) as conn:
                    if conn.recv(8).startswith(b"SSH-"):
                        return time.monotonic() - start
            except OSError:
                pass
            time.sleep(0.2)
        raise SimError(
            f"{host.name} ({host.address}) did not answer on SSH within "
            f"{timeout:.0f} s; see `jetson-rt sim status` and "
            f"`podman logs {host.container}`"
        )

    def _ssh_base(self, key: Path) -> list[str]:
        return [
            "ssh",
            "-i",
            str(key),
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={self.inventory_dir / 'ssh' / 'known_hosts'}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=10",
        ]

    def _check_login(self, host: Host, key: Path) -> None:
        _run([*self._ssh_base(key), f"{image.SIM_USER}@{host.address}", "true"])

    def _write_inventory(self, hosts: list[Host], key: Path, kernel: tuple[Path, str]) -> None:
        ssh_dir = self.inventory_dir / "ssh"
        lines = []
        for host in hosts:
            pub = (self.state_dir / "hosts" / host.name / "ssh_host_ed25519_key.pub").read_text()
            kind, blob = pub.split()[:2]
            lines.append(f"{host.address} {kind} {blob}\n")
        atomic_write_text(ssh_dir / "known_hosts", "".join(lines))
        half = (len(hosts) + 1) // 2
        line_a, line_b = hosts[:half], hosts[half:]
        canary = [line[0] for line in (line_a, line_b) if line]

        def members(group: list[Host]) -> dict[str, Any]:
            return {h.name: None for h in group}

        inventory = {
            "all": {
                "vars": {
                    "ansible_user": image.SIM_USER,
                    "ansible_ssh_private_key_file": str(key),
                    "ansible_ssh_common_args": (
                        f"-o UserKnownHostsFile={ssh_dir / 'known_hosts'} "
                        "-o StrictHostKeyChecking=yes"
                    ),
                    "jetson_rt_sim_fleet": self.name,
                    # the simulated PREEMPT_RT kernel (jetson_rt.sim.rtkernel), installed by
                    # the rt_kernel role's artifact method (group_vars/sim.yml)
                    "jetson_rt_sim_rt_kernel_artifact": str(kernel[0]),
                    "jetson_rt_sim_rt_kernel_artifact_sha256": kernel[1],
                },
                "hosts": {h.name: {"ansible_host": h.address} for h in hosts},
                "children": {
                    "jetson": {
                        "children": {
                            "line_a": {"hosts": members(line_a)},
                            "line_b": {"hosts": members(line_b)},
                        }
                    },
                    "canary": {"hosts": members(canary)},
                    "sim": {"hosts": members(hosts)},
                },
            }
        }
        header = (
            f"# Generated by `jetson-rt sim up` for the simulated fleet {self.name!r}.\n"
            "# `jetson-rt sim down` removes it; edit group_vars/, not this file.\n"
        )
        atomic_write_text(
            self.inventory_dir / "hosts.yml", header + yaml.safe_dump(inventory, sort_keys=False)
        )

    # --- down -----------------------------------------------------------------------

    def _remove_host(self, host: Host) -> None:
        _run(["podman", "rm", "-f", "-t", "5", host.container], check=False)
        shutil.rmtree(self.state_dir / "hosts" / host.name, ignore_errors=True)

    def down(self, purge_image: bool = False) -> None:
        _require_root()
        for container in self.containers():
            _run(["podman", "rm", "-f", "-t", "5", container["Names"][0]], check=False)
        _run(["podman", "network", "rm", "-f", self.network], check=False)
        pid_file = self.state_dir / "kernelfs.pid"
        if os.path.ismount(self.mount):
            _run(["fusermount", "-u", str(self.mount)], check=False)
            if os.path.ismount(self.mount):
                _run(["umount", "-l", str(self.mount)], check=False)
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), 15)
        shutil.rmtree(self.mount.parent, ignore_errors=True)
        self._remove_cgroups()
        shutil.rmtree(self.state_dir, ignore_errors=True)
        for parent in (self.state_dir.parent, self.mount.parent.parent):
            with contextlib.suppress(OSError):
                parent.rmdir()  # only when no other fleet uses it
        shutil.rmtree(self.inventory_dir / "ssh", ignore_errors=True)
        (self.inventory_dir / "hosts.yml").unlink(missing_ok=True)
        if purge_image:
            image.remove_images()

    def _remove_cgroups(self) -> None:
        """The shared parent cgroup in every v1 hierarchy, once no fleet is left."""
        others = _run(["podman", "ps", "-a", "-q", "--filter", f"label={LABEL}"], check=False)
        if others.stdout.strip():
            return
        deadline = time.monotonic() + 10
        for top in Path("/sys/fs/cgroup").glob(f"*/{RT_CGROUP}"):
            children = [d for d in top.rglob("*") if d.is_dir()]
            for directory in [*sorted(children, key=lambda d: len(d.parts), reverse=True), top]:
                while True:
                    try:
                        directory.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError as exc:
                        if time.monotonic() > deadline:
                            logger.warning("could not remove %s: %s", directory, exc)
                            break
                        time.sleep(0.2)

    # --- status and reboot ----------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        rows = []
        states = {c["Names"][0]: c.get("State", "?") for c in self.containers()}
        for host in self.hosts():
            row: dict[str, Any] = {
                "host": host.name,
                "address": host.address,
                "container": states.get(host.container, "missing"),
            }
            try:
                row.update(json.loads((self.mount / host.name / "control" / "state").read_text()))
            except (OSError, ValueError):
                row["kernel"] = "unavailable"
            rows.append(row)
        return rows

    def reboot(self, names: list[str], hard: bool = False, wait: bool = True) -> None:
        hosts = {h.name: h for h in self.hosts()}
        unknown = [n for n in names if n not in hosts]
        if unknown:
            raise SimError(
                f"no such sim host: {', '.join(unknown)} (hosts: {', '.join(hosts) or 'none'})"
            )
        for name in names:
            host = hosts[name]
            if hard:
                # Power cycle: no shutdown, as when the reset line is pulled.
                _run(["podman", "kill", host.container], check=False)
                _run(["podman", "start", host.container])
            else:
                _run(["podman", "exec", host.container, "systemctl", "reboot"], check=False)
        if wait:
            time.sleep(1.0)
            for name in names:
                self.wait_ssh(hosts[name])


def _ssh_keygen(path: Path, comment: str) -> None:
    """An ed25519 key pair without passphrase at ``path``, unless one is there."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])


def _run_detached(cmd: list[str], log: Any) -> None:
    subprocess.run(
        ["setsid", "-f", *cmd], stdout=log, stderr=log, stdin=subprocess.DEVNULL, check=True
    )


def _require_root() -> None:
    if os.geteuid() != 0:
        raise SimError("the simulated fleet uses rootful podman: run as root")
    if shutil.which("podman") is None:
        raise SimError("podman is not installed (apt-get install podman runc)")
