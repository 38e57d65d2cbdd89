#!/usr/bin/python
# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""Documentation of the action jetson_rt.fleet.controller_file (plugins/action/)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: controller_file
short_description: A file or folder on the controller, written by the task's own process
version_added: "0.1.0"
description:
  - Makes a folder, or a file holding O(content), on the machine that runs
    C(ansible-playbook), in the process that runs the task. No module process is started,
    where M(ansible.builtin.copy) or M(ansible.builtin.file) delegated to C(localhost)
    start one or two Python processes per host and task (a few tenths of a CPU-second each).
  - For records that a play writes on the controller for every host on every pass (the
    validation run's C(run.json), C(host.json), C(audit.json) and their folders).
  - Files are replaced atomically (a temporary file in the same folder, then a rename) and
    only when their content or mode differs; their folder must exist.
  - The target host is never contacted, so the task works for a host that is unreachable.
author:
  - jetson-rt maintainers (!UNKNOWN)
options:
  path:
    description: Absolute path on the controller.
    type: path
    required: true
  state:
    description:
      - C(file) writes O(content) to O(path).
      - C(directory) creates O(path) and its missing parents.
    type: str
    choices: [file, directory]
    default: file
  content:
    description: The file's text (UTF-8). Required with O(state=file).
    type: str
  mode:
    description:
      - Permissions, octal as a string (C("0644")). Default C("0644") for a file,
        C("0755") for a folder.
    type: raw
attributes:
  check_mode:
    support: full
    description: Says what would change and changes nothing.
  diff_mode:
    support: full
    description: The file's text before and after.
  platform:
    support: full
    platforms: posix
    description: Runs on the controller only.
notes:
  - An action plugin; this file only documents it.
"""

EXAMPLES = r"""
- name: Run | the run's folder
  jetson_rt.fleet.controller_file:
    path: "{{ rt_validate_run_dir }}/hosts"
    state: directory
    mode: "0755"

- name: Result | host.json
  jetson_rt.fleet.controller_file:
    path: "{{ rt_validate_run_dir }}/hosts/{{ inventory_hostname }}/host.json"
    content: "{{ __host | to_nice_json }}\n"
    mode: "0644"
"""

RETURN = r"""
path:
  description: The path made or checked.
  returned: always
  type: str
  sample: /srv/validation/20261126T080000Z-quick/hosts/orin-nano-01/host.json
state:
  description: C(file) or C(directory).
  returned: always
  type: str
  sample: file
"""
