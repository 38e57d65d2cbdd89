# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""Kernel CPU lists (``0-3,5``) and CPU masks, parsed strictly.

Used on the controller (the ``jetson_rt.fleet.cpulist_*`` filters) and on the
targets (the ``extlinux`` module), so it stays pure Python 3.10 with no imports
beyond the standard library.

Grammar accepted by :func:`parse_cpulist` (a strict subset of what the kernel's
``bitmap_parselist()`` takes, so that whatever passes here means the same to the
kernel)::

    cpulist := ""                      the empty set (``/sys/devices/system/cpu/isolated``
                                       reads as an empty line when nothing is isolated)
             | part ("," part)*
    part    := N | N "-" M             N, M decimal digits, N <= M

Surrounding whitespace (a sysfs file's trailing newline) is ignored. Refused,
with the bad value named: open ranges (``4-``, ``-4``), reversed ranges
(``5-4``), empty parts (``1,,2``, ``1,``), signs, letters, inner spaces, the
kernel's stride syntax (``0-7:2/4``) and its ``N`` (last CPU) shorthand, whose
meaning depends on the machine. Repeated or overlapping CPUs (``4,4``,
``0-3,2-5``) are accepted, as the kernel accepts them: the result is a set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "CpuListError",
    "complement",
    "format_cpulist",
    "format_mask",
    "parse_cpulist",
]

_NUMBER = re.compile(r"[0-9]+\Z")
# Bits per comma-separated group in a kernel cpumask (bitmap_print_to_pagebuf, %*pb).
_MASK_CHUNK_BITS = 32
# Far above any Jetson (12 cores on AGX Orin) and any NR_CPUS in a distribution
# kernel; refuses typos such as 40000 before they reach a boot argument.
MAX_CPUS = 8192


class CpuListError(ValueError):
    """A CPU list or CPU number that cannot be used; the message names the value."""


def _cpu_number(text: str, whole: str) -> int:
    if not _NUMBER.match(text):
        if text == "":
            raise CpuListError(f"CPU list {whole!r}: empty CPU number")
        raise CpuListError(
            f"CPU list {whole!r}: {text!r} is not a CPU number (decimal digits only)"
        )
    cpu = int(text)
    if cpu >= MAX_CPUS:
        raise CpuListError(f"CPU list {whole!r}: CPU {cpu} is out of range (max {MAX_CPUS - 1})")
    return cpu


def _parse_string(text: str) -> set[int]:
    whole = text
    text = text.strip()
    if text == "":
        return set()
    cpus: set[int] = set()
    for part in text.split(","):
        if part == "":
            raise CpuListError(f"CPU list {whole!r}: empty part (stray comma)")
        if ":" in part or "/" in part:
            raise CpuListError(
                f"CPU list {whole!r}: {part!r} uses the stride syntax, which is not supported; "
                "list the CPUs or ranges"
            )
        if "-" in part:
            first_text, _dash, last_text = part.partition("-")
            if first_text == "" and _NUMBER.match(last_text):
                raise CpuListError(f"CPU list {whole!r}: {part!r} is negative")
            if first_text == "" or last_text == "":
                raise CpuListError(
                    f"CPU list {whole!r}: {part!r} is an open range; write both ends, e.g. 4-5"
                )
            first = _cpu_number(first_text, whole)
            last = _cpu_number(last_text, whole)
            if first > last:
                raise CpuListError(
                    f"CPU list {whole!r}: {part!r} is a reversed range; write {last}-{first}"
                )
            cpus.update(range(first, last + 1))
        else:
            cpus.add(_cpu_number(part, whole))
    return cpus


def parse_cpulist(value: object, ncpus: int | None = None) -> list[int]:
    """Return the sorted, de-duplicated CPUs of ``value``.

    ``value`` is a CPU list string, an int, or an iterable of ints and CPU list
    strings (``[0, "2-3"]``). With ``ncpus``, every CPU must be below it.
    """
    cpus: set[int] = set()
    if isinstance(value, str):
        cpus = _parse_string(value)
    elif isinstance(value, bool):
        raise CpuListError(f"CPU list {value!r}: a boolean is not a CPU number")
    elif isinstance(value, int):
        cpus = {_checked_int(value, value)}
    elif isinstance(value, Iterable) and not isinstance(value, (bytes, dict)):
        for item in value:
            if isinstance(item, str):
                cpus |= _parse_string(item)
            elif isinstance(item, int) and not isinstance(item, bool):
                cpus.add(_checked_int(item, value))
            else:
                raise CpuListError(
                    f"CPU list {value!r}: {item!r} is not a CPU number or a CPU list string"
                )
    else:
        raise CpuListError(
            f"CPU list {value!r}: expected a string such as '0-3,5' or a list of CPU numbers"
        )
    if ncpus is not None:
        _check_ncpus(ncpus)
        outside = sorted(cpu for cpu in cpus if cpu >= ncpus)
        if outside:
            raise CpuListError(
                f"CPU list {value!r}: CPU {format_cpulist(outside)} outside 0-{ncpus - 1} "
                f"(this machine has {ncpus} CPUs)"
            )
    return sorted(cpus)


def _checked_int(cpu: int, whole: object) -> int:
    if cpu < 0:
        raise CpuListError(f"CPU list {whole!r}: CPU {cpu} is negative")
    if cpu >= MAX_CPUS:
        raise CpuListError(f"CPU list {whole!r}: CPU {cpu} is out of range (max {MAX_CPUS - 1})")
    return cpu


def _check_ncpus(ncpus: object) -> int:
    if isinstance(ncpus, bool) or not isinstance(ncpus, int) or not 0 < ncpus <= MAX_CPUS:
        raise CpuListError(f"number of CPUs {ncpus!r}: expected an integer from 1 to {MAX_CPUS}")
    return ncpus


def format_cpulist(value: object) -> str:
    """Format CPUs as the kernel prints them (``%*pbl``): ``0-3,5``; runs of two are ``4-5``.

    The output is what ``/sys/devices/system/cpu/isolated`` and ``/proc/irq/*/
    smp_affinity_list`` read back (without the newline), so a string compare
    tells whether the kernel holds the intended set.
    """
    cpus = parse_cpulist(value)
    parts: list[str] = []
    index = 0
    while index < len(cpus):
        first = cpus[index]
        while index + 1 < len(cpus) and cpus[index + 1] == cpus[index] + 1:
            index += 1
        last = cpus[index]
        parts.append(str(first) if first == last else f"{first}-{last}")
        index += 1
    return ",".join(parts)


def complement(value: object, ncpus: int) -> list[int]:
    """CPUs in ``0..ncpus-1`` that are not in ``value`` (housekeeping from isolated)."""
    ncpus = _check_ncpus(ncpus)
    cpus = set(parse_cpulist(value, ncpus))
    return [cpu for cpu in range(ncpus) if cpu not in cpus]


def format_mask(value: object, ncpus: int | None = None) -> str:
    """Format CPUs as a kernel cpumask: lowercase hex, 32-bit groups joined by commas.

    This is what ``/sys/devices/virtual/workqueue/cpumask`` and
    ``/sys/bus/workqueue/devices/writeback/cpumask`` take. With ``ncpus`` the
    text is zero-padded exactly as the kernel prints the file back (``%*pb``:
    6 CPUs -> two hex digits, ``0f`` for CPUs 0-3), so it compares equal to a
    read of the file; without it the shortest form is given (``f``).
    """
    cpus = parse_cpulist(value, ncpus)
    bits = 0
    for cpu in cpus:
        bits |= 1 << cpu
    if ncpus is None:
        nbits = max(cpus[-1] + 1 if cpus else 1, 1)
        first_width = 0
    else:
        nbits = ncpus
        first_width = -1
    groups: list[int] = []
    remaining = bits
    for _group in range(0, nbits, _MASK_CHUNK_BITS):
        groups.append(remaining & 0xFFFFFFFF)
        remaining >>= _MASK_CHUNK_BITS
    groups.reverse()
    top_bits = nbits % _MASK_CHUNK_BITS or _MASK_CHUNK_BITS
    if first_width == -1:
        first_width = (top_bits + 3) // 4
    text = [f"{groups[0]:0{first_width}x}" if first_width else f"{groups[0]:x}"]
    text.extend(f"{group:08x}" for group in groups[1:])
    return ",".join(text)
