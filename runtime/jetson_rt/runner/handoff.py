"""The frame hand-off between a capture thread and the real-time loop, without a lock.

A :class:`FrameSlots` is a ring of preallocated frame slots, each tagged with the
number of the frame it holds (a sequence number). One producer (the capture
thread) writes frame ``k`` into slot ``k % n`` in place:

1. :meth:`FrameSlots.begin` marks the slot as being written (its tag becomes -1)
   and returns the slot's array;
2. the producer fills it (a copy, a colour conversion, a GStreamer buffer);
3. :meth:`FrameSlots.commit` stores the capture time and the source's frame
   number, tags the slot with ``k`` and only then publishes ``head = k + 1``.

The consumer (the loop) reads ``head`` once, picks a frame under its buffering
policy (guide section 15.3), checks the slot's tag, copies the slot out and
checks the tag again. A tag that changed means the producer lapped the reader
during the copy: that frame is counted as dropped and the next newer one is
tried, at most ``n`` times. The loop therefore never waits for the producer: a
capture thread stalled in the middle of a copy holds no lock; its slot is simply
not published yet, and the loop keeps reading the frames that are.

Each counter has one writer (producer or consumer), so plain integers suffice
under CPython; the producer's copy into a slot (``numpy.copyto``) releases the
GIL for large frames.
"""

from __future__ import annotations

import time
from array import array

import numpy as np
import numpy.typing as npt

from jetson_rt.backends.base import TensorSpec
from jetson_rt.runner.config import FramePolicy

Array = npt.NDArray[np.generic]

# The least number of slots: one being written, one published, one being read.
MIN_SLOTS = 3


def matches(frame: Array, spec: TensorSpec) -> bool:
    return bool(frame.shape == spec.shape and frame.dtype == spec.dtype)


class FrameSlots:
    """Single-producer, single-consumer frame slots with sequence numbers (no lock).

    ``capacity`` is how many committed frames the consumer can still reach
    (the skip_n and deadline policies take the oldest first); one more slot is
    kept for the frame being written.
    """

    def __init__(
        self,
        spec: TensorSpec,
        capacity: int,
        policy: FramePolicy,
        skip: int = 2,
        max_age_ms: float = 33.0,
    ) -> None:
        self.spec = spec
        self.capacity = max(capacity, MIN_SLOTS - 1)
        self.policy = policy
        self.skip = skip
        self.max_age_ns = int(max_age_ms * 1e6)
        slots = self.capacity + 1
        self._n = slots
        self._slots = [np.zeros(spec.shape, dtype=spec.dtype) for _ in range(slots)]
        self._tags = array("q", [-1] * slots)
        self._stamps = array("q", bytes(8 * slots))
        self._ids = array("q", bytes(8 * slots))
        # Producer-owned.
        self.head = 0  # frames committed
        self.offered = 0  # frames offered (kept or skipped)
        self.skipped = 0  # frames skip_n left out
        self.rejected = 0  # frames of the wrong shape or dtype
        # Consumer-owned.
        self._tail = 0  # the oldest frame the consumer may still take
        self.dropped = 0  # frames the policy or a lapped read dropped
        self.taken = 0
        self.frame_id = -1  # source frame number of the frame last taken

    @property
    def pushed(self) -> int:
        return self.offered

    # --- producer -------------------------------------------------------------------

    def offer(self) -> bool:
        """Count one frame from the source; False if skip_n leaves it out."""
        self.offered += 1
        if self.policy == "skip_n" and (self.offered - 1) % self.skip:
            self.skipped += 1
            return False
        return True

    def begin(self) -> Array:
        """The slot the next frame goes into, marked as being written."""
        index = self.head % self._n
        self._tags[index] = -1
        return self._slots[index]

    def commit(self, stamp_ns: int, frame_id: int = -1) -> None:
        """Publish the frame written since :meth:`begin` with its capture time."""
        number = self.head
        index = number % self._n
        self._stamps[index] = stamp_ns
        self._ids[index] = frame_id if frame_id >= 0 else number
        self._tags[index] = number
        self.head = number + 1

    def push(self, frame: Array, stamp_ns: int | None = None, frame_id: int = -1) -> bool:
        """Copy one whole frame in; False (and counted) if its shape or dtype is wrong."""
        if not matches(frame, self.spec):
            self.rejected += 1
            return False
        if not self.offer():
            return True
        stamp = time.perf_counter_ns() if stamp_ns is None else stamp_ns
        np.copyto(self.begin(), frame)
        self.commit(stamp, frame_id)
        return True

    # --- consumer -------------------------------------------------------------------

    def take(self, out: Array, now_ns: int) -> int:
        """Copy the frame the policy picks into ``out``; its capture time, or 0 if none."""
        slots = self._n
        tags = self._tags
        for _ in range(slots):
            head = self.head
            tail = self._tail
            oldest = head - slots + 1  # frame head - n's slot may be under rewrite
            if tail < oldest:
                self.dropped += oldest - tail
                tail = oldest
            if tail >= head:
                self._tail = tail
                return 0
            policy = self.policy
            if policy == "latest":
                pick = head - 1
            elif policy == "deadline":
                pick = tail
                max_age = self.max_age_ns
                while pick < head:
                    index = pick % slots
                    if tags[index] == pick and now_ns - self._stamps[index] <= max_age:
                        break
                    pick += 1
                if pick == head:
                    self.dropped += pick - tail
                    self._tail = pick
                    return 0
            else:
                pick = tail
            index = pick % slots
            self.dropped += pick - tail
            if tags[index] != pick:
                # Overwritten since head was read: drop it, look again.
                self.dropped += 1
                self._tail = pick + 1
                continue
            stamp = self._stamps[index]
            frame_id = self._ids[index]
            np.copyto(out, self._slots[index])
            self._tail = pick + 1
            if tags[index] != pick:
                # The producer lapped us during the copy: the data may be torn.
                self.dropped += 1
                continue
            self.taken += 1
            self.frame_id = frame_id
            return stamp
        return 0
