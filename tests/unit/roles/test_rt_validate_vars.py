"""roles/rt_validate expects what rt_tuning sets: its copies of rt_tuning's defaults and
per-SoC values stay equal to the originals, and its argument specs match its defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"
VALIDATE = ROLES / "rt_validate"
TUNING = ROLES / "rt_tuning"


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def test_tuning_defaults_copy_matches_rt_tuning() -> None:
    copy = load(VALIDATE / "vars/main.yml")["__rt_validate_tuning_defaults"]
    original = load(TUNING / "defaults/main.yml")
    assert {key: original[f"rt_tuning_{key}"] for key in copy} == copy


def test_every_expected_value_can_be_overridden() -> None:
    copy = load(VALIDATE / "vars/main.yml")["__rt_validate_tuning_defaults"]
    defaults = load(VALIDATE / "defaults/main.yml")
    assert {f"rt_validate_{key}" for key in copy} <= set(defaults)


def test_area_toggles_exist_in_rt_tuning() -> None:
    areas = load(VALIDATE / "vars/main.yml")["__rt_validate_area_checks"]
    original = load(TUNING / "defaults/main.yml")
    assert {f"rt_tuning_{area}_enabled" for area in areas} <= set(original)


@pytest.mark.parametrize("family", ["orin_nano", "orin_nx", "agx_orin", "default"])
def test_soc_values_match_rt_tuning(family: str) -> None:
    ours = load(VALIDATE / f"vars/{family}.yml")
    theirs = load(TUNING / f"vars/{family}.yml")
    renamed = {
        key.replace("__rt_tuning_", "__rt_validate_"): str(value).replace(
            "__rt_tuning_", "__rt_validate_"
        )
        for key, value in theirs.items()
    }
    assert {key: str(value) for key, value in ours.items()} == renamed


def test_argument_specs_match_defaults() -> None:
    defaults = load(VALIDATE / "defaults/main.yml")
    options = load(VALIDATE / "meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(options) == set(defaults)
    for name, spec in options.items():
        assert spec.get("default") == defaults[name], name
        assert spec.get("description"), name


def test_hold_patterns_copy_matches_rt_kernel() -> None:
    copy = load(VALIDATE / "vars/main.yml")["__rt_validate_hold_patterns"]
    assert copy == load(ROLES / "rt_kernel/defaults/main.yml")["rt_kernel_hold_patterns"]
