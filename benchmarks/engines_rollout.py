"""First rollout vs a no-change re-run of playbooks/engines.yml on simulated Orin Nanos.

A fresh fleet of --hosts hosts (default 4: line_a and line_b, two each, a canary in
each), the model det v1 (tests/onnx_models.py conv-bn-relu) in both groups, then:

1. first rollout: wheelhouse (controller cache warm or cold, --cold-cache empties it
   first), copy and offline install, model copy, on-device build, unit, runner.yaml,
   restart and health gate on every host, canaries first;
2. re-run with nothing changed: every host checked, nothing copied, built or restarted;
3. (with --v2) det v2 to line_a only: the canary, then the other host.

Prints the wall times side by side with the PLAY RECAP changed counts.
Run as root: python benchmarks/engines_rollout.py [--hosts 4] [--cold-cache] [--v2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from tests.engine_rollout import (  # noqa: E402  (after the sys.path set-up above)
    model_entry,
    prepare_inventory,
    set_group_models,
    snapshot_source,
    write_versions,
)
from tests.simfleet import SimFleet, recap  # noqa: E402

from jetson_rt.sim.fleet import Fleet  # noqa: E402


def playbook(sim: SimFleet, source: Path) -> tuple[float, int, str]:
    started = time.monotonic()
    # one source state for every run: the re-run must not see a new runtime build
    result = sim.playbook(
        "playbooks/engines.yml", "-e", f"inference_runtime_source_dir={source}", timeout=3600
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"engines.yml failed:\n{(result.stdout + result.stderr)[-4000:]}")
    changed = sum(row["changed"] for row in recap(result.stdout).values())
    return seconds, changed, result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--name", default="infbench", help="fleet name")
    parser.add_argument("--cold-cache", action="store_true", help="empty the wheelhouse cache")
    parser.add_argument("--v2", action="store_true", help="also roll det v2 out to line_a")
    args = parser.parse_args()
    if args.cold_cache:
        shutil.rmtree(REPO / ".cache" / "inference_runtime" / "wheelhouse", ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="engines-bench-") as tmp:
        models = write_versions(Path(tmp) / "models")
        source = Path(tmp) / "source"
        source.mkdir()
        snapshot_source(source)
        fleet = Fleet(name=args.name, inventory_dir=Path(tmp) / "sim")
        fleet.down()
        try:
            started = time.monotonic()
            sim = SimFleet(fleet=fleet, hosts=fleet.up(args.hosts))
            up_s = time.monotonic() - started
            inventory_dir = Path(tmp) / "sim"
            prepare_inventory(inventory_dir)
            for group in ("line_a", "line_b"):
                set_group_models(inventory_dir, group, [model_entry(models, "1")])
            rows = [
                (
                    "first rollout (det v1 everywhere)",
                    *playbook(sim, source),
                )
            ]
            rows.append(("re-run, nothing changed", *playbook(sim, source)))
            if args.v2:
                set_group_models(inventory_dir, "line_a", [model_entry(models, "2")])
                rows.append(
                    (
                        "det v2 to line_a (canary first)",
                        *playbook(sim, source),
                    )
                )
        finally:
            fleet.down()
    load = os.getloadavg()[0]
    print(f"{args.hosts} sim hosts (sim up {up_s:.1f} s), load average {load:.1f} at the end")
    print(f"{'run':40} {'wall':>9} {'changed':>8}")
    for label, seconds, changed, _ in rows:
        print(f"{label:40} {seconds:8.1f}s {changed:8d}")
    first, rerun = rows[0][1], rows[1][1]
    print(f"no-change re-run / first rollout: {rerun / first:.2f} ({first / rerun:.1f}x faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
