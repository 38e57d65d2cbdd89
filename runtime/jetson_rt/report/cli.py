"""``jetson-rt report RUN_DIR [--previous RUN_DIR] [--out DIR]``.

Exit status: 0 when the fleet passes, 1 when any host fails or could not be
validated, 2 when the RUN_DIR cannot be read or the report cannot be written.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_OUT = "report"


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
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from jetson_rt.report.build import build_report

    out_dir: Path = args.out if args.out is not None else args.run_dir / DEFAULT_OUT
    outputs = build_report(args.run_dir, out_dir, args.previous)
    print(outputs.summary)
    return outputs.exit_code
