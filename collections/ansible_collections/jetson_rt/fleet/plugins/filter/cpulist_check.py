# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""The roles' CPU list check: jetson_rt.fleet.cpulist_problem.

The roles validate their CPU list variables with the same parser the cpulist_*
filters and the extlinux module use (module_utils/cpulist.py), so that a value is
refused before the first change for exactly the reason it would fail later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.jetson_rt.fleet.plugins.module_utils.cpulist import (
    CpuListError,
    parse_cpulist,
)


def cpulist_problem(value: Any, ncpus: Any = None) -> str:
    """``'4-' | cpulist_problem(6)`` -> why the CPU list cannot be used, ``''`` when it can.

    ``ncpus`` (an int, or digits as facts and extra vars give them) bounds the CPUs;
    ``None`` checks the syntax only. A bad ``ncpus`` is a problem too, never an exception.
    """
    count: int | None = None
    if ncpus is not None:
        if isinstance(ncpus, bool) or not str(ncpus).strip().isdigit():
            return f"number of CPUs {ncpus!r} is not an integer"
        count = int(str(ncpus).strip())
    try:
        parse_cpulist(value, count)
    except CpuListError as exc:
        return str(exc)
    return ""


class FilterModule:
    """The roles' CPU list check."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"cpulist_problem": cpulist_problem}
