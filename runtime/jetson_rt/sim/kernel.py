"""The simulated kernel of one host: its state and the files it exposes.

A :class:`SimKernel` answers reads and writes of the paths a Jetson exposes under
``/sys`` and ``/proc`` with the kernel's semantics: writing ``never`` to a THP file
reads back ``always madvise [never]``, an unknown governor is ``EINVAL``, a per-CPU
or managed IRQ refuses a new affinity with ``EIO``, a boot resets everything that
does not survive a reboot. It never touches the machine's real kernel: state lives
in memory and in a JSON file, and :mod:`jetson_rt.sim.kernelfs` serves it over FUSE.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jetson_rt.platform import cmdline_args, format_cpulist, parse_cpulist
from jetson_rt.sim import hardware as hw
from jetson_rt.sim.bootloader import BootRecord, RootfsState


class KernelError(Exception):
    """A write the kernel refuses; ``errno`` is what the syscall returns."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message or os.strerror(code))
        self.errno = code


# --- the file tree --------------------------------------------------------------------


@dataclass
class File:
    read: Callable[[], str]
    write: Callable[[str], None] | None = None
    # sysfs files report 4096 bytes, procfs files 0; reads ignore the size anyway.
    size: int = 4096

    @property
    def mode(self) -> int:
        return 0o644 if self.write else 0o444


@dataclass
class Link:
    target: str


@dataclass
class Dir:
    children: Callable[[], Mapping[str, Node]]
    mode: int = 0o755


Node = File | Link | Dir


def _static_dir(entries: Mapping[str, Node]) -> Dir:
    return Dir(lambda: entries)


def _const(text: str) -> File:
    return File(lambda: text)


# --- state ----------------------------------------------------------------------------


def _irq_defaults() -> dict[str, list[int]]:
    return {str(irq.number): list(range(hw.CPUS)) for irq in hw.IRQS}


@dataclass
class KernelState:
    """Everything that the simulated kernel remembers; volatile parts reset at boot."""

    hostname: str
    serial: str
    boots: int = 0
    boot_id: str = ""
    boot_time: float = 0.0
    boot: dict[str, Any] = field(default_factory=dict)
    online: list[int] = field(default_factory=lambda: list(range(hw.CPUS)))
    thp_enabled: str = "always"
    thp_defrag: str = "madvise"
    governor: dict[str, str] = field(default_factory=dict)
    cpu_min_khz: dict[str, int] = field(default_factory=dict)
    cpu_max_khz: dict[str, int] = field(default_factory=dict)
    gpu_min_hz: int = hw.GPU_FREQS_HZ[0]
    gpu_max_hz: int = hw.GPU_FREQS_HZ[-1]
    gpu_governor: str = "nvhost_podgov"
    gpu_runtime_pm: str = "auto"
    emc_locked: int = 0
    fan_pwm: int = 0
    fan_pwm_enable: int = 2
    # 1 in "cpu:state" when cpuidle state of that CPU is disabled (jetson_clocks does it)
    cpuidle_disable: dict[str, int] = field(default_factory=dict)
    gpu_railgate: int = 1
    irq_affinity: dict[str, list[int]] = field(default_factory=_irq_defaults)
    irq_counts: dict[str, list[float]] = field(default_factory=dict)
    irq_counted_at: float = 0.0
    default_smp_affinity: list[int] = field(default_factory=lambda: list(range(hw.CPUS)))
    workqueue_mask: list[int] = field(default_factory=lambda: list(range(hw.CPUS)))
    writeback_mask: list[int] = field(default_factory=lambda: list(range(hw.CPUS)))
    sysctl: dict[str, int] = field(default_factory=dict)
    swaps: list[str] = field(default_factory=list)
    module_sku: str = hw.MODULE_SKU
    boot_log: list[str] = field(default_factory=list)
    # Slot A's retry count and status (L4TRootfsValidation.c): survives reboots.
    rootfs: dict[str, Any] = field(default_factory=lambda: asdict(RootfsState()))


def _cluster_of(cpu: int) -> int:
    return next(index for index, cluster in enumerate(hw.CLUSTERS) if cpu in cluster)


def _policy_name(cluster: int) -> str:
    return f"policy{hw.CLUSTERS[cluster][0]}"


def _mask(cpus: list[int]) -> str:
    value = 0
    for cpu in cpus:
        value |= 1 << cpu
    return f"{value:x}"


def _parse_mask(text: str) -> list[int]:
    try:
        value = int(text.strip().replace(",", ""), 16)
    except ValueError as exc:
        raise KernelError(errno.EINVAL) from exc
    return [cpu for cpu in range(64) if value >> cpu & 1]


def _strict_cpulist(text: str) -> list[int]:
    try:
        cpus = parse_cpulist(text.strip())
    except ValueError as exc:
        raise KernelError(errno.EINVAL) from exc
    if any(cpu >= hw.CPUS for cpu in cpus):
        raise KernelError(errno.EINVAL)
    return cpus


def _choice(text: str, choices: tuple[str, ...] | list[str]) -> str:
    value = text.strip()
    if value not in choices:
        raise KernelError(errno.EINVAL)
    return value


def _bracketed(choices: tuple[str, ...], current: str) -> str:
    return " ".join(f"[{c}]" if c == current else c for c in choices)


def _to_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError as exc:
        raise KernelError(errno.EINVAL) from exc


THP_ENABLED = ("always", "madvise", "never")
THP_DEFRAG = ("always", "defer", "defer+madvise", "madvise", "never")


class SimKernel:
    """The kernel of one simulated host."""

    def __init__(self, state: KernelState, state_file: Path | None = None) -> None:
        self.state = state
        self.state_file = state_file
        self.lock = threading.RLock()
        # Jitter of simulated readings, not cryptography.
        self._rng = random.Random(state.serial)  # noqa: S311

    # --- persistence ----------------------------------------------------------------

    @classmethod
    def load(cls, hostname: str, state_file: Path) -> SimKernel:
        if state_file.exists():
            data = json.loads(state_file.read_text())
            return cls(KernelState(**data), state_file)
        serial = f"{hw.SERIAL_PREFIX}{abs(hash(hostname)) % 10**8:08d}"
        kernel = cls(KernelState(hostname=hostname, serial=serial), state_file)
        kernel.save()
        return kernel

    def save(self) -> None:
        if self.state_file is None:
            return
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state.__dict__, indent=1, sort_keys=True))
        tmp.replace(self.state_file)

    # --- boot -----------------------------------------------------------------------

    @property
    def booted(self) -> bool:
        return bool(self.state.boot)

    @property
    def release(self) -> str:
        return str(self.state.boot.get("release", hw.STOCK_RELEASE))

    @property
    def realtime(self) -> bool:
        return bool(self.state.boot.get("realtime", False))

    @property
    def cmdline(self) -> str:
        return str(
            self.state.boot.get("cmdline", f"{hw.KERNEL_PARTITION_CMDLINE} {hw.PLATFORM_ARGS}")
        )

    def _cmdline_cpus(self, key: str) -> list[int]:
        value = cmdline_args(self.cmdline).get(key)
        if not value:
            return []
        # isolcpus=[flag,...,]<cpulist>: flags are words, the list starts at a digit.
        parts = value.split(",")
        while parts and parts[0] and not parts[0][0].isdigit():
            parts.pop(0)
        try:
            return [c for c in parse_cpulist(",".join(parts)) if c < hw.CPUS]
        except ValueError:
            return []

    @property
    def isolated(self) -> list[int]:
        return self._cmdline_cpus("isolcpus")

    @property
    def nohz_full(self) -> list[int]:
        return self._cmdline_cpus("nohz_full")

    def power_on(self, record: BootRecord) -> None:
        """Reset volatile state as a boot of ``record``'s kernel and command line does."""
        with self.lock:
            state = self.state
            state.boots += 1
            state.boot_id = str(uuid.uuid4())
            state.boot_time = time.time()
            state.boot = record.as_state()
            args = cmdline_args(self.cmdline)
            state.online = list(range(hw.CPUS))
            thp = args.get("transparent_hugepage")
            state.thp_enabled = thp if thp in THP_ENABLED else "always"
            state.thp_defrag = "madvise"
            state.governor = {
                _policy_name(i): hw.CPU_DEFAULT_GOVERNOR for i in range(len(hw.CLUSTERS))
            }
            state.cpu_min_khz = {
                _policy_name(i): hw.CPU_FREQS_KHZ[0] for i in range(len(hw.CLUSTERS))
            }
            state.cpu_max_khz = {
                _policy_name(i): hw.CPU_FREQS_KHZ[-1] for i in range(len(hw.CLUSTERS))
            }
            state.gpu_min_hz, state.gpu_max_hz = hw.GPU_FREQS_HZ[0], hw.GPU_FREQS_HZ[-1]
            state.gpu_governor, state.gpu_runtime_pm = "nvhost_podgov", "auto"
            state.emc_locked, state.fan_pwm, state.fan_pwm_enable = 0, 0, 2
            state.cpuidle_disable, state.gpu_railgate = {}, 1
            housekeeping = self._cmdline_cpus("irqaffinity") or list(range(hw.CPUS))
            isolated = set(self.isolated)
            managed_isolation = "managed_irq" in (args.get("isolcpus") or "")
            state.default_smp_affinity = housekeeping
            state.irq_affinity = {}
            for irq in hw.IRQS:
                if irq.per_cpu:
                    cpus = list(range(hw.CPUS))
                elif irq.managed:
                    queue = irq.number - 202
                    spread = [
                        c for c in range(hw.CPUS) if not (managed_isolation and c in isolated)
                    ] or [0]
                    cpus = [spread[queue % len(spread)]] if queue else list(range(hw.CPUS))
                else:
                    cpus = list(housekeeping)
                state.irq_affinity[str(irq.number)] = cpus
            state.irq_counts = {str(irq.number): [0.0] * hw.CPUS for irq in hw.IRQS}
            state.irq_counted_at = state.boot_time
            state.workqueue_mask = list(range(hw.CPUS))
            state.writeback_mask = list(range(hw.CPUS))
            state.sysctl = {name: spec[0] for name, spec in hw.SYSCTLS.items()}
            state.swaps = []
            line = record.log_line(state.boots)
            state.boot_log.append(line)
            del state.boot_log[:-50]
            self.save()
            if self.state_file is not None:
                with (self.state_file.parent / "boot.log").open("a") as log:
                    log.write(line + "\n")

    # --- IRQ accounting -------------------------------------------------------------

    def _effective(self, number: str) -> list[int]:
        irq = next(i for i in hw.IRQS if str(i.number) == number)
        cpus = [c for c in self.state.irq_affinity[number] if c in self.state.online]
        if irq.per_cpu:
            return cpus
        return cpus[:1] or [0]

    def _account_irqs(self) -> None:
        now = time.time()
        elapsed = max(0.0, now - (self.state.irq_counted_at or now))
        self.state.irq_counted_at = now
        for irq in hw.IRQS:
            key = str(irq.number)
            counts = self.state.irq_counts.setdefault(key, [0.0] * hw.CPUS)
            for cpu in self._effective(key):
                counts[cpu] += irq.rate * elapsed

    def _set_irq_affinity(self, number: str, cpus: list[int]) -> None:
        irq = next(i for i in hw.IRQS if str(i.number) == number)
        if irq.per_cpu or irq.managed:
            raise KernelError(errno.EIO)
        if not any(cpu in self.state.online for cpu in cpus):
            raise KernelError(errno.EINVAL)
        with self.lock:
            self._account_irqs()
            self.state.irq_affinity[number] = cpus
            self.save()

    # --- writers --------------------------------------------------------------------

    def _setter(self, apply: Callable[[str], None]) -> Callable[[str], None]:
        def write(text: str) -> None:
            with self.lock:
                apply(text)
                self.save()

        return write

    def set_online(self, cpu: int, text: str) -> None:
        value = _to_int(text)
        if value not in (0, 1):
            raise KernelError(errno.EINVAL)
        online = set(self.state.online)
        if value:
            online.add(cpu)
        else:
            if len(online - {cpu}) == 0:
                raise KernelError(errno.EBUSY)
            online.discard(cpu)
        self._account_irqs()
        self.state.online = sorted(online)

    # --- the tree -------------------------------------------------------------------

    def tree(self) -> Dir:
        return _static_dir({"sys": self._sys(), "proc": self._proc()})

    def _sys(self) -> Dir:
        st = self.state
        cpu_dir: dict[str, Node] = {
            "online": File(lambda: format_cpulist(st.online)),
            "offline": File(lambda: format_cpulist(set(range(hw.CPUS)) - set(st.online))),
            "possible": _const(f"0-{hw.CPUS - 1}"),
            "present": _const(f"0-{hw.CPUS - 1}"),
            "kernel_max": _const("511"),
            "isolated": File(lambda: format_cpulist(self.isolated)),
            "nohz_full": File(lambda: format_cpulist(self.nohz_full) or "(null)"),
            "cpufreq": _static_dir(
                {_policy_name(i): self._policy(i) for i in range(len(hw.CLUSTERS))}
            ),
        }
        for cpu in range(hw.CPUS):
            entries: dict[str, Node] = {
                "cpufreq": Link(f"../cpufreq/{_policy_name(_cluster_of(cpu))}"),
                "topology": _static_dir(
                    {
                        "cluster_id": _const(str(_cluster_of(cpu))),
                        "core_id": _const(str(cpu - hw.CLUSTERS[_cluster_of(cpu)][0])),
                    }
                ),
            }
            if cpu:
                entries["online"] = self._online_file(cpu)
            entries["cpuidle"] = self._cpuidle(cpu)
            cpu_dir[f"cpu{cpu}"] = _static_dir(entries)

        thp: dict[str, Node] = {
            "enabled": File(
                lambda: _bracketed(THP_ENABLED, st.thp_enabled),
                self._setter(lambda t: setattr(st, "thp_enabled", _choice(t, THP_ENABLED))),
            ),
            "defrag": File(
                lambda: _bracketed(THP_DEFRAG, st.thp_defrag),
                self._setter(lambda t: setattr(st, "thp_defrag", _choice(t, THP_DEFRAG))),
            ),
            "hpage_pmd_size": _const("2097152"),
        }

        def kernel_children() -> dict[str, Node]:
            entries: dict[str, Node] = {
                "mm": _static_dir({"transparent_hugepage": _static_dir(thp)}),
                "debug": _static_dir(
                    {
                        "bpmp": _static_dir(
                            {
                                "debug": _static_dir(
                                    {"clk": _static_dir({"emc": _static_dir(self._emc())})}
                                )
                            }
                        )
                    }
                ),
                "security": _static_dir({}),
                "tracing": _static_dir({}),
                "config": _static_dir({}),
            }
            if self.realtime:
                entries["realtime"] = _const("1")
            return entries

        workqueue: dict[str, Node] = {
            "cpumask": File(
                lambda: _mask(st.workqueue_mask),
                self._setter(lambda t: setattr(st, "workqueue_mask", self._wq_mask(t))),
            ),
            "writeback": _static_dir(
                {
                    "cpumask": File(
                        lambda: _mask(st.writeback_mask),
                        self._setter(lambda t: setattr(st, "writeback_mask", self._wq_mask(t))),
                    ),
                }
            ),
        }
        gpu: dict[str, Node] = {
            "devfreq": _static_dir({"17000000.gpu": self._devfreq()}),
            "power": _static_dir(
                {
                    "control": File(
                        lambda: st.gpu_runtime_pm,
                        self._setter(
                            lambda t: setattr(st, "gpu_runtime_pm", _choice(t, ("auto", "on")))
                        ),
                    ),
                    "runtime_status": File(
                        lambda: "active" if st.gpu_runtime_pm == "on" else "suspended"
                    ),
                }
            ),
        }
        dla = {
            f"nvdla{n}@{addr}": _static_dir(
                {"status": _const("disabled\0"), "compatible": _const("nvidia,tegra234-nvdla\0")}
            )
            for n, addr in ((0, "15880000"), (1, "158c0000"))
        }
        devicetree: dict[str, Node] = {
            "model": _const(hw.MODEL + "\0"),
            "compatible": File(lambda: "\0".join(hw.compatible(st.module_sku)) + "\0"),
            "serial-number": File(lambda: st.serial + "\0"),
            "bus@0": _static_dir({"host1x@13e00000": _static_dir(dla)}),
        }
        thermal = {
            f"thermal_zone{i}": self._thermal_zone(i, name, base)
            for i, (name, base) in enumerate(hw.THERMAL_ZONES)
        }
        hwmon = {
            "hwmon1": _static_dir(
                {
                    "name": _const("pwmfan"),
                    "pwm1": File(lambda: str(st.fan_pwm), self._setter(self._set_fan)),
                    "pwm1_enable": File(
                        lambda: str(st.fan_pwm_enable), self._setter(self._set_fan_enable)
                    ),
                }
            )
        }
        return _static_dir(
            {
                "kernel": Dir(kernel_children),
                "devices": _static_dir(
                    {
                        "system": _static_dir({"cpu": _static_dir(cpu_dir), "node": self._numa()}),
                        "virtual": _static_dir(
                            {"workqueue": _static_dir(workqueue), "net": _static_dir({})}
                        ),
                        "platform": _static_dir(
                            {
                                "bus@0": _static_dir({"17000000.gpu": _static_dir(gpu)}),
                                # nvgpu's platform device: jetson_clocks reads its of_node
                                # ("No GPU found" without it) and clears railgate_enable
                                "gpu.0": _static_dir(
                                    {
                                        "of_node": _static_dir(
                                            {"compatible": _const("nvidia,ga10b\0")}
                                        ),
                                        "railgate_enable": File(
                                            lambda: str(st.gpu_railgate),
                                            self._setter(self._set_railgate),
                                        ),
                                    }
                                ),
                            }
                        ),
                    }
                ),
                "bus": _static_dir(
                    {
                        "workqueue": _static_dir(
                            {
                                "devices": _static_dir(
                                    {
                                        "writeback": Link(
                                            "../../../devices/virtual/workqueue/writeback"
                                        )
                                    }
                                )
                            }
                        )
                    }
                ),
                "class": _static_dir(
                    {
                        "devfreq": _static_dir(
                            {
                                "17000000.gpu": Link(
                                    "../../devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu"
                                )
                            }
                        ),
                        "thermal": _static_dir(thermal),
                        "hwmon": _static_dir(hwmon),
                        "net": _static_dir({}),
                    }
                ),
                "firmware": _static_dir(
                    {"devicetree": _static_dir({"base": _static_dir(devicetree)})}
                ),
                "fs": _static_dir({"cgroup": _static_dir({})}),
                # /proc/modules cannot be laid over a machine kernel built without
                # modules; /sys/module/<name>/initstate says the same on every kernel.
                "module": Dir(self._sys_modules),
            }
        )

    def _sys_modules(self) -> dict[str, Node]:
        modules = self.state.boot.get("modules", [m for m, _ in hw.MODULES])
        sizes = dict(hw.MODULES)
        return {
            m: _static_dir(
                {
                    "initstate": _const("live"),
                    "refcnt": _const("1"),
                    "coresize": _const(str(sizes.get(m, 65536))),
                }
            )
            for m in modules
        }

    def _numa(self) -> Dir:
        """One memory node holding every CPU, as on every Orin (libnuma reads it)."""
        cpus = list(range(hw.CPUS))
        node0: dict[str, Node] = {
            "cpulist": File(lambda: format_cpulist(self.state.online)),
            "cpumap": File(lambda: _mask(self.state.online)),
            "distance": _const("10"),
        }
        for cpu in cpus:
            node0[f"cpu{cpu}"] = Link(f"../../cpu/cpu{cpu}")
        return _static_dir(
            {
                "online": _const("0"),
                "possible": _const("0"),
                "has_cpu": _const("0"),
                "has_memory": _const("0"),
                "has_normal_memory": _const("0"),
                "node0": _static_dir(node0),
            }
        )

    def _wq_mask(self, text: str) -> list[int]:
        cpus = [c for c in _parse_mask(text) if c < hw.CPUS]
        if not cpus:
            raise KernelError(errno.EINVAL)
        return cpus

    def _cpuidle(self, cpu: int) -> Dir:
        """WFI and the C7 state of an Orin CPU; ``disable`` is per CPU and state."""
        st = self.state

        def state_dir(index: int, name: str, latency: int) -> Dir:
            key = f"{cpu}:{index}"

            def set_disable(text: str) -> None:
                value = _to_int(text)
                if value not in (0, 1):
                    raise KernelError(errno.EINVAL)
                st.cpuidle_disable[key] = value

            return _static_dir(
                {
                    "name": _const(name),
                    "desc": _const(name),
                    "latency": _const(str(latency)),
                    "disable": File(
                        lambda: str(st.cpuidle_disable.get(key, 0)), self._setter(set_disable)
                    ),
                }
            )

        return _static_dir(
            {f"state{i}": state_dir(i, name, lat) for i, (name, lat) in enumerate(hw.CPUIDLE)}
        )

    def _set_railgate(self, text: str) -> None:
        value = _to_int(text)
        if value not in (0, 1):
            raise KernelError(errno.EINVAL)
        self.state.gpu_railgate = value

    def _set_fan_enable(self, text: str) -> None:
        value = _to_int(text)
        if value not in (0, 1, 2):
            raise KernelError(errno.EINVAL)
        self.state.fan_pwm_enable = value

    def _set_fan(self, text: str) -> None:
        value = _to_int(text)
        if not 0 <= value <= 255:
            raise KernelError(errno.EINVAL)
        self.state.fan_pwm = value

    def _policy(self, cluster: int) -> Dir:
        st = self.state
        name = _policy_name(cluster)
        cpus = hw.CLUSTERS[cluster]

        def cur() -> str:
            governor = st.governor.get(name, hw.CPU_DEFAULT_GOVERNOR)
            if governor in ("performance",) or st.cpu_min_khz[name] == st.cpu_max_khz[name]:
                return str(st.cpu_max_khz[name])
            if governor == "powersave":
                return str(st.cpu_min_khz[name])
            steps = [
                f for f in hw.CPU_FREQS_KHZ if st.cpu_min_khz[name] <= f <= st.cpu_max_khz[name]
            ]
            return str(self._rng.choice(steps or [st.cpu_max_khz[name]]))

        def set_governor(text: str) -> None:
            st.governor[name] = _choice(text, hw.CPU_GOVERNORS)

        def set_limit(which: str) -> Callable[[str], None]:
            def apply(text: str) -> None:
                value = _to_int(text)
                if value < hw.CPU_FREQS_KHZ[0] or value > hw.CPU_FREQS_KHZ[-1]:
                    raise KernelError(errno.EINVAL)
                # Like cpufreq, snap to a supported frequency and keep min <= max.
                value = min(hw.CPU_FREQS_KHZ, key=lambda f: abs(f - value))
                if which == "min":
                    st.cpu_min_khz[name] = min(value, st.cpu_max_khz[name])
                else:
                    st.cpu_max_khz[name] = value
                    st.cpu_min_khz[name] = min(st.cpu_min_khz[name], value)

            return apply

        return _static_dir(
            {
                "affected_cpus": _const(" ".join(map(str, cpus))),
                "related_cpus": _const(" ".join(map(str, cpus))),
                "cpuinfo_min_freq": _const(str(hw.CPU_FREQS_KHZ[0])),
                "cpuinfo_max_freq": _const(str(hw.CPU_FREQS_KHZ[-1])),
                "cpuinfo_cur_freq": File(cur),
                "scaling_cur_freq": File(cur),
                "scaling_available_frequencies": _const(" ".join(map(str, hw.CPU_FREQS_KHZ))),
                "scaling_available_governors": _const(" ".join(hw.CPU_GOVERNORS)),
                "scaling_governor": File(
                    lambda: st.governor.get(name, hw.CPU_DEFAULT_GOVERNOR),
                    self._setter(set_governor),
                ),
                "scaling_min_freq": File(
                    lambda: str(st.cpu_min_khz[name]), self._setter(set_limit("min"))
                ),
                "scaling_max_freq": File(
                    lambda: str(st.cpu_max_khz[name]), self._setter(set_limit("max"))
                ),
                "scaling_driver": _const("tegra194"),
            }
        )

    def _devfreq(self) -> Dir:
        st = self.state

        def cur() -> str:
            if st.gpu_min_hz >= st.gpu_max_hz or st.gpu_governor == "performance":
                return str(st.gpu_max_hz)
            return str(st.gpu_min_hz)

        def set_freq(which: str) -> Callable[[str], None]:
            def apply(text: str) -> None:
                value = _to_int(text)
                snapped = min(hw.GPU_FREQS_HZ, key=lambda f: abs(f - value))
                if which == "min":
                    st.gpu_min_hz = min(snapped, st.gpu_max_hz)
                else:
                    st.gpu_max_hz = snapped
                    st.gpu_min_hz = min(st.gpu_min_hz, snapped)

            return apply

        return _static_dir(
            {
                "cur_freq": File(cur),
                "target_freq": File(cur),
                "min_freq": File(lambda: str(st.gpu_min_hz), self._setter(set_freq("min"))),
                "max_freq": File(lambda: str(st.gpu_max_hz), self._setter(set_freq("max"))),
                "available_frequencies": _const(" ".join(map(str, hw.GPU_FREQS_HZ))),
                "available_governors": _const(" ".join(hw.GPU_GOVERNORS)),
                "governor": File(
                    lambda: st.gpu_governor,
                    self._setter(
                        lambda t: setattr(st, "gpu_governor", _choice(t, hw.GPU_GOVERNORS))
                    ),
                ),
            }
        )

    def _emc(self) -> dict[str, Node]:
        st = self.state

        def set_lock(text: str) -> None:
            st.emc_locked = 1 if _to_int(text) else 0

        return {
            "rate": File(lambda: str(hw.EMC_MAX_HZ if st.emc_locked else 2133000000)),
            "max_rate": _const(str(hw.EMC_MAX_HZ)),
            "min_rate": _const(str(hw.EMC_MIN_HZ)),
            "mrq_rate_locked": File(lambda: str(st.emc_locked), self._setter(set_lock)),
        }

    def _thermal_zone(self, index: int, name: str, base_mc: int) -> Dir:
        st = self.state

        def temp() -> str:
            locked = any(st.cpu_min_khz.get(p) == st.cpu_max_khz.get(p) for p in st.cpu_max_khz)
            load = 4500 if locked else 0
            return str(base_mc + load + self._rng.randrange(-300, 300, 100))

        entries: dict[str, Node] = {
            "type": _const(name),
            "temp": File(temp),
            "mode": _const("enabled"),
            "policy": _const("step_wise"),
        }
        for n, (kind, value) in enumerate(hw.THERMAL_TRIPS):
            entries[f"trip_point_{n}_type"] = _const(kind)
            entries[f"trip_point_{n}_temp"] = _const(str(value))
        del index
        return _static_dir(entries)

    # --- /proc ----------------------------------------------------------------------

    def _proc(self) -> Dir:
        st = self.state
        sysctl: dict[str, dict[str, Node]] = {"kernel": {}, "vm": {}}
        for name, (_, low, high) in hw.SYSCTLS.items():
            group, key = name.split("/")
            sysctl[group][key] = self._sysctl_file(name, low, high)
        sysctl["kernel"]["osrelease"] = File(lambda: self.release, size=0)
        sysctl["kernel"]["version"] = File(self._version, size=0)
        sysctl["kernel"]["random"] = _static_dir({"boot_id": File(lambda: st.boot_id, size=0)})
        irq: dict[str, Node] = {
            "default_smp_affinity": File(lambda: _mask(st.default_smp_affinity), size=0),
        }
        for item in hw.IRQS:
            irq[str(item.number)] = self._irq_dir(str(item.number), item.action)
        return _static_dir(
            {
                "cmdline": File(lambda: self.cmdline, size=0),
                "version": File(
                    lambda: (
                        f"Linux version {self.release} (buildbrain@mobile-u64-6336-d8000) "
                        f"(aarch64-buildroot-linux-gnu-gcc.br_real (Buildroot 2022.08) 11.3.0, "
                        f"GNU ld (GNU Binutils) 2.38) {self._version()}"
                    ),
                    size=0,
                ),
                "interrupts": File(self._interrupts, size=0),
                "swaps": File(self._swaps, size=0),
                "modules": File(self._modules, size=0),
                "irq": _static_dir(irq),
                "sys": _static_dir({k: _static_dir(v) for k, v in sysctl.items()}),
            }
        )

    def _online_file(self, cpu: int) -> File:
        def read() -> str:
            return "1" if cpu in self.state.online else "0"

        return File(read, self._setter(lambda text: self.set_online(cpu, text)))

    def _sysctl_file(self, name: str, low: int, high: int) -> File:
        def read() -> str:
            return str(self.state.sysctl.get(name, hw.SYSCTLS[name][0]))

        return File(read, self._setter(lambda t: self._set_sysctl(name, t, low, high)), size=0)

    def _version(self) -> str:
        return str(self.state.boot.get("version", "#1 SMP PREEMPT Wed Jan  8 01:49:37 PST 2025"))

    def _set_sysctl(self, name: str, text: str, low: int, high: int) -> None:
        value = _to_int(text)
        if not low <= value <= high:
            raise KernelError(errno.EINVAL)
        if name == "kernel/sched_rt_runtime_us" and value > self.state.sysctl.get(
            "kernel/sched_rt_period_us", 1000000
        ):
            raise KernelError(errno.EINVAL)
        self.state.sysctl[name] = value

    def _irq_dir(self, number: str, action: str) -> Dir:
        st = self.state

        def write_list(text: str) -> None:
            self._set_irq_affinity(number, _strict_cpulist(text))

        def write_mask(text: str) -> None:
            cpus = _parse_mask(text)
            if any(c >= hw.CPUS for c in cpus):
                raise KernelError(errno.EINVAL)
            self._set_irq_affinity(number, cpus)

        return _static_dir(
            {
                "smp_affinity_list": File(
                    lambda: format_cpulist(st.irq_affinity[number]), write_list, size=0
                ),
                "smp_affinity": File(lambda: _mask(st.irq_affinity[number]), write_mask, size=0),
                "effective_affinity_list": File(
                    lambda: format_cpulist(self._effective(number)), size=0
                ),
                "effective_affinity": File(lambda: _mask(self._effective(number)), size=0),
                "node": _const("0"),
                "spurious": _const("count 0\nunhandled 0\nlast_unhandled 0 ms\n"),
                action.split(",", maxsplit=1)[0].replace(" ", "_"): _static_dir({}),
            }
        )

    def _interrupts(self) -> str:
        with self.lock:
            self._account_irqs()
            online = self.state.online
            lines = [" " * 11 + "".join(f"CPU{c:<7d}" for c in online)]
            for irq in hw.IRQS:
                counts = self.state.irq_counts.get(str(irq.number), [0.0] * hw.CPUS)
                cells = "".join(f"{int(counts[c]):10d} " for c in online)
                lines.append(
                    f"{irq.number:4d}: {cells} {irq.chip:>8s} {irq.hwirq:>8s} "
                    f"{irq.trigger:<6s} {irq.action}"
                )
            lines.append(
                "IPI0: " + "".join(f"{1000:10d} " for _ in online) + " Rescheduling interrupts"
            )
            return "\n".join(lines) + "\n"

    def _swaps(self) -> str:
        header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority"
        rows = [f"{dev}\t\t\t\tpartition\t{hw.ZRAM_SIZE_KB}\t\t0\t\t5" for dev in self.state.swaps]
        return "\n".join([header, *rows]) + "\n"

    def _modules(self) -> str:
        modules = self.state.boot.get("modules", [m for m, _ in hw.MODULES])
        sizes = dict(hw.MODULES)
        return "".join(
            f"{m} {sizes.get(m, 65536)} 1 - Live 0x0000000000000000 (O)\n" for m in modules
        )

    # --- control (the sim's own interface, not a kernel one) -------------------------

    def set_module(self, text: str) -> None:
        """Make this host another Orin module (control/module): its device tree says so."""
        sku = text.strip()
        if not re.fullmatch(r"p3767-000[0-5]|p3701-000[0-8]", sku):
            raise KernelError(errno.EINVAL, f"unknown module part number {sku!r}")
        with self.lock:
            self.state.module_sku = sku
            self.save()

    def swap_command(self, text: str) -> None:
        """``on DEV`` / ``off DEV`` / ``off -a`` from the sim's swapon and swapoff."""
        with self.lock:
            words = text.split()
            if len(words) != 2 or words[0] not in ("on", "off"):
                raise KernelError(errno.EINVAL)
            action, device = words
            if action == "on":
                if not device.startswith("/"):
                    raise KernelError(errno.EINVAL)
                if device in self.state.swaps:
                    raise KernelError(errno.EBUSY)
                self.state.swaps.append(device)
            elif device == "-a":
                self.state.swaps.clear()
            elif device in self.state.swaps:
                self.state.swaps.remove(device)
            else:
                raise KernelError(errno.EINVAL)
            self.save()

    def rootfs_command(self, text: str) -> None:
        """``verify`` (nvbootctrl verify after a successful boot) or ``reset`` (the UEFI
        menu marks slot A bootable again)."""
        with self.lock:
            slot = RootfsState.from_state(self.state.rootfs)
            if text == "verify":
                slot.verified()
            elif text == "reset":
                slot.reset()
            else:
                raise KernelError(errno.EINVAL)
            self.state.rootfs = asdict(slot)
            self.save()

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {
                "hostname": self.state.hostname,
                "boots": self.state.boots,
                "booted": self.state.boot.get("label"),
                "linux": self.state.boot.get("linux"),
                "outcome": self.state.boot.get("outcome"),
                "rootfs": dict(self.state.rootfs),
                "kernel_partition": {
                    "release": hw.STOCK_RELEASE,
                    "cmdline": f"{hw.KERNEL_PARTITION_CMDLINE} {hw.PLATFORM_ARGS}",
                },
                "release": self.release,
                "realtime": self.realtime,
                "cmdline": self.cmdline,
                "isolated": format_cpulist(self.isolated),
                "boot_log": self.state.boot_log[-10:],
            }
