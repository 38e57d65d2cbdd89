"""How long the simulated fleet takes to come up, what a host costs, how fast Ansible reaches it.

For 1, 4 and 8 hosts (a fresh fleet each time, image already cached): `sim up` wall
time, memory per host (the containers' cgroup usage after boot), the wall time of
`ansible all -m ping` across the fleet (cold: new SSH connections; warm: median of
--repeat), and of a ten-task playbook (jetson_facts plus nine commands, the shape of a
role), with the project's ansible.cfg and with ansible-core's defaults side by side.

Run as root: python benchmarks/sim_fleet.py [--hosts 1 4 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jetson_rt.sim.fleet import Fleet
from jetson_rt.sim.image import build

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PLAYBOOK = (
    "- name: Bench | ten tasks per host\n"
    "  hosts: all\n"
    "  gather_facts: false\n"
    "  tasks:\n"
    "    - name: Bench | facts\n"
    "      jetson_rt.fleet.jetson_facts:\n"
) + "".join(
    f"    - name: Bench | command {n}\n"
    "      ansible.builtin.command: cat /proc/cmdline\n"
    "      changed_when: false\n"
    for n in range(9)
)
UNITS = {
    "b": 1e-6,
    "kb": 1e-3,
    "kib": 1.024e-3,
    "mb": 1.0,
    "mib": 1.048576,
    "gb": 1e3,
    "gib": 1073.741824,
}


def memory_mb(fleet: Fleet) -> float:
    usage = []
    for container in fleet.containers():
        out = subprocess.run(
            [
                "podman",
                "stats",
                "--no-stream",
                "--format",
                "{{.MemUsageBytes}}",
                container["Names"][0],
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        value = out.split("/")[0].strip()
        number = float("".join(ch for ch in value if ch.isdigit() or ch == "."))
        unit = value.lstrip("0123456789.").strip().lower()
        usage.append(number * UNITS.get(unit, 1.0))
    return statistics.mean(usage)


def timed(inventory: Path, config: Path, control_dir: Path, playbook: Path | None) -> float:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
    }
    if playbook is None:
        cmd = [str(BIN / "ansible"), "all", "-i", str(inventory), "-m", "ansible.builtin.ping"]
    else:
        cmd = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stdout}{result.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    build()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        defaults = Path(tmp) / "defaults.cfg"
        defaults.write_text("[defaults]\n")  # ansible-core's defaults, nothing else
        playbook = Path(tmp) / "bench.yml"
        playbook.write_text(PLAYBOOK)
        for count in args.hosts:
            fleet = Fleet(name="jrtbench", inventory_dir=Path(tmp) / f"inv{count}")
            fleet.down()
            start = time.perf_counter()
            fleet.up(count)
            up_s = time.perf_counter() - start
            print(f"{count} hosts up in {up_s:.1f} s", file=sys.stderr, flush=True)
            time.sleep(3)  # let boot-time services settle before measuring memory
            mem = memory_mb(fleet)
            inventory = fleet.inventory_dir / "hosts.yml"
            timings = {}
            for label, config in (("tuned", REPO / "ansible.cfg"), ("defaults", defaults)):
                control = Path(tmp) / f"cp-{label}-{count}"
                control.mkdir()
                cold = timed(inventory, config, control, None)
                warm = statistics.median(
                    timed(inventory, config, control, None) for _ in range(args.repeat)
                )
                play = statistics.median(
                    timed(inventory, config, control, playbook) for _ in range(args.repeat)
                )
                timings[label] = (cold, warm, play)
            fleet.down()
            rows.append((count, up_s, mem, timings))
    print("ansible times in s: project ansible.cfg / ansible-core defaults")
    print(
        f"{'hosts':>5} {'sim up s':>9} {'MB/host':>8} {'ping cold':>13} {'ping warm':>13} "
        f"{'10-task play':>13} {'play speed-up':>13}"
    )
    for count, up_s, mem, timings in rows:
        (cold, warm, play), (dcold, dwarm, dplay) = timings["tuned"], timings["defaults"]
        print(
            f"{count:5d} {up_s:9.1f} {mem:8.1f} {cold:6.2f}/{dcold:<6.2f} "
            f"{warm:6.2f}/{dwarm:<6.2f} {play:6.2f}/{dplay:<6.2f} {dplay / play:12.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
