"""systemd's notify protocol (sd_notify(3)) over ``$NOTIFY_SOCKET``, without libsystemd.

A datagram of ``KEY=VALUE`` lines to the socket systemd names in the
environment: a path, or an abstract-namespace name written with a leading ``@``.
``READY=1`` for ``Type=notify`` units, ``WATCHDOG=1`` at half of
``$WATCHDOG_USEC`` for ``WatchdogSec=``, ``STATUS=`` for ``systemctl status`` and
``STOPPING=1`` on shutdown. Outside systemd every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping

from jetson_rt.log import logger


class SystemdNotifier:
    """Sends notifications if ``$NOTIFY_SOCKET`` is set; otherwise does nothing."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._lock = threading.Lock()
        self._failed = False
        self.address: str | None = None
        raw = env.get("NOTIFY_SOCKET", "")
        if raw.startswith("@"):
            self.address = "\0" + raw[1:]
        elif raw.startswith("/"):
            self.address = raw
        elif raw:
            logger.warning("ignoring NOTIFY_SOCKET=%r: not a path or @abstract name", raw)
        self._sock: socket.socket | None = None
        if self.address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        # systemd's watchdog: ping at half the interval, and only if it is meant for us.
        self.watchdog_interval_ns = 0
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval_ns = int(usec) * 1000 // 2

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields in one datagram; False if not under systemd or on error."""
        if self._sock is None or self.address is None:
            return False
        payload = "\n".join(fields).encode("utf-8", "replace")
        with self._lock:
            try:
                self._sock.sendto(payload, self.address)
            except OSError as exc:
                if not self._failed:
                    logger.warning("systemd notification failed: %s", exc)
                    self._failed = True
                return False
        return True

    def ready(self, status: str = "") -> bool:
        fields = ["READY=1", f"MAINPID={os.getpid()}"]
        if status:
            fields.append(f"STATUS={_one_line(status)}")
        return self.send(*fields)

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        fields = ["STOPPING=1"]
        if status:
            fields.append(f"STATUS={_one_line(status)}")
        return self.send(*fields)

    def __enter__(self) -> SystemdNotifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _one_line(text: str) -> str:
    return " ".join(text.split())
