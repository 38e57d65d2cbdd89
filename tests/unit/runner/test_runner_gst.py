"""The gstreamer source on real GStreamer pipelines (videotestsrc, an AVI file), no mocks."""

from __future__ import annotations

import gc
import itertools
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jetson_rt.backends.base import TensorSpec
from jetson_rt.errors import ConfigError
from jetson_rt.runner import gst
from jetson_rt.runner.config import InputConfig, parse_config
from jetson_rt.runner.dataconfig import VideoSettings
from jetson_rt.runner.gst import GstSource, full_pipeline, import_gst, layout
from jetson_rt.runner.service import Runner
from jetson_rt.runner.sources import FILLED
from jetson_rt.runner.stats import read_stats
from onnx_models import GeneratedModel

Gst = import_gst()[0]
SPEC = TensorSpec("input", (1, 3, 16, 16), np.dtype(np.float32))
# A solid colour: videotestsrc's foreground-color is 0xAARRGGBB.
RED, GREEN, BLUE = 0x20, 0x80, 0xF0
SOLID = (
    "videotestsrc is-live=true pattern=solid-color "
    f"foreground-color=0xff{RED:02x}{GREEN:02x}{BLUE:02x}"
)


def source_for(pipeline: str, **video: Any) -> tuple[GstSource, list[np.ndarray]]:
    settings = VideoSettings(**{"restart_backoff_ms": 20.0, "stall_ms": 500.0, **video})
    config = InputConfig(source="gstreamer", pipeline=pipeline, policy="latest", video=settings)
    source = GstSource(config)
    arrays = [np.zeros(SPEC.shape, dtype=np.float32)]
    source.prime([SPEC], arrays)
    return source, arrays


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_frames_arrive_converted_with_capture_time_on_the_monotonic_clock() -> None:
    source, arrays = source_for(SOLID + " ! video/x-raw,width=64,height=48,framerate=30/1")
    source.start()
    try:
        stamps: list[int] = []
        ids: list[int] = []
        while len(stamps) < 5:
            wait_for(lambda: source.fill(arrays, time.perf_counter_ns()) == FILLED)
            now = time.perf_counter_ns()
            stamps.append(source.frame_time_ns)
            ids.append(source.frame_id)
            # Stamped by the pipeline (PTS through the pipeline clock), before we took it.
            assert 0 < now - source.frame_time_ns < 1_000_000_000
    finally:
        source.stop()
    frame = arrays[0]
    # Scaled to 16x16, RGB planes, [0, 1] floats.
    for plane, value in enumerate((RED, GREEN, BLUE)):
        assert abs(float(frame[0, plane].mean()) - value / 255) < 0.02
    assert stamps == sorted(stamps) and len(set(stamps)) == 5
    assert ids == sorted(ids)
    info = source.describe()
    assert info["state"] == "stopped" and info["errors"] == 0
    assert source.pts_fallbacks == 0


def test_end_of_stream_is_counted_and_the_pipeline_restarted() -> None:
    source, _ = source_for(SOLID + " num-buffers=3 ! video/x-raw,framerate=60/1")
    source.start()
    try:
        wait_for(lambda: source.eos >= 2)
    finally:
        source.stop()
    assert source.restarts >= 1
    assert source.frames >= 6
    assert source.errors == 0


def test_on_eos_stop_leaves_the_source_ended() -> None:
    source, _ = source_for(SOLID + " num-buffers=3 ! video/x-raw,framerate=60/1", on_eos="stop")
    source.start()
    try:
        wait_for(lambda: source.state == "eos")
        time.sleep(0.2)
    finally:
        source.stop()
    assert (source.eos, source.frames, source.restarts) == (1, 3, 0)
    assert not source.healthy


def test_a_failing_pipeline_is_reported_and_restarted_until_it_works(tmp_path: Path) -> None:
    """A missing file (camera unplugged) fails; once it appears, frames flow again."""
    clip = tmp_path / "clip.avi"
    source, arrays = source_for(f"filesrc location={clip} ! avidemux ! jpegdec")
    source.start()
    try:
        wait_for(lambda: source.errors >= 2)
        assert source.state == "restarting"
        assert "clip.avi" in source.last_error or "not found" in source.last_error.lower()
        assert source.fill(arrays, time.perf_counter_ns()) != FILLED
        writer = Gst.parse_launch(
            "videotestsrc num-buffers=20 pattern=solid-color foreground-color=0xff00ff00 "
            f"! video/x-raw,width=32,height=24 ! jpegenc ! avimux ! filesink location={clip}"
        )
        writer.set_state(Gst.State.PLAYING)
        writer.get_bus().timed_pop_filtered(10 * Gst.SECOND, Gst.MessageType.EOS)
        writer.set_state(Gst.State.NULL)
        wait_for(lambda: source.fill(arrays, time.perf_counter_ns()) == FILLED)
    finally:
        source.stop()
    assert source.restarts >= 2
    # Green (JPEG's limited YUV range brings 255 to about 235).
    assert float(arrays[0][0, 1].mean()) > 0.85
    assert float(arrays[0][0, 0].mean()) < 0.15
    assert source.describe()["last_error"]


def test_a_stalled_pipeline_counts_as_failed() -> None:
    # A live source at 1 frame per 10 s: nothing arrives within stall_ms.
    source, _ = source_for(SOLID + " ! video/x-raw,framerate=1/10", stall_ms=150.0)
    source.start()
    try:
        wait_for(lambda: source.stalls >= 2)
    finally:
        source.stop()
    assert source.restarts >= 1
    assert "no frame for 150 ms" in source.last_error


def test_a_pipeline_gstreamer_cannot_build_is_refused_at_start() -> None:
    source, _ = source_for("nosuchelementsrc ! videoconvert")
    with pytest.raises(ConfigError, match="nosuchelementsrc"):
        source.start()


def test_layouts_and_the_appended_conversion() -> None:
    assert layout(TensorSpec("x", (1, 3, 24, 32), np.dtype(np.float32))) == (24, 32, 3, True)
    assert layout(TensorSpec("x", (1, 24, 32, 3), np.dtype(np.uint8))) == (24, 32, 3, False)
    assert layout(TensorSpec("x", (1, 1, 24, 32), np.dtype(np.float32))) == (24, 32, 1, True)
    with pytest.raises(ConfigError, match="image input"):
        layout(TensorSpec("x", (1, 64), np.dtype(np.float32)))
    assert "format=GRAY8,width=32,height=24" in full_pipeline(
        "v4l2src", TensorSpec("x", (1, 1, 24, 32), np.dtype(np.float32))
    )
    own = "videotestsrc ! video/x-raw,format=RGB,width=16,height=16 ! appsink name=s"
    assert full_pipeline(own, SPEC) == own


def test_a_broken_camera_stops_only_its_own_task(
    base_config: Callable[..., dict[str, Any]],
    models: dict[str, GeneratedModel],
    tmp_path: Path,
) -> None:
    """The runner keeps serving its other model while one pipeline fails and restarts."""
    doc = base_config()
    doc["models"]["conv"] = {
        "backend": "onnxruntime",
        "path": str(models["conv_bn_relu"].path),
        "verify": False,
    }
    doc["tasks"].append(
        {
            "name": "camera",
            "tiers": ["conv"],
            "deadline_ms": 50,
            "input": {
                "source": "gstreamer",
                "pipeline": f"filesrc location={tmp_path / 'missing.avi'} ! avidemux ! jpegdec",
                "restart_backoff_ms": 20,
            },
        }
    )
    runner = Runner(parse_config(doc))
    runner.run(duration_s=1.0)
    classify, camera = runner.tasks
    assert classify.inferences > 50
    assert camera.inferences == 0
    stats = read_stats(tmp_path / "stats.json")
    described = stats["tasks"]["camera"]["input"]  # type: ignore[index]
    assert described["errors"] >= 2 and described["restarts"] >= 1
    assert stats["health"]["inputs"]["camera"]["state"] in ("restarting", "stopped")  # type: ignore[index]


def test_frames_that_do_not_fit_the_input_are_refused_and_counted() -> None:
    """A pipeline with its own appsink at the wrong size: every frame refused, none torn."""
    source, arrays = source_for(
        SOLID + " ! video/x-raw,framerate=60/1 ! videoconvert ! "
        "video/x-raw,format=RGB,width=20,height=16 ! appsink sync=false"
    )
    source.start()
    try:
        wait_for(lambda: source.rejected >= 5)
        assert source.fill(arrays, time.perf_counter_ns()) != FILLED
    finally:
        source.stop()
    assert source.errors == 0
    assert source.frames >= source.rejected


def test_the_capture_thread_leaves_no_python_memory_behind_per_frame() -> None:
    """Frames through the ctypes path: PyGObject is not called per frame, nothing piles up.

    PyGObject's ``try_pull_sample`` and ``Buffer.map`` leave a few dozen blocks per
    10^4 frames; the ctypes calls leave none (what is alive in the thread at the
    snapshot instant is a handful of objects, well under the bound).
    """
    source, _ = source_for("videotestsrc ! video/x-raw,width=32,height=32")
    source.start()
    tracemalloc.start()
    try:
        wait_for(lambda: source.frames > 500)
        snapshots = []
        for _ in range(3):
            gc.collect()
            snapshots.append(tracemalloc.take_snapshot())
            target = source.frames + 4000
            wait_for(lambda: source.frames > target)  # noqa: B023 - called at once
    finally:
        tracemalloc.stop()
        source.stop()
    for before, after in itertools.pairwise(snapshots):
        grown = after.compare_to(before, "filename")
        in_gi = sum(stat.size_diff for stat in grown if "/gi/" in stat.traceback[0].filename)
        ours = sum(stat.size_diff for stat in grown if stat.traceback[0].filename == gst.__file__)
        assert in_gi <= 0, f"PyGObject grew by {in_gi} B over 4000 frames"
        assert ours < 1024, f"the capture path grew by {ours} B over 4000 frames"
    assert source.errors == 0 and source.frames > 8500
