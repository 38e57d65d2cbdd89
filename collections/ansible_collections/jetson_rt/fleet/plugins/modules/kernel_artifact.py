#!/usr/bin/python
# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""Ansible module jetson_rt.fleet.kernel_artifact: pack, verify and audit kernel artifacts."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_artifact
short_description: Pack, verify or audit a PREEMPT_RT kernel artifact
version_added: "0.1.0"
description:
  - C(audit) reads the C(vermagic) of every kernel module (C(.ko), C(.ko.xz), C(.ko.gz)) under
    O(modules_dir) and fails naming each one whose vermagic lacks O(required_vermagic)
    (a module without C(preempt_rt) fails to load on an RT kernel with "Invalid module format").
  - C(pack) writes a reproducible artifact (C(.tar.gz)) with the kernel C(Image), the C(.config),
    the module tree, device trees and a C(manifest.json) (L4T release, kernel release, config
    and input hashes, sha256 of every file) plus C(SHA256SUMS). An existing O(dest) is kept.
  - C(verify) checks an artifact's sha256, every member against the manifest, the realtime flag
    and the L4T release, and unpacks it into O(extract_to).
author:
  - jetson-rt maintainers (!UNKNOWN)
options:
  state:
    description: What to do.
    type: str
    choices: [audit, pack, verify]
    required: true
  modules_dir:
    description: C(audit) - the directory to search for modules; C(pack) - the INSTALL_MOD_PATH.
    type: path
  required_vermagic:
    description: C(audit) - the word every module's vermagic must contain.
    type: str
    default: preempt_rt
  image:
    description: C(pack) - the kernel image (C(arch/arm64/boot/Image)).
    type: path
  config:
    description: C(pack) - the kernel C(.config).
    type: path
  dtbs_dir:
    description: C(pack) - the INSTALL_DTBS_PATH, if device trees were built.
    type: path
  initrd:
    description: C(pack) - an initrd to ship with the kernel.
    type: path
  l4t_release:
    description:
      - C(pack) - the L4T release the kernel was built for (C(36.4.3)).
      - C(verify) - the release the target runs; the manifest's must equal it. Omit to skip.
    type: str
  kernel_release:
    description: C(pack) - the kernel release (C(make -s kernelrelease)).
    type: str
  inputs_sha256:
    description: C(pack) - the hash of the build inputs (the cache key), recorded in the manifest.
    type: str
    default: ""
  extra:
    description: C(pack) - more keys for the manifest (toolchain, source name ...).
    type: dict
    default: {}
  dest:
    description: C(pack) - the artifact to write.
    type: path
  artifact:
    description: C(verify) - the artifact to check.
    type: path
  sha256:
    description: C(verify) - its expected sha256.
    type: str
  extract_to:
    description: C(verify) - where to unpack it.
    type: path
  require_realtime:
    description: C(verify) - refuse an artifact whose config lacks C(CONFIG_PREEMPT_RT=y).
    type: bool
    default: true
notes:
  - C(audit) and C(verify) change nothing on the system they run on except O(extract_to).
  - Supports check mode (C(pack) reports what it would write).
"""

EXAMPLES = r"""
- name: Build | every module carries preempt_rt
  jetson_rt.fleet.kernel_artifact:
    state: audit
    modules_dir: /var/tmp/kbuild/modules

- name: Artifact | verify before installing
  jetson_rt.fleet.kernel_artifact:
    state: verify
    artifact: /var/cache/jetson-rt/kernel/36.4.3-0123abcd/rt-kernel.tar.gz
    sha256: "{{ rt_kernel_artifact_sha256 }}"
    extract_to: /tmp/rt-kernel
    l4t_release: "{{ ansible_facts.jetson.l4t.release }}"
  delegate_to: localhost
"""

RETURN = r"""
audit:
  description: C(audit) - C(count), C(modules) (path to vermagic), C(bad), C(required).
  returned: state=audit
  type: dict
manifest:
  description: C(pack) and C(verify) - the artifact's manifest.
  returned: state in (pack, verify)
  type: dict
sha256:
  description: C(pack) - the artifact's sha256.
  returned: state=pack
  type: str
dest:
  description: C(pack) - the artifact written.
  returned: state=pack
  type: str
"""

import json
import tarfile
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jetson_rt.fleet.plugins.module_utils.kernel_artifact import (
    MANIFEST,
    ArtifactError,
    audit_modules,
    build_manifest,
    collect_members,
    pack,
    sha256_file,
    verify,
)

REQUIRED = {
    "audit": ("modules_dir",),
    "pack": ("image", "config", "l4t_release", "kernel_release", "dest"),
    "verify": ("artifact", "sha256", "extract_to"),
}


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _audit(module: AnsibleModule) -> None:
    root = Path(module.params["modules_dir"])
    if not root.is_dir():
        module.fail_json(msg=f"{root}: no such directory")
    result = audit_modules(root, module.params["required_vermagic"])
    if result["count"] == 0:
        module.fail_json(msg=f"{root}: no kernel modules found", audit=result)
    if result["bad"]:
        lines = [f"{name}: {result['modules'][name] or 'no vermagic'}" for name in result["bad"]]
        module.fail_json(
            msg=f"{len(result['bad'])} of {result['count']} modules lack "
            f"'{result['required']}' in their vermagic and would fail to load on the RT "
            "kernel (Invalid module format); rebuild them against the RT kernel tree: "
            + "; ".join(lines),
            audit=result,
        )
    module.exit_json(changed=False, audit=result)


def _pack(module: AnsibleModule) -> None:
    params = module.params
    dest = Path(params["dest"])
    if dest.is_file():
        with tarfile.open(dest, "r:*") as tar:
            member = tar.extractfile(MANIFEST)
            manifest = json.loads(member.read()) if member else {}
        module.exit_json(changed=False, dest=str(dest), sha256=sha256_file(dest), manifest=manifest)
    members = collect_members(
        Path(params["image"]),
        Path(params["config"]),
        modules_root=_path(params["modules_dir"]),
        dtbs_root=_path(params["dtbs_dir"]),
        initrd=_path(params["initrd"]),
    )
    manifest = build_manifest(
        members,
        l4t_release=params["l4t_release"],
        kernel_release=params["kernel_release"],
        config=Path(params["config"]),
        inputs_sha256=params["inputs_sha256"],
        extra=params["extra"],
    )
    if module.check_mode:
        module.exit_json(changed=True, dest=str(dest), manifest=manifest)
    digest = pack(members, manifest, dest)
    module.exit_json(changed=True, dest=str(dest), sha256=digest, manifest=manifest)


def _verify(module: AnsibleModule) -> None:
    params = module.params
    manifest = verify(
        Path(params["artifact"]),
        params["sha256"],
        Path(params["extract_to"]),
        l4t_release=params["l4t_release"],
        require_realtime=params["require_realtime"],
    )
    module.exit_json(changed=False, manifest=manifest)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["audit", "pack", "verify"], "required": True},
            "modules_dir": {"type": "path"},
            "required_vermagic": {"type": "str", "default": "preempt_rt"},
            "image": {"type": "path"},
            "config": {"type": "path"},
            "dtbs_dir": {"type": "path"},
            "initrd": {"type": "path"},
            "l4t_release": {"type": "str"},
            "kernel_release": {"type": "str"},
            "inputs_sha256": {"type": "str", "default": ""},
            "extra": {"type": "dict", "default": {}},
            "dest": {"type": "path"},
            "artifact": {"type": "path"},
            "sha256": {"type": "str", "no_log": False},
            "extract_to": {"type": "path"},
            "require_realtime": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    state = module.params["state"]
    missing = [name for name in REQUIRED[state] if not module.params[name]]
    if missing:
        module.fail_json(msg=f"state={state} needs {', '.join(missing)}")
    try:
        {"audit": _audit, "pack": _pack, "verify": _verify}[state](module)
    except (ArtifactError, OSError, tarfile.TarError) as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
