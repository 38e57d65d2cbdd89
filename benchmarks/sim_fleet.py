"""How long the simulated fleet takes to come up, what a host costs, how fast Ansible reaches it.

For 1, 4 and 8 hosts (a fresh fleet each time, image already cached): `sim up` wall
time, memory per host (the containers' cgroup usage after boot), and the wall time of
`ansible all -m ping` across the fleet, cold (new SSH connections) and warm, with the
project's ansible.cfg and with ansible-core's defaults side by side.

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
ANSIBLE = str(Path(sys.executable).with_name("ansible"))


def memory_mb(fleet: Fleet) -> float:
    names = [c["Names"][0] for c in fleet.containers()]
    usage = []
    for name in names:
        out = subprocess.run(
            ["podman", "stats", "--no-stream", "--format", "{{.MemUsageBytes}}", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        value = out.split("/")[0].strip()
        number = float("".join(ch for ch in value if ch.isdigit() or ch == "."))
        unit = value.lstrip("0123456789.").strip().lower()
        scale = {
            "b": 1e-6,
            "kb": 1e-3,
            "kib": 1.024e-3,
            "mb": 1,
            "mib": 1.048576,
            "gb": 1e3,
            "gib": 1073.741824,
        }.get(unit, 1)
        usage.append(number * scale)
    return statistics.mean(usage)


def ping(inventory: Path, config: Path, control_dir: Path) -> float:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
    }
    start = time.perf_counter()
    result = subprocess.run(
        [ANSIBLE, "all", "-i", str(inventory), "-m", "ansible.builtin.ping"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"ansible ping failed:\n{result.stdout}{result.stderr}")
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
        for count in args.hosts:
            fleet = Fleet(name="jrtbench", inventory_dir=Path(tmp) / f"inv{count}")
            fleet.down()
            start = time.perf_counter()
            fleet.up(count)
            up_s = time.perf_counter() - start
            time.sleep(3)  # let boot-time services settle before measuring memory
            mem = memory_mb(fleet)
            inventory = fleet.inventory_dir / "hosts.yml"
            timings = {}
            for label, config in (("tuned", REPO / "ansible.cfg"), ("defaults", defaults)):
                control = Path(tmp) / f"cp-{label}-{count}"
                control.mkdir()
                cold = ping(inventory, config, control)
                warm = statistics.median(
                    ping(inventory, config, control) for _ in range(args.repeat)
                )
                timings[label] = (cold, warm)
            fleet.down()
            rows.append((count, up_s, mem, timings))
    print(
        f"{'hosts':>5} {'sim up s':>9} {'MB/host':>8} {'ping cold s':>12} {'ping warm s':>12} "
        f"{'defaults cold':>14} {'defaults warm':>14} {'warm ratio':>10}"
    )
    for count, up_s, mem, timings in rows:
        (cold, warm), (dcold, dwarm) = timings["tuned"], timings["defaults"]
        print(
            f"{count:5d} {up_s:9.1f} {mem:8.1f} {cold:12.2f} {warm:12.2f} {dcold:14.2f} "
            f"{dwarm:14.2f} {dwarm / warm:10.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
