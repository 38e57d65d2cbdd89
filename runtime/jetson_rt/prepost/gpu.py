"""The GPU lane: pre- and post-processing kernels queued on the inference stream.

:class:`GpuPreprocess` reads a uint8 frame in device memory and writes the
model's input binding; :class:`GpuPostprocess` reads the model's output binding
and writes a fixed-size result (``count`` + ``[max_det, 6]``, or top-k) that
one small copy brings to pinned host memory. Every buffer is allocated when
the stage is built; ``enqueue`` only launches kernels (and one 4-byte memset),
so a caller captures pre + inference + post into one CUDA graph
(:class:`GpuPipeline` does that) and a frame costs no allocation and no host
synchronisation beyond the final copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from jetson_rt.cuda.api import check, device_info, runtime
from jetson_rt.cuda.graph import GraphLaunch
from jetson_rt.cuda.memory import (
    DeviceBuffer,
    PinnedBuffer,
    copy_device_to_host_async,
    copy_host_to_device_async,
)
from jetson_rt.cuda.nvrtc import Kernel, Module
from jetson_rt.cuda.stream import Stream
from jetson_rt.prepost.kernels import OPTIONS, SOURCE
from jetson_rt.prepost.spec import (
    DetectShape,
    PostprocessSpec,
    PreprocessSpec,
    detect_shape,
    f32_at_most,
)

_FORMAT_CODE = {"nv12": 0, "bgr": 1, "rgb": 2, "gray": 3}
_RESULT_HEADER = 16  # int32 count, padded so the rows stay 16-byte aligned


def compile_module(device: int = 0) -> Module:
    """The pre/post kernels compiled for GPU ``device``."""
    info = device_info(device)
    return Module(SOURCE, "jetson_rt_prepost.cu", info.compute_capability, OPTIONS)


def _upload(host: npt.NDArray[Any]) -> DeviceBuffer:
    """A device copy of ``host``, made once when a stage is built (synchronous)."""
    data = np.ascontiguousarray(host)
    buffer = DeviceBuffer(data.nbytes)
    rt = runtime()
    check(
        "cudaMemcpy",
        rt.cudaMemcpy(
            buffer.ptr, data.ctypes.data, data.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        ),
    )
    return buffer


class GpuPreprocess:
    """Frame (device, uint8) -> model input (device), one kernel launch."""

    def __init__(self, spec: PreprocessSpec, module: Module, src_ptr: int, dst_ptr: int) -> None:
        self.spec = spec
        geo = spec.geometry()
        self._tables = [
            _upload(np.concatenate([geo.x0, geo.x1])),
            _upload(np.concatenate([geo.wx0, geo.wx1])),
            _upload(np.concatenate([geo.y0, geo.y1])),
            _upload(np.concatenate([geo.wy0, geo.wy1])),
        ]
        a, b = spec.affine()
        channels = spec.out_channels
        pad = [np.float32(spec.pad_value) * a[c] + b[c] for c in range(channels)]
        a3 = [float(a[min(c, channels - 1)]) for c in range(3)]
        b3 = [float(b[min(c, channels - 1)]) for c in range(3)]
        pad3 = [float(pad[min(c, channels - 1)]) for c in range(3)]
        out_h, out_w = spec.out_hw
        block = (32, 8, 1)
        grid = ((out_w + 31) // 32, (out_h + 7) // 8, 1)
        xt, wxt, yt, wyt = (table.ptr for table in self._tables)
        self.kernel = Kernel(
            module,
            "jrt_pre",
            grid,
            block,
            args=[
                ("ptr", src_ptr),
                ("i32", spec.width),
                ("i32", spec.height),
                ("i32", _FORMAT_CODE[spec.format]),
                ("ptr", xt),
                ("ptr", wxt),
                ("ptr", yt),
                ("ptr", wyt),
                ("i32", out_w),
                ("i32", out_h),
                ("i32", channels),
                ("i32", int(spec.channels == "bgr" and spec.format != "gray")),
                ("i32", int(spec.layout == "chw")),
                ("i32", int(spec.dtype == "fp16")),
                *[("f32", value) for value in (*a3, *b3, *pad3)],
                ("ptr", dst_ptr),
            ],
        )

    def set_source(self, src_ptr: int) -> None:
        """Read frames from another device address (before a graph is captured)."""
        self.kernel.set(0, src_ptr)

    def enqueue(self, stream: Stream) -> None:
        self.kernel.launch(stream)

    def close(self) -> None:
        tables, self._tables = self._tables, []
        for table in tables:
            table.close()


class GpuPostprocess:
    """Model output (device) -> fixed-size result in pinned host memory."""

    def __init__(
        self,
        spec: PostprocessSpec,
        module: Module,
        output_shape: tuple[int, ...],
        raw_ptr: int,
        *,
        raw_half: bool = False,
        pre: PreprocessSpec | None = None,
    ) -> None:
        from jetson_rt.errors import ConfigError

        self.spec = spec
        self._buffers: list[DeviceBuffer] = []
        self._kernels: list[Kernel] = []
        self.host: PinnedBuffer | None = None
        self.outputs: dict[str, npt.NDArray[Any]] = {}
        self.detect: DetectShape | None = None
        if spec.kind == "detect":
            problems: list[str] = []
            self.detect = detect_shape(
                spec, output_shape, "postprocess", lambda p, m: problems.append(f"{p}: {m}")
            )
            if problems or self.detect is None:
                raise ConfigError(problems[0] if problems else "postprocess: bad output shape")
            self._build_detect(module, self.detect, raw_ptr, raw_half, pre)
        elif spec.kind == "classify":
            self._build_classify(module, int(np.prod(output_shape)), raw_ptr, raw_half)

    def _buffer(self, nbytes: int) -> int:
        buffer = DeviceBuffer(nbytes)
        self._buffers.append(buffer)
        return buffer.ptr

    def _build_detect(
        self,
        module: Module,
        shape: DetectShape,
        raw_ptr: int,
        raw_half: bool,
        pre: PreprocessSpec | None,
    ) -> None:
        spec = self.spec
        n = shape.anchors
        words = (n + 63) // 64
        self.words = words
        counter = self._buffer(4)
        self._counter = self._buffers[-1]
        cand_box, cand_score = self._buffer(n * 16), self._buffer(n * 4)
        cand_cls, cand_idx = self._buffer(n * 4), self._buffer(n * 4)
        s_box, s_score, s_cls, s_area = (
            self._buffer(n * 16),
            self._buffer(n * 4),
            self._buffer(n * 4),
            self._buffer(n * 4),
        )
        mask = self._buffer(n * words * 8)
        result_bytes = _RESULT_HEADER + spec.max_det * 24
        self._result = DeviceBuffer(result_bytes)
        self._buffers.append(self._result)
        result = self._result.ptr
        self.host = PinnedBuffer((result_bytes,), np.uint8)
        raw_bytes = self.host.array
        self.outputs = {
            "count": raw_bytes[:4].view(np.int32),
            "detections": raw_bytes[_RESULT_HEADER:].view(np.float32).reshape(spec.max_det, 6),
        }
        mapped = spec.boxes == "source" and pre is not None
        box_map = (0.0, 0.0, 1.0, 1.0, 0.0, 0.0)
        if mapped and pre is not None:
            geo = pre.geometry()
            box_map = (
                geo.box_offset_x,
                geo.box_offset_y,
                geo.box_gain_x,
                geo.box_gain_y,
                float(pre.width),
                float(pre.height),
            )
        # The numpy lane rounds these to float32 too.
        box_map = tuple(float(np.float32(v)) for v in box_map)  # type: ignore[assignment]
        blocks = (n + 255) // 256
        self._kernels = [
            Kernel(
                module,
                "jrt_decode",
                (blocks, 1, 1),
                (256, 1, 1),
                args=[
                    ("ptr", raw_ptr),
                    ("i32", int(raw_half)),
                    ("i32", n),
                    ("i32", shape.classes),
                    ("i32", int(spec.objectness)),
                    ("i32", int(shape.channels_first)),
                    ("f32", f32_at_most(spec.score_threshold)),
                    ("ptr", cand_box),
                    ("ptr", cand_score),
                    ("ptr", cand_cls),
                    ("ptr", cand_idx),
                    ("ptr", counter),
                ],
            ),
            Kernel(
                module,
                "jrt_rank",
                (blocks, 1, 1),
                (256, 1, 1),
                args=[
                    ("ptr", cand_box),
                    ("ptr", cand_score),
                    ("ptr", cand_cls),
                    ("ptr", cand_idx),
                    ("ptr", counter),
                    ("ptr", s_box),
                    ("ptr", s_score),
                    ("ptr", s_cls),
                    ("ptr", s_area),
                ],
            ),
            Kernel(
                module,
                "jrt_nms_mask",
                (words, words, 1),
                (64, 1, 1),
                args=[
                    ("ptr", s_box),
                    ("ptr", s_area),
                    ("ptr", s_cls),
                    ("ptr", counter),
                    ("f32", f32_at_most(spec.iou_threshold)),
                    ("i32", words),
                    ("ptr", mask),
                ],
            ),
            Kernel(
                module,
                "jrt_nms_select",
                (1, 1, 1),
                (32, 1, 1),
                args=[
                    ("ptr", s_box),
                    ("ptr", s_score),
                    ("ptr", s_cls),
                    ("ptr", counter),
                    ("ptr", mask),
                    ("i32", words),
                    ("i32", spec.max_det),
                    ("i32", int(mapped)),
                    *[("f32", value) for value in box_map],
                    ("ptr", result),
                    ("ptr", result + _RESULT_HEADER),
                ],
                shared_bytes=words * 8,
            ),
        ]

    def _build_classify(self, module: Module, classes: int, raw_ptr: int, raw_half: bool) -> None:
        spec = self.spec
        prob = self._buffer(classes * 4)
        result_bytes = spec.top_k * 8
        self._result = DeviceBuffer(result_bytes)
        self._buffers.append(self._result)
        self.host = PinnedBuffer((result_bytes,), np.uint8)
        raw_bytes = self.host.array
        self.outputs = {
            "classes": raw_bytes[: spec.top_k * 4].view(np.int32),
            "scores": raw_bytes[spec.top_k * 4 :].view(np.float32),
        }
        self._kernels = [
            Kernel(
                module,
                "jrt_classify",
                (1, 1, 1),
                (1024, 1, 1),
                args=[
                    ("ptr", raw_ptr),
                    ("i32", int(raw_half)),
                    ("i32", classes),
                    ("i32", int(spec.softmax)),
                    ("i32", spec.top_k),
                    ("ptr", prob),
                    ("ptr", self._result.ptr),
                    ("ptr", self._result.ptr + spec.top_k * 4),
                ],
            )
        ]

    def enqueue(self, stream: Stream) -> None:
        """Queue decode + NMS (or classify) and the one small copy of the result."""
        if self.spec.kind == "detect":
            self._counter.memset_async(0, stream)
        for kernel in self._kernels:
            kernel.launch(stream)
        if self.host is not None:
            copy_device_to_host_async(self.host, self._result, stream)

    def close(self) -> None:
        buffers, self._buffers = self._buffers, []
        for buffer in buffers:
            buffer.close()
        if self.host is not None:
            self.host.close()
            self.host = None
        self._kernels = []


class GpuPipeline:
    """Frame copy, pre-processing, inference and post-processing as one CUDA graph.

    ``infer`` queues the model on the stream it is given (a TensorRT context's
    ``execute_async_v3``, or any kernels) reading ``input_ptr`` and writing
    ``output_ptr``. The frame is copied once, pinned host -> device, unless
    ``frame_device_ptr`` names a frame already in device memory (then there is
    no copy). :meth:`run` replays the graph; the result is in :attr:`outputs`
    after :meth:`synchronize`.
    """

    def __init__(
        self,
        stream: Stream,
        pre: PreprocessSpec,
        post: PostprocessSpec,
        *,
        input_ptr: int,
        output_ptr: int,
        output_shape: tuple[int, ...],
        infer: Callable[[Stream], None],
        output_half: bool = False,
        frame_device_ptr: int | None = None,
        use_graph: bool = True,
        module: Module | None = None,
    ) -> None:
        self.stream = stream
        self.pre_spec = pre
        self.post_spec = post
        self._own_module = module is None
        self.module = module if module is not None else compile_module()
        self.frame: PinnedBuffer | None = None
        self._frame_dev: DeviceBuffer | None = None
        self.pre: GpuPreprocess | None = None
        self.post: GpuPostprocess | None = None
        self.graph: GraphLaunch | None = None
        self._infer = infer
        try:
            if frame_device_ptr is None:
                self.frame = PinnedBuffer(pre.frame_shape, np.uint8)
                self._frame_dev = DeviceBuffer(self.frame.nbytes)
                source = self._frame_dev.ptr
            else:
                source = frame_device_ptr
            self.pre = GpuPreprocess(pre, self.module, source, input_ptr)
            self.post = GpuPostprocess(
                post, self.module, output_shape, output_ptr, raw_half=output_half, pre=pre
            )
            self.graph = GraphLaunch(stream, self._enqueue, use_graph=use_graph)
            self.graph.prepare()
        except BaseException:
            self.close()
            raise

    @property
    def outputs(self) -> dict[str, npt.NDArray[Any]]:
        assert self.post is not None
        return self.post.outputs

    @property
    def captured(self) -> bool:
        return self.graph is not None and self.graph.captured

    def _enqueue(self) -> None:
        assert self.pre is not None and self.post is not None
        if self.frame is not None and self._frame_dev is not None:
            copy_host_to_device_async(self._frame_dev, self.frame, self.stream)
        self.pre.enqueue(self.stream)
        self._infer(self.stream)
        self.post.enqueue(self.stream)

    def run(self) -> None:
        assert self.graph is not None
        self.graph.launch()

    def synchronize(self) -> None:
        self.stream.synchronize()

    def close(self) -> None:
        if self.graph is not None:
            self.graph.close()
            self.graph = None
        for stage in (self.pre, self.post):
            if stage is not None:
                stage.close()
        self.pre = self.post = None
        for buffer in (self.frame, self._frame_dev):
            if buffer is not None:
                buffer.close()
        self.frame = self._frame_dev = None
        if self._own_module:
            self.module.close()

    def __enter__(self) -> GpuPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
