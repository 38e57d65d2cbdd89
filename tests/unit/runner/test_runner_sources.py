"""Frame buffering policies (guide section 15.3) and input validation."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from jetson_rt.backends.base import TensorSpec
from jetson_rt.errors import PlatformError
from jetson_rt.runner.config import InputConfig
from jetson_rt.runner.sources import (
    FILLED,
    NO_INPUT,
    CameraSource,
    FrameRing,
    FrameSource,
    SyntheticSource,
    camera_available,
    create_source,
)

SPEC = TensorSpec("input", (1, 4), np.dtype(np.float32))
MS = 1_000_000


def frame(value: float) -> np.ndarray:
    return np.full((1, 4), value, dtype=np.float32)


def taken(ring: FrameRing, now_ns: int) -> float | None:
    out = np.zeros((1, 4), dtype=np.float32)
    return float(out[0, 0]) if ring.take(out, now_ns) else None


def test_latest_only_drops_all_but_the_newest() -> None:
    ring = FrameRing(SPEC, capacity=4, policy="latest")
    for index in range(3):
        ring.push(frame(index), stamp_ns=(index + 1) * MS)
    assert taken(ring, 10 * MS) == 2.0
    assert ring.dropped == 2
    assert taken(ring, 10 * MS) is None


def test_full_ring_drops_the_oldest() -> None:
    ring = FrameRing(SPEC, capacity=2, policy="deadline", max_age_ms=1000)
    for index in range(5):
        ring.push(frame(index), stamp_ns=(index + 1) * MS)
    # Overwritten frames are counted when the loop finds them gone.
    assert taken(ring, 6 * MS) == 3.0
    assert ring.dropped == 3
    assert taken(ring, 6 * MS) == 4.0


def test_skip_n_keeps_every_nth_frame_in_order() -> None:
    ring = FrameRing(SPEC, capacity=8, policy="skip_n", skip=3)
    for index in range(7):
        ring.push(frame(index), stamp_ns=(index + 1) * MS)
    assert [taken(ring, 10 * MS) for _ in range(4)] == [0.0, 3.0, 6.0, None]
    assert ring.skipped == 4


def test_deadline_aware_drops_stale_frames() -> None:
    ring = FrameRing(SPEC, capacity=8, policy="deadline", max_age_ms=30)
    for index, stamp in enumerate((0, 10, 50, 60)):
        ring.push(frame(index), stamp_ns=(stamp + 1) * MS)
    # At t=75 ms the frames from 1 and 11 ms are older than 30 ms.
    assert taken(ring, 75 * MS) == 2.0
    assert ring.dropped == 2
    assert taken(ring, 200 * MS) is None  # the last one went stale too
    assert ring.dropped == 3


def test_wrong_shape_or_dtype_is_refused_and_counted() -> None:
    ring = FrameRing(SPEC, capacity=2, policy="latest")
    assert not ring.push(np.zeros((4,), dtype=np.float32))
    assert not ring.push(np.zeros((1, 4), dtype=np.float16))
    assert ring.push(frame(1.0))
    assert ring.rejected == 2


def test_frame_source_fills_the_model_input_and_reports_capture_time() -> None:
    source = FrameSource(InputConfig(source="v4l2", policy="latest"))
    arrays = [np.zeros((1, 4), dtype=np.float32)]
    with pytest.raises(PlatformError):
        source.push(frame(1.0))  # before the runner primed the ring
    source.prime([SPEC], arrays)
    assert source.fill(arrays, 0) == NO_INPUT
    source.push(frame(5.0), stamp_ns=123)
    assert source.fill(arrays, 200) == FILLED
    assert arrays[0][0, 0] == 5.0
    assert source.frame_time_ns == 123


def test_synthetic_source_writes_seeded_data_once() -> None:
    first, second = np.zeros((1, 4), np.float32), np.zeros((1, 4), np.float32)
    SyntheticSource(seed=4).prime([SPEC], [first])
    SyntheticSource(seed=4).prime([SPEC], [second])
    assert np.array_equal(first, second)
    assert first.std() > 0
    ints = np.zeros((2, 3), np.uint8)
    SyntheticSource(seed=1).prime([TensorSpec("i", (2, 3), np.dtype(np.uint8))], [ints])
    assert ints.any()


def test_camera_source_says_when_opencv_is_missing() -> None:
    available, why = camera_available()
    if available:
        pytest.skip("OpenCV is installed here")
    assert "OpenCV is not importable" in why
    with pytest.raises(PlatformError, match=r"camera input .* is unavailable"):
        create_source(InputConfig(source="v4l2"))


def test_camera_capture_thread_converts_frames_for_the_model(tmp_path: Path) -> None:
    """The OpenCV capture path, fed from a recorded clip instead of a camera device."""
    cv2 = pytest.importorskip("cv2")
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    bgr = np.zeros((48, 64, 3), dtype=np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 200, 100, 20  # blue, green, red
    for _ in range(60):
        writer.write(bgr)
    writer.release()

    spec = TensorSpec("images", (1, 3, 24, 32), np.dtype(np.float32))
    source = CameraSource(InputConfig(source="v4l2", policy="latest"))
    arrays = [np.zeros(spec.shape, dtype=np.float32)]
    source.prime([spec], arrays)
    source._capture = cv2.VideoCapture(str(clip))
    assert source._capture.isOpened()
    source._thread = threading.Thread(target=source._run, daemon=True)
    source._thread.start()
    try:
        deadline = time.monotonic() + 10
        while source.fill(arrays, time.perf_counter_ns()) != FILLED:
            assert time.monotonic() < deadline, "no frame arrived"
            time.sleep(0.005)
    finally:
        source.stop()
    frame = arrays[0]
    # Resized to 32x24, RGB, scaled to [0, 1], channels first (JPEG moves values a little).
    assert abs(float(frame[0, 0].mean()) - 20 / 255) < 0.03
    assert abs(float(frame[0, 1].mean()) - 100 / 255) < 0.03
    assert abs(float(frame[0, 2].mean()) - 200 / 255) < 0.03
    assert source.frame_time_ns > 0
    assert source.rejected == 0
