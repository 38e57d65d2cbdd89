"""GPU pre/post-processing against the CPU paths, and the whole pipeline in the runner.

In one process, on the present GPU (TensorRT exists only on Jetsons, so the
model in the whole-pipeline part is a synthetic NVRTC kernel of calibrated
duration reading the 640x640 fp16 input and writing a YOLOv8-shaped
``[1, 84, 8400]`` head; it is labelled as such in the output):

- pre: a 1920x1080 NV12 frame -> 640x640 fp16 CHW letterbox. GPU (pinned H2D
  copy + kernel, one graph, host-timed to completion) against the numpy lane
  and against OpenCV (cvtColor + resize + copyMakeBorder + normalise + CHW +
  fp16); plus the kernel's device time inside the graph (events).
- post: decode + class-aware NMS of 8400 candidates x 80 classes. GPU (graph:
  decode, rank, mask, select, small D2H) against torchvision's CPU path
  (decode with torch, ``torchvision.ops.batched_nms``) and the numpy lane; µs
  per frame, for a typical head (a few hundred candidates above 0.25) and a
  worst case (all 8400 above it).
- pipeline: frame copy + pre + model + post as one graph, replayed raw vs
  driven by :class:`jetson_rt.runner.service.Runner`'s loop through the
  Backend protocol; p50 ratio (target <= 1.05), p99/p50 (target <= 1.10) and
  device memory allocated over 10^4 frames (target 0).

``--cpu-only`` measures only the numpy lane (and OpenCV/torchvision where
installed) on this machine's CPU.

    PYTHONPATH=runtime:benchmarks python benchmarks/prepost_gpu.py [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from jetson_rt.prepost.cpu import CpuPostprocess, CpuPreprocess
from jetson_rt.prepost.spec import PostprocessSpec, PreprocessSpec, letterbox_box

PRE = PreprocessSpec(
    format="nv12",
    width=1920,
    height=1080,
    resize="letterbox",
    size=(640, 640),
    pad_value=114.0,
    crop=None,
    scale=1.0 / 255.0,
    mean=(0.0,),
    std=(1.0,),
    channels="rgb",
    layout="chw",
    dtype="fp16",
)
POST = PostprocessSpec(kind="detect", score_threshold=0.25, iou_threshold=0.45, max_det=300)
ANCHORS, CLASSES = 8400, 80
HEAD_SHAPE = (1, 4 + CLASSES, ANCHORS)

MODEL_SOURCE = rb"""
extern "C" __global__ void synthetic_model(const unsigned short* input, const float* head,
                                           float* out, int anchors, int channels,
                                           int pixels, int iterations)
{
    int a = blockIdx.x * blockDim.x + threadIdx.x;
    if (a >= anchors) return;
    // Read a slice of the input (a data dependency on pre-processing) ...
    float acc = 0.0f;
    for (int k = a; k < pixels; k += anchors) {
        unsigned short h = input[k];
        float f;
        asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
        acc += f;
    }
    // ... spend a calibrated amount of arithmetic ...
    float x = acc;
    for (int k = 0; k < iterations; ++k) x = fmaf(x, 0.999f, 0.001f * __sinf(x));
    // ... and write the fixed head, perturbed far below any threshold.
    float eps = 1e-12f * x;
    for (int c = 0; c < channels; ++c) {
        long long i = (long long)c * anchors + a;
        out[i] = head[i] + (c >= 4 ? eps : 0.0f);
    }
}
"""


def yolo_head(rng: np.random.Generator, candidates: int) -> npt.NDArray[np.float32]:
    """A YOLOv8-like ``[1, 84, 8400]`` head: ``candidates`` anchors score above 0.25."""
    head = np.zeros(HEAD_SHAPE, dtype=np.float32)
    xy = rng.uniform(0, 600, (ANCHORS, 2))
    wh = rng.uniform(8, 200, (ANCHORS, 2))
    head[0, 0:2] = (xy + wh / 2).T
    head[0, 2:4] = wh.T
    head[0, 4:] = rng.uniform(0, 0.2, (CLASSES, ANCHORS))
    chosen = rng.choice(ANCHORS, candidates, replace=False)
    # Objects: clusters of overlapping boxes, as a real head gives around each object.
    head[0, 4 + rng.integers(0, CLASSES, candidates), chosen] = rng.uniform(0.3, 0.95, candidates)
    centres = rng.uniform(50, 590, (max(1, candidates // 8), 2))
    pick = centres[rng.integers(0, len(centres), candidates)]
    # (advanced indices around a slice: the indexed shape is (candidates, 2))
    head[0, 0:2, chosen] = pick + rng.normal(0, 6, pick.shape)
    return head


def per_call_us(fn: Callable[[], None], count: int, warmup: int = 5) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = np.empty(count, dtype=np.float64)
    for index in range(count):
        t0 = time.perf_counter_ns()
        fn()
        times[index] = (time.perf_counter_ns() - t0) / 1e3
    p50, p99 = np.percentile(times, [50, 99])
    return {"p50_us": float(p50), "p99_us": float(p99), "count": count}


def opencv_pre(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.float16]:
    import cv2

    top, left, inner_h, inner_w = letterbox_box(PRE)
    rgb = cv2.cvtColor(frame, cv2.COLOR_YUV2RGB_NV12)
    image = cv2.resize(rgb, (inner_w, inner_h), interpolation=cv2.INTER_LINEAR)
    image = cv2.copyMakeBorder(
        image,
        top,
        640 - inner_h - top,
        left,
        640 - inner_w - left,
        cv2.BORDER_CONSTANT,
        value=(114, 114, 114),
    )
    tensor = image.transpose(2, 0, 1)[None].astype(np.float32) * np.float32(1 / 255)
    return cast("npt.NDArray[np.float16]", tensor.astype(np.float16))


def torchvision_post(raw: npt.NDArray[np.float32]) -> Any:
    """The usual Ultralytics-style CPU path: decode with torch, then batched_nms."""
    import torch
    from torchvision.ops import batched_nms

    table = torch.from_numpy(raw[0]).T
    scores, classes = table[:, 4:].max(dim=1)
    keep = scores > POST.score_threshold
    boxes = table[keep, :4]
    xyxy = torch.cat([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], dim=1)
    kept = batched_nms(xyxy, scores[keep], classes[keep], POST.iou_threshold)[: POST.max_det]
    return torch.cat([xyxy[kept], scores[keep][kept, None], classes[keep][kept, None]], dim=1)


def cpu_part(frames: int, rng: np.random.Generator) -> dict[str, Any]:
    result: dict[str, Any] = {}
    frame = rng.integers(0, 256, PRE.frame_shape, dtype=np.uint8)
    pre = CpuPreprocess(PRE)
    out = np.empty(PRE.tensor_shape, dtype=np.float16)
    result["numpy_pre"] = per_call_us(lambda: pre.run(frame, out), frames)
    try:
        result["opencv_pre"] = per_call_us(lambda: opencv_pre(frame), frames)
    except ImportError:
        result["opencv_pre"] = None
    for name, count in (("typical", 300), ("worst", ANCHORS)):
        raw = yolo_head(rng, count)
        post = CpuPostprocess(POST, HEAD_SHAPE)
        result[f"numpy_post_{name}"] = per_call_us(
            lambda raw=raw, post=post: post.run(raw), max(5, frames // (4 if count > 1000 else 1))
        )
        try:
            result[f"torchvision_post_{name}"] = per_call_us(
                lambda raw=raw: torchvision_post(raw), frames
            )
        except ImportError:
            result[f"torchvision_post_{name}"] = None
    return result


# --- GPU ---------------------------------------------------------------------------


def mem_free_bytes() -> int:
    from jetson_rt.cuda import check, runtime

    return int(check("cudaMemGetInfo", runtime().cudaMemGetInfo())[0])


class PipelineWorkload:
    """Backend-protocol object over a :class:`~jetson_rt.prepost.gpu.GpuPipeline`.

    The runner writes the NV12 frame into ``host_inputs()['frame']`` (the
    pinned buffer the graph copies from); ``execute`` replays the graph;
    ``host_outputs()`` are the post-processed ``count`` and ``detections``.
    """

    name = "tensorrt"

    def __init__(self, target_ms: float, head: npt.NDArray[np.float32]) -> None:
        from jetson_rt.backends.base import TensorSpec
        from jetson_rt.cuda import DeviceBuffer, Stream, device_info
        from jetson_rt.cuda.nvrtc import Kernel, Module
        from jetson_rt.prepost.gpu import GpuPipeline, _upload

        info = device_info(0)
        self.device_name = info.name
        self.stream = Stream()
        self.module = Module(MODEL_SOURCE, "synthetic_model.cu", info.compute_capability)
        pixels = int(np.prod(PRE.tensor_shape))
        self.binding_in = DeviceBuffer(pixels * 2)
        self.binding_out = DeviceBuffer(head.nbytes)
        self.head = _upload(head)
        self.model = Kernel(
            self.module,
            "synthetic_model",
            ((ANCHORS + 127) // 128, 1, 1),
            (128, 1, 1),
            args=[
                ("ptr", self.binding_in.ptr),
                ("ptr", self.head.ptr),
                ("ptr", self.binding_out.ptr),
                ("i32", ANCHORS),
                ("i32", 4 + CLASSES),
                ("i32", pixels),
                ("i32", 16),
            ],
        )
        self.model_iterations = self._calibrate(target_ms)
        self.pipeline = GpuPipeline(
            self.stream,
            PRE,
            POST,
            input_ptr=self.binding_in.ptr,
            output_ptr=self.binding_out.ptr,
            output_shape=HEAD_SHAPE,
            infer=self.model.launch,
        )
        assert self.pipeline.frame is not None
        self._in = (TensorSpec("frame", PRE.frame_shape, np.dtype(np.uint8)),)
        self._out = (
            TensorSpec("count", (1,), np.dtype(np.int32)),
            TensorSpec("detections", (POST.max_det, 6), np.dtype(np.float32)),
        )
        self._stage_ms = {"h2d": float("nan"), "infer": float("nan"), "d2h": float("nan")}

    def _calibrate(self, target_ms: float) -> int:
        from jetson_rt.cuda import Event

        iterations = 16
        with Event() as start, Event() as end:
            for _ in range(8):
                self.model.set(6, iterations)
                self.model.launch(self.stream)
                start.record(self.stream)
                self.model.launch(self.stream)
                end.record(self.stream)
                end.synchronize()
                elapsed = max(end.elapsed_ms(start), 1e-3)
                scale = target_ms / elapsed
                iterations = max(1, round(iterations * scale))
                if 0.95 < scale < 1.05:
                    break
        self.model.set(6, iterations)
        return iterations

    # Backend protocol
    def activate(self) -> None:
        pass

    def deactivate(self) -> None:
        pass

    @property
    def inputs(self) -> Any:
        return self._in

    @property
    def outputs(self) -> Any:
        return self._out

    def host_inputs(self) -> dict[str, Any]:
        assert self.pipeline.frame is not None
        return {"frame": self.pipeline.frame.array}

    def host_outputs(self) -> dict[str, Any]:
        return self.pipeline.outputs

    def stage_in(self) -> None:
        pass

    def execute(self) -> None:
        self.pipeline.run()

    def stage_out(self) -> None:
        pass

    def synchronize(self) -> None:
        self.pipeline.synchronize()

    def stage_times_ms(self) -> Any:
        return self._stage_ms

    def __enter__(self) -> PipelineWorkload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.stream.synchronize()
        self.pipeline.close()
        for buffer in (self.binding_in, self.binding_out, self.head):
            buffer.close()
        self.module.close()
        self.stream.close()


def gpu_pre_post(frames: int, rng: np.random.Generator) -> dict[str, Any]:
    from jetson_rt.cuda import DeviceBuffer, Event, GraphLaunch, Stream
    from jetson_rt.prepost.gpu import GpuPipeline, GpuPostprocess, compile_module

    result: dict[str, Any] = {}
    module = compile_module()
    frame = rng.integers(0, 256, PRE.frame_shape, dtype=np.uint8)
    with (
        Stream() as stream,
        DeviceBuffer(int(np.prod(PRE.tensor_shape)) * 2) as binding,
        Event() as start,
        Event() as end,
    ):
        with GpuPipeline(
            stream,
            PRE,
            PostprocessSpec(kind="none"),
            input_ptr=binding.ptr,
            output_ptr=binding.ptr,
            output_shape=(1,),
            infer=lambda s: None,
            module=module,
        ) as pipeline:
            assert pipeline.frame is not None
            pipeline.frame.array[...] = frame

            def gpu_pre() -> None:
                pipeline.run()
                pipeline.synchronize()

            result["gpu_pre_h2d_plus_kernel_host"] = per_call_us(gpu_pre, frames * 10)
            # Device time: the kernel alone inside a graph, and with the frame copy.
            assert pipeline.pre is not None
            pre_stage = pipeline.pre
            for key, enqueue in (
                ("gpu_pre_kernel_in_graph", lambda: pre_stage.enqueue(stream)),
                ("gpu_pre_h2d_plus_kernel_in_graph", pipeline._enqueue),
            ):
                with GraphLaunch(stream, enqueue) as graph:
                    graph.prepare()
                    times = []
                    for _ in range(frames * 10):
                        start.record(stream)
                        graph.launch()
                        end.record(stream)
                        end.synchronize()
                        times.append(end.elapsed_ms(start) * 1e3)
                result[key] = {"p50_us": float(np.median(times)), "count": len(times)}
        for name, count in (("typical", 300), ("worst", ANCHORS)):
            raw = yolo_head(rng, count)
            with DeviceBuffer(raw.nbytes) as raw_dev:
                _write(raw_dev.ptr, raw)
                post = GpuPostprocess(POST, module, HEAD_SHAPE, raw_dev.ptr)
                try:
                    with GraphLaunch(stream, lambda post=post: post.enqueue(stream)) as graph:
                        graph.prepare()

                        def gpu_post(graph: GraphLaunch = graph) -> None:
                            graph.launch()
                            stream.synchronize()

                        result[f"gpu_post_{name}"] = per_call_us(gpu_post, frames * 10)
                        times = []
                        for _ in range(frames * 10):
                            start.record(stream)
                            graph.launch()
                            end.record(stream)
                            end.synchronize()
                            times.append(end.elapsed_ms(start) * 1e3)
                        result[f"gpu_post_{name}_in_graph"] = {"p50_us": float(np.median(times))}
                        result[f"gpu_post_{name}_detections"] = int(post.outputs["count"][0])
                finally:
                    post.close()
    module.close()
    return result


def _write(ptr: int, array: npt.NDArray[Any]) -> None:
    from jetson_rt.cuda import check, runtime

    rt = runtime()
    check(
        "cudaMemcpy",
        rt.cudaMemcpy(
            ptr, array.ctypes.data, array.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        ),
    )


def pipeline_part(  # noqa: PLR0915 - one measurement, read top to bottom
    target_ms: float, rounds: int, block: int
) -> dict[str, Any]:
    from jetson_rt.cuda import Event
    from jetson_rt.runner.histogram import LatencyHistogram
    from runner_gpu import runner_over

    rng = np.random.default_rng(1)
    result: dict[str, Any] = {"model": "synthetic NVRTC kernel (TensorRT exists only on Jetsons)"}
    with PipelineWorkload(target_ms, yolo_head(rng, 300)) as work:
        result["device"] = work.device_name
        result["graph_captured"] = work.pipeline.captured
        result["model_iterations"] = work.model_iterations
        work.pipeline.frame.array[...] = rng.integers(0, 256, PRE.frame_shape, dtype=np.uint8)  # type: ignore[union-attr]
        runner = runner_over(work)  # type: ignore[arg-type]
        scheduler = runner.scheduler
        assert scheduler is not None
        task = runner.tasks[0]
        scheduler.run(max_inferences=task.inferences + 500)
        raw_p50: list[float] = []
        raw_p99: list[float] = []
        runner_hist = LatencyHistogram()
        ratios: list[float] = []
        gpu_ms: list[float] = []
        gc.collect()
        gc.disable()
        try:
            with Event() as start, Event() as end:
                for _ in range(rounds):
                    host = np.empty(block, dtype=np.float64)
                    for index in range(block):
                        t0 = time.perf_counter_ns()
                        start.record(work.stream)
                        work.pipeline.run()
                        end.record(work.stream)
                        work.stream.synchronize()
                        host[index] = (time.perf_counter_ns() - t0) / 1e6
                        gpu_ms.append(end.elapsed_ms(start))
                    p50, p99 = np.percentile(host, [50, 99])
                    raw_p50.append(float(p50))
                    raw_p99.append(float(p99))
                    task.hist["total"].reset()
                    scheduler.run(max_inferences=task.inferences + block)
                    ratios.append(task.hist["total"].estimate_ns(50) / 1e6 / p50)
                    runner_hist.merge(task.hist["total"])
        finally:
            gc.enable()
        free_before = mem_free_bytes()
        scheduler.run(max_inferences=task.inferences + 10_000)
        free_after = mem_free_bytes()
        result["detections_last_frame"] = int(work.pipeline.outputs["count"][0])
        runner.release()
        runner_p50 = runner_hist.estimate_ns(50) / 1e6
        runner_p99 = runner_hist.estimate_ns(99) / 1e6
        raw50 = float(np.median(raw_p50))
        raw99 = float(np.median(raw_p99))
        result.update(
            {
                "rounds": rounds,
                "block": block,
                "graph_gpu_p50_ms": float(np.median(gpu_ms)),
                "raw_graph_p50_ms": raw50,
                "raw_graph_p99_ms": raw99,
                "runner_p50_ms": runner_p50,
                "runner_p99_ms": runner_p99,
                "ratio_runner_p50_over_raw_p50": runner_p50 / raw50,
                "ratio_median_of_rounds": float(np.median(ratios)),
                "raw_p99_over_p50": raw99 / raw50,
                "runner_p99_over_p50": runner_p99 / runner_p50,
                "device_bytes_allocated_over_1e4": free_before - free_after,
            }
        )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--frames", type=int, default=50, help="CPU-path frames per measure")
    parser.add_argument("--target-ms", type=float, default=1.0, help="synthetic model time")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=1000)
    parser.add_argument("--cpu-only", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    started = time.monotonic()
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {"cpu": cpu_part(args.frames, rng), "cpu_count": os.cpu_count()}
    if not args.cpu_only:
        from jetson_rt.cuda import device_info, require_device

        require_device(0)
        results["device"] = device_info(0).name
        results["gpu"] = gpu_pre_post(args.frames, rng)
        results["pipeline"] = pipeline_part(args.target_ms, args.rounds, args.block)
    results["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    results["wall_s"] = round(time.monotonic() - started, 1)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    report(results)
    return 0


def report(results: dict[str, Any]) -> None:
    cpu = results["cpu"]
    print()
    print(f"CPU lane ({results['cpu_count']} cores, load {results['loadavg_1m_at_end']}):")
    print(f"  numpy pre  1080p NV12 -> 640 fp16 letterbox: {cpu['numpy_pre']['p50_us']:.0f} us")
    if cpu["opencv_pre"]:
        ratio = cpu["numpy_pre"]["p50_us"] / cpu["opencv_pre"]["p50_us"]
        print(
            f"  OpenCV pre (same work):                       {cpu['opencv_pre']['p50_us']:.0f} us"
            f" (numpy/OpenCV {ratio:.2f})"
        )
    for name in ("typical", "worst"):
        line = f"  numpy post {name:7s} 8400x80: {cpu[f'numpy_post_{name}']['p50_us']:.0f} us"
        tv = cpu[f"torchvision_post_{name}"]
        if tv:
            ratio = cpu[f"numpy_post_{name}"]["p50_us"] / tv["p50_us"]
            line += f" | torchvision CPU: {tv['p50_us']:.0f} us (numpy/torchvision {ratio:.2f})"
        print(line)
    if "gpu" not in results:
        return
    gpu, pipe = results["gpu"], results["pipeline"]
    print(f"GPU: {results['device']}")
    pre_gpu = gpu["gpu_pre_h2d_plus_kernel_host"]["p50_us"]
    print(
        f"  pre: GPU (H2D + kernel, to completion) {pre_gpu:.1f} us | kernel in graph "
        f"{gpu['gpu_pre_kernel_in_graph']['p50_us']:.1f} us | H2D+kernel in graph "
        f"{gpu['gpu_pre_h2d_plus_kernel_in_graph']['p50_us']:.1f} us"
    )
    print(f"       numpy/GPU {cpu['numpy_pre']['p50_us'] / pre_gpu:.1f}x", end="")
    if cpu["opencv_pre"]:
        print(f", OpenCV/GPU {cpu['opencv_pre']['p50_us'] / pre_gpu:.1f}x")
    else:
        print()
    for name in ("typical", "worst"):
        g = gpu[f"gpu_post_{name}"]["p50_us"]
        line = (
            f"  post {name}: GPU {g:.1f} us/frame ({gpu[f'gpu_post_{name}_in_graph']['p50_us']:.1f}"
            f" us in graph, {gpu[f'gpu_post_{name}_detections']} kept)"
        )
        tv = cpu[f"torchvision_post_{name}"]
        if tv:
            line += f" | torchvision CPU {tv['p50_us']:.0f} us ({tv['p50_us'] / g:.1f}x)"
        print(line)
    print(
        f"  pipeline ({pipe['model']}): raw graph p50 {pipe['raw_graph_p50_ms']:.4f} ms, "
        f"runner p50 {pipe['runner_p50_ms']:.4f} ms, "
        f"ratio {pipe['ratio_runner_p50_over_raw_p50']:.3f} "
        f"(target <= 1.05); p99/p50 raw {pipe['raw_p99_over_p50']:.3f}, runner "
        f"{pipe['runner_p99_over_p50']:.3f} (target <= 1.10); device bytes over 1e4 frames "
        f"{pipe['device_bytes_allocated_over_1e4']} (target 0)"
    )


if __name__ == "__main__":
    sys.exit(main())
