# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""Filters for kernel CPU lists: jetson_rt.fleet.cpulist_parse, _format, _complement, _mask."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.jetson_rt.fleet.plugins.module_utils.cpulist import (
    CpuListError,
    complement,
    format_cpulist,
    format_mask,
    parse_cpulist,
)


def _ncpus(value: Any, name: str) -> int | None:
    # Jinja hands over "6" as easily as 6 (facts, extra vars): accept both.
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise AnsibleFilterError(f"{name}: number of CPUs {value!r} is not an integer")


def cpulist_parse(value: Any, ncpus: int | None = None) -> list[int]:
    """``'0-3,5' | cpulist_parse`` -> ``[0, 1, 2, 3, 5]``; ``ncpus`` bounds the CPUs."""
    try:
        return parse_cpulist(value, _ncpus(ncpus, "cpulist_parse"))
    except CpuListError as exc:
        raise AnsibleFilterError(f"cpulist_parse: {exc}") from exc


def cpulist_format(value: Any) -> str:
    """``[5, 0, 1, 2, 3] | cpulist_format`` -> ``'0-3,5'`` (as the kernel prints it)."""
    try:
        return format_cpulist(value)
    except CpuListError as exc:
        raise AnsibleFilterError(f"cpulist_format: {exc}") from exc


def cpulist_complement(value: Any, ncpus: int) -> list[int]:
    """``'4-5' | cpulist_complement(6)`` -> ``[0, 1, 2, 3]``."""
    try:
        count = _ncpus(ncpus, "cpulist_complement")
        if count is None:
            raise AnsibleFilterError("cpulist_complement: give the number of CPUs, e.g. (6)")
        return complement(value, count)
    except CpuListError as exc:
        raise AnsibleFilterError(f"cpulist_complement: {exc}") from exc


def cpulist_mask(value: Any, ncpus: int | None = None) -> str:
    """``'0-3' | cpulist_mask`` -> ``'f'``; with ``ncpus=6`` -> ``'0f'`` (as sysfs reads back)."""
    try:
        return format_mask(value, _ncpus(ncpus, "cpulist_mask"))
    except CpuListError as exc:
        raise AnsibleFilterError(f"cpulist_mask: {exc}") from exc


class FilterModule:
    """Kernel CPU list filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "cpulist_parse": cpulist_parse,
            "cpulist_format": cpulist_format,
            "cpulist_complement": cpulist_complement,
            "cpulist_mask": cpulist_mask,
        }
