"""The GPU lane against the numpy lane, OpenCV and torchvision (needs a GPU)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from prepost_refs import (
    GREY_LEVEL_TOLERANCE,
    box_sets,
    cv2_preprocess,
    decode_reference,
    have_torchvision,
    head,
    onnxruntime_nms,
    pixel_error,
    pre_spec,
    torchvision_nms,
)

from jetson_rt.prepost.cpu import CpuPostprocess, CpuPreprocess
from jetson_rt.prepost.spec import PostprocessSpec, parse_postprocess, parse_preprocess

pytestmark = pytest.mark.gpu

PRE_CASES = [
    ("nv12", "letterbox", [640, 640], None, "fp16", "chw"),
    ("nv12", "letterbox", [640, 640], None, "fp32", "chw"),
    ("nv12", "bilinear", [256, 320], [224, 224], "fp32", "hwc"),
    ("bgr", "letterbox", [384, 640], None, "fp16", "chw"),
    ("rgb", "bilinear", [1200, 2000], None, "fp32", "chw"),
    ("gray", "letterbox", [320, 320], None, "fp32", "chw"),
]
SOURCES = [(1920, 1080), (1000, 750)]


@pytest.fixture(scope="module")
def gpu() -> Iterator[Any]:
    pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed")
    from jetson_rt.cuda import device_count, require_device
    from jetson_rt.prepost.gpu import compile_module

    if device_count() == 0:
        pytest.skip("no CUDA device")
    require_device(0)
    module = compile_module()
    yield module
    module.close()


def _read_device(ptr: int, shape: tuple[int, ...], dtype: Any) -> Any:
    from jetson_rt.cuda import check, runtime

    out = np.empty(shape, dtype=dtype)
    rt = runtime()
    check(
        "cudaMemcpy",
        rt.cudaMemcpy(out.ctypes.data, ptr, out.nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost),
    )
    return out


def _write_device(ptr: int, array: Any) -> None:
    from jetson_rt.cuda import check, runtime

    data = np.ascontiguousarray(array)
    rt = runtime()
    check(
        "cudaMemcpy",
        rt.cudaMemcpy(ptr, data.ctypes.data, data.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice),
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", PRE_CASES, ids=lambda c: "-".join(str(v) for v in c))
def test_gpu_preprocess_matches_numpy_and_opencv(gpu: Any, case: Any, source: Any) -> None:
    from jetson_rt.cuda import DeviceBuffer, Stream
    from jetson_rt.prepost.gpu import GpuPipeline

    spec = pre_spec(*case, *source)
    none = PostprocessSpec(kind="none")
    rng = np.random.default_rng(zlib.crc32(repr((case, source)).encode()))
    frame = rng.integers(0, 256, spec.frame_shape, dtype=np.uint8)
    expected = np.empty(spec.tensor_shape, dtype=spec.np_dtype)
    CpuPreprocess(spec).run(frame, expected)
    with Stream() as stream, DeviceBuffer(expected.nbytes) as binding:
        binding.memset_async(0xFF, stream)  # poison: every element must be written
        with GpuPipeline(
            stream,
            spec,
            none,
            input_ptr=binding.ptr,
            output_ptr=binding.ptr,
            output_shape=(1,),
            infer=lambda s: None,
            module=gpu,
        ) as pipeline:
            assert pipeline.captured
            assert pipeline.frame is not None
            binding.memset_async(0xFF, stream)
            pipeline.frame.array[...] = frame
            pipeline.run()
            pipeline.synchronize()
            got = _read_device(binding.ptr, spec.tensor_shape, spec.np_dtype)
    assert np.isfinite(got.astype(np.float32)).all()
    np.testing.assert_array_equal(got, expected)  # the lanes agree bit for bit
    # fp16 rounds the normalised value too: a quarter grey level more at these scales.
    tolerance = GREY_LEVEL_TOLERANCE + (0.25 if spec.dtype == "fp16" else 0.0)
    assert pixel_error(spec, got, cv2_preprocess(spec, frame)) <= tolerance


def test_frame_already_on_the_device_is_not_copied(gpu: Any) -> None:
    from jetson_rt.cuda import DeviceBuffer, Stream
    from jetson_rt.prepost.gpu import GpuPipeline

    spec = pre_spec("nv12", "letterbox", [640, 640], None, "fp16", "chw", 1920, 1080)
    frame = np.random.default_rng(7).integers(0, 256, spec.frame_shape, dtype=np.uint8)
    expected = np.empty(spec.tensor_shape, dtype=spec.np_dtype)
    CpuPreprocess(spec).run(frame, expected)
    with (
        Stream() as stream,
        DeviceBuffer(frame.nbytes) as on_device,
        DeviceBuffer(expected.nbytes) as binding,
    ):
        _write_device(on_device.ptr, frame)
        with GpuPipeline(
            stream,
            spec,
            PostprocessSpec(kind="none"),
            input_ptr=binding.ptr,
            output_ptr=binding.ptr,
            output_shape=(1,),
            infer=lambda s: None,
            frame_device_ptr=on_device.ptr,
            module=gpu,
        ) as pipeline:
            assert pipeline.frame is None  # no pinned frame, no copy queued
            pipeline.run()
            pipeline.synchronize()
            got = _read_device(binding.ptr, spec.tensor_shape, spec.np_dtype)
    np.testing.assert_array_equal(got, expected)


def _detect_spec(max_det: int, objectness: bool = False) -> PostprocessSpec:
    errors: list[str] = []
    spec = parse_postprocess(
        {
            "kind": "detect",
            "score_threshold": 0.25,
            "iou_threshold": 0.45,
            "max_det": max_det,
            "objectness": objectness,
            "layout": "channels_first",
            "boxes": "model",
        },
        "post",
        lambda p, m: errors.append(f"{p}: {m}"),
        has_preprocess=False,
    )
    assert spec is not None, errors
    return spec


def _padded_head(boxes: Any, scores: Any, classes: Any, rng: Any, objectness: bool) -> Any:
    """The candidates plus 64 anchors below the threshold, shuffled."""
    n = len(boxes)
    low = np.tile(np.array([[0, 0, 10, 10]], dtype=np.float32), (64, 1))
    all_boxes = np.concatenate([boxes, low])
    all_scores = np.concatenate([scores, np.full(64, 0.1, dtype=np.float32)])
    all_classes = np.concatenate([classes, np.zeros(64, dtype=np.int64)])
    order = rng.permutation(n + 64)
    return head(
        all_boxes[order],
        all_scores[order],
        all_classes[order],
        80,
        rng=rng,
        objectness=objectness,
    )


@pytest.mark.parametrize("objectness", [False, True], ids=["no_obj", "obj"])
@pytest.mark.parametrize("name", list(box_sets(0)))
def test_gpu_detect_matches_references(gpu: Any, name: str, objectness: bool) -> None:
    from jetson_rt.cuda import DeviceBuffer, Stream
    from jetson_rt.prepost.gpu import GpuPostprocess

    rng = np.random.default_rng(zlib.crc32(name.encode()))
    boxes, scores, classes = box_sets(11)[name]
    max_det = 100
    spec = _detect_spec(max_det, objectness)
    raw = _padded_head(boxes, scores, classes, rng, objectness)
    ref_boxes, ref_scores, ref_classes = decode_reference(raw, spec, 80)
    reference = (torchvision_nms if have_torchvision() else onnxruntime_nms)(
        ref_boxes, ref_scores, ref_classes, spec.iou_threshold, max_det
    )
    cpu = CpuPostprocess(spec, raw.shape)
    cpu.run(raw)
    with Stream() as stream, DeviceBuffer(raw.nbytes) as binding:
        _write_device(binding.ptr, raw)
        post = GpuPostprocess(spec, gpu, raw.shape, binding.ptr)
        try:
            for _ in range(2):  # a second frame must not see the first one's state
                post.outputs["detections"][...] = np.nan
                post.enqueue(stream)
                stream.synchronize()
            count = int(post.outputs["count"][0])
            rows = post.outputs["detections"].copy()
        finally:
            post.close()
    assert count == len(reference) == int(cpu.outputs["count"][0])
    np.testing.assert_array_equal(rows, cpu.outputs["detections"])
    np.testing.assert_array_equal(rows[:count], reference)
    assert not rows[count:].any()


def test_gpu_classify_matches_numpy(gpu: Any) -> None:
    from jetson_rt.cuda import DeviceBuffer, Stream
    from jetson_rt.prepost.gpu import GpuPostprocess

    logits = np.random.default_rng(3).standard_normal((1, 1000)).astype(np.float32) * 4
    spec = PostprocessSpec(kind="classify", softmax=True, top_k=5)
    cpu = CpuPostprocess(spec, logits.shape)
    cpu.run(logits)
    exp = np.exp(logits[0].astype(np.float64) - logits.max())
    probability = exp / exp.sum()
    top = np.argsort(-probability, kind="stable")[:5]
    with Stream() as stream, DeviceBuffer(logits.nbytes) as binding:
        _write_device(binding.ptr, logits)
        post = GpuPostprocess(spec, gpu, logits.shape, binding.ptr)
        try:
            post.enqueue(stream)
            stream.synchronize()
            classes = post.outputs["classes"].copy()
            scores = post.outputs["scores"].copy()
        finally:
            post.close()
    np.testing.assert_array_equal(classes, top)
    np.testing.assert_array_equal(cpu.outputs["classes"], top)
    np.testing.assert_allclose(scores, probability[top], rtol=1e-5)
    np.testing.assert_allclose(cpu.outputs["scores"], probability[top], rtol=1e-5)


def test_pipeline_allocates_nothing_per_frame(gpu: Any) -> None:
    from jetson_rt.cuda import DeviceBuffer, Stream, check, runtime
    from jetson_rt.prepost.gpu import GpuPipeline

    pre = pre_spec("nv12", "letterbox", [640, 640], None, "fp16", "chw", 1920, 1080)
    post = _detect_spec(100)
    raw = _padded_head(*box_sets(5)["random_300"], np.random.default_rng(5), False)
    with (
        Stream() as stream,
        DeviceBuffer(int(np.prod(pre.tensor_shape)) * 2) as binding_in,
        DeviceBuffer(raw.nbytes) as binding_out,
    ):
        _write_device(binding_out.ptr, raw)
        with GpuPipeline(
            stream,
            pre,
            post,
            input_ptr=binding_in.ptr,
            output_ptr=binding_out.ptr,
            output_shape=raw.shape,
            infer=lambda s: None,
            module=gpu,
        ) as pipeline:
            assert pipeline.captured
            for _ in range(50):
                pipeline.run()
            pipeline.synchronize()
            rt = runtime()
            before = check("cudaMemGetInfo", rt.cudaMemGetInfo())[0]
            for _ in range(2000):
                pipeline.run()
            pipeline.synchronize()
            after = check("cudaMemGetInfo", rt.cudaMemGetInfo())[0]
            count = int(pipeline.outputs["count"][0])
    assert before == after
    assert 0 < count <= 100


class DeviceHeadModel:
    """A GPU backend stand-in (TensorRT exists only on Jetsons) with the TensorRT
    backend's ``gpu_stage_hook``: its "inference" copies a fixed YOLO head into the
    output binding, device to device, on the backend's stream."""

    name = "tensorrt"

    def __init__(self, head_array: Any, size: tuple[int, int] = (64, 64)) -> None:
        from jetson_rt.backends.base import TensorSpec

        self.head = head_array
        self._inputs = (TensorSpec("images", (1, 3, *size), np.dtype(np.float32)),)
        self._outputs = (TensorSpec("output0", head_array.shape, np.dtype(np.float32)),)
        self.buffers: dict[str, Any] = {}
        self.stream: Any = None

    def activate(self) -> None:
        from jetson_rt.cuda import DeviceBuffer, Stream

        self.stream = Stream()
        for spec in (*self._inputs, *self._outputs):
            self.buffers[spec.name] = DeviceBuffer(spec.nbytes)
        self.buffers["head"] = DeviceBuffer(self.head.nbytes)
        _write_device(self.buffers["head"].ptr, self.head)

    def deactivate(self) -> None:
        for buffer in self.buffers.values():
            buffer.close()
        self.buffers = {}
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def gpu_stage_hook(self) -> Any:
        from jetson_rt.cuda import check, runtime

        def infer(stream: Any) -> None:
            rt = runtime()
            check(
                "cudaMemcpyAsync",
                rt.cudaMemcpyAsync(
                    self.buffers["output0"].ptr,
                    self.buffers["head"].ptr,
                    self.head.nbytes,
                    rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice,
                    stream.handle,
                ),
            )

        return self.stream, {k: v.ptr for k, v in self.buffers.items()}, infer

    @property
    def inputs(self) -> Any:
        return self._inputs

    @property
    def outputs(self) -> Any:
        return self._outputs

    def host_inputs(self) -> dict[str, Any]:
        return {}

    def host_outputs(self) -> dict[str, Any]:
        return {}

    def stage_in(self) -> None: ...
    def execute(self) -> None: ...
    def stage_out(self) -> None: ...
    def synchronize(self) -> None: ...

    def stage_times_ms(self) -> Any:
        return {"h2d": float("nan"), "infer": float("nan"), "d2h": float("nan")}


def test_runner_gpu_lane_matches_cpu_lane(gpu: Any, tmp_path: Any) -> None:
    from yolo_model import write_yolo_model

    from jetson_rt.prepost.backend import PrePostBackend, wrap
    from jetson_rt.runner.config import InputConfig, parse_config
    from jetson_rt.runner.service import Runner
    from jetson_rt.runner.sources import FrameSource

    model_path = tmp_path / "yolo.onnx"
    head_array = write_yolo_model(model_path)
    pre = {"format": "nv12", "width": 128, "height": 96, "resize": "letterbox", "size": [64, 64]}
    post = {"kind": "detect", "max_det": 10}
    doc = {
        "schema_version": 1,
        "models": {
            "det": {
                "backend": "onnxruntime",
                "path": str(model_path),
                "verify": False,
                "preprocess": pre,
                "postprocess": post,
            }
        },
        "tasks": [{"name": "det", "tiers": ["det"], "deadline_ms": 200}],
        "warmup": {"min_iterations": 3, "max_iterations": 20, "window": 3, "max_cv": 5.0},
        "rt": {"priority": 0, "cpus": "all", "mlockall": False},
        "watchdog": {"timeout_ms": 5000},
        "stats": {"path": str(tmp_path / "stats.json"), "interval_s": 0.1},
        "thermal": {"enabled": False},
    }
    config = parse_config(doc)
    results = {}
    frames = [
        np.random.default_rng(k).integers(0, 256, (144, 128), dtype=np.uint8) for k in range(3)
    ]
    for lane in ("gpu", "cpu"):
        wrapped: list[Any] = []

        def factory(model: Any, lane: str = lane, wrapped: list[Any] = wrapped) -> Any:
            if lane == "cpu":
                from jetson_rt.runner.service import default_backend_factory

                backend = default_backend_factory(model)
            else:
                backend = wrap(DeviceHeadModel(head_array), model)
            wrapped.append(backend)
            return backend

        source = FrameSource(InputConfig(capacity=4))
        runner = Runner(config, sources={"det": source}, backend_factory=factory)
        scheduler = runner.prepare()
        try:
            assert isinstance(wrapped[0], PrePostBackend)
            assert wrapped[0].gpu_lane == (lane == "gpu")
            task = runner.tasks[0]
            assert not source.push(frames[0][:100])  # wrong size: refused, counted
            for frame in frames:
                assert source.push(frame)
                scheduler.run(max_inferences=task.inferences + 1)
            assert source.rejected == 1
            out = task.tiers[0].results()
            results[lane] = {k: np.array(v, copy=True) for k, v in out.items()}
        finally:
            runner.release()
    assert int(results["gpu"]["count"][0]) == int(results["cpu"]["count"][0]) == 2
    np.testing.assert_array_equal(results["gpu"]["detections"], results["cpu"]["detections"])


def test_gpu_every_yuv_value_converts_as_opencv_does(gpu: Any) -> None:
    from jetson_rt.cuda import DeviceBuffer, Stream
    from jetson_rt.prepost.gpu import GpuPipeline

    spec = parse_preprocess(
        {"format": "nv12", "width": 512, "height": 512, "size": [512, 512], "scale": 1.0},
        "pre",
        lambda p, m: None,
    )
    assert spec is not None
    rng = np.random.default_rng(5)
    luma = rng.integers(0, 256, (512, 512), dtype=np.uint8)
    luma.reshape(-1)[:256] = np.arange(256)
    pairs = rng.permutation(65536).astype(np.uint16)
    chroma = np.stack([pairs & 0xFF, pairs >> 8], axis=1).astype(np.uint8).reshape(256, 512)
    frame = np.concatenate([luma, chroma])
    with (
        Stream() as stream,
        DeviceBuffer(512 * 512 * 3 * 4) as binding,
        GpuPipeline(
            stream,
            spec,
            PostprocessSpec(kind="none"),
            input_ptr=binding.ptr,
            output_ptr=binding.ptr,
            output_shape=(1,),
            infer=lambda s: None,
            module=gpu,
        ) as pipeline,
    ):
        assert pipeline.frame is not None
        pipeline.frame.array[...] = frame
        pipeline.run()
        pipeline.synchronize()
        got = _read_device(binding.ptr, spec.tensor_shape, np.float32)
    np.testing.assert_array_equal(got, cv2_preprocess(spec, frame).astype(np.float32))
