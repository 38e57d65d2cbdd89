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

--fleet-cache (the engine cache: one build per fingerprint) measures instead, on
--hosts hosts of one class after a first install of det v1, two rollouts of one
new version each to every host, side by side in one run:

1. per-host builds (inference_runtime_engine_cache=false): det v2, built on
   every host;
2. fleet cache: det v4 (det v2's network in another file: the same build work),
   built once on a canary, copied through the controller's store to the others,
   each checking fingerprint, sha256 and that it loads.

It prints builds per rollout, bytes copied from the store, wall times, and the
arithmetic for a 100-board fleet at the guide's 10-30 min per on-device build.
Sim hosts build ONNX Runtime artifacts in about a second, so their wall times
say little about TensorRT builds; the build count is the point.
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


def count_builds(output: str, task: str) -> int:
    """Hosts ``changed`` in the TASK blocks named ``task`` (both plays)."""
    count = 0
    for block in output.split("TASK [")[1:]:
        if block.startswith(f"inference_runtime : {task}"):
            count += block.count("changed: [")
    return count


def cache_report(output: str) -> list[str]:
    lines = []
    for block in output.split("TASK [")[1:]:
        if block.startswith("inference_runtime : Engine cache | where each engine came from"):
            lines += [line.strip() for line in block.splitlines() if "det " in line]
    return lines


def fleet_cache(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="engines-bench-") as tmp:
        models = write_versions(Path(tmp) / "models")
        v4 = Path(tmp) / "models" / "det-4.onnx"
        v4.write_bytes(models["2"].read_bytes().replace(b"version 2", b"version 4"))
        models["4"] = v4
        source = Path(tmp) / "source"
        source.mkdir()
        snapshot_source(source)
        store = source / ".cache" / "inference_runtime" / "engines"
        fleet = Fleet(name=args.name, inventory_dir=Path(tmp) / "sim")
        fleet.down()
        try:
            sim = SimFleet(fleet=fleet, hosts=fleet.up(args.hosts))
            inventory_dir = Path(tmp) / "sim"
            prepare_inventory(inventory_dir)

            def roll(version: str, cache: bool) -> tuple[float, int, str]:
                for group in ("line_a", "line_b"):
                    set_group_models(
                        inventory_dir,
                        group,
                        [model_entry(models, version)],
                        inference_runtime_engine_cache=cache,
                    )
                return playbook(sim, source)

            roll("1", True)  # install, first engines: not measured
            per_host_s, per_host_changed, per_host_out = roll("2", False)
            per_host_builds = count_builds(per_host_out, "Models | build engines on the device")
            shutil.rmtree(store / "timing", ignore_errors=True)
            before = {path.name for path in store.iterdir()}
            cached_s, cached_changed, cached_out = roll("4", True)
            report = cache_report(cached_out)
            built = sum(": built here" in line for line in report)
            imported = sum("installed from the engine cache" in line for line in report)
            new = [path for path in store.iterdir() if path.name not in before]
            copy_bytes = sum(f.stat().st_size for d in new for f in d.iterdir() if f.is_file())
        finally:
            fleet.down()
    load = os.getloadavg()[0]
    print(f"{args.hosts} sim hosts of one class, load average {load:.1f} at the end")
    print(
        f"{'rollout of one new version':34} {'builds':>7} {'copied':>12} {'wall':>9} {'changed':>8}"
    )
    print(
        f"{'per-host builds (cache off)':34} {per_host_builds:7d} {0:>10} B {per_host_s:8.1f}s "
        f"{per_host_changed:8d}"
    )
    print(
        f"{'fleet cache':34} {built:7d} {copy_bytes * imported:>10} B {cached_s:8.1f}s "
        f"{cached_changed:8d}"
    )
    print(
        f"  ({imported} hosts installed a verified copy; {copy_bytes} B per copy: engine, "
        "manifest, fingerprint)"
    )
    print(
        f"builds per rollout: {built} instead of {per_host_builds}; wall time fleet cache / "
        f"per-host: {cached_s / per_host_s:.2f}"
    )
    boards = 100
    low, high = 10, 30
    print(
        f"arithmetic for {boards} boards of one class at {low}-{high} min per on-device build "
        f"(the guide): {boards} builds = {boards * low / 60:.0f}-{boards * high / 60:.0f} "
        f"board-hours per rollout against 1 build = {low}-{high} min; "
        f"{(boards - 1) * low / 60:.1f}-{(boards - 1) * high / 60:.1f} board-hours saved, "
        "and no production board spends a build's time off-line"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--name", default="infbench", help="fleet name")
    parser.add_argument("--cold-cache", action="store_true", help="empty the wheelhouse cache")
    parser.add_argument("--v2", action="store_true", help="also roll det v2 out to line_a")
    parser.add_argument(
        "--fleet-cache", action="store_true", help="per-host builds against the engine cache"
    )
    args = parser.parse_args()
    if args.fleet_cache:
        return fleet_cache(args)
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
