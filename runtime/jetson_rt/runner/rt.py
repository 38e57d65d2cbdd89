"""Real-time process settings (guide sections 2.2, 9.2 and 17.7), applied after warm-up.

``mlockall(MCL_CURRENT | MCL_FUTURE)`` through ctypes, ``SCHED_FIFO`` on the
calling thread and its CPU affinity. Each step that the host does not permit
(no ``CAP_SYS_NICE``/``LimitRTPRIO``, a low ``LimitMEMLOCK``, a CPU that is
offline) is recorded with the reason and what to change, logged as a warning and
shown in the status and stats file; the runner goes on without it.

``sched_setscheduler(0, ...)`` and ``sched_setaffinity(0, ...)`` act on the
calling thread on Linux: threads started before this call (stats, health,
watchdog, metrics, the result consumers, the capture threads, GStreamer's and
Zenoh's own threads) keep the normal policy, as they should.

When the loop is pinned, every other thread of the process is moved to the CPUs
the process may use minus the loop's (``other_threads`` in the stats): a consumer
woken by a result, Zenoh's runtime or a GStreamer streaming thread then never
runs on the loop's CPU, does not evict its caches and does not queue behind it.
On a Jetson with ``isolcpus=`` the other threads are there already (the
isolated CPUs are outside the default mask); with an explicit ``rt.cpus`` this
is what keeps them apart. Threads those threads start later inherit their mask.
Threads the backends started while they loaded (an ONNX Runtime intra-op pool
computes the loop's own inferences; CUDA's helper threads) are left where they
are. If no CPU is left (a single CPU, or ``rt.cpus`` naming every allowed one),
the other threads stay where they are and the status says so. :func:`restore_threads`
gives the moved threads their masks back when the runner stops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import sys
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jetson_rt.log import logger
from jetson_rt.runner.config import RtConfig

# <sys/mman.h> on Linux (every architecture JetPack ships).
MCL_CURRENT = 1
MCL_FUTURE = 2


@dataclass
class RtStep:
    """One RT setting: requested, applied, and if not, why."""

    requested: bool
    applied: bool = False
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class RtStatus:
    mlockall: RtStep = field(default_factory=lambda: RtStep(False))
    sched_fifo: RtStep = field(default_factory=lambda: RtStep(False))
    affinity: RtStep = field(default_factory=lambda: RtStep(False))
    others: RtStep = field(default_factory=lambda: RtStep(False))
    priority: int = 0
    cpus: list[int] = field(default_factory=list)
    other_cpus: list[int] = field(default_factory=list)
    # Native thread id -> the CPU mask it had before it was moved off the loop's CPUs.
    moved: dict[int, set[int]] = field(default_factory=dict)
    switch_interval_ms: float = 0.0

    @property
    def degraded(self) -> bool:
        steps = (self.mlockall, self.sched_fifo, self.affinity)
        return any(step.requested and not step.applied for step in steps)

    def to_dict(self) -> dict[str, object]:
        return {
            "degraded": self.degraded,
            "mlockall": self.mlockall.to_dict(),
            "sched_fifo": {**self.sched_fifo.to_dict(), "priority": self.priority},
            "affinity": {**self.affinity.to_dict(), "cpus": list(self.cpus)},
            "other_threads": {**self.others.to_dict(), "cpus": list(self.other_cpus)},
            "gil_switch_interval_ms": self.switch_interval_ms,
        }

    def short(self) -> str:
        """``mlock=ok fifo=80 cpus=4,5`` or ``... fifo=DENIED``: for STATUS= and the summary."""

        def state(step: RtStep, ok: str) -> str:
            if not step.requested:
                return "off"
            return ok if step.applied else "DENIED"

        cpus = ",".join(str(cpu) for cpu in self.cpus) or "all"
        return (
            f"mlock={state(self.mlockall, 'ok')} "
            f"fifo={state(self.sched_fifo, str(self.priority))} "
            f"cpus={state(self.affinity, cpus)}"
        )


def _libc() -> ctypes.CDLL:
    name = ctypes.util.find_library("c") or "libc.so.6"
    return ctypes.CDLL(name, use_errno=True)


def lock_memory() -> RtStep:
    step = RtStep(True)
    try:
        libc = _libc()
    except OSError as exc:
        step.detail = f"libc not loadable: {exc}"
        return step
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) == 0:
        step.applied = True
        step.detail = "MCL_CURRENT|MCL_FUTURE"
        return step
    code = ctypes.get_errno()
    hint = (
        "raise the memlock limit (LimitMEMLOCK=infinity in the unit, or memlock in limits.d)"
        if code in (errno.ENOMEM, errno.EPERM, errno.EAGAIN)
        else "see mlockall(2)"
    )
    step.detail = f"mlockall failed: {os.strerror(code)}; {hint}"
    return step


def set_fifo(priority: int) -> RtStep:
    step = RtStep(True)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        step.detail = (
            f"SCHED_FIFO {priority} not permitted; grant LimitRTPRIO={priority} "
            "(or rtprio in limits.d) or CAP_SYS_NICE"
        )
    except OSError as exc:
        step.detail = f"SCHED_FIFO {priority} failed: {exc.strerror}"
    else:
        step.applied = True
        step.detail = f"SCHED_FIFO {priority}"
    return step


def set_affinity(cpus: Sequence[int]) -> RtStep:
    step = RtStep(True)
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:
        step.detail = (
            f"affinity to CPUs {list(cpus)} failed: {exc.strerror}; "
            "list CPUs that are online and allowed to this service (AllowedCPUs=)"
        )
    else:
        step.applied = True
        step.detail = "pinned"
    return step


def thread_ids() -> set[int]:
    """The native ids of this process's threads."""
    return {int(entry.name) for entry in Path("/proc/self/task").iterdir()}


def move_other_threads(
    loop_cpus: Sequence[int], allowed: set[int], leave: Collection[int] = ()
) -> RtStatus:
    """Pin this process's threads but the caller and ``leave`` to ``allowed - loop_cpus``.

    Returns a status carrying only ``others``, ``other_cpus`` and ``moved``.
    """
    status = RtStatus()
    status.others = RtStep(True)
    others = sorted(set(allowed) - set(loop_cpus))
    if not others:
        status.others.detail = (
            f"no CPU left for the other threads (allowed {sorted(allowed)}); "
            "they share the loop's CPUs"
        )
        return status
    status.other_cpus = others
    me = threading.get_native_id()
    failed: list[str] = []
    for tid in sorted(thread_ids()):
        if tid == me or tid in leave:
            continue
        try:
            before = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, others)
        except ProcessLookupError:
            continue  # it ended meanwhile
        except OSError as exc:
            failed.append(f"{tid}: {exc.strerror}")
            continue
        status.moved[tid] = before
    if failed:
        status.others.detail = f"{len(failed)} thread(s) not moved ({'; '.join(failed[:3])})"
    else:
        status.others.applied = True
        status.others.detail = f"{len(status.moved)} thread(s) moved"
    return status


def restore_threads(moved: dict[int, set[int]]) -> None:
    """Give the threads :func:`move_other_threads` moved their masks back (those still alive)."""
    for tid, mask in moved.items():
        try:
            os.sched_setaffinity(tid, mask)
        except OSError:
            continue  # it ended, or the mask is gone (CPU offline)
    moved.clear()


def apply_rt(
    config: RtConfig,
    isolated_cpus: Callable[[], list[int]],
    leave: Collection[int] = (),
) -> RtStatus:
    """mlockall, SCHED_FIFO and affinity, in that order; never raises for a denied step."""
    status = RtStatus()
    sys.setswitchinterval(config.switch_interval_ms / 1e3)
    status.switch_interval_ms = round(sys.getswitchinterval() * 1e3, 6)
    if config.mlockall:
        status.mlockall = lock_memory()
    if config.priority > 0:
        status.priority = config.priority
        status.sched_fifo = set_fifo(config.priority)
    allowed = os.sched_getaffinity(0)
    if config.cpus is None:
        cpus = isolated_cpus()
        if cpus:
            status.cpus = cpus
            status.affinity = set_affinity(cpus)
        else:
            status.affinity = RtStep(
                True,
                detail="no isolated CPUs (isolcpus= not on the kernel command line); "
                "running on every CPU",
            )
    elif config.cpus:
        status.cpus = list(config.cpus)
        status.affinity = set_affinity(config.cpus)
    if status.affinity.applied:
        others = move_other_threads(status.cpus, allowed, leave)
        status.others, status.other_cpus, status.moved = (
            others.others,
            others.other_cpus,
            others.moved,
        )
    for name, step in (
        ("mlockall", status.mlockall),
        ("SCHED_FIFO", status.sched_fifo),
        ("CPU affinity", status.affinity),
        ("other threads off the loop's CPUs", status.others),
    ):
        if step.requested and not step.applied:
            logger.warning("real-time setting %s not applied: %s", name, step.detail)
    return status
