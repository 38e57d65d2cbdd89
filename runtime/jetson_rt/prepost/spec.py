"""The ``preprocess`` and ``postprocess`` sections of a model in runner.yaml.

Parsed here and hooked into the runner's one validator
(:mod:`jetson_rt.runner.config`): every problem is reported through the
validator's ``add(path, message)`` with the field's key path. The geometry both
lanes share (letterbox scale and padding, centre crop, the per-row and
per-column bilinear tables) is computed once here, in float64, so the GPU
kernels and the numpy lane sample exactly the same source pixels with the same
weights.

Example::

    preprocess:
      format: nv12          # nv12 | bgr | rgb | gray: what the camera delivers
      width: 1920           # source frame size
      height: 1080
      resize: letterbox     # bilinear | letterbox (keep aspect, pad)
      size: [640, 640]      # [height, width] after resize/letterbox
      pad_value: 114
      crop: [640, 640]      # optional centre crop of ``size``
      scale: 0.00392156862745098   # pixel * scale, then (x - mean) / std
      mean: [0, 0, 0]
      std: [1, 1, 1]
      channels: rgb         # rgb | bgr order of the model's channels
      layout: chw           # chw | hwc
      dtype: fp16           # fp32 | fp16
    postprocess:
      kind: detect          # none | classify | detect
      score_threshold: 0.25
      iou_threshold: 0.45
      max_det: 100
      objectness: false     # YOLOv5-style [cx, cy, w, h, obj, classes...]
      layout: auto          # auto | anchors_first [N, 4+C] | channels_first [4+C, N]
      boxes: source         # source (frame pixels) | model (model input pixels)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

SourceFormat = Literal["nv12", "bgr", "rgb", "gray"]
ResizeMode = Literal["bilinear", "letterbox"]
PostKind = Literal["none", "classify", "detect"]
DetectLayout = Literal["auto", "anchors_first", "channels_first"]

FORMATS: tuple[SourceFormat, ...] = ("nv12", "bgr", "rgb", "gray")
RESIZE_MODES: tuple[ResizeMode, ...] = ("bilinear", "letterbox")
POST_KINDS: tuple[PostKind, ...] = ("none", "classify", "detect")
DETECT_LAYOUTS: tuple[DetectLayout, ...] = ("auto", "anchors_first", "channels_first")
# Sensor sizes beyond 8K are not cameras this runner feeds.
MAX_SIDE = 8192

AddError = Callable[[str, str], None]


@dataclass(frozen=True)
class Geometry:
    """Where each output pixel samples the source, shared by both lanes.

    ``x0``/``x1`` and ``wx0``/``wx1`` per output column, ``y0``/``y1`` and
    ``wy0``/``wy1`` per output row: the two source pixels and their weights
    (OpenCV's INTER_LINEAR convention: half-pixel centres, edges clamped);
    ``-1`` in ``x0``/``y0`` marks padding. ``box_offset``/``box_gain`` map
    a model-space x or y back to source pixels: ``(v + offset) * gain``.
    """

    out_h: int
    out_w: int
    inner_top: int
    inner_left: int
    inner_h: int
    inner_w: int
    x0: npt.NDArray[np.int32]
    x1: npt.NDArray[np.int32]
    wx0: npt.NDArray[np.float32]
    wx1: npt.NDArray[np.float32]
    y0: npt.NDArray[np.int32]
    y1: npt.NDArray[np.int32]
    wy0: npt.NDArray[np.float32]
    wy1: npt.NDArray[np.float32]
    box_offset_x: float
    box_offset_y: float
    box_gain_x: float
    box_gain_y: float


@dataclass(frozen=True)
class PreprocessSpec:
    format: SourceFormat
    width: int
    height: int
    resize: ResizeMode
    size: tuple[int, int]
    pad_value: float
    crop: tuple[int, int] | None
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    channels: Literal["rgb", "bgr"]
    layout: Literal["chw", "hwc"]
    dtype: Literal["fp32", "fp16"]
    input: str | None = None

    @property
    def out_channels(self) -> int:
        return 1 if self.format == "gray" else 3

    @property
    def out_hw(self) -> tuple[int, int]:
        return self.crop if self.crop is not None else self.size

    @property
    def np_dtype(self) -> np.dtype[np.generic]:
        return np.dtype(np.float16 if self.dtype == "fp16" else np.float32)

    @property
    def tensor_shape(self) -> tuple[int, ...]:
        """The model input this stage writes (batch 1)."""
        h, w = self.out_hw
        c = self.out_channels
        return (1, c, h, w) if self.layout == "chw" else (1, h, w, c)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """The uint8 frame the source must deliver."""
        if self.format == "nv12":
            return (self.height * 3 // 2, self.width)
        if self.format == "gray":
            return (self.height, self.width)
        return (self.height, self.width, 3)

    def affine(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Per output channel ``a``, ``b`` with ``out = pixel * a + b`` (float32)."""
        count = self.out_channels
        mean = self.mean if len(self.mean) == count else self.mean[:1] * count
        std = self.std if len(self.std) == count else self.std[:1] * count
        a = np.array([self.scale / s for s in std], dtype=np.float32)
        b = np.array([-m / s for m, s in zip(mean, std, strict=True)], dtype=np.float32)
        return a, b

    def geometry(self) -> Geometry:
        return _geometry(self)


@dataclass(frozen=True)
class PostprocessSpec:
    kind: PostKind
    output: str | None = None
    softmax: bool = True
    top_k: int = 5
    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_det: int = 100
    objectness: bool = False
    layout: DetectLayout = "auto"
    boxes: Literal["source", "model"] = "source"


@dataclass(frozen=True)
class DetectShape:
    """How a detect head's output is read: anchors, classes and memory order."""

    anchors: int
    classes: int
    channels_first: bool


def f32_at_most(value: float) -> float:
    """The largest float32 not above ``value``.

    ``x > f32_at_most(t)`` then holds for a float32 ``x`` exactly when ``x > t``
    in double precision, as torchvision and Ultralytics compare.
    """
    f = np.float32(value)
    if float(f) > value:
        f = np.nextafter(f, np.float32(-np.inf))
    return float(f)


def _cv_axis(
    dst: int, src: int, inv_scale: float
) -> tuple[
    npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.float32], npt.NDArray[np.float32]
]:
    """OpenCV's INTER_LINEAR source index and weight per destination index."""
    scale = 1.0 / inv_scale
    i0 = np.empty(dst, dtype=np.int32)
    i1 = np.empty(dst, dtype=np.int32)
    w1 = np.empty(dst, dtype=np.float32)
    for d in range(dst):
        f = (d + 0.5) * scale - 0.5
        s = math.floor(f)
        frac = f - s
        if s < 0:
            s, frac = 0, 0.0
        if s >= src - 1:
            s, frac = src - 1, 0.0
        i0[d] = s
        i1[d] = min(s + 1, src - 1)
        w1[d] = frac
    w0 = (np.float32(1.0) - w1).astype(np.float32)
    return i0, i1, w0, w1


def letterbox_box(spec: PreprocessSpec) -> tuple[int, int, int, int]:
    """``(top, left, inner_h, inner_w)`` of the scaled frame in ``size``, padded as Ultralytics."""
    h, w = spec.size
    if spec.resize == "bilinear":
        return 0, 0, h, w
    ratio = min(h / spec.height, w / spec.width)
    inner_w = max(1, round(spec.width * ratio))
    inner_h = max(1, round(spec.height * ratio))
    dw = (w - inner_w) / 2
    dh = (h - inner_h) / 2
    return round(dh - 0.1), round(dw - 0.1), inner_h, inner_w


def _geometry(spec: PreprocessSpec) -> Geometry:
    top, left, inner_h, inner_w = letterbox_box(spec)
    size_h, size_w = spec.size
    out_h, out_w = spec.out_hw
    crop_y = (size_h - out_h) // 2
    crop_x = (size_w - out_w) // 2
    axes = []
    for out_n, crop_o, start, inner, src in (
        (out_w, crop_x, left, inner_w, spec.width),
        (out_h, crop_y, top, inner_h, spec.height),
    ):
        i0, i1, w0, w1 = _cv_axis(inner, src, inner / src)
        a0 = np.full(out_n, -1, dtype=np.int32)
        a1 = np.full(out_n, -1, dtype=np.int32)
        b0 = np.zeros(out_n, dtype=np.float32)
        b1 = np.zeros(out_n, dtype=np.float32)
        for o in range(out_n):
            k = o + crop_o - start
            if 0 <= k < inner:
                a0[o], a1[o] = i0[k], i1[k]
                b0[o], b1[o] = w0[k], w1[k]
        axes.append((a0, a1, b0, b1))
    (x0, x1, wx0, wx1), (y0, y1, wy0, wy1) = axes
    return Geometry(
        out_h=out_h,
        out_w=out_w,
        inner_top=top - crop_y,
        inner_left=left - crop_x,
        inner_h=inner_h,
        inner_w=inner_w,
        x0=x0,
        x1=x1,
        wx0=wx0,
        wx1=wx1,
        y0=y0,
        y1=y1,
        wy0=wy0,
        wy1=wy1,
        box_offset_x=float(crop_x - left),
        box_offset_y=float(crop_y - top),
        box_gain_x=spec.width / inner_w,
        box_gain_y=spec.height / inner_h,
    )


def detect_shape(
    spec: PostprocessSpec, shape: tuple[int, ...], where: str, add: AddError
) -> DetectShape | None:
    """The head layout of a detect output ``shape``, or an error naming ``where``."""
    dims = shape[1:] if len(shape) == 3 and shape[0] == 1 else shape
    extra = 5 if spec.objectness else 4
    if len(dims) != 2:
        add(
            where,
            f"detect needs a [1, N, {extra}+C] or [1, {extra}+C, N] output, the model's is "
            f"{list(shape)}",
        )
        return None
    a, b = dims
    if spec.layout == "channels_first" or (spec.layout == "auto" and a < b):
        channels, anchors, first = a, b, True
    else:
        anchors, channels, first = a, b, False
    if channels <= extra:
        add(
            where,
            f"detect reads {extra} box{'+objectness' if spec.objectness else ''} values and "
            f"at least one class per candidate, but the output {list(shape)} has {channels} "
            f"values per candidate",
        )
        return None
    return DetectShape(anchors=anchors, classes=channels - extra, channels_first=first)


def check_fit(
    pre: PreprocessSpec | None,
    post: PostprocessSpec | None,
    input_shape: tuple[int, ...] | None,
    output_shape: tuple[int, ...] | None,
    *,
    where: str,
    add: AddError,
) -> None:
    """Refuse stages that do not fit the model's input or output shape."""
    if pre is not None and input_shape is not None:
        want = pre.tensor_shape
        if len(input_shape) != 4 or input_shape[0] != 1:
            add(
                f"{where}.preprocess",
                f"writes one image {list(want)}, but the model input is {list(input_shape)}",
            )
        else:
            h_axis, w_axis, c_axis = (2, 3, 1) if pre.layout == "chw" else (1, 2, 3)
            model_h, model_w = input_shape[h_axis], input_shape[w_axis]
            size_h, size_w = pre.size
            field = "crop" if pre.crop is not None else "size"
            out_h, out_w = pre.out_hw
            if out_h > model_h or out_w > model_w:
                add(
                    f"{where}.preprocess.{field}",
                    f"{pre.resize} to {out_h}x{out_w} is bigger than the model input "
                    f"{model_h}x{model_w} ({list(input_shape)})",
                )
            elif (out_h, out_w) != (model_h, model_w):
                add(
                    f"{where}.preprocess.{field}",
                    f"{out_h}x{out_w} does not match the model input {model_h}x{model_w} "
                    f"({list(input_shape)})",
                )
            if input_shape[c_axis] != pre.out_channels:
                add(
                    f"{where}.preprocess.layout",
                    f"writes {pre.out_channels} channel(s) {pre.layout}, but the model input is "
                    f"{list(input_shape)}",
                )
            del size_h, size_w
    if post is not None and output_shape is not None:
        if post.kind == "detect":
            detect_shape(post, output_shape, f"{where}.postprocess.kind", add)
        elif post.kind == "classify":
            classes = int(np.prod(output_shape))
            if max(output_shape) != classes:
                add(
                    f"{where}.postprocess.kind",
                    "classify needs one vector of class scores, the output is "
                    f"{list(output_shape)}",
                )
            elif post.top_k > classes:
                add(
                    f"{where}.postprocess.top_k",
                    f"is {post.top_k}, but the model has {classes} classes",
                )


# --- parsing ----------------------------------------------------------------------


def _type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), "a list" if isinstance(value, list) else "a mapping"
    )


class _Fields:
    def __init__(self, data: dict[str, object], where: str, add: AddError) -> None:
        self.data = data
        self.where = where
        self.add = add
        self.seen: set[str] = set()
        self.ok = True

    def path(self, key: str) -> str:
        return f"{self.where}.{key}"

    def error(self, key: str, message: str) -> None:
        self.ok = False
        self.add(self.path(key), message)

    def get(self, key: str) -> object:
        self.seen.add(key)
        return self.data.get(key)

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or value not in choices:
            self.error(key, f"must be one of {', '.join(choices)}, got {value!r}")
            return default
        return value

    def number(
        self, key: str, default: float, lo: float | None = None, hi: float | None = None
    ) -> float:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.error(key, f"must be a number, got {_type(value)}")
            return default
        number = float(value)
        if not math.isfinite(number):
            self.error(key, f"must be a finite number, got {value!r}")
        elif lo is not None and number < lo:
            self.error(key, f"must be at least {lo:g}, got {number:g}")
        elif hi is not None and number > hi:
            self.error(key, f"must be at most {hi:g}, got {number:g}")
        return number

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(key, f"must be an integer, got {_type(value)}")
            return default
        if value < lo:
            self.error(key, f"must be at least {lo}, got {value}")
        elif value > hi:
            self.error(key, f"must be at most {hi}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(key, f"must be true or false, got {_type(value)}")
            return default
        return value

    def string(self, key: str) -> str | None:
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.error(key, f"must be a non-empty string, got {_type(value)}")
            return None
        return value

    def pair(self, key: str) -> tuple[int, int] | None:
        value = self.get(key)
        if value is None:
            return None
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or not all(1 <= v <= MAX_SIDE for v in value)
        ):
            self.error(key, f"must be [height, width], two integers 1..{MAX_SIDE}, got {value!r}")
            return None
        return int(value[0]), int(value[1])

    def numbers(self, key: str, default: tuple[float, ...], count: int) -> tuple[float, ...]:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if (
            not isinstance(value, list)
            or len(value) not in (1, count)
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            self.error(key, f"must be a number or a list of {count} numbers, got {value!r}")
            return default
        return tuple(float(v) for v in value)

    def done(self) -> None:
        for key in self.data:
            if key not in self.seen:
                known = ", ".join(sorted(self.seen))
                self.error(str(key), f"unknown key; known keys: {known}")


def _mapping(data: object, where: str, add: AddError) -> dict[str, object] | None:
    if not isinstance(data, dict):
        add(where, f"must be a mapping, got {_type(data)}")
        return None
    return {str(k): v for k, v in data.items()}


def parse_preprocess(data: object, where: str, add: AddError) -> PreprocessSpec | None:
    """A validated :class:`PreprocessSpec`, or ``None`` after reporting every problem."""
    body = _mapping(data, where, add)
    if body is None:
        return None
    f = _Fields(body, where, add)
    fmt = f.choice("format", "", FORMATS)
    if "format" not in body:
        f.error("format", f"is required: one of {', '.join(FORMATS)}")
    width = f.integer("width", 0, 1, MAX_SIDE)
    height = f.integer("height", 0, 1, MAX_SIDE)
    for key in ("width", "height"):
        if key not in body:
            f.error(key, "is required: the source frame's size in pixels")
    if fmt == "nv12" and (width % 2 or height % 2):
        f.error("width" if width % 2 else "height", "NV12 frames have an even width and height")
    resize = f.choice("resize", "bilinear", RESIZE_MODES)
    size = f.pair("size")
    if size is None and "size" not in body:
        f.error("size", "is required: [height, width] of the model input")
    pad_value = f.number("pad_value", 114.0, 0.0, 255.0)
    crop = f.pair("crop")
    if crop is not None and size is not None and (crop[0] > size[0] or crop[1] > size[1]):
        f.error("crop", f"{list(crop)} is bigger than size {list(size)}")
    scale = f.number("scale", 1.0 / 255.0)
    if scale == 0:
        f.error("scale", "must not be 0")
    count = 1 if fmt == "gray" else 3
    mean = f.numbers("mean", (0.0,), count)
    std = f.numbers("std", (1.0,), count)
    if any(s == 0 for s in std):
        f.error("std", "must not contain 0")
    channels = f.choice("channels", "rgb", ("rgb", "bgr"))
    layout = f.choice("layout", "chw", ("chw", "hwc"))
    dtype = f.choice("dtype", "fp32", ("fp32", "fp16"))
    name = f.string("input")
    f.done()
    if not f.ok or size is None:
        return None
    return PreprocessSpec(
        format=fmt,  # type: ignore[arg-type]
        width=width,
        height=height,
        resize=resize,  # type: ignore[arg-type]
        size=size,
        pad_value=pad_value,
        crop=crop,
        scale=scale,
        mean=mean,
        std=std,
        channels=channels,  # type: ignore[arg-type]
        layout=layout,  # type: ignore[arg-type]
        dtype=dtype,  # type: ignore[arg-type]
        input=name,
    )


def parse_postprocess(
    data: object, where: str, add: AddError, *, has_preprocess: bool
) -> PostprocessSpec | None:
    """A validated :class:`PostprocessSpec`, or ``None`` after reporting every problem."""
    body = _mapping(data, where, add)
    if body is None:
        return None
    f = _Fields(body, where, add)
    kind = f.choice("kind", "none", POST_KINDS)
    if "kind" not in body:
        f.error("kind", f"is required: one of {', '.join(POST_KINDS)}")
    output = f.string("output")
    values: dict[str, object] = {"kind": kind, "output": output}
    if kind == "classify":
        values["softmax"] = f.boolean("softmax", True)
        values["top_k"] = f.integer("top_k", 5, 1, 1000)
    elif kind == "detect":
        values["score_threshold"] = f.number("score_threshold", 0.25, 0.0, 1.0)
        values["iou_threshold"] = f.number("iou_threshold", 0.45, 0.0, 1.0)
        values["max_det"] = f.integer("max_det", 100, 1, 10_000)
        values["objectness"] = f.boolean("objectness", False)
        values["layout"] = f.choice("layout", "auto", DETECT_LAYOUTS)
        boxes = f.choice("boxes", "source" if has_preprocess else "model", ("source", "model"))
        if boxes == "source" and not has_preprocess:
            f.error("boxes", "source needs a preprocess section (its frame size and letterbox)")
        values["boxes"] = boxes
    f.done()
    if not f.ok:
        return None
    return PostprocessSpec(**values)  # type: ignore[arg-type]


def parse_stages(
    raw_pre: object,
    raw_post: object,
    where: str,
    shapes: dict[str, tuple[int, ...]],
    add: AddError,
) -> tuple[PreprocessSpec | None, PostprocessSpec | None]:
    """A model's ``preprocess`` and ``postprocess`` sections (each optional).

    Where the model's ``shapes`` name the input the stage writes, the stage is
    checked against it here; otherwise ``check-config`` checks it against the
    model file, and the runner against the loaded model.
    """
    pre = parse_preprocess(raw_pre, f"{where}.preprocess", add) if raw_pre is not None else None
    post = (
        parse_postprocess(raw_post, f"{where}.postprocess", add, has_preprocess=raw_pre is not None)
        if raw_post is not None
        else None
    )
    if pre is not None and shapes:
        key = pre.input if pre.input is not None else next(iter(shapes))
        if key in shapes:
            check_fit(pre, None, shapes[key], None, where=where, add=add)
    return pre, post
