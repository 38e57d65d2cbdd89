# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""Action jetson_rt.fleet.controller_file: a file or folder on the controller, made in
the task's own process (documented in plugins/modules/controller_file.py)."""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase
from ansible_collections.jetson_rt.fleet.plugins.module_utils.controller_file import (
    ControllerFileError,
    ensure,
)

ARGUMENT_SPEC: dict[str, Any] = {
    "path": {"type": "path", "required": True},
    "state": {"type": "str", "choices": ["file", "directory"], "default": "file"},
    "content": {"type": "str"},
    "mode": {"type": "raw"},
}


class ActionModule(ActionBase):  # type: ignore[misc]  # ansible-core ships no type hints
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: Any = None, task_vars: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        # (validation result, the arguments checked and converted)
        args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC,
            required_if=[("state", "file", ["content"])],
        )[1]
        try:
            result.update(
                ensure(
                    args["path"],
                    state=args["state"],
                    content=args["content"],
                    mode=args["mode"],
                    check_mode=bool(self._task.check_mode),
                    diff=bool(self._task.diff),
                )
            )
        except (ControllerFileError, OSError) as exc:
            result.update(failed=True, msg=str(exc))
        return result
