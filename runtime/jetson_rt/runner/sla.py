"""A sliding-window SLA tracker over a fixed ring of time slots.

The guide's tracker (section 16.4) keeps every sample of the window in a deque;
at a few hundred inferences a second that is an allocation per inference and an
O(n) scan per check. This one splits the window into ``slots`` equal time slots,
each holding two counters, reused in a ring: recording is O(1) and allocates
nothing, a check is O(slots), and the window slides with a resolution of
``window / slots``.
"""

from __future__ import annotations

from array import array

# A window with fewer samples than this is reported compliant (not enough data).
MIN_SAMPLES = 10


class SlaTracker:
    """Share of inferences within the deadline over the last ``window_s`` seconds."""

    __slots__ = ("_epoch", "_slot_ns", "_total", "_within", "slots", "target_pct", "window_s")

    def __init__(self, window_s: float, target_pct: float, slots: int = 60) -> None:
        if window_s <= 0 or slots < 1:
            raise ValueError("window_s and slots must be positive")
        self.window_s = window_s
        self.target_pct = target_pct
        self.slots = slots
        self._slot_ns = max(1, int(window_s * 1e9 / slots))
        # Unboxed counters: updating them leaves no Python int behind.
        self._epoch = array("q", [-1] * slots)
        self._total = array("q", bytes(8 * slots))
        self._within = array("q", bytes(8 * slots))

    def record(self, now_ns: int, within_deadline: bool) -> None:
        epoch = now_ns // self._slot_ns
        slot = epoch % self.slots
        if self._epoch[slot] != epoch:
            self._epoch[slot] = epoch
            self._total[slot] = 0
            self._within[slot] = 0
        self._total[slot] += 1
        if within_deadline:
            self._within[slot] += 1

    def window(self, now_ns: int) -> tuple[int, int]:
        """(inferences, inferences within deadline) in the window ending at ``now_ns``."""
        current = now_ns // self._slot_ns
        oldest = current - self.slots + 1
        total = within = 0
        for slot in range(self.slots):
            epoch = self._epoch[slot]
            if oldest <= epoch <= current:
                total += self._total[slot]
                within += self._within[slot]
        return total, within

    def compliance_pct(self, now_ns: int) -> float | None:
        total, within = self.window(now_ns)
        if total == 0:
            return None
        return 100.0 * within / total

    def compliant(self, now_ns: int) -> bool:
        total, within = self.window(now_ns)
        if total < MIN_SAMPLES:
            return True
        return 100.0 * within / total >= self.target_pct
