"""The inference watchdog (guide section 16.1) and systemd's ``WATCHDOG=1`` pings.

The loop calls :meth:`Watchdog.beat` after every iteration (one integer store).
A monitor thread wakes every tenth of the timeout; if no beat came for longer
than ``timeout_ms`` it calls ``on_timeout(elapsed_ns, strikes)`` once per
timeout period while the loop stays silent (``strikes`` counts them: the
service switches to a fallback tier on the first and exits on the second, or
exits at once). systemd pings are sent from the same thread only while beats
arrive, so a hung loop also trips systemd's own ``WatchdogSec=``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from jetson_rt.log import logger
from jetson_rt.runner.notify import SystemdNotifier

TimeoutHandler = Callable[[int, int], None]


class Watchdog:
    def __init__(
        self,
        timeout_ms: float,
        on_timeout: TimeoutHandler,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.timeout_ns = int(timeout_ms * 1e6)
        self._on_timeout = on_timeout
        self._notifier = notifier
        self._ping_ns = notifier.watchdog_interval_ns if notifier is not None else 0
        poll_ns = self.timeout_ns // 10
        if self._ping_ns:
            poll_ns = min(poll_ns, self._ping_ns // 2)
        self._poll_s = min(0.1, max(0.001, poll_ns / 1e9))
        self.last_beat_ns = time.monotonic_ns()
        self.armed = False
        self.timeouts = 0
        self._strikes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        self.last_beat_ns = time.monotonic_ns()

    def arm(self) -> None:
        """Start judging the loop (after warm-up): the first beat is now."""
        self.last_beat_ns = time.monotonic_ns()
        self._strikes = 0
        self.armed = True

    def disarm(self) -> None:
        self.armed = False

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="jetson-rt-watchdog", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self.armed = False
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._thread = None

    def _run(self) -> None:
        next_ping = 0
        while not self._stop.wait(self._poll_s):
            now = time.monotonic_ns()
            elapsed = now - self.last_beat_ns
            alive = True
            if self.armed:
                if elapsed > self.timeout_ns * (self._strikes + 1):
                    self._strikes += 1
                    self.timeouts += 1
                    alive = False
                    try:
                        self._on_timeout(elapsed, self._strikes)
                    except Exception:
                        logger.exception("watchdog timeout handler failed")
                elif elapsed > self.timeout_ns:
                    alive = False
                else:
                    self._strikes = 0
            if alive and self._ping_ns and self._notifier is not None and now >= next_ping:
                self._notifier.watchdog()
                next_ping = now + self._ping_ns
