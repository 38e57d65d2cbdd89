"""First converge of playbooks/tune.yml against its idempotent re-run, on simulated Orin Nanos.

A fresh fleet (image already cached), then `ansible-playbook playbooks/tune.yml` twice
with the project's ansible.cfg: the first run changes every host (the boot arguments
are only written, unless --reboot lets it reboot into them as the sim inventory
does), the second finds nothing to change. Prints both wall times, the tasks changed
in each run, their ratio and the machine's load average, from one run.

Run as root: python benchmarks/rt_tuning.py [--hosts 4] [--reboot]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from jetson_rt.sim.fleet import Fleet

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.simfleet import SimFleet, recap  # noqa: E402  (after the sys.path set-up above)


def tune(sim: SimFleet, *extra: str) -> tuple[float, int]:
    """Wall seconds of one tune.yml run and the tasks it changed across the fleet."""
    start = time.monotonic()
    result = sim.playbook("playbooks/tune.yml", *extra, timeout=3600)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"tune.yml failed:\n{result.stdout[-4000:]}{result.stderr[-2000:]}")
    return elapsed, sum(row["changed"] for row in recap(result.stdout).values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--reboot", action="store_true", help="rt_tuning_reboot_ok=true")
    args = parser.parse_args()
    extra = ["-e", "rt_tuning_reboot_ok=true"] if args.reboot else []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        fleet = Fleet(name="benchtune", inventory_dir=Path(tmp) / "sim")
        fleet.down()
        try:
            sim = SimFleet(fleet=fleet, hosts=fleet.up(args.hosts))
            first, first_changed = tune(sim, *extra)
            again, again_changed = tune(sim, *extra)
        finally:
            fleet.down()
    reboot = " with reboot" if args.reboot else ""
    print(f"tune.yml{reboot} on {args.hosts} sim hosts ({os.cpu_count()} CPUs on this machine)")
    print(f"  first converge : {first:6.1f} s  ({first_changed} tasks changed)")
    print(f"  idempotent run : {again:6.1f} s  ({again_changed} tasks changed)")
    print(f"  ratio          : {first / again:6.2f}x")
    print(f"  load average   : {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    return 0 if again_changed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
