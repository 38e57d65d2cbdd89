"""The simulated fleet the `sim` tests run against: four hosts, created once per session.

The fleet gets its own name, addresses and inventory, so a developer's own
`jetson-rt sim up` fleet is left alone. Without root or podman these tests skip,
unless JETSON_RT_REQUIRE_SIM=1 (CI sets it) turns that into a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from tests.simfleet import SimFleet

from jetson_rt.sim.fleet import Fleet

FLEET_NAME = "jrtci"


def _sim_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the simulated fleet needs root (rootful podman)"
    if shutil.which("podman") is None:
        return "podman is not installed"
    return None


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    reason = _sim_unavailable()
    if reason:
        if os.environ.get("JETSON_RT_REQUIRE_SIM") == "1":
            pytest.fail(f"sim tests required but {reason}")
        pytest.skip(reason)
    fleet = Fleet(name=FLEET_NAME, inventory_dir=tmp_path_factory.mktemp("inventory") / "sim")
    fleet.down()
    try:
        hosts = fleet.up(4)
        yield SimFleet(fleet=fleet, hosts=hosts)
    finally:
        fleet.down()
