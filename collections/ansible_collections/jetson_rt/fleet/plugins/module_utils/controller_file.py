# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""A file or folder on the controller, made as the ``controller_file`` action asks.

Pure standard library, called in the process that runs the task (no module process):
the run records of a validation (run.json, host.json, audit.json and their folders)
are written this way on every pass. Files are replaced atomically (a temporary file in
the same folder, then ``os.replace``), so a reader sees the old or the new file, never
a part of one.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any


class ControllerFileError(Exception):
    """A path, mode or state the controller cannot make; the message says which."""


def parse_mode(mode: str | int | None, default: int) -> int:
    """``"0644"`` or ``"644"`` (octal, as Ansible's ``mode``) or an int; None for ``default``."""
    if mode is None:
        return default
    if isinstance(mode, int):
        value = mode
    else:
        text = str(mode).strip()
        try:
            value = int(text, 8)
        except ValueError:
            raise ControllerFileError(
                f"mode={text!r}: an octal permission such as '0644' is expected"
            ) from None
    if not 0 <= value <= 0o7777:
        raise ControllerFileError(f"mode={oct(value)}: outside 0000-7777")
    return value


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        return ""


def ensure(
    path: str,
    *,
    state: str = "file",
    content: str | None = None,
    mode: str | int | None = None,
    check_mode: bool = False,
    diff: bool = False,
) -> dict[str, Any]:
    """Make ``path`` a folder (``state='directory'``, parents too) or a file holding
    ``content`` (its folder must exist, except in check mode), with ``mode``. Returns
    ``changed``, ``path`` and, with ``diff``, Ansible's before/after diff. Changes nothing
    in check mode."""
    if not path or not Path(path).is_absolute():
        raise ControllerFileError(f"path={path!r}: an absolute path on the controller is expected")
    if state == "directory":
        return _ensure_directory(Path(path), parse_mode(mode, 0o755), check_mode)
    if state != "file":
        raise ControllerFileError(f"state={state!r}: file or directory")
    if content is None:
        raise ControllerFileError("state=file needs content")
    return _ensure_file(Path(path), content, parse_mode(mode, 0o644), check_mode, diff)


def _ensure_directory(path: Path, mode: int, check_mode: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"path": str(path), "state": "directory", "changed": False}
    if path.is_dir():
        if stat.S_IMODE(path.stat().st_mode) != mode:
            result["changed"] = True
            if not check_mode:
                path.chmod(mode)
        return result
    if path.exists() or path.is_symlink():
        raise ControllerFileError(f"path={str(path)!r}: exists and is not a folder")
    result["changed"] = True
    if not check_mode:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
    return result


def _ensure_file(
    path: Path, content: str, mode: int, check_mode: bool, diff: bool
) -> dict[str, Any]:
    # in check mode the folder may be one that an earlier task would have made
    if not path.parent.is_dir() and not check_mode:
        raise ControllerFileError(f"path={str(path)!r}: its folder {path.parent} does not exist")
    if path.is_dir():
        raise ControllerFileError(f"path={str(path)!r}: is a folder")
    before = _read_text(path) if path.parent.is_dir() else None
    same_content = before == content
    same_mode = before is not None and stat.S_IMODE(path.stat().st_mode) == mode
    result: dict[str, Any] = {
        "path": str(path),
        "state": "file",
        "changed": not (same_content and same_mode),
    }
    if diff and not same_content:
        result["diff"] = {
            "before_header": str(path),
            "after_header": str(path),
            "before": before or "",
            "after": content,
        }
    if not result["changed"] or check_mode:
        return result
    if same_content:
        path.chmod(mode)
        return result
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result
