"""``report.json``: the machine-readable report, and the data the HTML page renders.

The layout is versioned by ``schema_version`` (:data:`REPORT_SCHEMA_VERSION`)
and described by the JSON Schema in :mod:`.schema`, written next to it.
"""

from __future__ import annotations

from typing import Any

from jetson_rt.report import REPORT_SCHEMA_VERSION
from jetson_rt.report.budget import BudgetRow, BudgetTable
from jetson_rt.report.cyclictest import CyclictestResult
from jetson_rt.report.evaluate import FleetReport, HostReport
from jetson_rt.report.gates import P99_9, Gate

EXIT_PASS = 0
EXIT_FAIL = 1


def exit_code(report: FleetReport) -> int:
    return EXIT_PASS if report.verdict == "pass" else EXIT_FAIL


def _gate(gate: Gate) -> dict[str, Any]:
    return gate.to_dict()


def _latency(result: CyclictestResult, host: HostReport) -> dict[str, Any]:
    summary = host.summary
    threads = []
    for thread in result.threads:
        p99 = thread.percentile(0.99)
        p999 = thread.percentile(P99_9)
        threads.append(
            {
                "index": thread.index,
                "cpu": thread.cpu,
                "label": thread.label,
                "cycles": thread.cycles,
                "min_us": thread.min_us,
                "avg_us": thread.avg_us,
                "max_us": thread.max_us,
                "p99_us": p99.value_us if p99 else None,
                "p99_9_us": p999.value_us if p999 else None,
                "p99_9_in_overflow": bool(p999 and p999.in_overflow),
                "overflows": thread.overflows,
                "buckets": int(thread.counts.size),
            }
        )
    return {
        "source": result.source,
        "file": host.record.cyclictest_file,
        "version": result.version,
        "cmdline": result.cmdline,
        "kernel_release": result.kernel_release,
        "kernel_realtime": result.kernel_realtime,
        "histogram_limit_us": result.histogram_limit_us,
        "interval_us": result.interval_us,
        "priority": result.priority,
        "max_us": summary.max_us if summary else None,
        "max_cpu": summary.max_cpu if summary else None,
        "avg_us": summary.avg_us if summary else None,
        "p99_9_us": summary.p99_9_us if summary else None,
        "p99_9_in_overflow": summary.p99_9_in_overflow if summary else False,
        "overflows": summary.overflows if summary else None,
        "cycles": summary.cycles if summary else 0,
        "notes": list(result.notes),
        "threads": threads,
    }


def _budget_row(row: BudgetRow) -> dict[str, Any]:
    return {
        "stage": row.stage,
        "budget_ms": row.budget_ms,
        "p50_ms": row.p50_ms,
        "p99_ms": row.p99_ms,
        "max_ms": row.max_ms,
        "over_budget": row.over_budget,
    }


def _budget(table: BudgetTable) -> dict[str, Any]:
    return {
        "application": table.application,
        "target_fps": table.target_fps,
        "deadline_ms": table.deadline_ms,
        "sla_percent": table.sla_percent,
        "rows": [_budget_row(r) for r in table.rows],
        "total": _budget_row(table.total),
        "meets_sla": table.meets_sla,
        "sla_detail": table.sla_detail,
    }


def _host(host: HostReport) -> dict[str, Any]:
    record = host.record
    trend = None
    if host.trend is not None:
        current = host.summary.max_us if host.summary else None
        trend = {
            "previous_verdict": host.trend.verdict,
            "previous_max_us": host.trend.max_us,
            "previous_avg_us": host.trend.avg_us,
            "previous_p99_9_us": host.trend.p99_9_us,
            "delta_max_us": host.trend.delta_max_us(current),
        }
    return {
        "name": record.name,
        "groups": list(record.groups),
        "state": record.state,
        "verdict": host.verdict,
        "reasons": list(host.reasons),
        "problems": list(record.problems),
        "reachable": record.reachable,
        "error": record.error,
        "facts": dict(record.facts),
        "gate": {
            "sources": list(host.gate.sources),
            "limits": _gate(host.gate.gate),
            "notes": list(host.gate.notes),
        },
        "checks": None
        if record.checks is None
        else [
            {
                "id": c.id,
                "title": c.title,
                "status": c.status,
                "observed": c.observed,
                "expected": c.expected,
                "hint": c.hint,
            }
            for c in record.checks
        ],
        "latency": None if record.cyclictest is None else _latency(record.cyclictest, host),
        "gate_results": [
            {
                "metric": r.metric,
                "title": r.title,
                "limit": r.limit,
                "observed": r.observed,
                "status": r.status,
                "detail": r.detail,
            }
            for r in host.gate_results
        ],
        "budget": None if host.budget is None else _budget(host.budget),
        "trend": trend,
    }


def build_report_dict(report: FleetReport) -> dict[str, Any]:
    info = report.run.info
    worst = report.worst
    previous = None
    if report.previous is not None:
        previous = {
            "run_id": report.previous.run_id,
            "verdict": report.previous.verdict,
            "max_latency_us": report.previous.max_us,
            "new_hosts": list(report.previous.new_hosts),
            "gone_hosts": list(report.previous.gone_hosts),
        }
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "generator": report.generator,
        "generated_at": report.generated_at,
        "run": {
            "run_id": info.run_id,
            "run_dir": str(report.run.path),
            "started_at": info.started_at,
            "finished_at": info.finished_at,
            "profile": info.profile,
            "cyclictest_cmdline": info.cyclictest_cmdline,
            "load": info.load,
        },
        "verdict": report.verdict,
        "exit_code": exit_code(report),
        "summary": {
            "hosts": len(report.hosts),
            **report.counts,
            "max_latency_us": report.max_us,
            "max_latency_host": worst.name if worst else None,
            "max_latency_cpu": worst.summary.max_cpu if worst and worst.summary else None,
        },
        "gates": {name: _gate(gate) for name, gate in sorted(info.gates.items())},
        "groups": [
            {
                "name": g.name,
                "hosts": list(g.hosts),
                "verdict": g.verdict,
                "counts": dict(g.counts),
                "max_latency_us": g.max_us,
                "max_latency_host": g.max_host,
                "gate": _gate(info.gates[g.name]) if g.name in info.gates else None,
            }
            for g in report.groups
        ],
        "hosts": [_host(h) for h in report.hosts],
        "previous": previous,
    }
