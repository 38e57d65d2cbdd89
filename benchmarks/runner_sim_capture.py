"""Capture to publish on the simulated fleet, per host. Not a Jetson figure.

The sim hosts' runners (after ``./scripts/demo.sh`` or ``site.yml``) read a 30 fps
``videotestsrc`` pipeline and publish over Zenoh to the controller. For each host
this prints, from its runner's stats file (read with ``podman exec``), p50/p99 of
capture to input filled, to inference done, and to published; then it listens on
the controller for ``--seconds`` (``jetson-rt listen``) for capture to received.
The hosts are containers on a shared 2-core VM without PREEMPT_RT: the figures
show the pipeline works end to end and where time goes, not what a Jetson does.

Run it under the sim lock:

    flock /tmp/jetson-rt-sim.lock .venv/bin/python benchmarks/runner_sim_capture.py \\
        [--name jrt] [--seconds 20] [--listen tcp/0.0.0.0:7447]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from jetson_rt.sim.fleet import LABEL

STAGES = ("capture_to_input", "capture_to_done", "e2e", "capture_to_published")


def containers(name: str) -> list[str]:
    out = subprocess.run(
        ["podman", "ps", "--filter", f"label={LABEL}={name}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(line for line in out.split() if line)


def host_stats(container: str) -> dict[str, Any]:
    out = subprocess.run(
        ["podman", "exec", container, "cat", "/run/jetson-rt/stats.json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data: dict[str, Any] = json.loads(out)
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="jrt", help="sim fleet name (jetson-rt sim --name)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--listen", default="tcp/0.0.0.0:7447")
    args = parser.parse_args()
    names = containers(args.name)
    if not names:
        sys.stderr.write(f"no running hosts in sim fleet {args.name!r}\n")
        return 1
    report: dict[str, Any] = {"hosts": {}}
    for container in names:
        stats = host_stats(container)
        for task, info in stats["tasks"].items():
            latency = info["latency_ms"]
            row = {
                stage: {
                    "p50_ms": latency[stage]["p50"],
                    "p99_ms": latency[stage]["p99"],
                    "count": latency[stage]["count"],
                }
                for stage in STAGES
                if stage in latency and latency[stage]["count"]
            }
            row["input"] = {
                key: info["input"].get(key)
                for key in ("state", "frames", "frame_gaps", "errors", "restarts")
            }
            report["hosts"][f"{container}/{task}"] = row
            print(container, task, json.dumps(row), flush=True)
    listened = subprocess.run(
        [
            sys.executable,
            "-m",
            "jetson_rt",
            "listen",
            "--listen",
            args.listen,
            "--duration",
            str(args.seconds),
            "--quiet",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if listened.returncode == 0:
        report["controller"] = json.loads(listened.stdout)
        for key, info in report["controller"]["keys"].items():
            lat = info["latency_ms"]
            print(
                f"{key}: {info['results']} results at the controller, capture to received "
                f"p50 {lat['p50']:.3f} p99 {lat['p99']:.3f} ms",
                flush=True,
            )
    else:
        sys.stderr.write(listened.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
