"""The frame hand-off never makes the loop wait for the capture thread (no priority inversion)."""

from __future__ import annotations

import threading
import time

import numpy as np

from jetson_rt.backends.base import TensorSpec
from jetson_rt.runner.handoff import FrameSlots
from jetson_rt.runner.sources import FrameRing

SPEC = TensorSpec("images", (1, 3, 480, 640), np.dtype(np.float32))
MS = 1_000_000


def test_a_capture_thread_stalled_mid_copy_does_not_delay_the_loop() -> None:
    """The producer stops halfway through writing a frame; the loop keeps taking frames."""
    slots = FrameSlots(SPEC, capacity=2, policy="latest")
    out = np.zeros(SPEC.shape, dtype=np.float32)
    for value in (1.0, 2.0):
        assert slots.push(np.full(SPEC.shape, value, dtype=np.float32), stamp_ns=int(value) * MS)
    assert slots.take(out, 10 * MS) == 2 * MS

    stalled = threading.Event()
    release = threading.Event()

    def capture() -> None:
        slot = slots.begin()
        slot[0, 0] = 3.0  # half a frame written...
        stalled.set()
        release.wait(10)  # ...then the thread is preempted for a long time
        slot[0, 1:] = 3.0
        slots.commit(3 * MS)

    producer = threading.Thread(target=capture)
    producer.start()
    try:
        assert stalled.wait(5)
        # The stall must not show in the loop: every take returns at once, without
        # the half-written frame, while the producer is stuck.
        slowest = 0
        for _ in range(200):
            start = time.perf_counter_ns()
            assert slots.take(out, 20 * MS) == 0  # nothing new, and never the torn frame
            slowest = max(slowest, time.perf_counter_ns() - start)
        assert slowest < 5 * MS, f"take() took {slowest / MS:.2f} ms while the producer stalled"
        assert float(out[0, 0, 0, 0]) == 2.0
    finally:
        release.set()
        producer.join(5)
    assert slots.take(out, 20 * MS) == 3 * MS
    assert float(out.min()) == 3.0 == float(out.max())


def test_the_old_locked_ring_is_gone() -> None:
    """Regression guard: the loop's hand-off holds no lock a producer could keep."""
    ring = FrameRing(SPEC, capacity=2, policy="latest")
    assert not any(isinstance(value, type(threading.Lock())) for value in vars(ring).values())


def test_a_reader_lapped_during_its_copy_drops_the_torn_frame() -> None:
    spec = TensorSpec("x", (1, 4), np.dtype(np.float32))
    slots = FrameSlots(spec, capacity=2, policy="skip_n", skip=1)
    out = np.zeros((1, 4), dtype=np.float32)
    slots.push(np.full((1, 4), 1.0, dtype=np.float32), stamp_ns=MS)
    original = np.copyto
    lapped: list[bool] = []

    def copy_while_producer_laps(dst: np.ndarray, src: np.ndarray, **kwargs: object) -> None:
        original(dst, src)
        if dst is out and not lapped:
            lapped.append(True)
            # The producer writes three more frames in the middle of the reader's copy,
            # reusing the slot being read.
            for value in (2.0, 3.0, 4.0):
                slot = slots.begin()
                original(slot, np.full((1, 4), value, dtype=np.float32))
                slots.commit(int(value) * MS)

    np.copyto = copy_while_producer_laps  # type: ignore[assignment]
    try:
        stamp = slots.take(out, 10 * MS)
    finally:
        np.copyto = original
    # Frame 1 was torn and dropped; the reader moved on to an intact newer frame.
    assert stamp in (3 * MS, 4 * MS)
    assert float(out[0, 0]) == stamp / MS
    assert slots.dropped >= 1


def test_frame_ids_and_capture_times_travel_with_the_frame() -> None:
    spec = TensorSpec("x", (1, 4), np.dtype(np.float32))
    slots = FrameSlots(spec, capacity=4, policy="skip_n", skip=1)
    out = np.zeros((1, 4), dtype=np.float32)
    for frame_id in (10, 11, 13):
        slots.push(
            np.full((1, 4), frame_id, dtype=np.float32), stamp_ns=frame_id * MS, frame_id=frame_id
        )
    taken = []
    while (stamp := slots.take(out, 20 * MS)) != 0:
        taken.append((slots.frame_id, stamp // MS, int(out[0, 0])))
    assert taken == [(10, 10, 10), (11, 11, 11), (13, 13, 13)]
