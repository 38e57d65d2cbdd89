"""playbooks/tune.yml and playbooks/restore.yml (role rt_tuning) against simulated Orin Nanos.

One fleet of two hosts serves the whole module, and the tests run in file order as
a host's life does: refused inputs and check mode on stock hosts, then a converge
that reboots into the new boot arguments, idempotence, and the undo back to stock.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.simfleet import REPO, SimFleet, recap, sim_fleet

from jetson_rt.sim import bootloader

pytestmark = pytest.mark.sim

FLEET_NAME = "tunetest"
STOCK_EXTLINUX = (Path(bootloader.__file__).parent / "files" / "extlinux.conf").read_text()
THP = "/sys/kernel/mm/transparent_hugepage"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    with sim_fleet(FLEET_NAME, 2, tmp_path_factory.mktemp("tune") / "sim") as sim:
        yield sim


def run(fleet: SimFleet, playbook: str, *args: str) -> tuple[str, dict[str, dict[str, int]]]:
    result = fleet.playbook(playbook, *args)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output, recap(result.stdout)


def host_state(fleet: SimFleet, index: int) -> dict[str, str]:
    """Every knob the role sets, read through the simulated kernel files and the host."""
    script = {
        "cmdline": "cat /proc/cmdline",
        "isolated": "cat /sys/devices/system/cpu/isolated",
        "nohz_full": "cat /sys/devices/system/cpu/nohz_full",
        "thp_enabled": f"cat {THP}/enabled",
        "thp_defrag": f"cat {THP}/defrag",
        "wq": "cat /sys/devices/virtual/workqueue/cpumask",
        "writeback": "cat /sys/bus/workqueue/devices/writeback/cpumask",
        "rt_runtime": "cat /proc/sys/kernel/sched_rt_runtime_us",
        "timer_migration": "cat /proc/sys/kernel/timer_migration",
        "stat_interval": "cat /proc/sys/vm/stat_interval",
        "governors": "cat /sys/devices/system/cpu/cpufreq/policy*/scaling_governor | sort -u",
        "cpu_locked": "for p in /sys/devices/system/cpu/cpufreq/policy*; do "
        "[ $(cat $p/scaling_min_freq) = $(cat $p/scaling_max_freq) ] && echo y || echo n; done "
        "| sort -u",
        "gpu_pm": "cat /sys/devices/platform/bus@0/17000000.gpu/power/control",
        "swaps": "tail -n +2 /proc/swaps | wc -l",
        "irq_eth0": "cat /proc/irq/201/smp_affinity_list",
        "irq_i2c": "cat /proc/irq/19/smp_affinity_list",
        "nvpmodel": "nvpmodel -q | head -1",
        "pm_default": "grep PM_CONFIG /etc/nvpmodel.conf",
        "irqbalance": "systemctl is-active irqbalance; systemctl is-enabled irqbalance",
        "gdm": "systemctl is-active gdm; systemctl is-enabled gdm",
        "zram": "systemctl is-enabled nvzramconfig",
        "units": "systemctl is-enabled jetson-rt-tune jetson-rt-clocks 2>&1",
        "limits": "cat /etc/security/limits.d/90-jetson-rt.conf 2>/dev/null | grep -v '^#'",
        "sysctl_d": "cat /etc/sysctl.d/90-jetson-rt.conf 2>/dev/null | grep -v '^#'",
        "fstab": "grep swap /etc/fstab",
        "extlinux": "cat /boot/extlinux/extlinux.conf",
        "stock_record": "test -e /var/lib/jetson-rt/rt_tuning/stock.json && echo yes || echo no",
    }
    # one SSH session for all of them: each output follows a marker line
    joined = "; ".join(f"echo @@{key}; {command}" for key, command in script.items())
    out = fleet.sudo(fleet.hosts[index], joined, check=False)
    state = {}
    for chunk in out.split("@@")[1:]:
        key, _, value = chunk.partition("\n")
        state[key] = value if key == "extlinux" else " ".join(value.split())
    return state


def validation_inventory(fleet: SimFleet, path: Path, cases: dict[str, dict[str, Any]]) -> Path:
    """One inventory host per case, all of them the same stock sim host."""
    generated = yaml.safe_load(fleet.inventory.read_text())["all"]
    address = generated["hosts"][fleet.hosts[1].name]["ansible_host"]
    hosts = {name: {"ansible_host": address, **case} for name, case in cases.items()}
    inventory = {
        "all": {"vars": generated["vars"], "children": {"jetson": {"hosts": hosts}}},
    }
    path.write_text(yaml.safe_dump(inventory))
    return path


# Each refused input and what the refusal must name.
REFUSALS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "empty": ({"rt_tuning_isolated_cpus": ""}, ["rt_tuning_isolated_cpus is empty"]),
    "no_housekeeping": (
        {"rt_tuning_isolated_cpus": "0-5"},
        ['rt_tuning_isolated_cpus="0-5" isolates every CPU', "housekeeping"],
    ),
    "beyond_soc": (
        {"rt_tuning_isolated_cpus": "4-7"},
        ['rt_tuning_isolated_cpus="4-7" names CPU(s) 6,7', "CPUs 0-5"],
    ),
    "overlap": (
        {"rt_tuning_isolated_cpus": "3-5", "rt_tuning_housekeeping_cpus": "0-3"},
        ["overlap on CPU(s) 3"],
    ),
    "unknown_mode": (
        {"rt_tuning_power_mode": "TURBO"},
        ['rt_tuning_power_mode="TURBO" is not a power mode', "15W, 25W, MAXN_SUPER, 7W"],
    ),
    "mode_offlines_isolated": (
        {"rt_tuning_power_mode": "7W"},
        ['rt_tuning_power_mode="7W" takes CPU(s) 4,5 offline', 'isolated_cpus="4-5"'],
    ),
    "cma": ({"rt_tuning_kernel_args": {"cma": "512M"}}, ["remove cma="]),
    "open_range": ({"rt_tuning_isolated_cpus": "4-"}, ['rt_tuning_isolated_cpus="4-" is not a']),
    "letters": ({"rt_tuning_isolated_cpus": "a,b"}, ['rt_tuning_isolated_cpus="a,b" is not a']),
    "reversed": ({"rt_tuning_isolated_cpus": "5-4"}, ['"5-4" has the reversed range', "4-5"]),
}


def test_every_refusal_names_the_value_and_changes_nothing(fleet: SimFleet, tmp_path: Path) -> None:
    stock = host_state(fleet, 1)
    inventory = validation_inventory(
        fleet, tmp_path / "hosts.yml", {name: case for name, (case, _) in REFUSALS.items()}
    )
    ansible_playbook = str(Path(sys.executable).with_name("ansible-playbook"))
    result = subprocess.run(
        [ansible_playbook, "-i", str(inventory), "playbooks/tune.yml"],
        capture_output=True,
        text=True,
        env=fleet.env(),
        cwd=REPO,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    rows = recap(result.stdout)
    for name, (_, expected) in REFUSALS.items():
        assert rows[name]["failed"] == 1, f"{name} was not refused:\n{output[-4000:]}"
        assert rows[name]["changed"] == 0, name
        failure = re.search(rf"^fatal: \[{name}\]: FAILED! =>(.*?)(?=^\S)", output, re.M | re.S)
        assert failure, f"no failure for {name}"
        text = " ".join(failure.group(1).replace("''", "'").split())
        for fragment in expected:
            assert fragment in text, f"{name}: {fragment!r} not in {text!r}"
    assert host_state(fleet, 1) == stock


def test_check_mode_shows_the_diff_and_changes_nothing(fleet: SimFleet) -> None:
    before = [host_state(fleet, i) for i in range(2)]
    output, rows = run(fleet, "playbooks/tune.yml", "--check", "--diff")
    for host in fleet.hosts:
        assert rows[host.name]["changed"] >= 15, output[-3000:]
    for fragment in (
        "+      APPEND ${cbootargs} root=/dev/mmcblk0p1",
        "isolcpus=managed_irq,domain,4-5 nohz_full=4-5 rcu_nocbs=4-5 irqaffinity=0-3",
        "-/sys/kernel/mm/transparent_hugepage/enabled: always",
        "+/sys/kernel/mm/transparent_hugepage/enabled: never",
        "+/proc/irq/201/smp_affinity_list: 0-3",
        "+/proc/sys/kernel/sched_rt_runtime_us: -1",
        "+/sys/devices/system/cpu/cpufreq/policy4/scaling_governor: performance",
        "+/proc/swaps: (no swap)",
        "-< PM_CONFIG DEFAULT=0 >",
        "+< PM_CONFIG DEFAULT=2 >",
        "would run nvpmodel -m 2",
        "+kernel.timer_migration = 0",
        "+jetson-rt    -    rtprio     99",
        "ExecStart=/usr/bin/jetson_clocks",
    ):
        assert fragment in output, fragment
    assert [host_state(fleet, i) for i in range(2)] == before


SWAPFILE = "/swapfile none swap sw 0 0"


def test_converge_reboots_into_isolation_and_sets_every_knob(fleet: SimFleet) -> None:
    # a swap file in fstab, as some installs add next to JetPack's zram
    fleet.sudo(fleet.hosts[0], f"echo '{SWAPFILE}' >> /etc/fstab")
    output, rows = run(fleet, "playbooks/tune.yml", "-e", "rt_tuning_reboot_ok=true")
    for host in fleet.hosts:
        assert rows[host.name]["failed"] == 0
        assert rows[host.name]["changed"] >= 15
    assert "Reboot | reboot into the new boot arguments" in output
    assert "IRQs 11,12,13,14,202,203,204,205,206,207,208 stay where the kernel put them" in output
    for index in range(2):
        state = host_state(fleet, index)
        # after the reboot: the boot arguments are the kernel's, the runtime knobs were
        # re-applied by jetson-rt-tune.service and jetson-rt-clocks.service
        for arg in (
            "isolcpus=managed_irq,domain,4-5",
            "nohz_full=4-5",
            "rcu_nocbs=4-5",
            "irqaffinity=0-3",
            "skew_tick=1",
            "nosoftlockup",
            "transparent_hugepage=never",
            "${cbootargs}",
        ):
            assert (arg in state["extlinux"]) and (
                arg == "${cbootargs}" or arg in state["cmdline"]
            ), arg
        assert "cma=" not in state["cmdline"]
        assert state["isolated"] == "4-5"
        assert state["nohz_full"] == "4-5"
        assert state["thp_enabled"] == "always madvise [never]"
        assert state["thp_defrag"].endswith("[never]")
        assert int(state["wq"], 16) == 0xF
        assert int(state["writeback"], 16) == 0xF
        assert (state["rt_runtime"], state["timer_migration"], state["stat_interval"]) == (
            "-1",
            "0",
            "10",
        )
        assert state["governors"] == "performance"
        assert state["cpu_locked"] == "y"
        assert state["gpu_pm"] == "on"
        assert state["swaps"] == "0"
        assert state["irq_eth0"] == "0-3"
        assert state["irq_i2c"] == "0-3"
        assert state["nvpmodel"] == "NV Power Mode: MAXN_SUPER"
        assert state["pm_default"] == "< PM_CONFIG DEFAULT=2 >"
        assert state["irqbalance"] == "inactive disabled"
        assert state["gdm"] == "inactive disabled"
        assert state["zram"] == "disabled"
        assert state["units"] == "enabled enabled"
        assert state["limits"] == "jetson-rt - rtprio 99 jetson-rt - memlock unlimited"
        assert "kernel.sched_rt_runtime_us = -1" in state["sysctl_d"]
        assert state["stock_record"] == "yes"
    assert host_state(fleet, 0)["fstab"] == f"#jetson-rt-swap# {SWAPFILE}"
    assert fleet.sudo(fleet.hosts[0], "ls /etc/fstab.*~ | wc -l").strip() == "1"  # the backup


def test_second_run_changes_nothing(fleet: SimFleet) -> None:
    output, rows = run(fleet, "playbooks/tune.yml", "-e", "rt_tuning_reboot_ok=true")
    for host in fleet.hosts:
        assert rows[host.name]["changed"] == 0, output[-4000:]


def test_restore_returns_to_stock_and_is_idempotent(fleet: SimFleet) -> None:
    output, rows = run(fleet, "playbooks/restore.yml", "-e", "rt_tuning_reboot_ok=true")
    for host in fleet.hosts:
        assert rows[host.name]["changed"] > 0
    for index in range(2):
        state = host_state(fleet, index)
        assert state["extlinux"] == STOCK_EXTLINUX
        assert "isolcpus" not in state["cmdline"]
        assert state["isolated"] == ""
        assert state["thp_enabled"] == "[always] madvise never"
        assert state["governors"] == "schedutil"
        assert state["cpu_locked"] == "n"
        assert state["gpu_pm"] == "auto"
        assert state["swaps"] == ("7" if index == 0 else "6")  # zram, and the swap file
        assert state["rt_runtime"] == "950000"
        assert state["nvpmodel"] == "NV Power Mode: 15W"
        assert state["pm_default"] == "< PM_CONFIG DEFAULT=0 >"
        assert state["irqbalance"] == "active enabled"
        assert state["gdm"] == "active enabled"
        assert state["zram"] == "enabled"
        assert "No such file" in state["units"] or "not-found" in state["units"]
        assert state["limits"] == state["sysctl_d"] == ""
        assert state["stock_record"] == "no"
    assert host_state(fleet, 0)["fstab"] == SWAPFILE
    assert "/swapfile" in fleet.sudo(fleet.hosts[0], "cat /proc/swaps")
    output, rows = run(fleet, "playbooks/restore.yml", "-e", "rt_tuning_reboot_ok=true")
    for host in fleet.hosts:
        assert rows[host.name]["changed"] == 0, output[-4000:]


def test_a_mode_that_takes_cpus_offline_is_booted_without_a_prompt_hanging(
    fleet: SimFleet,
) -> None:
    """nvpmodel asks "DO YOU WANT TO REBOOT NOW?" for 7W (CPUs 4-5 go offline): the role
    answers it, and the mode takes effect through the role's own reboot."""
    host = fleet.hosts[1]
    boot_id = fleet.sudo(host, "cat /proc/sys/kernel/random/boot_id")
    output, rows = run(
        fleet,
        "playbooks/tune.yml",
        "--limit",
        host.name,
        "-e",
        "rt_tuning_power_mode=7W",
        "-e",
        "rt_tuning_isolated_cpus=3",
        "-e",
        "rt_tuning_housekeeping_cpus=0-2",
        "-e",
        "rt_tuning_reboot_ok=true",
    )
    assert rows[host.name]["failed"] == 0
    assert "Nvpmodel | set the mode, its reboot prompt answered NO" in output
    assert fleet.sudo(host, "cat /proc/sys/kernel/random/boot_id") != boot_id  # rebooted
    state = host_state(fleet, 1)
    assert state["nvpmodel"] == "NV Power Mode: 7W"
    assert fleet.sudo(host, "cat /sys/devices/system/cpu/online").strip() == "0-3"
    assert state["isolated"] == "3"
    # the mode is in effect: nothing left to do, no reboot
    output, rows = run(
        fleet,
        "playbooks/tune.yml",
        "--limit",
        host.name,
        "-e",
        "rt_tuning_power_mode=7W",
        "-e",
        "rt_tuning_isolated_cpus=3",
        "-e",
        "rt_tuning_housekeeping_cpus=0-2",
        "-e",
        "rt_tuning_reboot_ok=true",
    )
    assert rows[host.name]["changed"] == 0, output[-4000:]
