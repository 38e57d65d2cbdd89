"""Report files are written atomically, and together; failures become ReportError.

:func:`write_together` gives the outputs of one report all-or-nothing semantics:
every file is first written and synced under a temporary name in the output
folder, then each is renamed over its final name. If a write fails, the
temporary files are removed and the folder is as it was. If a rename fails
(a folder where a file should be), the files already renamed are put back as
they were (the previous report's, kept as hard links until the end) or
removed. Folders the call created are removed again on failure. So the folder
holds either the complete new report or whatever it held before.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
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


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones created, deepest first."""
    missing: list[Path] = []
    current = folder
    while not current.exists() and not current.is_symlink() and current != current.parent:
        missing.append(current)
        current = current.parent
    created: list[Path] = []
    try:
        for directory in reversed(missing):
            directory.mkdir()
            created.insert(0, directory)
    except OSError as exc:
        _remove_folders(created)
        raise ReportError(f"cannot create {folder}: {_why(exc)}") from exc
    if not folder.is_dir():
        raise ReportError(f"cannot write the report into {folder}: not a directory")
    return created


def _remove_folders(created: list[Path]) -> None:
    for directory in created:
        with contextlib.suppress(OSError):
            directory.rmdir()


def _write_temp(folder: Path, name: str, data: bytes) -> Path:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(0o644)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _backup(path: Path) -> Path | None:
    """A hard link to the current ``path``, to put it back if the report is abandoned."""
    if not path.is_file() or path.is_symlink():
        return None
    backup = path.with_name(f".{path.name}.{os.getpid()}.previous")
    try:
        backup.unlink(missing_ok=True)
        os.link(path, backup)
    except OSError:
        return None
    return backup


def _roll_back(
    folder: Path, temps: Mapping[str, Path], placed: list[str], backups: Mapping[str, Path | None]
) -> None:
    """Put back what ``placed`` replaced (or remove it), drop temporary files and links."""
    for done in placed:
        previous = backups.get(done)
        with contextlib.suppress(OSError):
            if previous is not None:
                previous.replace(folder / done)
            else:
                (folder / done).unlink()
    for name, tmp in temps.items():
        tmp.unlink(missing_ok=True)
        previous = backups.get(name)
        if previous is not None:
            previous.unlink(missing_ok=True)


def write_together(folder: Path, files: Mapping[str, str | bytes]) -> list[Path]:
    """Write every ``name -> content`` of ``files`` into ``folder``, in order, all or none.

    Returns the paths written. Raises :class:`ReportError`, with ``folder`` as it was.
    """
    created = _make_folder(folder)
    temps: dict[str, Path] = {}
    try:
        for name, data in files.items():
            payload = data.encode("utf-8") if isinstance(data, str) else data
            temps[name] = _write_temp(folder, name, payload)
    except OSError as exc:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        _remove_folders(created)
        raise ReportError(
            f"cannot write the report into {folder}: {_why(exc)}; nothing was written"
        ) from exc
    backups: dict[str, Path | None] = {}
    placed: list[str] = []
    try:
        for name, tmp in temps.items():
            backups[name] = _backup(folder / name)
            tmp.replace(folder / name)
            placed.append(name)
    except OSError as exc:
        _roll_back(folder, temps, placed, backups)
        _remove_folders(created)
        failed = next(name for name in temps if name not in placed)
        raise ReportError(
            f"cannot write {folder / failed}: {_why(exc)}; no report file was left behind"
        ) from exc
    for previous in backups.values():
        if previous is not None:
            previous.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return [folder / name for name in temps]
