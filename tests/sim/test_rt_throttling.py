"""`jetson-rt check-config` on a simulated Orin Nano warns about RT throttling.

A stock host has ``kernel.sched_rt_runtime_us`` = 950000 (the sim serves it as
the kernel does), so a runner.yaml whose loop is SCHED_FIFO (``rt.priority``
80, the default) gets the warning, with the cause and the fix in the words of
``rt_validate``'s audit; once the setting is -1 (what ``rt_tuning`` writes) it
does not. The runtime runs on the host from this checkout (its source and its
pure-Python and numpy dependencies copied in, as the wheel would install them),
under the host's own Python, over SSH.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy
import pytest
import yaml
from tests.simfleet import REPO, SimFleet

from onnx_models import write_mlp

pytestmark = pytest.mark.sim

REMOTE = "/tmp/jetson-rt-throttle"
RUNTIME_FILE = "/proc/sys/kernel/sched_rt_runtime_us"


@pytest.fixture(scope="module")
def staged(sim: SimFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    """The runtime, its dependencies, a model and two runner.yaml files on the first host."""
    payload = tmp_path_factory.mktemp("throttle-payload")
    shutil.copytree(REPO / "runtime" / "jetson_rt", payload / "jetson_rt")
    yaml_dir = Path(yaml.__file__).parent
    shutil.copytree(yaml_dir, payload / "yaml", ignore=shutil.ignore_patterns("*.so"))
    numpy_dir = Path(numpy.__file__).parent
    shutil.copytree(numpy_dir, payload / "numpy", ignore=shutil.ignore_patterns("tests"))
    libs = numpy_dir.with_name("numpy.libs")
    if libs.is_dir():
        shutil.copytree(libs, payload / "numpy.libs")
    model = write_mlp(payload)
    for name, priority in (("fifo.yaml", 80), ("other.yaml", 0)):
        doc = {
            "schema_version": 1,
            "models": {"cls": {"backend": "onnxruntime", "path": model.path.name, "verify": False}},
            "tasks": [{"name": "classify", "tiers": ["cls"], "deadline_ms": 20}],
            "rt": {"priority": priority},
        }
        (payload / name).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    host = sim.hosts[0]
    sim.sudo(host, f"rm -rf {REMOTE}")
    subprocess.run(
        ["podman", "cp", str(payload), f"{host.container}:{REMOTE}"], check=True, timeout=300
    )
    sim.sudo(host, f"chown -R jetson {REMOTE}")
    stock = sim.sudo(host, f"cat {RUNTIME_FILE}").strip()
    try:
        yield sim
    finally:
        sim.sudo(host, f"echo {stock} > {RUNTIME_FILE}; rm -rf {REMOTE}", check=False)


def check_config(sim: SimFleet, name: str) -> subprocess.CompletedProcess[str]:
    command = (
        f"cd {REMOTE} && PYTHONPATH={REMOTE} python3 -s -m jetson_rt check-config "
        f"{shlex.quote(name)}"
    )
    return sim.ssh(sim.hosts[0], command, check=False)


def test_stock_host_warns_a_fifo_loop_and_not_after_the_fix(staged: SimFleet) -> None:
    host = staged.hosts[0]
    assert staged.sudo(host, f"cat {RUNTIME_FILE}").strip() == "950000"  # stock

    fifo = check_config(staged, "fifo.yaml")
    assert fifo.returncode == 0, fifo.stderr  # a warning, not a refusal
    assert "fifo.yaml: valid" in fifo.stdout
    warning = [line for line in fifo.stderr.splitlines() if "RT throttling" in line]
    assert len(warning) == 1, fifo.stderr
    assert warning[0].startswith(
        "WARNING jetson_rt: rt.priority: 80 runs the loop under SCHED_FIFO, but RT throttling "
        "is on (kernel.sched_rt_runtime_us = 950000 of a 1000000 us period)"
    )
    assert (
        "RT throttling off (kernel.sched_rt_runtime_us) is what rt_validate audits" in (warning[0])
    )
    assert (
        "sysctl kernel.sched_rt_runtime_us=-1 in /etc/sysctl.d (rt_tuning_sysctls)." in (warning[0])
    )

    other = check_config(staged, "other.yaml")  # rt.priority 0: not SCHED_FIFO
    assert other.returncode == 0, other.stderr
    assert "RT throttling" not in other.stderr

    # What rt_tuning writes (sysctl -w through the simulated kernel file).
    staged.sudo(host, "sysctl -w kernel.sched_rt_runtime_us=-1")
    fixed = check_config(staged, "fifo.yaml")
    assert fixed.returncode == 0, fixed.stderr
    assert "RT throttling" not in fixed.stderr
