"""Degradation tiers (guide section 16.3), driven from the hot loop.

Tier 0 is the best model; each later tier is a cheaper one; after the last
model tier an optional emergency tier skips inference and republishes the last
result. ``step_down_after`` consecutive deadline violations step one tier down,
``step_up_after`` consecutive compliant inferences step one tier up, and the
emergency tier probes the last model tier again after ``emergency_hold_ms``.

Other threads (thermal monitor, watchdog) never touch the counters: they post a
floor or a forced tier, which the loop applies at its next :meth:`poll`. A tier
whose inference hung is retired (:meth:`TierController.retire`): the floor stays
below it until the process restarts, so the ladder never climbs back into it.
"""

from __future__ import annotations

from jetson_rt.runner import events
from jetson_rt.runner.config import DegradationConfig
from jetson_rt.runner.events import EventRing


class TierController:
    __slots__ = (
        "_bad",
        "_emergency_hold_ns",
        "_events",
        "_forced",
        "_forced_seen",
        "_forced_seq",
        "_ok",
        "_requested_floor",
        "_retired_floor",
        "_since_ns",
        "_task",
        "changes",
        "emergency_tier",
        "floor",
        "lowest",
        "model_tiers",
        "pending",
        "step_down_after",
        "step_up_after",
        "tier",
    )

    def __init__(
        self,
        model_tiers: int,
        config: DegradationConfig,
        event_ring: EventRing | None = None,
        task_index: int = 0,
    ) -> None:
        if model_tiers < 1:
            raise ValueError("a task needs at least one model tier")
        self.model_tiers = model_tiers
        self.emergency_tier = model_tiers if config.emergency else -1
        self.lowest = model_tiers if config.emergency else model_tiers - 1
        self.step_down_after = config.step_down_after
        self.step_up_after = config.step_up_after
        self._emergency_hold_ns = int(config.emergency_hold_ms * 1e6)
        self._events = event_ring if event_ring is not None else EventRing(16)
        self._task = task_index
        self.tier = 0
        self.floor = 0
        self.changes = 0
        self._bad = 0
        self._ok = 0
        self._since_ns = 0
        self._requested_floor = 0
        self._retired_floor = 0
        self._forced = -1
        self._forced_seq = 0
        self._forced_seen = 0
        # True when poll() has work: a posted floor or tier, or the emergency hold running.
        self.pending = False

    @property
    def in_emergency(self) -> bool:
        return self.tier == self.emergency_tier

    # --- called from other threads ------------------------------------------

    def request_floor(self, floor: int) -> None:
        """Keep the tier at or below quality ``floor`` (thermal throttling); 0 lifts it."""
        self._requested_floor = max(0, min(floor, self.lowest))
        self.pending = True

    def retire(self, tier: int) -> None:
        """Never serve ``tier`` or a better one again in this process (its inference hung)."""
        self._retired_floor = max(self._retired_floor, min(tier + 1, self.lowest))
        self.pending = True

    @property
    def retired_floor(self) -> int:
        return self._retired_floor

    def request_tier(self, tier: int) -> None:
        """Switch to ``tier`` at the next poll (-1: the emergency tier, else the lowest)."""
        self._forced = self.lowest if tier < 0 else min(tier, self.lowest)
        self._forced_seq += 1
        self.pending = True

    # --- called from the loop ---------------------------------------------------

    def poll(self, now_ns: int) -> None:
        """Apply what other threads posted; in the emergency tier, probe upwards.

        The loop calls this only while :attr:`pending` is set; a request posted
        during the call sets it again and is applied at the next round.
        """
        self.pending = False
        floor = max(self._requested_floor, self._retired_floor)
        if floor != self.floor:
            self.floor = floor
            if self._requested_floor >= self._retired_floor:  # a retirement is logged apart
                self._events.push(now_ns, events.THERMAL_FLOOR, self._task, self.floor, self.tier)
            if self.tier < self.floor:
                self._set(self.floor, now_ns, events.TIER_DOWN)
        if self._forced_seq != self._forced_seen:
            self._forced_seen = self._forced_seq
            target = max(self._forced, self.floor)
            if target != self.tier:
                self._set(target, now_ns, events.TIER_FORCED)
        if (
            self.tier == self.emergency_tier
            and self.tier > self.floor
            and now_ns - self._since_ns >= self._emergency_hold_ns
        ):
            self._set(self.tier - 1, now_ns, events.TIER_UP)
        if self.tier == self.emergency_tier:
            self.pending = True

    def observe(self, violated: bool, now_ns: int) -> None:
        """Count one inference against the tier thresholds."""
        if violated:
            self._ok = 0
            self._bad += 1
            if self._bad >= self.step_down_after and self.tier < self.lowest:
                self._set(self.tier + 1, now_ns, events.TIER_DOWN)
        else:
            self._bad = 0
            self._ok += 1
            if self._ok >= self.step_up_after and self.tier > self.floor:
                self._set(self.tier - 1, now_ns, events.TIER_UP)

    def _set(self, tier: int, now_ns: int, kind: int) -> None:
        self._events.push(now_ns, kind, self._task, self.tier, tier)
        self.tier = tier
        if tier == self.emergency_tier:
            self.pending = True
        self.changes += 1
        self._bad = 0
        self._ok = 0
        self._since_ns = now_ns
