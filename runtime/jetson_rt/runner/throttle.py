"""RT throttling: the kernel's cap on SCHED_FIFO time, and the warning when it is on.

With ``kernel.sched_rt_runtime_us`` at its stock 950000 (of a 1000000 us
period) the kernel stops every SCHED_FIFO thread of a CPU for the rest of the
period once they have run 950 ms of it. The runner's loop is SCHED_FIFO
(``rt.priority`` > 0) and, with ``period_ms: 0``, back to back: it is then
frozen for about 50 ms once a second and the SLA fails with no other sign.
The ``rt_tuning`` role turns throttling off (``-1``); ``rt_validate``'s audit
checks it with the words below, which the warning repeats.
"""

from __future__ import annotations

import os
from pathlib import Path

from jetson_rt import platform

RUNTIME_FILE = "proc/sys/kernel/sched_rt_runtime_us"
PERIOD_FILE = "proc/sys/kernel/sched_rt_period_us"
# The audit's check title and fix (module_utils/rt_audit.py, check_sched_rt).
AUDIT_TITLE = "RT throttling off (kernel.sched_rt_runtime_us)"
AUDIT_FIX = "sysctl kernel.sched_rt_runtime_us=-1 in /etc/sysctl.d (rt_tuning_sysctls)."

# sched(7) policies as /proc/<pid>/task/<tid>/stat reports them (field 41).
_SCHED_FIFO = 1
_SCHED_RR = 2


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def rt_runtime_us(root: str = platform.ROOT) -> int | None:
    """``kernel.sched_rt_runtime_us`` (-1: throttling off), ``None`` if unreadable."""
    return _read_int(Path(root) / RUNTIME_FILE)


def throttling_warning(priority: int, root: str = platform.ROOT) -> str | None:
    """The warning for a SCHED_FIFO loop at ``priority`` on this host, if throttling is on.

    ``None`` when the loop is not SCHED_FIFO (priority 0), when throttling is
    off, or when the setting cannot be read.
    """
    if priority <= 0:
        return None
    runtime = rt_runtime_us(root)
    if runtime is None or runtime < 0:
        return None
    period = _read_int(Path(root) / PERIOD_FILE) or 1_000_000
    stall_ms = max(period - runtime, 0) / 1000
    return (
        f"rt.priority: {priority} runs the loop under SCHED_FIFO, but RT throttling is on "
        f"(kernel.sched_rt_runtime_us = {runtime} of a {period} us period): the kernel "
        f"stops SCHED_FIFO threads for up to {stall_ms:g} ms each period, which fails "
        f"deadlines with no other sign. {AUDIT_TITLE} is what rt_validate audits; fix: "
        f"{AUDIT_FIX} The rt_tuning role sets it."
    )


def fifo_threads(proc_self: Path = Path("/proc/self")) -> list[int]:
    """Thread ids of this process running SCHED_FIFO or SCHED_RR."""
    found: list[int] = []
    try:
        tasks = list((proc_self / "task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            stat = (task / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        # Field 2 (comm) may hold spaces and parentheses: split after its last ')'.
        fields = stat.rsplit(")", 1)[-1].split()
        # fields[0] is field 3 (state); policy is field 41.
        if len(fields) > 38 and fields[38] in (str(_SCHED_FIFO), str(_SCHED_RR)):
            found.append(int(task.name))
    return found


def running_throttled(root: str = platform.ROOT, proc_self: Path | None = None) -> str | None:
    """Health's check: a thread of this process is SCHED_FIFO while throttling is on."""
    threads = fifo_threads(proc_self or Path(f"/proc/{os.getpid()}"))
    if not threads:
        return None
    runtime = rt_runtime_us(root)
    if runtime is None or runtime < 0:
        return None
    return (
        f"RT throttling is on (kernel.sched_rt_runtime_us = {runtime}) while the loop runs "
        f"SCHED_FIFO: expect stalls once a second; fix: {AUDIT_FIX} The rt_tuning role sets it."
    )


def health_warnings(root: str = platform.ROOT) -> dict[str, str]:
    """:func:`running_throttled` keyed as health reports it (empty when all is well)."""
    warning = running_throttled(root)
    return {"rt_throttling": warning} if warning else {}
