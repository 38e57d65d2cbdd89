"""Build every output of ``jetson-rt report`` from a RUN_DIR."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from jetson_rt.errors import ReportError
from jetson_rt.log import logger
from jetson_rt.report.atomic import write_together
from jetson_rt.report.console import console_summary
from jetson_rt.report.evaluate import FleetReport, judge_run
from jetson_rt.report.junit import build_junit
from jetson_rt.report.loader import load_run
from jetson_rt.report.report_json import build_report_dict, exit_code
from jetson_rt.report.schema import REPORT_SCHEMA

HTML_FILE = "report.html"
JSON_FILE = "report.json"
SCHEMA_FILE = "report.schema.json"
JUNIT_FILE = "junit.xml"


@dataclass(frozen=True)
class ReportOutputs:
    report: FleetReport
    html: Path
    json: Path
    schema: Path
    junit: Path
    summary: str
    exit_code: int


def build_report(run_dir: Path, out_dir: Path, previous_dir: Path | None = None) -> ReportOutputs:
    """Read ``run_dir`` (and ``previous_dir``), write the report files into ``out_dir``."""
    from jetson_rt.report.html import render_html
    from jetson_rt.report.plots import render_plots

    run = load_run(run_dir)
    previous = load_run(previous_dir) if previous_dir is not None else None
    report = judge_run(run, previous)
    data = build_report_dict(report)
    plots = render_plots(report)
    html = render_html(data, plots)

    paths = {name: out_dir / name for name in (HTML_FILE, JSON_FILE, SCHEMA_FILE, JUNIT_FILE)}
    try:
        report_json = json.dumps(data, indent=2, allow_nan=False) + "\n"
    except ValueError as exc:  # a NaN that slipped past the loader: never write it as JSON
        raise ReportError(f"report.json cannot be written: {exc}") from exc
    # All or none; the page last, so its presence means the report is complete.
    write_together(
        out_dir,
        {
            JSON_FILE: report_json,
            SCHEMA_FILE: json.dumps(REPORT_SCHEMA, indent=2) + "\n",
            JUNIT_FILE: build_junit(report),
            HTML_FILE: html,
        },
    )
    logger.debug("wrote %s", ", ".join(str(p) for p in paths.values()))
    return ReportOutputs(
        report=report,
        html=paths[HTML_FILE],
        json=paths[JSON_FILE],
        schema=paths[SCHEMA_FILE],
        junit=paths[JUNIT_FILE],
        summary=console_summary(report, str(paths[HTML_FILE])),
        exit_code=exit_code(report),
    )
