"""jetson_rt.fleet.jetson_facts on captured trees, in-process and through ansible."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ansible_collections.jetson_rt.fleet.plugins.modules import jetson_facts
from tests.ansible_adhoc import ansible_check_mode
from tests.jetson_trees import agx_orin_r35, orin_nano_r36, x86_server

REPO = Path(__file__).resolve().parents[3]


def test_orin_nano_facts(run_module: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    result = run_module(jetson_facts.main, root=str(orin_nano_r36(tmp_path)))
    facts = result["ansible_facts"]["jetson"]
    assert result["changed"] is False
    assert facts["is_jetson"] and facts["family"] == "orin_nano"
    assert facts["l4t"]["release"] == "36.4.3"
    assert facts["kernel"]["realtime"] is True
    assert facts["kernel"]["args"]["nohz_full"] == "4-5"
    assert facts["cpus"]["isolated"] == [4, 5]
    assert facts["dla_count"] == 0
    assert facts["nvpmodel"]["id"] == 2 and facts["nvpmodel"]["name"] == "MAXN_SUPER"
    assert [m["name"] for m in facts["nvpmodel"]["modes"]] == ["15W", "25W", "MAXN_SUPER", "7W"]
    assert facts["gpu"]["max_hz"] == 1020000000
    assert facts["thp"] == {"enabled": "never", "defrag": "never"}
    assert facts["swap"]["devices"] == []
    assert facts["memory"]["available_kb"] == 6123456
    assert facts["thermal"][0]["type"] == "cpu-thermal"


def test_r35_agx_orin(run_module: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    facts = run_module(jetson_facts.main, root=str(agx_orin_r35(tmp_path)))["ansible_facts"][
        "jetson"
    ]
    assert facts["l4t"]["jetpack_major"] == 5
    assert facts["dla_count"] == 2
    assert facts["gpu"]["path"].endswith("17000000.ga10b")
    assert facts["swap"]["zram"] == ["/dev/zram0"]


def test_non_jetson_is_described_not_failed(
    run_module: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    facts = run_module(jetson_facts.main, root=str(x86_server(tmp_path)))["ansible_facts"]["jetson"]
    assert facts["is_jetson"] is False
    assert "nv_tegra_release" in facts["reason"]


def test_require_jetson_fails_saying_why(
    module_failure: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    failure = module_failure(jetson_facts.main, root=str(x86_server(tmp_path)), require_jetson=True)
    assert "not an NVIDIA Jetson" in failure["msg"]
    assert "nvidia,tegra" in failure["msg"]


def test_through_ansible_in_check_mode(tmp_path: Path) -> None:
    """A real ad hoc run: the module is packaged with its module_utils (a link),
    on JetPack 6's Python 3.10 where that interpreter is installed."""
    root = orin_nano_r36(tmp_path / "root")
    payload = ansible_check_mode("jetson_rt.fleet.jetson_facts", f"root={root} require_jetson=true")
    assert payload["changed"] is False
    assert payload["ansible_facts"]["jetson"]["module_sku"] == "p3767-0005"
    assert payload["ansible_facts"]["jetson"]["cpus"]["isolated"] == [4, 5]
