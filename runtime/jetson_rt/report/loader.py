"""Read a RUN_DIR. A bad ``run.json`` is an error; a bad host never is.

Every per-host failure (unreachable, files missing after a crash, truncated or
corrupt JSON, values of the wrong type, data that contradicts itself) is
recorded on that host's :class:`HostRecord` so the report still renders and
shows it.

Nothing is read from outside RUN_DIR: a host name from ``run.json`` must be a
plain inventory name (no ``/``, no ``..``, not absolute), and a file or host
directory that is a link leaving RUN_DIR is not followed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jetson_rt.errors import ReportError
from jetson_rt.log import logger
from jetson_rt.report import RUN_DIR_SCHEMA_VERSION, jsontext
from jetson_rt.report.cyclictest import CyclictestParseError, parse_file, with_cmdline
from jetson_rt.report.gates import gates_from_run
from jetson_rt.report.model import (
    CHECK_STATUSES,
    AuditCheck,
    CheckStatus,
    FactValue,
    HostRecord,
    LatencyBudget,
    LoadedRun,
    RunInfo,
    RunnerStats,
    StageStats,
)

RUN_FILE = "run.json"
HOSTS_DIR = "hosts"
HOST_FILE = "host.json"
AUDIT_FILE = "audit.json"
CYCLICTEST_JSON = "cyclictest.json"
CYCLICTEST_TEXT = "cyclictest.txt"
RUNNER_FILE = "runner_stats.json"

# Contradictions listed per file; a file full of them says so in one more line.
MAX_LISTED_PROBLEMS = 8

# A results file larger than this is not something rt_validate wrote.
MAX_FILE_BYTES = 64 * 1024 * 1024

#: An inventory host name as rt_validate names its directory: letters, digits and
#: ``._:@-``, not starting with a dot or a dash (so never ``.``, ``..`` or an option).
HOST_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._:@-]{0,252}")

# Status words other tools use, mapped onto the four the report knows.
_STATUS_ALIASES: Mapping[str, CheckStatus] = {
    "ok": "pass",
    "passed": "pass",
    "success": "pass",
    "warning": "warn",
    "failed": "fail",
    "error": "fail",
    "skip": "unknown",
    "skipped": "unknown",
    "n/a": "unknown",
}


class _FileError(Exception):
    """A host file is absent (``missing``), unreadable (``corrupt``) or a link that
    leaves RUN_DIR (``inconsistent``)."""

    def __init__(self, message: str, *, missing: bool, escapes: bool = False) -> None:
        super().__init__(message)
        self.missing = missing
        self.escapes = escapes


def safe_host_name(name: str) -> bool:
    """True for a name that can only be a folder directly under ``hosts/``."""
    return HOST_NAME_RE.fullmatch(name) is not None


def _inside(root: Path, path: Path) -> bool:
    """``path`` (links resolved) is ``root`` or below it; ``root`` is already resolved."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a link loop
        return False


def _check_inside(root: Path, path: Path) -> None:
    if (path.is_symlink() or path.exists()) and not _inside(root, path):
        raise _FileError(
            f"{path.name} is a link that leaves RUN_DIR; not read", missing=False, escapes=True
        )


def _read_json(path: Path, root: Path | None = None) -> Any:
    if root is not None:
        _check_inside(root, path)
    if not path.is_file():
        raise _FileError(f"{path.name} missing", missing=True)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _FileError(f"{path.name} is {size} bytes, too large", missing=False)
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise _FileError(f"{path.name} unreadable: {exc.strerror or exc}", missing=False) from exc
    if not text.strip():
        raise _FileError(f"{path.name} is empty", missing=False)
    try:
        return jsontext.loads(text)
    except json.JSONDecodeError as exc:
        raise _FileError(
            f"{path.name} is truncated or corrupt (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg})",
            missing=False,
        ) from exc
    except RecursionError as exc:
        raise _FileError(f"{path.name} is nested too deeply to be read", missing=False) from exc
    except ValueError as exc:  # an integer with more digits than Python converts
        raise _FileError(f"{path.name} is not readable JSON: {exc}", missing=False) from exc


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, list | Mapping):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _is_bad_number(value: Any) -> bool:
    """Present, but not a finite non-negative number (NaN, infinity, negative, text)."""
    if value is None:
        return False
    number = _number(value)
    return number is None or number < 0


def _is_bad_figure(value: Any) -> bool:
    """A number that cannot be a latency: NaN, infinite or negative (text means "n/a")."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return _is_bad_number(value)


def _run_number(where: str, value: Any) -> float | None:
    """A figure of run.json: absent/null, or a finite non-negative number."""
    if value is None:
        return None
    if _is_bad_number(value):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
        raise ReportError(f"{where} must be a finite non-negative number, not {shown}")
    return _number(value)


def _string_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if isinstance(v, str | int))
    return ()


# --------------------------------------------------------------------------- run.json


def load_run_info(run_dir: Path) -> RunInfo:
    path = run_dir / RUN_FILE
    try:
        raw = _read_json(path, run_dir.resolve())
    except _FileError as exc:
        if exc.escapes:
            raise ReportError(f"{path}: a link that leaves RUN_DIR; not read") from exc
        hint = (
            "; is this a RUN_DIR written by the rt_validate role?"
            if exc.missing
            else "; re-fetch it from the controller or re-run rt_validate"
        )
        raise ReportError(f"{run_dir}: {exc}{hint}") from exc
    if not isinstance(raw, Mapping):
        raise ReportError(f"{path}: expected a JSON object")
    version = raw.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ReportError(f"{path}: schema_version must be an integer")
    if version > RUN_DIR_SCHEMA_VERSION:
        raise ReportError(
            f"{path}: schema_version {version} is newer than this jetson-rt reads "
            f"({RUN_DIR_SCHEMA_VERSION}); upgrade jetson-rt on the controller"
        )
    run_id = raw.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        run_id = run_dir.name
        logger.warning("%s: no run_id; using the directory name %r", path, run_id)
    expected = raw.get("hosts", {})
    expected_hosts: dict[str, tuple[str, ...]] = {}
    if isinstance(expected, Mapping):
        expected_hosts = {str(name): _string_list(groups) for name, groups in expected.items()}
    elif isinstance(expected, list):
        expected_hosts = {str(name): () for name in expected if isinstance(name, str)}
    else:
        raise ReportError(f"{path}: hosts must map inventory hostnames to their groups")
    for name in expected_hosts:
        if not safe_host_name(name):
            shown = repr(name) if len(name) <= 60 else repr(name[:60]) + "..."
            raise ReportError(
                f"{path}: host name {shown} is not an inventory host name (letters, digits, "
                "'._:@-'; no '/', no '..'): nothing is read outside RUN_DIR"
            )
    cyclictest = raw.get("cyclictest")
    cyclictest = cyclictest if isinstance(cyclictest, Mapping) else {}
    return RunInfo(
        schema_version=version,
        run_id=run_id,
        started_at=_text(raw.get("started_at")),
        finished_at=_text(raw.get("finished_at")),
        profile=_text(raw.get("profile")),
        gates=gates_from_run(raw.get("gates")),
        expected_hosts=expected_hosts,
        cyclictest_cmdline=_text(cyclictest.get("cmdline")),
        load=_text(cyclictest.get("load")),
        budget=_budget(raw.get("budget"), path),
        latency_measured=cyclictest.get("measured") is not False,
    )


def _budget(raw: Any, path: Path) -> LatencyBudget | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ReportError(f"{path}: budget must be an object (see Appendix B in the docs)")
    stages = raw.get("stages_ms", {})
    if not isinstance(stages, Mapping):
        raise ReportError(f"{path}: budget.stages_ms must map stage names to milliseconds")
    stages_ms = {
        str(k): v
        for k, v in (
            (k, _run_number(f"{path}: budget.stages_ms.{k}", v)) for k, v in stages.items()
        )
        if v is not None
    }
    return LatencyBudget(
        application=_text(raw.get("application")),
        target_fps=_run_number(f"{path}: budget.target_fps", raw.get("target_fps")),
        deadline_ms=_run_number(f"{path}: budget.deadline_ms", raw.get("deadline_ms")),
        sla_percent=_run_number(f"{path}: budget.sla_percent", raw.get("sla_percent")),
        stages_ms=stages_ms,
    )


# --------------------------------------------------------------------------- hosts


def _load_host_json(host: HostRecord, directory: Path, root: Path) -> None:
    raw = _read_json(directory / HOST_FILE, root)
    if not isinstance(raw, Mapping):
        raise _FileError(f"{HOST_FILE} is not a JSON object", missing=False)
    declared = raw.get("inventory_hostname")
    if declared is not None and declared != host.name:
        shown = repr(declared) if len(repr(declared)) <= 60 else repr(declared)[:60] + "..."
        host.add_problem(
            "inconsistent",
            f"{HOST_FILE} names host {shown}, not {host.name!r}: another host's data",
        )
    host.groups = tuple(dict.fromkeys((*host.groups, *_string_list(raw.get("groups")))))
    reachable = raw.get("reachable")
    host.reachable = reachable if isinstance(reachable, bool) else None
    host.error = _text(raw.get("error"))
    cmdline = raw.get("cyclictest_cmdline")
    if isinstance(cmdline, str) and cmdline:
        host.cyclictest_cmdline = cmdline
    facts = raw.get("facts")
    if isinstance(facts, Mapping):
        host.facts = {str(k): _fact(v) for k, v in facts.items()}
    if host.reachable is False:
        host.add_problem("unreachable", f"unreachable: {host.error or 'no reason given'}")
    elif host.error:
        stage = _text(raw.get("failed_stage"))
        where = f" during {stage}" if stage else ""
        host.add_problem("failed", f"rt_validate failed{where}: {host.error}")


def _fact(value: Any) -> FactValue:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return _text(value)


def _check(index: int, raw: Any) -> AuditCheck:
    if not isinstance(raw, Mapping):
        return AuditCheck(
            id=f"check-{index}",
            title=f"check {index}",
            status="unknown",
            observed=_text(raw),
            hint="audit.json entry is not an object",
        )
    check_id = _text(raw.get("id")) or f"check-{index}"
    status_raw = str(raw.get("status", "unknown")).strip().lower()
    status: CheckStatus
    if status_raw in CHECK_STATUSES:
        status = status_raw
    else:
        status = _STATUS_ALIASES.get(status_raw, "unknown")
    return AuditCheck(
        id=check_id,
        title=_text(raw.get("title")) or check_id,
        status=status,
        observed=_text(raw.get("observed")),
        expected=_text(raw.get("expected")),
        hint=_text(raw.get("hint")),
    )


def _load_audit(host: HostRecord, directory: Path, root: Path) -> None:
    raw = _read_json(directory / AUDIT_FILE, root)
    checks = raw.get("checks") if isinstance(raw, Mapping) else raw
    if not isinstance(checks, list):
        raise _FileError(f"{AUDIT_FILE} has no list of checks", missing=False)
    host.checks = [_check(i, item) for i, item in enumerate(checks)]


def _load_cyclictest(host: HostRecord, directory: Path, root: Path) -> None:
    for path in (directory / CYCLICTEST_JSON, directory / CYCLICTEST_TEXT):
        _check_inside(root, path)
    candidates = [
        p for p in (directory / CYCLICTEST_JSON, directory / CYCLICTEST_TEXT) if p.is_file()
    ]
    if not candidates:
        raise _FileError(f"{CYCLICTEST_JSON} (or {CYCLICTEST_TEXT}) missing", missing=True)
    errors: list[str] = []
    for path in candidates:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise CyclictestParseError(f"{path.name}: too large")
            result = parse_file(path)
            if result.cmdline is None and host.cyclictest_cmdline:
                result = with_cmdline(result, host.cyclictest_cmdline)
            host.cyclictest = result
        except CyclictestParseError as exc:
            errors.append(str(exc))
            continue
        host.cyclictest_file = path.name
        if errors:
            host.add_problem("corrupt", f"{errors[0]}; used {path.name} instead")
        for problem in result.problems[:MAX_LISTED_PROBLEMS]:
            host.add_problem("inconsistent", f"{path.name}: {problem}")
        if len(result.problems) > MAX_LISTED_PROBLEMS:
            host.add_problem(
                "inconsistent",
                f"{path.name}: {len(result.problems) - MAX_LISTED_PROBLEMS} more contradiction(s)",
            )
        return
    raise _FileError("; ".join(errors), missing=False)


def _stage_problems(name: str, raw: Any) -> list[str]:
    if not isinstance(raw, Mapping):
        return []
    found = [
        f"stage {name}: {key} is {raw[key]!r}, not a finite non-negative number"
        for key in ("p50_ms", "p99_ms", "max_ms")
        if _is_bad_figure(raw.get(key))
    ]
    figures = [_number(raw.get(key)) for key in ("p50_ms", "p99_ms", "max_ms")]
    known = [f for f in figures if f is not None and f >= 0]
    if not found and known != sorted(known):
        found.append(f"stage {name}: p50_ms <= p99_ms <= max_ms does not hold")
    return found


def _stage(name: str, raw: Any) -> StageStats | None:
    if not isinstance(raw, Mapping):
        return None
    return StageStats(
        name=name,
        p50_ms=_number(raw.get("p50_ms")),
        p99_ms=_number(raw.get("p99_ms")),
        max_ms=_number(raw.get("max_ms")),
    )


def _runner_count_problems(raw: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    frames = raw.get("frames")
    misses = raw.get("deadline_misses")
    for key, value in (("frames", frames), ("deadline_misses", misses)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            problems.append(f"{key} is {value!r}, not a count")
    if isinstance(frames, int) and isinstance(misses, int) and 0 <= frames < misses:
        problems.append(f"deadline_misses {misses} exceeds frames {frames}")
    if _is_bad_figure(raw.get("deadline_ms")):
        problems.append(f"deadline_ms is {raw.get('deadline_ms')!r}, not a finite positive number")
    return problems


def _load_runner(host: HostRecord, directory: Path, root: Path) -> None:
    # Owned by the runner's stats writer; read only what the report shows.
    path = directory / RUNNER_FILE
    _check_inside(root, path)
    if not path.exists():
        raise _FileError(f"{RUNNER_FILE} missing", missing=True)
    raw = _read_json(path, root)
    if not isinstance(raw, Mapping):
        raise _FileError(f"{RUNNER_FILE} is not a JSON object", missing=False)
    stages_raw = raw.get("stages")
    stages: list[StageStats] = []
    problems: list[str] = []
    if isinstance(stages_raw, Mapping):
        stages = [s for k, v in stages_raw.items() if (s := _stage(str(k), v)) is not None]
        for k, v in stages_raw.items():
            problems.extend(_stage_problems(str(k), v))
    elif isinstance(stages_raw, list):
        for item in stages_raw:
            if isinstance(item, Mapping) and isinstance(item.get("name"), str):
                stage = _stage(item["name"], item)
                problems.extend(_stage_problems(item["name"], item))
                if stage is not None:
                    stages.append(stage)
    if not stages:
        raise _FileError(f"{RUNNER_FILE} has no stages with p50_ms/p99_ms/max_ms", missing=False)
    frames = raw.get("frames")
    misses = raw.get("deadline_misses")
    problems.extend(_runner_count_problems(raw))
    for problem in problems[:MAX_LISTED_PROBLEMS]:
        host.add_problem("inconsistent", f"{RUNNER_FILE}: {problem}")
    host.runner = RunnerStats(
        stages=tuple(stages),
        frames=frames if isinstance(frames, int) and not isinstance(frames, bool) else None,
        deadline_misses=misses
        if isinstance(misses, int) and not isinstance(misses, bool)
        else None,
        deadline_ms=_number(raw.get("deadline_ms")),
    )


def _readable_folder(host: HostRecord, directory: Path, root: Path | None) -> Path | None:
    """The resolved root to read ``directory`` under, or None (with the problem recorded)
    when the name is not a host name or the folder leaves the root."""
    if not safe_host_name(host.name):
        host.add_problem(
            "inconsistent", f"{host.name!r} is not an inventory host name; its folder was not read"
        )
        return None
    try:
        resolved_root = (root or directory).resolve()
    except (OSError, RuntimeError):
        host.add_problem("inconsistent", "its folder cannot be resolved (a link loop?)")
        return None
    if (directory.is_symlink() or directory.exists()) and not _inside(resolved_root, directory):
        host.add_problem(
            "inconsistent", f"hosts/{host.name} is a link that leaves RUN_DIR; not read"
        )
        return None
    return resolved_root


def load_host(
    directory: Path,
    name: str,
    groups: tuple[str, ...] = (),
    cmdline: str | None = None,
    latency_measured: bool = True,
    *,
    root: Path | None = None,
) -> HostRecord:
    """Read one host directory; never raises. ``cmdline``: run.json's cyclictest command;
    ``latency_measured`` False: an audit-only run, where no cyclictest file is expected.
    ``root``: nothing outside it is read (default: ``directory`` itself)."""
    host = HostRecord(name=name, groups=groups, cyclictest_cmdline=cmdline)
    resolved_root = _readable_folder(host, directory, root)
    if resolved_root is None:
        return host
    if not directory.is_dir():
        host.add_problem("missing", "no results were fetched for this host")
        return host
    steps = (
        (HOST_FILE, _load_host_json),
        (AUDIT_FILE, _load_audit),
        ("cyclictest", _load_cyclictest),
        (RUNNER_FILE, _load_runner),
    )
    found_any = False
    missing: list[str] = []
    for label, step in steps:
        try:
            step(host, directory, resolved_root)
            found_any = True
            if label == HOST_FILE:
                host.host_file_read = True
        except _FileError as exc:
            if exc.escapes:
                found_any = True
                host.add_problem("inconsistent", str(exc))
            elif exc.missing:
                # optional: only runner-enabled runs write runner figures, and an
                # audit-only run measures no latency
                if label != RUNNER_FILE and (label != "cyclictest" or latency_measured):
                    missing.append(str(exc))
            else:
                found_any = True
                host.add_problem("corrupt", str(exc))
        except Exception as exc:  # the boundary that keeps one bad host from ending the report
            logger.debug("reading %s of %s failed", label, name, exc_info=True)
            found_any = True
            host.add_problem("corrupt", f"{label}: cannot be read ({type(exc).__name__}: {exc})")
    if missing:
        _record_missing(host, missing, found_any=found_any)
    return host


def _record_missing(host: HostRecord, missing: list[str], *, found_any: bool) -> None:
    if not found_any:
        host.add_problem("missing", "no results were fetched for this host")
    elif host.state == "failed":
        # Which results a failed run left behind is worth knowing.
        host.problems.append("; ".join(missing))
        host.problem_states.append(host.state)
    elif host.state != "unreachable":  # an unreachable host has no results to miss
        host.add_problem("incomplete", "; ".join(missing) + " (did the run stop early?)")


_NATURAL_RE = re.compile(r"(\d+)")


def _natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in _NATURAL_RE.split(name) if part
    )


def load_run(run_dir: Path) -> LoadedRun:
    """Read a RUN_DIR. Raises :class:`ReportError` only when the run itself is unusable."""
    if not run_dir.exists():
        raise ReportError(f"{run_dir}: no such directory; pass the RUN_DIR rt_validate wrote")
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: not a directory; pass the RUN_DIR rt_validate wrote")
    info = load_run_info(run_dir)
    root = run_dir.resolve()
    hosts_dir = run_dir / HOSTS_DIR
    if (hosts_dir.is_symlink() or hosts_dir.exists()) and not _inside(root, hosts_dir):
        raise ReportError(f"{hosts_dir}: a link that leaves RUN_DIR; not read")
    found: list[str] = []
    if hosts_dir.is_dir():
        try:
            found = [
                p.name for p in hosts_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
            ]
        except OSError as exc:
            raise ReportError(f"{hosts_dir}: cannot list: {exc.strerror or exc}") from exc
    names = sorted({*info.expected_hosts, *found}, key=_natural_key)
    if not names:
        raise ReportError(
            f"{run_dir}: no hosts (run.json lists none and {HOSTS_DIR}/ is empty or absent)"
        )
    hosts = tuple(
        load_host(
            hosts_dir / name,
            name,
            info.expected_hosts.get(name, ()),
            info.cyclictest_cmdline,
            info.latency_measured,
            root=root,
        )
        for name in names
    )
    for host in hosts:
        if host.state != "ok":
            logger.debug("%s: %s", host.name, "; ".join(host.problems))
    return LoadedRun(path=run_dir, info=info, hosts=hosts)
