"""A model with pre/post stages, seen by the runner as one backend.

:class:`PrePostBackend` wraps any backend: its input is the camera frame
(uint8, ``preprocess.frame_shape``) and its outputs are the post-processed
result (``count`` + ``detections``, or ``classes`` + ``scores``), so sources
refuse a frame of the wrong size or format (counted, the loop goes on) and the
result callbacks and publishers receive the post-processed result.

On the CPU lane (onnxruntime) the numpy stages run in ``stage_in`` (into the
backend's input array) and ``synchronize`` (from its output array). A GPU
backend that exposes its device bindings (``device_binding(name)`` and
``run_pipeline``) gets the GPU stages captured with the inference instead.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from jetson_rt.backends.base import Backend, BackendName, Stage, TensorSpec
from jetson_rt.errors import ConfigError
from jetson_rt.prepost.cpu import CpuPostprocess, CpuPreprocess
from jetson_rt.prepost.spec import PostprocessSpec, PreprocessSpec, check_fit

if TYPE_CHECKING:
    from jetson_rt.prepost.gpu import GpuPipeline

FRAME = "frame"


def _pick(specs: tuple[TensorSpec, ...], name: str | None, what: str, where: str) -> TensorSpec:
    if name is None:
        return specs[0]
    for spec in specs:
        if spec.name == name:
            return spec
    names = ", ".join(spec.name for spec in specs)
    raise ConfigError(f"{where}: the model has no {what} {name!r}; its {what}s are: {names}")


class PrePostBackend:
    """``inner`` with a pre-processing stage in front and a post-processing stage behind."""

    def __init__(
        self,
        inner: Backend,
        pre: PreprocessSpec | None,
        post: PostprocessSpec | None,
        *,
        where: str = "model",
    ) -> None:
        self.inner = inner
        self.pre_spec = pre
        self.post_spec = post if post is not None and post.kind != "none" else None
        self.where = where
        self._active = False
        self._pre: CpuPreprocess | None = None
        self._post: CpuPostprocess | None = None
        self._frame: npt.NDArray[np.uint8] | None = None
        self._target: npt.NDArray[Any] | None = None
        self._raw: npt.NDArray[Any] | None = None
        self._inputs: tuple[TensorSpec, ...] = ()
        self._outputs: tuple[TensorSpec, ...] = ()
        self._host_in: dict[str, npt.NDArray[Any]] = {}
        self._host_out: dict[str, npt.NDArray[Any]] = {}
        self._gpu: GpuPipeline | None = None
        self._nan_times: dict[Stage, float] = {"h2d": math.nan, "infer": math.nan, "d2h": math.nan}

    @property
    def name(self) -> BackendName:
        return self.inner.name

    def activate(self) -> None:
        if self._active:
            return
        self.inner.activate()
        try:
            self._bind()
        except BaseException:
            self.inner.deactivate()
            raise
        self._active = True

    def _bind(self) -> None:
        inner = self.inner
        pre, post = self.pre_spec, self.post_spec
        in_spec = out_spec = None
        if pre is not None:
            in_spec = _pick(inner.inputs, pre.input, "input", f"{self.where}.preprocess.input")
        if post is not None:
            out_spec = _pick(
                inner.outputs, post.output, "output", f"{self.where}.postprocess.output"
            )
        problems: list[str] = []
        check_fit(
            pre,
            post,
            in_spec.shape if in_spec is not None else None,
            out_spec.shape if out_spec is not None else None,
            where=self.where,
            add=lambda p, m: problems.append(f"{p}: {m}"),
        )
        if pre is not None and in_spec is not None and in_spec.dtype != pre.np_dtype:
            problems.append(
                f"{self.where}.preprocess.dtype: {pre.dtype} does not match the model input "
                f"{in_spec.name!r} ({in_spec.dtype})"
            )
        if problems:
            raise ConfigError("; ".join(problems))
        hook = getattr(inner, "gpu_stage_hook", None)
        if hook is not None and pre is not None and in_spec is not None:
            self._bind_gpu(hook, pre, post, in_spec, out_spec)
            return
        host_in = dict(inner.host_inputs())
        if pre is not None and in_spec is not None:
            self._pre = CpuPreprocess(pre)
            self._frame = np.zeros(pre.frame_shape, dtype=np.uint8)
            self._target = host_in.pop(in_spec.name)
            frame_spec = TensorSpec(FRAME, pre.frame_shape, np.dtype(np.uint8))
            self._inputs = (frame_spec, *(s for s in inner.inputs if s.name != in_spec.name))
            self._host_in = {FRAME: self._frame, **host_in}
        else:
            self._inputs = inner.inputs
            self._host_in = host_in
        if post is not None and out_spec is not None:
            self._post = CpuPostprocess(post, out_spec.shape, pre)
            self._raw = inner.host_outputs()[out_spec.name]
            self._host_out = self._post.outputs
            self._outputs = tuple(
                TensorSpec(key, array.shape, array.dtype) for key, array in self._host_out.items()
            )
        else:
            self._outputs = inner.outputs
            self._host_out = inner.host_outputs()

    def _bind_gpu(
        self,
        hook: Any,
        pre: PreprocessSpec,
        post: PostprocessSpec | None,
        in_spec: TensorSpec,
        out_spec: TensorSpec | None,
    ) -> None:
        """Frame copy + pre + the inference + post as one graph on the backend's stream."""
        from jetson_rt.prepost.gpu import GpuPipeline

        stream, addresses, infer = hook()
        output_half = False
        if out_spec is not None:
            if out_spec.dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
                raise ConfigError(
                    f"{self.where}.postprocess.output: {out_spec.name!r} is {out_spec.dtype}; "
                    "the GPU stages read float32 or float16"
                )
            output_half = out_spec.dtype == np.dtype(np.float16)
        if in_spec.name not in addresses or (
            out_spec is not None and out_spec.name not in addresses
        ):
            raise ConfigError(
                f"{self.where}: the GPU stages need the model's input and output in device memory"
            )
        pipeline = self._gpu = GpuPipeline(
            stream,
            pre,
            post if post is not None else PostprocessSpec(kind="none"),
            input_ptr=addresses[in_spec.name],
            output_ptr=addresses[out_spec.name] if out_spec is not None else 0,
            output_shape=out_spec.shape if out_spec is not None else (1,),
            output_half=output_half,
            infer=infer,
        )
        frame = pipeline.frame
        assert frame is not None
        frame_spec = TensorSpec(FRAME, pre.frame_shape, np.dtype(np.uint8))
        others = [s for s in self.inner.inputs if s.name != in_spec.name]
        if others:
            pipeline.close()
            self._gpu = None
            raise ConfigError(f"{self.where}.preprocess: the GPU stages feed single-input models")
        self._inputs = (frame_spec,)
        self._host_in = {FRAME: frame.array}
        if post is not None:
            self._host_out = pipeline.outputs
            self._outputs = tuple(
                TensorSpec(key, array.shape, array.dtype) for key, array in self._host_out.items()
            )
        else:
            self._outputs = self.inner.outputs
            self._host_out = self.inner.host_outputs()

    @property
    def gpu_lane(self) -> bool:
        """True when the stages run on the GPU, captured with the inference."""
        return self._gpu is not None

    def deactivate(self) -> None:
        if not self._active:
            return
        self._active = False
        if self._gpu is not None:
            self._gpu.close()
            self._gpu = None
        self.inner.deactivate()

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs if self._active else self.inner.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs if self._active else self.inner.outputs

    def host_inputs(self) -> dict[str, npt.NDArray[Any]]:
        return self._host_in

    def host_outputs(self) -> dict[str, npt.NDArray[Any]]:
        return self._host_out

    def stage_in(self) -> None:
        if self._gpu is not None:
            return  # the frame copy is the graph's first node
        if self._pre is not None:
            assert self._frame is not None and self._target is not None
            self._pre.run(self._frame, self._target)
        self.inner.stage_in()

    def execute(self) -> None:
        if self._gpu is not None:
            self._gpu.run()
            return
        self.inner.execute()

    def stage_out(self) -> None:
        if self._gpu is not None:
            if self.post_spec is None:
                self.inner.stage_out()  # raw outputs: the backend's own copies
            return
        self.inner.stage_out()

    def synchronize(self) -> None:
        if self._gpu is not None:
            self._gpu.synchronize()
            return
        self.inner.synchronize()
        if self._post is not None:
            assert self._raw is not None
            self._post.run(self._raw)

    def stage_times_ms(self) -> dict[Stage, float]:
        # The GPU lane's one graph has no per-stage events: the runner's clock times it.
        return self._nan_times if self._gpu is not None else self.inner.stage_times_ms()

    def __enter__(self) -> PrePostBackend:
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()


def wrap(inner: Backend, model: Any) -> Backend:
    """``inner`` wrapped when ``model`` (a ModelConfig) has pre/post stages, else ``inner``."""
    pre = getattr(model, "preprocess", None)
    post = getattr(model, "postprocess", None)
    if pre is None and (post is None or post.kind == "none"):
        return inner
    wrapped: Backend = PrePostBackend(inner, pre, post, where=f"models.{model.name}")  # type: ignore[assignment]
    return wrapped
