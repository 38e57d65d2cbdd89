"""playbooks/engines.yml (role inference_runtime) against three simulated Orin Nanos.

One fleet serves the whole module and the tests run in file order, as a fleet's
life does: install and serve det v1 everywhere; roll v2 out to line_a (canary
first) while line_b stays on v1; re-run with nothing changed (0 changed, 0
builds); roll out a wrong v3 (its output does not match the reference), caught
at line_a's canary and rolled back there while every other host keeps serving;
then hang a runner and watch systemd's watchdog restart it. Engines go through
the controller's engine cache: one build per fingerprint, the other hosts of
the class install a verified copy; at the end a host made another Orin Nano
module builds its own, and a corrupted copy in the store is refused and rebuilt.

The fleet (3 hosts): line_a = orin-nano-01 (canary), orin-nano-02; line_b =
orin-nano-03 (canary). Sim hosts run the ONNX Runtime backend (no GPU).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.engine_rollout import (
    model_entry,
    prepare_inventory,
    set_group_models,
    sha256,
    snapshot_source,
    write_versions,
)
from tests.simfleet import SimFleet, recap, sim_fleet

pytestmark = pytest.mark.sim

FLEET_NAME = "infertest"
UNIT = "jetson-rt-runner"
ENGINES = "/var/lib/jetson-rt/engines/det"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    with sim_fleet(FLEET_NAME, 3, tmp_path_factory.mktemp("infer") / "sim") as sim:
        yield sim


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_versions(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The jetson-rt sources the wheel is built from, frozen for the module.

    A working tree that changes between two runs is a new runtime build, which the role
    rightly rolls out again; the tests compare runs, so they build from one snapshot.
    """
    return snapshot_source(tmp_path_factory.mktemp("source"))


def roll_out(
    fleet: SimFleet, models: dict[str, Path], source: Path, line_a: str, line_b: str, *args: str
) -> tuple[int, str]:
    inventory_dir = fleet.inventory.parent
    prepare_inventory(inventory_dir)
    for group, version in (("line_a", line_a), ("line_b", line_b)):
        set_group_models(
            inventory_dir,
            group,
            [model_entry(models, version)],
            inference_runtime_engine_cache=True,
        )
    result = fleet.playbook(
        "playbooks/engines.yml", "-e", f"inference_runtime_source_dir={source}", *args
    )
    return result.returncode, result.stdout + result.stderr


def engine_sources(output: str) -> dict[str, list[str]]:
    """Host -> the engine cache's report lines ("det 1: built here (fingerprint ...)").

    The YAML callback quotes an item holding ": " and folds long ones over lines:
    each host's message is joined into one line and split at its "- det N:" items.
    """
    found: dict[str, list[str]] = {}
    for block in output.split("TASK [")[1:]:
        if not block.startswith("inference_runtime : Engine cache | where each engine came from"):
            continue
        for chunk in block.split("ok: [")[1:]:
            host, _, rest = chunk.partition("]")
            text = " " + " ".join(rest.split())
            items = re.split(r"\s-\s+(?=['\"]?det \d+:)", text)[1:]
            found.setdefault(host, []).extend(item.strip().strip("'\"") for item in items)
    return found


def store(source: Path) -> Path:
    """The controller's engine store of a rollout from ``source``."""
    return source / ".cache" / "inference_runtime" / "engines"


def host_state(fleet: SimFleet, index: int) -> dict[str, Any]:
    """The runner unit's state, its process and the model links, in one SSH session."""
    script = (
        f"systemctl show {UNIT} -p ActiveState -p MainPID -p NRestarts -p WatchdogUSec -p Type "
        "-p ExecMainStartTimestampMonotonic; "
        f"echo current=$(readlink {ENGINES}/current); "
        f"echo previous=$(readlink {ENGINES}/previous); "
        f"echo versions=$(ls {ENGINES} | tr '\\n' ,); "
        f"P=$(systemctl show -p MainPID --value {UNIT}); "
        "echo user=$(ps -o user= -p $P); echo policy=$(chrt -p $P | head -1 | sed 's/.*: //'); "
        "echo prio=$(chrt -p $P | tail -1 | sed 's/.*: //'); "
        "grep -E '^(Cpus_allowed_list|NoNewPrivs|Seccomp):' /proc/$P/status "
        "| tr -d '\\t' | sed 's/:/=/'; "
        "echo stats=$(cat /run/jetson-rt/stats.json 2>/dev/null | tr -d '\\n')"
    )
    out = fleet.sudo(fleet.hosts[index], script, check=False)
    state: dict[str, Any] = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        state[key] = value
    state["stats"] = json.loads(state["stats"]) if state.get("stats") else {}
    return state


def untouched(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """No restart by the playbook: the same process, or only systemd's own restarts.

    On a loaded 2-core VM a sim host's RT throttling can stall a runner past its
    watchdog; systemd then restarts it (NRestarts counts those, not `systemctl restart`).
    """
    return after["MainPID"] == before["MainPID"] or int(after["NRestarts"]) > int(
        before["NRestarts"]
    )


def test_install_serves_v1_under_systemd_with_watchdog(
    fleet: SimFleet, models: dict[str, Path], source: Path
) -> None:
    rc, output = roll_out(fleet, models, source, "1", "1")
    assert rc == 0, output[-6000:]
    assert "Install | wheelhouse" in output
    # One build for the three hosts of one class: one canary builds, the rest install it.
    sources = engine_sources(output)
    lines = [line for host_lines in sources.values() for line in host_lines]
    assert sum(": built here" in line for line in lines) == 1, sources
    assert sum("installed from the engine cache" in line for line in lines) == 2, sources
    assert len([p for p in store(source).iterdir() if p.name != "timing"]) == 1
    for index in range(3):
        state = host_state(fleet, index)
        stats = state["stats"]
        assert state["ActiveState"] == "active", state
        assert state["Type"] == "notify"
        assert state["WatchdogUSec"] == "5s"
        assert state["current"] == "1"
        assert state["user"] == "jetson-rt"
        # the unit's CPUSchedulingPolicy/Priority and CPUAffinity (sim: CPU 1)
        assert state["policy"] == "SCHED_FIFO" and state["prio"] == "50"
        assert state["Cpus_allowed_list"] == "1"
        # hardening that a sim host enforces (mount namespaces it cannot make: README)
        assert state["NoNewPrivs"] == "1" and state["Seccomp"] == "2"
        assert stats["state"] == "running" and str(stats["pid"]) == state["MainPID"]
        assert stats["watchdog"]["systemd"] is True
        assert stats["tasks"]["det"]["counts"]["inferences"] >= 50


def test_v2_rolls_out_to_line_a_canary_first(
    fleet: SimFleet, models: dict[str, Path], source: Path
) -> None:
    before = [host_state(fleet, i) for i in range(3)]
    rc, output = roll_out(fleet, models, source, "2", "1")
    assert rc == 0, output[-6000:]
    after = [host_state(fleet, i) for i in range(3)]
    assert [s["current"] for s in after] == ["2", "2", "1"]
    assert [s["previous"] for s in after[:2]] == ["1", "1"]
    # the canary (01) was switched and restarted before the rest of its group (02)
    canary_start = int(after[0]["ExecMainStartTimestampMonotonic"])
    assert canary_start < int(after[1]["ExecMainStartTimestampMonotonic"])
    canary_play = output.index("PLAY [Engines | canary hosts first]")
    rest_play = output.index("PLAY [Engines | the other hosts, in batches]")
    assert output.index("orin-nano-02", rest_play) > canary_play
    # line_b (03) kept its process: nothing changed there
    assert untouched(before[2], after[2])
    assert recap(output)["orin-nano-03"]["changed"] == 0
    for state in after:
        assert state["ActiveState"] == "active" and state["stats"]["state"] == "running"


def test_rerun_with_nothing_changed_changes_and_builds_nothing(
    fleet: SimFleet, models: dict[str, Path], source: Path
) -> None:
    before = [host_state(fleet, i) for i in range(3)]
    rc, output = roll_out(fleet, models, source, "2", "1")
    assert rc == 0, output[-6000:]
    counters = recap(output)
    assert all(counters[h.name]["changed"] == 0 for h in fleet.hosts), counters
    # no task changed anything: no build, no copy, no switch, no restart
    assert "changed: [" not in output
    after = [host_state(fleet, i) for i in range(3)]
    assert all(untouched(b, a) for b, a in zip(before, after, strict=True))


def test_wrong_v3_is_caught_at_the_canary_and_rolled_back(
    fleet: SimFleet, models: dict[str, Path], source: Path
) -> None:
    before = [host_state(fleet, i) for i in range(3)]
    rc, output = roll_out(fleet, models, source, "3", "1")
    assert rc != 0, output[-6000:]
    # the YAML callback folds long messages over lines
    output = " ".join(output.split())
    assert "does not match the reference" in output, output[-6000:]
    assert 'orin-nano-01 failed at "Service | health gate' in output
    assert "Switched back to det 2" in output
    after = [host_state(fleet, i) for i in range(3)]
    # the canary serves v2 again, in a new process
    assert after[0]["current"] == "2" and after[0]["previous"] == "1"
    assert after[0]["ActiveState"] == "active"
    assert after[0]["MainPID"] != before[0]["MainPID"]
    # 02 (line_a, not reached) untouched: same process, no v3 copied or built
    assert after[1]["current"] == "2" and untouched(before[1], after[1])
    assert "3" not in after[1]["versions"].split(",")
    assert "orin-nano-02 untouched: the rollout of group line_a stopped at orin-nano-01" in output
    # line_b (03) untouched
    assert after[2]["current"] == "1" and untouched(before[2], after[2])
    deadline = time.monotonic() + 60
    while (
        after[0]["stats"].get("pid") != int(after[0]["MainPID"])
        or after[0]["stats"].get("state") != "running"
    ):
        assert time.monotonic() < deadline, after[0]
        time.sleep(1)
        after[0] = host_state(fleet, 0)


def test_hung_runner_is_restarted_by_systemd_watchdog(fleet: SimFleet) -> None:
    before = host_state(fleet, 2)
    fleet.sudo(fleet.hosts[2], f"kill -STOP {before['MainPID']}")
    deadline = time.monotonic() + 90
    while True:
        state = host_state(fleet, 2)
        if (
            state["MainPID"] not in ("0", before["MainPID"])
            and state["ActiveState"] == "active"
            and state["stats"].get("state") == "running"
        ):
            break
        assert time.monotonic() < deadline, state
        time.sleep(1)
    assert int(state["NRestarts"]) == int(before["NRestarts"]) + 1
    journal = fleet.sudo(fleet.hosts[2], f"journalctl -u {UNIT} --no-pager -o cat | tail -40")
    assert "Watchdog timeout" in journal, journal


def test_another_module_builds_its_own_and_a_corrupted_copy_is_rebuilt(
    fleet: SimFleet, models: dict[str, Path], source: Path, tmp_path: Path
) -> None:
    # det 4: det 2's network in another file, a version none of the hosts has.
    v4 = tmp_path / "det-4.onnx"
    v4.write_bytes(models["2"].read_bytes().replace(b"version 2", b"version 4"))
    models = {**models, "4": v4}
    # orin-nano-03 (line_b) becomes an Orin Nano 8GB module p3767-0003: another class.
    (fleet.fleet.mount / fleet.hosts[2].name / "control" / "module").write_text("p3767-0003")
    compat = fleet.sudo(fleet.hosts[2], "tr '\\0' ' ' < /sys/firmware/devicetree/base/compatible")
    assert "nvidia,p3767-0003" in compat, compat

    # The two canaries: each builds its own class's engine (two fingerprints, two builds).
    rc, output = roll_out(fleet, models, source, "4", "4", "--limit", "orin-nano-01,orin-nano-03")
    assert rc == 0, output[-6000:]
    sources = engine_sources(output)
    assert [line.split(" (")[0] for line in sources["orin-nano-01"]] == ["det 4: built here"]
    assert [line.split(" (")[0] for line in sources["orin-nano-03"]] == ["det 4: built here"]
    stored = {
        json.loads(path.read_text())["inputs"]["module_sku"]: path.parent
        for path in store(source).glob("*/model.ort.onnx.fingerprint.json")
        if json.loads(path.read_text())["inputs"]["model_sha256"] == sha256(v4)
    }
    assert set(stored) == {"p3767-0005", "p3767-0003"}

    # The store's copy for class p3767-0005 is corrupted: orin-nano-02 refuses and builds.
    copy = stored["p3767-0005"] / "model.ort.onnx"
    good = copy.read_bytes()
    copy.write_bytes(good[:-64] + bytes(64))
    rc, output = roll_out(fleet, models, source, "4", "4")
    assert rc == 0, output[-6000:]
    sources = engine_sources(output)
    assert list(sources) == ["orin-nano-02"], sources
    (line,) = sources["orin-nano-02"]
    assert "built here" in line and "the cached copy was refused" in line, line
    assert "sha256" in line and "differs from its manifest" in line, line
    # The host's own build replaced the corrupted copy in the store.
    assert copy.read_bytes() == good
    assert host_state(fleet, 1)["current"] == "4"
