"""Degradation tiers, the SLA window and the event ring."""

from __future__ import annotations

from jetson_rt.runner import events
from jetson_rt.runner.config import DegradationConfig
from jetson_rt.runner.events import Event, EventRing
from jetson_rt.runner.sla import SlaTracker
from jetson_rt.runner.tiers import TierController

MS = 1_000_000


def controller(tiers: int = 2, **overrides: object) -> tuple[TierController, EventRing]:
    config = DegradationConfig(
        **{"step_down_after": 3, "step_up_after": 5, "emergency_hold_ms": 100.0, **overrides}  # type: ignore[arg-type]
    )
    ring = EventRing(64)
    return TierController(tiers, config, ring), ring


def drained(ring: EventRing) -> list[Event]:
    out: list[Event] = []
    ring.drain(out.append)
    return out


def test_consecutive_violations_step_down_and_compliance_steps_up() -> None:
    ctl, ring = controller()
    now = 0
    for _ in range(2):
        ctl.observe(True, now)
    ctl.observe(False, now)  # a compliant inference breaks the run
    ctl.observe(True, now)
    ctl.observe(True, now)
    assert ctl.tier == 0
    ctl.observe(True, now)
    assert ctl.tier == 1
    for _ in range(4):
        ctl.observe(False, now)
    assert ctl.tier == 1
    ctl.observe(False, now)
    assert ctl.tier == 0
    assert ctl.changes == 2
    kinds = [(e.kind, e.a, e.b) for e in drained(ring)]
    assert kinds == [(events.TIER_DOWN, 0, 1), (events.TIER_UP, 1, 0)]


def test_emergency_tier_is_last_and_probes_after_hold() -> None:
    ctl, _ = controller(tiers=2)
    now = 0
    for _ in range(6):
        ctl.observe(True, now)
    assert ctl.tier == 2
    assert ctl.in_emergency
    ctl.poll(now + 50 * MS)
    assert ctl.tier == 2  # still holding
    ctl.poll(now + 100 * MS)
    assert ctl.tier == 1  # probing the cheapest model again


def test_without_emergency_the_lowest_model_tier_is_the_floor() -> None:
    ctl, _ = controller(tiers=2, emergency=False)
    for _ in range(20):
        ctl.observe(True, 0)
    assert ctl.tier == 1
    assert not ctl.in_emergency


def test_thermal_floor_holds_tier_down_until_lifted() -> None:
    ctl, ring = controller(tiers=3)
    ctl.request_floor(1)
    ctl.poll(0)
    assert (ctl.tier, ctl.floor) == (1, 1)
    for _ in range(50):
        ctl.observe(False, 0)
    assert ctl.tier == 1  # compliance cannot climb above the floor
    ctl.request_floor(0)
    ctl.poll(0)
    for _ in range(5):
        ctl.observe(False, 0)
    assert ctl.tier == 0
    kinds = [e.kind for e in drained(ring)]
    assert kinds[:2] == [events.THERMAL_FLOOR, events.TIER_DOWN]


def test_forced_tier_from_another_thread_applies_at_poll() -> None:
    ctl, ring = controller(tiers=2)
    ctl.request_tier(-1)
    assert ctl.tier == 0  # nothing changes until the loop polls
    ctl.poll(0)
    assert ctl.in_emergency
    assert drained(ring)[-1].kind == events.TIER_FORCED


def test_sla_window_slides() -> None:
    sla = SlaTracker(window_s=10.0, target_pct=99.0, slots=10)
    second = 1_000_000_000
    for i in range(100):
        sla.record(i * second // 100, within_deadline=i % 10 != 0)  # 90 % within, second 0
    assert sla.window(second - 1) == (100, 90)
    assert not sla.compliant(second - 1)
    for i in range(100):
        sla.record(5 * second + i, within_deadline=True)
    assert sla.window(5 * second + 100) == (200, 190)
    # Eleven seconds later the bad second has left the window.
    assert sla.window(11 * second) == (100, 100)
    assert sla.compliance_pct(11 * second) == 100.0
    assert sla.compliant(11 * second)
    assert sla.compliance_pct(100 * second) is None
    assert sla.compliant(100 * second)  # no data: compliant


def test_event_ring_counts_overruns() -> None:
    ring = EventRing(4)
    for i in range(10):
        ring.push(i, events.INPUT_REJECTED, 0, i)
    seen = drained(ring)
    assert [e.a for e in seen] == [6, 7, 8, 9]
    assert ring.lost == 6
    assert drained(ring) == []
