"""``jetson-rt listen``: subscribe to results on Zenoh, print or record them with latencies.

Latency of a result at the subscriber: the publisher's capture-to-publish time
(one clock, the publishing host's CLOCK_MONOTONIC) plus publish-to-receive from
the wall clocks (CLOCK_REALTIME of both hosts; exact on one host, as good as the
hosts' time sync otherwise).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from jetson_rt.errors import ConfigError
from jetson_rt.runner.histogram import LatencyHistogram


def register(subparsers: Any) -> None:
    listen = subparsers.add_parser(
        "listen",
        help="subscribe to inference results on Zenoh and print their latencies",
        description="Print one line per result (host, task, model, frame, latencies) or "
        "record them as JSON lines; a summary per key at the end. Exit 1 if fewer than "
        "--count results arrived within --duration.",
    )
    listen.add_argument(
        "--key",
        default="jetson-rt/**",
        help="key expression to subscribe to (default jetson-rt/**: every host and task)",
    )
    listen.add_argument(
        "--connect", action="append", default=[], metavar="ENDPOINT", help="e.g. tcp/10.0.0.5:7447"
    )
    listen.add_argument(
        "--listen",
        dest="listen_on",
        action="append",
        default=[],
        metavar="ENDPOINT",
        help="accept publishers here, e.g. tcp/0.0.0.0:7447",
    )
    listen.add_argument("--mode", choices=("peer", "client"), default="peer")
    listen.add_argument("--count", type=int, help="stop after this many results")
    listen.add_argument("--duration", type=float, help="stop after this many seconds")
    listen.add_argument(
        "--per-key",
        type=int,
        help="stop once every key in --expect has this many results",
    )
    listen.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="KEY",
        help="a key that must deliver results (repeatable; with --per-key)",
    )
    listen.add_argument("--record", type=Path, help="write every result as a JSON line here")
    listen.add_argument("--quiet", action="store_true", help="no line per result, summary only")
    listen.add_argument("--json", action="store_true", help="print the summary as JSON")
    listen.set_defaults(func=_listen)


def _check(args: argparse.Namespace) -> None:
    from jetson_rt.runner.dataconfig import endpoint_problem

    for flag, endpoints in (("--connect", args.connect), ("--listen", args.listen_on)):
        for endpoint in endpoints:
            problem = endpoint_problem(endpoint)
            if problem is not None:
                raise ConfigError(f"{flag} {problem}")
    for flag, value in (("--count", args.count), ("--per-key", args.per_key)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    if args.duration is not None and not args.duration > 0:
        raise ConfigError(f"--duration must be a positive number of seconds, got {args.duration}")
    if args.per_key is not None and not args.expect:
        raise ConfigError("--per-key needs at least one --expect KEY")
    if args.record is not None and (args.record.is_dir() or not args.record.parent.is_dir()):
        raise ConfigError(f"--record {args.record}: name a file in an existing folder")


class Listener:
    """Counts and latency histograms per key, fed by Zenoh's callback thread."""

    def __init__(self, out: IO[str] | None, record: IO[str] | None) -> None:
        self.out = out
        self.record = record
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.counts: dict[str, int] = {}
        self.latency: dict[str, LatencyHistogram] = {}
        self.misses: dict[str, int] = {}
        self.bad = 0
        self.total = 0
        self.stop_at: int | None = None
        self.per_key: int | None = None
        self.expect: list[str] = []

    def on_sample(self, sample: Any) -> None:
        from jetson_rt.runner.publish import decode

        received_wall = time.time_ns()
        key = str(sample.key_expr)
        try:
            got = decode(sample.payload.to_bytes())
        except ValueError as exc:
            with self.lock:
                self.bad += 1
            if self.out is not None:
                self.out.write(f"{key}: refused: {exc}\n")
            return
        result = got.result
        start = result.capture_ns or result.start_ns
        to_publish = got.publish_ns - start
        latency = to_publish + max(0, received_wall - got.publish_wall_ns)
        with self.lock:
            self.total += 1
            self.counts[key] = self.counts.get(key, 0) + 1
            self.latency.setdefault(key, LatencyHistogram()).record(max(latency, 0))
            if not result.deadline_met:
                self.misses[key] = self.misses.get(key, 0) + 1
            finished = (self.stop_at is not None and self.total >= self.stop_at) or (
                self.per_key is not None
                and all(self.counts.get(k, 0) >= self.per_key for k in self.expect)
            )
        if self.out is not None:
            shapes = " ".join(f"{n}{list(a.shape)}" for n, a in result.outputs.items())
            self.out.write(
                f"{key} model={result.model} tier={result.tier} frame={result.frame_id} "
                f"seq={result.seq} {'met' if result.deadline_met else 'MISSED'} "
                f"{'capture' if result.capture_ns else 'start'}->published "
                f"{to_publish / 1e6:.3f} ms ->received {latency / 1e6:.3f} ms {shapes}\n"
            )
            self.out.flush()
        if self.record is not None:
            line = {
                "key": key,
                "task": result.task,
                "model": result.model,
                "tier": result.tier,
                "seq": result.seq,
                "frame_id": result.frame_id,
                "capture_ns": result.capture_ns,
                "start_ns": result.start_ns,
                "end_ns": result.end_ns,
                "publish_ns": got.publish_ns,
                "publish_wall_ns": got.publish_wall_ns,
                "received_wall_ns": received_wall,
                "deadline_met": result.deadline_met,
                "latency_ms": round(latency / 1e6, 6),
                "outputs": {n: list(a.shape) for n, a in result.outputs.items()},
            }
            with self.lock:
                self.record.write(json.dumps(line) + "\n")
        if finished:
            self.done.set()

    def summary(self) -> dict[str, object]:
        with self.lock:
            return {
                "results": self.total,
                "refused": self.bad,
                "keys": {
                    key: {
                        "results": count,
                        "deadline_misses": self.misses.get(key, 0),
                        "latency_ms": self.latency[key].summary_ms(),
                    }
                    for key, count in sorted(self.counts.items())
                },
            }


def _listen(args: argparse.Namespace) -> int:
    from jetson_rt.runner.publish import import_zenoh, zenoh_config

    _check(args)
    zenoh = import_zenoh()
    record = args.record.open("w", encoding="utf-8") if args.record is not None else None
    listener = Listener(None if args.quiet else sys.stdout, record)
    listener.stop_at = args.count
    listener.per_key = args.per_key
    listener.expect = list(args.expect)
    try:
        config = zenoh_config(args.mode, args.connect, args.listen_on)
        try:
            session = zenoh.open(config)
        except Exception as exc:  # zenoh.ZError
            raise ConfigError(f"cannot open a Zenoh session: {exc}") from exc
        try:
            subscriber = session.declare_subscriber(args.key, listener.on_sample)
            with contextlib.suppress(KeyboardInterrupt):
                listener.done.wait(args.duration)
            subscriber.undeclare()
        finally:
            session.close()
    finally:
        if record is not None:
            record.close()
    summary = listener.summary()
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        for key, info in summary["keys"].items():  # type: ignore[attr-defined]
            lat = info["latency_ms"]
            sys.stdout.write(
                f"{key}: {info['results']} results, {info['deadline_misses']} missed, "
                f"latency p50 {lat['p50']:.3f} p99 {lat['p99']:.3f} max {lat['max']:.3f} ms\n"
            )
    wanted = args.count is not None or args.per_key is not None
    if wanted and not listener.done.is_set():
        sys.stderr.write(
            f"ERROR jetson_rt: {listener.total} result(s) arrived, fewer than asked for\n"
        )
        return 1
    return 0
