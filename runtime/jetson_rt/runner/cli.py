"""``jetson-rt run``, ``jetson-rt check-config`` and ``jetson-rt bench``."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jetson_rt.errors import ConfigError

if TYPE_CHECKING:
    from jetson_rt.runner.config import RunnerConfig


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


def _positive_seconds(flag: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{flag} must be a positive number of seconds, got {value}")


def validated_config(
    path: Path, *, files: bool = True, stats_path: Path | None = None
) -> RunnerConfig:
    """What ``check-config`` checks and ``run`` checks before it starts: one validation.

    The schema (:func:`~jetson_rt.runner.config.load_config`), then, unless
    ``files`` is false, the files it names (models, their manifests and source
    models, input folders) and this host (DLA cores, camera support); a
    SCHED_FIFO loop on a host with RT throttling on is warned about, not refused.
    """
    from jetson_rt.log import logger
    from jetson_rt.runner.config import check_files, load_config, problem_list
    from jetson_rt.runner.preflight import host_problems

    config = load_config(path)
    if not files:
        return config
    problems = check_files(config, stats_path=stats_path) + host_problems(config)
    if problems:
        raise ConfigError(problem_list(str(path), problems))
    for name, model in config.models.items():
        if not model.verify:
            logger.warning("models.%s.verify is false: %s is not checked", name, model.path)
    from jetson_rt.runner.throttle import throttling_warning

    throttling = throttling_warning(config.rt.priority)
    if throttling:
        logger.warning("%s", throttling)
    return config


def _run(args: argparse.Namespace) -> int:
    from jetson_rt.runner.service import Runner

    _positive_seconds("--duration", args.duration)
    if args.max_inferences is not None and args.max_inferences < 1:
        raise ConfigError(f"--max-inferences must be at least 1, got {args.max_inferences}")
    config = validated_config(args.config, stats_path=args.stats)
    runner = Runner(config, stats_path=args.stats)
    return runner.run(duration_s=args.duration, max_inferences=args.max_inferences)


def _check_config(args: argparse.Namespace) -> int:
    config = validated_config(args.file, files=not args.no_files)
    print(
        f"{args.file}: valid (schema_version 1, {len(config.models)} model(s), "
        f"{len(config.tasks)} task(s))"
    )
    return 0


def _parse_options(backend: str, pairs: list[str]) -> dict[str, object]:
    """``--option KEY=VALUE`` pairs, each value read as YAML, checked as runner.yaml's are."""
    from jetson_rt.runner.config import check_bench_options
    from jetson_rt.yamlload import parse_yaml

    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        shown = pair if len(pair) <= 60 else pair[:57] + "..."
        if not sep or not key:
            raise ConfigError(f"--option {shown!r}: expected KEY=VALUE")
        if key in options:
            raise ConfigError(f"--option {key} is given twice")
        options[key] = parse_yaml(value, f"--option {key}")
    return check_bench_options(backend, options)


def _check_output_file(flag: str, path: Path) -> None:
    """Refuse before any work an output path that cannot be written as a file."""
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder: name a file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {path}: {parent} is not a folder")
            break


def _bench(args: argparse.Namespace) -> int:
    from jetson_rt.atomic import atomic_write_text
    from jetson_rt.runner.bench import BenchSettings, format_table, run_bench

    _positive_seconds("--duration", args.duration)
    if not (math.isfinite(args.idle_ms) and args.idle_ms >= 0):
        raise ConfigError(f"--idle-ms must be a number >= 0, got {args.idle_ms}")
    if args.backend not in ("onnxruntime", "tensorrt"):
        raise ConfigError(f"--backend must be onnxruntime or tensorrt, got {args.backend!r}")
    if not args.model.is_file():
        raise ConfigError(f"model {args.model} does not exist or is not a file")
    if args.json is not None:
        _check_output_file("--json", args.json)
    options = _parse_options(args.backend, args.option)
    settings = BenchSettings(
        iterations=args.iterations,
        warmup=args.warmup,
        duration_s=args.duration,
        idle_ms=args.idle_ms,
        graph=args.graph,
    )
    report = run_bench(args.backend, args.model, options, settings)
    text = json.dumps(report, indent=2)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, text + "\n")
    sys.stdout.write(format_table(report) + "\n")
    return 0
