"""``jetson-rt build-engine``: ONNX to a TensorRT engine or an ONNX Runtime model.

Heavy imports (onnx, onnxruntime, tensorrt) happen inside the command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from jetson_rt.engine.options import (
    ORT_OPTIMIZATIONS,
    PRECISIONS,
    BuildOptions,
    Precision,
    parse_shapes,
)
from jetson_rt.errors import ConfigError

_DESCRIPTION = (
    "Build a TensorRT engine (on the device that will run it) or an ONNX Runtime-optimised "
    "model from an ONNX model, and write a manifest beside it."
)

_EPILOG = """\
examples:
  jetson-rt build-engine model.onnx --timing-cache /var/cache/jetson-rt/timing.cache
  jetson-rt build-engine model.onnx --precision int8 --calib-dir calib/ --calib-cache model.calib
  jetson-rt build-engine model.onnx --shapes input:1x3x224x224 --if-changed --json
  jetson-rt build-engine model.onnx --backend onnxruntime --shapes input:1x3x224x224
  jetson-rt build-engine model.onnx --backend onnxruntime --shapes image:0:1x224x224x3 \
      --ort-optimization portable

A --shapes item splits on its last ':', so input names may hold ':' (image:0).

With --if-changed nothing is built when the manifest beside the output records
the same model, flags and platform and the output's sha256 matches it; --json
then prints {"changed": false, ...}, which Ansible reads for changed_when.
"""


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "build-engine",
        help="build a TensorRT engine or an ONNX Runtime model from ONNX, with a manifest",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", type=Path, help="the ONNX model")
    parser.add_argument(
        "-o", "--output", type=Path, help="artifact path (default: MODEL.engine / MODEL.ort.onnx)"
    )
    parser.add_argument("--backend", choices=("tensorrt", "onnxruntime"), default="tensorrt")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="TensorRT layer precision (default fp16; best = fp16 + int8); onnxruntime: fp32",
    )
    shapes = parser.add_argument_group("input shapes (NAME:DxDx...,NAME:...)")
    shapes.add_argument("--shapes", help="min = opt = max shapes (a fixed shape)")
    shapes.add_argument("--min-shapes", help="smallest shapes of the optimisation profile")
    shapes.add_argument("--opt-shapes", help="shapes TensorRT tunes for")
    shapes.add_argument("--max-shapes", help="largest shapes of the optimisation profile")
    trt = parser.add_argument_group("TensorRT")
    trt.add_argument("--workspace", type=int, default=1024, metavar="MIB", help="default 1024")
    trt.add_argument(
        "--builder-optimization-level",
        type=int,
        default=3,
        choices=range(6),
        metavar="0-5",
        help="TensorRT's search effort (default 3)",
    )
    trt.add_argument("--dla-core", type=int, help="build for this DLA core (not on Orin Nano)")
    trt.add_argument(
        "--allow-gpu-fallback",
        action="store_true",
        help="with --dla-core: run layers DLA cannot on the GPU",
    )
    trt.add_argument("--calib-dir", type=Path, help="folder of .npy samples for INT8 calibration")
    trt.add_argument(
        "--calib-cache", type=Path, help="calibration cache to reuse (written after calibrating)"
    )
    trt.add_argument("--calib-batch-size", type=int, default=1)
    trt.add_argument(
        "--timing-cache", type=Path, help="timing cache to load, extend and save (atomically)"
    )
    ort = parser.add_argument_group("ONNX Runtime")
    ort.add_argument(
        "--ort-optimization",
        choices=ORT_OPTIMIZATIONS,
        default="all",
        help="graph optimisation level of the saved model (default all: fastest, but its "
        "layout transforms assume this host's CPU features, recorded in the manifest; "
        "portable = extended: runs on any CPU of the same architecture)",
    )
    parser.add_argument(
        "--if-changed",
        action="store_true",
        help="build only if the manifest does not match (idempotent for Ansible)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> BuildOptions:
    fixed = parse_shapes(args.shapes, option="--shapes") if args.shapes else {}
    min_shapes = parse_shapes(args.min_shapes, option="--min-shapes") if args.min_shapes else {}
    opt_shapes = parse_shapes(args.opt_shapes, option="--opt-shapes") if args.opt_shapes else {}
    max_shapes = parse_shapes(args.max_shapes, option="--max-shapes") if args.max_shapes else {}
    overlap = set(fixed) & (set(min_shapes) | set(opt_shapes) | set(max_shapes))
    if overlap:
        raise ConfigError(
            f"{', '.join(sorted(overlap))} given both in --shapes and in --min/opt/max-shapes: "
            "use one or the other"
        )
    precision: Precision = args.precision or ("fp16" if args.backend == "tensorrt" else "fp32")
    model = Path(args.model)
    return BuildOptions(
        model=model,
        output=args.output or BuildOptions.default_output(model, args.backend),
        backend=args.backend,
        precision=precision,
        min_shapes={**min_shapes, **fixed},
        opt_shapes={**opt_shapes, **fixed},
        max_shapes={**max_shapes, **fixed},
        workspace_mib=args.workspace,
        builder_optimization_level=args.builder_optimization_level,
        dla_core=args.dla_core,
        allow_gpu_fallback=args.allow_gpu_fallback,
        calib_dir=args.calib_dir,
        calib_cache=args.calib_cache,
        calib_batch_size=args.calib_batch_size,
        timing_cache=args.timing_cache,
        ort_optimization=args.ort_optimization,
    )


def check_output_path(path: Path) -> None:
    """Refuse, before any work, an --output that cannot be written as a file."""
    if path.is_dir():
        raise ConfigError(f"--output {path} is a folder: name the artifact file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--output {path}: {parent} is not a folder")
            break


def run(args: argparse.Namespace) -> int:
    from jetson_rt.engine.build import build

    options = options_from_args(args)
    check_output_path(options.output)
    result = build(options, if_changed=args.if_changed)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif result.changed:
        print(f"built {result.artifact} in {result.build_seconds} s")
        print(f"manifest {result.manifest}")
    else:
        print(f"{result.artifact} is up to date with its manifest: nothing built")
    return 0
