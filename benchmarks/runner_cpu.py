"""Runner overhead on the CPU: bare ONNX Runtime IOBinding vs the runner's loop.

In one process, on the same model with the same session settings:

- bare: ``session.run_with_iobinding(binding)`` in a Python loop, each call timed
  with ``time.perf_counter_ns`` (the least a Python runner can do);
- runner: :class:`jetson_rt.runner.service.Runner`'s scheduler loop over the
  ``onnxruntime`` backend (input fill, stage calls, publish copy, eight stage
  histograms, SLA window, tier controller, watchdog beat), whose ``total``
  stage is the time from input fill to published result.

Blocks of each alternate so that clock or thermal drift hits both alike. Both
are summarised with the runner's histogram, interpolated inside buckets
(``estimate_ns``) so that ratios are not quantised to whole buckets, and the
bare p50 also exactly from its samples, as a check on the interpolation.
Then, with tracemalloc on from before warm-up, the traced-memory growth over
10^4 runner inferences after warm-up (target 0 B).

Two models: ``tiny`` (the tests' conv-bn-relu, tens of microseconds, where any
per-inference overhead shows) and ``medium`` (two 3x3 convolutions on
1x3x64x64, about a millisecond, the scale of a real-time vision model on a
small core).

    python benchmarks/runner_cpu.py [--rounds 20] [--block 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from jetson_rt.backends.onnxruntime import OnnxRuntimeBackend, import_onnxruntime
from jetson_rt.runner.config import parse_config
from jetson_rt.runner.histogram import LatencyHistogram
from jetson_rt.runner.service import Runner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def write_medium_model(path: Path) -> Path:
    """Conv 3x3 (3->16) -> Relu -> Conv 3x3 (16->16) -> Relu on 1x3x64x64."""
    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((16, 3, 3, 3)) * 0.2).astype(np.float32)
    w2 = (rng.standard_normal((16, 16, 3, 3)) * 0.1).astype(np.float32)
    b = np.zeros(16, dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w1", "b"], ["c1"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c1"], ["r1"]),
            helper.make_node("Conv", ["r1", "w2", "b"], ["c2"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c2"], ["output"]),
        ],
        "medium",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 16, 64, 64])],
        initializer=[
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(w2, "w2"),
            numpy_helper.from_array(b, "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))
    return path


class Bare:
    """The least a Python loop can do: run_with_iobinding on pre-bound numpy arrays."""

    def __init__(self, model: Path) -> None:
        ort = import_onnxruntime()
        options = OnnxRuntimeBackend(model).session_options()  # identical session settings
        self.session = ort.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        rng = np.random.default_rng(0)
        self.binding = self.session.io_binding()
        self.keep: list[Any] = []
        for arg in self.session.get_inputs():
            array = rng.standard_normal([int(d) for d in arg.shape]).astype(np.float32)
            value = ort.OrtValue.ortvalue_from_numpy(array, "cpu", 0)
            self.keep += [array, value]
            self.binding.bind_ortvalue_input(arg.name, value)
        for arg, result in zip(
            self.session.get_outputs(),
            self.session.run(None, {a.name: self.keep[0] for a in self.session.get_inputs()}),
            strict=True,
        ):
            array = np.zeros_like(result)
            value = ort.OrtValue.ortvalue_from_numpy(array, "cpu", 0)
            self.keep += [array, value]
            self.binding.bind_ortvalue_output(arg.name, value)
        self.run_options = ort.RunOptions()

    def run(self, count: int, hist: LatencyHistogram, samples: list[int]) -> None:
        session, binding, options = self.session, self.binding, self.run_options
        clock = time.perf_counter_ns
        for _ in range(count):
            start = clock()
            session.run_with_iobinding(binding, options)
            elapsed = clock() - start
            hist.record(elapsed)
            samples.append(elapsed)


def runner_for(model: Path) -> Runner:
    doc = {
        "schema_version": 1,
        "models": {"m": {"backend": "onnxruntime", "path": str(model)}},
        "tasks": [{"name": "bench", "tiers": ["m"], "deadline_ms": 100}],
        "warmup": {"min_iterations": 200, "max_iterations": 2000, "window": 50, "max_cv": 0.2},
        "rt": {"priority": 0, "cpus": "all", "mlockall": False},
        "thermal": {"enabled": False},
    }
    runner = Runner(parse_config(doc))
    runner.prepare()
    return runner


def compare(model: Path, rounds: int, block: int) -> dict[str, Any]:
    bare = Bare(model)
    runner = runner_for(model)
    scheduler = runner.scheduler
    assert scheduler is not None
    task = runner.tasks[0]
    bare_hist = LatencyHistogram()
    runner_hist = LatencyHistogram()
    infer_hist = LatencyHistogram()
    bare_samples: list[int] = []
    round_ratios: list[float] = []
    warm_hist = LatencyHistogram()
    bare.run(block, warm_hist, [])  # warm the bare path too
    scheduler.run(max_inferences=task.inferences + block)
    counted = task.inferences
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            round_bare = LatencyHistogram()
            bare.run(block, round_bare, bare_samples)
            task.hist["total"].reset()
            task.hist["infer"].reset()
            scheduler.run(max_inferences=task.inferences + block)
            round_runner = task.hist["total"]
            round_ratios.append(round_runner.estimate_ns(50) / round_bare.estimate_ns(50))
            bare_hist.merge(round_bare)
            runner_hist.merge(round_runner)
            infer_hist.merge(task.hist["infer"])
    finally:
        gc.enable()
    assert task.inferences - counted == rounds * block

    # Allocation check: trace from before a fresh warm-up, then 10^4 inferences. The
    # histograms restart under tracing so that the ints they hold (min, max) are traced.
    gc.collect()
    tracemalloc.start()
    try:
        for hist in task.hist.values():
            hist.reset()
        scheduler.run(max_inferences=task.inferences + 1000)
        before = tracemalloc.take_snapshot()
        scheduler.run(max_inferences=task.inferences + 10_000)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diff = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "lineno")
    growth = sum(stat.size_diff for stat in diff)
    runner.release()

    def pct(hist: LatencyHistogram, p: float) -> float:
        return hist.estimate_ns(p) / 1e3

    exact = np.asarray(bare_samples, dtype=np.float64)
    result = {
        "model": model.name,
        "inferences_each": rounds * block,
        "bare_p50_us": pct(bare_hist, 50),
        "bare_p50_exact_us": float(np.percentile(exact, 50) / 1e3),
        "bare_p99_us": pct(bare_hist, 99),
        "runner_p50_us": pct(runner_hist, 50),
        "runner_p99_us": pct(runner_hist, 99),
        "runner_infer_p50_us": pct(infer_hist, 50),
        "p50_ratio_runner_over_bare": pct(runner_hist, 50) / pct(bare_hist, 50),
        "p50_ratio_median_of_rounds": float(np.median(round_ratios)),
        "rounds": rounds,
        "bare_p99_over_p50": pct(bare_hist, 99) / pct(bare_hist, 50),
        "runner_p99_over_p50": pct(runner_hist, 99) / pct(runner_hist, 50),
        "tracemalloc_growth_bytes_over_1e4": growth,
        "tracemalloc_top": [str(stat) for stat in diff[:3] if stat.size_diff],
    }
    return {key: round(v, 4) if isinstance(v, float) else v for key, v in result.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--block", type=int, default=1000)
    parser.add_argument("--model", choices=("tiny", "medium", "both"), default="both")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import onnx_models  # type: ignore[import-not-found]  # tests/onnx_models.py

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = []
        if args.model in ("tiny", "both"):
            models.append(onnx_models.write_conv_bn_relu(folder).path)
        if args.model in ("medium", "both"):
            models.append(write_medium_model(folder / "medium_conv.onnx"))
        for model in models:
            results.append(compare(model, args.rounds, args.block))
    ort = import_onnxruntime()
    header = {
        "python": sys.version.split()[0],
        "onnxruntime": ort.__version__,
        "cpus": os.cpu_count(),
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps({"env": header, "results": results}, indent=2))
    print()
    print(
        f"{'model':<20}{'bare p50':>10}{'runner p50':>12}{'ratio':>7}{'rounds':>8}"
        f"{'bare p99/p50':>14}{'runner p99/p50':>16}{'alloc B/1e4':>13}"
    )
    for r in results:
        print(
            f"{r['model']:<20}{r['bare_p50_us']:>8.1f}us{r['runner_p50_us']:>10.1f}us"
            f"{r['p50_ratio_runner_over_bare']:>7.3f}{r['p50_ratio_median_of_rounds']:>8.3f}"
            f"{r['bare_p99_over_p50']:>14.2f}"
            f"{r['runner_p99_over_p50']:>16.2f}{r['tracemalloc_growth_bytes_over_1e4']:>13}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"env": header, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
