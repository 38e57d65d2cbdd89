#!/usr/bin/python
# WANT_JSON
# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""Apply a Jetson's runtime real-time settings, now (as a module) and at boot (as a program).

The same file is the role's module and the program ``jetson-rt-tune.service`` runs at
every boot: a WANT_JSON module receives the path of a JSON file of arguments, and the
unit passes ``/etc/jetson-rt/rt_tuning.json`` the same way. It needs nothing beyond
Python 3.10's standard library, as JetPack 6's system Python has.
"""

# Ansible requires the imports below DOCUMENTATION/EXAMPLES/RETURN, hence E402.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rt_tuning_runtime
short_description: Kernel runtime settings of a real-time Jetson, applied idempotently
description:
  - Reads each requested kernel setting and writes only those that differ; every write
    is reported as a change with the value before and after.
  - IRQs the kernel refuses to move (per-CPU and managed IRQs answer C(EIO)) are
    reported in RV(unmovable_irqs), never a failure; they are remembered in
    O(irq_state_file) so that check mode knows them.
  - Runs as a program too - C(python3 rt_tuning_runtime.py ARGS.json) - which is how the
    role's systemd unit re-applies the settings at every boot.
options:
  root:
    description: Root of the file tree (tests run against a fake tree).
    type: path
    default: /
  irq_affinity:
    description: CPU list every movable IRQ is pinned to (C(0-3)).
    type: str
  irq_affinity_map:
    description: CPU list per IRQ number, to restore recorded values.
    type: dict
  irq_state_file:
    description: Where the IRQs that refused to move are remembered.
    type: path
  thp_enabled:
    description: C(/sys/kernel/mm/transparent_hugepage/enabled) (C(always), C(madvise), C(never)).
    type: str
  thp_defrag:
    description: C(/sys/kernel/mm/transparent_hugepage/defrag).
    type: str
  workqueue_cpus:
    description: CPU list for the unbound workqueue and writeback cpumasks.
    type: str
  sysctls:
    description: Sysctl names (C(kernel.timer_migration)) to values.
    type: dict
  governor:
    description: cpufreq governor for every policy, or a dict of policy name to governor.
    type: raw
  gpu_runtime_pm:
    description: The GPU's C(power/control) (C(on) keeps it out of runtime suspend, C(auto)).
    type: str
  fan_pwm:
    description: PWM duty (0-255) of the C(pwmfan) hwmon device.
    type: int
  swap:
    description: C(off) turns every active swap device off (C(swapoff -a)).
    type: str
    choices: [off]
  nvpmodel_mode:
    description: Power mode id to set with C(nvpmodel -m) when C(nvpmodel -q) reports another.
    type: int
  clocks_locked:
    description: C(true) runs C(jetson_clocks) when the CPU or GPU clocks are not locked.
    type: bool
  clocks_fan:
    description: Pass C(--fan) to C(jetson_clocks).
    type: bool
    default: false
author:
  - jetson-rt maintainers
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: Runtime | IRQs to housekeeping CPUs, THP off
  rt_tuning_runtime:
    irq_affinity: "0-3"
    thp_enabled: never
    thp_defrag: never
"""

RETURN = r"""
changes:
  description: Each setting written (or to be written in check mode).
  returned: always
  type: list
  elements: dict
  sample:
    - {"path": "/sys/kernel/mm/transparent_hugepage/enabled", "before": "always", "after": "never"}
before:
  description: The value each requested setting had, by option name (a stock snapshot).
  returned: always
  type: dict
unmovable_irqs:
  description: IRQ numbers the kernel refused to move (per-CPU or managed).
  returned: always
  type: list
  elements: int
"""

import errno
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# R36 (the GPU's bus device, then nvgpu's platform device gpu.0, where R36's jetson_clocks
# finds railgate_enable), then R35's /sys/devices/gpu.0.
GPU_POWER = (
    "sys/devices/platform/bus@0/17000000.gpu/power/control",
    "sys/devices/platform/gpu.0/power/control",
    "sys/devices/gpu.0/power/control",
)
THP = "sys/kernel/mm/transparent_hugepage"
WORKQUEUE_MASKS = (
    "sys/devices/virtual/workqueue/cpumask",
    "sys/bus/workqueue/devices/writeback/cpumask",
)
CPUFREQ = "sys/devices/system/cpu/cpufreq"
PRESENT = "sys/devices/system/cpu/present"
_BRACKETED = re.compile(r"\[([^\]]+)\]")


class TuningError(Exception):
    """A setting the kernel refused or a value that cannot be used."""


def parse_cpulist(text: str) -> set[int]:
    """``0-3,5`` -> {0, 1, 2, 3, 5}; strict (no open or reversed ranges)."""
    cpus: set[int] = set()
    text = text.strip()
    if not text:
        return cpus
    for part in text.split(","):
        first, sep, last = part.partition("-")
        if not first.isdigit() or (sep and not last.isdigit()):
            raise TuningError(f"CPU list {text!r}: {part!r} is not N or N-M")
        low, high = int(first), int(last) if sep else int(first)
        if high < low:
            raise TuningError(f"CPU list {text!r}: {part!r} is a reversed range")
        cpus.update(range(low, high + 1))
    return cpus


def format_cpulist(cpus: set[int] | list[int]) -> str:
    ordered = sorted(set(cpus))
    parts: list[str] = []
    index = 0
    while index < len(ordered):
        end = index
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        first, last = ordered[index], ordered[end]
        parts.append(str(first) if first == last else f"{first}-{last}")
        index = end + 1
    return ",".join(parts)


def parse_mask(text: str) -> set[int]:
    value = int(text.strip().replace(",", "") or "0", 16)
    return {cpu for cpu in range(value.bit_length()) if value >> cpu & 1}


def format_mask(cpus: set[int]) -> str:
    value = 0
    for cpu in cpus:
        value |= 1 << cpu
    return f"{value:x}"


class Runtime:
    """Reads and writes kernel files under ``root``; records what changed."""

    def __init__(self, root: str, check_mode: bool) -> None:
        self.root = root
        self.check_mode = check_mode
        self.changes: list[dict[str, Any]] = []
        self.before: dict[str, Any] = {}
        self.unmovable: list[int] = []
        self.warnings: list[str] = []

    def path(self, rel: str) -> Path:
        return Path(self.root, rel)

    def glob(self, pattern: str) -> list[str]:
        """Paths relative to the root that match ``pattern``, sorted."""
        return sorted(str(p.relative_to(self.root)) for p in Path(self.root).glob(pattern))

    def read(self, rel: str) -> str | None:
        try:
            return self.path(rel).read_text().strip()
        except OSError:
            return None

    def write(self, rel: str, value: str) -> None:
        with self.path(rel).open("w") as handle:
            handle.write(value)

    def change(
        self, rel: str, current: str, wanted: str, shown: tuple[str, str] | None = None
    ) -> None:
        """Write ``wanted``; the caller has decided it differs from ``current``.

        ``shown`` is how the change reads to a person (a CPU list for a cpumask).
        """
        before, after = shown or (current, wanted)
        self.changes.append({"path": "/" + rel, "before": before, "after": after})
        if self.check_mode:
            return
        try:
            self.write(rel, wanted)
        except OSError as exc:
            raise TuningError(
                f"/{rel}: writing {wanted!r} failed: {os.strerror(exc.errno or 0)}"
            ) from exc

    def run(self, argv: list[str]) -> str:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise TuningError(
                f"{' '.join(argv)} failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip()}"
            )
        return result.stdout

    # --- settings ----------------------------------------------------------------

    def thp(self, name: str, wanted: str | None) -> None:
        if wanted is None:
            return
        rel = f"{THP}/{name}"
        text = self.read(rel)
        if text is None:
            self.warnings.append(f"/{rel} does not exist; THP {name} left alone")
            return
        match = _BRACKETED.search(text)
        current = match.group(1) if match else text
        self.before[f"thp_{name}"] = current
        if current != wanted:
            self.change(rel, current, wanted)

    def workqueue(self, wanted: str | None) -> None:
        if wanted is None:
            return
        cpus = parse_cpulist(wanted)
        for rel in WORKQUEUE_MASKS:
            text = self.read(rel)
            if text is None:
                continue
            current = parse_mask(text)
            self.before.setdefault("workqueue_cpus", format_cpulist(current))
            if current != cpus:
                self.change(
                    rel, text, format_mask(cpus), (format_cpulist(current), format_cpulist(cpus))
                )

    def sysctls(self, wanted: dict[str, Any] | None) -> None:
        if not wanted:
            return
        before: dict[str, str] = {}
        for name, value in sorted(wanted.items()):
            rel = "proc/sys/" + name.replace(".", "/")
            current = self.read(rel)
            if current is None:
                raise TuningError(f"sysctl {name}: /{rel} does not exist")
            before[name] = current
            target = " ".join(str(value).split())
            if " ".join(current.split()) != target:
                self.change(rel, current, target)
        self.before["sysctls"] = before

    def governor(self, wanted: Any) -> None:
        if wanted is None:
            return
        before: dict[str, str] = {}
        for policy_dir in self.glob(f"{CPUFREQ}/policy*"):
            policy = Path(policy_dir).name
            target = wanted.get(policy) if isinstance(wanted, dict) else str(wanted)
            rel = f"{CPUFREQ}/{policy}/scaling_governor"
            current = self.read(rel)
            if current is None or target is None:
                continue
            before[policy] = current
            if current != target:
                self.change(rel, current, target)
        self.before["governor"] = before

    def gpu_runtime_pm(self, wanted: str | None) -> None:
        if wanted is None:
            return
        for rel in GPU_POWER:
            current = self.read(rel)
            if current is not None:
                self.before["gpu_runtime_pm"] = current
                if current != wanted:
                    self.change(rel, current, wanted)
                return
        self.warnings.append("no GPU power/control file; GPU runtime PM left alone")

    def fan(self, wanted: int | None) -> None:
        if wanted is None:
            return
        for name_file in self.glob("sys/class/hwmon/hwmon*/name"):
            if self.read(name_file) in ("pwmfan", "pwm-fan"):
                rel = str(Path(name_file).parent / "pwm1")
                current = self.read(rel)
                if current is None:
                    break
                self.before["fan_pwm"] = int(current)
                if int(current) != int(wanted):
                    self.change(rel, current, str(int(wanted)))
                return
        self.warnings.append("no pwmfan hwmon device; fan left alone")

    def irqs(
        self, wanted: str | None, per_irq: dict[str, str] | None, state_file: str | None
    ) -> None:
        if wanted is None and not per_irq:
            return
        known = self._load_unmovable(state_file)
        default = parse_cpulist(wanted) if wanted is not None else None
        before: dict[str, str] = {}
        for irq_dir in self.glob("proc/irq/*"):
            number = Path(irq_dir).name
            if not number.isdigit():
                continue
            rel = f"proc/irq/{number}/smp_affinity_list"
            text = self.read(rel)
            if text is None:
                continue
            before[number] = text
            if per_irq and number in per_irq:
                target = parse_cpulist(str(per_irq[number]))
            elif default is not None:
                target = default
            else:
                continue
            if parse_cpulist(text) != target:
                self._move_irq(int(number), text, target, known)
        self.unmovable.sort()
        self.before["irq_affinity_map"] = dict(sorted(before.items(), key=lambda i: int(i[0])))
        if state_file and not self.check_mode:
            self._save_unmovable(state_file, known | set(self.unmovable))

    def _move_irq(self, number: int, text: str, target: set[int], known: set[int]) -> None:
        rel = f"proc/irq/{number}/smp_affinity_list"
        if number in known:
            self.unmovable.append(number)
            return
        if not self.check_mode:
            try:
                self.write(rel, format_cpulist(target))
            except OSError as exc:
                # per-CPU and managed IRQs answer EIO; an IRQ that went away, EINVAL
                if exc.errno in (errno.EIO, errno.EINVAL, errno.EPERM):
                    self.unmovable.append(number)
                    return
                raise TuningError(f"/{rel}: {os.strerror(exc.errno or 0)}") from exc
        self.changes.append({"path": "/" + rel, "before": text, "after": format_cpulist(target)})

    def _load_unmovable(self, state_file: str | None) -> set[int]:
        if not state_file:
            return set()
        try:
            return {int(n) for n in json.loads(Path(state_file).read_text())}
        except (OSError, ValueError, TypeError):
            return set()

    def _save_unmovable(self, state_file: str, numbers: set[int]) -> None:
        if numbers == self._load_unmovable(state_file):
            return
        Path(state_file).parent.mkdir(parents=True, exist_ok=True)
        Path(state_file).write_text(json.dumps(sorted(numbers)))

    def swap_off(self, wanted: str | None) -> None:
        if wanted is None:
            return
        text = self.read("proc/swaps") or ""
        active = [line.split()[0] for line in text.splitlines()[1:] if line.strip()]
        self.before["swap"] = "on" if active else "off"
        if not active:
            return
        self.changes.append(
            {"path": "/proc/swaps", "before": " ".join(active), "after": "(no swap)"}
        )
        if not self.check_mode:
            self.run(["swapoff", "-a"])

    def nvpmodel(self, wanted: int | None) -> None:
        if wanted is None:
            return
        lines = self.run(["nvpmodel", "-q"]).splitlines()
        current = next((int(line) for line in lines if line.strip().isdigit()), None)
        self.before["nvpmodel_mode"] = current
        if current == int(wanted):
            return
        self.changes.append(
            {"path": "nvpmodel -q", "before": str(current), "after": str(int(wanted))}
        )
        if not self.check_mode:
            self.run(["nvpmodel", "-m", str(int(wanted))])

    def clocks(self, wanted: bool | None, fan: bool) -> None:
        if not wanted:
            return
        unlocked = []
        for rel in self.glob(f"{CPUFREQ}/policy*"):
            low, high = self.read(f"{rel}/scaling_min_freq"), self.read(f"{rel}/scaling_max_freq")
            if low is not None and low != high:
                unlocked.append(f"{Path(rel).name} {low}-{high} kHz")
        for rel in ("sys/class/devfreq/17000000.gpu", "sys/devices/gpu.0/devfreq/17000000.ga10b"):
            low, high = self.read(f"{rel}/min_freq"), self.read(f"{rel}/max_freq")
            if low is not None:
                if low != high:
                    unlocked.append(f"GPU {low}-{high} Hz")
                break
        self.before["clocks_locked"] = not unlocked
        if not unlocked:
            return
        self.changes.append(
            {"path": "jetson_clocks", "before": ", ".join(unlocked), "after": "locked at max"}
        )
        if not self.check_mode:
            self.run(["jetson_clocks", "--fan"] if fan else ["jetson_clocks"])


def apply(args: dict[str, Any]) -> dict[str, Any]:
    runtime = Runtime(args.get("root") or "/", bool(args.get("_ansible_check_mode")))
    # Order matters: the power mode brings CPUs on/offline and caps clocks first.
    # One setting that fails does not keep the others from being applied (at boot
    # that would leave the node half tuned); the failures are reported together.
    steps: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
        (runtime.nvpmodel, (args.get("nvpmodel_mode"),)),
        (runtime.swap_off, (args.get("swap"),)),
        (runtime.thp, ("enabled", args.get("thp_enabled"))),
        (runtime.thp, ("defrag", args.get("thp_defrag"))),
        (runtime.workqueue, (args.get("workqueue_cpus"),)),
        (runtime.sysctls, (args.get("sysctls"),)),
        (runtime.governor, (args.get("governor"),)),
        (runtime.gpu_runtime_pm, (args.get("gpu_runtime_pm"),)),
        (runtime.fan, (args.get("fan_pwm"),)),
        (
            runtime.irqs,
            (args.get("irq_affinity"), args.get("irq_affinity_map"), args.get("irq_state_file")),
        ),
        (runtime.clocks, (args.get("clocks_locked"), bool(args.get("clocks_fan")))),
    ]
    errors = []
    for step, step_args in steps:
        try:
            step(*step_args)
        except TuningError as exc:
            errors.append(str(exc))
    result: dict[str, Any] = {
        "changed": bool(runtime.changes),
        "changes": runtime.changes,
        "before": runtime.before,
        "unmovable_irqs": runtime.unmovable,
    }
    if runtime.warnings:
        result["warnings"] = runtime.warnings
    if errors:
        result.update(failed=True, msg="; ".join(errors))
    if args.get("_ansible_diff"):
        result["diff"] = {
            "before": "".join(f"{c['path']}: {c['before']}\n" for c in runtime.changes),
            "after": "".join(f"{c['path']}: {c['after']}\n" for c in runtime.changes),
        }
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(json.dumps({"failed": True, "msg": f"usage: {argv[0]} ARGS.json"}))
        return 2
    try:
        args = json.loads(Path(argv[1]).read_text())
        result = apply(args)
    except (OSError, ValueError) as exc:
        result = {"failed": True, "msg": str(exc)}
    print(json.dumps(result))
    return 1 if result.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
