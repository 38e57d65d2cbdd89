"""``jetson-rt sim``: the simulated fleet."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="simulated Orin Nano fleet (podman containers reached over SSH)",
        description="Simulated Jetson Orin Nano hosts on JetPack 6 for playbooks and tests.",
    )
    parser.add_argument(
        "--name",
        default="jrt",
        help="fleet name: 1 to 32 letters, digits or '-', not starting with '-' (default: jrt)",
    )
    parser.add_argument(
        "--inventory-dir",
        type=Path,
        default=Path("inventories/sim"),
        help="where the generated inventory goes (default: inventories/sim)",
    )
    sim = parser.add_subparsers(dest="sim_command", required=True, metavar="ACTION")

    up = sim.add_parser("up", help="build the image if needed and start the hosts")
    up.add_argument("--hosts", type=int, default=4, help="number of hosts (default: 4)")
    up.add_argument("--rebuild", action="store_true", help="rebuild the image")
    up.set_defaults(func=_up)

    down = sim.add_parser("down", help="remove every host, network, key and mount")
    down.add_argument(
        "--purge-image",
        action="store_true",
        help="also remove the cached image and root file system",
    )
    down.set_defaults(func=_down)

    status = sim.add_parser("status", help="hosts, what they booted, isolation")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)

    reboot = sim.add_parser("reboot", help="reboot hosts (or power-cycle with --hard)")
    reboot.add_argument("hosts", nargs="+")
    reboot.add_argument("--hard", action="store_true", help="power-cycle, no shutdown")
    reboot.add_argument("--no-wait", action="store_true", help="do not wait for SSH")
    reboot.set_defaults(func=_reboot)

    kfs = sim.add_parser("kernelfs", help=argparse.SUPPRESS)
    kfs.add_argument("--state-dir", type=Path, required=True)
    kfs.add_argument("--mount", type=Path, required=True)
    kfs.set_defaults(func=_kernelfs)


def _fleet(args: argparse.Namespace) -> Any:
    from jetson_rt.sim.fleet import Fleet

    return Fleet(name=args.name, inventory_dir=args.inventory_dir)


def _up(args: argparse.Namespace) -> int:
    start = time.monotonic()
    fleet = _fleet(args)
    hosts = fleet.up(args.hosts, rebuild=args.rebuild)
    print(
        f"{len(hosts)} sim hosts up in {time.monotonic() - start:.1f} s; "
        f"inventory: {fleet.inventory_dir / 'hosts.yml'}"
    )
    for host in hosts:
        print(f"  {host.name:14s} {host.address}")
    return 0


def _down(args: argparse.Namespace) -> int:
    _fleet(args).down(purge_image=args.purge_image)
    print(f"sim fleet {args.name!r} removed")
    return 0


def _status(args: argparse.Namespace) -> int:
    rows = _fleet(args).status()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"sim fleet {args.name!r}: no hosts")
        return 0
    print(
        f"{'HOST':14s} {'ADDRESS':11s} {'STATE':8s} {'BOOTED':13s} {'KERNEL':20s} "
        f"{'RT':3s} {'SLOT A':10s} ISOLATED"
    )
    for row in rows:
        # an entry's label, or the partition L4TLauncher fell back to
        booted = row.get("booted") or str(row.get("linux") or "-").replace(" partition", "-part")
        slot = row.get("rootfs") or {}
        retry = (
            "unbootable"
            if slot.get("status") == "unbootable"
            else f"retry {slot.get('retry_count', '?')}/{slot.get('retry_max', '?')}"
        )
        print(
            f"{row['host']:14s} {row['address']:11s} {row['container']:8s} "
            f"{booted:13s} {row.get('release') or '-'!s:20s} "
            f"{'yes' if row.get('realtime') else 'no':3s} {retry:10s} {row.get('isolated') or '-'}"
        )
    return 0


def _reboot(args: argparse.Namespace) -> int:
    _fleet(args).reboot(args.hosts, hard=args.hard, wait=not args.no_wait)
    return 0


def _kernelfs(args: argparse.Namespace) -> int:
    import os

    from jetson_rt.sim.kernelfs import serve

    (args.state_dir / "kernelfs.pid").write_text(str(os.getpid()))
    serve(args.state_dir, args.mount)
    return 0
