#!/usr/bin/python
# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""Gather facts about an NVIDIA Jetson: identity, L4T release, kernel, CPUs, clocks."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: jetson_facts
short_description: Facts about an NVIDIA Jetson's identity and real-time state
description:
  - Reads the device tree, C(/etc/nv_tegra_release), procfs and sysfs of a Jetson
    (JetPack 6 / L4T R36 paths first, R35 fallbacks) and returns them as the
    C(jetson) fact.
  - Changes nothing; safe in check mode.
  - On a host that is not a Jetson, C(jetson.is_jetson) is false and C(jetson.reason)
    says why, unless O(require_jetson) makes that a failure.
version_added: "0.1.0"
options:
  require_jetson:
    description: Fail, saying why, when the host is not a Jetson.
    type: bool
    default: false
  root:
    description: Root of the file tree to read; for tests on captured trees.
    type: path
    default: /
author:
  - jetson-rt maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Facts | gather Jetson facts
  jetson_rt.fleet.jetson_facts:
    require_jetson: true

- name: Facts | show the L4T release and isolated CPUs
  ansible.builtin.debug:
    msg: "{{ ansible_facts.jetson.l4t.release }} isolated={{ ansible_facts.jetson.cpus.isolated }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts added under C(jetson).
  returned: always
  type: dict
  contains:
    jetson:
      description: >-
        is_jetson, reason, model, compatible, soc, module, module_sku, family,
        l4t (release, major, revision, board, jetpack_major), kernel (release,
        realtime, cmdline, args), cpus (present, online, isolated, nohz_full, per_cpu),
        nvpmodel (id, name, default, modes), dla_count, gpu (devfreq path, cur_hz, min_hz,
        max_hz, runtime_pm), swap (devices, zram, nvzramconfig), thp (enabled, defrag),
        irqbalance (active, enabled), thermal, memory (total_kb, available_kb).
      type: dict
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jetson_rt.fleet.plugins.module_utils import jetson_platform as jp


def _systemctl(module: AnsibleModule, verb: str, unit: str) -> str:
    systemctl = module.get_bin_path("systemctl")
    if systemctl is None:
        return "unknown"
    _rc, out, _err = module.run_command([systemctl, verb, unit])
    return str(out).strip() or "unknown"


def _nvpmodel(module: AnsibleModule, root: str) -> dict[str, Any]:
    conf = jp.parse_nvpmodel_conf(jp.read_text(jp.NVPMODEL_CONF, root))
    name, mode_id = None, None
    binary = module.get_bin_path("nvpmodel") if root == "/" else None
    if binary:
        rc, out, _err = module.run_command([binary, "-q"])
        if rc == 0:
            name, mode_id = jp.parse_nvpmodel_query(out)
    if mode_id is None:
        mode_id = jp.nvpmodel_status(root)
        if mode_id is None:
            mode_id = conf.default
        mode = conf.by_id(mode_id) if mode_id is not None else None
        name = mode.name if mode else None
    return {
        "id": mode_id,
        "name": name,
        "default": conf.default,
        "modes": [{"id": m.id, "name": m.name, "cpus_offline": m.cpus_offline} for m in conf.modes],
    }


def gather(module: AnsibleModule, root: str) -> dict[str, Any]:
    ident = jp.identity(root)
    cmdline = jp.cmdline(root)
    gpu = jp.gpu_devfreq(root)
    swaps = jp.swaps(root)
    mem = jp.meminfo(root)
    live = root == "/"
    facts: dict[str, Any] = {
        "is_jetson": ident.is_jetson,
        "reason": ident.reason,
        "model": ident.model,
        "compatible": ident.compatible,
        "soc": ident.soc,
        "module": ident.module,
        "module_sku": ident.module_sku,
        "family": ident.family,
        "l4t": None
        if ident.l4t is None
        else {
            "release": ident.l4t.release,
            "major": ident.l4t.major,
            "revision": ident.l4t.revision,
            "board": ident.l4t.board,
            "jetpack_major": ident.l4t.jetpack_major,
        },
        "kernel": {
            "release": jp.kernel_release(root),
            "realtime": jp.realtime(root),
            "cmdline": cmdline,
            "args": jp.cmdline_args(cmdline),
        },
        "cpus": {
            "present": jp.cpus_present(root),
            "online": jp.cpus_online(root),
            "isolated": jp.isolated_cpus(root),
            "nohz_full": jp.nohz_full_cpus(root),
            "per_cpu": [jp.as_dict(state) for state in jp.cpu_states(root)],
        },
        "nvpmodel": _nvpmodel(module, root),
        "dla_count": jp.dla_count(root, ident.module_sku),
        "gpu": None if gpu is None else jp.as_dict(gpu),
        "swap": {
            "devices": swaps,
            "zram": [dev for dev in swaps if "/zram" in dev],
            "nvzramconfig": _systemctl(module, "is-enabled", "nvzramconfig") if live else "unknown",
        },
        "thp": {"enabled": jp.thp_mode("enabled", root), "defrag": jp.thp_mode("defrag", root)},
        "irqbalance": {
            "active": _systemctl(module, "is-active", "irqbalance") if live else "unknown",
            "enabled": _systemctl(module, "is-enabled", "irqbalance") if live else "unknown",
        },
        "thermal": [jp.as_dict(zone) for zone in jp.thermal_zones(root)],
        "memory": {"total_kb": mem.get("MemTotal"), "available_kb": mem.get("MemAvailable")},
    }
    return facts


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "require_jetson": {"type": "bool", "default": False},
            "root": {"type": "path", "default": "/"},
        },
        supports_check_mode=True,
    )
    facts = gather(module, module.params["root"])
    if module.params["require_jetson"] and not facts["is_jetson"]:
        module.fail_json(
            msg=f"this host is not an NVIDIA Jetson: {facts['reason']}. "
            "jetson-rt roles need JetPack 5 or 6 (L4T R35/R36).",
            ansible_facts={"jetson": facts},
        )
    module.exit_json(changed=False, ansible_facts={"jetson": facts})


if __name__ == "__main__":
    main()
