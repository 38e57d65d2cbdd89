"""Q/DQ INT8 (ModelOpt ONNX PTQ, `jetson-rt quantize`) against FP32, under ONNX Runtime on the CPU.

For each real model of the corpus (tests/realmodels: PyPI wheels that ship
trained models), in one run:

1. calibration: --calib seeded inputs of the corpus's kind (text pages for the
   OCR models, uniform images for YOLO) saved as .npy, quantized with
   ``jetson-rt quantize`` in the ModelOpt venv (tests/quantize_venv.py);
2. accuracy on --eval other seeded inputs: top-1 agreement with FP32 (the
   classifier's class per input; YOLO's class of the 20 anchors FP32 scores highest)
   and the max and mean abs difference of every output;
3. speed: FP32 and Q/DQ sessions (ONNX Runtime CPU provider, same session
   options) run alternately on the same inputs; median and p90 latency, ratio.

What this cannot show: TensorRT's INT8 speed or accuracy on an Orin (no GPU
here). ONNX Runtime runs the Q/DQ graph with its own int8 kernels on this CPU.

    .venv/bin/python benchmarks/qdq_int8.py [--models ocr_cls yolo_det] [--calib 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from tests.quantize_venv import run_quantize  # noqa: E402
from tests.realmodels.corpus import BY_NAME, fetch  # noqa: E402


def session(path: Path) -> Any:
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def top1(name: str, want: Any, got: Any) -> list[bool]:
    """Whether Q/DQ gives FP32's answer: the class of a classifier, per input; for the
    YOLOv8 head ([1, 4 + classes, anchors]), the class of the 20 anchors FP32 scores
    highest (seeded noise images make few confident boxes)."""
    if name == "yolo_det":
        scores_want, scores_got = want[0, 4:, :], got[0, 4:, :]
        anchors = np.argsort(scores_want.max(axis=0))[-20:]
        same = scores_want[:, anchors].argmax(axis=0) == scores_got[:, anchors].argmax(axis=0)
        return [bool(x) for x in same]
    return [bool(np.argmax(want) == np.argmax(got))]


def measure(name: str, calib: int, evals: int, runs: int) -> dict[str, Any]:
    model = BY_NAME[name]
    fp32 = fetch(model)
    with tempfile.TemporaryDirectory(prefix="qdq-bench-") as tmp:
        calib_dir = Path(tmp) / "calib"
        calib_dir.mkdir()
        (input_name,) = list(model.shapes)[:1]
        for index in range(calib):
            np.save(calib_dir / f"{index:04d}.npy", model.feeds(seed=10_000 + index)[input_name])
        qdq = Path(tmp) / f"{name}.qdq.onnx"
        started = time.monotonic()
        result = run_quantize(str(fp32), "--calib-dir", str(calib_dir), "-o", str(qdq), "--json")
        quantize_s = time.monotonic() - started
        if result.returncode != 0:
            sys.exit(f"quantize {name} failed:\n{result.stderr[-3000:]}")
        ref, q = session(fp32), session(qdq)
        names = [o.name for o in ref.get_outputs()]
        agreements: list[bool] = []
        max_abs, mean_abs = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0.0)
        feeds = [model.feeds(seed=seed) for seed in range(evals)]
        for feed in feeds:
            want = dict(zip(names, ref.run(names, feed), strict=True))
            got = dict(zip(names, q.run(names, feed), strict=True))
            agreements += top1(name, want[names[0]], got[names[0]])
            for key in names:
                diff = np.abs(got[key].astype(np.float64) - want[key])
                max_abs[key] = max(max_abs[key], float(np.max(diff)))
                mean_abs[key] += float(np.mean(diff)) / len(feeds)
        times: dict[str, list[float]] = {"fp32": [], "qdq": []}
        for sess in (ref, q):  # warm-up
            for _ in range(5):
                sess.run(names, feeds[0])
        for index in range(runs):
            feed = feeds[index % len(feeds)]
            for label, sess in (("fp32", ref), ("qdq", q)):
                started = time.perf_counter()
                sess.run(names, feed)
                times[label].append((time.perf_counter() - started) * 1000)
        sizes = (fp32.stat().st_size, qdq.stat().st_size)
    return {
        "name": name,
        "kind": model.kind,
        "quantize_s": quantize_s,
        "top1": sum(agreements) / max(len(agreements), 1),
        "top1_n": len(agreements),
        "max_abs": max_abs,
        "mean_abs": mean_abs,
        "fp32_ms": statistics.median(times["fp32"]),
        "qdq_ms": statistics.median(times["qdq"]),
        "fp32_p90": statistics.quantiles(times["fp32"], n=10)[-1],
        "qdq_p90": statistics.quantiles(times["qdq"], n=10)[-1],
        "sizes": sizes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=["ocr_cls", "yolo_det"])
    parser.add_argument("--calib", type=int, default=32, help="calibration samples")
    parser.add_argument("--eval", type=int, default=64, help="evaluation inputs")
    parser.add_argument("--runs", type=int, default=100, help="timed runs per session")
    args = parser.parse_args()
    rows = [measure(name, args.calib, args.eval, args.runs) for name in args.models]
    import onnxruntime as ort

    print(
        f"ONNX Runtime {ort.__version__} CPU, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; calibration {args.calib} inputs, evaluation {args.eval}"
    )
    for row in rows:
        print(f"\n{row['name']} ({row['kind']}), quantized in {row['quantize_s']:.1f} s")
        print(
            f"  top-1 agreement with FP32: {row['top1'] * 100:.1f} % of {row['top1_n']} "
            "(inputs; for yolo_det, the 20 top-scored anchors of each input)"
        )
        for output, value in row["max_abs"].items():
            print(f"  {output}: max abs difference {value:.4g}, mean {row['mean_abs'][output]:.4g}")
        print(
            f"  latency median fp32 {row['fp32_ms']:.2f} ms, q/dq {row['qdq_ms']:.2f} ms "
            f"(p90 {row['fp32_p90']:.2f} / {row['qdq_p90']:.2f}); "
            f"q/dq / fp32 = {row['qdq_ms'] / row['fp32_ms']:.2f}"
        )
        print(f"  file size fp32 {row['sizes'][0]} B, q/dq {row['sizes'][1]} B")
    return 0


if __name__ == "__main__":
    sys.exit(main())
