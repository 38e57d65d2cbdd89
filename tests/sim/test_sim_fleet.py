"""The simulated fleet as Ansible and the roles see it, and what it must never do."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.simfleet import SimFleet

from jetson_rt.sim import bootloader
from jetson_rt.sim import hardware as hw
from jetson_rt.sim.fleet import Fleet, Host
from jetson_rt.sim.image import image_exists, image_tag

pytestmark = pytest.mark.sim

STOCK_EXTLINUX = (Path(bootloader.__file__).parent / "files" / "extlinux.conf").read_text()


def test_facts_playbook_reaches_every_host(sim: SimFleet) -> None:
    """site.yml's first play: every host over SSH, described by jetson_facts."""
    result = sim.playbook("playbooks/facts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    for host in sim.hosts:
        assert re.search(rf"{host.name}\s+: ok=\d+ .*unreachable=0\s+failed=0", result.stdout)
        assert f"{host.name}: Jetson Orin Nano 8GB (developer kit), L4T 36.4.3" in result.stdout


def test_host_key_checking_is_on(sim: SimFleet, tmp_path: Path) -> None:
    """A known_hosts whose key for one host is another host's key must refuse to connect."""
    known = (sim.fleet.inventory_dir / "ssh" / "known_hosts").read_text().splitlines()
    first, second = known[0].split(), known[1].split()
    forged = tmp_path / "known_hosts"
    forged.write_text(f"{first[0]} {second[1]} {second[2]}\n")
    result = sim.ssh(sim.hosts[0], "true", check=False, known_hosts=forged)
    assert result.returncode != 0
    assert (
        "HOST IDENTIFICATION HAS CHANGED" in result.stderr or "verification failed" in result.stderr
    )
    # the generated known_hosts is what makes the normal connection work
    assert sim.ssh(sim.hosts[0], "hostname").stdout.strip() == sim.hosts[0].name


def test_each_host_has_its_own_identity(sim: SimFleet) -> None:
    keys = {
        line.split()[2]
        for line in (sim.fleet.inventory_dir / "ssh" / "known_hosts").read_text().splitlines()
    }
    assert len(keys) == len(sim.hosts)
    ids = {sim.ssh(h, "cat /etc/machine-id").stdout.strip() for h in sim.hosts}
    assert len(ids) == len(sim.hosts)
    serials = {
        sim.ssh(h, "tr -d '\\0' < /sys/firmware/devicetree/base/serial-number").stdout
        for h in sim.hosts
    }
    assert len(serials) == len(sim.hosts)


def _real(path: str) -> str:
    return Path(path).read_text()


def test_kernel_writes_never_reach_the_machine(sim: SimFleet) -> None:
    host = sim.hosts[1]
    real_paths = [
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/kernel/mm/transparent_hugepage/defrag",
        "/proc/sys/kernel/sched_rt_runtime_us",
        "/proc/sys/kernel/timer_migration",
        "/proc/sys/vm/stat_interval",
        "/proc/sys/vm/swappiness",
        "/sys/devices/virtual/workqueue/cpumask",
    ]
    real_irqs = sorted(Path("/proc/irq").glob("*/smp_affinity_list"))
    before = {p: _real(p) for p in real_paths} | {str(p): p.read_text() for p in real_irqs}
    sim.sudo(
        host,
        "echo never > /sys/kernel/mm/transparent_hugepage/enabled; "
        "echo never > /sys/kernel/mm/transparent_hugepage/defrag; "
        "echo 1 > /sys/devices/virtual/workqueue/cpumask; "
        "sysctl -q -w kernel.sched_rt_runtime_us=-1 kernel.timer_migration=0 "
        "vm.stat_interval=10 vm.swappiness=1; "
        "for f in /proc/irq/*/smp_affinity_list; do echo 0 > $f 2>/dev/null; done; true",
    )
    # the writes landed in the simulated kernel, with the kernel's read-back ...
    inside = sim.sudo(
        host,
        "cat /sys/kernel/mm/transparent_hugepage/enabled "
        "/proc/sys/kernel/sched_rt_runtime_us /proc/irq/201/smp_affinity_list "
        "/proc/irq/12/smp_affinity_list",
    )
    assert inside.split("\n")[:4] == ["always madvise [never]", "-1", "0", "0-5"]
    # ... and nowhere else
    after = {p: _real(p) for p in real_paths} | {str(p): p.read_text() for p in real_irqs}
    assert after == before
    # a kernel file the sim does not model is refused, not passed through
    refused = sim.ssh(host, "sudo sysctl -w vm.overcommit_memory=1", check=False)
    assert refused.returncode != 0
    assert "Read-only file system" in refused.stderr or "permission denied" in refused.stderr
    assert sim.ssh(host, "test -e /sys/kernel/mm/ksm/run", check=False).returncode != 0


def test_sim_host_has_no_cap_sys_admin(sim: SimFleet) -> None:
    status = sim.sudo(sim.hosts[0], "grep CapBnd /proc/1/status; grep CapEff /proc/self/status")
    for line in status.splitlines():
        mask = int(line.split()[1], 16)
        assert not mask & (1 << 21), line  # CAP_SYS_ADMIN
    refused = sim.ssh(sim.hosts[0], "sudo mount -o remount,rw /sys", check=False)
    assert refused.returncode != 0


def test_jetson_tools_act_on_the_simulated_kernel(sim: SimFleet) -> None:
    host = sim.hosts[2]
    assert sim.sudo(host, "nvpmodel -q") == "NV Power Mode: 15W\n0\n"
    # 7W takes CPUs 4-5 offline: nvpmodel asks to reboot; on EOF it applies nothing
    eof = sim.ssh(host, "sudo nvpmodel -m 3 < /dev/null", check=False)
    assert eof.returncode != 0 and "NVPM ERROR: bad input!" in eof.stderr
    assert "DO YOU WANT TO REBOOT NOW? enter YES/yes to confirm" in eof.stdout
    assert sim.sudo(host, "nvpmodel -q").startswith("NV Power Mode: 15W")
    # answered NO: recorded for the next boot, the CPUs stay online until then
    sim.sudo(host, "echo NO | nvpmodel -m 3")
    assert sim.sudo(host, "nvpmodel -q").startswith("NV Power Mode: 7W")
    assert sim.sudo(host, "cat /sys/devices/system/cpu/online").strip() == "0-5"
    _reboot(sim, host.name)
    assert sim.sudo(host, "cat /sys/devices/system/cpu/online").strip() == "0-3"
    # back to 15W (all CPUs) at the next boot, which a later test makes
    sim.sudo(host, "echo NO | nvpmodel -m 0")

    # jetson_clocks with nvfancontrol running: it owns pwm1 until --fan stops it
    fan = "/sys/class/hwmon/hwmon1/pwm1"
    assert sim.ssh(host, "systemctl is-active nvfancontrol").stdout.strip() == "active"
    sim.sudo(host, f"echo 5 > {fan}")
    _wait_for(lambda: sim.sudo(host, f"cat {fan}").strip() != "5", "nvfancontrol rewrites pwm1")
    sim.sudo(host, "jetson_clocks --store /root/clocks.conf && jetson_clocks --fan")
    stored = sim.sudo(host, "cat /root/clocks.conf")
    assert "/sys/devices/platform/gpu.0/railgate_enable:1" in stored
    assert "/sys/devices/system/cpu/cpu0/cpuidle/state1/disable:0" in stored
    shown = sim.sudo(host, "jetson_clocks --show")
    # 7W caps the GPU; jetson_clocks locks it at that cap
    gpu_cap = next(mode[4] for mode in hw.POWER_MODES if mode[1] == "7W")
    assert f"GPU MinFreq={gpu_cap} MaxFreq={gpu_cap} CurrentFreq={gpu_cap}" in shown
    assert "FreqOverride=1" in shown
    assert "IdleStates: WFI=0 c7=0" in shown
    assert "FAN Dynamic Speed control=inactive hwmon1_pwm1=255" in shown
    assert sim.sudo(host, "cat /sys/devices/platform/gpu.0/railgate_enable").strip() == "0"
    assert sim.ssh(host, "systemctl is-active nvfancontrol", check=False).stdout.strip() != "active"
    time.sleep(5)
    assert sim.sudo(host, f"cat {fan}").strip() == "255"  # nobody overwrites it now
    # --store asks before it overwrites; no answer keeps the stored file
    again = sim.ssh(host, "sudo jetson_clocks --store /root/clocks.conf < /dev/null", check=False)
    assert again.returncode != 0 and sim.sudo(host, "cat /root/clocks.conf") == stored
    sim.sudo(host, "jetson_clocks --restore /root/clocks.conf")
    shown = sim.sudo(host, "jetson_clocks --show")
    assert "GPU MinFreq=306000000" in shown and "IdleStates: WFI=1 c7=1" in shown
    assert "FAN Dynamic Speed control=active" in shown
    assert sim.sudo(host, "cat /sys/devices/platform/gpu.0/railgate_enable").strip() == "1"
    swaps = sim.sudo(host, "cat /proc/swaps")
    assert swaps.count("/dev/zram") == 6
    sim.sudo(host, "swapoff -a")
    assert "/dev/zram" not in sim.sudo(host, "cat /proc/swaps")
    assert (
        sim.ssh(
            host,
            "systemctl is-active irqbalance nvpmodel nvzramconfig gdm nv-l4t-bootloader-config "
            "nvfancontrol",
        ).stdout.split()
        == ["active"] * 6
    )


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(1)


def _add_entry(sim: SimFleet, host: Host, label: str, image: str, append: str) -> None:
    sim.sudo(
        host,
        f"cat >> /boot/extlinux/extlinux.conf <<'EOF'\n\nLABEL {label}\n"
        f"      MENU LABEL {label} kernel\n      LINUX {image}\n"
        f"      INITRD /boot/initrd\n      APPEND {append}\nEOF",
    )


def _reboot(sim: SimFleet, host_name: str) -> None:
    result = sim.ansible(
        host_name, "-b", "-m", "ansible.builtin.reboot", "-a", "reboot_timeout=120"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_reboot_follows_default_rt_flag_and_isolation_then_falls_back(
    sim: SimFleet, tmp_path: Path
) -> None:
    host = sim.hosts[3]
    rt_image = tmp_path / "Image.real-time"
    rt_image.write_text(bootloader.make_image(hw.RT_RELEASE, realtime=True))
    copy = sim.ansible(
        host.name,
        "-b",
        "-m",
        "ansible.builtin.copy",
        "-a",
        f"src={rt_image} dest=/boot/Image.real-time mode=0644",
    )
    assert copy.returncode == 0, copy.stdout
    args = (
        "${cbootargs} root=/dev/mmcblk0p1 rw rootwait isolcpus=managed_irq,domain,4-5 "
        "nohz_full=4-5 rcu_nocbs=4-5 irqaffinity=0-3"
    )
    _add_entry(sim, host, "real-time", "/boot/Image.real-time", args)
    sim.sudo(host, "sed -i 's/^DEFAULT .*/DEFAULT real-time/' /boot/extlinux/extlinux.conf")
    _reboot(sim, host.name)
    state = sim.sudo(
        host,
        "cat /sys/kernel/realtime /sys/devices/system/cpu/isolated "
        "/sys/devices/system/cpu/nohz_full /proc/cmdline; uname -r",
    )
    realtime, isolated, nohz, cmdline, release = state.splitlines()
    assert (realtime, isolated, nohz, release) == ("1", "4-5", "4-5", hw.RT_RELEASE)
    assert "rcu_nocbs=4-5 irqaffinity=0-3" in cmdline
    assert sim.sudo(host, "cat /proc/irq/201/effective_affinity_list").strip() in "0123"

    # DEFAULT that names no LABEL: entry 0 (primary, the stock kernel)
    sim.sudo(host, "sed -i 's/^DEFAULT .*/DEFAULT no-such-entry/' /boot/extlinux/extlinux.conf")
    _reboot(sim, host.name)
    assert sim.ssh(host, "test -e /sys/kernel/realtime", check=False).returncode != 0
    assert sim.sudo(host, "uname -r").strip() == hw.STOCK_RELEASE

    # a DEFAULT whose image is missing fails to load: L4TLauncher does not try entry 0,
    # it boots the kernel partition's image with that image's own command line
    sim.sudo(
        host,
        "sed -i 's/^DEFAULT .*/DEFAULT real-time/' /boot/extlinux/extlinux.conf; "
        "mv /boot/Image.real-time /boot/Image.moved",
    )
    _reboot(sim, host.name)
    assert sim.sudo(host, "uname -r").strip() == hw.STOCK_RELEASE
    cmdline = sim.sudo(host, "cat /proc/cmdline").strip()
    assert cmdline == f"{hw.KERNEL_PARTITION_CMDLINE} {hw.PLATFORM_ARGS}"
    status = _state(sim, host.name)
    assert status["linux"] == "kernel partition" and status["booted"] is None
    assert "cannot load LINUX /boot/Image.real-time" in status["boot_log"][-1]
    sim.sudo(
        host,
        f"cat > /boot/extlinux/extlinux.conf <<'EOF'\n{STOCK_EXTLINUX}EOF\nrm -f /boot/Image.moved",
    )


def _state(sim: SimFleet, host_name: str) -> dict[str, Any]:
    """What ``jetson-rt sim status`` shows of a host (its control/state file)."""
    data = json.loads((sim.fleet.mount / host_name / "control" / "state").read_text())
    assert isinstance(data, dict)
    return data


def test_a_panic_loop_ends_in_the_recovery_kernel(sim: SimFleet, tmp_path: Path) -> None:
    """L4TRootfsValidation.c: each boot takes one from slot A's retry count, only a
    verified boot (nvbootctrl verify) puts it back; at 0 the recovery kernel boots."""
    host = sim.hosts[2]
    assert "retry_count: 3,             status: normal" in sim.sudo(
        host, "nvbootctrl -t rootfs dump-slots-info"
    )
    image = tmp_path / "Image.bad"
    image.write_text(bootloader.make_image(hw.RT_RELEASE, realtime=True, boot="panic"))
    sim.ansible(
        host.name,
        "-b",
        "-m",
        "ansible.builtin.copy",
        "-a",
        f"src={image} dest=/boot/Image.bad mode=0644",
    )
    _add_entry(sim, host, "bad", "/boot/Image.bad", "${cbootargs} root=/dev/mmcblk0p1 rw")
    sim.sudo(host, "sed -i 's/^DEFAULT .*/DEFAULT bad/' /boot/extlinux/extlinux.conf")
    boots_before = int(str(_state(sim, host.name)["boots"]))
    sim.fleet.reboot([host.name], wait=False)
    deadline = time.monotonic() + 240
    state = _state(sim, host.name)
    while time.monotonic() < deadline:
        state = _state(sim, host.name)
        if state["outcome"] == "recovery":
            break
        time.sleep(1)
    log = [str(line) for line in state["boot_log"]]
    booted = log[len(log) - (int(str(state["boots"])) - boots_before) :]
    assert [line.split()[3] for line in booted] == ["panic", "panic", "panic", "recovery"], log
    assert all("label=bad" in line for line in booted[:3])
    assert state["rootfs"] == {"retry_count": 0, "status": "unbootable", "retry_max": 3}
    # the recovery kernel boots the recovery initrd: the root file system is not up
    assert sim.ssh(host, "true", check=False).returncode != 0
    # recovery as a technician would: power off, fix the boot configuration, mark the
    # slot bootable in the UEFI menu, power on
    container = host.container
    subprocess.run(["podman", "stop", "-t", "2", container], capture_output=True, check=True)
    fixed = tmp_path / "extlinux.conf"
    fixed.write_text(STOCK_EXTLINUX)
    subprocess.run(
        ["podman", "cp", str(fixed), f"{container}:/boot/extlinux/extlinux.conf"],
        capture_output=True,
        check=True,
    )
    (sim.fleet.mount / host.name / "control" / "rootfs").write_text("reset")
    subprocess.run(["podman", "start", container], capture_output=True, check=True)
    sim.fleet.wait_ssh(host)
    assert sim.sudo(host, "uname -r").strip() == hw.STOCK_RELEASE
    deadline = time.monotonic() + 60
    while "retry_count: 3" not in sim.sudo(host, "nvbootctrl -t rootfs dump-slots-info"):
        assert time.monotonic() < deadline, "a good boot did not restore the retry count"
        time.sleep(1)


def test_sim_down_leaves_nothing_behind(sim: SimFleet, tmp_path: Path) -> None:
    fleet = Fleet(name="jrtdown", inventory_dir=tmp_path / "inventory")
    fleet.up(1)
    ids = [c["Id"] for c in fleet.containers()]
    assert ids
    assert Path(fleet.mount).is_mount()
    fleet.down()
    listed = subprocess.run(
        ["podman", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [name for name in listed if name.startswith("jrtdown-")]
    networks = subprocess.run(
        ["podman", "network", "ls", "--format", "{{.Name}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "jrtdown-net" not in networks
    assert not Path(fleet.mount).exists()
    assert not fleet.state_dir.exists()
    # its hosts' cgroups are gone; the shared RT parent stays while another fleet runs
    for container_id in ids:
        assert not list(Path("/sys/fs/cgroup").glob(f"*/**/*{container_id}*"))
    assert not (fleet.inventory_dir / "ssh").exists()
    assert not (fleet.inventory_dir / "hosts.yml").exists()
    with Path("/proc/self/mounts").open() as mounts:
        assert "jrtdown" not in mounts.read()
    # ... and nothing else: the other fleet still runs, the image cache stays
    assert all(c.get("State") == "running" for c in sim.fleet.containers())
    assert image_exists(image_tag())


def test_apt_installs_rt_tests_and_cyclictest_runs_sched_fifo(sim: SimFleet) -> None:
    host = sim.hosts[0]
    sim.sudo(
        host,
        "DEBIAN_FRONTEND=noninteractive apt-get update -qq && "
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rt-tests stress-ng "
        ">/dev/null",
    )
    out = sim.sudo(
        host,
        "cyclictest -m -p 80 -t1 -a0 -i 1000 -D 2s -q --json=/tmp/ct.json "
        "& sleep 1; ps -eLo cls,rtprio,comm | grep cyclictest; wait; cat /tmp/ct.json",
    )
    # the measurement thread runs SCHED_FIFO (class FF) at priority 80
    assert re.search(r"^\s*FF\s+80\s+cyclictest", out, re.M), out
    assert "Unable to change scheduling policy" not in out
    result = json.loads(out[out.index("{") :])
    thread = result["thread"]["0"]
    assert thread["cycles"] > 1000
    assert thread["max"] >= thread["min"] >= 0
    assert sim.sudo(host, "stress-ng --cpu 1 --timeout 1s --quiet; echo done").strip() == "done"
