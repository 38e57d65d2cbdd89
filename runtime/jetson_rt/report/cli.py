"""``jetson-rt report RUN_DIR [--previous RUN_DIR] [--out DIR]``, or
``jetson-rt report --collected COLLECT_DIR [--stale-after AGE]`` for the folders boards
upload in pull mode (:mod:`jetson_rt.report.collected`).

Exit status: 0 when the fleet passes, 1 when any host fails or could not be
validated, 2 when the RUN_DIR cannot be read or the report cannot be written.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_OUT = "report"
COLLECTED_OUT = ".report"
DEFAULT_STALE_AFTER = "24h"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="build the fleet validation report from an rt_validate RUN_DIR",
        description=(
            "Read the results rt_validate fetched into RUN_DIR and write report.html "
            "(self-contained), report.json (+ report.schema.json) and junit.xml. "
            "Exit status: 0 pass, 1 fail (a host failed or could not be validated), "
            "2 unreadable RUN_DIR or unwritable output."
        ),
    )
    parser.add_argument(
        "run_dir", type=Path, metavar="RUN_DIR", help="results of one validation run"
    )
    parser.add_argument(
        "--previous",
        type=Path,
        metavar="RUN_DIR",
        help="an earlier run to compare with (trend per host)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help=f"where to write the report (default: RUN_DIR/{DEFAULT_OUT})",
    )
    parser.add_argument(
        "--collected",
        action="store_true",
        help=(
            "RUN_DIR is a collector's folder of board uploads (pull mode, "
            "COLLECT_DIR/<host>/<run_id>/): report each board's newest run "
            f"(default --out: COLLECT_DIR/{COLLECTED_OUT})"
        ),
    )
    parser.add_argument(
        "--stale-after",
        default=DEFAULT_STALE_AFTER,
        metavar="AGE",
        help=(
            "with --collected: a board whose newest result is older than AGE "
            f"(e.g. 90m, 6h, 2d) fails as stale (default {DEFAULT_STALE_AFTER})"
        ),
    )
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from jetson_rt.report.build import build_report

    if args.collected:
        return _run_collected(args)
    out_dir: Path = args.out if args.out is not None else args.run_dir / DEFAULT_OUT
    outputs = build_report(args.run_dir, out_dir, args.previous)
    print(outputs.summary)
    return outputs.exit_code


def _run_collected(args: argparse.Namespace) -> int:
    import tempfile

    from jetson_rt.report.build import build_report
    from jetson_rt.report.collected import assemble, parse_age

    stale_after = parse_age(args.stale_after)
    out_dir: Path = args.out if args.out is not None else args.run_dir / COLLECTED_OUT
    with tempfile.TemporaryDirectory(prefix="jetson-rt-collected-") as tmp:
        fleet_run = Path(tmp) / "run"
        collected = assemble(args.run_dir, fleet_run, stale_after)
        outputs = build_report(fleet_run, out_dir, args.previous)
    for note in collected.notes():
        print(note)
    print(outputs.summary)
    return outputs.exit_code
