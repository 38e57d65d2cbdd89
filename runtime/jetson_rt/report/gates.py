"""Latency gates per inventory group, and their evaluation against cyclictest results.

A gate bounds four figures of a host's cyclictest run, each over all of its
measurement threads: the worst maximum, the worst per-thread average, the worst
per-thread p99.9 (see :meth:`ThreadLatency.percentile`) and the total number of
histogram overflows. A limit of ``None`` is not checked.

A host in several groups takes, figure by figure, the strictest limit among
its groups that define a gate. ``all`` applies to hosts none of whose groups
has a gate. An *exclusive* gate (the ``sim`` default) replaces the others: a
simulated host in ``orin_nano`` is still judged by the ``sim`` gate, because
a virtual machine cannot meet a real-time bound and should not be asked to.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from jetson_rt.errors import ReportError
from jetson_rt.report.cyclictest import CyclictestResult

GateStatus = Literal["pass", "fail", "unknown"]
Metric = Literal["max_us", "avg_us", "p99_9_us", "overflows"]

P99_9 = 0.999


@dataclass(frozen=True)
class Gate:
    """Limits for one inventory group. ``note`` is shown in the report."""

    max_us: float | None = None
    avg_us: float | None = None
    p99_9_us: float | None = None
    max_overflows: int | None = None
    exclusive: bool = False
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_us": self.max_us,
            "avg_us": self.avg_us,
            "p99_9_us": self.p99_9_us,
            "max_overflows": self.max_overflows,
            "exclusive": self.exclusive,
            "note": self.note,
        }


SIM_NOTE = (
    "The simulated fleet runs in containers on a virtual machine: its kernel is not "
    "PREEMPT_RT and the hypervisor preempts its vCPUs at will, so its latency says "
    "nothing about a Jetson. These loose gates only catch a broken measurement "
    "(no samples, a runaway average); real-time bounds are checked on hardware."
)

#: Gates used for groups that ``run.json`` does not configure.
DEFAULT_GATES: Mapping[str, Gate] = {
    "all": Gate(
        max_us=50.0,
        avg_us=10.0,
        p99_9_us=25.0,
        max_overflows=0,
        note=(
            "Orin Nano target after tuning (guide section 2: average 5-10 us, max < 50 us); "
            "published AGX Orin figures with isolation stay below 20 us under load."
        ),
    ),
    "sim": Gate(
        max_us=50_000.0,
        avg_us=500.0,
        p99_9_us=None,
        max_overflows=None,
        exclusive=True,
        note=SIM_NOTE,
    ),
}

_LIMIT_KEYS = ("max_us", "avg_us", "p99_9_us", "max_overflows")


# A limit above this (about 31 years in microseconds, or that many overflows) is a typo.
MAX_LIMIT = 1e15


def _limit(where: str, value: Any, *, integer: bool) -> float | int:
    """A gate limit: a finite, non-negative number (NaN, infinity or a huge one is a typo
    that would pass every host)."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = None
    if number is None or not math.isfinite(number) or not 0 <= number <= MAX_LIMIT:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
        raise ReportError(
            f"{where} must be a finite non-negative number (at most {MAX_LIMIT:g}) or null, "
            f"not {shown}"
        )
    if integer:
        if not number.is_integer():
            raise ReportError(f"{where} must be a whole number of overflows, not {value!r}")
        return int(number)
    return number


def gate_from_mapping(group: str, raw: Any, base: Gate | None = None) -> Gate:
    """A gate from ``run.json``; keys it omits keep ``base`` (the default for that group)."""
    where = f"run.json: gates.{group}"
    if not isinstance(raw, Mapping):
        raise ReportError(f"{where} must be an object with {', '.join(_LIMIT_KEYS)}")
    unknown = sorted(set(raw) - {*_LIMIT_KEYS, "exclusive", "note"})
    if unknown:
        raise ReportError(f"{where}: unknown key(s) {', '.join(unknown)}")
    gate = base or Gate()
    changes: dict[str, Any] = {}
    for key in _LIMIT_KEYS:
        if key not in raw:
            continue
        value = raw[key]
        if value is None:
            changes[key] = None
            continue
        changes[key] = _limit(f"{where}.{key}", value, integer=key == "max_overflows")
    if "exclusive" in raw:
        if not isinstance(raw["exclusive"], bool):
            raise ReportError(f"{where}.exclusive must be true or false")
        changes["exclusive"] = raw["exclusive"]
    if "note" in raw:
        if raw["note"] is not None and not isinstance(raw["note"], str):
            raise ReportError(f"{where}.note must be a string")
        changes["note"] = raw["note"]
    return replace(gate, **changes)


def gates_from_run(raw: Any) -> dict[str, Gate]:
    """Defaults overlaid with ``run.json``'s ``gates`` mapping."""
    gates = dict(DEFAULT_GATES)
    if raw is None:
        return gates
    if not isinstance(raw, Mapping):
        raise ReportError("run.json: gates must map inventory group names to gates")
    for group, value in raw.items():
        gates[str(group)] = gate_from_mapping(str(group), value, DEFAULT_GATES.get(str(group)))
    return gates


@dataclass(frozen=True)
class EffectiveGate:
    """The gate a host is judged by and the groups it came from."""

    gate: Gate
    sources: tuple[str, ...]
    notes: tuple[str, ...]


def _strictest(values: Iterable[float | int | None]) -> float | int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def effective_gate(groups: Iterable[str], gates: Mapping[str, Gate]) -> EffectiveGate:
    names = [g for g in groups if g in gates and g != "all"]
    exclusive = [g for g in names if gates[g].exclusive]
    if exclusive:
        names = exclusive
    if not names:
        names = ["all"] if "all" in gates else []
    chosen = [gates[g] for g in names]
    if not chosen:
        return EffectiveGate(Gate(), (), ())
    max_overflows = _strictest(g.max_overflows for g in chosen)
    merged = Gate(
        max_us=_strictest(g.max_us for g in chosen),
        avg_us=_strictest(g.avg_us for g in chosen),
        p99_9_us=_strictest(g.p99_9_us for g in chosen),
        max_overflows=None if max_overflows is None else int(max_overflows),
        exclusive=bool(exclusive),
    )
    notes = tuple(dict.fromkeys(g.note for g in chosen if g.note))
    return EffectiveGate(merged, tuple(names), notes)


@dataclass(frozen=True)
class GateResult:
    """One figure checked against one limit."""

    metric: Metric
    title: str
    limit: float | None
    observed: float | None
    status: GateStatus
    detail: str


@dataclass(frozen=True)
class LatencySummary:
    """A host's worst figures over its threads."""

    max_us: float | None
    max_cpu: str | None
    avg_us: float | None
    p99_9_us: float | None
    p99_9_in_overflow: bool
    overflows: int | None
    cycles: int


def summarise(result: CyclictestResult) -> LatencySummary:
    max_us: float | None = None
    max_cpu: str | None = None
    for thread in result.threads:
        if thread.max_us is not None and (max_us is None or thread.max_us > max_us):
            max_us, max_cpu = thread.max_us, thread.label
    p999: float | None = None
    p999_over = False
    for thread in result.threads:
        pct = thread.percentile(P99_9)
        if pct is not None and (p999 is None or pct.value_us > p999):
            p999, p999_over = pct.value_us, pct.in_overflow
    return LatencySummary(
        max_us=max_us,
        max_cpu=max_cpu,
        avg_us=result.worst_avg_us,
        p99_9_us=p999,
        p99_9_in_overflow=p999_over,
        overflows=result.overflows,
        cycles=sum(t.cycles for t in result.threads),
    )


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


NO_HISTOGRAM = "no histogram: run cyclictest with -h (e.g. -h400)"


def _check(
    metric: Metric,
    title: str,
    *,
    limit: float | None,
    observed: float | None,
    missing: str,
    unit: str = " us",
) -> GateResult:
    if observed is None:
        return GateResult(metric, title, limit, None, "unknown", missing)
    ok = limit is None or observed <= limit
    relation = "<=" if ok else ">"
    detail = f"{_fmt(observed)}{unit} {relation} {_fmt(limit)}{unit}"
    return GateResult(metric, title, limit, observed, "pass" if ok else "fail", detail)


def evaluate(summary: LatencySummary, gate: Gate) -> list[GateResult]:
    """One :class:`GateResult` per limit the gate sets."""
    results: list[GateResult] = []
    if gate.max_us is not None:
        results.append(
            _check("max_us", "Max latency", limit=gate.max_us, observed=summary.max_us,
                   missing="no maximum recorded")
        )  # fmt: skip
    if gate.avg_us is not None:
        results.append(
            _check("avg_us", "Average latency", limit=gate.avg_us, observed=summary.avg_us,
                   missing="no average recorded")
        )  # fmt: skip
    if gate.p99_9_us is not None:
        result = _check("p99_9_us", "p99.9 latency", limit=gate.p99_9_us,
                        observed=summary.p99_9_us, missing=NO_HISTOGRAM)  # fmt: skip
        if summary.p99_9_in_overflow:
            result = replace(result, detail=result.detail + " (in overflow: max used as bound)")
        results.append(result)
    if gate.max_overflows is not None:
        overflows = None if summary.overflows is None else float(summary.overflows)
        results.append(
            _check("overflows", "Histogram overflows", limit=gate.max_overflows,
                   observed=overflows, missing=NO_HISTOGRAM, unit="")
        )  # fmt: skip
    return results
