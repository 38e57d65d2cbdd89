"""The ``jetson-rt`` command line.

Each command group lives in its own module exposing ``register(subparsers)``;
that module keeps heavy imports (onnxruntime, tensorrt, matplotlib) inside the
command functions so ``jetson-rt --help`` loads on any machine.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from jetson_rt import __version__
from jetson_rt.errors import JetsonRtError
from jetson_rt.log import configure, logger

# Modules that add sub-commands, in help order.
_COMMAND_MODULES = (
    "jetson_rt.sim.cli",
    "jetson_rt.engine.cli",
    "jetson_rt.engine.quantize",
    "jetson_rt.runner.cli",
    "jetson_rt.runner.listen",
    "jetson_rt.report.cli",
)


class _Parser(argparse.ArgumentParser):
    """Usage errors end like every other refusal: one ``ERROR jetson_rt:`` line, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"ERROR jetson_rt: {self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jetson-rt",
        description="Real-time inference nodes for NVIDIA Jetson Orin fleets.",
    )
    parser.add_argument("--version", action="version", version=f"jetson-rt {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure(args.verbose)
    try:
        result: int = args.func(args)
    except JetsonRtError as exc:
        logger.error("%s", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
