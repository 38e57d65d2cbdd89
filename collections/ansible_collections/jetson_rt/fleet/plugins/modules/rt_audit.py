#!/usr/bin/python
# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""Audit a Jetson's real-time state against what it was asked to be; changes nothing."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rt_audit
short_description: Audit the real-time state of an NVIDIA Jetson
description:
  - Checks every item of the real-time checklist (the guide's section 17.6 and
    Appendix A) against the values the host was tuned for, and returns one result
    per check with a status (V(pass), V(warn), V(fail) or V(unknown)), the observed
    and expected values and a one-line hint to fix it.
  - "Checks, in order: C(rt_kernel), C(cmdline_isolation), C(cpu_isolation),
    C(nohz_full), C(irq_affinity), C(irqbalance), C(thp), C(swap), C(governor),
    C(clocks_locked), C(nvpmodel), C(thermal), C(memory), C(sched_rt_runtime),
    C(sysctls), C(rt_limits), C(desktop), C(kernel_held)."
  - Reads sysfs, procfs, C(/etc) and the dpkg status file, and runs only read-only
    commands (C(systemctl show), C(jetson_clocks --show), C(nvpmodel -q)). It never
    changes the host, so it behaves the same in check mode.
  - A failed check is a result, not a module failure; the module fails only on bad
    arguments.
  - IRQs are classified as per-CPU (debugfs C(IRQD_PER_CPU), or GIC interrupt ids
    below 32 in C(/proc/interrupts)), managed (debugfs C(IRQD_AFFINITY_MANAGED)),
    unmovable (listed in O(unmovable_irqs_file)) or movable. A movable IRQ allowed on
    an isolated CPU fails the check; a managed or unmovable one that lands there is a
    warning; per-CPU IRQs are excluded and counted.
version_added: "0.1.0"
options:
  isolated_cpus:
    description: CPUs that must be isolated, as a kernel CPU list (C(4-5)).
    type: str
    required: true
  housekeeping_cpus:
    description: CPUs for IRQs and everything else; default every present CPU not isolated.
    type: str
  isolcpus_flags:
    description: Flags expected before the CPU list in C(isolcpus=).
    type: list
    elements: str
    default: [managed_irq, domain]
  nohz_full:
    description: Expect C(nohz_full=<isolated>) on the command line and in sysfs.
    type: bool
    default: true
  rcu_nocbs:
    description: Expect C(rcu_nocbs=<isolated>) on the command line.
    type: bool
    default: true
  kernel_args:
    description: Other expected kernel arguments, name to value (null for a bare flag).
    type: dict
    default: {}
  realtime:
    description: Expect a PREEMPT_RT kernel (C(/sys/kernel/realtime) = 1).
    type: bool
    default: true
  governor:
    description: Expected cpufreq governor of every online CPU.
    type: str
    default: performance
  thp:
    description: Expected transparent hugepage mode.
    type: str
    choices: [always, madvise, never]
    default: never
  swap_off:
    description: Expect no active swap, nvzramconfig disabled and no swap in C(/etc/fstab).
    type: bool
    default: true
  power_mode:
    description: Expected nvpmodel mode by name (C(MAXN_SUPER), C(25W)); null does not check it.
    type: str
  clocks_locked:
    description: Expect clocks locked at their maximum (as C(jetson_clocks) leaves them).
    type: bool
    default: true
  sysctls:
    description: Expected sysctls, dotted name to value.
    type: dict
    default: {kernel.sched_rt_runtime_us: -1}
  runner_user:
    description: User that runs the inference service.
    type: str
    default: jetson-rt
  runner_unit:
    description:
      - systemd unit of the inference service. When it is loaded, its
        C(LimitRTPRIO=)/C(LimitMEMLOCK=) are checked instead of C(limits.conf),
        which does not apply to services.
    type: str
  rtprio:
    description: Minimum RLIMIT_RTPRIO of the runner user.
    type: int
    default: 99
  memlock:
    description: Minimum RLIMIT_MEMLOCK of the runner user, in KiB, or C(unlimited).
    type: str
    default: unlimited
  headless:
    description: Expect the display manager stopped and disabled.
    type: bool
    default: true
  display_manager:
    description: The display manager unit.
    type: str
    default: gdm.service
  min_available_mb:
    description: Minimum MemAvailable in MiB.
    type: int
    default: 500
  thermal_warn_c:
    description: Temperature (Celsius) from which a zone is a warning; at its passive trip it fails.
    type: float
    default: 85.0
  held_packages:
    description: Package name patterns that must be on hold when installed.
    type: list
    elements: str
    default: ["nvidia-l4t-kernel*", "nvidia-l4t-rt-kernel*", "nvidia-l4t-display-rt-kernel"]
  unmovable_irqs_file:
    description: JSON list of IRQ numbers known to refuse a new affinity (written by rt_tuning).
    type: path
    default: /var/lib/jetson-rt/rt_tuning/irq-unmovable.json
  skip:
    description: Check ids not to run.
    type: list
    elements: str
    default: []
  warn_only:
    description: Check ids whose failures are reported as warnings (areas not managed by tuning).
    type: list
    elements: str
    default: []
  root:
    description:
      - Root of the file tree to read; for tests on captured trees. Commands are run
        only when it is C(/).
    type: path
    default: /
author:
  - jetson-rt maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Audit | check the host against its tuning
  jetson_rt.fleet.rt_audit:
    isolated_cpus: "4-5"
    power_mode: MAXN_SUPER
    sysctls:
      kernel.sched_rt_runtime_us: -1
      kernel.timer_migration: 0
  check_mode: true
  register: audit

- name: Audit | list what failed
  ansible.builtin.debug:
    msg: "{{ audit.checks | selectattr('status', 'equalto', 'fail') | map(attribute='id') | list }}"
"""

RETURN = r"""
checks:
  description: One result per check, in checklist order (the audit.json format).
  returned: always
  type: list
  elements: dict
  contains:
    id: {description: "Check id, e.g. C(irq_affinity).", type: str}
    title: {description: What is checked., type: str}
    status: {description: "V(pass), V(warn), V(fail) or V(unknown).", type: str}
    observed: {description: What the host has., type: str}
    expected: {description: What it should have., type: str}
    hint: {description: How to fix it., type: str}
summary:
  description: Number of checks per status.
  returned: always
  type: dict
  sample: {pass: 15, warn: 1, fail: 2, unknown: 0}
failed:
  description: Always false; a failed check is in RV(checks), not a module failure.
  returned: always
  type: bool
"""

import shutil
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jetson_rt.fleet.plugins.module_utils import jetson_platform as jp
from ansible_collections.jetson_rt.fleet.plugins.module_utils import rt_audit as ra


def _runner(module: AnsibleModule) -> ra.Runner:
    def run(argv: list[str]) -> tuple[int, str] | None:
        binary = module.get_bin_path(argv[0]) or shutil.which(argv[0], path="/usr/sbin:/usr/bin")
        if binary is None:
            return None
        rc, out, _err = module.run_command([binary, *argv[1:]], environ_update={"LC_ALL": "C"})
        return int(rc), str(out)

    return run


def _cpulist(module: AnsibleModule, name: str, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return jp.parse_cpulist(str(value))
    except ValueError:
        module.fail_json(msg=f"{name}={value!r} is not a CPU list: write e.g. '4-5' or '4,5'.")
    return None


def expected(module: AnsibleModule) -> ra.Expected:
    p = module.params
    isolated = _cpulist(module, "isolated_cpus", p["isolated_cpus"]) or []
    housekeeping = _cpulist(module, "housekeeping_cpus", p["housekeeping_cpus"])
    if housekeeping is None:
        present = jp.cpus_present(p["root"]) or list(range(max(isolated, default=-1) + 1))
        housekeeping = [cpu for cpu in present if cpu not in isolated]
    if set(isolated) & set(housekeeping):
        module.fail_json(
            msg=f"isolated_cpus={p['isolated_cpus']!r} and housekeeping_cpus="
            f"{p['housekeeping_cpus']!r} overlap: a CPU is either isolated or housekeeping."
        )
    memlock = str(p["memlock"])
    if memlock not in ("unlimited", "infinity") and not memlock.isdigit():
        module.fail_json(msg=f"memlock={memlock!r}: give KiB as digits or 'unlimited'.")
    unknown = sorted(set(p["skip"]) | set(p["warn_only"]) - set(ra.CHECK_IDS))
    if unknown:
        module.fail_json(
            msg=f"unknown check id(s) {', '.join(unknown)}; known: {', '.join(ra.CHECK_IDS)}."
        )
    return ra.Expected(
        isolated=sorted(isolated),
        housekeeping=sorted(housekeeping),
        isolcpus_flags=list(p["isolcpus_flags"]),
        nohz_full=p["nohz_full"],
        rcu_nocbs=p["rcu_nocbs"],
        kernel_args={
            str(k): None if v is None else str(v) for k, v in (p["kernel_args"] or {}).items()
        },
        realtime=p["realtime"],
        governor=p["governor"],
        thp=p["thp"],
        swap_off=p["swap_off"],
        power_mode=p["power_mode"],
        clocks_locked=p["clocks_locked"],
        sysctls={str(k): str(v) for k, v in (p["sysctls"] or {}).items()},
        runner_user=p["runner_user"],
        runner_unit=p["runner_unit"],
        rtprio=p["rtprio"],
        memlock=memlock,
        headless=p["headless"],
        display_manager=p["display_manager"],
        min_available_mb=p["min_available_mb"],
        thermal_warn_c=p["thermal_warn_c"],
        held_packages=list(p["held_packages"]),
        unmovable_irqs_file=p["unmovable_irqs_file"],
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "isolated_cpus": {"type": "str", "required": True},
            "housekeeping_cpus": {"type": "str"},
            "isolcpus_flags": {
                "type": "list",
                "elements": "str",
                "default": ["managed_irq", "domain"],
            },
            "nohz_full": {"type": "bool", "default": True},
            "rcu_nocbs": {"type": "bool", "default": True},
            "kernel_args": {"type": "dict", "default": {}},
            "realtime": {"type": "bool", "default": True},
            "governor": {"type": "str", "default": "performance"},
            "thp": {"type": "str", "choices": ["always", "madvise", "never"], "default": "never"},
            "swap_off": {"type": "bool", "default": True},
            "power_mode": {"type": "str"},
            "clocks_locked": {"type": "bool", "default": True},
            "sysctls": {"type": "dict", "default": {"kernel.sched_rt_runtime_us": -1}},
            "runner_user": {"type": "str", "default": "jetson-rt"},
            "runner_unit": {"type": "str"},
            "rtprio": {"type": "int", "default": 99},
            "memlock": {"type": "str", "default": "unlimited"},
            "headless": {"type": "bool", "default": True},
            "display_manager": {"type": "str", "default": "gdm.service"},
            "min_available_mb": {"type": "int", "default": 500},
            "thermal_warn_c": {"type": "float", "default": 85.0},
            "held_packages": {
                "type": "list",
                "elements": "str",
                "default": [
                    "nvidia-l4t-kernel*",
                    "nvidia-l4t-rt-kernel*",
                    "nvidia-l4t-display-rt-kernel",
                ],
            },
            "unmovable_irqs_file": {
                "type": "path",
                "default": "/var/lib/jetson-rt/rt_tuning/irq-unmovable.json",
            },
            "skip": {"type": "list", "elements": "str", "default": []},
            "warn_only": {"type": "list", "elements": "str", "default": []},
            "root": {"type": "path", "default": "/"},
        },
        supports_check_mode=True,
    )
    exp = expected(module)
    root = module.params["root"]
    host = ra.Host(root, _runner(module) if root == "/" else None)
    checks = ra.audit(host, exp, module.params["skip"], module.params["warn_only"])
    summary: dict[str, Any] = dict.fromkeys(ra.STATUSES, 0)
    for result in checks:
        summary[result["status"]] += 1
    module.exit_json(changed=False, checks=checks, summary=summary)


if __name__ == "__main__":
    main()
