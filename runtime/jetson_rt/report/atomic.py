"""Report files are written atomically; failures become ReportError."""

from __future__ import annotations

from pathlib import Path

from jetson_rt.atomic import atomic_write_bytes
from jetson_rt.errors import ReportError


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` whole, or leave the old file and raise ReportError."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        atomic_write_bytes(path, payload)
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc.strerror or exc}") from exc
