"""RUN_DIR builders for the report tests, in the layout docs/validation-report.md gives."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FIXTURES = Path(__file__).parent / "fixtures"
CYCLICTEST_FIXTURES = FIXTURES / "cyclictest"

PASSING_AUDIT = [
    {
        "id": "rt_kernel",
        "title": "PREEMPT_RT kernel active",
        "status": "pass",
        "observed": "1",
        "expected": "1",
        "hint": "Install nvidia-l4t-rt-kernel and boot the real-time entry.",
    },
    {
        "id": "cpu_isolation",
        "title": "CPU cores isolated",
        "status": "pass",
        "observed": "4-5",
        "expected": "4-5",
        "hint": "Set isolcpus/nohz_full/rcu_nocbs on the kernel command line.",
    },
    {
        "id": "swap",
        "title": "Swap disabled",
        "status": "pass",
        "observed": "0 B",
        "expected": "0 B",
        "hint": "Disable nvzramconfig and run swapoff -a.",
    },
]


def cyclictest_json(
    threads: Sequence[Mapping[str, Any]],
    *,
    histogram_us: int = 400,
    realtime: int = 1,
) -> dict[str, Any]:
    """A cyclictest 2.x JSON document; each thread gives histogram, cycles, min, max, avg, cpu."""
    return {
        "file_version": 1,
        "cmdline:": f"cyclictest -m -p90 -i200 -h{histogram_us} -q -a4-5 -t{len(threads)} "
        "--json=/var/tmp/cyclictest.json -D1h",
        "rt_test_version:": "2.2",
        "start_time": "Thu, 26 Nov 2026 06:00:00 +0000",
        "end_time": "Thu, 26 Nov 2026 07:00:00 +0000",
        "return_code": 0,
        "sysinfo": {
            "sysname": "Linux",
            "nodename": "orin",
            "release": "5.15.148-rt-tegra",
            "version": "#1 SMP PREEMPT_RT",
            "machine": "aarch64",
            "realtime": realtime,
        },
        "num_threads": len(threads),
        "resolution_in_ns": 32,
        "thread": {
            str(i): {
                "histogram": {str(k): v for k, v in t["histogram"].items()},
                "cycles": t["cycles"],
                "min": t["min"],
                "max": t["max"],
                "avg": t["avg"],
                "cpu": t["cpu"],
                "node": 0,
            }
            for i, t in enumerate(threads)
        },
    }


def thread(
    cpu: int, peak: int = 6, max_us: int = 20, cycles: int = 100_000, overflows: int = 0
) -> dict[str, Any]:
    """A plausible histogram: most samples near ``peak``, a thin tail up to ``max_us``."""
    rng = np.random.default_rng(cpu * 1000 + max_us)
    in_range = cycles - overflows
    samples = np.clip(rng.gamma(6.0, peak / 5.0, size=in_range).astype(int), 1, None)
    samples = np.minimum(samples, max_us)
    samples[0] = max_us if max_us < 400 else samples[0]
    values, counts = np.unique(samples, return_counts=True)
    histogram = {int(v): int(c) for v, c in zip(values, counts, strict=True) if v < 400}
    return {
        "histogram": histogram,
        "cycles": cycles,
        "min": int(values[0]),
        "max": max_us,
        "avg": round(float(samples.mean()), 2),
        "cpu": cpu,
    }


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


class RunBuilder:
    """Writes a RUN_DIR host by host."""

    def __init__(self, root: Path, run_id: str = "20261126T060000Z") -> None:
        self.root = root
        self.run: dict[str, Any] = {
            "schema_version": 1,
            "run_id": run_id,
            "started_at": "2026-11-26T06:00:00Z",
            "finished_at": "2026-11-26T07:02:00Z",
            "profile": "acceptance",
            "cyclictest": {"cmdline": "cyclictest -m -p90 -i200 -h400 -q -a4-5 -t2 -D1h"},
            "gates": {},
            "hosts": {},
        }
        root.mkdir(parents=True, exist_ok=True)
        self.flush()

    def flush(self) -> Path:
        write_json(self.root / "run.json", self.run)
        return self.root

    def host_dir(self, name: str) -> Path:
        return self.root / "hosts" / name

    def add_host(
        self,
        name: str,
        groups: Sequence[str] = ("orin_nano",),
        *,
        reachable: bool = True,
        error: str | None = None,
        audit: Any = PASSING_AUDIT,
        cyclictest: Mapping[str, Any] | str | None = None,
        runner: Mapping[str, Any] | None = None,
        facts: Mapping[str, Any] | None = None,
    ) -> Path:
        self.run["hosts"][name] = list(groups)
        self.flush()
        directory = self.host_dir(name)
        write_json(
            directory / "host.json",
            {
                "schema_version": 1,
                "inventory_hostname": name,
                "groups": list(groups),
                "reachable": reachable,
                "error": error,
                "facts": dict(
                    facts
                    or {
                        "model": "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit",
                        "l4t_release": "R36.4.3",
                        "kernel": "5.15.148-rt-tegra",
                        "realtime": True,
                        "isolated_cpus": "4-5",
                        "nvpmodel": "MAXN_SUPER",
                    }
                ),
            },
        )
        if not reachable:
            return directory
        if audit is not None:
            write_json(directory / "audit.json", {"schema_version": 1, "checks": audit})
        if isinstance(cyclictest, str):
            (directory / "cyclictest.txt").write_text(cyclictest)
        elif cyclictest is not None:
            write_json(directory / "cyclictest.json", cyclictest)
        if runner is not None:
            write_json(directory / "runner_stats.json", runner)
        return directory

    def add_good_host(
        self, name: str, groups: Sequence[str] = ("orin_nano",), max_us: int = 18
    ) -> Path:
        return self.add_host(
            name,
            groups,
            cyclictest=cyclictest_json([thread(4, max_us=max_us), thread(5, max_us=max_us - 2)]),
        )

    def copy_fixture(self, name: str, fixture: str, target: str) -> None:
        shutil.copy(CYCLICTEST_FIXTURES / fixture, self.host_dir(name) / target)


RUNNER_STATS = {
    "stages": {
        "capture": {"p50_ms": 2.1, "p99_ms": 3.4, "max_ms": 4.0},
        "preprocess": {"p50_ms": 0.4, "p99_ms": 0.6, "max_ms": 0.9},
        "h2d": {"p50_ms": 0.2, "p99_ms": 0.3, "max_ms": 0.5},
        "infer": {"p50_ms": 6.8, "p99_ms": 7.9, "max_ms": 9.1},
        "d2h": {"p50_ms": 0.1, "p99_ms": 0.2, "max_ms": 0.3},
        "postprocess": {"p50_ms": 0.9, "p99_ms": 1.4, "max_ms": 2.0},
        "total": {"p50_ms": 10.6, "p99_ms": 13.0, "max_ms": 15.2},
    },
    "frames": 108000,
    "deadline_misses": 0,
}


def build_mixed_run(run: RunBuilder) -> RunBuilder:
    run.run["budget"] = {
        "application": "line-a defect detector",
        "target_fps": 30,
        "deadline_ms": 33.3,
        "sla_percent": 99.9,
        "stages_ms": {
            "capture": 5,
            "preprocess": 2,
            "h2d": 1,
            "infer": 15,
            "d2h": 1,
            "postprocess": 3,
            "app": 3,
        },
    }
    run.flush()
    run.add_host(
        "orin-01",
        runner=RUNNER_STATS,
        cyclictest=cyclictest_json([thread(c, max_us=14 + c) for c in range(6)]),
    )
    run.add_host(
        "orin-02",
        ("orin_nano", "line_b"),
        cyclictest=cyclictest_json([thread(4, max_us=87), thread(5, max_us=30)]),
    )
    failing_audit = [
        *PASSING_AUDIT[:2],
        {**PASSING_AUDIT[2], "status": "fail", "observed": "3.7 GiB"},
    ]
    run.add_host("orin-03", audit=failing_audit, cyclictest=cyclictest_json([thread(4), thread(5)]))
    run.add_host(
        "orin-04", reachable=False, error="ssh: connect to host orin-04 port 22: timed out"
    )
    directory = run.add_host("orin-05", cyclictest=cyclictest_json([thread(4), thread(5)]))
    text = (directory / "cyclictest.json").read_text()
    (directory / "cyclictest.json").write_text(text[: len(text) // 2])
    run.add_host(
        "orin-06", cyclictest=(CYCLICTEST_FIXTURES / "rt-tests-2.40-p90-h400.txt").read_text()
    )
    run.run["hosts"]["orin-07"] = ["orin_nano"]
    run.flush()
    run.add_host(
        "sim-01",
        ("sim", "orin_nano"),
        facts={"virtual": True},
        runner=RUNNER_STATS,
        cyclictest=json.loads((CYCLICTEST_FIXTURES / "rt-tests-2.40-p90-h400.json").read_text()),
    )
    return run
