# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""The host-state audit of a real-time Jetson: observations in, checks out.

Each check follows the guide's debugging checklist (section 17.6) or its tuning
table (Appendix A) and yields ``{id, title, status, observed, expected, hint}``
with status ``pass``, ``warn``, ``fail`` or ``unknown`` (the ``audit.json``
format of docs/validation-report.md). Nothing here writes: files are read under
``root`` through the ``jetson_platform`` probes, and commands (``systemctl``,
``jetson_clocks --show``, ``nvpmodel -q``) go through a callable the caller
provides, which may return None when a command cannot be run (a captured tree).

Standard library only, Python 3.10: it runs on the Jetson.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.jetson_rt.fleet.plugins.module_utils import jetson_platform as jp

PASS, WARN, FAIL, UNKNOWN = "pass", "warn", "fail", "unknown"
STATUSES = (PASS, WARN, FAIL, UNKNOWN)

# A command runner: argv -> (rc, stdout), or None when commands cannot be run.
Runner = Callable[[list[str]], "tuple[int, str] | None"]

CHECK_IDS = (
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
    "nvpmodel",
    "thermal",
    "memory",
    "sched_rt_runtime",
    "sysctls",
    "rt_limits",
    "desktop",
    "kernel_held",
)

LIMITS_CONF = "etc/security/limits.conf"
LIMITS_DIR = "etc/security/limits.d"
DPKG_STATUS = "var/lib/dpkg/status"
FSTAB = "etc/fstab"
GROUP_FILE = "etc/group"
USERS_FILE = "etc/passwd"
IRQ_DEBUG_DIR = "sys/kernel/debug/irq/irqs"


@dataclass(frozen=True)
class Expected:
    """What the host was asked to be (rt_tuning's variables, resolved)."""

    isolated: list[int]
    housekeeping: list[int]
    isolcpus_flags: list[str] = field(default_factory=lambda: ["managed_irq", "domain"])
    nohz_full: bool = True
    rcu_nocbs: bool = True
    kernel_args: dict[str, str | None] = field(default_factory=dict)
    realtime: bool = True
    governor: str = "performance"
    thp: str = "never"
    swap_off: bool = True
    power_mode: str | None = None
    clocks_locked: bool = True
    sysctls: dict[str, str] = field(default_factory=dict)
    runner_user: str = "jetson-rt"
    runner_unit: str | None = None
    rtprio: int = 99
    memlock: str = "unlimited"
    headless: bool = True
    display_manager: str = "gdm.service"
    min_available_mb: int = 500
    thermal_warn_c: float = 85.0
    held_packages: list[str] = field(
        default_factory=lambda: [
            "nvidia-l4t-kernel*",
            "nvidia-l4t-rt-kernel*",
            "nvidia-l4t-display-rt-kernel",
        ]
    )
    unmovable_irqs_file: str | None = None


def check(  # noqa: PLR0917 - the six fields of an audit.json check, in that order
    check_id: str, title: str, status: str, observed: Any, expected: Any, hint: str
) -> dict[str, Any]:
    return {
        "id": check_id,
        "title": title,
        "status": status,
        "observed": observed,
        "expected": expected,
        "hint": hint,
    }


def _cpus(cpus: list[int]) -> str:
    return jp.format_cpulist(cpus) or "none"


class Host:
    """Read-only access to one host: files under ``root`` and optional commands."""

    def __init__(self, root: str = "/", runner: Runner | None = None) -> None:
        self.root = root
        self._runner = runner
        self._cache: dict[tuple[str, ...], tuple[int, str] | None] = {}

    def read(self, rel: str) -> str | None:
        return jp.read_text(rel, self.root)

    def run(self, argv: list[str]) -> tuple[int, str] | None:
        key = tuple(argv)
        if key not in self._cache:
            self._cache[key] = self._runner(argv) if self._runner else None
        return self._cache[key]

    def unit(self, unit: str) -> dict[str, str] | None:
        """``systemctl show`` properties of a unit, None when systemctl cannot be run."""
        result = self.run(
            [
                "systemctl",
                "show",
                "--property=LoadState,ActiveState,UnitFileState,LimitRTPRIO,"
                "LimitRTPRIOSoft,LimitMEMLOCK,LimitMEMLOCKSoft",
                unit,
            ]
        )
        if result is None or result[0] != 0:
            return None
        props = {}
        for line in result[1].splitlines():
            key, sep, value = line.partition("=")
            if sep:
                props[key.strip()] = value.strip()
        return props

    def glob(self, pattern: str) -> list[Path]:
        return sorted(Path(self.root).glob(pattern))


# --- kernel and boot ------------------------------------------------------------------


def check_rt_kernel(host: Host, exp: Expected) -> dict[str, Any]:
    release = jp.kernel_release(host.root) or "unknown"
    flag = host.read(jp.REALTIME)
    realtime = flag == "1"
    observed = f"{release}, /sys/kernel/realtime={'absent' if flag is None else flag}"
    status = PASS if realtime or not exp.realtime else FAIL
    return check(
        "rt_kernel",
        "PREEMPT_RT kernel active (17.6 step 1)",
        status,
        observed,
        "/sys/kernel/realtime=1 (a -rt- kernel)" if exp.realtime else "any kernel",
        "Install nvidia-l4t-rt-kernel (role rt_kernel) and boot its extlinux entry.",
    )


def expected_cmdline_args(exp: Expected) -> dict[str, str | None]:
    iso = jp.format_cpulist(exp.isolated)
    args: dict[str, str | None] = {
        "isolcpus": ",".join([*exp.isolcpus_flags, iso]),
        "irqaffinity": jp.format_cpulist(exp.housekeeping),
    }
    if exp.nohz_full:
        args["nohz_full"] = iso
    if exp.rcu_nocbs:
        args["rcu_nocbs"] = iso
    args.update(exp.kernel_args)
    return args


def _isolcpus_equal(have: str | None, want: str | None) -> bool:
    if have is None or want is None:
        return have == want

    def split(text: str) -> tuple[set[str], list[int]]:
        flags = {p for p in text.split(",") if p and not p[0].isdigit()}
        cpus = ",".join(p for p in text.split(",") if p and p[0].isdigit())
        try:
            return flags, jp.parse_cpulist(cpus)
        except ValueError:
            return flags, [-1]

    return split(have) == split(want)


def _cpulist_equal(have: str | None, want: str | None) -> bool:
    if have is None or want is None:
        return have == want
    try:
        return jp.parse_cpulist(have) == jp.parse_cpulist(want)
    except ValueError:
        return have == want


def check_cmdline(host: Host, exp: Expected) -> dict[str, Any]:
    args = jp.cmdline_args(jp.cmdline(host.root))
    want = expected_cmdline_args(exp)
    wrong = []
    for key, value in want.items():
        have = args.get(key, "<absent>") if key in args else "<absent>"
        if key not in args:
            wrong.append(f"{key} absent")
        elif key == "isolcpus":
            if not _isolcpus_equal(args[key], value):
                wrong.append(f"isolcpus={have}")
        elif key in ("nohz_full", "rcu_nocbs", "irqaffinity"):
            if not _cpulist_equal(args[key], value):
                wrong.append(f"{key}={have}")
        elif args[key] != value:
            wrong.append(f"{key}={have}" if have is not None else key)
    if "cma" in args:
        wrong.append(f"cma={args['cma']} (breaks nvgpu)")
    shown = {k: args.get(k) for k in want if k in args}
    observed = " ".join(k if v is None else f"{k}={v}" for k, v in shown.items()) or "none"
    return check(
        "cmdline_isolation",
        "Isolation arguments on the kernel command line",
        FAIL if wrong else PASS,
        observed + (f" (wrong: {'; '.join(wrong)})" if wrong else ""),
        " ".join(k if v is None else f"{k}={v}" for k, v in want.items()),
        "Run rt_tuning (rt_tuning_boot_enabled) to write the arguments into extlinux.conf, "
        "then reboot.",
    )


def check_isolated(host: Host, exp: Expected) -> dict[str, Any]:
    have = jp.isolated_cpus(host.root)
    return check(
        "cpu_isolation",
        "Isolated CPUs (17.6 step 6)",
        PASS if have == sorted(exp.isolated) else FAIL,
        _cpus(have),
        _cpus(exp.isolated),
        "Boot with isolcpus=<isolated> (rt_tuning writes it; a reboot applies it).",
    )


def check_nohz(host: Host, exp: Expected) -> dict[str, Any]:
    have = jp.nohz_full_cpus(host.root)
    want = sorted(exp.isolated) if exp.nohz_full else []
    status = PASS if have == want or not exp.nohz_full else FAIL
    return check(
        "nohz_full",
        "Tickless (nohz_full) CPUs",
        status,
        _cpus(have),
        _cpus(want) if exp.nohz_full else "not required",
        "Boot with nohz_full=<isolated> (rt_tuning_nohz_full) and reboot.",
    )


# --- IRQs -----------------------------------------------------------------------------


@dataclass
class Irq:
    number: int
    name: str
    affinity: list[int]
    effective: list[int] | None
    kind: str  # movable, per_cpu, managed, unmovable


_INTERRUPT_LINE = re.compile(r"^\s*(\d+):\s+(.*)$")


def _interrupts_table(text: str) -> tuple[list[int], dict[int, dict[str, Any]]]:
    """/proc/interrupts: the CPU columns and, per IRQ, counts, chip, hwirq, name."""
    lines = text.splitlines()
    if not lines:
        return [], {}
    cpus = [int(c[3:]) for c in lines[0].split() if c.startswith("CPU")]
    table: dict[int, dict[str, Any]] = {}
    for line in lines[1:]:
        match = _INTERRUPT_LINE.match(line)
        if not match:
            continue
        fields = match.group(2).split()
        counts = [int(f) for f in fields[: len(cpus)] if f.isdigit()]
        rest = fields[len(counts) :]
        table[int(match.group(1))] = {
            "counts": dict(zip(cpus, counts, strict=False)),
            "chip": rest[0] if rest else "",
            "hwirq": rest[1] if len(rest) > 1 else "",
            "name": " ".join(rest[3:]) if len(rest) > 3 else " ".join(rest),
        }
    return cpus, table


def _irq_kind(host: Host, number: int, info: dict[str, Any], unmovable: set[int]) -> str:
    flags = host.read(f"{IRQ_DEBUG_DIR}/{number}") or ""
    if "IRQD_PER_CPU" in flags:
        return "per_cpu"
    if "IRQD_AFFINITY_MANAGED" in flags:
        return "managed"
    chip, hwirq = str(info.get("chip", "")), str(info.get("hwirq", ""))
    # GIC interrupt ids below 32 are SGIs and PPIs: banked per CPU, never movable.
    if chip.upper().startswith("GIC") and hwirq.isdigit() and int(hwirq) < 32:
        return "per_cpu"
    if number in unmovable:
        return "unmovable"
    return "movable"


def _load_unmovable(host: Host, path: str | None) -> set[int]:
    if not path:
        return set()
    text = host.read(path.lstrip("/"))
    try:
        data = json.loads(text) if text else []
    except ValueError:
        return set()
    if isinstance(data, dict):
        data = data.get("unmovable", data.get("irqs", []))
    return {int(n) for n in data if str(n).isdigit()} if isinstance(data, list) else set()


def read_irqs(host: Host, exp: Expected) -> list[Irq]:
    _cpus, table = _interrupts_table(host.read("proc/interrupts") or "")
    unmovable = _load_unmovable(host, exp.unmovable_irqs_file)
    irqs = []
    for path in host.glob("proc/irq/*"):
        name = path.name
        if not name.isdigit():
            continue
        number = int(name)
        rel = f"proc/irq/{number}"
        try:
            affinity = jp.parse_cpulist(host.read(f"{rel}/smp_affinity_list"))
            eff_text = host.read(f"{rel}/effective_affinity_list")
            effective = None if eff_text is None else jp.parse_cpulist(eff_text)
        except ValueError:
            continue
        info = table.get(number, {})
        irqs.append(
            Irq(
                number=number,
                name=str(info.get("name") or ""),
                affinity=affinity,
                effective=effective,
                kind=_irq_kind(host, number, info, unmovable),
            )
        )
    return sorted(irqs, key=lambda i: i.number)


def check_irqs(host: Host, exp: Expected) -> dict[str, Any]:
    irqs = read_irqs(host, exp)
    iso = set(exp.isolated)
    title = "No IRQ on an isolated CPU (17.6 step 13)"
    expected = f"movable IRQs on {_cpus(exp.housekeeping)} only; per-CPU IRQs excluded"
    hint = (
        "Set /proc/irq/*/smp_affinity_list to the housekeeping CPUs and boot with "
        "irqaffinity= and isolcpus=managed_irq (rt_tuning_irq_enabled)."
    )
    if not irqs:
        return check("irq_affinity", title, UNKNOWN, "/proc/irq not readable", expected, hint)

    def label(irq: Irq, cpus: list[int]) -> str:
        return f"{irq.number}{'(' + irq.name + ')' if irq.name else ''}->{_cpus(cpus)}"

    offenders, unmovable_on_iso = [], []
    per_cpu = [irq.number for irq in irqs if irq.kind == "per_cpu"]
    for irq in irqs:
        if irq.kind == "per_cpu":
            continue
        if irq.kind == "movable" and iso & set(irq.affinity):
            offenders.append(label(irq, irq.affinity))
        elif irq.kind != "movable":
            landed = irq.effective if irq.effective is not None else irq.affinity
            if iso & set(landed):
                unmovable_on_iso.append(label(irq, landed))
    parts = []
    if offenders:
        parts.append(f"{len(offenders)} movable on isolated CPUs: {', '.join(offenders)}")
    if unmovable_on_iso:
        parts.append(
            f"{len(unmovable_on_iso)} managed/unmovable on isolated CPUs: "
            f"{', '.join(unmovable_on_iso)}"
        )
    parts.append(f"{len(per_cpu)} per-CPU excluded ({','.join(map(str, per_cpu)) or 'none'})")
    if offenders:
        status = FAIL
    elif unmovable_on_iso:
        status = WARN
    else:
        status = PASS
    return check("irq_affinity", title, status, "; ".join(parts), expected, hint)


def _service_state(host: Host, unit: str) -> tuple[str, str] | None:
    props = host.unit(unit)
    if props is None:
        return None
    if props.get("LoadState") == "not-found":
        return "not-found", "not-found"
    return props.get("ActiveState", "unknown"), props.get("UnitFileState", "") or "unknown"


def check_irqbalance(host: Host, exp: Expected) -> dict[str, Any]:
    del exp
    state = _service_state(host, "irqbalance.service")
    title = "irqbalance stopped and disabled"
    hint = "systemctl disable --now irqbalance (rt_tuning_irq_enabled): it moves IRQs back."
    if state is None:
        return check("irqbalance", title, UNKNOWN, "systemctl not available", "inactive", hint)
    active, enabled = state
    bad = active in ("active", "activating", "reloading") or enabled in ("enabled", "static")
    return check(
        "irqbalance",
        title,
        FAIL if bad else PASS,
        f"{active}, {enabled}",
        "inactive, disabled (or not installed)",
        hint,
    )


# --- memory ---------------------------------------------------------------------------


def check_thp(host: Host, exp: Expected) -> dict[str, Any]:
    enabled = jp.thp_mode("enabled", host.root)
    defrag = jp.thp_mode("defrag", host.root)
    title = "Transparent huge pages (Appendix A)"
    if enabled is None:
        status = UNKNOWN
    else:
        status = PASS if enabled == exp.thp else FAIL
        if status == PASS and defrag not in (None, exp.thp) and exp.thp == "never":
            status = WARN
    return check(
        "thp",
        title,
        status,
        f"enabled={enabled}, defrag={defrag}",
        f"enabled={exp.thp}, defrag={exp.thp}",
        "echo never > /sys/kernel/mm/transparent_hugepage/{enabled,defrag} and boot with "
        "transparent_hugepage=never (rt_tuning_thp).",
    )


def _fstab_swap(host: Host) -> list[str]:
    lines = []
    for line in (host.read(FSTAB) or "").splitlines():
        fields = line.split()
        if len(fields) >= 3 and not fields[0].startswith("#") and fields[2] == "swap":
            lines.append(fields[0])
    return lines


def check_swap(host: Host, exp: Expected) -> dict[str, Any]:
    devices = jp.swaps(host.root)
    mem = jp.meminfo(host.root)
    used_kb = max(0, mem.get("SwapTotal", 0) - mem.get("SwapFree", mem.get("SwapTotal", 0)))
    zram_unit = _service_state(host, "nvzramconfig.service")
    fstab = _fstab_swap(host)
    problems = []
    if devices:
        problems.append(f"active: {', '.join(devices)} ({used_kb // 1024} MiB used)")
    if zram_unit is not None and zram_unit[1] == "enabled":
        problems.append("nvzramconfig.service enabled")
    if fstab:
        problems.append(f"fstab swap: {', '.join(fstab)}")
    observed = "; ".join(problems) or "no swap"
    if zram_unit is None:
        observed += "; nvzramconfig state unknown"
    if not exp.swap_off:
        status = PASS
    elif problems:
        status = FAIL
    else:
        status = PASS
    return check(
        "swap",
        "No swap, zram off (17.6 step 10)",
        status,
        observed,
        "no active swap, nvzramconfig disabled, no swap in /etc/fstab"
        if exp.swap_off
        else "not required",
        "systemctl disable nvzramconfig; swapoff -a; comment swap in /etc/fstab "
        "(rt_tuning_swap_enabled).",
    )


def check_memory(host: Host, exp: Expected) -> dict[str, Any]:
    mem = jp.meminfo(host.root)
    available = mem.get("MemAvailable")
    title = "Memory available"
    hint = "Stop services that hold memory (the desktop frees ~200 MB) or use a smaller model."
    if available is None:
        return check("memory", title, UNKNOWN, "MemAvailable unreadable", "", hint)
    mib = available // 1024
    total = mem.get("MemTotal", 0) // 1024
    return check(
        "memory",
        title,
        PASS if mib >= exp.min_available_mb else FAIL,
        f"{mib} MiB of {total} MiB",
        f">= {exp.min_available_mb} MiB",
        hint,
    )


# --- CPUs, clocks, power --------------------------------------------------------------


def check_governor(host: Host, exp: Expected) -> dict[str, Any]:
    states = jp.cpu_states(host.root)
    online = [s for s in states if s.online]
    title = "CPU governor per core (Appendix A)"
    hint = f"Set scaling_governor to {exp.governor} on every policy (rt_tuning_governor)."
    if not online or all(s.governor is None for s in online):
        return check("governor", title, UNKNOWN, "cpufreq not readable", exp.governor, hint)
    wrong = [s for s in online if s.governor != exp.governor]
    observed = ", ".join(f"cpu{s.cpu}={s.governor}" for s in online)
    offline = [s.cpu for s in states if not s.online]
    if offline:
        observed += f" (offline: {_cpus(offline)})"
    return check(
        "governor", title, FAIL if wrong else PASS, observed, f"{exp.governor} on all", hint
    )


_SHOW_CPU = re.compile(
    r"^cpu(\d+):\s*Online=(\d)\s+Governor=(\S+)\s+MinFreq=(\d+)\s+MaxFreq=(\d+)\s+CurrentFreq=(\d+)"
)
_SHOW_GPU = re.compile(r"^GPU MinFreq=(\d+)\s+MaxFreq=(\d+)\s+CurrentFreq=(\d+)")
_SHOW_EMC = re.compile(
    r"^EMC MinFreq=(\d+)\s+MaxFreq=(\d+)\s+CurrentFreq=(\d+)\s+FreqOverride=(\d)"
)


def parse_jetson_clocks_show(text: str) -> dict[str, Any]:
    """``jetson_clocks --show``: per-CPU, GPU and EMC min/max/current."""
    cpus: dict[int, dict[str, Any]] = {}
    gpu = emc = None
    for raw in text.splitlines():
        line = raw.strip()
        if match := _SHOW_CPU.match(line):
            cpus[int(match.group(1))] = {
                "online": match.group(2) == "1",
                "governor": match.group(3),
                "min": int(match.group(4)),
                "max": int(match.group(5)),
                "cur": int(match.group(6)),
            }
        elif match := _SHOW_GPU.match(line):
            gpu = {k: int(match.group(i)) for i, k in enumerate(("min", "max", "cur"), 1)}
        elif match := _SHOW_EMC.match(line):
            emc = {
                "min": int(match.group(1)),
                "max": int(match.group(2)),
                "cur": int(match.group(3)),
                "override": match.group(4) == "1",
            }
    return {"cpus": cpus, "gpu": gpu, "emc": emc}


def _clocks_from_sysfs(host: Host) -> dict[str, Any]:
    cpus = {
        s.cpu: {"online": s.online, "min": s.min_khz, "max": s.max_khz, "cur": s.cur_khz}
        for s in jp.cpu_states(host.root)
        if s.max_khz is not None
    }
    dev = jp.gpu_devfreq(host.root)
    gpu = None if dev is None else {"min": dev.min_hz, "max": dev.max_hz, "cur": dev.cur_hz}
    return {"cpus": cpus, "gpu": gpu, "emc": None}


def _clock_problems(show: dict[str, Any]) -> list[str]:
    problems = []
    for cpu, c in sorted(show["cpus"].items()):
        if c["online"] and c["min"] != c["max"]:
            problems.append(f"cpu{cpu} {c['min']}-{c['max']} kHz")
    gpu = show["gpu"]
    if gpu is not None and gpu["min"] != gpu["max"]:
        problems.append(f"GPU {gpu['min']}-{gpu['max']} Hz")
    elif gpu is not None and gpu["cur"] and gpu["max"] and gpu["cur"] < gpu["max"] * 0.95:
        problems.append(f"GPU at {gpu['cur']} of {gpu['max']} Hz")
    emc = show["emc"]
    if emc is not None and not emc["override"]:
        problems.append("EMC not locked (FreqOverride=0)")
    return problems


def check_clocks(host: Host, exp: Expected) -> dict[str, Any]:
    title = "Clocks locked at maximum (17.6 step 2)"
    hint = "Run jetson_clocks after nvpmodel at every boot (rt_tuning_clocks_enabled)."
    result = host.run(["jetson_clocks", "--show"])
    source = "jetson_clocks --show"
    if result is not None and result[0] == 0 and "MaxFreq" in result[1]:
        show = parse_jetson_clocks_show(result[1])
    else:
        show, source = _clocks_from_sysfs(host), "sysfs (jetson_clocks --show unavailable)"
    if not show["cpus"] and show["gpu"] is None:
        return check("clocks_locked", title, UNKNOWN, "no cpufreq or GPU devfreq", "", hint)
    problems = _clock_problems(show)
    status = FAIL if problems and exp.clocks_locked else PASS
    cpu_max = sorted({c["max"] for c in show["cpus"].values() if c["online"]})
    gpu = show["gpu"]
    summary = f"CPU max {'/'.join(map(str, cpu_max))} kHz" + (
        f", GPU max {gpu['max']} Hz" if gpu else ""
    )
    observed = f"{source}: " + ("; ".join(problems) if problems else f"locked ({summary})")
    return check(
        "clocks_locked",
        title,
        status,
        observed,
        "min = max for CPUs, GPU; EMC FreqOverride=1" if exp.clocks_locked else "not required",
        hint,
    )


def check_nvpmodel(host: Host, exp: Expected) -> dict[str, Any]:
    conf = jp.parse_nvpmodel_conf(host.read(jp.NVPMODEL_CONF))
    name = None
    result = host.run(["nvpmodel", "-q"])
    if result is not None and result[0] == 0:
        name, _mode_id = jp.parse_nvpmodel_query(result[1])
    if name is None:
        mode_id = jp.nvpmodel_status(host.root)
        mode = conf.by_id(mode_id) if mode_id is not None else None
        name = mode.name if mode else None
    title = "Power mode (nvpmodel, by name)"
    hint = "Select the mode by name with nvpmodel and make it the default (rt_tuning_power_mode)."
    want = exp.power_mode
    if want is None:
        return check("nvpmodel", title, PASS, name or "unknown", "not managed", hint)
    if name is None:
        return check("nvpmodel", title, UNKNOWN, "nvpmodel -q unavailable", want, hint)
    status = PASS if name == want else FAIL
    mode = conf.by_name(name)
    taken = sorted(set(mode.cpus_offline) & set(exp.isolated)) if mode else []
    observed = name
    if taken:
        status = FAIL
        observed += f" (takes isolated CPU(s) {_cpus(taken)} offline)"
    default = conf.by_id(conf.default) if conf.default is not None else None
    if status == PASS and default is not None and default.name != want:
        status = WARN
        observed += f" (boot default is {default.name})"
    return check("nvpmodel", title, status, observed, f"{want}, also the boot default", hint)


def check_thermal(host: Host, exp: Expected) -> dict[str, Any]:
    zones = [z for z in jp.thermal_zones(host.root) if z.temp_c is not None]
    title = "Thermal zones below warning thresholds (17.6 step 3)"
    hint = "Improve cooling (fan at full speed, heat sink) or lower the power mode."
    if not zones:
        return check("thermal", title, UNKNOWN, "no thermal zone readable", "", hint)
    status = PASS
    notes = []
    for zone in zones:
        temp = zone.temp_c or 0.0
        throttle = zone.warn_c
        if throttle is not None and temp >= throttle:
            status = FAIL
            notes.append(f"{zone.type} {temp:.1f} C >= trip {throttle:.1f} C")
        elif temp >= exp.thermal_warn_c:
            status = WARN if status == PASS else status
            notes.append(f"{zone.type} {temp:.1f} C")
    hottest = max(zones, key=lambda z: z.temp_c or 0.0)
    observed = (
        "; ".join(notes)
        if notes
        else f"hottest {hottest.type} {hottest.temp_c:.1f} C of {len(zones)} zones"
    )
    return check(
        "thermal",
        title,
        status,
        observed,
        f"< {exp.thermal_warn_c:g} C and below each zone's passive trip",
        hint,
    )


# --- sysctls, limits ------------------------------------------------------------------


def _sysctl(host: Host, name: str) -> str | None:
    return host.read("proc/sys/" + name.replace(".", "/"))


def check_sched_rt(host: Host, exp: Expected) -> dict[str, Any]:
    want = str(exp.sysctls.get("kernel.sched_rt_runtime_us", "-1"))
    have = _sysctl(host, "kernel.sched_rt_runtime_us")
    return check(
        "sched_rt_runtime",
        "RT throttling off (kernel.sched_rt_runtime_us)",
        UNKNOWN if have is None else (PASS if have.strip() == want else FAIL),
        "unreadable" if have is None else have.strip(),
        want,
        "sysctl kernel.sched_rt_runtime_us=-1 in /etc/sysctl.d (rt_tuning_sysctls).",
    )


def check_sysctls(host: Host, exp: Expected) -> dict[str, Any]:
    others = {k: str(v) for k, v in exp.sysctls.items() if k != "kernel.sched_rt_runtime_us"}
    wrong, unreadable, shown = [], [], []
    for name, want in sorted(others.items()):
        have = _sysctl(host, name)
        if have is None:
            unreadable.append(name)
            continue
        have = " ".join(have.split())
        shown.append(f"{name}={have}")
        if have != " ".join(want.split()):
            wrong.append(name)
    if wrong:
        status = FAIL
    elif unreadable:
        status = WARN
    else:
        status = PASS
    observed = ", ".join(shown) or "none checked"
    if unreadable:
        observed += f" (not on this kernel: {', '.join(unreadable)})"
    return check(
        "sysctls",
        "Real-time sysctls",
        status,
        observed,
        ", ".join(f"{k}={v}" for k, v in sorted(others.items())) or "none",
        "Apply the sysctls from /etc/sysctl.d (rt_tuning_sysctls).",
    )


def _user_groups(host: Host, user: str) -> tuple[bool, set[str]]:
    exists, primary_gid = False, None
    for line in (host.read(USERS_FILE) or "").splitlines():
        fields = line.split(":")
        if len(fields) > 3 and fields[0] == user:
            exists, primary_gid = True, fields[3]
    groups = set()
    for line in (host.read(GROUP_FILE) or "").splitlines():
        fields = line.split(":")
        if len(fields) > 3 and (fields[2] == primary_gid or user in fields[3].split(",")):
            groups.add(fields[0])
    return exists, groups


# pam_limits precedence: a user's own line beats a group's, which beats "*".
_RANK = {"user": 0, "group": 1, "default": 2}


def _limits_files(host: Host) -> list[str]:
    files = [LIMITS_CONF]
    for path in host.glob(f"{LIMITS_DIR}/*.conf"):
        files.append(str(path.relative_to(host.root)))
    return files


def pam_limits(host: Host, user: str, groups: set[str]) -> dict[str, dict[str, str]]:
    """The rtprio/memlock soft and hard limits pam_limits gives ``user``."""
    best: dict[tuple[str, str], tuple[int, str]] = {}
    for rel in _limits_files(host):
        for raw in (host.read(rel) or "").splitlines():
            fields = raw.split("#", 1)[0].split()
            if len(fields) != 4:
                continue
            domain, kind, item, value = fields
            if item not in ("rtprio", "memlock"):
                continue
            if domain == user:
                rank = _RANK["user"]
            elif domain[:1] in "@%" and domain[1:] in groups:
                rank = _RANK["group"]
            elif domain == "*":
                rank = _RANK["default"]
            else:
                continue
            for which in ("soft", "hard") if kind == "-" else (kind,):
                key = (item, which)
                if key not in best or rank <= best[key][0]:
                    best[key] = (rank, value)
    return {
        item: {which: best[(item, which)][1] for which in ("soft", "hard") if (item, which) in best}
        for item in ("rtprio", "memlock")
    }


def _limit_ok(value: str | None, want: str) -> bool:
    if value is None:
        return False
    if value in ("unlimited", "infinity", "-1"):
        return True
    if want in ("unlimited", "infinity"):
        return False
    try:
        return int(value) >= int(want)
    except ValueError:
        return False


def _unit_limits(props: dict[str, str]) -> dict[str, dict[str, str]]:
    def norm(value: str | None, memlock: bool) -> str | None:
        if value is None:
            return None
        if value == "infinity":
            return "unlimited"
        return str(int(value) // 1024) if memlock and value.isdigit() else value

    return {
        "rtprio": {
            "soft": norm(props.get("LimitRTPRIOSoft"), False) or "",
            "hard": norm(props.get("LimitRTPRIO"), False) or "",
        },
        "memlock": {
            "soft": norm(props.get("LimitMEMLOCKSoft"), True) or "",
            "hard": norm(props.get("LimitMEMLOCK"), True) or "",
        },
    }


def check_limits(host: Host, exp: Expected) -> dict[str, Any]:
    user = exp.runner_user
    title = f"RT limits of the runner user {user} (rtprio, memlock)"
    want = {"rtprio": str(exp.rtprio), "memlock": exp.memlock}
    props = host.unit(exp.runner_unit) if exp.runner_unit else None
    if props is not None and props.get("LoadState") == "loaded":
        limits, source = _unit_limits(props), f"unit {exp.runner_unit}"
    else:
        exists, groups = _user_groups(host, user)
        limits = pam_limits(host, user, groups)
        source = "limits.conf" + ("" if exists else f" (user {user} does not exist yet)")
    bad_hard, bad_soft = [], []
    for item, value in want.items():
        got = limits.get(item, {})
        if not _limit_ok(got.get("hard"), value):
            bad_hard.append(item)
        elif not _limit_ok(got.get("soft"), value):
            bad_soft.append(item)
    if bad_hard:
        status = FAIL
    elif bad_soft:
        status = WARN
    else:
        status = PASS
    observed = f"{source}: " + ", ".join(
        f"{item} soft={limits.get(item, {}).get('soft') or 'default'} "
        f"hard={limits.get(item, {}).get('hard') or 'default'}"
        for item in ("rtprio", "memlock")
    )
    return check(
        "rt_limits",
        title,
        status,
        observed,
        f"rtprio {want['rtprio']}, memlock {want['memlock']} (soft and hard)",
        "Give the user rtprio and memlock in /etc/security/limits.d or LimitRTPRIO=/"
        "LimitMEMLOCK= in its unit (rt_tuning_limits_enabled).",
    )


# --- desktop, packages ----------------------------------------------------------------


def check_desktop(host: Host, exp: Expected) -> dict[str, Any]:
    title = "Desktop (display manager) off, GPU not shared (17.6 step 4)"
    hint = f"systemctl disable --now {exp.display_manager} (rt_tuning_headless)."
    state = _service_state(host, exp.display_manager)
    if state is None:
        return check("desktop", title, UNKNOWN, "systemctl not available", "inactive", hint)
    active, enabled = state
    running = active in ("active", "activating")
    if not exp.headless:
        status = PASS
    elif running:
        status = FAIL
    elif enabled in ("enabled", "static", "alias"):
        status = WARN
    else:
        status = PASS
    return check(
        "desktop",
        title,
        status,
        f"{exp.display_manager}: {active}, {enabled}",
        "inactive, disabled" if exp.headless else "not required (rt_tuning_headless=false)",
        hint,
    )


def dpkg_packages(host: Host) -> dict[str, str]:
    """Installed packages -> dpkg selection (install, hold, ...), from the status file."""
    packages: dict[str, str] = {}
    text = host.read(DPKG_STATUS) or ""
    for stanza in text.split("\n\n"):
        name = status = None
        for line in stanza.splitlines():
            if line.startswith("Package:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("Status:"):
                status = line.split(":", 1)[1].split()
        if name and status and len(status) == 3 and status[2] == "installed":
            packages[name] = status[0]
    return packages


def check_kernel_held(host: Host, exp: Expected) -> dict[str, Any]:
    packages = dpkg_packages(host)
    title = "Kernel packages held (apt upgrade must not replace the RT kernel)"
    hint = "apt-mark hold the nvidia-l4t kernel packages on RT hosts (role rt_kernel)."
    wanted = sorted(
        name
        for name in packages
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in exp.held_packages)
    )
    expected = f"{', '.join(exp.held_packages)} on hold"
    if not packages:
        return check("kernel_held", title, UNKNOWN, "dpkg status unreadable", expected, hint)
    if not wanted:
        return check(
            "kernel_held",
            title,
            PASS,
            "no nvidia-l4t kernel package installed (nothing apt could replace)",
            expected,
            hint,
        )
    loose = [name for name in wanted if packages[name] != "hold"]
    if not loose:
        status = PASS
    elif jp.realtime(host.root):
        status = FAIL
    else:
        status = WARN
    observed = f"not held: {', '.join(loose)}" if loose else f"held: {', '.join(wanted)}"
    return check("kernel_held", title, status, observed, expected, hint)


CHECKS: dict[str, Callable[[Host, Expected], dict[str, Any]]] = {
    "rt_kernel": check_rt_kernel,
    "cmdline_isolation": check_cmdline,
    "cpu_isolation": check_isolated,
    "nohz_full": check_nohz,
    "irq_affinity": check_irqs,
    "irqbalance": check_irqbalance,
    "thp": check_thp,
    "swap": check_swap,
    "governor": check_governor,
    "clocks_locked": check_clocks,
    "nvpmodel": check_nvpmodel,
    "thermal": check_thermal,
    "memory": check_memory,
    "sched_rt_runtime": check_sched_rt,
    "sysctls": check_sysctls,
    "rt_limits": check_limits,
    "desktop": check_desktop,
    "kernel_held": check_kernel_held,
}


def audit(
    host: Host, exp: Expected, skip: list[str] | None = None, warn_only: list[str] | None = None
) -> list[dict[str, Any]]:
    """Every check not skipped, in checklist order; a check that raises is ``unknown``."""
    results = []
    for check_id, func in CHECKS.items():
        if check_id in (skip or []):
            continue
        try:
            result = func(host, exp)
        except Exception as exc:  # one broken probe must not hide the other checks
            result = check(check_id, check_id, UNKNOWN, f"probe failed: {exc}", "", "")
        if result["status"] == FAIL and check_id in (warn_only or []):
            result["status"] = WARN
            result["hint"] += " (reported as a warning: this area is not managed here)"
        results.append(result)
    return results
