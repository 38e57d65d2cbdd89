"""Dataclasses for a RUN_DIR as read from disk (see ``docs/validation-report.md``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from jetson_rt.report.cyclictest import CyclictestResult
from jetson_rt.report.gates import Gate

CheckStatus = Literal["pass", "warn", "fail", "unknown"]
CHECK_STATUSES: tuple[CheckStatus, ...] = ("pass", "warn", "fail", "unknown")

#: What the loader could read for a host, worst first. ``inconsistent``: the data
#: contradicts itself (a max below its histogram, NaN latencies, host.json naming
#: another host) or a link leaves RUN_DIR; no verdict can rest on it.
HostState = Literal[
    "unreachable", "missing", "failed", "inconsistent", "corrupt", "incomplete", "ok"
]
HOST_STATES: tuple[HostState, ...] = (
    "unreachable",
    "missing",
    "failed",
    "inconsistent",
    "corrupt",
    "incomplete",
    "ok",
)

FactValue = str | int | float | bool | None


@dataclass(frozen=True)
class AuditCheck:
    """One host-state check from ``audit.json``."""

    id: str
    title: str
    status: CheckStatus
    observed: str | None = None
    expected: str | None = None
    hint: str | None = None


@dataclass(frozen=True)
class StageStats:
    """One pipeline stage from ``runner_stats.json`` (milliseconds)."""

    name: str
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass(frozen=True)
class RunnerStats:
    """The inference runner's per-stage latency figures."""

    stages: tuple[StageStats, ...]
    frames: int | None = None
    deadline_misses: int | None = None
    deadline_ms: float | None = None


@dataclass(frozen=True)
class LatencyBudget:
    """The guide's Appendix B template, filled in ``run.json`` under ``budget``."""

    application: str | None = None
    target_fps: float | None = None
    deadline_ms: float | None = None
    sla_percent: float | None = None
    stages_ms: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunInfo:
    """``run.json``."""

    schema_version: int
    run_id: str
    started_at: str | None
    finished_at: str | None
    profile: str | None
    gates: Mapping[str, Gate]
    expected_hosts: Mapping[str, tuple[str, ...]]
    cyclictest_cmdline: str | None = None
    load: str | None = None
    budget: LatencyBudget | None = None
    #: False for an audit-only run (check mode, cyclictest disabled): no host misses
    #: a cyclictest file and no latency is judged.
    latency_measured: bool = True


@dataclass
class HostRecord:
    """Everything read for one host; ``problems`` says what could not be read."""

    name: str
    groups: tuple[str, ...] = ()
    reachable: bool | None = None
    error: str | None = None
    facts: dict[str, FactValue] = field(default_factory=dict)
    checks: list[AuditCheck] | None = None
    cyclictest: CyclictestResult | None = None
    cyclictest_file: str | None = None
    #: The command line that produced the results: host.json's, else run.json's.
    cyclictest_cmdline: str | None = None
    runner: RunnerStats | None = None
    host_file_read: bool = False
    problems: list[str] = field(default_factory=list)
    problem_states: list[HostState] = field(default_factory=list)

    def add_problem(self, state: HostState, message: str) -> None:
        self.problem_states.append(state)
        self.problems.append(message)

    @property
    def state(self) -> HostState:
        if not self.problem_states:
            return "ok"
        return min(self.problem_states, key=HOST_STATES.index)


@dataclass(frozen=True)
class LoadedRun:
    """A RUN_DIR: its ``run.json`` and every host found in it or expected by it."""

    path: Path
    info: RunInfo
    hosts: tuple[HostRecord, ...]
