#!/usr/bin/python
# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""Ansible module jetson_rt.fleet.extlinux: edit extlinux.conf as L4TLauncher reads it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: extlinux
short_description: Edit a Jetson's /boot/extlinux/extlinux.conf as L4TLauncher reads it
version_added: "0.1.0"
description:
  - Reads and edits the boot menu of NVIDIA Jetson devices on JetPack 6 (L4T r36), where
    UEFI's L4TLauncher, not U-Boot, reads C(/boot/extlinux/extlinux.conf).
  - Parses the file exactly as L4TLauncher does (keys C(TIMEOUT), C(DEFAULT), C(MENU TITLE),
    C(LABEL), C(MENU LABEL), C(LINUX), C(INITRD), C(FDT), C(OVERLAYS), C(APPEND); C(#) starts a
    comment anywhere on a line; at most 10 entries; a C(DEFAULT) that names no C(LABEL) boots
    entry 0) and refuses, with the line number and without touching the file, anything
    L4TLauncher would read differently from what it seems to say (an C(APPEND) before any
    C(LABEL), a duplicate C(LABEL), a C(LABEL) without C(LINUX), a key given twice in one
    entry, more than 10 entries).
  - Edits keep every other byte as it was (comments, NVIDIA's commented C(# LABEL backup)
    template, indentation with tabs or spaces, CRLF line endings, unknown lines, and the
    order and spacing of untouched kernel arguments).
  - Kernel arguments are set in place and never duplicated (C(rcu-nocbs) and C(rcu_nocbs) are
    the same name, as for the kernel); C(${cbootargs}) is always kept.
  - Before the first change the original file is copied once to C(<path>.jetson-rt.orig) (never
    overwritten afterwards); the new file replaces the old one atomically.
author:
  - jetson-rt maintainers (!UNKNOWN)
options:
  path:
    description: The file to read and edit.
    type: path
    default: /boot/extlinux/extlinux.conf
  state:
    description:
      - C(present) creates or edits the entry O(label) and applies O(default) and O(timeout).
      - C(absent) removes the entry O(label) (applying O(default) first, so that the
        C(DEFAULT) entry can be replaced and removed in one task).
      - C(read) changes nothing and returns the parsed file.
    type: str
    choices: [present, absent, read]
    default: present
  label:
    description:
      - The entry (C(LABEL)) to create, edit or remove. Required for O(state=absent) and for
        every entry option (O(copy_from), O(linux), O(append), O(set_args) ...).
      - With O(state=read), the entry is also returned on its own as RV(entry).
    type: str
  copy_from:
    description:
      - When O(label) does not exist yet, create it as a copy of this entry (its lines as
        written), appended at the end of the file; the other entry options then apply to
        the copy.
      - Ignored when O(label) already exists, so the task stays idempotent; the copy is
        not refreshed when the source entry changes later.
    type: str
  linux:
    description:
      - The kernel image (C(LINUX)), e.g. C(/boot/Image.real-time).
      - Required to create O(label) when O(copy_from) is not given.
    type: str
  initrd:
    description: The initrd (C(INITRD)); an empty string removes the line.
    type: str
  fdt:
    description: The device tree (C(FDT)); an empty string removes the line.
    type: str
  overlays:
    description:
      - The device tree overlays (C(OVERLAYS), comma separated, as L4TLauncher splits them);
        an empty string removes the line.
    type: str
  menu_label:
    description: The menu text (C(MENU LABEL)); an empty string removes the line.
    type: str
  append:
    description:
      - Replaces the whole kernel command line (C(APPEND)) of the entry. Must contain
        C(${cbootargs}) and C(root=). Applied before O(set_args), O(remove_args) and O(isolation).
      - L4TLauncher deletes C(${cbootargs}) and appends only the platform's own arguments
        (on Orin, profiler pointers), so C(root=) must be in the APPEND itself. Every APPEND
        this module writes has one, else the task fails.
      - A new entry created without O(copy_from), and an entry without C(APPEND) that
        O(set_args) edits, get C(${cbootargs}) and the C(root=), C(rootfstype=), C(rw) and
        C(rootwait) arguments of the entry L4TLauncher boots now.
    type: str
  set_args:
    description:
      - Kernel arguments to set in the entry's C(APPEND), as name to value. A value of
        C(null) sets a bare flag (C(nosoftlockup)); numbers are written as they read
        (C(skew_tick=1)); a value with spaces is double-quoted.
      - An argument already present is replaced where it stands and any later copy of it is
        dropped; a new one is added at the end (before C(--)).
      - Values may not contain C(#) (L4TLauncher ends the line there) or double quotes.
    type: dict
  remove_args:
    description:
      - Kernel arguments to remove from the entry's C(APPEND). C(name) removes every
        occurrence; C(name=value) removes only that one (C(console=tty0)).
    type: list
    elements: str
  isolation:
    description:
      - Sets CPU isolation arguments in the entry's C(APPEND) -
        C(isolcpus=[flags,]<cpus> nohz_full=<cpus> rcu_nocbs=<cpus> irqaffinity=<housekeeping>).
      - CPU lists are written as the kernel prints them (C(4-5)), so they compare equal to
        C(/sys/devices/system/cpu/isolated).
      - May not be combined with the same names in O(set_args) or O(remove_args).
    type: dict
    suboptions:
      cpus:
        description:
          - The CPUs to isolate, as a CPU list string (C(4-5), C(4,5)) or a list of numbers.
          - An empty string or list removes C(isolcpus), C(nohz_full), C(rcu_nocbs) and
            C(irqaffinity).
        type: raw
        required: true
      flags:
        description: The C(isolcpus) flags, written before the CPU list.
        type: list
        elements: str
        choices: [domain, managed_irq, nohz]
        default: [managed_irq, domain]
      housekeeping:
        description:
          - The CPUs for C(irqaffinity), disjoint from O(isolation.cpus).
          - Defaults to the CPUs below O(isolation.ncpus) that are not isolated; without
            either, C(irqaffinity) is left as it is.
        type: raw
      ncpus:
        description:
          - The number of CPUs of the SoC (6 on Orin Nano); every CPU must be below it.
        type: int
      nohz_full:
        description: Set C(nohz_full=<cpus>); C(false) removes it.
        type: bool
        default: true
      rcu_nocbs:
        description: Set C(rcu_nocbs=<cpus>); C(false) removes it.
        type: bool
        default: true
      irqaffinity:
        description: Set C(irqaffinity=<housekeeping>); C(false) removes it.
        type: bool
        default: true
  default:
    description:
      - The entry to make C(DEFAULT). It must exist (after this task's own changes).
    type: str
  timeout:
    description: The menu C(TIMEOUT), in tenths of a second (C(30) is three seconds).
    type: int
  backup:
    description:
      - Also keep a timestamped copy of the file as it was before each change.
    type: bool
    default: false
  allow_signed:
    description:
      - With UEFI Secure Boot, L4TLauncher checks C(<path>.sig) and refuses to boot an edited
        file. By default the module refuses to change a file that has a C(.sig) next to it;
        C(true) changes it anyway (re-sign it before rebooting).
    type: bool
    default: false
notes:
  - Supports check mode and diff mode; in check mode nothing is written and no backup is made.
  - L4TLauncher falls back to another entry only when an entry fails to load; a kernel that
    hangs or panics is not retried. Make a copy of a known-good entry (O(copy_from)), edit the
    copy, and make it C(DEFAULT) only as a separate, revertible step.
  - Changes take effect at the next boot; see RV(reboot_required).
  - A file L4TLauncher would misread, or an edit that would make one, fails the task with
    C(msg) and, where a line is to blame, C(line) (its number); the file is left as it was.
seealso:
  - name: L4TLauncher (edk2-nvidia)
    description: The UEFI application that reads extlinux.conf on JetPack 5 and 6.
    link: https://github.com/NVIDIA/edk2-nvidia/tree/main/Silicon/NVIDIA/Application/L4TLauncher
"""

EXAMPLES = r"""
- name: Boot | isolate CPUs 4-5 in a copy of the stock entry
  jetson_rt.fleet.extlinux:
    label: rt
    copy_from: primary
    menu_label: real-time tuned kernel
    isolation:
      cpus: "4-5"
      ncpus: 6
    set_args:
      nosoftlockup: null
      skew_tick: 1
      transparent_hugepage: never
  register: jetson_rt_extlinux

- name: Boot | make it the default entry
  jetson_rt.fleet.extlinux:
    default: rt

- name: Boot | add NVIDIA's real-time kernel as an entry, arguments copied from primary
  jetson_rt.fleet.extlinux:
    label: real-time
    copy_from: primary
    linux: /boot/Image.real-time
    menu_label: real-time kernel

- name: Boot | drop the console on the display and a stale argument
  jetson_rt.fleet.extlinux:
    label: primary
    remove_args:
      - console=tty0
      - quiet

- name: Boot | go back to the stock entry and remove the tuned one
  jetson_rt.fleet.extlinux:
    label: rt
    state: absent
    default: primary

- name: Boot | read the boot menu
  jetson_rt.fleet.extlinux:
    state: read
  register: jetson_rt_boot
  check_mode: false

- name: Boot | show what boots next
  ansible.builtin.debug:
    msg: >-
      {{ jetson_rt_boot.extlinux.boot_label }}:
      {{ jetson_rt_boot.extlinux.entries[jetson_rt_boot.extlinux.boot_index].append }}
"""

RETURN = r"""
extlinux:
  description:
    - The file as L4TLauncher reads it, after the change (as it would be, in check mode).
  returned: always
  type: dict
  contains:
    timeout:
      description: C(TIMEOUT) in tenths of a second, as L4TLauncher reads it; null when absent.
      type: int
      sample: 30
    default:
      description: The C(DEFAULT) value; null when absent.
      type: str
      sample: primary
    default_found:
      description: Whether C(DEFAULT) names an entry (if not, L4TLauncher boots entry 0).
      type: bool
    menu_title:
      description: The C(MENU TITLE) value.
      type: str
    boot_index:
      description: Index of the entry L4TLauncher boots without a key press.
      type: int
      sample: 0
    boot_label:
      description: Label of that entry.
      type: str
      sample: primary
    labels:
      description: The entry labels, in menu order.
      type: list
      elements: str
    entries:
      description: The entries in menu order (see RV(entry) for the keys of each).
      type: list
      elements: dict
    line_ending:
      description: C(LF), C(CRLF), C(mixed) or C(none).
      type: str
    ignored_lines:
      description: Lines L4TLauncher ignores that are neither blank nor comments (C(line), C(text)).
      type: list
      elements: dict
entry:
  description: The entry O(label) after the change; null when it does not exist (or no O(label)).
  returned: always
  type: dict
  contains:
    index:
      description: Position in the menu (0-based).
      type: int
    label:
      description: The C(LABEL).
      type: str
    line:
      description: Line number of the C(LABEL) line.
      type: int
    menu_label:
      description: C(MENU LABEL), or null.
      type: str
    linux:
      description: C(LINUX).
      type: str
      sample: /boot/Image
    initrd:
      description: C(INITRD), or null.
      type: str
    fdt:
      description: C(FDT), or null.
      type: str
    overlays:
      description: C(OVERLAYS), or null.
      type: str
    append:
      description: C(APPEND) as written, or null.
      type: str
    args:
      description:
        - Kernel arguments by name; null for a bare flag; the last wins for a repeated name.
      type: dict
      sample: {"${cbootargs}": null, "root": "/dev/mmcblk0p1", "isolcpus": "managed_irq,domain,4-5"}
    args_list:
      description: Kernel arguments as written, in order (before C(--)).
      type: list
      elements: str
    init_args:
      description: Arguments after C(--) (passed to init).
      type: list
      elements: str
    isolation:
      description:
        - C(isolcpus), C(nohz_full), C(rcu_nocbs), C(irqaffinity) as sorted lists of CPU
          numbers (null when absent or not a CPU list) and C(isolcpus_flags).
      type: dict
      sample: {"isolcpus": [4, 5], "isolcpus_flags": ["managed_irq", "domain"], "nohz_full": [4, 5],
               "rcu_nocbs": [4, 5], "irqaffinity": [0, 1, 2, 3]}
reboot_required:
  description:
    - Whether the entry L4TLauncher boots by default changed - another entry, or its
      C(LINUX), C(INITRD), C(FDT), C(OVERLAYS) or C(APPEND). Edits of other entries do not count.
  returned: always
  type: bool
original_backup:
  description: The copy of the file as it was before this module first changed it.
  returned: when that copy exists
  type: str
  sample: /boot/extlinux/extlinux.conf.jetson-rt.orig
backup_file:
  description: The timestamped copy made with O(backup=true).
  returned: when changed and O(backup=true), not in check mode
  type: str
file:
  description: The file that was read (O(path)).
  returned: always
  type: str
  sample: /boot/extlinux/extlinux.conf
signed:
  description: Whether C(<path>.sig) exists (UEFI Secure Boot checks it).
  returned: always
  type: bool
"""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jetson_rt.fleet.plugins.module_utils.extlinux import (
    DEFAULT_PATH,
    ExtlinuxConf,
    ExtlinuxError,
    isolation_args,
)

ORIGINAL_SUFFIX = ".jetson-rt.orig"
_FIELDS = (
    ("menu_label", "MENU LABEL"),
    ("linux", "LINUX"),
    ("fdt", "FDT"),
    ("initrd", "INITRD"),
    ("overlays", "OVERLAYS"),
)
_ENTRY_OPTIONS = (
    "copy_from",
    "linux",
    "initrd",
    "fdt",
    "overlays",
    "menu_label",
    "append",
    "set_args",
    "remove_args",
    "isolation",
)

ARGUMENT_SPEC: dict[str, Any] = {
    "path": {"type": "path", "default": DEFAULT_PATH},
    "state": {"type": "str", "choices": ["present", "absent", "read"], "default": "present"},
    "label": {"type": "str"},
    "copy_from": {"type": "str"},
    "linux": {"type": "str"},
    "initrd": {"type": "str"},
    "fdt": {"type": "str"},
    "overlays": {"type": "str"},
    "menu_label": {"type": "str"},
    "append": {"type": "str"},
    "set_args": {"type": "dict"},
    "remove_args": {"type": "list", "elements": "str"},
    "isolation": {
        "type": "dict",
        "options": {
            "cpus": {"type": "raw", "required": True},
            "flags": {
                "type": "list",
                "elements": "str",
                "choices": ["domain", "managed_irq", "nohz"],
                "default": ["managed_irq", "domain"],
            },
            "housekeeping": {"type": "raw"},
            "ncpus": {"type": "int"},
            "nohz_full": {"type": "bool", "default": True},
            "rcu_nocbs": {"type": "bool", "default": True},
            "irqaffinity": {"type": "bool", "default": True},
        },
    },
    "default": {"type": "str"},
    "timeout": {"type": "int"},
    "backup": {"type": "bool", "default": False},
    "allow_signed": {"type": "bool", "default": False},
}


def _set_args(raw: dict[str, Any] | None) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for key, value in (raw or {}).items():
        if isinstance(value, bool):
            raise ExtlinuxError(
                f"set_args: {key}={value!r} is a boolean; use null for a bare flag, "
                "or a quoted string such as '1' or 'on'"
            )
        if value is not None and not isinstance(value, (str, int, float)):
            raise ExtlinuxError(f"set_args: {key} has a {type(value).__name__}; give a string")
        pairs.append((str(key), None if value is None else str(value)))
    return pairs


def _arg_edits(params: dict[str, Any]) -> tuple[list[tuple[str, str | None]], list[str]]:
    to_set = _set_args(params["set_args"])
    to_remove = list(params["remove_args"] or [])
    isolation = params["isolation"]
    if isolation:
        iso_set, iso_remove = isolation_args(
            isolation["cpus"],
            flags=isolation["flags"],
            housekeeping=isolation["housekeeping"],
            ncpus=isolation["ncpus"],
            nohz_full=isolation["nohz_full"],
            rcu_nocbs=isolation["rcu_nocbs"],
            irqaffinity=isolation["irqaffinity"],
        )
        names = {key.replace("-", "_") for key, _value in to_set}
        names |= {item.partition("=")[0].replace("-", "_") for item in to_remove}
        for key in [k for k, _value in iso_set] + iso_remove:
            if key in names:
                raise ExtlinuxError(f"{key} is given both in isolation and in set_args/remove_args")
        to_set = iso_set + to_set
        to_remove = iso_remove + to_remove
    return to_set, to_remove


def _ensure_entry(conf: ExtlinuxConf, label: str, params: dict[str, Any]) -> None:
    if label in conf.labels:
        return
    if params["copy_from"] is not None:
        conf.copy_entry(params["copy_from"], label)
    elif params["linux"]:
        conf.add_entry(label, params["linux"], append=params["append"] or None)
    else:
        raise ExtlinuxError(
            f"entry {label!r} does not exist; give copy_from (an entry to copy) or "
            f"linux (a kernel) to create it (entries: {', '.join(conf.labels)})"
        )


def _apply_present(conf: ExtlinuxConf, params: dict[str, Any]) -> None:
    label = params["label"]
    if label is None:
        given = [name for name in _ENTRY_OPTIONS if params[name] is not None]
        if given:
            raise ExtlinuxError(f"label is required with {', '.join(given)}")
    else:
        _ensure_entry(conf, label, params)
        for option, key in _FIELDS:
            if params[option] is not None:
                conf.set_value(label, key, params[option])
        if params["append"] is not None:
            conf.set_value(label, "APPEND", params["append"])
        to_set, to_remove = _arg_edits(params)
        if to_set or to_remove:
            conf.edit_args(label, to_set, to_remove)
    if params["default"] is not None:
        conf.set_default(params["default"])
    if params["timeout"] is not None:
        conf.set_timeout(params["timeout"])


def _apply_absent(conf: ExtlinuxConf, params: dict[str, Any]) -> None:
    given = [name for name in _ENTRY_OPTIONS if params[name] is not None]
    if given:
        raise ExtlinuxError(f"state=absent takes no entry options ({', '.join(given)})")
    if params["default"] is not None:
        conf.set_default(params["default"])
    if params["label"] in conf.labels:
        conf.remove_entry(params["label"])
    if params["timeout"] is not None:
        conf.set_timeout(params["timeout"])


def _write(module: AnsibleModule, path: Path, data: bytes) -> None:
    handle, temp = tempfile.mkstemp(prefix=".extlinux.", dir=path.resolve().parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        # keeps the mode, owner and SELinux context of the file it replaces
        module.atomic_move(temp, str(path))
    finally:
        Path(temp).unlink(missing_ok=True)


def _load(module: AnsibleModule, path: Path) -> tuple[bytes, ExtlinuxConf]:
    if not path.is_file():
        module.fail_json(msg=f"{path}: no such file")
    before = path.read_bytes()
    try:
        return before, ExtlinuxConf.from_bytes(before)
    except ExtlinuxError as exc:
        module.fail_json(msg=f"{path}: {exc}", line=exc.line)
        raise  # fail_json does not return


def _edit(module: AnsibleModule, conf: ExtlinuxConf, result: dict[str, Any]) -> None:
    params = module.params
    try:
        if params["state"] == "present":
            _apply_present(conf, params)
        elif params["state"] == "absent":
            _apply_absent(conf, params)
    except ExtlinuxError as exc:
        module.fail_json(msg=f"{result['file']}: {exc}", line=exc.line, **result)


def _commit(
    module: AnsibleModule, path: Path, before: bytes, after: bytes, result: dict[str, Any]
) -> None:
    """Write the change (unless in check mode), with the diff and the backups."""
    if result["signed"] and not module.params["allow_signed"]:
        module.fail_json(
            msg=f"{path}: {path}.sig exists: with UEFI Secure Boot an edited file fails its "
            "signature check and the device does not boot; re-sign it, or set allow_signed=true",
            **result,
        )
    if module._diff:
        result["diff"] = {
            "before_header": str(path),
            "after_header": str(path),
            "before": before.decode("latin-1"),
            "after": after.decode("latin-1"),
        }
    if module.check_mode:
        return
    original = Path(str(path) + ORIGINAL_SUFFIX)
    if not original.exists():
        shutil.copy2(path, original)
        result["original_backup"] = str(original)
    if module.params["backup"]:
        result["backup_file"] = module.backup_local(str(path))
    _write(module, path, after)


def run_module(module: AnsibleModule) -> None:
    params = module.params
    if params["state"] == "absent" and not params["label"]:
        module.fail_json(msg="state=absent needs label (the entry to remove)")
    path = Path(params["path"])
    before, conf = _load(module, path)
    original = Path(str(path) + ORIGINAL_SUFFIX)
    result: dict[str, Any] = {
        "changed": False,
        "file": str(path),
        "signed": Path(str(path) + ".sig").exists(),
    }
    if original.exists():
        result["original_backup"] = str(original)
    boot_before = conf.boot_entry_signature()
    _edit(module, conf, result)
    after = conf.to_bytes()
    changed = after != before
    result.update(
        changed=changed,
        extlinux=conf.facts(),
        entry=conf.entry(params["label"]) if params["label"] else None,
        reboot_required=changed and conf.boot_entry_signature() != boot_before,
    )
    if changed:
        _commit(module, path, before, after, result)
    module.exit_json(**result)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module)


if __name__ == "__main__":
    main()
