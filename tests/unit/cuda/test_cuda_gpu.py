"""The CUDA layer on a real GPU (skipped without cuda-python or a device)."""

from __future__ import annotations

import gc
import logging
import math

import numpy as np
import pytest

from jetson_rt.cuda import (
    CudaError,
    DeviceBuffer,
    Event,
    GraphLaunch,
    PinnedBuffer,
    StageTimer,
    Stream,
    check,
    copy_device_to_host_async,
    copy_host_to_device_async,
    device_info,
    runtime,
)

pytestmark = pytest.mark.gpu


def test_device_info(cuda_device: int) -> None:
    info = device_info(cuda_device)
    assert info.name
    assert info.compute_capability >= (5, 0)
    assert info.total_memory_bytes > 0
    assert info.runtime_version[0].isdigit()


def test_stream_is_non_blocking_at_highest_priority(cuda_device: int) -> None:
    rt = runtime()
    _, greatest = check("cudaDeviceGetStreamPriorityRange", rt.cudaDeviceGetStreamPriorityRange())
    with Stream() as stream:
        assert stream.query_priority() == greatest
        flags = check("cudaStreamGetFlags", rt.cudaStreamGetFlags(stream.handle))
        assert flags & rt.cudaStreamNonBlocking


def test_pinned_round_trip_through_the_device(cuda_device: int) -> None:
    shape = (4, 3, 32, 32)
    with (
        Stream() as stream,
        PinnedBuffer(shape, np.float32) as src,
        PinnedBuffer(shape, np.float32) as dst,
        DeviceBuffer(src.nbytes) as device,
    ):
        assert src.array.shape == shape
        assert src.array.dtype == np.float32
        assert not src.array.any()
        values = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        src.array[...] = values
        copy_host_to_device_async(device, src, stream)
        copy_device_to_host_async(dst, device, stream)
        stream.synchronize()
        np.testing.assert_array_equal(dst.array, values)


def test_copy_size_mismatch_is_refused(cuda_device: int) -> None:
    with (
        Stream() as stream,
        PinnedBuffer((16,), np.float32) as host,
        DeviceBuffer(32) as small,
        pytest.raises(ValueError, match=r"64 bytes do not fit a 32-byte"),
    ):
        copy_host_to_device_async(small, host, stream)


def test_buffers_free_once_and_refuse_use_after_close(cuda_device: int) -> None:
    rt = runtime()
    free_before, _ = check("cudaMemGetInfo", rt.cudaMemGetInfo())
    buffers = [DeviceBuffer(64 << 20) for _ in range(4)]
    free_during, _ = check("cudaMemGetInfo", rt.cudaMemGetInfo())
    for buffer in buffers:
        buffer.close()
        buffer.close()
    free_after, _ = check("cudaMemGetInfo", rt.cudaMemGetInfo())
    assert free_before - free_during >= 4 * (64 << 20)
    assert free_after >= free_before - (8 << 20)
    with pytest.raises(ValueError, match=r"closed"):
        _ = buffers[0].ptr


def test_unclosed_buffer_warns_and_is_freed(cuda_device: int) -> None:
    buffer = DeviceBuffer(1 << 20)
    with pytest.warns(ResourceWarning, match=r"DeviceBuffer of 1048576 bytes was not closed"):
        del buffer
        gc.collect()


def test_cuda_error_names_the_call(cuda_device: int) -> None:
    with pytest.raises(CudaError, match=r"cudaMalloc failed: cudaErrorMemoryAllocation"):
        DeviceBuffer(1 << 50)


def test_events_time_work(cuda_device: int) -> None:
    nbytes = 256 << 20
    with (
        Stream() as stream,
        DeviceBuffer(nbytes) as a,
        DeviceBuffer(nbytes) as b,
        Event() as start,
        Event() as end,
    ):
        rt = runtime()
        start.record(stream)
        for _ in range(4):
            check(
                "cudaMemcpyAsync",
                rt.cudaMemcpyAsync(
                    b.ptr, a.ptr, nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice, stream.handle
                ),
            )
        end.record(stream)
        end.synchronize()
        elapsed = end.elapsed_ms(start)
    assert 0.0 < elapsed < 1000.0


def test_stage_timer(cuda_device: int) -> None:
    shape = (1 << 20,)
    with (
        Stream() as stream,
        PinnedBuffer(shape, np.float32) as host,
        DeviceBuffer(host.nbytes) as device,
        StageTimer(("h2d", "infer", "d2h")) as timer,
    ):
        timer.begin("h2d", stream)
        copy_host_to_device_async(device, host, stream)
        timer.end("h2d", stream)
        timer.begin("d2h", stream)
        copy_device_to_host_async(host, device, stream)
        timer.end("d2h", stream)
        stream.synchronize()
        times: dict[str, float] = {}
        timer.read_into(times)
        assert times["h2d"] > 0.0
        assert times["d2h"] > 0.0
        assert math.isnan(times["infer"])
        timer.reset()
        timer.read_into(times)
        assert all(math.isnan(value) for value in times.values())


class _CopyWork:
    """H2D then D2H of one pinned buffer through a device buffer."""

    def __init__(self, stream: Stream, count: int) -> None:
        self.stream = stream
        self.src = PinnedBuffer((count,), np.float32)
        self.dst = PinnedBuffer((count,), np.float32)
        self.device = DeviceBuffer(self.src.nbytes)
        self.calls = 0

    def enqueue(self) -> None:
        self.calls += 1
        copy_host_to_device_async(self.device, self.src, self.stream.handle)
        copy_device_to_host_async(self.dst, self.device, self.stream.handle)

    def close(self) -> None:
        for item in (self.src, self.dst, self.device):
            item.close()


def test_graph_replays_captured_work(cuda_device: int) -> None:
    with Stream() as stream:
        work = _CopyWork(stream, 4096)
        try:
            with GraphLaunch(stream, work.enqueue) as graph:
                assert graph.prepare()
                assert graph.captured
                assert graph.failure is None
                calls_after_prepare = work.calls
                for value in (1.0, 2.5, -3.0):
                    work.src.array[...] = value
                    graph.launch()
                    stream.synchronize()
                    assert (work.dst.array == value).all()
                # Replays do not call the Python enqueue function.
                assert work.calls == calls_after_prepare
        finally:
            work.close()


def test_graph_capture_failure_falls_back_to_enqueue(
    cuda_device: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Synchronising inside capture is illegal: capture fails, plain enqueue still works."""
    with Stream() as stream:
        work = _CopyWork(stream, 1024)

        def enqueue_and_sync() -> None:
            work.enqueue()
            stream.synchronize()

        try:
            graph = GraphLaunch(stream, enqueue_and_sync)
            with caplog.at_level(logging.WARNING, logger="jetson_rt"):
                assert not graph.prepare()
            assert not graph.captured
            assert graph.failure
            assert "CUDA graph capture failed" in caplog.text
            for value in (4.0, 5.0):
                work.src.array[...] = value
                graph.launch()
                stream.synchronize()
                assert (work.dst.array == value).all()
            graph.close()
            # The stream is usable afterwards and no error is left pending.
            check("cudaGetLastError", runtime().cudaGetLastError())
        finally:
            work.close()


def test_graph_can_be_disabled(cuda_device: int) -> None:
    with Stream() as stream:
        work = _CopyWork(stream, 16)
        try:
            graph = GraphLaunch(stream, work.enqueue, use_graph=False)
            assert not graph.prepare()
            assert graph.failure is None
            before = work.calls
            graph.launch()
            stream.synchronize()
            assert work.calls == before + 1
            graph.close()
        finally:
            work.close()
