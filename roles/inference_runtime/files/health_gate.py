#!/usr/bin/env python3
"""Health gate of one host after it switched engine versions (role inference_runtime).

Runs on the target with the jetson-rt venv's Python. Waits until the runner
service, started after the switch, has done ``min_inferences`` in every gated
task, then checks:

* the unit is active and did not restart during the gate;
* systemd's watchdog is armed and being fed (``WatchdogTimestamp`` advances);
* the runner's stats file (``docs/runner.md``, schema_version 1) belongs to the
  current main process, says ``running``, reports no watchdog timeout and (when
  ``require_rt``) every real-time setting applied;
* per task: p99 of the total latency at or under its limit (the deadline unless
  given), deadline misses within the budget (percent of inferences);
* every live input (a GStreamer pipeline) is running, not failing, stalled or ended;
* per model with a reference pair: the artifact now in service, loaded through
  the runner's own backend, maps the reference input to the reference output
  within ``rtol``/``atol``.

Prints one JSON object: ``ok``, ``failures`` (one sentence each), ``checks``.
The spec comes as JSON: the first argument, or the file it names.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROPERTIES = (
    "ActiveState",
    "SubState",
    "Result",
    "MainPID",
    "NRestarts",
    "WatchdogUSec",
    "WatchdogTimestampMonotonic",
)


def unit_state(unit: str) -> dict[str, str]:
    out = subprocess.run(
        ["systemctl", "show", unit, *(f"--property={p}" for p in PROPERTIES)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def journal_tail(unit: str, lines: int = 8) -> str:
    out = subprocess.run(
        ["journalctl", "-u", unit, "-n", str(lines), "--no-pager", "-o", "cat"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return " | ".join(line.strip() for line in out.splitlines() if line.strip())


def read_stats(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def inferences(stats: dict[str, Any], task: str) -> int:
    counts = stats.get("tasks", {}).get(task, {}).get("counts", {})
    return int(counts.get("inferences", 0))


def wait_for_runner(
    spec: dict[str, Any],
) -> tuple[dict[str, Any] | None, list[str], dict[str, Any]]:
    """Poll until every task did min_inferences (or the unit failed, or time ran out)."""
    unit, stats_path = spec["unit"], Path(spec["stats"])
    deadline = time.monotonic() + float(spec["timeout_s"])
    first = unit_state(unit)
    restarts0 = first.get("NRestarts", "0")
    pings: set[str] = set()
    stats: dict[str, Any] | None = None
    while True:
        state = unit_state(unit)
        pings.add(state.get("WatchdogTimestampMonotonic", "0"))
        if state.get("ActiveState") in ("failed", "inactive"):
            return (
                None,
                [
                    f"{unit} is {state.get('ActiveState')} ({state.get('Result')}): "
                    + journal_tail(unit)
                ],
                state,
            )
        if state.get("NRestarts", "0") != restarts0:
            return (
                None,
                [
                    f"{unit} restarted during the gate (NRestarts {restarts0} -> "
                    f"{state.get('NRestarts')}): " + journal_tail(unit)
                ],
                state,
            )
        stats = read_stats(stats_path)
        ready = (
            stats is not None
            and str(stats.get("pid")) == state.get("MainPID")
            and stats.get("state") == "running"
            and all(
                inferences(stats, t["name"]) >= int(spec["min_inferences"]) for t in spec["tasks"]
            )
        )
        if ready and len(pings - {"0"}) >= 2:
            state["watchdog_pings_seen"] = str(len(pings - {"0"}))
            return stats, [], state
        if time.monotonic() > deadline:
            done = {t["name"]: inferences(stats, t["name"]) if stats else 0 for t in spec["tasks"]}
            why = (
                f"after {spec['timeout_s']} s the runner had not done {spec['min_inferences']} "
                f"inferences per task (done: {done}; stats state "
                f"{(stats or {}).get('state')!r}, error {(stats or {}).get('error')!r}; "
                f"watchdog pings seen: {len(pings - {'0'})})"
            )
            return None, [why], state
        time.sleep(0.5)


def check_stats(
    spec: dict[str, Any], stats: dict[str, Any], state: dict[str, str]
) -> tuple[list[str], dict[str, Any]]:
    failures: list[str] = []
    checks: dict[str, Any] = {}
    if state.get("WatchdogUSec", "0") in ("0", "infinity", ""):
        failures.append(f"{spec['unit']} has no WatchdogSec: the watchdog is not armed")
    watchdog = stats.get("watchdog", {})
    checks["watchdog"] = {
        "systemd_usec": state.get("WatchdogUSec"),
        "pings_seen": int(state.get("watchdog_pings_seen", "0")),
        "runner_timeouts": watchdog.get("timeouts"),
    }
    if not watchdog.get("systemd"):
        failures.append(
            "the runner is not pinging systemd's watchdog (stats watchdog.systemd false)"
        )
    if watchdog.get("timeouts"):
        failures.append(f"the runner's watchdog fired {watchdog['timeouts']} time(s)")
    rt = stats.get("rt", {})
    denied = {
        step: rt[step].get("detail")
        for step in ("mlockall", "sched_fifo", "affinity")
        if isinstance(rt.get(step), dict)
        and rt[step].get("requested")
        and not rt[step].get("applied")
    }
    checks["rt"] = {"degraded": bool(rt.get("degraded")), "denied": denied}
    if spec.get("require_rt", True) and denied:
        failures.append(
            "real-time settings denied to the runner: "
            + "; ".join(f"{step}: {detail}" for step, detail in denied.items())
        )
    inputs = stats.get("health", {}).get("inputs", {})
    checks["inputs"] = inputs
    for name, live in inputs.items():
        if not live.get("healthy", True):
            failures.append(
                f"task {name}: its live input is {live.get('state')}"
                + (f" ({live['last_error']})" if live.get("last_error") else "")
            )
    for task in spec["tasks"]:
        name = task["name"]
        data = stats.get("tasks", {}).get(name)
        if data is None:
            failures.append(f"task {name} is not in the runner's stats")
            continue
        count = int(data["counts"]["inferences"])
        misses = int(data["counts"]["deadline_misses"])
        p99 = float(data["latency_ms"]["total"]["p99"])
        limit = float(task.get("p99_ms") or task["deadline_ms"])
        miss_pct = 100.0 * misses / count if count else 100.0
        checks[name] = {
            "inferences": count,
            "p99_ms": p99,
            "p99_limit_ms": limit,
            "deadline_misses": misses,
            "miss_pct": round(miss_pct, 3),
            "miss_budget_pct": task["miss_budget_pct"],
            "tier": data.get("tier", {}).get("name"),
        }
        if p99 > limit:
            failures.append(f"task {name}: p99 {p99:.3f} ms is over the limit {limit:g} ms")
        if miss_pct > float(task["miss_budget_pct"]):
            failures.append(
                f"task {name}: {misses} deadline misses in {count} inferences "
                f"({miss_pct:.2f} %) exceed the budget of {task['miss_budget_pct']} %"
            )
    return failures, checks


def check_reference(ref: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    import numpy as np

    from jetson_rt.backends import create_backend

    options = dict(ref.get("options") or {})
    if ref.get("shapes"):
        options["input_shapes"] = ref["shapes"]
    expected_file = np.load(ref["output"])
    with create_backend(ref["backend"], ref["artifact"], **options) as backend:
        inputs = backend.host_inputs()
        first = backend.inputs[0]
        given = np.load(ref["input"])
        if given.shape != first.shape:
            return [
                f"model {ref['model']}: reference input shape {given.shape} differs from the "
                f"model's {first.shape}"
            ], {}
        inputs[first.name][...] = given.astype(first.dtype)
        backend.stage_in()
        backend.execute()
        backend.stage_out()
        backend.synchronize()
        outputs = backend.host_outputs()
        name = ref.get("output_name") or backend.outputs[0].name
        got = np.asarray(outputs[name], dtype=np.float64)
    expected = np.asarray(expected_file, dtype=np.float64)
    if got.shape != expected.shape:
        return [
            f"model {ref['model']}: output {name} has shape {got.shape}, "
            f"the reference {expected.shape}"
        ], {}
    err = float(np.max(np.abs(got - expected))) if got.size else 0.0
    ok = bool(np.allclose(got, expected, rtol=float(ref["rtol"]), atol=float(ref["atol"])))
    check = {"output": name, "max_abs_err": err, "rtol": ref["rtol"], "atol": ref["atol"], "ok": ok}
    if not ok:
        return [
            f"model {ref['model']} version {ref.get('version')}: output {name} does not match "
            f"the reference (max abs error {err:.6g}, rtol {ref['rtol']}, atol {ref['atol']})"
        ], check
    return [], check


def main() -> int:
    arg = sys.argv[1]
    spec = json.loads(
        arg if arg.lstrip().startswith("{") else Path(arg).read_text(encoding="utf-8")
    )
    started = time.monotonic()
    stats, failures, state = wait_for_runner(spec)
    checks: dict[str, Any] = {"unit": {k: state.get(k) for k in PROPERTIES}}
    if stats is not None:
        more, task_checks = check_stats(spec, stats, state)
        failures += more
        checks.update(task_checks)
    references: dict[str, Any] = {}
    for ref in spec.get("references", []):
        try:
            more, check = check_reference(ref)
        except Exception as exc:
            more, check = [f"model {ref['model']}: the reference check could not run: {exc}"], {}
        failures += more
        references[ref["model"]] = check
    checks["references"] = references
    checks["seconds"] = round(time.monotonic() - started, 2)
    print(json.dumps({"ok": not failures, "failures": failures, "checks": checks}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
