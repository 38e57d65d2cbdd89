"""A fleet RUN_DIR assembled from the folders boards upload in pull mode.

In pull mode (``playbooks/pull.yml``) each board validates itself and uploads its
results folder to a collector, one folder per board::

    COLLECT_DIR/<inventory_hostname>/<run_id>/run.json
    COLLECT_DIR/<inventory_hostname>/<run_id>/hosts/<inventory_hostname>/...

``jetson-rt report --collected COLLECT_DIR`` takes each board's newest run, copies its
host folder into one fleet RUN_DIR (run.json lists every board with its groups; gates are
those the boards' runs recorded, a newer run's winning) and judges that. A board whose
newest result is older than ``--stale-after`` gets a failed ``result_age`` check: its last
result may have passed, but nobody knows what the board runs now. A board folder with no
readable run is listed as missing.

Only regular files are copied: a board writes its own folder through a restricted
account, and a link it uploaded must not make the collector read anything else.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from jetson_rt.errors import ReportError
from jetson_rt.log import logger
from jetson_rt.report.loader import (
    AUDIT_FILE,
    HOSTS_DIR,
    MAX_FILE_BYTES,
    RUN_FILE,
    safe_host_name,
)

_AGE_RE = re.compile(r"([1-9][0-9]{0,6})([smhd])")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
STALE_CHECK_ID = "result_age"


def parse_age(text: str) -> timedelta:
    """``90s``, ``45m``, ``6h``, ``2d``: a positive whole number and one unit."""
    match = _AGE_RE.fullmatch(text.strip())
    if match is None:
        raise ReportError(
            f"--stale-after {text!r}: give a positive whole number and a unit, "
            "s, m, h or d (e.g. 6h)"
        )
    return timedelta(**{_AGE_UNITS[match.group(2)]: int(match.group(1))})


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _read_object(path: Path) -> dict[str, Any] | None:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


@dataclass(frozen=True)
class BoardRun:
    """One board's newest uploaded run."""

    board: str
    run_dir: Path
    run: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class Collected:
    boards: tuple[str, ...]
    runs: tuple[BoardRun, ...]
    stale: dict[str, timedelta]
    missing: tuple[str, ...]

    def notes(self) -> list[str]:
        lines = [
            f"stale: {board}: last result {_age_text(age)} old" for board, age in self.stale.items()
        ]
        lines += [f"missing: {board}: no readable run uploaded" for board in self.missing]
        return lines


def _age_text(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _newest_run(board_dir: Path) -> BoardRun | None:
    best: BoardRun | None = None
    for run_dir in board_dir.iterdir():
        if run_dir.is_symlink() or not run_dir.is_dir() or run_dir.name.startswith("."):
            continue
        run = _read_object(run_dir / RUN_FILE)
        if run is None:
            continue
        at = _parse_time(run.get("finished_at")) or _parse_time(run.get("started_at"))
        if at is None:
            at = datetime.fromtimestamp((run_dir / RUN_FILE).stat().st_mtime, timezone.utc)
        candidate = BoardRun(board=board_dir.name, run_dir=run_dir, run=run, at=at)
        if best is None or (candidate.at, run_dir.name) > (best.at, best.run_dir.name):
            best = candidate
    return best


def _copy_regular(source: Path, dest: Path) -> None:
    """Regular files and folders under ``source``; links are left behind."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.is_symlink():
            logger.warning("%s: a link in an uploaded folder; not read", entry)
        elif entry.is_dir():
            _copy_regular(entry, dest / entry.name)
        elif entry.is_file():
            shutil.copyfile(entry, dest / entry.name)


def _mark_stale(host_dir: Path, board: BoardRun, age: timedelta, threshold: timedelta) -> None:
    audit_path = host_dir / AUDIT_FILE
    audit = _read_object(audit_path)
    if audit is None or not isinstance(audit.get("checks"), list):
        # Without a readable audit the report already fails this host; say why it is old
        # in the console notes only.
        return
    audit["checks"].append(
        {
            "id": STALE_CHECK_ID,
            "title": "Result is recent",
            "status": "fail",
            "observed": f"{board.at.strftime('%Y-%m-%dT%H:%M:%SZ')} ({_age_text(age)} old)",
            "expected": f"newer than {_age_text(threshold)}",
            "hint": (
                "The board has not uploaded a result since: check its jetson-rt-pull.timer "
                "(systemctl status jetson-rt-pull.service) and its way to the collector."
            ),
        }
    )
    audit_path.write_text(json.dumps(audit, indent=2) + "\n", encoding="utf-8")


def assemble(
    collect_dir: Path, dest: Path, stale_after: timedelta, now: datetime | None = None
) -> Collected:
    """Write a fleet RUN_DIR into ``dest`` (an empty or absent folder) from ``collect_dir``."""
    if not collect_dir.is_dir():
        raise ReportError(f"{collect_dir}: not a folder of uploaded board results")
    now = now or datetime.now(timezone.utc)
    boards = sorted(
        p.name
        for p in collect_dir.iterdir()
        if p.is_dir() and not p.is_symlink() and safe_host_name(p.name)
    )
    if not boards:
        raise ReportError(
            f"{collect_dir}: no board folder (COLLECT_DIR/<inventory_hostname>/<run_id>/run.json)"
        )
    newest = {board: _newest_run(collect_dir / board) for board in boards}
    runs = [run for run in newest.values() if run is not None]
    missing = [board for board, run in newest.items() if run is None]

    hosts: dict[str, list[str]] = {board: [] for board in boards}
    gates: dict[str, Any] = {}
    stale: dict[str, timedelta] = {}
    measured_flags: list[Any] = []
    for board_run in sorted(runs, key=lambda r: r.at):
        listed = board_run.run.get("hosts")
        groups = listed.get(board_run.board) if isinstance(listed, Mapping) else None
        if isinstance(groups, list):
            hosts[board_run.board] = [str(g) for g in groups]
        run_gates = board_run.run.get("gates")
        if isinstance(run_gates, Mapping):
            gates.update(run_gates)
        cyclictest = board_run.run.get("cyclictest")
        measured_flags.append(
            cyclictest.get("measured", True) if isinstance(cyclictest, Mapping) else True
        )
        source = board_run.run_dir / HOSTS_DIR / board_run.board
        host_dir = dest / HOSTS_DIR / board_run.board
        if source.is_dir() and not source.is_symlink():
            _copy_regular(source, host_dir)
        age = now - board_run.at
        if age > stale_after:
            stale[board_run.board] = age
            if host_dir.is_dir():
                _mark_stale(host_dir, board_run, age, stale_after)

    times = [r.at for r in runs]
    run: dict[str, Any] = {
        "schema_version": 1,
        "run_id": f"collected-{now.strftime('%Y%m%dT%H%M%SZ')}",
        "profile": ", ".join(sorted({str(r.run.get("profile", "?")) for r in runs})) or None,
        "hosts": hosts,
        "gates": gates,
    }
    if times:
        run["started_at"] = min(times).strftime("%Y-%m-%dT%H:%M:%SZ")
        run["finished_at"] = max(times).strftime("%Y-%m-%dT%H:%M:%SZ")
    if measured_flags and not any(measured_flags):
        run["cyclictest"] = {"measured": False, "why": "no board measured latency"}
    dest.mkdir(parents=True, exist_ok=True)
    (dest / HOSTS_DIR).mkdir(exist_ok=True)
    (dest / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
    return Collected(boards=tuple(boards), runs=tuple(runs), stale=stale, missing=tuple(missing))
