"""Runner overhead on a GPU: the runner's loop vs a raw CUDA graph replay of the same work.

This measures the runner, not TensorRT. TensorRT exists only on Jetsons; the
workload is ``benchmarks/gpu_workload.py``'s :class:`GpuWorkload`, a Backend
over ``jetson_rt.cuda`` doing about ``--target-ms`` of real GPU work per
inference (pinned H2D copy, NVRTC kernels captured in a CUDA graph, D2H copy,
stage events), the same shape of work as the tensorrt backend. In one process:

- raw: the whole inference (copies and kernels) as one CUDA graph, replayed
  with no Python between stages (``raw_graph_replay``): the floor;
- bare: the Backend protocol loop (``stage_in``/``execute``/``stage_out``/
  ``synchronize``) with nothing else, for reference;
- runner: :class:`jetson_rt.runner.service.Runner`'s loop over the same
  workload object (input, stage calls, timing, histograms, SLA, tiers,
  watchdog beat); its ``total`` stage is input to result.

Blocks of the three alternate. Reported: runner p50 / raw p50 (target <= 1.05),
p99/p50 of each (runner target <= 1.10), device memory allocated by the
runner's loop after warm-up (``cudaMemGetInfo`` before and after 10^4
inferences, target 0), and the runner's host enqueue time with the workload's
CUDA graph on vs off.

    PYTHONPATH=runtime:benchmarks python benchmarks/runner_gpu.py [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

from gpu_workload import GpuWorkload, raw_graph_replay, staged_loop
from jetson_rt.backends.base import Backend
from jetson_rt.cuda import device_info, runtime
from jetson_rt.runner.config import ModelConfig, parse_config
from jetson_rt.runner.histogram import LatencyHistogram
from jetson_rt.runner.service import Runner


def mem_free_bytes() -> int:
    rt = runtime()
    error, free, _total = rt.cudaMemGetInfo()
    if error != rt.cudaError_t.cudaSuccess:
        raise RuntimeError(f"cudaMemGetInfo failed: {error}")
    return int(free)


def runner_over(workload: GpuWorkload) -> Runner:
    """A Runner whose only model is ``workload`` (the factory hands over the object)."""
    doc = {
        "schema_version": 1,
        # The factory below ignores backend and path: the workload stands in for an engine.
        # verify: false: no engine file, so no manifest to check (the runner logs it).
        "models": {
            "work": {
                "backend": "tensorrt",
                "path": "gpu_workload",
                "device": "gpu",
                "verify": False,
            }
        },
        "tasks": [{"name": "gpu", "tiers": ["work"], "deadline_ms": 100}],
        "warmup": {"min_iterations": 100, "max_iterations": 2000, "window": 50, "max_cv": 0.05},
        "rt": {"priority": 0, "cpus": "all", "mlockall": False},
        "thermal": {"enabled": False},
    }

    def factory(model: ModelConfig) -> Backend:
        del model
        return cast("Backend", workload)  # a Backend by structure; its name is its own

    runner = Runner(parse_config(doc), backend_factory=factory)
    runner.prepare()
    return runner


def summary(values_ms: list[float]) -> dict[str, float]:
    array = np.asarray(values_ms)
    p50, p99 = np.percentile(array, [50, 99])
    return {"p50_ms": float(p50), "p99_ms": float(p99), "max_ms": float(array.max())}


def measure(target_ms: float, rounds: int, block: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with GpuWorkload(target_ms=target_ms, use_cuda_graph=True) as workload:
        results["device"] = workload.device_name
        results["graph_captured"] = workload.uses_cuda_graph
        results["kernel_iterations"] = workload.iterations
        runner = runner_over(workload)
        scheduler = runner.scheduler
        assert scheduler is not None
        task = runner.tasks[0]
        scheduler.run(max_inferences=task.inferences + 500)

        raw_p50: list[float] = []
        raw_p99: list[float] = []
        raw_max: list[float] = []
        bare_p50: list[float] = []
        runner_hist = LatencyHistogram()
        enqueue_hist = LatencyHistogram()
        ratios: list[float] = []
        gc.collect()
        gc.disable()
        try:
            for _ in range(rounds):
                raw = raw_graph_replay(workload, replays=block, warmup=20)
                bare = staged_loop(workload, count=block, warmup=20)
                task.hist["total"].reset()
                task.hist["enqueue"].reset()
                scheduler.run(max_inferences=task.inferences + block)
                round_p50 = task.hist["total"].estimate_ns(50) / 1e6
                ratios.append(round_p50 / raw.host_p50_ms)
                raw_p50.append(raw.host_p50_ms)
                raw_p99.append(raw.host_p99_ms)
                raw_max.append(raw.host_max_ms)
                bare_p50.append(bare["host_p50_ms"])
                runner_hist.merge(task.hist["total"])
                enqueue_hist.merge(task.hist["enqueue"])
        finally:
            gc.enable()

        # Device allocations by the loop after warm-up: free memory before and after 10^4.
        free_before = mem_free_bytes()
        scheduler.run(max_inferences=task.inferences + 10_000)
        free_after = mem_free_bytes()
        stages = {
            stage: task.hist[stage].summary_ms() for stage in ("h2d", "infer", "d2h", "total")
        }
        runner.release()  # freezes results; the workload itself is closed by ``with``

        # Interpolated inside buckets: the raw side is exact, so no whole-bucket steps.
        runner_p50 = runner_hist.estimate_ns(50) / 1e6
        runner_p99 = runner_hist.estimate_ns(99) / 1e6
        raw_median_p50 = float(np.median(raw_p50))
        raw_median_p99 = float(np.median(raw_p99))
        results.update(
            {
                "rounds": rounds,
                "block": block,
                "raw_graph_p50_ms": raw_median_p50,
                "raw_graph_p99_ms": raw_median_p99,
                "raw_graph_max_ms": float(max(raw_max)),
                "bare_protocol_p50_ms": float(np.median(bare_p50)),
                "runner_p50_ms": runner_p50,
                "runner_p99_ms": runner_p99,
                "runner_max_ms": runner_hist.max_ns / 1e6,
                "ratio_runner_p50_over_raw_p50": runner_p50 / raw_median_p50,
                "ratio_median_of_rounds": float(np.median(ratios)),
                "raw_p99_over_p50": raw_median_p99 / raw_median_p50,
                "runner_p99_over_p50": runner_p99 / runner_p50,
                "device_bytes_allocated_over_1e4": free_before - free_after,
                "runner_stage_ms": stages,
                "enqueue_graph_on_p50_us": enqueue_hist.estimate_ns(50) / 1e3,
            }
        )

    results.update(graph_off(target_ms, results["kernel_iterations"], rounds * block))
    results["enqueue_ratio_graph_on_over_off"] = (
        results["enqueue_graph_on_p50_us"] / results["enqueue_graph_off_p50_us"]
    )
    return results


def graph_off(target_ms: float, iterations: int, count: int) -> dict[str, float]:
    """The same runner loop with the workload's kernels enqueued one by one (no graph)."""
    with GpuWorkload(target_ms=target_ms, use_cuda_graph=False, iterations=iterations) as plain:
        runner = runner_over(plain)
        scheduler = runner.scheduler
        assert scheduler is not None
        task = runner.tasks[0]
        scheduler.run(max_inferences=task.inferences + 500)
        task.hist["enqueue"].reset()
        task.hist["total"].reset()
        scheduler.run(max_inferences=task.inferences + count)
        result = {
            "enqueue_graph_off_p50_us": task.hist["enqueue"].estimate_ns(50) / 1e3,
            "runner_graph_off_p50_ms": task.hist["total"].estimate_ns(50) / 1e6,
        }
        runner.release()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target-ms", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    info = device_info(0)
    started = time.monotonic()
    results = measure(args.target_ms, args.rounds, args.block)
    results["compute_capability"] = list(info.compute_capability)
    results["python"] = sys.version.split()[0]
    results["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    results["wall_s"] = round(time.monotonic() - started, 1)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    print()
    print("This measures the runner's loop on a GPU workload, not TensorRT.")
    print(f"device: {results['device']}")
    print(
        f"raw graph p50 {results['raw_graph_p50_ms']:.4f} ms | bare protocol p50 "
        f"{results['bare_protocol_p50_ms']:.4f} ms | runner p50 {results['runner_p50_ms']:.4f} ms"
    )
    print(
        f"runner/raw p50: {results['ratio_runner_p50_over_raw_p50']:.3f} "
        f"(median of rounds {results['ratio_median_of_rounds']:.3f}; target <= 1.05)"
    )
    print(
        f"p99/p50: raw {results['raw_p99_over_p50']:.3f}, runner "
        f"{results['runner_p99_over_p50']:.3f} (target <= 1.10)"
    )
    print(
        f"device bytes allocated over 1e4 inferences: "
        f"{results['device_bytes_allocated_over_1e4']} (target 0)"
    )
    print(
        f"host enqueue p50: graph on {results['enqueue_graph_on_p50_us']:.1f} us, off "
        f"{results['enqueue_graph_off_p50_us']:.1f} us, ratio "
        f"{results['enqueue_ratio_graph_on_over_off']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
