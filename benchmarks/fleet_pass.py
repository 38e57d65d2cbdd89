"""What a pass of playbooks/site.yml costs the controller: first converge, no-op, --check.

For each count in --hosts (default 1 2 4), a fresh simulated fleet of that many hosts
(its own name, inventory, fact cache and SSH control folder; the repository's sim
group_vars and models beside the generated hosts.yml), then three runs of site.yml:

1. first converge: stock hosts to real-time inference nodes (kernel installed and
   booted, tuning and its reboot, runtime and engines, validation run);
2. no-op pass: site.yml again; the kernel, tuning and engine plays change nothing, the
   validation play records a new run (cyclictest, quick profile: a fixed 10 s per host);
3. --check --diff on the converged fleet (the validation play audits, no cyclictest).

Each run is ``ansible-playbook`` under a small wrapper that is the child subreaper of
everything it starts, so the CPU time counted is user+sys of ansible-playbook, its
worker forks, the ssh clients and the ControlPersist ssh masters (those detach from
ansible-playbook; they are closed and reaped when the run ends, as a periodic pass
a ControlPersist timeout apart would close them). A callback records the
process's CPU and wall clock at each play and task, which gives the split per
playbook (facts, kernel, tune, engines, validate; "startup" is parsing before the first
play, "ssh masters" what the closed masters used) and the costliest tasks.

The per-host figure is the run's CPU divided by the host count. Each fleet size is a
fresh fleet, so every row is a first converge of stock hosts; a run of 1 2 4 brings up
7 hosts in all. The runtime is built from a snapshot of the source taken at start, so
a tree edited meanwhile does not turn the no-op into a rebuild.

Run as root, alone on the simulated fleet (the sim lock):
    flock /tmp/jetson-rt-sim.lock .venv/bin/python benchmarks/fleet_pass.py --hosts 1 2 4 \
        --json fleet_pass.json
``--mitogen`` runs the same passes with Mitogen's linear strategy (the ``mitogen``
extra) instead of ansible-core's.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from tests.engine_rollout import snapshot_source  # noqa: E402  (after the sys.path set-up)

from jetson_rt.atomic import atomic_write_text  # noqa: E402
from jetson_rt.sim.fleet import Fleet  # noqa: E402

BIN = Path(sys.executable).parent
PLAYBOOKS = ("facts", "kernel", "tune", "engines", "validate")
PASSES = (
    ("first", "first converge", ()),
    ("noop", "no-op pass", ()),
    ("check", "--check --diff", ("--check", "--diff")),
)

# Runs argv as the child subreaper: orphaned descendants (ssh ControlPersist masters)
# become its children, so that their CPU time is counted when they are reaped.
WRAPPER = r"""
import ctypes, json, os, resource, signal, subprocess, sys, time
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
out = sys.argv[1]
log = open(sys.argv[2], "w")
start = time.monotonic()
proc = subprocess.Popen(
    sys.argv[3:], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
)
rc = proc.wait()
wall = time.monotonic() - start
before = resource.getrusage(resource.RUSAGE_CHILDREN)
masters = 0
me = str(os.getpid())
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    if stat[stat.rindex(")") + 2:].split()[1] == me:
        os.kill(int(pid), signal.SIGTERM)
        masters += 1
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
after = resource.getrusage(resource.RUSAGE_CHILDREN)
total = after.ru_utime + after.ru_stime
json.dump({"rc": rc, "wall_s": wall, "masters": masters, "cpu_s": total,
           "masters_cpu_s": total - (before.ru_utime + before.ru_stime)}, open(out, "w"))
"""

CALLBACK = '''
from __future__ import annotations

import json
import multiprocessing
import os
import resource
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: jrt_passcost
type: aggregate
short_description: CPU and wall clock of the process at each play and task
description: Writes JSON lines to the file named by JRT_PASSCOST_OUT.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "jrt_passcost"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._out = open(os.environ["JRT_PASSCOST_OUT"], "a")

    def _mark(self, kind, name, **extra):
        # reap the workers that have finished, so that their CPU time counts here and
        # not at a later task's mark
        multiprocessing.active_children()
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
        main = own.ru_utime + own.ru_stime
        row = {"kind": kind, "name": name, "t": time.monotonic(), "cpu": cpu, "main": main}
        row.update(extra)
        self._out.write(json.dumps(row) + "\\n")
        self._out.flush()

    def v2_playbook_on_play_start(self, play):
        self._mark("play", play.get_name())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._mark("task", task.get_name())

    def v2_playbook_on_handler_task_start(self, task):
        self._mark("task", task.get_name())

    def v2_runner_on_ok(self, result):
        data = getattr(result, "result", None)
        if not isinstance(data, dict):
            data = result._result
        self._mark("result", "ok", changed=bool(data.get("changed")))

    def v2_runner_on_skipped(self, result):
        self._mark("result", "skipped", changed=False)

    def v2_playbook_on_stats(self, stats):
        self._mark("end", "")
'''


def playbook_of(play: str) -> str:
    """The imported playbook a play of site.yml comes from, by its name's prefix."""
    prefix = play.split("|", maxsplit=1)[0].strip().lower()
    return {"report": "validate"}.get(prefix, prefix) if prefix else play


def split(marks: list[dict[str, Any]], total_cpu: float, masters_cpu: float) -> dict[str, Any]:
    """CPU and wall seconds per playbook and per task name from the callback's marks."""
    plays: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    tasks: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    timed = [m for m in marks if m["kind"] in ("play", "task", "end")]
    play = "startup"
    for mark, following in itertools.pairwise(timed):
        if mark["kind"] == "play":
            play = playbook_of(mark["name"])
        cpu, wall = following["cpu"] - mark["cpu"], following["t"] - mark["t"]
        plays[play]["cpu_s"] += cpu
        plays[play]["main_cpu_s"] += following["main"] - mark["main"]
        plays[play]["wall_s"] += wall
        if mark["kind"] == "task":
            task = tasks[f"{play} | {mark['name']}"]
            task["cpu_s"] += cpu
            task["wall_s"] += wall
            task["runs"] += 1
    play = "startup"
    for mark in marks:
        if mark["kind"] == "play":
            play = playbook_of(mark["name"])
        elif mark["kind"] == "task":
            plays[play]["tasks"] += 1
        elif mark["kind"] == "result":
            plays[play]["results"] += 1
            plays[play]["changed"] += int(mark["changed"])
    if timed:
        plays["startup"]["cpu_s"] += timed[0]["cpu"]
        plays["startup"]["main_cpu_s"] += timed[0]["main"]
        # after the last mark: the masters closed by the wrapper, and the exit
        plays["ssh masters"]["cpu_s"] = masters_cpu
        plays["exit"]["cpu_s"] = max(0.0, total_cpu - masters_cpu - timed[-1]["cpu"])
    return {
        "plays": {k: dict(v) for k, v in plays.items()},
        "tasks": {k: dict(v) for k, v in tasks.items()},
    }


def recap_changed(output: str) -> dict[str, int]:
    return {
        host: int(changed)
        for host, changed in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M)
    }


def run_pass(
    work: Path, inventory: Path, label: str, extra: tuple[str, ...], env: dict[str, str]
) -> dict[str, Any]:
    marks_file = work / f"{label}.marks.jsonl"
    log = work / f"{label}.log"
    result_file = work / f"{label}.rusage.json"
    marks_file.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-c",
        WRAPPER,
        str(result_file),
        str(log),
        str(BIN / "ansible-playbook"),
        "-i",
        str(inventory),
        "playbooks/site.yml",
        *extra,
    ]
    subprocess.run(cmd, env={**env, "JRT_PASSCOST_OUT": str(marks_file)}, cwd=REPO, check=True)
    usage = json.loads(result_file.read_text())
    output = log.read_text()
    if usage["rc"] != 0:
        raise SystemExit(f"site.yml {' '.join(extra)} exited {usage['rc']}:\n{output[-6000:]}")
    marks = [json.loads(line) for line in marks_file.read_text().splitlines()]
    return {
        **usage,
        "changed": recap_changed(output),
        **split(marks, usage["cpu_s"], usage["masters_cpu_s"]),
    }


def measure(count: int, args: argparse.Namespace, base: Path, source: Path) -> dict[str, Any]:
    work = base / f"hosts-{count}"
    inventory_dir = work / "inventory"
    inventory_dir.mkdir(parents=True)
    for name in ("group_vars", "models"):
        (inventory_dir / name).symlink_to(REPO / "inventories" / "sim" / name)
    control = work / "cp"
    control.mkdir()
    callbacks = work / "callbacks"
    callbacks.mkdir()
    (callbacks / "jrt_passcost.py").write_text(CALLBACK)
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(work / "facts"),
        "ANSIBLE_CALLBACK_PLUGINS": str(callbacks),
        "ANSIBLE_CALLBACKS_ENABLED": "jrt_passcost",
    }
    if args.mitogen:
        spec = importlib.util.find_spec("ansible_mitogen")
        if spec is None or spec.origin is None:
            raise SystemExit("--mitogen: install the mitogen extra (pip install -e '.[mitogen]')")
        env["ANSIBLE_STRATEGY_PLUGINS"] = str(Path(spec.origin).parent / "plugins" / "strategy")
        env["ANSIBLE_STRATEGY"] = "mitogen_linear"
    extra_vars = json.dumps(
        {
            "rt_validate_results_dir": str(work / "runs"),
            "inference_runtime_source_dir": str(source),
            # the wheelhouse the other runs use: packages are not downloaded again
            "inference_runtime_controller_cache": str(REPO / ".cache" / "inference_runtime"),
        }
    )
    fleet = Fleet(name=args.name, inventory_dir=inventory_dir)
    fleet.down()
    try:
        fleet.up(count)
        row: dict[str, Any] = {"hosts": count}
        for key, label, flags in PASSES:
            print(f"{count} host(s): {label}", file=sys.stderr, flush=True)
            row[key] = run_pass(
                work, inventory_dir / "hosts.yml", key, ("-e", extra_vars, *flags), env
            )
            print(
                f"  {row[key]['wall_s']:.1f} s wall, {row[key]['cpu_s']:.1f} CPU-s",
                file=sys.stderr,
                flush=True,
            )
    finally:
        fleet.down()
    if args.keep_logs:
        args.keep_logs.mkdir(parents=True, exist_ok=True)
        for log in work.glob("*.log"):
            shutil.copy2(log, args.keep_logs / f"hosts-{count}-{log.name}")
    return row


def print_table(rows: list[dict[str, Any]], top: int) -> None:
    print(f"{'hosts':>5} {'pass':16} {'wall s':>8} {'CPU s':>8} {'CPU s/host':>11} {'changed':>8}")
    for row in rows:
        n = row["hosts"]
        for key, label, _ in PASSES:
            p = row[key]
            print(
                f"{n:5d} {label:16} {p['wall_s']:8.1f} {p['cpu_s']:8.1f} {p['cpu_s'] / n:11.2f} "
                f"{sum(p['changed'].values()):8d}"
            )
        first, noop, check = row["first"], row["noop"], row["check"]
        print(
            f"{'':5} no-op / first converge: wall {noop['wall_s'] / first['wall_s']:.2f}, "
            f"CPU {noop['cpu_s'] / first['cpu_s']:.2f}; --check / first converge: wall "
            f"{check['wall_s'] / first['wall_s']:.2f}, CPU {check['cpu_s'] / first['cpu_s']:.2f}"
        )
    columns = [*PLAYBOOKS, "startup", "ssh masters", "exit"]
    print("\nCPU-s per host by playbook (changed results in brackets)")
    print(f"{'hosts':>5} {'pass':16} " + " ".join(f"{c:>12}" for c in columns))
    for row in rows:
        n = row["hosts"]
        for key, label, _ in PASSES:
            plays = row[key]["plays"]
            cells = []
            for c in columns:
                play = plays.get(c, {})
                cell = f"{play.get('cpu_s', 0.0) / n:.2f}"
                if c in PLAYBOOKS:
                    cell += f" [{int(play.get('changed', 0))}]"
                cells.append(f"{cell:>12}")
            print(f"{n:5d} {label:16} " + " ".join(cells))
    print("\nOf which ansible-playbook's own process (the rest: worker forks, ssh), CPU-s per host")
    print(f"{'hosts':>5} {'pass':16} " + " ".join(f"{c:>9}" for c in [*PLAYBOOKS, "startup"]))
    for row in rows:
        n = row["hosts"]
        for key, label, _ in PASSES:
            plays = row[key]["plays"]
            cells = [
                f"{plays.get(c, {}).get('main_cpu_s', 0.0) / n:9.2f}"
                for c in [*PLAYBOOKS, "startup"]
            ]
            print(f"{n:5d} {label:16} " + " ".join(cells))
    print("\nWall s by playbook")
    print(f"{'hosts':>5} {'pass':16} " + " ".join(f"{c:>9}" for c in PLAYBOOKS))
    for row in rows:
        for key, label, _ in PASSES:
            plays = row[key]["plays"]
            cells = [f"{plays.get(c, {}).get('wall_s', 0.0):9.1f}" for c in PLAYBOOKS]
            print(f"{row['hosts']:5d} {label:16} " + " ".join(cells))
    if top:
        last = rows[-1]
        tasks = sorted(last["noop"]["tasks"].items(), key=lambda kv: -kv[1]["cpu_s"])
        print(
            f"\nCostliest tasks of the no-op pass on {last['hosts']} host(s) (CPU s, wall s, runs)"
        )
        for name, t in tasks[:top]:
            print(f"{t['cpu_s']:7.2f} {t['wall_s']:7.1f} {int(t['runs']):4d}  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--name", default="jrtpass", help="fleet name")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--top", type=int, default=15, help="costliest no-op tasks to list")
    parser.add_argument("--mitogen", action="store_true", help="Mitogen's linear strategy")
    parser.add_argument("--keep-logs", type=Path, help="copy the ansible-playbook logs here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fleet-pass-") as tmp:
        base = Path(tmp)
        source = base / "source"
        source.mkdir()
        snapshot_source(source)
        for count in args.hosts:
            rows.append(measure(count, args, base, source))
    load = os.getloadavg()
    print(
        f"site.yml on simulated Orin Nanos ({'Mitogen linear' if args.mitogen else 'linear'} "
        f"strategy), load average {load[0]:.1f} / {load[1]:.1f} at the end"
    )
    print_table(rows, args.top)
    if args.json:
        atomic_write_text(
            args.json, json.dumps({"mitogen": args.mitogen, "rows": rows}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
