"""The slow health monitor (guide sections 17.1, 17.4, 17.5) and thermal tier switching.

Every ``health.interval_s`` a background thread reads, through
:mod:`jetson_rt.platform`, the GPU clock against its maximum, every thermal
zone, ``MemAvailable`` and active swap. A warning is logged when a condition
appears and once more when it clears, never per check. When the hottest zone
reaches ``thermal.throttle_c`` every task is held ``thermal.tier`` tiers below
its best model until the zone cools to ``thermal.resume_c`` (hysteresis, so the
tier does not flap); the loop applies the floor at its next round.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from jetson_rt import platform
from jetson_rt.log import logger
from jetson_rt.runner.config import HealthConfig, ThermalConfig
from jetson_rt.runner.tiers import TierController


@dataclass
class HealthSnapshot:
    checked_at: float = 0.0
    max_temp_c: float | None = None
    hottest_zone: str | None = None
    zones: dict[str, float] = field(default_factory=dict)
    gpu_cur_hz: int | None = None
    gpu_max_hz: int | None = None
    gpu_clock_ratio: float | None = None
    mem_available_mb: float | None = None
    swap_used_mb: float | None = None
    swap_devices: list[str] = field(default_factory=list)
    thermal_throttled: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "checked_at": self.checked_at,
            "max_temp_c": self.max_temp_c,
            "hottest_zone": self.hottest_zone,
            "zones_c": dict(self.zones),
            "gpu_cur_hz": self.gpu_cur_hz,
            "gpu_max_hz": self.gpu_max_hz,
            "gpu_clock_ratio": self.gpu_clock_ratio,
            "mem_available_mb": self.mem_available_mb,
            "swap_used_mb": self.swap_used_mb,
            "swap_devices": list(self.swap_devices),
            "thermal_throttled": self.thermal_throttled,
            "warnings": list(self.warnings),
        }


class HealthMonitor:
    def __init__(
        self,
        config: HealthConfig,
        thermal: ThermalConfig,
        controllers: Sequence[TierController],
        root: str = platform.ROOT,
    ) -> None:
        self.config = config
        self.thermal = thermal
        self.controllers = list(controllers)
        self.root = root
        self.latest = HealthSnapshot()
        self.throttle_events = 0
        self._throttled = False
        self._active: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.check()
        self._thread = threading.Thread(target=self._run, name="jetson-rt-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._stop.wait(self.config.interval_s):
            try:
                self.check()
            except Exception:
                logger.exception("health check failed")

    def check(self) -> HealthSnapshot:
        """One pass over every probe; updates :attr:`latest` and the thermal floor."""
        snap = HealthSnapshot(checked_at=time.time())
        found: dict[str, str] = {}
        for zone in platform.thermal_zones(self.root):
            if zone.temp_c is None:
                continue
            snap.zones[zone.type] = zone.temp_c
            if snap.max_temp_c is None or zone.temp_c > snap.max_temp_c:
                snap.max_temp_c = zone.temp_c
                snap.hottest_zone = zone.type
            if zone.warn_c is not None and zone.temp_c >= zone.warn_c:
                found[f"thermal:{zone.type}"] = (
                    f"{zone.type} at {zone.temp_c:.1f} C, at or above its passive trip "
                    f"{zone.warn_c:.1f} C: the SoC is throttling"
                )
        gpu = platform.gpu_devfreq(self.root)
        if gpu is not None and gpu.cur_hz and gpu.max_hz:
            snap.gpu_cur_hz, snap.gpu_max_hz = gpu.cur_hz, gpu.max_hz
            snap.gpu_clock_ratio = round(gpu.cur_hz / gpu.max_hz, 4)
            if snap.gpu_clock_ratio < self.config.gpu_clock_min_ratio:
                found["gpu_clock"] = (
                    f"GPU clock {gpu.cur_hz / 1e6:.0f} MHz is below "
                    f"{self.config.gpu_clock_min_ratio:.0%} of max {gpu.max_hz / 1e6:.0f} MHz: "
                    "lock clocks with jetson_clocks"
                )
        mem = platform.meminfo(self.root)
        if "MemAvailable" in mem:
            snap.mem_available_mb = round(mem["MemAvailable"] / 1024, 1)
            if snap.mem_available_mb < self.config.min_mem_available_mb:
                found["memory"] = (
                    f"MemAvailable {snap.mem_available_mb:.0f} MB is below "
                    f"{self.config.min_mem_available_mb} MB"
                )
        if "SwapTotal" in mem and "SwapFree" in mem:
            snap.swap_used_mb = round((mem["SwapTotal"] - mem["SwapFree"]) / 1024, 1)
        snap.swap_devices = platform.swaps(self.root)
        if snap.swap_devices:
            found["swap"] = (
                f"swap is active ({', '.join(snap.swap_devices)}, "
                f"{snap.swap_used_mb or 0:.0f} MB used): disable zram and swapoff -a"
            )
        from jetson_rt.runner.throttle import health_warnings

        found.update(health_warnings(self.root))
        self._update_thermal(snap)
        snap.thermal_throttled = self._throttled
        snap.warnings = sorted(found.values())
        for key in sorted(found.keys() - self._active):
            logger.warning("health: %s", found[key])
        for key in sorted(self._active - found.keys()):
            logger.info("health: %s cleared", key)
        self._active = set(found)
        self.latest = snap
        return snap

    def _update_thermal(self, snap: HealthSnapshot) -> None:
        if not self.thermal.enabled or snap.max_temp_c is None:
            return
        if not self._throttled and snap.max_temp_c >= self.thermal.throttle_c:
            self._throttled = True
            self.throttle_events += 1
            logger.warning(
                "thermal: %s at %.1f C >= %.1f C: holding every task %d tier(s) down",
                snap.hottest_zone,
                snap.max_temp_c,
                self.thermal.throttle_c,
                self.thermal.tier,
            )
            for controller in self.controllers:
                controller.request_floor(self.thermal.tier)
        elif self._throttled and snap.max_temp_c <= self.thermal.resume_c:
            self._throttled = False
            logger.warning(
                "thermal: %s cooled to %.1f C <= %.1f C: best tiers allowed again",
                snap.hottest_zone,
                snap.max_temp_c,
                self.thermal.resume_c,
            )
            for controller in self.controllers:
                controller.request_floor(0)
