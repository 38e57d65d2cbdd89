"""The execution environment (execution-environment.yml) runs the playbooks against a
simulated fleet: ``scripts/ee.sh run`` starts ansible-runner inside the EE with the
repository as the project and the inventory handed in, as AWX runs a job template.

The image is built outside the test suite (a few minutes): ``./scripts/ee.sh build``.
Without the image these tests skip, unless JETSON_RT_REQUIRE_EE=1 turns that into a
failure.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest
from tests.simfleet import REPO, SimFleet, recap, sim_fleet

pytestmark = pytest.mark.sim

FLEET_NAME = "jrtee"
EE_IMAGE = "localhost/jetson-rt-ee:latest"


def _require_image() -> None:
    found = subprocess.run(["podman", "image", "exists", EE_IMAGE], check=False)
    if found.returncode != 0:
        reason = f"{EE_IMAGE} is not built (./scripts/ee.sh build)"
        if os.environ.get("JETSON_RT_REQUIRE_EE") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    _require_image()
    with sim_fleet(FLEET_NAME, 2, tmp_path_factory.mktemp("inventory") / "sim") as sim:
        yield sim


def _in_ee(sim: SimFleet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "scripts/ee.sh"), "run", "-i", str(sim.inventory), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=sim.env(),
        timeout=900,
        check=False,
    )


def test_facts_in_the_ee(fleet: SimFleet) -> None:
    result = _in_ee(fleet, "playbooks/facts.yml")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    rows = recap(result.stdout)
    assert set(rows) == {h.name for h in fleet.hosts}
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in rows.values())
    assert "L4T 36.4.3" in result.stdout


def test_validate_check_in_the_ee_writes_the_report(fleet: SimFleet) -> None:
    # under the inventory's folder, which the EE mounts read-write
    results = fleet.inventory.parent / "validation"
    results.mkdir()
    result = _in_ee(
        fleet,
        "playbooks/validate.yml",
        "--check",
        "-e",
        json.dumps({"rt_validate_results_dir": str(results), "rt_validate_report_fail": False}),
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    (run_dir,) = list(results.iterdir())
    report = json.loads((run_dir / "report/report.json").read_text())
    names = json.dumps(report)
    assert all(h.name in names for h in fleet.hosts)
