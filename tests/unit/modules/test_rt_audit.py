"""jetson_rt.fleet.rt_audit on captured trees: a tuned Orin Nano passes, each untuned
area fails with the right observation, and the module changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.jetson_rt.fleet.plugins.module_utils import rt_audit as ra
from ansible_collections.jetson_rt.fleet.plugins.modules import rt_audit
from tests.ansible_adhoc import ansible_check_mode
from tests.jetson_trees import orin_nano_r36, put

REPO = Path(__file__).resolve().parents[3]

# jetson_clocks --show of a JetPack 6.2 Orin Nano after `jetson_clocks` (MAXN_SUPER).
CLOCKS_LOCKED = (
    "SOC family:tegra234  Machine:NVIDIA Jetson Orin Nano Engineering Reference Developer Kit"
    " Super\nOnline CPUs: 0-5\n"
    + "".join(
        f"cpu{n}: Online=1 Governor=performance MinFreq=1728000 MaxFreq=1728000 "
        "CurrentFreq=1728000 IdleStates: WFI=1 c7=1 \n"
        for n in range(6)
    )
    + "GPU MinFreq=1020000000 MaxFreq=1020000000 CurrentFreq=1020000000\n"
    "EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=1\n"
    "FAN Dynamic Speed control=active hwmon1_pwm1=255\nNV Power Mode: MAXN_SUPER\n"
)
CLOCKS_STOCK = CLOCKS_LOCKED.replace("MinFreq=1728000", "MinFreq=729600").replace(
    "FreqOverride=1", "FreqOverride=0"
)

# (number, chip, hwirq, name, smp_affinity_list, effective_affinity_list)
IRQS = (
    (12, "GICv3", "30", "arch_timer", "0-5", "0-5"),
    (17, "GICv3", "244", "bpmp", "0-3", "0"),
    (201, "ITS-MSI", "524288", "eth0", "0-3", "1"),
    (206, "ITS-MSI", "1048580", "nvme0q4", "0-3", "2"),
)
DPKG = """\
Package: nvidia-l4t-rt-kernel
Status: hold ok installed
Version: 36.4.3-20250107174145

Package: nvidia-l4t-kernel
Status: hold ok installed
Version: 5.15.148-tegra-36.4.3-20250107174145

Package: bash
Status: install ok installed
Version: 5.1-6ubuntu1
"""
SYSCTLS = {
    "kernel/sched_rt_runtime_us": "-1",
    "kernel/timer_migration": "0",
    "vm/stat_interval": "10",
}


def tuned(root: Path) -> Path:
    """The captured Orin Nano tree plus what the audit reads beyond jetson_facts."""
    orin_nano_r36(root)
    put(
        root,
        "proc/cmdline",
        "root=/dev/mmcblk0p1 rw isolcpus=managed_irq,domain,4-5 nohz_full=4-5 rcu_nocbs=4-5 "
        "irqaffinity=0-3 skew_tick=1 nosoftlockup transparent_hugepage=never quiet\n",
    )
    header = "           CPU0       CPU1       CPU2       CPU3       CPU4       CPU5\n"
    rows = []
    for number, chip, hwirq, name, affinity, effective in IRQS:
        put(root, f"proc/irq/{number}/smp_affinity_list", affinity + "\n")
        put(root, f"proc/irq/{number}/effective_affinity_list", effective + "\n")
        counts = "".join(f"{n * 10:10d} " for n in range(6))
        rows.append(f"{number:4d}: {counts} {chip:>8s} {hwirq:>8s} Level  {name}\n")
    put(root, "proc/interrupts", header + "".join(rows) + "IPI0: 1 2 3 4 5 6  Rescheduling\n")
    put(root, "proc/irq/default_smp_affinity", "f\n")
    for name, value in SYSCTLS.items():
        put(root, f"proc/sys/{name}", value + "\n")
    put(root, "etc/passwd", "root:x:0:0::/root:/bin/bash\njetson-rt:x:998:998::/:/bin/false\n")
    put(root, "etc/group", "root:x:0:\njetson-rt:x:998:\nrealtime:x:997:jetson-rt\n")
    put(root, "etc/security/limits.conf", "# stock\n*  hard  rtprio  0\n")
    put(
        root,
        "etc/security/limits.d/90-jetson-rt.conf",
        "jetson-rt    -    rtprio     99\njetson-rt    -    memlock    unlimited\n",
    )
    put(root, "etc/fstab", "/dev/mmcblk0p1 / ext4 defaults 0 1\n")
    put(root, "var/lib/dpkg/status", DPKG)
    return root


def systemd(states: dict[str, tuple[str, str]]) -> Callable[[list[str]], tuple[int, str] | None]:
    """A command runner: systemctl show for the given units, jetson_clocks, nvpmodel."""

    def run(argv: list[str]) -> tuple[int, str] | None:
        if argv[0] == "systemctl":
            active, enabled = states.get(argv[-1], ("inactive", "disabled"))
            load = "not-found" if enabled == "not-found" else "loaded"
            return 0, f"LoadState={load}\nActiveState={active}\nUnitFileState={enabled}\n"
        if argv[:2] == ["jetson_clocks", "--show"]:
            return 0, states.get("clocks", ("", CLOCKS_LOCKED))[1]
        if argv[:2] == ["nvpmodel", "-q"]:
            return 0, "NV Power Mode: MAXN_SUPER\n2\n"
        return None

    return run


EXPECT = ra.Expected(
    isolated=[4, 5],
    housekeeping=[0, 1, 2, 3],
    kernel_args={"skew_tick": "1", "nosoftlockup": None, "transparent_hugepage": "never"},
    power_mode="MAXN_SUPER",
    sysctls={
        "kernel.sched_rt_runtime_us": "-1",
        "kernel.timer_migration": "0",
        "vm.stat_interval": "10",
    },
    unmovable_irqs_file="/var/lib/jetson-rt/rt_tuning/irq-unmovable.json",
)


def by_id(checks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in checks}


def run_audit(root: Path, **states: tuple[str, str]) -> dict[str, dict[str, Any]]:
    return by_id(ra.audit(ra.Host(str(root), systemd(states)), EXPECT))


def test_tuned_host_passes_every_check(tmp_path: Path) -> None:
    checks = run_audit(tuned(tmp_path))
    assert list(checks) == list(ra.CHECK_IDS)
    assert {c["id"]: c["status"] for c in checks.values() if c["status"] != "pass"} == {}
    assert "2 per-CPU" not in checks["irq_affinity"]["observed"]
    assert "1 per-CPU excluded (12)" in checks["irq_affinity"]["observed"]
    assert checks["clocks_locked"]["observed"].startswith("jetson_clocks --show: locked")
    assert checks["kernel_held"]["observed"] == "held: nvidia-l4t-kernel, nvidia-l4t-rt-kernel"
    for check in checks.values():
        assert set(check) == {"id", "title", "status", "observed", "expected", "hint"}
        assert check["hint"] and check["title"]


def test_stock_host_fails_with_what_is_wrong(tmp_path: Path) -> None:
    root = orin_nano_r36(tmp_path, realtime=False)
    put(root, "proc/cmdline", "root=/dev/mmcblk0p1 rw rootwait cma=256M\n")
    put(root, "sys/devices/system/cpu/isolated", "\n")
    put(root, "sys/devices/system/cpu/nohz_full", "(null)\n")
    put(root, "sys/devices/system/cpu/cpu4/cpufreq/scaling_governor", "schedutil\n")
    put(root, "sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never\n")
    put(root, "proc/swaps", "Filename Type Size Used Priority\n/dev/zram0 partition 635340 0 5\n")
    put(root, "etc/fstab", "/swapfile none swap sw 0 0\n")
    put(root, "proc/sys/kernel/sched_rt_runtime_us", "950000\n")
    put(root, "proc/irq/201/smp_affinity_list", "0-5\n")
    put(root, "proc/interrupts", "      CPU0 CPU1\n 201: 1 2 ITS-MSI 524288 Edge eth0\n")
    put(root, "var/lib/nvpmodel/status", "pmode:0000 fmode:quiet\n")
    states = {
        "irqbalance.service": ("active", "enabled"),
        "nvzramconfig.service": ("active", "enabled"),
        "gdm.service": ("active", "enabled"),
        "clocks": ("", CLOCKS_STOCK),
    }
    checks = by_id(ra.audit(ra.Host(str(root), systemd(states)), EXPECT))
    failed = {c["id"] for c in checks.values() if c["status"] == "fail"}
    assert failed == {
        "rt_kernel",
        "cmdline_isolation",
        "cpu_isolation",
        "nohz_full",
        "irq_affinity",
        "irqbalance",
        "thp",
        "swap",
        "governor",
        "clocks_locked",
        "sched_rt_runtime",
        "rt_limits",
        "desktop",
    }
    # the other sysctls are not in this captured tree: a warning, never a pass
    assert checks["sysctls"]["status"] == "warn"
    assert checks["rt_kernel"]["observed"] == "5.15.148-tegra, /sys/kernel/realtime=absent"
    assert "cma=256M (breaks nvgpu)" in checks["cmdline_isolation"]["observed"]
    assert "201(eth0)->0-5" in checks["irq_affinity"]["observed"]
    assert "cpu4=schedutil" in checks["governor"]["observed"]
    assert "/dev/zram0" in checks["swap"]["observed"]
    assert "fstab swap: /swapfile" in checks["swap"]["observed"]
    assert "nvzramconfig.service enabled" in checks["swap"]["observed"]
    assert "EMC not locked" in checks["clocks_locked"]["observed"]
    assert "cpu0 729600-1728000 kHz" in checks["clocks_locked"]["observed"]
    # nvpmodel -q answers MAXN_SUPER in this runner; the status file is only a fallback
    assert checks["nvpmodel"]["status"] == "pass"


def test_irq_kinds_per_cpu_managed_and_unmovable(tmp_path: Path) -> None:
    root = tuned(tmp_path)
    # debugfs says 206 is managed and it landed on an isolated CPU: a warning, not a failure
    put(
        root,
        "sys/kernel/debug/irq/irqs/206",
        "handler: handle_edge_irq\nflags: IRQD_AFFINITY_MANAGED\n",
    )
    put(root, "proc/irq/206/effective_affinity_list", "4\n")
    check = run_audit(root)["irq_affinity"]
    assert check["status"] == "warn"
    assert "1 managed/unmovable on isolated CPUs: 206(nvme0q4)->4" in check["observed"]
    # rt_tuning recorded 17 as unmovable; a movable one on an isolated CPU fails
    put(root, "var/lib/jetson-rt/rt_tuning/irq-unmovable.json", "[17]\n")
    put(root, "proc/irq/17/smp_affinity_list", "0-5\n")
    put(root, "proc/irq/17/effective_affinity_list", "0\n")
    put(root, "proc/irq/201/smp_affinity_list", "4-5\n")
    check = run_audit(root)["irq_affinity"]
    assert check["status"] == "fail"
    assert "1 movable on isolated CPUs: 201(eth0)->4-5" in check["observed"]
    assert "17(bpmp)" not in check["observed"]


def test_limits_follow_pam_precedence(tmp_path: Path) -> None:
    root = tuned(tmp_path)
    # a group line cannot override the user's own line; "*" never beats either
    put(root, "etc/security/limits.d/50-group.conf", "@realtime - rtprio 10\n* - memlock 64\n")
    assert run_audit(root)["rt_limits"]["status"] == "pass"
    put(root, "etc/security/limits.d/90-jetson-rt.conf", "jetson-rt soft rtprio 50\n")
    check = run_audit(root)["rt_limits"]
    assert check["status"] == "fail"
    assert "rtprio soft=50 hard=10" in check["observed"]
    assert "memlock soft=64 hard=64" in check["observed"]


def test_runner_unit_limits_replace_limits_conf(tmp_path: Path) -> None:
    root = tuned(tmp_path)
    put(root, "etc/security/limits.d/90-jetson-rt.conf", "")
    exp = ra.Expected(isolated=[4, 5], housekeeping=[0, 1, 2, 3], runner_unit="runner.service")

    def run(argv: list[str]) -> tuple[int, str] | None:
        return 0, (
            "LoadState=loaded\nActiveState=active\nUnitFileState=enabled\nLimitRTPRIO=99\n"
            "LimitRTPRIOSoft=99\nLimitMEMLOCK=infinity\nLimitMEMLOCKSoft=infinity\n"
        )

    check = ra.check_limits(ra.Host(str(root), run), exp)
    assert check["status"] == "pass"
    assert check["observed"].startswith("unit runner.service: rtprio soft=99 hard=99")


def test_thermal_trip_fails_and_warning_line_warns(tmp_path: Path) -> None:
    root = tuned(tmp_path)
    put(root, "sys/class/thermal/thermal_zone1/temp", "86000\n")
    assert run_audit(root)["thermal"]["status"] == "warn"
    put(root, "sys/class/thermal/thermal_zone0/temp", "99500\n")
    check = run_audit(root)["thermal"]
    assert check["status"] == "fail"
    assert "cpu-thermal 99.5 C >= trip 99.0 C" in check["observed"]


def test_kernel_packages_not_held(tmp_path: Path) -> None:
    root = tuned(tmp_path)
    put(root, "var/lib/dpkg/status", DPKG.replace("hold ok installed", "install ok installed"))
    check = run_audit(root)["kernel_held"]
    assert check["status"] == "fail"
    assert check["observed"] == "not held: nvidia-l4t-kernel, nvidia-l4t-rt-kernel"


def test_power_mode_that_offlines_isolated_cpus_fails(tmp_path: Path) -> None:
    root = tuned(tmp_path)
    exp = ra.Expected(isolated=[4, 5], housekeeping=[0, 1, 2, 3], power_mode="7W")
    put(root, "var/lib/nvpmodel/status", "pmode:0003\n")
    check = ra.check_nvpmodel(ra.Host(str(root)), exp)
    assert check["status"] == "fail"
    assert check["observed"] == "7W (takes isolated CPU(s) 4-5 offline)"


def test_without_commands_systemd_checks_are_unknown(tmp_path: Path) -> None:
    checks = by_id(ra.audit(ra.Host(str(tuned(tmp_path))), EXPECT))
    assert checks["irqbalance"]["status"] == "unknown"
    assert checks["desktop"]["status"] == "unknown"
    # clocks fall back to sysfs, the power mode to nvpmodel's status file
    assert checks["clocks_locked"]["observed"].startswith("sysfs")
    assert checks["clocks_locked"]["status"] == "pass"
    assert checks["nvpmodel"]["status"] == "pass"


def test_warn_only_and_skip(tmp_path: Path) -> None:
    root = tuned(tmp_path)
    put(root, "sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never\n")
    checks = ra.audit(ra.Host(str(root), systemd({})), EXPECT, skip=["thermal"], warn_only=["thp"])
    thp = by_id(checks)["thp"]
    assert thp["status"] == "warn"
    assert "not managed here" in thp["hint"]
    assert "thermal" not in by_id(checks)


def test_a_broken_probe_is_unknown_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(host: ra.Host, exp: ra.Expected) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setitem(ra.CHECKS, "thp", broken)
    check = by_id(ra.audit(ra.Host(str(tuned(tmp_path)), systemd({})), EXPECT))["thp"]
    assert check["status"] == "unknown"
    assert "boom" in check["observed"]


def test_jetson_clocks_show_parser() -> None:
    show = ra.parse_jetson_clocks_show(CLOCKS_STOCK)
    assert show["cpus"][5] == {
        "online": True,
        "governor": "performance",
        "min": 729600,
        "max": 1728000,
        "cur": 1728000,
    }
    assert show["gpu"] == {"min": 1020000000, "max": 1020000000, "cur": 1020000000}
    assert show["emc"]["override"] is False


def test_module_in_check_mode_changes_nothing(
    run_module: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    root = tuned(tmp_path)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = run_module(
        rt_audit.main,
        check_mode=True,
        root=str(root),
        isolated_cpus="4-5",
        power_mode="MAXN_SUPER",
        sysctls={"kernel.sched_rt_runtime_us": -1},
        kernel_args={"skew_tick": "1", "nosoftlockup": None, "transparent_hugepage": "never"},
    )
    assert result["changed"] is False
    assert result["summary"]["fail"] == 0
    assert result["summary"]["unknown"] == 2  # no systemctl on a captured tree
    assert [c["id"] for c in result["checks"]] == list(ra.CHECK_IDS)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"isolated_cpus": "4-"}, "is not a CPU list"),
        ({"isolated_cpus": "4-5", "housekeeping_cpus": "0-4"}, "overlap"),
        ({"isolated_cpus": "4-5", "skip": ["nosuch"]}, "unknown check id(s) nosuch"),
        ({"isolated_cpus": "4-5", "memlock": "lots"}, "give KiB as digits"),
    ],
)
def test_bad_arguments_say_what_to_change(
    module_failure: Callable[..., dict[str, Any]],
    tmp_path: Path,
    args: dict[str, Any],
    message: str,
) -> None:
    failure = module_failure(rt_audit.main, root=str(tuned(tmp_path)), **args)
    assert message in failure["msg"]


def test_through_ansible_on_python_3_10(tmp_path: Path) -> None:
    """An ad hoc run in check mode: packaged with its module_utils, on JetPack 6's
    Python 3.10 where that interpreter is installed."""
    root = tuned(tmp_path / "root")
    payload = ansible_check_mode(
        "jetson_rt.fleet.rt_audit", f"root={root} isolated_cpus=4-5 power_mode=MAXN_SUPER"
    )
    assert payload["changed"] is False
    statuses = {c["id"]: c["status"] for c in payload["checks"]}
    assert statuses["rt_kernel"] == statuses["cpu_isolation"] == statuses["irq_affinity"] == "pass"
