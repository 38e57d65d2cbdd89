"""``jetson-rt run``, ``jetson-rt check-config`` and ``jetson-rt bench``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from jetson_rt.errors import ConfigError


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="run the real-time inference loop (the systemd service's command)",
        description="Load the models, warm up, apply the real-time settings and run the loop "
        "until SIGTERM; stats go to the file named in the configuration.",
    )
    run.add_argument("--config", type=Path, required=True, help="runner YAML file")
    run.add_argument("--duration", type=float, help="stop after this many seconds")
    run.add_argument("--max-inferences", type=int, help="stop after this many inferences")
    run.add_argument("--stats", type=Path, help="stats file (overrides stats.path)")
    run.set_defaults(func=_run)

    check = subparsers.add_parser(
        "check-config",
        help="validate a runner configuration without running it",
        description="Exit 0 if the file is valid, the files it names exist and this host "
        "has what it asks for (DLA cores, OpenCV for cameras); otherwise print every "
        "problem with its key path and exit 2.",
    )
    check.add_argument("file", type=Path, help="runner YAML file")
    check.add_argument(
        "--no-files",
        action="store_true",
        help="check the schema only, not the files it names nor this host (DLA, camera)",
    )
    check.set_defaults(func=_check_config)

    bench = subparsers.add_parser(
        "bench",
        help="trtexec-style latency benchmark of one model through a backend",
        description="Enqueue, H2D, compute, D2H and host latency percentiles, optionally "
        "with CUDA graphs on and off and idle time between inferences.",
    )
    bench.add_argument("model", type=Path, help="ONNX model or engine file")
    bench.add_argument("--backend", default="onnxruntime", help="backend name")
    bench.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend option (YAML value), repeatable, e.g. --option batch=4",
    )
    bench.add_argument("--iterations", type=int, default=1000, help="timed inferences")
    bench.add_argument("--warmup", type=int, default=100, help="untimed inferences first")
    bench.add_argument("--duration", type=float, help="time limit in seconds per run")
    bench.add_argument(
        "--idle-ms", type=float, default=0.0, help="sleep between inferences (emulate a frame rate)"
    )
    bench.add_argument(
        "--graph",
        choices=("default", "on", "off", "both"),
        default="default",
        help="CUDA graph replay where the backend supports it (option use_cuda_graph)",
    )
    bench.add_argument("--json", type=Path, help="write the results as JSON to this file")
    bench.set_defaults(func=_bench)


def _run(args: argparse.Namespace) -> int:
    from jetson_rt.runner.config import load_config
    from jetson_rt.runner.service import Runner

    config = load_config(args.config)
    if args.max_inferences is not None and args.max_inferences < 1:
        raise ConfigError("--max-inferences must be at least 1")
    runner = Runner(config, stats_path=args.stats)
    return runner.run(duration_s=args.duration, max_inferences=args.max_inferences)


def _check_config(args: argparse.Namespace) -> int:
    from jetson_rt.runner.config import check_files, load_config
    from jetson_rt.runner.preflight import host_problems

    config = load_config(args.file)
    problems = [] if args.no_files else check_files(config) + host_problems(config)
    if problems:
        raise ConfigError(f"{args.file}:\n  " + "\n  ".join(problems))
    print(
        f"{args.file}: valid (schema_version 1, {len(config.models)} model(s), "
        f"{len(config.tasks)} task(s))"
    )
    return 0


def _parse_options(pairs: list[str]) -> dict[str, object]:
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {pair!r}: expected KEY=VALUE")
        try:
            options[key] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--option {pair!r}: value is not valid YAML: {exc}") from exc
    return options


def _bench(args: argparse.Namespace) -> int:
    from jetson_rt.runner.bench import BenchSettings, format_table, run_bench

    settings = BenchSettings(
        iterations=args.iterations,
        warmup=args.warmup,
        duration_s=args.duration,
        idle_ms=args.idle_ms,
        graph=args.graph,
    )
    report = run_bench(args.backend, args.model, _parse_options(args.option), settings)
    text = json.dumps(report, indent=2)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(format_table(report) + "\n")
    return 0
