"""A fixed ring of integer events, written by the hot loop and read by a slow thread.

The loop must not log or format strings per inference, yet rare events (a tier
change, a rejected input) deserve a log line. The loop writes five integers into
preallocated slots; the stats thread drains the ring and does the formatting.
One writer, one reader; under the GIL an overrun loses the oldest events and is
counted, never blocks the writer.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import NamedTuple

TIER_DOWN = 1
TIER_UP = 2
TIER_FORCED = 3
THERMAL_FLOOR = 4
INPUT_REJECTED = 5
BACKEND_ERROR = 6
NO_INPUT = 7

EVENT_NAMES = {
    TIER_DOWN: "tier_down",
    TIER_UP: "tier_up",
    TIER_FORCED: "tier_forced",
    THERMAL_FLOOR: "thermal_floor",
    INPUT_REJECTED: "input_rejected",
    BACKEND_ERROR: "backend_error",
    NO_INPUT: "no_input",
}


class Event(NamedTuple):
    time_ns: int
    kind: int
    task: int
    a: int
    b: int


class EventRing:
    __slots__ = ("_a", "_b", "_kind", "_task", "_time", "capacity", "lost", "read", "written")

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        # Unboxed slots: a push stores integers without keeping Python objects alive.
        self._time = array("q", bytes(8 * capacity))
        self._kind = array("q", bytes(8 * capacity))
        self._task = array("q", bytes(8 * capacity))
        self._a = array("q", bytes(8 * capacity))
        self._b = array("q", bytes(8 * capacity))
        self.written = 0
        self.read = 0
        self.lost = 0

    def push(self, time_ns: int, kind: int, task: int, a: int = 0, b: int = 0) -> None:
        slot = self.written % self.capacity
        self._time[slot] = time_ns
        self._kind[slot] = kind
        self._task[slot] = task
        self._a[slot] = a
        self._b[slot] = b
        self.written += 1

    def drain(self, handle: Callable[[Event], None]) -> int:
        """Pass every unread event to ``handle``, oldest first; return how many."""
        written = self.written
        if written - self.read > self.capacity:
            self.lost += written - self.read - self.capacity
            self.read = written - self.capacity
        handled = 0
        while self.read < written:
            slot = self.read % self.capacity
            handle(
                Event(
                    self._time[slot],
                    self._kind[slot],
                    self._task[slot],
                    self._a[slot],
                    self._b[slot],
                )
            )
            self.read += 1
            handled += 1
        return handled
