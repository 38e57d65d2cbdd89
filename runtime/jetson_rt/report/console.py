"""The short summary printed after a report is written."""

from __future__ import annotations

from jetson_rt.report.evaluate import FleetReport

# Hosts listed individually before "... and N more".
MAX_LISTED = 10


def _us(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g} us"


def console_summary(report: FleetReport, html_path: str | None = None) -> str:
    info = report.run.info
    counts = report.counts
    lines = [
        f"jetson-rt validation report: run {info.run_id}"
        + (f" (profile {info.profile})" if info.profile else ""),
        f"  hosts: {len(report.hosts)} ({counts['pass']} pass, {counts['warn']} warn, "
        f"{counts['fail']} fail, {counts['error']} error)",
    ]
    worst = report.worst
    if worst is not None and worst.summary is not None:
        where = f" {worst.summary.max_cpu}" if worst.summary.max_cpu else ""
        lines.append(f"  worst latency: {_us(worst.summary.max_us)} on {worst.name}{where}")
    if report.previous is not None:
        lines.append(
            f"  previous run {report.previous.run_id}: {report.previous.verdict.upper()}, "
            f"worst {_us(report.previous.max_us)}"
        )
    bad = [h for h in report.hosts if h.verdict in ("fail", "error")]
    for host in bad[:MAX_LISTED]:
        reason = host.reasons[0] if host.reasons else host.verdict
        lines.append(f"  {host.verdict.upper():5} {host.name}: {reason}")
    if len(bad) > MAX_LISTED:
        lines.append(f"  ... and {len(bad) - MAX_LISTED} more")
    verdict = f"Verdict: {report.verdict.upper()}"
    if html_path:
        verdict += f"  ({html_path})"
    lines.append(verdict)
    return "\n".join(lines)
