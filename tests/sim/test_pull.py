"""Pull mode on a simulated fleet: playbooks/pull.yml, then the boards on their own.

Three hosts: orin-nano-01 (line_a) and orin-nano-02 (line_b) are boards, orin-nano-03 is
the collector. The site repository is a real git repository served by `git daemon` on
the controller (on the fleet network's gateway address, where the boards reach it); the
boards upload with rsync over SSH to the collector's restricted account (rrsync). The
pulled playbook is playbooks/validate.yml (cyclictest shortened to 2 s): the kernel,
tuning and engine plays need reboots or a model build that a local run does not do here.

One fixture runs the whole story once (each board's timer started by hand with
`systemctl start jetson-rt-pull.service`, as the timer would), the tests read what it
recorded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.simfleet import REPO, SimFleet, recap, sim_fleet

pytestmark = pytest.mark.sim

FLEET_NAME = "jrtpull"
BOARDS = ("orin-nano-01", "orin-nano-02")
COLLECTOR = "orin-nano-03"
COLLECT_DIR = "/srv/jetson-rt/collect"
SITE_PARTS = ("ansible.cfg", "playbooks", "roles", "collections")
GIT = ("git", "-c", "user.name=site", "-c", "user.email=site@example.invalid")


@dataclass
class Story:
    sim: SimFleet
    tmp: Path
    pull_yml: subprocess.CompletedProcess[str] | None = None
    pull_yml_again: subprocess.CompletedProcess[str] | None = None
    first: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    unchanged: subprocess.CompletedProcess[str] | None = None
    changed: subprocess.CompletedProcess[str] | None = None
    failed: subprocess.CompletedProcess[str] | None = None
    before_fail: dict[str, str] = field(default_factory=dict)
    after_fail: dict[str, str] = field(default_factory=dict)
    collected: Path | None = None
    report: subprocess.CompletedProcess[str] | None = None
    runs_after_first: dict[str, list[str]] = field(default_factory=dict)
    runs_after_unchanged: list[str] = field(default_factory=list)
    ansible_version: str = ""
    pull_yml_cpu_s: float = 0.0
    # wall seconds of each step, for the figures file
    wall_s: dict[str, float] = field(default_factory=dict)


def _podman(*args: str) -> str:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def _site_repo(tmp: Path) -> Path:
    """The site's repository: the project's playbooks, roles and collection and an
    inventory of the boards with the simulated fleet's group variables."""
    work = tmp / "site"
    for part in SITE_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(
                source, work / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            work.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / part)
    inventory = work / "inventories/site"
    shutil.copytree(REPO / "inventories/sim/group_vars", inventory / "group_vars")
    # Written for push, as a site's inventory is: the boards reached over SSH at an
    # address the boards themselves cannot use (TEST-NET-1). A pull runs them locally.
    pushed = {"ansible_connection": "ssh", "ansible_host": "192.0.2.1"}
    hosts = {
        "all": {
            "children": {
                "jetson": {
                    "children": {
                        "line_a": {"hosts": {BOARDS[0]: pushed}},
                        "line_b": {"hosts": {BOARDS[1]: pushed}},
                    }
                },
                "sim": {"hosts": dict.fromkeys(BOARDS)},
            }
        }
    }
    (inventory / "hosts.yml").write_text("---\n" + yaml.safe_dump(hosts, sort_keys=False))
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    subprocess.run([*GIT, "-C", str(work), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(work), "commit", "-q", "-m", "site"], check=True)
    served = tmp / "git"
    served.mkdir()
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(work), str(served / "site.git")], check=True
    )
    subprocess.run(
        [*GIT, "-C", str(work), "remote", "add", "origin", str(served / "site.git")], check=True
    )
    return work


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_port(address: str, port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"git daemon did not listen on {address}:{port}")


def _start_pull(story: Story, board: str) -> subprocess.CompletedProcess[str]:
    """What the timer does: start the service; `systemctl start` waits for a oneshot. The
    output is this run's journal only (the unit's earlier runs are left out)."""
    ssh_dir = story.sim.fleet.inventory_dir / "ssh"
    return subprocess.run(
        ["ssh", "-i", str(ssh_dir / "fleet_ed25519"), "-o", "BatchMode=yes",
         "-o", f"UserKnownHostsFile={ssh_dir / 'known_hosts'}", "-o", "StrictHostKeyChecking=yes",
         f"jetson@{story.sim.fleet.host(int(board[-2:])).address}",
         "sudo systemctl start jetson-rt-pull.service; rc=$?; "
         "id=$(systemctl show -p InvocationID --value jetson-rt-pull.service); "
         "sudo journalctl INVOCATION_ID=$id + _SYSTEMD_INVOCATION_ID=$id --no-pager -o cat; "
         "exit $rc"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


class _Laps:
    """Wall time of each step of the story, into story.wall_s."""

    def __init__(self, story: Story, started: float) -> None:
        self.story, self.last = story, started

    def __call__(self, name: str) -> float:
        now = time.monotonic()
        self.story.wall_s[name] = round(now - self.last, 1)
        self.last = now
        return now


def _cpu_s(result: subprocess.CompletedProcess[str] | None) -> float | None:
    """CPU time the board spent in that pull, as the pull script logs it."""
    found = re.findall(r"jetson-rt-pull: CPU ([0-9.]+) s", result.stdout if result else "")
    return float(found[-1]) if found else None


def _cpu_source(result: subprocess.CompletedProcess[str] | None) -> str | None:
    """Where that figure came from (systemd's accounting of the unit, or /proc)."""
    found = re.findall(r"jetson-rt-pull: CPU [0-9.]+ s \((.*)\)", result.stdout if result else "")
    return found[-1] if found else None


def _collector_runs(story: Story, board: str) -> list[str]:
    out = story.sim.sudo(
        story.sim.fleet.host(3).address,
        f"find {COLLECT_DIR}/{board} -mindepth 1 -maxdepth 1 -type d -printf '%f\\n' | sort",
    )
    return out.split()


def _board_state(story: Story, board: str) -> str:
    """What runs on the board (every running service with its main PID), its checkout's
    commit and the timer's state."""
    return story.sim.sudo(
        story.sim.fleet.host(int(board[-2:])).address,
        "for u in $(systemctl list-units --type=service --state=running --no-legend --plain"
        " | awk '{print $1}'); do echo $u $(systemctl show -p MainPID --value $u); done;"
        " git -C /var/lib/jetson-rt-pull/checkout rev-parse HEAD;"
        " systemctl is-active jetson-rt-pull.timer",
    )


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    tmp = tmp_path_factory.mktemp("pull")
    started = time.monotonic()
    with sim_fleet(FLEET_NAME, 3, tmp / "inventory") as sim:
        story = Story(sim=sim, tmp=tmp)
        lap = _Laps(story, started)
        lap("fleet_up")
        work = _site_repo(tmp)
        gateway = _podman(
            "network", "inspect", sim.fleet.network, "--format",
            "{{range .Subnets}}{{.Gateway}}{{end}}",
        )  # fmt: skip
        collector_ip = _podman(
            "inspect", sim.fleet.host(3).container, "--format",
            f'{{{{(index .NetworkSettings.Networks "{sim.fleet.network}").IPAddress}}}}',
        )  # fmt: skip
        port = _free_port(gateway)
        daemon = subprocess.Popen(
            ["git", "daemon", f"--base-path={tmp / 'git'}", "--export-all", "--reuseaddr",
             f"--listen={gateway}", f"--port={port}", str(tmp / "git")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_port(gateway, port)
            groups = tmp / "pull-groups.yml"
            groups.write_text(
                yaml.safe_dump(
                    {
                        "all": {
                            "children": {
                                "pull_boards": {"hosts": dict.fromkeys(BOARDS)},
                                "pull_collector": {"hosts": {COLLECTOR: None}},
                            }
                        }
                    }
                )
            )
            extra = {
                "fleet_pull_repo_url": f"git://{gateway}:{port}/site.git",
                "fleet_pull_inventory": "inventories/site/hosts.yml",
                "fleet_pull_playbook": "playbooks/validate.yml",
                "fleet_pull_collector_address": collector_ip,
                # an active timer that never fires during the test: the test starts
                # each run itself (a daily time would collide with a CI run at that hour)
                "fleet_pull_on_calendar": "2099-01-01 00:00:00",
                "fleet_pull_wheelhouse": str(REPO / ".cache/pull-wheelhouse"),
                "fleet_pull_extra_vars": {
                    "rt_kernel_reboot_ok": False,
                    "rt_tuning_reboot_ok": False,
                    "rt_validate_cyclictest_overrides": {"duration_s": 2},
                },
            }
            args = ("-i", str(groups), "playbooks/pull.yml", "-e", json.dumps(extra))
            before = os.times()
            story.pull_yml = sim.playbook(*args, timeout=1200)
            after = os.times()
            story.pull_yml_cpu_s = (after.children_user - before.children_user) + (
                after.children_system - before.children_system
            )
            lap("pull_yml")
            assert story.pull_yml.returncode == 0, story.pull_yml.stdout[-6000:]
            story.pull_yml_again = sim.playbook(*args, timeout=900)
            lap("pull_yml_again")
            story.ansible_version = sim.sudo(
                sim.fleet.host(1).address,
                "/var/lib/jetson-rt-pull/venv/bin/ansible-pull --version | head -1",
            )

            # 1. each board pulls and converges, then uploads its run
            with ThreadPoolExecutor(len(BOARDS)) as pool:
                story.first = dict(
                    zip(BOARDS, pool.map(lambda b: _start_pull(story, b), BOARDS), strict=True)
                )
            first_done = lap("first_pulls")
            story.runs_after_first = {b: _collector_runs(story, b) for b in BOARDS}

            # 2. nothing pushed: the next timer skips the playbook (--only-if-changed)
            lap("collector_runs")
            story.unchanged = _start_pull(story, BOARDS[0])
            lap("unchanged_pull")
            story.runs_after_unchanged = _collector_runs(story, BOARDS[0])

            # 3. a change pushed to the repository reaches the board on its next timer
            (work / "inventories/site/group_vars/jetson.yml").write_text(
                "---\n# added after the boards enrolled\nrt_validate_gates_pushed:\n"
                "  pushed_marker:\n    max_us: 4321\n    note: pushed after enrolment\n"
            )
            subprocess.run([*GIT, "-C", str(work), "add", "-A"], check=True)
            subprocess.run([*GIT, "-C", str(work), "commit", "-q", "-m", "gate"], check=True)
            subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "main"], check=True)
            story.changed = _start_pull(story, BOARDS[0])
            changed_done = lap("changed_pull")

            # 4. the git server is gone: board 2's pull fails and changes nothing
            daemon.terminate()
            daemon.wait(10)
            story.before_fail[BOARDS[1]] = _board_state(story, BOARDS[1])
            story.failed = _start_pull(story, BOARDS[1])
            story.after_fail[BOARDS[1]] = _board_state(story, BOARDS[1])
            lap("failed_pull")

            # 5. the fleet report from the collector's folder; board 2 last reported
            # before board 1's second run: a threshold between the two makes it stale
            story.collected = tmp / "collected"
            subprocess.run(
                ["podman", "cp", f"{sim.fleet.host(3).container}:{COLLECT_DIR}",
                 str(story.collected)],
                check=True, timeout=120,
            )  # fmt: skip
            stale_after = int(time.monotonic() - (first_done + changed_done) / 2)
            story.report = subprocess.run(
                [sys.executable, "-m", "jetson_rt", "report", "--collected",
                 str(story.collected), "--stale-after", f"{max(stale_after, 1)}s"],
                capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            lap("report")
            figures = os.environ.get("JETSON_RT_PULL_FIGURES")
            if figures:
                Path(figures).write_text(
                    json.dumps(
                        {
                            "board_cpu_s": {
                                "first": {b: _cpu_s(r) for b, r in story.first.items()},
                                "unchanged": _cpu_s(story.unchanged),
                                "changed": _cpu_s(story.changed),
                                "source": _cpu_source(story.changed),
                            },
                            "controller_cpu_s_pull_yml": story.pull_yml_cpu_s,
                            "wall_s": story.wall_s,
                        },
                        indent=2,
                    )
                )
            yield story
        finally:
            if daemon.poll() is None:
                daemon.terminate()
                daemon.wait(10)


def _run_json(collected: Path, board: str, run: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((collected / board / run / "run.json").read_text())
    return data


def test_pull_playbook_enrols_the_boards_idempotently(story: Story) -> None:
    assert story.pull_yml is not None and story.pull_yml_again is not None
    assert story.pull_yml_again.returncode == 0, story.pull_yml_again.stdout[-4000:]
    rows = recap(story.pull_yml_again.stdout)
    assert {host: row["changed"] for host, row in rows.items()} == {
        BOARDS[0]: 0,
        BOARDS[1]: 0,
        COLLECTOR: 0,
    }, story.pull_yml_again.stdout[-4000:]
    assert "core 2.17." in story.ansible_version


def test_each_board_pulls_converges_and_uploads(story: Story) -> None:
    for board, result in story.first.items():
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr
        assert "full run of playbooks/validate.yml" in result.stdout
        runs = story.runs_after_first[board]
        assert len(runs) == 1, runs
        assert story.collected is not None
        host = json.loads(
            (story.collected / board / runs[0] / "hosts" / board / "host.json").read_text()
        )
        assert host["inventory_hostname"] == board
        assert host["reachable"] is True and host["error"] is None, host
        # the shortened profile reached the board's ansible-core 2.17 (not -D0s, forever)
        assert " -D2s " in host["cyclictest_cmdline"], host["cyclictest_cmdline"]
        cpu = _cpu_s(result)
        assert cpu is not None and cpu > 0, result.stdout[-2000:]
        line = "line_a" if board == BOARDS[0] else "line_b"
        assert line in host["groups"] and "sim" in host["groups"]
        audit = story.collected / board / runs[0] / "hosts" / board / "audit.json"
        assert json.loads(audit.read_text())["checks"]
        assert (story.collected / board / runs[0] / "hosts" / board / "cyclictest.json").is_file()


def test_unchanged_repository_skips_the_playbook(story: Story) -> None:
    assert story.unchanged is not None
    assert story.unchanged.returncode == 0, story.unchanged.stdout[-4000:]
    assert "if-changed run" in story.unchanged.stdout
    assert "Repository has not changed" in story.unchanged.stdout
    assert story.runs_after_unchanged == story.runs_after_first[BOARDS[0]]


def test_pushed_change_reaches_the_board_on_its_next_timer(story: Story) -> None:
    assert story.changed is not None and story.collected is not None
    assert story.changed.returncode == 0, story.changed.stdout[-6000:]
    runs = sorted(p.name for p in (story.collected / BOARDS[0]).iterdir())
    assert len(runs) == 2, runs
    old, new = (_run_json(story.collected, BOARDS[0], r) for r in runs)
    assert "pushed_marker" not in old["gates"]
    assert new["gates"]["pushed_marker"]["max_us"] == 4321


def test_failed_pull_leaves_the_board_running_unchanged(story: Story) -> None:
    assert story.failed is not None
    assert story.failed.returncode != 0
    assert "ansible-pull failed" in story.failed.stdout
    before, after = story.before_fail[BOARDS[1]], story.after_fail[BOARDS[1]]
    assert before == after
    assert after.strip().endswith("active")
    assert len(story.runs_after_first[BOARDS[1]]) == 1


def test_report_shows_every_board_and_the_stale_one(story: Story) -> None:
    assert story.report is not None and story.collected is not None
    assert story.report.returncode in (0, 1), story.report.stdout + story.report.stderr
    assert f"stale: {BOARDS[1]}" in story.report.stdout
    assert f"stale: {BOARDS[0]}" not in story.report.stdout
    report = json.loads((story.collected / ".report/report.json").read_text())
    text = json.dumps(report)
    for board in BOARDS:
        assert board in text
    audit = json.loads(
        (story.collected / BOARDS[1])
        .joinpath(story.runs_after_first[BOARDS[1]][0], "hosts", BOARDS[1], "audit.json")
        .read_text()
    )
    assert all(c["id"] != "result_age" for c in audit["checks"]), "uploaded files untouched"
    assert "result_age" in text
