"""playbooks/site.yml on a simulated fleet, ending with its validation report: a host
brought from stock to a real-time node by site.yml (the simulated PREEMPT_RT kernel that
`jetson-rt sim up` publishes, installed by rt_kernel; rt_tuning; the runtime and its
engines), an audit-only host left stock (rt_kernel_enabled and rt_tuning_enabled false),
and a host that is down.

One fleet and one site.yml run (validation: quick profile, shortened) serve every test
here: the expensive part is done once, the tests read the RUN_DIR and the report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.chromium import chromium, png_size, run_chromium, screenshot_page
from tests.simfleet import REPO, SimFleet, recap, sim_fleet

from jetson_rt.sim import hardware as hw
from jetson_rt.sim.fleet import fleet_octet

pytestmark = pytest.mark.sim

FLEET_NAME = "jrtval"
DOWN_HOST = "orin-nano-09"
CYCLICTEST_S = 2

# What the audit must find wrong on a stock JetPack host (the simulated one: no
# nvidia-l4t kernel packages, a cool SoC and plenty of memory).
STOCK_FAILURES = {
    "rt_kernel",
    "cmdline_isolation",
    "cpu_isolation",
    "nohz_full",
    "irq_affinity",
    "irqbalance",
    "thp",
    "swap",
    "governor",
    "clocks_locked",
    "nvpmodel",
    "sched_rt_runtime",
    "sysctls",
    "rt_limits",
    "desktop",
}


@dataclass
class Validation:
    sim: SimFleet
    untuned: str
    tuned: str
    result: subprocess.CompletedProcess[str]
    run_dir: Path

    def host_file(self, host: str, name: str) -> Any:
        return json.loads((self.run_dir / "hosts" / host / name).read_text())

    def audit(self, host: str) -> dict[str, dict[str, Any]]:
        return {c["id"]: c for c in self.host_file(host, "audit.json")["checks"]}


def _site_inventory(sim: SimFleet, untuned: str, directory: Path) -> Path:
    """The fleet's inventory and its group_vars, an audit-only host site.yml must leave
    as it is, and a host nobody answers for."""
    data = yaml.safe_load(sim.inventory.read_text())
    data["all"]["hosts"][untuned].update({"rt_kernel_enabled": False, "rt_tuning_enabled": False})
    address = f"127.0.{fleet_octet(FLEET_NAME)}.99"
    data["all"]["hosts"][DOWN_HOST] = {"ansible_host": address, "ansible_ssh_timeout": 3}
    data["all"]["children"]["jetson"]["children"]["line_b"]["hosts"][DOWN_HOST] = None
    data["all"]["children"]["sim"]["hosts"][DOWN_HOST] = None
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("group_vars", "models"):
        (directory / name).symlink_to(REPO / "inventories/sim" / name)
    inventory = directory / "hosts.yml"
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    return inventory


@pytest.fixture(scope="module")
def validation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Validation]:
    base = tmp_path_factory.mktemp("rt_validate")
    with sim_fleet(FLEET_NAME, 2, base / "sim") as sim:
        untuned, tuned = sim.hosts[0].name, sim.hosts[1].name
        inventory = _site_inventory(sim, untuned, base / "inventory")
        results = base / "runs"
        result = sim.playbook(
            "playbooks/site.yml",
            "-e",
            json.dumps(
                {
                    "rt_validate_results_dir": str(results),
                    "rt_validate_run_id": "run-1",
                    "rt_validate_cyclictest_overrides": {"duration_s": CYCLICTEST_S},
                    "rt_validate_poll_interval": 1,
                }
            ),
            inventory=inventory,
        )
        (base / "site.log").write_text(result.stdout + result.stderr)
        yield Validation(sim, untuned, tuned, result, results / "run-1")


def test_run_dir_lists_every_targeted_host(validation: Validation) -> None:
    run = json.loads((validation.run_dir / "run.json").read_text())
    assert run["schema_version"] == 1
    assert run["profile"] == "quick"
    assert set(run["hosts"]) == {validation.untuned, validation.tuned, DOWN_HOST}
    assert "sim" in run["hosts"][DOWN_HOST]
    # the sim group's gate comes from inventories/sim/group_vars/sim.yml and says why
    assert run["gates"]["sim"]["exclusive"] is True
    assert "say nothing about a Jetson" in run["gates"]["sim"]["note"]
    assert run["finished_at"] >= run["started_at"]
    assert run["cyclictest"]["cmdline"].startswith("taskset -c ")


def test_files_follow_the_writer_schemas(validation: Validation) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from jetson_rt.report.schema import AUDIT_SCHEMA, HOST_SCHEMA, RUN_SCHEMA

    validator = jsonschema.Draft202012Validator
    validator(RUN_SCHEMA).validate(json.loads((validation.run_dir / "run.json").read_text()))
    for name in (validation.untuned, validation.tuned, DOWN_HOST):
        validator(HOST_SCHEMA).validate(validation.host_file(name, "host.json"))
    for name in (validation.untuned, validation.tuned):
        validator(AUDIT_SCHEMA).validate(validation.host_file(name, "audit.json"))
        assert validation.host_file(name, "host.json")["cyclictest_cmdline"].startswith("taskset")


def test_untuned_host_shows_the_right_failures(validation: Validation) -> None:
    audit = validation.audit(validation.untuned)
    failed = {check_id for check_id, c in audit.items() if c["status"] == "fail"}
    assert failed == STOCK_FAILURES
    assert audit["rt_kernel"]["observed"].startswith(hw.STOCK_RELEASE)
    assert "201(eth0)->0-5" in audit["irq_affinity"]["observed"]
    assert "per-CPU excluded (11,12,13,14)" in audit["irq_affinity"]["observed"]
    assert "/dev/zram0" in audit["swap"]["observed"]
    assert audit["nvpmodel"]["observed"] == "15W"
    assert audit["nvpmodel"]["expected"].startswith("MAXN_SUPER")
    assert audit["desktop"]["observed"] == "gdm.service: active, enabled"
    for check in audit.values():
        assert check["hint"], check


def test_host_brought_up_by_site_yml_passes_the_audit(validation: Validation) -> None:
    audit = validation.audit(validation.tuned)
    assert {
        k: (c["status"], c["observed"]) for k, c in audit.items() if c["status"] != "pass"
    } == {}
    assert audit["rt_kernel"]["observed"].startswith(hw.RT_RELEASE)
    host = validation.host_file(validation.tuned, "host.json")
    assert host["reachable"] is True and host["error"] is None
    assert host["facts"]["realtime"] is True
    assert host["facts"]["isolated_cpus"] == "4-5"
    # the kernel came from the artifact sim up published, as the rt_kernel candidate entry
    # beside the untouched stock one
    target = next(h for h in validation.sim.hosts if h.name == validation.tuned)
    extlinux = validation.sim.sudo(target, "cat /boot/extlinux/extlinux.conf")
    assert re.search(r"^DEFAULT real-time$", extlinux, re.M)
    entries = {e.split()[0]: e for e in re.split(r"^LABEL ", extlinux, flags=re.M)[1:]}
    assert f"LINUX /boot/Image.jetson-rt-{hw.RT_RELEASE}" in entries["real-time"]
    assert "isolcpus=managed_irq,domain,4-5" in entries["real-time"]
    # the known-good entry: still the stock kernel, never edited
    assert re.search(r"LINUX /boot/Image$", entries["primary"], re.M)
    assert "isolcpus" not in entries["primary"]
    state = json.loads(validation.sim.sudo(target, "cat /var/lib/jetson-rt/rt_kernel/state.json"))
    assert (state["method"], state["known_good"]) == ("artifact", "primary")


def test_site_yml_leaves_an_audit_only_host_as_it_was(validation: Validation) -> None:
    target = next(h for h in validation.sim.hosts if h.name == validation.untuned)
    assert validation.sim.sudo(target, "cat /proc/sys/kernel/osrelease").strip() == (
        hw.STOCK_RELEASE
    )
    assert "DEFAULT primary" in validation.sim.sudo(target, "cat /boot/extlinux/extlinux.conf")
    assert validation.sim.sudo(target, "cat /proc/cmdline").count("isolcpus") == 0
    rows = recap(validation.result.stdout)
    assert rows[validation.untuned]["failed"] == 0
    assert rows[validation.tuned]["failed"] == 0
    assert rows[DOWN_HOST]["unreachable"] >= 1


def test_quick_cyclictest_results_land_in_the_run_dir(validation: Validation) -> None:
    for name in (validation.untuned, validation.tuned):
        result = validation.host_file(name, "cyclictest.json")
        assert result["return_code"] == 0
        threads = result["thread"]
        assert threads
        # CPUs 4-5 where the machine has them, else its housekeeping CPUs 0-3 (a VM of
        # 2 cores: 0-1), recorded as such in host.json
        host = validation.host_file(name, "host.json")
        usable = os.sched_getaffinity(0)
        expected = ({4, 5} & usable) or ({0, 1, 2, 3} & usable)
        assert {int(t["cpu"]) for t in threads.values()} == expected
        if not {4, 5} <= usable:
            assert "cannot be used by a task on this host" in host["facts"]["cyclictest_note"]
        for thread in threads.values():
            assert thread["cycles"] >= CYCLICTEST_S * 1000 * 0.5
            assert thread["histogram"]
        text = (validation.run_dir / "hosts" / name / "cyclictest.txt").read_text()
        assert "# Histogram Overflows:" in text


def test_report_builds_and_its_junit_parses(validation: Validation) -> None:
    out = validation.result.stdout
    # the stock host fails the fleet: the playbook says so after building the report
    assert validation.result.returncode != 0
    assert "The fleet failed validation" in out
    assert "Verdict: FAIL" in out
    report = validation.run_dir / "report"
    assert (report / "report.html").stat().st_size > 10_000
    data = json.loads((report / "report.json").read_text())
    verdicts = {h["name"]: h["verdict"] for h in data["hosts"]}
    assert verdicts[validation.tuned] == "pass"
    assert verdicts[validation.untuned] == "fail"
    suites = {s.get("name"): s for s in ET.parse(report / "junit.xml").getroot()}
    suite = suites[f"jetson_rt.validation.{validation.tuned}"]
    assert suite.get("failures") == "0" and suite.get("errors") == "0"
    names = {case.get("name") for case in suite.iter("testcase")}
    assert {"rt_kernel", "irq_affinity", "max_us", "avg_us"} <= names
    stock = suites[f"jetson_rt.validation.{validation.untuned}"]
    assert int(stock.get("failures") or 0) == len(STOCK_FAILURES)


def test_site_report_renders_in_headless_chromium(validation: Validation, tmp_path: Path) -> None:
    """The page site.yml ended with, as a browser shows it; the screenshot is kept for CI
    (artifacts/screenshots/site-report.png)."""
    binary = chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    page = validation.run_dir / "report" / "report.html"
    dom = run_chromium(binary, tmp_path / "dom", "--dump-dom", page.resolve().as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    # in the parsed DOM: the latency histograms of the two measured hosts (the down host
    # has none) and the fleet's max-latency plot
    assert len(re.findall(r"<svg\b[^>]*class=\"plot\"", dom.stdout)) == 3
    assert re.search(r'<div class="word">\s*FAIL\s*</div>', dom.stdout)
    for name in (validation.tuned, validation.untuned, DOWN_HOST):
        assert f'id="host-{name}"' in dom.stdout
    screenshot = screenshot_page(binary, page, "site-report.png", tmp_path)
    assert png_size(screenshot) == (1280, 2000)
    assert screenshot.stat().st_size > 60_000


def test_unreachable_host_is_reported_as_such(validation: Validation) -> None:
    host = validation.host_file(DOWN_HOST, "host.json")
    assert host["reachable"] is False
    assert host["failed_stage"] == "connect"
    assert host["error"]
    assert sorted(p.name for p in (validation.run_dir / "hosts" / DOWN_HOST).iterdir()) == [
        "host.json"
    ]
    data = json.loads((validation.run_dir / "report" / "report.json").read_text())
    down = next(h for h in data["hosts"] if h["name"] == DOWN_HOST)
    assert down["state"] == "unreachable"
    suite = next(
        s
        for s in ET.parse(validation.run_dir / "report" / "junit.xml").getroot()
        if s.get("name") == f"jetson_rt.validation.{DOWN_HOST}"
    )
    assert [case.get("name") for case in suite.iter("testcase")] == ["results"]
    assert suite.find("testcase/error") is not None
    # the run went on and accounted for it
    assert DOWN_HOST in recap(validation.result.stdout)


def test_check_mode_audits_and_changes_nothing(validation: Validation, tmp_path: Path) -> None:
    """--check: the audit runs (it is read-only), cyclictest does not, and the report
    judges the audit alone."""
    host = validation.untuned
    probe = "cat /sys/kernel/mm/transparent_hugepage/enabled /proc/irq/201/smp_affinity_list"
    target = next(h for h in validation.sim.hosts if h.name == host)
    before = validation.sim.sudo(target, probe)
    result = validation.sim.playbook(
        "playbooks/validate.yml",
        "--check",
        "-l",
        f"{host},localhost",
        "-e",
        json.dumps({"rt_validate_results_dir": str(tmp_path), "rt_validate_run_id": "check"}),
    )
    assert "Verdict: FAIL" in result.stdout, result.stdout[-3000:]
    run_dir = tmp_path / "check"
    run = json.loads((run_dir / "run.json").read_text())
    assert run["profile"] == "audit"
    assert run["cyclictest"] == {"measured": False, "why": "check mode"}
    assert sorted(p.name for p in (run_dir / "hosts" / host).iterdir()) == [
        "audit.json",
        "host.json",
    ]
    audit = {
        c["id"]: c["status"]
        for c in json.loads((run_dir / "hosts" / host / "audit.json").read_text())["checks"]
    }
    assert audit == {k: c["status"] for k, c in validation.audit(host).items()}
    report = json.loads((run_dir / "report" / "report.json").read_text())
    (judged,) = report["hosts"]
    assert judged["state"] == "ok" and judged["verdict"] == "fail"
    assert validation.sim.sudo(target, probe) == before


@pytest.mark.slow
def test_a_dropped_ssh_connection_does_not_stop_the_test(
    validation: Validation, tmp_path: Path
) -> None:
    """sshd stops for 20 s in the middle of a 40-second run: the detached test goes on,
    the role reconnects, polls again and fetches complete results."""
    sim, host = validation.sim, validation.tuned
    container = f"{FLEET_NAME}-{host}"
    command = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "-i",
        str(sim.inventory),
        "-l",
        f"{host},localhost",
        "playbooks/validate.yml",
        "-e",
        json.dumps(
            {
                "rt_validate_results_dir": str(tmp_path),
                "rt_validate_run_id": "drop",
                "rt_validate_cyclictest_overrides": {"duration_s": 40},
                "rt_validate_poll_interval": 2,
            }
        ),
    ]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=sim.env(),
        cwd=REPO,
    ) as play:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            running = subprocess.run(
                ["podman", "exec", container, "pgrep", "-x", "cyclictest"],
                capture_output=True,
                check=False,
            )
            if running.returncode == 0:
                break
            time.sleep(1)
        time.sleep(5)
        subprocess.run(
            ["podman", "exec", container, "sh", "-c", "systemctl stop ssh; pkill -f 'sshd: '"],
            check=False,
        )
        time.sleep(20)
        subprocess.run(["podman", "exec", container, "systemctl", "start", "ssh"], check=True)
        out, _ = play.communicate(timeout=600)
    assert "Wait | reconnect" in out
    result = json.loads((tmp_path / "drop" / "hosts" / host / "cyclictest.json").read_text())
    assert result["return_code"] == 0
    assert all(t["cycles"] > 30_000 for t in result["thread"].values())
    host_json = json.loads((tmp_path / "drop" / "hosts" / host / "host.json").read_text())
    assert host_json["error"] is None
