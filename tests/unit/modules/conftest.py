"""Shared test plumbing for the jetson_rt.fleet modules and filters.

Puts ``collections/`` on ``sys.path`` so ``ansible_collections.jetson_rt.fleet``
imports as it does inside Ansible, and runs modules in-process through the real
``AnsibleModule`` (argument spec, check mode, diff) with ``exit_json`` and
``fail_json`` turned into exceptions (the linux-system-roles unit test idiom).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

COLLECTIONS = Path(__file__).resolve().parents[3] / "collections"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible.module_utils import basic  # noqa: E402  (after the sys.path set-up above)


class AnsibleExitJson(Exception):  # noqa: N818  (named after the call it stands for)
    """exit_json was called; ``result`` holds its arguments."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result)
        self.result = result


class AnsibleFailJson(Exception):  # noqa: N818
    """fail_json was called; ``result`` holds its arguments."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result.get("msg"))
        self.result = result


def _exit_json(_module: basic.AnsibleModule, **kwargs: Any) -> None:
    kwargs.setdefault("changed", False)
    raise AnsibleExitJson(kwargs)


def _fail_json(_module: basic.AnsibleModule, **kwargs: Any) -> None:
    kwargs["failed"] = True
    raise AnsibleFailJson(kwargs)


@pytest.fixture
def fixture_text() -> Callable[[str], bytes]:
    """The bytes of a fixture file under fixtures/extlinux/."""

    def read(name: str) -> bytes:
        return (FIXTURES / "extlinux" / name).read_bytes()

    return read


@pytest.fixture
def run_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., dict[str, Any]]]:
    """Run a module's main() with args; return exit_json's result or raise AnsibleFailJson."""
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)

    def run(
        main: Callable[[], None], check_mode: bool = False, diff: bool = False, **args: Any
    ) -> dict[str, Any]:
        args = {**args, "_ansible_check_mode": check_mode, "_ansible_diff": diff}
        try:
            from ansible.module_utils.testing import patch_module_args
        except ImportError:
            payload = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
            monkeypatch.setattr(basic, "_ANSIBLE_ARGS", payload)
            context = None
        else:
            context = patch_module_args(args)
            context.__enter__()
        try:
            main()
        except AnsibleExitJson as done:
            return done.result
        finally:
            if context is not None:
                context.__exit__(None, None, None)
        raise AssertionError("the module returned without exit_json or fail_json")

    yield run


@pytest.fixture
def module_failure(run_module: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Run a module that must fail; return fail_json's arguments."""

    def run(main: Callable[[], None], **args: Any) -> dict[str, Any]:
        try:
            result = run_module(main, **args)
        except AnsibleFailJson as failure:
            return failure.result
        raise AssertionError(f"the module did not fail: {result}")

    return run
