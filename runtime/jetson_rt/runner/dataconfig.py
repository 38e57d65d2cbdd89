"""Schema of the runner's data path settings: video input and result publishing.

``config.py`` is the one validator of ``runner.yaml``; it calls these two
functions with its own section helpers, so their mistakes are reported with the
rest (key path, what to change, all at once). Documented in ``docs/runner.md``:

- a task's ``input`` of ``source: gstreamer`` also takes ``on_eos``
  (restart | stop), ``stall_ms``, ``restart_backoff_ms`` and
  ``restart_backoff_max_ms``;
- the top-level ``publish`` section sends every result over Zenoh.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from jetson_rt.runner.config import _Errors, _Section

OnEos = Literal["restart", "stop"]
ZenohMode = Literal["peer", "client"]
_EOS = ("restart", "stop")
_MODES = ("peer", "client")

# A key expression chunk: no wildcards or reserved characters (Zenoh's key rules).
_CHUNK = re.compile(r"^[A-Za-z0-9_.\-]+$")
# <protocol>/<address>[#<options>], e.g. tcp/192.168.1.10:7447, udp/[::1]:7447.
_PROTOCOLS = ("tcp", "udp", "tls", "quic", "ws", "unixsock-stream")
_ENDPOINT = re.compile(
    r"^(?P<proto>[a-z-]+)/(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):(?P<port>\d+)(#.*)?$"
)


@dataclass(frozen=True)
class VideoSettings:
    """GStreamer source behaviour (``tasks[].input``)."""

    on_eos: OnEos = "restart"
    stall_ms: float = 2000.0
    restart_backoff_ms: float = 200.0
    restart_backoff_max_ms: float = 5000.0


@dataclass(frozen=True)
class PublishConfig:
    """The ``publish`` section: every result over Zenoh."""

    enabled: bool = False
    key_prefix: str = "jetson-rt"
    host: str = ""  # the key's host chunk; empty: this machine's hostname
    mode: ZenohMode = "peer"
    connect: tuple[str, ...] = ()
    listen: tuple[str, ...] = ()
    # Result slots between the loop and the publisher thread; a full queue drops.
    queue: int = 4


def parse_video(section: _Section, errors: _Errors) -> VideoSettings:
    """The GStreamer keys of an ``input`` section (read whatever the source)."""
    settings = VideoSettings(
        on_eos=section.choice("on_eos", "restart", _EOS),  # type: ignore[arg-type]
        stall_ms=section.float_("stall_ms", 2000.0, 10.0, 600_000.0),
        restart_backoff_ms=section.float_("restart_backoff_ms", 200.0, 1.0, 600_000.0),
        restart_backoff_max_ms=section.float_("restart_backoff_max_ms", 5000.0, 1.0, 3_600_000.0),
    )
    if settings.restart_backoff_max_ms < settings.restart_backoff_ms:
        errors.add(
            section.key_path("restart_backoff_max_ms"),
            f"must be at least restart_backoff_ms ({settings.restart_backoff_ms:g})",
        )
    return settings


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a key expression prefix without wildcards, or None."""
    if not key:
        return "must not be empty"
    if key.startswith("/") or key.endswith("/"):
        return f"must not start or end with '/', got {key!r}"
    for chunk in key.split("/"):
        if not _CHUNK.match(chunk):
            return (
                f"{key!r}: every '/'-separated part is letters, digits, _ . - "
                "(no wildcards * ** $ # ?, no empty part)"
            )
    return None


def endpoint_problem(endpoint: object) -> str | None:
    """Why ``endpoint`` is not a Zenoh locator such as ``tcp/10.0.0.1:7447``, or None."""
    if not isinstance(endpoint, str):
        return f"must be a string like tcp/192.168.1.10:7447, got {endpoint!r}"
    match = _ENDPOINT.match(endpoint)
    if match is None:
        return f"{endpoint!r} is not <protocol>/<host>:<port>, e.g. tcp/192.168.1.10:7447"
    if match["proto"] not in _PROTOCOLS:
        return f"{endpoint!r}: protocol must be one of {', '.join(_PROTOCOLS)}"
    if not 0 <= int(match["port"]) <= 65535:
        return f"{endpoint!r}: port must be 0-65535"
    return None


def _endpoints(section: _Section, key: str, errors: _Errors) -> tuple[str, ...]:
    raw = section.raw(key)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.add(section.key_path(key), "must be a list of endpoints like tcp/10.0.0.1:7447")
        return ()
    found: list[str] = []
    for index, item in enumerate(raw):
        problem = endpoint_problem(item)
        if problem is not None:
            errors.add(f"{section.key_path(key)}[{index}]", problem)
        else:
            found.append(str(item))
    return tuple(found)


def parse_publish(section: _Section, errors: _Errors) -> PublishConfig:
    """The top-level ``publish`` section."""
    key_prefix = section.str_("key_prefix", "jetson-rt")
    problem = key_problem(key_prefix)
    if problem is not None:
        errors.add(section.key_path("key_prefix"), problem)
    host = section.str_("host", "")
    if host and not _CHUNK.match(host):
        errors.add(
            section.key_path("host"), f"must be one key part (letters, digits, _ . -), got {host!r}"
        )
    config = PublishConfig(
        enabled=section.bool_("enabled", False),
        key_prefix=key_prefix,
        host=host,
        mode=section.choice("mode", "peer", _MODES),  # type: ignore[arg-type]
        connect=_endpoints(section, "connect", errors),
        listen=_endpoints(section, "listen", errors),
        queue=section.int_("queue", 4, 1, 1024),
    )
    section.done()
    if config.enabled and config.mode == "client" and not config.connect:
        errors.add(
            section.key_path("connect"),
            "is required with mode: client (the Zenoh router to publish through)",
        )
    return config
