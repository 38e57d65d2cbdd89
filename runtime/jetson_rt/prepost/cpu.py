"""The numpy lane: the same pre- and post-processing as the GPU kernels, on the CPU.

Pre-processing gathers only the source pixels the output samples (four per
output pixel, from index tables built once), converts NV12 with OpenCV's
fixed-point BT.601 coefficients (bit-exact with ``cv2.cvtColor``), blends in
float32 with the weights of :class:`~jetson_rt.prepost.spec.Geometry` and
writes straight into the model's input array. Every intermediate array is
allocated in ``__init__``; a frame costs no allocation.

Post-processing decodes a YOLO-style head (best class per candidate, times
objectness where there is one), sorts by score (ties: lower candidate index
first) and runs class-aware greedy NMS with torchvision's IoU (suppress when
IoU > threshold), keeping at most ``max_det`` rows of
``[x1, y1, x2, y2, score, class]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from jetson_rt.prepost.spec import DetectShape, PostprocessSpec, PreprocessSpec, f32_at_most

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
U8 = npt.NDArray[np.uint8]

# OpenCV's ITU-R BT.601 YUV -> RGB coefficients (color_yuv.simd.hpp), 20-bit fixed point.
CY, CUB, CUG, CVG, CVR, SHIFT = 1220542, 2116026, -409993, -852492, 1673527, 20
HALF = 1 << (SHIFT - 1)


# The luma table carries this offset (in units of 1 << SHIFT), so a shifted sum is a
# valid index into _SATURATE (shifted sums span -260..535 before saturation).
_BIAS = 512
_SATURATE = np.clip(np.arange(4 * _BIAS) - _BIAS, 0, 255).astype(np.float32)


def _tables() -> tuple[I32, tuple[I32, I32, I32]]:
    luma = np.maximum(np.arange(256, dtype=np.int32) - 16, 0) * CY + HALF + (_BIAS << SHIFT)
    luma = luma.astype(np.int32)
    uv = np.arange(65536, dtype=np.int32)
    u = (uv & 0xFF) - 128
    v = (uv >> 8) - 128
    red = (CVR * v).astype(np.int32)
    green = (CVG * v + CUG * u).astype(np.int32)
    blue = (CUB * u).astype(np.int32)
    return luma, (red, green, blue)


# Y byte -> max(Y - 16, 0) * CY + rounding; (U | V << 8) -> the R, G, B chroma terms.
_LUMA, _CHROMA = _tables()


class CpuPreprocess:
    """Frame (uint8) -> model input tensor, into a caller-owned array."""

    def __init__(self, spec: PreprocessSpec) -> None:
        self.spec = spec
        geo = spec.geometry()
        self.geometry = geo
        rows = np.flatnonzero(geo.y0 >= 0)
        cols = np.flatnonzero(geo.x0 >= 0)
        self.r0, self.r1 = int(rows[0]), int(rows[-1]) + 1
        self.c0, self.c1 = int(cols[0]), int(cols[-1]) + 1
        y0 = geo.y0[self.r0 : self.r1].astype(np.int64)
        y1 = geo.y1[self.r0 : self.r1].astype(np.int64)
        x0 = geo.x0[self.c0 : self.c1].astype(np.int64)
        x1 = geo.x1[self.c0 : self.c1].astype(np.int64)
        h, w = self.r1 - self.r0, self.c1 - self.c0
        self.shape = (h, w)
        wx0 = geo.wx0[self.c0 : self.c1][None, :]
        wx1 = geo.wx1[self.c0 : self.c1][None, :]
        self.wx0, self.wx1 = wx0, wx1
        self.wy0 = geo.wy0[self.r0 : self.r1][:, None]
        self.wy1 = geo.wy1[self.r0 : self.r1][:, None]
        width = spec.width
        fmt = spec.format
        # Flat gather indices of the four neighbours (00, 01, 10, 11).
        pairs = ((y0, x0), (y0, x1), (y1, x0), (y1, x1))
        step = 3 if fmt in ("bgr", "rgb") else 1
        self.pix_idx = [(ys[:, None] * width + xs[None, :]) * step for ys, xs in pairs]
        self.uv_idx: list[npt.NDArray[np.int64]] = []
        if fmt == "nv12":
            # Indices into the chroma plane seen as uint16 (U | V << 8, little endian).
            self.uv_idx = [
                ((ys[:, None] // 2) * width + (xs[None, :] & ~1)) // 2 for ys, xs in pairs
            ]
        count = spec.out_channels
        self.a, self.b = spec.affine()
        # Source channel feeding each output channel (rgb/bgr order).
        if fmt == "gray":
            self.src_channel = [0]
        else:
            order = [0, 1, 2] if spec.channels == "rgb" else [2, 1, 0]
            src_rgb = [2, 1, 0] if fmt == "bgr" else [0, 1, 2]
            self.src_channel = [src_rgb[c] for c in order]
        self.pad = [np.float32(spec.pad_value) * self.a[c] + self.b[c] for c in range(count)]
        # Work arrays, allocated once.
        self.gather_u8 = np.empty((h, w), dtype=np.uint8)
        self.i_y = np.empty((h, w), dtype=np.int32)
        self.gather_u16 = np.empty((h, w), dtype=np.uint16)
        self.i_t = np.empty((h, w), dtype=np.int32)
        # neighbour x channel, float32 pixel values
        self.px = np.empty((4, 3 if fmt != "gray" else 1, h, w), dtype=np.float32)
        self.acc = np.empty((h, w), dtype=np.float32)
        self.tmp = np.empty((h, w), dtype=np.float32)
        self.row = np.empty((h, w), dtype=np.float32)

    def _gather_nv12(self, flat: U8) -> None:
        # Integer maths as OpenCV's, through tables: the luma term per Y byte and the
        # three chroma terms per (U, V) pair, read as one little-endian uint16.
        uv_plane = flat[self.spec.height * self.spec.width :].view(np.uint16)
        gather, gather_uv, iy, it = self.gather_u8, self.gather_u16, self.i_y, self.i_t
        for n in range(4):
            np.take(flat, self.pix_idx[n], out=gather)
            np.take(_LUMA, gather, out=iy)
            np.take(uv_plane, self.uv_idx[n], out=gather_uv)
            for channel, table in enumerate(_CHROMA):
                np.take(table, gather_uv, out=it)
                np.add(it, iy, out=it)
                np.right_shift(it, SHIFT, out=it)
                # Saturate to 0..255 and convert to float32 in one lookup.
                np.take(_SATURATE, it, out=self.px[n, channel])

    def run(self, frame: npt.NDArray[Any], out: npt.NDArray[Any]) -> None:
        """Write the model input for ``frame`` into ``out`` (shape ``spec.tensor_shape``)."""
        spec = self.spec
        flat = frame.reshape(-1)
        if spec.format == "nv12":
            self._gather_nv12(flat)
        else:
            channels = 1 if spec.format == "gray" else 3
            gather = self.gather_u8
            for n in range(4):
                for channel in range(channels):
                    idx = self.pix_idx[n] if channel == 0 else self.pix_idx[n] + channel
                    np.take(flat, idx, out=gather)
                    self.px[n, channel] = gather
        image = out[0]
        chw = spec.layout == "chw"
        acc, tmp, row = self.acc, self.tmp, self.row
        r0, r1, c0, c1 = self.r0, self.r1, self.c0, self.c1
        for channel, source in enumerate(self.src_channel):
            plane = image[channel] if chw else image[..., channel]
            p = self.px[:, source]
            # (p00 * wx0 + p01 * wx1) * wy0 + (p10 * wx0 + p11 * wx1) * wy1
            np.multiply(p[0], self.wx0, out=row)
            np.multiply(p[1], self.wx1, out=tmp)
            np.add(row, tmp, out=row)
            np.multiply(row, self.wy0, out=acc)
            np.multiply(p[2], self.wx0, out=row)
            np.multiply(p[3], self.wx1, out=tmp)
            np.add(row, tmp, out=row)
            np.multiply(row, self.wy1, out=row)
            np.add(acc, row, out=acc)
            np.multiply(acc, self.a[channel], out=acc)
            np.add(acc, self.b[channel], out=acc)
            pad = self.pad[channel]
            plane[:r0] = pad
            plane[r1:] = pad
            plane[r0:r1, :c0] = pad
            plane[r0:r1, c1:] = pad
            plane[r0:r1, c0:c1] = acc


def _iou_suppress(
    boxes: F32, areas: F32, index: int, rest: slice, threshold: float
) -> npt.NDArray[np.bool_]:
    """``IoU(boxes[index], boxes[rest]) > threshold`` as torchvision computes it (float32)."""
    box = boxes[index]
    others = boxes[rest]
    w = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0])
    h = np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1])
    np.maximum(w, np.float32(0), out=w)
    np.maximum(h, np.float32(0), out=h)
    inter = w * h
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / (areas[index] + areas[rest] - inter)
    hit: npt.NDArray[np.bool_] = iou > np.float32(f32_at_most(threshold))
    return hit


# Up to this many candidates the IoU matrix is computed at once (16 MiB of float32 at
# most); beyond it, one row per kept box.
MATRIX_NMS_MAX = 2048


def _nms_matrix(
    boxes: F32, areas: F32, classes: I32, iou_threshold: float, max_det: int
) -> npt.NDArray[np.int64]:
    """Greedy NMS over sorted boxes from the whole suppression matrix (same IoU maths)."""
    w = np.minimum(boxes[:, None, 2], boxes[None, :, 2]) - np.maximum(
        boxes[:, None, 0], boxes[None, :, 0]
    )
    h = np.minimum(boxes[:, None, 3], boxes[None, :, 3]) - np.maximum(
        boxes[:, None, 1], boxes[None, :, 1]
    )
    np.maximum(w, np.float32(0), out=w)
    np.maximum(h, np.float32(0), out=h)
    inter = w * h
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / (areas[:, None] + areas[None, :] - inter)
    suppress = iou > np.float32(f32_at_most(iou_threshold))
    suppress &= classes[:, None] == classes[None, :]
    suppress = np.triu(suppress, k=1)
    removed = np.zeros(len(boxes), dtype=np.bool_)
    keep: list[int] = []
    for i in range(len(boxes)):
        if removed[i]:
            continue
        keep.append(i)
        if len(keep) >= max_det:
            break
        removed |= suppress[i]
    return np.asarray(keep, dtype=np.int64)


def nms(
    boxes: F32, scores: F32, classes: I32, iou_threshold: float, max_det: int
) -> npt.NDArray[np.int64]:
    """Class-aware greedy NMS; indices kept, by decreasing score (ties: lower index first)."""
    order = np.argsort(-scores, kind="stable")
    boxes = boxes[order]
    classes = classes[order]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    if 0 < len(order) <= MATRIX_NMS_MAX:
        return order[_nms_matrix(boxes, areas, classes, iou_threshold, max_det)]
    removed = np.zeros(len(order), dtype=np.bool_)
    keep: list[int] = []
    for i in range(len(order)):
        if removed[i]:
            continue
        keep.append(i)
        if len(keep) >= max_det:
            break
        rest = slice(i + 1, None)
        hit = _iou_suppress(boxes, areas, i, rest, iou_threshold)
        hit &= classes[rest] == classes[i]
        removed[rest] |= hit
    return order[np.asarray(keep, dtype=np.int64)]


def decode(
    raw: npt.NDArray[Any], shape: DetectShape, objectness: bool, threshold: float
) -> tuple[F32, F32, I32, npt.NDArray[np.int64]]:
    """Candidates above ``threshold``: xyxy boxes, scores, classes, candidate indices.

    Reductions run along the memory order of the head (over anchors for a
    channels-first ``[4+C, N]`` head, as YOLOv8 exports it), not across it.
    """
    first = 5 if objectness else 4
    last = first + shape.classes
    values = raw.astype(np.float32, copy=False)
    if shape.channels_first:
        table = values.reshape(-1, shape.anchors)
        cls = table[first:last]
        best = np.argmax(cls, axis=0).astype(np.int32)
        score = np.max(cls, axis=0)
        objness = table[4] if objectness else None
    else:
        table = values.reshape(shape.anchors, -1)
        cls = table[:, first:last]
        best = np.argmax(cls, axis=1).astype(np.int32)
        score = np.max(cls, axis=1)
        objness = table[:, 4] if objectness else None
    if objness is not None:
        score = score * objness
    index = np.flatnonzero(score > np.float32(f32_at_most(threshold)))
    if shape.channels_first:
        cx, cy, w, h = (table[k, index] for k in range(4))
    else:
        cx, cy, w, h = (table[index, k] for k in range(4))
    half = np.float32(0.5)
    boxes = np.stack([cx - w * half, cy - h * half, cx + w * half, cy + h * half], axis=1).astype(
        np.float32
    )
    return boxes, score[index].astype(np.float32), best[index], index


class CpuPostprocess:
    """Raw model output -> the result arrays an application reads.

    ``detect``: ``count`` (int32, shape (1,)) and ``detections`` (float32,
    ``[max_det, 6]``: x1, y1, x2, y2, score, class; rows past ``count`` are 0).
    ``classify``: ``classes`` (int32, ``[top_k]``) and ``scores`` (float32).
    """

    def __init__(
        self,
        spec: PostprocessSpec,
        output_shape: tuple[int, ...],
        pre: PreprocessSpec | None = None,
    ) -> None:
        from jetson_rt.errors import ConfigError
        from jetson_rt.prepost.spec import detect_shape

        self.spec = spec
        self.detect: DetectShape | None = None
        problems: list[str] = []
        if spec.kind == "detect":
            self.detect = detect_shape(
                spec, output_shape, "postprocess", lambda p, m: problems.append(f"{p}: {m}")
            )
            if problems:
                raise ConfigError(problems[0])
        self.map_boxes = spec.kind == "detect" and spec.boxes == "source" and pre is not None
        self.box_map = (0.0, 0.0, 1.0, 1.0, 0.0, 0.0)
        if self.map_boxes and pre is not None:
            geo = pre.geometry()
            self.box_map = (
                geo.box_offset_x,
                geo.box_offset_y,
                geo.box_gain_x,
                geo.box_gain_y,
                float(pre.width),
                float(pre.height),
            )
        self.outputs: dict[str, npt.NDArray[Any]] = {}
        if spec.kind == "detect":
            self.outputs = {
                "count": np.zeros(1, dtype=np.int32),
                "detections": np.zeros((spec.max_det, 6), dtype=np.float32),
            }
        elif spec.kind == "classify":
            self.outputs = {
                "classes": np.zeros(spec.top_k, dtype=np.int32),
                "scores": np.zeros(spec.top_k, dtype=np.float32),
            }

    def run(self, raw: npt.NDArray[Any]) -> None:
        spec = self.spec
        if spec.kind == "detect":
            assert self.detect is not None
            boxes, scores, classes, _ = decode(
                raw, self.detect, spec.objectness, spec.score_threshold
            )
            keep = nms(boxes, scores, classes, spec.iou_threshold, spec.max_det)
            out = self.outputs["detections"]
            out[...] = 0
            n = len(keep)
            out[:n, :4] = boxes[keep]
            out[:n, 4] = scores[keep]
            out[:n, 5] = classes[keep]
            if self.map_boxes:
                ox, oy, gx, gy, width, height = self.box_map
                for k, (offset, gain, limit) in enumerate(
                    ((ox, gx, width), (oy, gy, height), (ox, gx, width), (oy, gy, height))
                ):
                    column = out[:n, k]
                    column += np.float32(offset)
                    column *= np.float32(gain)
                    np.clip(column, np.float32(0), np.float32(limit), out=column)
            self.outputs["count"][0] = n
        elif spec.kind == "classify":
            logits = raw.reshape(-1).astype(np.float32, copy=False)
            if spec.softmax:
                shifted = logits - logits.max()
                np.exp(shifted, out=shifted)
                shifted /= shifted.sum(dtype=np.float32)
                logits = shifted
            order = np.argsort(-logits, kind="stable")[: spec.top_k]
            self.outputs["classes"][...] = order
            self.outputs["scores"][...] = logits[order]
