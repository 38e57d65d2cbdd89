"""Judge a loaded run: a verdict per host, per group and for the fleet.

A host *passes* when its audit has no failed check and every latency gate it
is subject to passes; *warn* when it passes but an audit check warned or could
not be decided; *fail* when a check or a gate failed; *error* when it could
not be validated (unreachable, results missing or unreadable, a gate that the
data cannot decide). A host whose data contradicts itself (state
``inconsistent``) is an *error* whatever its figures say: neither a pass nor a
fail can rest on such data. The fleet passes when every host passes or warns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from jetson_rt import __version__
from jetson_rt.report.budget import BudgetTable, build_budget
from jetson_rt.report.cyclictest import CyclictestResult
from jetson_rt.report.gates import (
    EffectiveGate,
    GateResult,
    LatencySummary,
    effective_gate,
    evaluate,
    summarise,
)
from jetson_rt.report.model import HostRecord, LoadedRun

HostVerdict = Literal["pass", "warn", "fail", "error"]
FleetVerdict = Literal["pass", "fail"]
VERDICTS: tuple[HostVerdict, ...] = ("fail", "error", "warn", "pass")  # worst first
UNGROUPED = "ungrouped"


@dataclass(frozen=True)
class HostTrend:
    """The same host in the previous run."""

    verdict: HostVerdict
    max_us: float | None
    avg_us: float | None
    p99_9_us: float | None

    def delta_max_us(self, current: float | None) -> float | None:
        if current is None or self.max_us is None:
            return None
        return current - self.max_us


@dataclass
class HostReport:
    record: HostRecord
    gate: EffectiveGate
    summary: LatencySummary | None
    gate_results: list[GateResult]
    verdict: HostVerdict
    reasons: list[str]
    budget: BudgetTable | None = None
    trend: HostTrend | None = None

    @property
    def name(self) -> str:
        return self.record.name


@dataclass(frozen=True)
class GroupReport:
    name: str
    hosts: tuple[str, ...]
    verdict: HostVerdict
    counts: dict[HostVerdict, int]
    max_us: float | None
    max_host: str | None


@dataclass(frozen=True)
class PreviousRun:
    run_id: str
    verdict: FleetVerdict
    max_us: float | None
    hosts: dict[str, HostTrend]
    new_hosts: tuple[str, ...]
    gone_hosts: tuple[str, ...]


@dataclass
class FleetReport:
    run: LoadedRun
    hosts: list[HostReport]
    groups: list[GroupReport]
    verdict: FleetVerdict
    counts: dict[HostVerdict, int]
    generated_at: str
    generator: str = f"jetson-rt {__version__}"
    previous: PreviousRun | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def worst(self) -> HostReport | None:
        measured = [h for h in self.hosts if h.summary and h.summary.max_us is not None]
        if not measured:
            return None
        return max(
            measured, key=lambda h: h.summary.max_us if h.summary and h.summary.max_us else 0.0
        )

    @property
    def max_us(self) -> float | None:
        worst = self.worst
        return worst.summary.max_us if worst and worst.summary else None


def _max_us(host: HostReport) -> float:
    return host.summary.max_us or 0.0 if host.summary else 0.0


def _worst(verdicts: list[HostVerdict]) -> HostVerdict:
    return min(verdicts, key=VERDICTS.index) if verdicts else "pass"


def _judge_state(record: HostRecord, verdicts: list[HostVerdict], reasons: list[str]) -> None:
    if record.state in ("unreachable", "missing", "failed", "inconsistent"):
        verdicts.append("error")
        reasons.extend(record.problems)
    elif record.state != "ok":
        reasons.extend(record.problems)
        # Judgeable if what is bad was optional (runner figures) or had a fallback
        # (cyclictest.txt beside a corrupt cyclictest.json).
        judgeable = (
            record.host_file_read and record.checks is not None and record.cyclictest is not None
        )
        verdicts.append("warn" if judgeable else "error")


def _judge_audit(record: HostRecord, verdicts: list[HostVerdict], reasons: list[str]) -> None:
    if record.checks is None:
        return
    if not record.checks:
        verdicts.append("error")
        reasons.append("audit.json lists no checks")
    failed = [c.id for c in record.checks if c.status == "fail"]
    undecided = [c.id for c in record.checks if c.status in ("warn", "unknown")]
    if failed:
        verdicts.append("fail")
        reasons.append("audit failed: " + ", ".join(failed))
    if undecided:
        verdicts.append("warn")
        reasons.append("audit warnings: " + ", ".join(undecided))


def _judge_latency(
    latency: CyclictestResult,
    gate: EffectiveGate,
    verdicts: list[HostVerdict],
    reasons: list[str],
) -> tuple[LatencySummary, list[GateResult]]:
    summary = summarise(latency)
    results = evaluate(summary, gate.gate)
    for result in results:
        if result.status == "fail":
            verdicts.append("fail")
            reasons.append(f"{result.title.lower()} {result.detail}")
        elif result.status == "unknown":
            verdicts.append("error")
            reasons.append(f"{result.title.lower()} not decided: {result.detail}")
    if summary.cycles == 0 and summary.max_us is None:
        verdicts.append("error")
        reasons.append("cyclictest recorded no cycles")
    if latency.return_code:
        verdicts.append("error")
        reasons.append(f"cyclictest exited with code {latency.return_code}")
    if latency.kernel_realtime is False and not gate.gate.exclusive:
        verdicts.append("warn")
        reasons.append("cyclictest ran on a kernel without PREEMPT_RT")
    return summary, results


def judge_host(record: HostRecord, run: LoadedRun) -> HostReport:
    gate = effective_gate(record.groups, run.info.gates)
    verdicts: list[HostVerdict] = ["pass"]
    reasons: list[str] = []
    _judge_state(record, verdicts, reasons)
    _judge_audit(record, verdicts, reasons)
    summary: LatencySummary | None = None
    results: list[GateResult] = []
    if record.cyclictest is not None:
        summary, results = _judge_latency(record.cyclictest, gate, verdicts, reasons)
    budget = None
    if record.runner is not None:
        budget = build_budget(record.runner, run.info.budget)
    return HostReport(
        record=record,
        gate=gate,
        summary=summary,
        gate_results=results,
        verdict="error" if "inconsistent" in record.problem_states else _worst(verdicts),
        reasons=reasons,
        budget=budget,
    )


def _groups(hosts: list[HostReport]) -> list[GroupReport]:
    members: dict[str, list[HostReport]] = {}
    for host in hosts:
        for group in host.record.groups or (UNGROUPED,):
            members.setdefault(group, []).append(host)
    groups = []
    for name in sorted(members):
        reports = members[name]
        counts: dict[HostVerdict, int] = dict.fromkeys(VERDICTS, 0)
        for host in reports:
            counts[host.verdict] += 1
        measured = [h for h in reports if h.summary and h.summary.max_us is not None]
        worst = (
            max(measured, key=lambda h: h.summary.max_us or 0.0 if h.summary else 0.0)
            if measured
            else None
        )
        groups.append(
            GroupReport(
                name=name,
                hosts=tuple(h.name for h in reports),
                verdict=_worst([h.verdict for h in reports]),
                counts=counts,
                max_us=worst.summary.max_us if worst and worst.summary else None,
                max_host=worst.name if worst else None,
            )
        )
    return groups


def _fleet(run: LoadedRun) -> tuple[list[HostReport], FleetVerdict, dict[HostVerdict, int]]:
    hosts = [judge_host(record, run) for record in run.hosts]
    counts: dict[HostVerdict, int] = dict.fromkeys(VERDICTS, 0)
    for host in hosts:
        counts[host.verdict] += 1
    verdict: FleetVerdict = "pass" if all(h.verdict in ("pass", "warn") for h in hosts) else "fail"
    return hosts, verdict, counts


def judge_run(
    run: LoadedRun, previous: LoadedRun | None = None, now: dt.datetime | None = None
) -> FleetReport:
    hosts, verdict, counts = _fleet(run)
    report = FleetReport(
        run=run,
        hosts=hosts,
        groups=_groups(hosts),
        verdict=verdict,
        counts=counts,
        generated_at=(now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds"),
    )
    if previous is not None:
        report.previous = _previous(previous, hosts)
    return report


def _previous(previous: LoadedRun, hosts: list[HostReport]) -> PreviousRun:
    old_hosts, old_verdict, _ = _fleet(previous)
    trends: dict[str, HostTrend] = {}
    for old in old_hosts:
        summary = old.summary
        trends[old.name] = HostTrend(
            verdict=old.verdict,
            max_us=summary.max_us if summary else None,
            avg_us=summary.avg_us if summary else None,
            p99_9_us=summary.p99_9_us if summary else None,
        )
    current = {h.name for h in hosts}
    for host in hosts:
        host.trend = trends.get(host.name)
    maxima = [t.max_us for t in trends.values() if t.max_us is not None]
    return PreviousRun(
        run_id=previous.info.run_id,
        verdict=old_verdict,
        max_us=max(maxima) if maxima else None,
        hosts=trends,
        new_hosts=tuple(sorted(current - set(trends))),
        gone_hosts=tuple(sorted(set(trends) - current)),
    )
