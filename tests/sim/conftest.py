"""The simulated fleet most `sim` tests run against: four hosts, created once per session
(tests/simfleet.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.simfleet import SimFleet, sim_fleet

FLEET_NAME = "jrtci"


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    with sim_fleet(FLEET_NAME, 4, tmp_path_factory.mktemp("inventory") / "sim") as sim:
        yield sim
